// Who may hold a connection that has not yet shown what it is (internal, shared by every server).
//
// A socket that never completes its TLS handshake, its WebSocket upgrade or its first request costs a
// descriptor, buffers and a slot under the server's cap until its deadline. Left alone, one address
// opening a thousand such sockets a second fills the cap and locks every legitimate peer out. So:
//
//   admit(address) ── a ticket while that address holds fewer than `per_source` unproven connections;
//                     otherwise nothing (the caller closes the socket), counted
//   ticket.release()── the connection proved itself (upgraded, or its first request arrived): it no
//                     longer counts; a ticket dropped unreleased (the connection died) releases too
//
// Proven connections are not limited per address here: many laptops behind one NAT are legitimate.
// Thread-safe: sessions release on their own strands.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace firebreak::websocket::detail {

class admission {
  struct state {
    std::mutex mutex;
    std::unordered_map<std::string, std::size_t> pending;  // by address, entries > 0 only
    std::size_t per_source;
    std::uint64_t refused = 0;
  };

 public:
  explicit admission(std::size_t per_source) : state_(std::make_shared<state>()) { state_->per_source = per_source; }

  class ticket {
   public:
    ticket() = default;
    ticket(ticket&& other) noexcept : state_(std::move(other.state_)), address_(std::move(other.address_)) {}
    ticket& operator=(ticket&& other) noexcept {
      if (this != &other) {
        release();
        state_ = std::move(other.state_);
        address_ = std::move(other.address_);
      }
      return *this;
    }
    ticket(const ticket&) = delete;
    ticket& operator=(const ticket&) = delete;
    ~ticket() { release(); }
    void release();

   private:
    friend class admission;
    ticket(std::shared_ptr<state> s, std::string address) : state_(std::move(s)), address_(std::move(address)) {}
    std::shared_ptr<state> state_;
    std::string address_;
  };

  /// A ticket for one more unproven connection from `address`, or nullopt when it holds its share.
  std::optional<ticket> admit(const std::string& address);

  /// Unproven connections from `address` now.
  std::size_t pending(const std::string& address) const;
  /// Addresses with unproven connections now (the map gives its memory back as they go).
  std::size_t sources() const;
  std::uint64_t refused() const;

 private:
  std::shared_ptr<state> state_;
};

}  // namespace firebreak::websocket::detail
