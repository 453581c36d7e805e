// The root actor of a client or gateway daemon: it starts the rest, turns the portal's frames into
// typed events for them, answers the status command and the health check, tells the service manager
// how it is doing, and runs the shutdown sequence.
//
//   connecting ──link_status{joined}──> ready ──link_status{lost}──> lost (not ready; the link retries
//      │                                  ^                             │   with backoff)
//      │                                  └─────link_status{joined}─────┘
//      │  first join: notify READY=1 (systemd); every change: notify STATUS=<what>
//      │  every watchdog interval: notify WATCHDOG=1 (proves this actor is still scheduled)
//      │
//   (any) ──push (from portal_link)──> decoded ──client_event──> tunnel                 (client)
//      │                                       ──gateway_event──> authorization | tunnel (gateway:
//      │                                          flows, rejections and expiries to authorization;
//      │                                          init to both; candidates and relays to the tunnel)
//      │  link_status{refused} ──> fatal: stopping, exit 1 (a bad token does not fix itself)
//      │  fatal_atom (the TUN device gone) ──> stopping, exit 1
//      │  health_atom ──> {"ready", "portal", "stopping"} (ready = joined and not stopping)
//      │  node_status_atom ──> the tunnel's status, with the health above added
//      │  shutdown_atom (SIGTERM/SIGINT), sign_out_atom (client: `firebreak client sign-out`)
//      v
//   stopping ── notify STOPPING=1 ── leave the portal (it stops choosing this node) ── tunnel: close
//      │        every connection with a goodbye ("shutdown" or "signed_out") ── bounded by flush_bound
//      v
//   done (quit; the process exits with exit_code)
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <memory>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "messages/node_messages.hpp"

namespace firebreak::node {

enum class role : std::uint8_t { client, gateway };

struct supervisor_settings {
  role who = role::client;
  caf::actor tunnel;
  caf::actor authorization;  // gateway only
  caf::actor portal_link;
  std::chrono::milliseconds flush_bound{1000};
  /// Tells the service manager (sd_notify's state lines: "READY=1", "STATUS=...", "STOPPING=1",
  /// "WATCHDOG=1"); empty: nobody to tell.
  std::function<void(const std::string&)> notify;
  /// How often "WATCHDOG=1" goes out; zero: never.
  std::chrono::milliseconds watchdog{0};
  std::shared_ptr<std::atomic<int>> exit_code;
  std::shared_ptr<spdlog::logger> log;
};

struct supervisor_state {
  supervisor_settings settings;
  std::shared_ptr<spdlog::logger> log;
  bool stopping = false;
  bool joined_once = false;
  std::string portal = "connecting";  // connecting, joined, lost, refused
  std::string portal_reason;          // why not joined, as the link said
  int waiting = 0;
  std::uint64_t bad_events = 0;
  static inline const char* name = "supervisor";
};

caf::behavior supervisor(caf::stateful_actor<supervisor_state>* self, supervisor_settings settings);

}  // namespace firebreak::node
