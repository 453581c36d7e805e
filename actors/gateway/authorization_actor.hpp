// The gateway's authorization actor: the only place that knows which client may reach which resource
// until when, and so the only one that decides "this client has nothing left here".
//
//   running ──gateway_event{init}──> grants the portal says exist (addresses learnt on the next flow)
//      │  ──gateway_event{authorize_flow}──> grant recorded ──accept_flow, client_grants──> tunnel
//      │  ──gateway_event{reject_access}──> grant removed  ──client_grants──> tunnel
//      │  ──gateway_event{access_authorization_expiry_updated}──> expiry moved ──client_grants──> tunnel
//      │  ──expiry_atom (one timer, at the earliest expiry, exact)──> expired grants removed ──client_grants──> tunnel
//      └─ a client left without grants ──client_unauthorized{reason}──> tunnel   (the goodbye's seam)
//
// Time is the wall clock (grants expire at unix times the portal chose), read through `wall_ms` so
// tests can drive it; the timer is a delayed message, so virtual time works too.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/gateway/grant_table.hpp"
#include "messages/node_messages.hpp"

namespace firebreak::gateway {

struct authorization_settings {
  caf::actor tunnel;
  std::function<std::int64_t()> wall_ms;  // unix milliseconds; the system clock when empty
  std::shared_ptr<spdlog::logger> log;
};

struct authorization_state {
  grant_table grants;
  authorization_settings settings;
  std::shared_ptr<spdlog::logger> log;
  std::uint64_t timer_generation = 0;
  std::optional<std::int64_t> timer_at;
  static inline const char* name = "authorization";
};

caf::behavior authorization_actor(caf::stateful_actor<authorization_state>* self, authorization_settings settings);

}  // namespace firebreak::gateway
