// One remote peer: its handshake in progress, its keypairs (previous, current, next), its timers and the
// packets waiting for a session. The device (device.hpp) owns peers and routes datagrams to them; a
// peer never touches a socket or a clock.
//
//      no session ──(packet to send / persistent keepalive)──> initiation sent
//          ^                                                     │ response   (retransmit every 5 s,
//          │ wipe after 540 s without a new session              v             give up after 90 s)
//          └──────────────────────────────────────────────── session (current keypair)
//                               rekey after 120 s / 2^60 messages ┘ (initiator only)
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include <spdlog/logger.h>

#include "transport/wireguard/cookie.hpp"
#include "transport/wireguard/drop_reason.hpp"
#include "transport/wireguard/endpoint.hpp"
#include "transport/wireguard/handshake.hpp"
#include "transport/wireguard/index_table.hpp"
#include "transport/wireguard/keypair.hpp"
#include "transport/wireguard/timers.hpp"

namespace firebreak::wireguard {

struct peer_config {
  public_key remote_static{};
  symmetric_key preshared_key;  // all zero when none is configured, as the protocol defines
  std::optional<endpoint> remote_endpoint;
  std::chrono::seconds persistent_keepalive{0};
};

/// A datagram for the network that is not on the per-packet fast path (handshakes, keepalives,
/// packets that waited for a session).
struct transmit {
  peer_id peer;
  endpoint to;
  std::vector<std::uint8_t> bytes;
};

/// What the peer needs from its device, passed in on each call.
struct peer_context {
  const noise::keypair_25519& local;
  random_source& rng;
  unsigned mtu;
  std::deque<transmit>& transmits;
  drop_counters& drops;
  index_table& indices;
  spdlog::logger& log;
};

struct peer_status {
  std::optional<endpoint> remote_endpoint;
  std::optional<std::chrono::nanoseconds> last_handshake_wall;
  std::uint64_t tx_bytes = 0, rx_bytes = 0;
  std::uint64_t handshakes = 0;
  bool has_session = false;
  /// Times "sent data, heard nothing authenticated for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT" fired since
  /// the last authenticated packet arrived: above zero, the remote side is probably gone.
  std::uint64_t unanswered = 0;
  /// Handshake attempts ran for REKEY_ATTEMPT_TIME without an answer (cleared by the next session).
  bool gave_up = false;
};

class peer {
 public:
  peer(peer_id id, peer_config cfg);

  // ---- the data path --------------------------------------------------------------------------------
  /// Seals an IP packet into `out`; returns the datagram's size, or 0 with `why` set when it could not
  /// be sent now (then it may be staged for after the handshake this call starts).
  std::size_t seal(peer_context& ctx, bytes_view packet, instant now, bytes_out out, drop_reason& why);
  /// Opens transport data for one of our keypairs into `out`; returns the IP packet (empty for a keepalive)
  /// or nullopt with `why` set.
  std::optional<bytes_out> open(peer_context& ctx, const transport_data& msg, const endpoint& from, instant now,
                                bytes_out out, drop_reason& why);

  // ---- handshake events (mac1, cookies and rate limits were checked by the device) ---------------------
  void on_initiation(peer_context& ctx, consumed_initiation& in, std::uint32_t their_index, const endpoint& from,
                     instant now);
  /// nullopt when the response completed the handshake.
  std::optional<drop_reason> on_response(peer_context& ctx, const handshake_response& msg, const endpoint& from,
                                         instant now);
  /// An initiation must be newer than every one before it, so a replayed one cannot reset the session.
  bool accepts_timestamp(const timestamp& ts) const;
  /// At most one initiation per HANDSHAKE_INITIATION_RATE is consumed, as in wireguard-go.
  bool initiation_too_soon(instant now) const;
  void on_cookie_reply(const cookie_reply& msg, instant now, drop_reason& why, bool& ok);

  // ---- timers ---------------------------------------------------------------------------------------
  void handle_timeout(peer_context& ctx, instant now);
  std::optional<deadline> next_deadline() const { return timers_.next(); }

  /// Sends a handshake initiation unless one went out less than REKEY_TIMEOUT ago (or `retry`).
  void initiate(peer_context& ctx, instant now, bool retry);
  /// Forgets every key and the handshake in progress; releases their indices.
  void wipe(peer_context& ctx);

  peer_id id() const { return id_; }
  const public_key& remote_static() const { return cfg_.remote_static; }
  peer_status status() const;
  const std::optional<endpoint>& current_endpoint() const { return endpoint_; }
  /// Whether `index` is one of ours (handshake or keypair) for this peer.
  bool owns_index(std::uint32_t index) const;
  bool has_handshake_index(std::uint32_t index) const { return handshake_ && handshake_->local_index == index; }
  void update_config(peer_context& ctx, peer_config cfg, instant now);

 private:
  struct pending_handshake {
    noise::ik_handshake hs;
    std::uint32_t local_index;
  };

  keypair* keypair_for(std::uint32_t index);
  void install_keypair(peer_context& ctx, std::unique_ptr<keypair> kp, bool as_initiator, instant now);
  void send_keepalive(peer_context& ctx, instant now);
  void stage(peer_context& ctx, bytes_view packet, instant now);
  void flush_staged(peer_context& ctx, instant now);
  void queue(peer_context& ctx, std::vector<std::uint8_t> bytes);
  std::size_t seal_with(peer_context& ctx, keypair& kp, bytes_view packet, bytes_out out);

  // Timer hooks, named after protocol events (wireguard-go's timers.go).
  void data_sent(peer_context& ctx, instant now);  // after a non-keepalive transport packet is sent
  void data_received(instant now);               // after an authenticated non-keepalive packet arrives
  void any_authenticated_sent(instant now);      // after any authenticated packet is sent
  void any_authenticated_received(instant now);  // after any authenticated packet arrives
  void authenticated_traversal(instant now);     // after any authenticated packet, either direction
  void handshake_initiated(peer_context& ctx, instant now);
  void handshake_complete(instant now);
  void session_derived(instant now);

  peer_id id_;
  peer_config cfg_;
  cookie_generator cookies_;
  std::optional<endpoint> endpoint_;

  std::unique_ptr<keypair> previous_, current_, next_;
  std::optional<pending_handshake> handshake_;

  timestamp greatest_timestamp_{};
  std::optional<mono_time> last_initiation_consumed_;
  std::optional<mono_time> last_initiation_sent_;
  std::optional<mono_time> attempts_started_;
  std::optional<std::chrono::nanoseconds> last_handshake_wall_;
  bool sent_last_minute_handshake_ = false;
  bool need_another_keepalive_ = false;
  timer_set timers_;
  std::deque<std::vector<std::uint8_t>> staged_;

  std::uint64_t tx_bytes_ = 0, rx_bytes_ = 0, handshakes_ = 0;
  std::uint64_t unanswered_ = 0;  // times the no-reply rule fired since the last authenticated packet
  bool gave_up_ = false;          // the last handshake attempts ran out (REKEY_ATTEMPT_TIME)
};

}  // namespace firebreak::wireguard
