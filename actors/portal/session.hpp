// One session actor per WebSocket: it speaks Phoenix Channels on its socket and typed messages to the
// rest of the portal. The token was checked before the upgrade, so a session always knows who it serves.
//
//            socket_text(phx_join on its own topic)
//   joining ────────────────────────────────────────> joined ──┐ events: create_flow, flow_authorized,
//      │                                               │      │ broadcast_(invalidated_)ice_candidates
//      │  socket_closed / close_session / heartbeat    │      │ pushes from the portal go out as frames
//      └──────────────── missed / phx_leave ───────────┴──> (gone: presence sees it down at once)
#pragma once

#include <chrono>
#include <map>
#include <memory>

#include <caf/all.hpp>

#include "actors/portal/flow_budget.hpp"
#include "actors/portal/socket_port.hpp"
#include "messages/portal_messages.hpp"

namespace firebreak::portal {

struct session_settings {
  /// A session that sends no heartbeat for this long is closed (and its peer offline).
  std::chrono::milliseconds heartbeat_timeout{60'000};
  std::size_t max_frame_bytes = 1024 * 1024;
  /// create_flow requests per second (token bucket) before they are refused as rate_limited.
  double create_flow_per_second = 10;
  double create_flow_burst = 20;
  /// The buckets, per client identity, shared by every session of the portal (portal_node makes
  /// one). Null: a bucket of this session's own.
  std::shared_ptr<portal::flow_budget> budget;
  /// How often a joined peer is sent relays_presence with fresh TURN credentials; zero: never (no relays).
  std::chrono::milliseconds relay_refresh{0};
};

struct session_peers {
  caf::actor store;
  caf::actor presence;
  caf::actor coordinator;
};

struct session_state {
  std::uint64_t socket = 0;
  messages::identity who;
  std::shared_ptr<socket_port> port;
  session_peers peers;
  session_settings settings;
  std::optional<std::string> join_ref;  // set once joined
  std::chrono::steady_clock::time_point last_heartbeat;
  static inline const char* name = "session";
};

caf::behavior session_actor(caf::stateful_actor<session_state>* self, std::uint64_t socket, messages::identity who,
                            std::shared_ptr<socket_port> port, session_peers peers, session_settings settings);

}  // namespace firebreak::portal
