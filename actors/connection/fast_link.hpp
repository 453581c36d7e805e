// The per-connection fast path: the one place a connection's WireGuard engine is shared between its
// actor (handshakes, cookies, timers, the goodbye, anything unusual) and the data threads (the TUN
// reader sealing, the ICE loop thread opening), so bulk packets never wait in a mailbox.
//
//   WireGuard actor ── creates the engine here; open = true once a session exists and a path is up
//   ICE actor       ── set_direct(socket, peer) when a non-relayed pair is selected (the socket is
//                      dup'ed: libnice may close its own at any time); clear_direct() before closing
//   TUN reader      ── send(): seal a batch under the lock, send it after (UDP GSO, else sendmmsg)
//   ICE loop thread ── receive(): open the batch's transport data under the lock; IP packets to the
//                      node's data plane (inbound_sink), control packets (the goodbye) to the actor
//   WireGuard actor ── close(): open = false; from then on every packet takes the slow way
//
// Whatever the engine wants afterwards (a handshake to send, an earlier timer, a completed handshake to
// report) the data thread does not do itself: it kicks the actor once, which looks under the lock.
// The lock is taken once per batch, and neither side holds it while it waits on libnice (the actor
// sends after unlocking), so the ICE loop thread can never deadlock against the actor.
// Relayed pairs have no direct socket: their datagrams keep going through libnice (TURN channel data).
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "transport/udp/udp_batch.hpp"
#include "transport/wireguard/device.hpp"

namespace firebreak::connection {

/// The engine wants an endpoint; with ICE the path is the selected pair, whatever its address.
inline const wireguard::endpoint ice_endpoint = wireguard::endpoint::ipv4({127, 0, 0, 1}, 1);

/// Where a data thread hands the IP packets it opened: the node's data plane.
class inbound_sink {
 public:
  virtual ~inbound_sink() = default;
  /// Decrypted IP packets from `peer`, none a control packet: those the node's policy passes go to the
  /// TUN; the indices of the rest go to `refused`, to be sent the slow way (the tunnel actor refuses
  /// and counts them as before).
  virtual void deliver(const std::string& peer, std::span<const std::span<const std::uint8_t>> packets,
                       std::vector<std::size_t>& refused) = 0;
};

/// A socket of our own (a dup of the selected pair's) and the remote address to send to.
struct direct_socket {
  direct_socket(int dup_fd, const sockaddr* to, socklen_t len);
  ~direct_socket();
  direct_socket(const direct_socket&) = delete;
  direct_socket& operator=(const direct_socket&) = delete;
  int fd;
  sockaddr_storage to{};
  socklen_t to_len;
  udp::batch_sender sender;
};

using packet_list = std::vector<std::vector<std::uint8_t>>;

struct link_counters {
  std::atomic<std::uint64_t> sealed{0}, opened{0}, send_errors{0};
};

class fast_link {
 public:
  explicit fast_link(std::string id);
  const std::string peer_id;

  // ---- the WireGuard actor's, under `mu` ------------------------------------------------------------
  std::mutex mu;
  std::unique_ptr<wireguard::device> device;
  wireguard::peer_id peer = 0;
  std::optional<wireguard::mono_time> timer_at;  // the deadline the actor's wg_tick is armed for
  std::uint64_t handshakes_reported = 0;
  bool open = false;  // a session exists, a path is up, the connection is not closing
  /// Set once before the link is shared: ask the actor to look (any thread); control packets opened
  /// here (with their datagram sizes) for the actor; opened packets the sink refused, for the tunnel.
  std::function<void()> kick;
  std::function<void(packet_list&&, std::vector<std::size_t>&&)> control_to_actor;
  std::function<void(packet_list&&)> refused_to_tunnel;
  std::shared_ptr<inbound_sink> sink;  // null: nothing is opened here
  std::atomic<bool> kick_pending{false};

  // ---- ICE ------------------------------------------------------------------------------------------
  /// `fd` is the selected pair's socket (duplicated here), `to` the remote candidate's address.
  void set_direct(int fd, const sockaddr* to, socklen_t len);
  void clear_direct();
  bool has_direct() const;

  // ---- data threads ---------------------------------------------------------------------------------
  /// Seals `packets` and sends them on the direct socket. False (nothing taken) when the link is not
  /// open or has no direct socket: the caller sends them the slow way. Packets the engine staged or
  /// dropped (counted there) count as taken.
  bool send(std::span<const std::span<const std::uint8_t>> packets, const wireguard::instant& now);
  /// Opens the transport data in `batch` and removes what it handled; what is left (handshakes, cookie
  /// replies, everything while the link is not open) is for the actor.
  void receive(packet_list& batch, const wireguard::instant& now);

  const link_counters& counters() const { return counters_; }

 private:
  /// Under `mu`: whether the actor must look now; kicks it (once until it has looked) after unlock.
  bool actor_must_look() const;
  void kick_actor();

  std::shared_ptr<direct_socket> direct_;  // under `mu`; copied out for the send after unlocking
  link_counters counters_;
};

}  // namespace firebreak::connection
