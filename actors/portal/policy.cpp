#include "actors/portal/policy.hpp"

#include <algorithm>
#include <unordered_map>

namespace firebreak::portal {

namespace {

bool belongs_to(const std::vector<membership>& memberships, const std::string& user_id,
                const std::string& group_id) {
  return std::any_of(memberships.begin(), memberships.end(), [&](const membership& m) {
    return m.user_id == user_id && m.group_id == group_id;
  });
}

bool covers(const policy& p, const client& c, const resource& r, const std::vector<membership>& memberships) {
  return p.resource_id == r.id && belongs_to(memberships, c.user_id, p.group_id);
}

/// True when `a` grants for longer than `b` (no expiry beats any expiry); ties go to the smaller id.
bool lasts_longer(const policy& a, const policy& b) {
  if (a.expires_at_ms != b.expires_at_ms) {
    if (!a.expires_at_ms) return true;
    if (!b.expires_at_ms) return false;
    return *a.expires_at_ms > *b.expires_at_ms;
  }
  return a.id < b.id;
}

template <class T>
std::unordered_map<std::string, const T*> by_id(const std::vector<T>& items) {
  std::unordered_map<std::string, const T*> out;
  out.reserve(items.size());
  for (const auto& item : items) out.emplace(item.id, &item);
  return out;
}

}  // namespace

bool is_active(const policy& p, std::int64_t now) { return !p.expires_at_ms || *p.expires_at_ms > now; }

decision authorize(const client& c, const resource& r, const std::vector<policy>& policies,
                   const std::vector<membership>& memberships, std::int64_t now) {
  if (c.disabled) return {};
  const policy* best = nullptr;
  for (const auto& p : policies) {
    if (!is_active(p, now) || !covers(p, c, r, memberships)) continue;
    if (!best || lasts_longer(p, *best)) best = &p;
  }
  if (!best) return {};
  return {true, best->id, best->expires_at_ms};
}

std::vector<flow_change> reevaluate(const std::vector<flow>& live, const access_snapshot& after,
                                    std::int64_t now) {
  const auto clients = by_id(after.clients);
  const auto gateways = by_id(after.gateways);
  const auto resources = by_id(after.resources);

  std::vector<flow_change> changes;
  auto revoke = [&](const flow& f, revoke_reason why) {
    changes.push_back({f, flow_change_kind::revoke, why, std::nullopt, {}});
  };

  for (const auto& f : live) {
    if (!gateways.contains(f.gateway_id)) { revoke(f, revoke_reason::gateway_deleted); continue; }
    auto c = clients.find(f.client_id);
    if (c == clients.end()) { revoke(f, revoke_reason::client_deleted); continue; }
    auto r = resources.find(f.resource_id);
    if (r == resources.end()) { revoke(f, revoke_reason::resource_deleted); continue; }
    if (c->second->disabled) { revoke(f, revoke_reason::client_disabled); continue; }

    const auto d = authorize(*c->second, *r->second, after.policies, after.memberships, now);
    if (!d.allowed) {
      const bool only_expired_ones_left =
          std::any_of(after.policies.begin(), after.policies.end(), [&](const policy& p) {
            return covers(p, *c->second, *r->second, after.memberships);
          });
      revoke(f, only_expired_ones_left ? revoke_reason::expired : revoke_reason::access_removed);
      continue;
    }
    if (d.expires_at_ms != f.expires_at_ms)
      changes.push_back({f, flow_change_kind::expiry_updated, revoke_reason::none, d.expires_at_ms, d.policy_id});
  }
  return changes;
}

std::optional<std::int64_t> next_expiry(const std::vector<policy>& policies, std::int64_t now) {
  std::optional<std::int64_t> earliest;
  for (const auto& p : policies)
    if (p.expires_at_ms && *p.expires_at_ms > now && (!earliest || *p.expires_at_ms < *earliest))
      earliest = p.expires_at_ms;
  return earliest;
}

std::string_view to_string(flow_change_kind kind) {
  switch (kind) {
    case flow_change_kind::revoke: return "revoke";
    case flow_change_kind::expiry_updated: return "expiry_updated";
  }
  return "unknown";
}

std::string_view to_string(revoke_reason reason) {
  switch (reason) {
    case revoke_reason::none: return "none";
    case revoke_reason::gateway_deleted: return "gateway_deleted";
    case revoke_reason::client_deleted: return "client_deleted";
    case revoke_reason::resource_deleted: return "resource_deleted";
    case revoke_reason::client_disabled: return "client_disabled";
    case revoke_reason::expired: return "expired";
    case revoke_reason::access_removed: return "access_removed";
    case revoke_reason::moved: return "moved";
  }
  return "unknown";
}

}  // namespace firebreak::portal
