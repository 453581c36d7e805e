#include "actors/gateway/gateway_tunnel.hpp"

#include <chrono>
#include <map>
#include <variant>

#include <nlohmann/json.hpp>

#include "messages/portal_messages.hpp"

#include "actors/node/tunnel_common.hpp"
#include "messages/p2p_control.hpp"
#include "transport/ip/packet.hpp"

namespace firebreak::gateway {

using namespace messages;
using tunnel_self = caf::stateful_actor<tunnel_state>;
using json = nlohmann::json;

namespace {

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// Where packets from the clients go: the kernel, which forwards them to the resources.
void to_tun(tunnel_self* self, const std::vector<std::uint8_t>& packet) {
  auto& st = self->state;
  if (st.settings.tun->write(packet)) {
    ++st.forwarded_in;
    st.bytes_in += packet.size();
  } else {
    ++st.drops.tun_write_failed;
  }
}

void count(drop_counters& d, verdict v) {
  switch (v) {
    case verdict::spoofed_source: ++d.spoofed; break;
    case verdict::not_granted: ++d.not_granted; break;
    case verdict::expired: ++d.expired; break;
    case verdict::unknown_client: ++d.unknown_client; break;
    case verdict::allow: break;
  }
}

void from_client(tunnel_self* self, packet_batch& batch) {
  auto& st = self->state;
  const auto now = wall_ms();
  packet_batch answers{batch.peer_id, {}};
  for (const auto& packet : batch.packets) {
    auto info = ip::parse(packet);
    if (!info) {
      ++st.drops.unparsable;
      continue;
    }
    const auto v = st.grants.from_client(batch.peer_id, *info, now);
    if (v == verdict::allow) {
      to_tun(self, packet);
      continue;
    }
    count(st.drops, v);
    if (v == verdict::spoofed_source || v == verdict::unknown_client) continue;
    // Refused: say so, as a router that filters does, so the client's application fails at once.
    st.icmp.resize(1280);
    if (auto n = ip::build_unreachable(packet, ip::unreachable::admin_prohibited, st.icmp); n > 0) {
      answers.packets.emplace_back(st.icmp.begin(), st.icmp.begin() + static_cast<std::ptrdiff_t>(n));
      ++st.drops.icmp_sent;
    }
  }
  if (!answers.packets.empty()) st.connections.send(std::move(answers));
}

void from_tun(tunnel_self* self, packet_batch& batch) {
  auto& st = self->state;
  const auto now = wall_ms();
  std::map<std::string, packet_batch> out;
  for (auto& packet : batch.packets) {
    auto info = ip::parse(packet);
    if (!info) {
      ++st.drops.unparsable;
      continue;
    }
    if (ip::multicast_destination(*info)) {
      ++st.drops.multicast;
      continue;
    }
    if (messages::p2p::classify(packet).what != messages::p2p::kind::not_control) {
      ++st.drops.control_from_tun;  // only a connection may say goodbye, inside its session
      continue;
    }
    auto client = st.grants.client_at(info->v6, info->dst);
    if (!client) {
      ++st.drops.unknown_client;
      continue;
    }
    const auto v = st.grants.to_client(*client, *info, now);
    if (v != verdict::allow) {
      count(st.drops, v);
      continue;
    }
    auto& b = out[*client];
    b.peer_id = *client;
    b.packets.push_back(std::move(packet));
  }
  for (auto& [client, b] : out) {
    const auto n = b.packets.size();
    const auto bytes = node::bytes_of(b);
    if (st.connections.send(std::move(b))) {
      st.forwarded_out += n;
      st.bytes_out += bytes;
    } else
      st.drops.no_connection += n;
  }
}

void set_interface(tunnel_self* self, const tunnel_interface& iface) {
  auto& st = self->state;
  st.interface = iface;
  const int ifindex = st.settings.tun->ifindex();
  node::add_tunnel_addresses(*st.links, ifindex, iface, *st.log);
  // Answers to clients come back through the TUN: the clients' ranges are routed to it.
  for (const auto& r : {"100.64.0.0/10", "fd00:2021:1111::/48"})
    if (auto why = st.links->add_route(ifindex, r); !why.empty()) st.log->warn("route {}: {}", r, why);
}

/// The client's accepted flow is set up once its connection carries packets.
void observe_setup(tunnel_self* self, const std::string& client) {
  auto& st = self->state;
  auto it = st.setup_since.find(client);
  if (it == st.setup_since.end()) return;
  const auto state = st.connections.state_of(client);
  if (!state || (*state != connection_state::connected && *state != connection_state::idle)) return;
  st.flows.setup.observe(self->clock().now() - it->second);
  st.setup_since.erase(it);
}

/// What the data plane may do without asking this actor: a copy of the grants, and the fast_link of each
/// client whose connection is up.
class gateway_policy final : public node::data_plane::policy {
 public:
  explicit gateway_policy(const tunnel_state& st) : grants_(st.grants) {
    for (const auto& peer : st.connections.peers())
      if (auto link = st.connections.fast_link_of(peer)) links_.emplace(peer, std::move(link));
  }
  connection::fast_link* outbound(const ip::packet_info& p, std::int64_t now_ms) const override {
    auto client = grants_.client_at(p.v6, p.dst);
    if (!client || grants_.to_client(*client, p, now_ms) != verdict::allow) return nullptr;
    auto it = links_.find(*client);
    return it == links_.end() ? nullptr : it->second.get();
  }
  bool inbound(const std::string& peer, const ip::packet_info& p, std::int64_t now_ms) const override {
    return grants_.from_client(peer, p, now_ms) == verdict::allow;
  }

