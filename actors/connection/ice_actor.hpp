// The ICE sub-actor of a connection: owns one libnice agent (transport/ice) and bridges it to CAF.
// Agent events arrive on the GLib loop thread and leave it as messages; nothing here blocks on GLib.
//
//   spawn ── agent gathering ──local_candidates──> connection (to the portal)
//     remote_candidates ──> agent (a string that does not parse: logged with the peer id, counted)
//     agent connected   ──ice_status──> connection;  selected pair ──ice_path──> connection,
//                                                                   ──path_ready──> wireguard
//                                     (and the pair's socket to the fast_link, unless this side relays)
//     agent datagrams   ──transport data the fast_link opens: to the node's data plane, no message
//                       ──the rest: datagram_batch──> wireguard (batched by the agent)
//     agent failed (all pairs failed, consent lost, no candidate) ──ice_status{failed}──> connection
//   close_connection ── the fast_link's socket cleared, agent closes (TURN allocations released) ──> quit when libnice is done
#pragma once

#include <memory>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/connection/fast_link.hpp"
#include "messages/connection_messages.hpp"
#include "transport/ice/ice_agent.hpp"

namespace firebreak::connection {

struct ice_settings {
  ice::glib_loop* loop = nullptr;  // shared by every connection of the process
  std::shared_ptr<spdlog::logger> log;
};

struct ice_actor_state {
  std::shared_ptr<ice::agent> agent;
  std::string peer_id;
  std::shared_ptr<spdlog::logger> log;
  std::uint64_t bad_candidates = 0;
  bool closing = false;
  std::shared_ptr<fast_link> fast;  // the data-path entry: its direct socket is set and cleared here
  static inline const char* name = "ice";
};

caf::behavior ice_actor(caf::stateful_actor<ice_actor_state>* self, caf::actor connection, caf::actor wireguard,
                        messages::connection_spec spec, ice_settings settings);

}  // namespace firebreak::connection
