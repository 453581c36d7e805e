// A WireGuard interface as a pure state machine (like boringtun's Tunn, for many peers): datagrams and
// IP packets go in with the current time; what to send, what to deliver and when to be called again come
// out. No sockets, no clocks, no threads.
//
//   caller ──encapsulate(ip packet)──> device ──> outcome: datagram to an endpoint | staged | dropped
//   caller ──decapsulate(datagram)───> device ──> outcome: ip packet for the tunnel | nothing | dropped
//   caller ──handle_timeout(now)─────> device          poll_transmit(): handshakes, keepalives, flushed data
//                                                      poll_timeout():  next deadline, with its reason
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include <spdlog/logger.h>

#include "transport/wireguard/allowed_ips.hpp"
#include "transport/wireguard/cookie.hpp"
#include "transport/wireguard/drop_reason.hpp"
#include "transport/wireguard/index_table.hpp"
#include "transport/wireguard/peer.hpp"
#include "transport/wireguard/rate_limiter.hpp"

namespace firebreak::wireguard {

struct device_config {
  private_key local_private_key;
  /// The tunnel MTU, which caps padding.
  unsigned mtu = 1420;
};

enum class verdict {
  nothing,     // consumed (a handshake message, a keepalive); look at poll_transmit
  to_network,  // `bytes` is a datagram for `to`
  to_tunnel,   // `bytes` is an IP packet for the TUN device
  staged,      // held until a handshake completes
  dropped,     // see `why`; counted
};

struct outcome {
  verdict what = verdict::nothing;
  bytes_out bytes;
  endpoint to;
  peer_id peer = 0;
  drop_reason why = drop_reason::count;
};

class device {
 public:
  device(device_config cfg, random_source& rng, std::shared_ptr<spdlog::logger> log);
  ~device();

  const public_key& local_public_key() const { return local_.pub; }

  /// Adds a peer (or updates the one with that public key) and the prefixes routed to it.
  peer_id add_peer(const peer_config& cfg, std::span<const ip_prefix> allowed, instant now);
  void remove_peer(peer_id id);
  /// Starts a handshake with a peer that has no session yet (a path to it just came up), without
  /// waiting for a packet to send. Does nothing while a recent initiation is still in flight.
  void initiate_handshake(peer_id id, instant now);
  std::optional<peer_id> find_peer(const public_key& remote) const;
  std::vector<peer_id> peers() const;

  /// An IP packet read from the tunnel. `out` needs packet size + 48 bytes.
  outcome encapsulate(bytes_view ip_packet, instant now, bytes_out out);
  /// A datagram from `from`. `out` needs the datagram's size.
  outcome decapsulate(bytes_view datagram, const endpoint& from, instant now, bytes_out out);

  void handle_timeout(instant now);
  std::optional<deadline> poll_timeout() const;
  std::optional<transmit> poll_transmit();

  /// Forces (true/false) or releases (nullopt) the under-load state that demands cookies.
  void force_under_load(std::optional<bool> forced) { forced_under_load_ = forced; }
  bool under_load(mono_time now) const;

  const drop_counters& drops() const { return drops_; }
  std::uint64_t dropped(drop_reason r) const { return drops_[static_cast<std::size_t>(r)]; }
  std::optional<peer_status> status(peer_id id) const;
  /// Datagrams waiting in poll_transmit().
  bool has_transmits() const { return !transmits_.empty(); }

 private:
  peer_context context();
  peer* get(peer_id id) const;
  outcome drop(drop_reason why, instant now, peer_id peer = 0);
  /// mac1, then (under load) mac2 or a cookie reply, then the per-source rate limit.
  bool admit_handshake(const handshake_view& msg, const endpoint& from, instant now, outcome& result);
  outcome on_initiation(const handshake_initiation& msg, const endpoint& from, instant now);
  outcome on_response(const handshake_response& msg, const endpoint& from, instant now);
  outcome on_cookie_reply(const cookie_reply& msg, instant now);
  outcome on_transport_data(const transport_data& msg, const endpoint& from, instant now, bytes_out out);

  device_config cfg_;
  random_source& rng_;
  std::shared_ptr<spdlog::logger> log_;
  noise::keypair_25519 local_;
  cookie_checker cookies_;
  rate_limiter limiter_;
  index_table indices_;
  std::vector<std::unique_ptr<peer>> peers_;  // slot = peer id - 1; empty slots after removal
  allowed_ips<peer_id> routes_;
  std::deque<transmit> transmits_;
  drop_counters drops_{};
  drop_counters drops_logged_{};
  std::array<mono_time, static_cast<std::size_t>(drop_reason::count)> last_drop_log_{};

  std::optional<bool> forced_under_load_;
  mono_time load_window_start_{0};
  unsigned handshakes_in_window_ = 0;
  std::optional<mono_time> under_load_until_;
};

}  // namespace firebreak::wireguard
