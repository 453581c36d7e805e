#include "actors/gateway/grant_table.hpp"

#include <algorithm>

namespace firebreak::gateway {

std::string_view to_string(verdict v) {
  switch (v) {
    case verdict::allow: return "allow";
    case verdict::spoofed_source: return "spoofed source";
    case verdict::not_granted: return "not granted";
    case verdict::expired: return "grant expired";
    case verdict::unknown_client: return "unknown client";
  }
  return "?";
}

namespace {

bool live(const granted_resource& g, std::int64_t now_ms) { return !g.expires_at_ms || now_ms < *g.expires_at_ms; }

bool permits(const granted_resource& g, const ip::packet_info& p) {
  if (g.filters.empty()) return true;
  for (const auto& f : g.filters) {
    switch (f.protocol) {
      case messages::filter_protocol::icmp:
        if (p.protocol == 1 || p.protocol == 58) return true;
        break;
      case messages::filter_protocol::tcp:
      case messages::filter_protocol::udp: {
        const std::uint8_t want = f.protocol == messages::filter_protocol::tcp ? 6 : 17;
        // A fragment without its transport header cannot show a port: refused.
        if (p.protocol != want || !p.dst_port) break;
        if (*p.dst_port >= f.port_range_start.value_or(0) && *p.dst_port <= f.port_range_end.value_or(65535))
          return true;
        break;
      }
    }
  }
  return false;
}

std::string parse_resource(const messages::resource_description& r, config::cidr& out) {
  auto c = config::cidr::parse(r.address);
  if (!c) return "resource " + r.id + " has the address \"" + r.address +
                  "\", which this gateway cannot enforce (only IP addresses and CIDR ranges)";
  out = c->masked();
  return {};
}

}  // namespace

std::string grant_table::set_addresses(const messages::flow_client& client) {
  auto v4 = config::cidr::parse(client.ipv4);
  auto v6 = config::cidr::parse(client.ipv6);
  if (!v4 || v4->v6 || v4->prefix != 32) return "client " + client.id + " has no usable IPv4 tunnel address";
  if (!v6 || !v6->v6 || v6->prefix != 128) return "client " + client.id + " has no usable IPv6 tunnel address";
  unindex(client.id);
  auto& c = clients_[client.id];
  c.client_id = client.id;
  c.ipv4 = v4;
  c.ipv6 = v6;
  index(c);
  return {};
}

std::string grant_table::grant(const messages::flow_client& client, const messages::resource_description& resource,
                               std::optional<std::int64_t> expires_at_ms) {
  if (auto why = set_addresses(client); !why.empty()) return why;
  return grant(client.id, resource, expires_at_ms);
}

std::string grant_table::grant(const std::string& client_id, const messages::resource_description& resource,
                               std::optional<std::int64_t> expires_at_ms) {
  granted_resource g;
  if (auto why = parse_resource(resource, g.prefix); !why.empty()) return why;
  g.id = resource.id;
  g.name = resource.name;
  g.filters = resource.filters;
  g.expires_at_ms = expires_at_ms;
  auto& c = clients_[client_id];
  c.client_id = client_id;
  c.resources[resource.id] = std::move(g);
  return {};
}

bool grant_table::revoke(const std::string& client_id, const std::string& resource_id) {
  auto it = clients_.find(client_id);
  if (it == clients_.end() || it->second.resources.erase(resource_id) == 0) return false;
  if (it->second.resources.empty()) forget(client_id);  // nothing left to know about this client
  return true;
}

bool grant_table::update_expiry(const std::string& client_id, const std::string& resource_id,
                                std::optional<std::int64_t> expires_at_ms) {
  auto it = clients_.find(client_id);
  if (it == clients_.end()) return false;
  auto r = it->second.resources.find(resource_id);
  if (r == it->second.resources.end()) return false;
  r->second.expires_at_ms = expires_at_ms;
  return true;
}

std::vector<std::pair<std::string, std::string>> grant_table::expire(std::int64_t now_ms) {
  std::vector<std::pair<std::string, std::string>> gone;
  std::vector<std::string> emptied;
  for (auto& [id, c] : clients_) {
    for (auto it = c.resources.begin(); it != c.resources.end();) {
      if (!live(it->second, now_ms)) {
        gone.emplace_back(id, it->first);
        it = c.resources.erase(it);
      } else {
        ++it;
      }
    }
    if (c.resources.empty()) emptied.push_back(id);
  }
  for (const auto& id : emptied) forget(id);
  return gone;
}

std::optional<std::int64_t> grant_table::next_expiry() const {
  std::optional<std::int64_t> next;
  for (const auto& [id, c] : clients_)
    for (const auto& [rid, g] : c.resources)
      if (g.expires_at_ms && (!next || *g.expires_at_ms < *next)) next = g.expires_at_ms;
  return next;
}

bool grant_table::has_grants(const std::string& client_id, std::int64_t now_ms) const {
  auto it = clients_.find(client_id);
  if (it == clients_.end()) return false;
  return std::any_of(it->second.resources.begin(), it->second.resources.end(),
                     [&](const auto& r) { return live(r.second, now_ms); });
}

const client_grants* grant_table::entry(const std::string& client_id) const {
  auto it = clients_.find(client_id);
  return it == clients_.end() ? nullptr : &it->second;
}

void grant_table::replace(client_grants grants) {
  if (grants.resources.empty() && !grants.ipv4 && !grants.ipv6) return forget(grants.client_id);
  unindex(grants.client_id);
  auto id = grants.client_id;
  auto& c = clients_[id] = std::move(grants);
  index(c);
}

void grant_table::forget(const std::string& client_id) {
  unindex(client_id);
  clients_.erase(client_id);
}

void grant_table::index(const client_grants& c) {
  if (c.ipv4) by_address_[{false, c.ipv4->addr}] = c.client_id;
  if (c.ipv6) by_address_[{true, c.ipv6->addr}] = c.client_id;
}

void grant_table::unindex(const std::string& client_id) {
  std::erase_if(by_address_, [&](const auto& e) { return e.second == client_id; });
}

verdict grant_table::from_client(const std::string& client_id, const ip::packet_info& p, std::int64_t now_ms) const {
  auto it = clients_.find(client_id);
  if (it == clients_.end()) return verdict::unknown_client;
  const auto& c = it->second;
  const auto& own = p.v6 ? c.ipv6 : c.ipv4;
  if (!own || own->addr != p.src) return verdict::spoofed_source;
  bool expired = false;
  for (const auto& [rid, g] : c.resources) {
    if (!g.prefix.contains(p.dst, p.v6) || !permits(g, p)) continue;
    if (live(g, now_ms)) return verdict::allow;
    expired = true;
  }
  return expired ? verdict::expired : verdict::not_granted;
}

verdict grant_table::to_client(const std::string& client_id, const ip::packet_info& p, std::int64_t now_ms) const {
  auto it = clients_.find(client_id);
  if (it == clients_.end()) return verdict::unknown_client;
  bool expired = false;
  for (const auto& [rid, g] : it->second.resources) {
    if (!g.prefix.contains(p.src, p.v6)) continue;
    if (live(g, now_ms)) return verdict::allow;
    expired = true;
  }
  return expired ? verdict::expired : verdict::not_granted;
}

std::optional<std::string> grant_table::client_at(bool v6, const std::array<std::uint8_t, 16>& addr) const {
  auto it = by_address_.find({v6, addr});
  if (it == by_address_.end()) return std::nullopt;
  return it->second;
}

}  // namespace firebreak::gateway
