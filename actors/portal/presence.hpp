// The presence actor: which clients and gateways have a live session right now. A session that joins
// is monitored; when it ends (socket closed, heartbeat missed, crash) its peer is offline at once and is
// never chosen for a flow again until it rejoins.
//
//     session_joined ──> online ──(session down)──> offline
//                          │
//                          └── candidates_relay: forwarded to the other side's sessions as pushes
//
// Requests: (online_atom, site_id) -> std::vector<std::string>: gateway ids online in the site;
//           (session_atom, peer_kind, id) -> caf::actor: the session, or an invalid handle when offline;
//           stats_atom -> {"clients": n, "gateways": n} online now, as JSON text (/metrics).
#pragma once

#include <map>
#include <memory>
#include <string>

#include <caf/all.hpp>
#include <spdlog/logger.h>

#include "messages/portal_messages.hpp"

namespace firebreak::portal {

struct presence_state {
  struct online_peer {
    messages::identity who;
    caf::actor session;
  };
  std::map<std::string, online_peer> gateways;  // by gateway id
  std::map<std::string, online_peer> clients;   // by client id
  static inline const char* name = "presence";
};

/// `log` is where online and offline are reported.
caf::behavior presence_actor(caf::stateful_actor<presence_state>* self, std::shared_ptr<spdlog::logger> log);

}  // namespace firebreak::portal
