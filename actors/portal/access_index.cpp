#include "actors/portal/access_index.hpp"

#include "actors/portal/policy.hpp"

namespace firebreak::portal {

messages::resource_description describe(const resource& r) {
  using messages::filter_protocol;
  messages::resource_description d;
  d.id = r.id;
  d.name = r.name;
  d.address = r.address;
  d.site_id = r.site_id;
  for (const auto& f : r.filters) {
    messages::filter out;
    out.protocol = f.protocol == "udp"    ? filter_protocol::udp
                   : f.protocol == "icmp" ? filter_protocol::icmp
                                          : filter_protocol::tcp;
    if (out.protocol != filter_protocol::icmp) {
      out.port_range_start = static_cast<std::uint16_t>(f.port_start);
      out.port_range_end = static_cast<std::uint16_t>(f.port_end);
    }
    d.filters.push_back(out);
  }
  return d;
}

access_index::access_index(const std::vector<policy>& policies, const std::vector<membership>& memberships,
                           const std::vector<resource>& resources, const std::map<std::string, client>& clients) {
  for (const auto& [id, c] : clients) clients_.emplace(id, client_entry{c.user_id, c.disabled});
  for (const auto& m : memberships) groups_of_user_[m.user_id].push_back(m.group_id);
  for (const auto& p : policies) policies_of_group_[p.group_id].push_back(p);
  for (const auto& r : resources) {
    auto json = messages::to_json(describe(r)).dump();
    const auto fingerprint = std::hash<std::string>{}(json);
    descriptions_.emplace(r.id, described{std::move(json), fingerprint});
  }
}

bool access_index::may_connect(const std::string& client_id) const {
  auto c = clients_.find(client_id);
  return c != clients_.end() && !c->second.disabled;
}

const std::string& access_index::description(const std::string& resource_id) const {
  static const std::string none;
  auto it = descriptions_.find(resource_id);
  return it == descriptions_.end() ? none : it->second.json;
}

access_change access_index::diff(const resource_view& before, const resource_view& after) const {
  access_change out;
  for (const auto& [id, fingerprint] : after)
    if (auto it = before.find(id); it == before.end() || it->second != fingerprint) out.upserted.push_back(description(id));
  for (const auto& [id, fingerprint] : before)
    if (!after.count(id)) out.deleted_ids.push_back(id);
  return out;
}

resource_view access_index::granted(const std::string& client_id, std::int64_t now_ms) const {
  resource_view out;
  auto c = clients_.find(client_id);
  if (c == clients_.end() || c->second.disabled) return out;
  auto groups = groups_of_user_.find(c->second.user_id);
  if (groups == groups_of_user_.end()) return out;
  for (const auto& group_id : groups->second) {
    auto policies = policies_of_group_.find(group_id);
    if (policies == policies_of_group_.end()) continue;
    for (const auto& p : policies->second) {
      if (!is_active(p, now_ms)) continue;
      if (auto d = descriptions_.find(p.resource_id); d != descriptions_.end())
        out.emplace(p.resource_id, d->second.fingerprint);  // a second grant of the same resource adds nothing
    }
  }
  return out;
}

}  // namespace firebreak::portal
