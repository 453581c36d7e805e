// One connection per remote peer: its ICE sub-actor finds a path, its WireGuard sub-actor makes it
// private, and this actor decides what state the connection is in and tells its owner.
//
//                 spawn (spec from the flow)
//                   │
//                   v        ICE failed / no local candidate / bad keys / connect timeout
//              connecting ──────────────────────────────────────────────────────────────> failed
//                   │ ICE connected and WireGuard session up                              ^
//                   v        (buffered packets flushed)                                   │
//              connected ⇄ idle   (idle: no bytes either way for idle_after)              │
//                   │        │      ICE consent lost / data unanswered 15 s (controlling)│
//                   │        └──────────────────────────────────────────────────────────┤
//                   │ close_connection{reason, mode}, or the peer's goodbye (wg_status{goodbye})
//                   v
//                closed   (by local: silent while connecting, goodbye_and_flush once connected, the
//                          goodbye sent before ICE closes; by remote: its goodbye, no reply)
//
// Every change goes to the owner as connection_event{peer_id, state, by, reason, relayed, mode}. The
// actor quits after closed or failed, once both sub-actors have stopped (ICE releases its TURN
// allocations first), so nothing outlives the connection.
//
// Packets to the peer arrive as packet_batch: buffered (bounded, then counted drops) while connecting,
// passed to the WireGuard sub-actor once connected. Packets from the peer never pass through here.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <optional>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/connection/wireguard_actor.hpp"
#include "messages/connection_messages.hpp"

namespace firebreak::connection {

/// Spawns a connection's ICE sub-actor: libnice in production (see ice_actor.hpp), a scripted one in
/// actor tests. It must answer close_connection by quitting, and report to `connection`.
using ice_factory = std::function<caf::actor(caf::local_actor* parent, const caf::actor& connection,
                                             const caf::actor& wireguard, const messages::connection_spec& spec)>;

struct connection_settings {
  caf::actor owner;  // connection_event and local_candidates go here
  wireguard_settings wireguard;
  ice_factory make_ice;
  /// Give up when not connected after this long (ICE in trickle mode never fails by itself while
  /// candidates may still come).
  std::chrono::milliseconds connect_timeout{20'000};
  /// No bytes either way for this long: idle.
  std::chrono::milliseconds idle_after{30'000};
  std::size_t max_buffered_packets = 256;
  std::shared_ptr<spdlog::logger> log;
};

struct connection_data {
  std::string peer_id;
  bool controlling = false;
  messages::connection_state state = messages::connection_state::connecting;
  caf::actor owner, ice, wireguard;
  connection_settings settings;
  std::shared_ptr<spdlog::logger> log;
  std::deque<std::vector<std::uint8_t>> buffered;
  std::uint64_t buffer_drops = 0;
  bool ice_connected = false, session_up = false, relayed = false, ice_ever_connected = false;
  std::string path;  // "host a:b -> relay c:d"
  messages::wg_counters last_counters;
  int children = 0;  // sub-actors still running
  std::optional<std::string> ice_close_after_wireguard;  // closing with a goodbye: ICE waits for it
  bool ending = false;
  static inline const char* name = "connection";
};

caf::behavior connection_actor(caf::stateful_actor<connection_data>* self, messages::connection_spec spec,
                               connection_settings settings);

}  // namespace firebreak::connection
