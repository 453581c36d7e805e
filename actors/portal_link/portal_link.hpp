// portal_link: a client's or gateway's one WebSocket to the portal. It turns Phoenix frames into typed
// messages for its owner and the owner's messages into frames, joins its topic, heart-beats, and
// reconnects with backoff. The socket is blocking (transport/websocket/wss_client), so it lives on a
// worker thread of the link's own; the actor and the worker meet in a queue and in messages.
//
//     start ──> connecting ──(TLS + upgrade + phx_join ok)──> joined ──(socket lost)──> waiting
//                   ^  │ refused (bad token: HTTP 401/403)                                  │
//                   │  └──> stopped (told to the owner; no retry: a person must fix it)     │
//                   └──────────────────────── backoff 1 s, 2 s, 4 s … 30 s ─────────────────┘
//     joined:   push frames ──messages::push──> owner;   owner's messages::push ──> frame on the topic
//               link_status{joined} on every (re)join, so the owner can re-announce itself
//     leave_atom: phx_leave, close 1000, quit (a gateway leaves first so the portal stops choosing it)
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/portal_link_messages.hpp"

namespace firebreak::portal_link {

struct link_settings {
  std::string host;  // the portal, as its certificate names it
  std::uint16_t port = 8443;
  std::filesystem::path ca_file;  // the CA to trust for the portal's certificate
  std::string token;              // secret: never logged
  std::string public_key;         // this node's WireGuard public key (base64)
  std::string topic = "client";   // "client" or "gateway"
  caf::actor owner;
  std::chrono::milliseconds heartbeat_interval{30'000};
  std::chrono::milliseconds backoff_initial{1'000};
  std::chrono::milliseconds backoff_max{30'000};
  std::shared_ptr<spdlog::logger> log;
};

class worker;

struct link_state {
  std::shared_ptr<worker> io;
  static inline const char* name = "portal_link";
};

caf::behavior portal_link_actor(caf::stateful_actor<link_state>* self, link_settings settings);

}  // namespace firebreak::portal_link
