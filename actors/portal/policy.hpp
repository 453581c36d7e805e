// Policy evaluation: who may reach what, until when, and what changes for live flows when the
// answer changes. Pure: it reads only the data passed in and the `now` it is given (unix ms).
//
// A policy *covers* a flow when its resource is the flow's resource and the flow's client belongs to a
// user in the policy's group. It is *active* at `now` when it has no expiry or expires after `now`
// (an expiry is exclusive: at `expires_at_ms` itself access is over).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "actors/portal/model.hpp"

namespace firebreak::portal {

/// The answer to "may this client reach this resource now?".
struct decision {
  bool allowed = false;
  std::string policy_id;                     // the covering policy that lasts longest; empty when refused
  std::optional<std::int64_t> expires_at_ms;  // when access ends: the latest expiry among the covering
                                              // active policies; nullopt if one of them never expires
  friend bool operator==(const decision&, const decision&) = default;
};

/// Whether `p` still grants access at `now`.
bool is_active(const policy& p, std::int64_t now);

/// A disabled client is never allowed. Otherwise allowed when an active policy covers the pair;
/// ties between policies that last equally long go to the smallest policy id, so the answer is stable.
decision authorize(const client& c, const resource& r, const std::vector<policy>& policies,
                   const std::vector<membership>& memberships, std::int64_t now);

/// Everything `reevaluate` looks at, as it is after the change.
struct access_snapshot {
  std::vector<client> clients;
  std::vector<gateway> gateways;
  std::vector<resource> resources;
  std::vector<policy> policies;
  std::vector<membership> memberships;
};

enum class flow_change_kind {
  revoke,          // nothing grants the flow any more: the gateway drops it (reject_access)
  expiry_updated,  // still granted, until another moment (access_authorization_expiry_updated)
};

/// Why a flow is revoked, most decisive first: the things it names are gone, or access ended.
enum class revoke_reason {
  none,             // not a revoke
  gateway_deleted,
  client_deleted,
  resource_deleted,
  client_disabled,
  expired,          // covering policies remain, but every one of them has expired
  access_removed,   // no policy covers the flow any more (policy, group or membership deleted)
  moved,            // the client was granted the resource through another gateway of its site
};

struct flow_change {
  portal::flow flow;  // the flow as it was
  flow_change_kind kind = flow_change_kind::revoke;
  revoke_reason reason = revoke_reason::none;
  std::optional<std::int64_t> new_expires_at_ms;  // expiry_updated only; nullopt means "never expires"
  std::string new_policy_id;                      // expiry_updated only: the policy that covers it now
  friend bool operator==(const flow_change&, const flow_change&) = default;
};

/// What the portal must tell gateways about `live` flows after a change: a revoke for each flow nothing
/// grants any more, an expiry update for each flow still granted but until another moment. Flows whose
/// grant is unchanged are left out. Order follows `live`.
std::vector<flow_change> reevaluate(const std::vector<flow>& live, const access_snapshot& after,
                                    std::int64_t now);

/// The earliest policy expiry strictly after `now`: when the portal should next call `reevaluate`.
std::optional<std::int64_t> next_expiry(const std::vector<policy>& policies, std::int64_t now);

std::string_view to_string(flow_change_kind kind);
std::string_view to_string(revoke_reason reason);

}  // namespace firebreak::portal