 private:
  grant_table grants_;
  std::map<std::string, std::shared_ptr<connection::fast_link>> links_;
};

void publish(tunnel_self* self) {
  auto& st = self->state;
  if (st.settings.plane) st.settings.plane->publish(std::make_shared<const gateway_policy>(st));
}

json grants_json(const grant_table& grants) {
  json out = json::array();
  for (const auto& [id, c] : grants.clients()) {
    json resources = json::array();
    for (const auto& [rid, g] : c.resources)
      resources.push_back({{"id", rid},
                           {"name", g.name},
                           {"address", g.prefix.to_string()},
                           {"expires_at_unix_ms", g.expires_at_ms ? json(*g.expires_at_ms) : json(nullptr)}});
    out.push_back({{"client", id},
                   {"ipv4", c.ipv4 ? c.ipv4->to_string() : ""},
                   {"ipv6", c.ipv6 ? c.ipv6->to_string() : ""},
                   {"resources", resources}});
  }
  return out;
}

}  // namespace

caf::behavior gateway_tunnel(tunnel_self* self, tunnel_settings settings) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.log = st.settings.log ? st.settings.log : spdlog::default_logger();
  st.links = std::make_unique<tun::link_config>();
  st.connections.init(self, st.settings.connection, st.settings.ice);
  st.connections.set_data_plane(st.settings.plane);

  return {
      [=](const caf::actor& portal) { self->state.portal = portal; },
      [=](const gateway_event& in) {
        node::trace_event(self, in.event);
        auto& s = self->state;
        std::visit(
            [&](const auto& e) {
              using T = std::decay_t<decltype(e)>;
              if constexpr (std::is_same_v<T, gateway_topic::init>) {
                set_interface(self, e.interface);
                s.connections.set_relays(e.relays);
              } else if constexpr (std::is_same_v<T, gateway_topic::ice_candidates>) {
                s.connections.candidates(e.client_id, e.candidates, false);
              } else if constexpr (std::is_same_v<T, gateway_topic::invalidate_ice_candidates>) {
                s.connections.candidates(e.client_id, e.candidates, true);
              } else if constexpr (std::is_same_v<T, relays_presence>) {
                s.connections.update_relays(e);
              }
            },
            in.event);
      },
      [=](const accept_flow& a) {
        auto& s = self->state;
        const auto& f = a.flow;
        trace::trace_in(self, "accept_flow", {f.client.id, {}, f.resource.id, f.client.id});
        ++s.flows.requested;
        if (a.granted)
          ++s.flows.granted;
        else
          s.flows.refuse("not_granted");
        auto spec = node::spec_of(f);
        // One connection per client session, whatever the number of its flows: a flow with the keys
        // of the live connection joins it; new keys mean the client restarted, so it is replaced.
        if (s.connections.joins_existing(spec)) {
          s.log->info("[peer {}] resource {} joins the existing connection", f.client.id, f.resource.id);
        } else {
          const bool replacing = static_cast<bool>(s.connections.find(f.client.id));
          s.connections.start(std::move(spec));
          s.log->info("[peer {}] {} a connection for resource {}", f.client.id, replacing ? "replacing" : "accepting",
                      f.resource.id);
        }
        node::push_to_portal(self, s.portal, "flow_authorized", to_json(gateway_topic::flow_authorized{f.ref}));
        if (a.granted) {
          s.setup_since.try_emplace(f.client.id, self->clock().now());
          observe_setup(self, f.client.id);
        }
        publish(self);  // a replaced connection's link leaves the snapshot at once
      },
      [=](client_grants& g) {
        trace::trace_in(self, "client_grants", {g.client_id, {}, {}, {}}, std::to_string(g.resources.size()) + " grant(s)");
        self->state.grants.replace(std::move(g));
        publish(self);
      },
      [=](const client_unauthorized& u) {
        trace::trace_in(self, "client_unauthorized", {u.client_id, {}, {}, u.client_id}, u.reason);
        auto& s = self->state;
        s.setup_since.erase(u.client_id);  // a flow granted again later is timed from then
        if (!s.connections.find(u.client_id)) return;
        // Without goodbyes the connection still goes, silently: the client's data then gets no answer,
        // its own timeout ends the connection and its next packet asks the portal again. Keeping the
        // connection and refusing its packets would cut the client off for as long as it lasted.
        if (!s.settings.goodbye) {
          s.log->info("[peer {}] no grant left ({}): closing silently (goodbyes are off)", u.client_id, u.reason);
          s.connections.close(u.client_id, u.reason, close_mode::silent);
          return;
        }
        s.log->info("[peer {}] no grant left ({}): goodbye", u.client_id, u.reason);
        s.connections.close(u.client_id, u.reason, close_mode::goodbye_and_flush);
      },
      [=](packet_batch& batch) {
        auto& s = self->state;
        if (batch.peer_id.empty()) {
          from_tun(self, batch);
          node::release_batch(s.settings.reader_credit);
        } else {
          from_client(self, batch);
        }
      },
      [=](const local_candidates& lc) {
        trace::trace_in(self, "local_candidates", {lc.peer_id, {}, {}, lc.peer_id},
                        std::to_string(lc.candidates.size()) + " candidate(s)");
        node::push_to_portal(self, self->state.portal, "broadcast_ice_candidates",
                             to_json(gateway_topic::broadcast_ice_candidates{{lc.peer_id}, lc.candidates}));
      },
      [=](const connection_event& e) {
        trace::trace_in(self, "connection_event", {e.peer_id, {}, {}, e.peer_id},
                        std::string(to_string(e.state)) + (e.reason.empty() ? "" : ": " + e.reason));
        auto& s = self->state;
        s.goodbyes.count(e);
        if (s.connections.on_event(e, caf::actor_cast<caf::actor_addr>(self->current_sender()))) {
          s.log->info("[peer {}] connection {}{}", e.peer_id, to_string(e.state), e.reason.empty() ? "" : ": " + e.reason);
          s.setup_since.erase(e.peer_id);
        }
        if (e.state == connection_state::connected) observe_setup(self, e.peer_id);
        publish(self);
      },
      [=](const handshake_done& h) { self->state.flows.handshakes += h.count; },
      [=](node_status_atom) -> caf::result<std::string> {
        auto& s = self->state;
        const auto fast = s.settings.plane ? s.settings.plane->counters() : node::data_plane::totals{};
        json head = {{"role", "gateway"},
                     {"interface", s.settings.tun->name()},
                     {"ipv4", s.interface.ipv4},
                     {"ipv6", s.interface.ipv6},
                     {"grants", grants_json(s.grants)},
                     {"packets", {{"to_resources", s.forwarded_in + fast.in_packets},
                                  {"to_clients", s.forwarded_out + fast.out_packets}}},
                     {"bytes", {{"to_resources", s.bytes_in + fast.in_bytes}, {"to_clients", s.bytes_out + fast.out_bytes}}},
                     {"dropped",
                      {{"spoofed_source", s.drops.spoofed},
                       {"not_granted", s.drops.not_granted},
                       {"grant_expired", s.drops.expired},
                       {"unknown_client", s.drops.unknown_client},
                       {"multicast", s.drops.multicast},
                       {"control_from_tun", s.drops.control_from_tun},
                       {"unparsable", s.drops.unparsable},
                       {"no_connection", s.drops.no_connection},
                       {"tun_write_failed", s.drops.tun_write_failed + fast.tun_write_failed}}},
                     {"icmp_prohibited_sent", s.drops.icmp_sent},
                     {"goodbyes", s.goodbyes.to_json()},
                     {"fast_path", s.settings.plane ? s.settings.plane->to_json() : json(nullptr)},
                     {"flows", s.flows.to_json()}};
        return node::answer_status(self, s.connections, std::move(head));
      },
      [=](shutdown_atom, const std::string& reason) {
        trace::trace_in(self, "shutdown", {}, reason);
        auto& s = self->state;
        if (s.settings.plane) s.settings.plane->publish(nullptr);
        s.connections.close_all(reason, s.settings.goodbye ? close_mode::goodbye_and_flush : close_mode::silent);
        self->quit();
      },
  };
}

}  // namespace firebreak::gateway
