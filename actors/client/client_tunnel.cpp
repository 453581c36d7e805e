#include "actors/client/client_tunnel.hpp"

#include <variant>

#include <nlohmann/json.hpp>

#include "messages/portal_messages.hpp"

#include "actors/node/tunnel_common.hpp"
#include "messages/p2p_control.hpp"
#include "transport/ip/packet.hpp"

namespace firebreak::client {

using namespace messages;
using tunnel_self = caf::stateful_actor<tunnel_state>;
using json = nlohmann::json;

namespace {

wireguard::ip_prefix prefix_of(const config::cidr& c) { return {c.v6, c.addr, c.prefix}; }

bool prefix_in_use(const tunnel_state& st, const config::cidr& c, const std::string& except) {
  for (const auto& [id, r] : st.resources)
    if (id != except && r.prefix && *r.prefix == c) return true;
  return false;
}

void rebuild_routes(tunnel_state& st) {
  st.routes = {};
  for (const auto& [id, r] : st.resources)
    if (r.prefix) st.routes.insert(prefix_of(*r.prefix), id);
}

void write_tun(tunnel_self* self, std::span<const std::uint8_t> packet) {
  if (!self->state.settings.tun->write(packet)) ++self->state.tun_write_failed;
}

/// Tells the local application at once that its packet cannot be delivered.
void answer_unreachable(tunnel_self* self, const std::vector<std::uint8_t>& packet, ip::unreachable why) {
  auto& st = self->state;
  st.icmp.resize(1280);
  if (auto n = ip::build_unreachable(packet, why, st.icmp); n > 0) write_tun(self, {st.icmp.data(), n});
}

void add_resource(tunnel_self* self, const resource_description& d) {
  auto& st = self->state;
  auto& r = st.resources[d.id];
  const auto old_prefix = r.prefix;
  r.description = d;
  auto c = config::cidr::parse(d.address);
  r.prefix = c ? std::optional(c->masked()) : std::nullopt;
  if (!c) st.log->warn("resource {} ({}): \"{}\" is not an IP address or range; DNS resources are not routed yet", d.id,
                       d.name, d.address);
  if (old_prefix && old_prefix != r.prefix && !prefix_in_use(st, *old_prefix, d.id))
    st.links->remove_route(st.settings.tun->ifindex(), old_prefix->to_string());
  if (r.prefix && r.prefix != old_prefix) {
    if (auto why = st.links->add_route(st.settings.tun->ifindex(), r.prefix->to_string()); !why.empty())
      st.log->warn("resource {}: route {}: {}", d.id, r.prefix->to_string(), why);
  }
  rebuild_routes(st);
}

void remove_resource(tunnel_self* self, const std::string& id) {
  auto& st = self->state;
  auto it = st.resources.find(id);
  if (it == st.resources.end()) return;
  auto entry = std::move(it->second);
  st.resources.erase(it);
  if (entry.prefix && !prefix_in_use(st, *entry.prefix, id))
    st.links->remove_route(st.settings.tun->ifindex(), entry.prefix->to_string());
  rebuild_routes(st);
  for (const auto& p : entry.held) answer_unreachable(self, p, ip::unreachable::admin_prohibited);
  st.log->info("resource {} ({}) removed", id, entry.description.name);
  if (entry.gateway.empty()) return;
  for (const auto& [rid, r] : st.resources)
    if (r.gateway == entry.gateway) return;
  // The last resource reached through this gateway: the connection has no purpose left.
  st.log->info("[peer {}] no resource left through this gateway: closing its connection", entry.gateway);
  st.connections.close(entry.gateway, "site_removed", st.settings.goodbye ? close_mode::goodbye_and_flush : close_mode::silent);
}

bool connection_usable(const tunnel_state& st, const std::string& gateway) {
  auto s = st.connections.state_of(gateway);
  return s && *s != connection_state::closed && *s != connection_state::failed;
}

void arm_retry(tunnel_self* self) {
  auto& st = self->state;
  if (st.retry_armed) return;
  st.retry_armed = true;
  self->delayed_send(self, st.settings.flow_request_interval, flow_retry_atom::value);
}

/// Asks the portal for a flow to `r`, at most once per interval.
void request_flow(tunnel_self* self, resource_entry& r) {
  auto& st = self->state;
  const auto now = self->clock().now();
  if (r.last_request && now - *r.last_request < st.settings.flow_request_interval) {
    arm_retry(self);
    return;
  }
  r.last_request = now;
  if (!r.setup_since) r.setup_since = now;
  ++st.flows.requested;
  client_topic::create_flow req{r.description.id, st.connections.peers()};
  st.log->info("resource {} ({}): asking the portal for a flow", r.description.id, r.description.name);
  node::push_to_portal(self, st.portal, "create_flow", to_json(req));
  arm_retry(self);
}

void from_tun(tunnel_self* self, packet_batch& batch) {
  auto& st = self->state;
  std::map<std::string, packet_batch> out;
  for (auto& packet : batch.packets) {
    auto info = ip::parse(packet);
    if (!info) {
      ++st.unparsable;
      continue;
    }
    if (ip::multicast_destination(*info)) {
      ++st.multicast;
      continue;
    }
    if (messages::p2p::classify(packet).what != messages::p2p::kind::not_control) {
      ++st.control_from_tun;  // a local program must not be able to say goodbye for us
      continue;
    }
    auto id = st.routes.lookup(info->v6, info->dst.data());
    if (!id) {
      // Routed into the TUN (by someone's own route) but no resource here.
      ++st.no_resource;
      answer_unreachable(self, packet, ip::unreachable::host);
      continue;
    }
    auto& r = st.resources[*id];
    if (!r.gateway.empty() && connection_usable(st, r.gateway)) {
      auto& b = out[r.gateway];
      b.peer_id = r.gateway;
      b.packets.push_back(std::move(packet));
      continue;
    }
    if (r.held.size() >= st.settings.max_held_per_resource) {
      r.held.pop_front();
      ++st.held_drops;
    }
    r.held.push_back(std::move(packet));
    request_flow(self, r);
  }
  for (auto& [gateway, b] : out) {
    st.to_gateways += b.packets.size();
    st.bytes_to_gateways += node::bytes_of(b);
    st.connections.send(std::move(b));
  }
}

void from_gateway(tunnel_self* self, packet_batch& batch) {
  auto& st = self->state;
  for (const auto& packet : batch.packets) {
    auto info = ip::parse(packet);
    if (!info) {
      ++st.unparsable;
      continue;
    }
    // A gateway speaks for the resources whose flows go through it, and no others.
    auto id = st.routes.lookup(info->v6, info->src.data());
    if (!id || st.resources[*id].gateway != batch.peer_id) {
      ++st.spoofed;
      continue;
    }
    ++st.from_gateways;
    st.bytes_from_gateways += packet.size();
    write_tun(self, packet);
  }
}

/// Flows through `gateway` waiting for its connection: set up, if the connection carries packets.
void observe_setup(tunnel_self* self, const std::string& gateway) {
  auto& st = self->state;
  const auto state = st.connections.state_of(gateway);
  if (!state || (*state != connection_state::connected && *state != connection_state::idle)) return;
  const auto now = self->clock().now();
  for (auto& [id, r] : st.resources)
    if (r.gateway == gateway && r.setup_since) {
      st.flows.setup.observe(now - *r.setup_since);
      r.setup_since.reset();
    }
}

void on_flow_created(tunnel_self* self, const client_topic::flow_created& e) {
  auto& st = self->state;
  auto it = st.resources.find(e.resource_id);
  if (it == st.resources.end()) {
    st.log->warn("flow_created for unknown resource {}: ignored", e.resource_id);
    return;
  }
  auto& r = it->second;
  r.gateway = e.gateway_id;
  r.expires_at = e.expires_at;
  ++st.flows.granted;
  auto spec = node::spec_of(e);
  // The same keys as the live connection: this flow joins it. New keys: the gateway restarted (or
  // this connection is over), so a new connection replaces it.
  if (st.connections.joins_existing(spec)) {
    st.log->info("resource {} ({}): flow through gateway {}, on its existing connection", r.description.id,
                 r.description.name, e.gateway_id);
  } else {
    st.connections.start(std::move(spec));
    st.log->info("resource {} ({}): flow through gateway {}, connecting", r.description.id, r.description.name,
                 e.gateway_id);
  }
  observe_setup(self, e.gateway_id);
  if (!r.held.empty()) {
    packet_batch b{e.gateway_id, {r.held.begin(), r.held.end()}};
    r.held.clear();
    st.to_gateways += b.packets.size();
    st.bytes_to_gateways += node::bytes_of(b);
    st.connections.send(std::move(b));
  }
}

/// What the data plane may do without asking this actor: the routes, each with its flow's gateway and,
/// while that connection is up, its fast_link.
class client_policy final : public node::data_plane::policy {
 public:
  explicit client_policy(const tunnel_state& st) {
    for (const auto& [id, r] : st.resources) {
      if (!r.prefix) continue;
      routes_.insert(prefix_of(*r.prefix), targets_.size());
      targets_.push_back({r.gateway, r.gateway.empty() ? nullptr : st.connections.fast_link_of(r.gateway)});
    }
  }
  connection::fast_link* outbound(const ip::packet_info& p, std::int64_t) const override {
    auto i = routes_.lookup(p.v6, p.dst.data());
    return i ? targets_[*i].link.get() : nullptr;
  }
  bool inbound(const std::string& peer, const ip::packet_info& p, std::int64_t) const override {
    // A gateway speaks for the resources whose flows go through it, and no others.
    auto i = routes_.lookup(p.v6, p.src.data());
    return i && !targets_[*i].gateway.empty() && targets_[*i].gateway == peer;
  }

 private:
  struct target {
    std::string gateway;
    std::shared_ptr<connection::fast_link> link;
  };
  wireguard::allowed_ips<std::size_t> routes_;
  std::vector<target> targets_;
};

void publish(tunnel_self* self) {
  auto& st = self->state;
  if (st.settings.plane) st.settings.plane->publish(std::make_shared<const client_policy>(st));
}

json status_head(const tunnel_state& st) {
  json resources = json::array();
  for (const auto& [id, r] : st.resources)
    resources.push_back({{"id", id},
                         {"name", r.description.name},
                         {"address", r.description.address},
                         {"site", r.description.site_id},
                         {"gateway", r.gateway},
                         {"expires_at_unix_ms", r.gateway.empty() || !r.expires_at ? json(nullptr)
                                                                                 : json(*r.expires_at * 1000)},
                         {"held_packets", r.held.size()}});
  const auto fast = st.settings.plane ? st.settings.plane->counters() : node::data_plane::totals{};
  return {{"role", "client"},
          {"interface", st.settings.tun->name()},
          {"ipv4", st.interface.ipv4},
          {"ipv6", st.interface.ipv6},
          {"resources", resources},
          {"packets", {{"to_gateways", st.to_gateways + fast.out_packets}, {"from_gateways", st.from_gateways + fast.in_packets}}},
          {"bytes", {{"to_gateways", st.bytes_to_gateways + fast.out_bytes},
                     {"from_gateways", st.bytes_from_gateways + fast.in_bytes}}},
          {"goodbyes", st.goodbyes.to_json()},
          {"flows", st.flows.to_json()},
          {"fast_path", st.settings.plane ? st.settings.plane->to_json() : json(nullptr)},
          {"dropped",
           {{"held_overflow", st.held_drops},
            {"multicast", st.multicast},
            {"control_from_tun", st.control_from_tun},
            {"no_resource", st.no_resource},
            {"spoofed_source", st.spoofed},
            {"unparsable", st.unparsable},
            {"tun_write_failed", st.tun_write_failed + fast.tun_write_failed}}}};
}

}  // namespace

caf::behavior client_tunnel(tunnel_self* self, tunnel_settings settings) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.log = st.settings.log ? st.settings.log : spdlog::default_logger();
  st.links = std::make_unique<tun::link_config>();
  st.connections.init(self, st.settings.connection, st.settings.ice);
  st.connections.set_data_plane(st.settings.plane);

  return {
      [=](const caf::actor& portal) { self->state.portal = portal; },
      [=](const client_event& in) {
        node::trace_event(self, in.event);
        auto& s = self->state;
        std::visit(
            [&](const auto& e) {
              using T = std::decay_t<decltype(e)>;
              if constexpr (std::is_same_v<T, client_topic::init>) {
                s.interface = e.interface;
                node::add_tunnel_addresses(*s.links, s.settings.tun->ifindex(), e.interface, *s.log);
                s.connections.set_relays(e.relays);
                std::set<std::string> fresh;
                for (const auto& r : e.resources) fresh.insert(r.id);
                std::vector<std::string> gone;
                for (const auto& [id, r] : s.resources)
                  if (!fresh.count(id)) gone.push_back(id);
                for (const auto& id : gone) remove_resource(self, id);
                for (const auto& r : e.resources) add_resource(self, r);
                s.log->info("joined: {} resource(s), tunnel address {} / {}", e.resources.size(), e.interface.ipv4,
                            e.interface.ipv6);
              } else if constexpr (std::is_same_v<T, client_topic::resource_created_or_updated>) {
                add_resource(self, e.resource);
              } else if constexpr (std::is_same_v<T, client_topic::resource_deleted>) {
                remove_resource(self, e.id);
              } else if constexpr (std::is_same_v<T, client_topic::flow_created>) {
                on_flow_created(self, e);
              } else if constexpr (std::is_same_v<T, client_topic::flow_creation_failed>) {
                auto it = s.resources.find(e.resource_id);
                s.log->warn("resource {}: the portal refused a flow: {}", e.resource_id, to_string(e.reason));
                s.flows.refuse(std::string(to_string(e.reason)));
                if (it != s.resources.end()) {
                  it->second.setup_since.reset();
                  for (const auto& p : it->second.held) answer_unreachable(self, p, ip::unreachable::host);
                  it->second.held.clear();
                }
              } else if constexpr (std::is_same_v<T, client_topic::ice_candidates>) {
                s.connections.candidates(e.gateway_id, e.candidates, false);
              } else if constexpr (std::is_same_v<T, client_topic::invalidate_ice_candidates>) {
                s.connections.candidates(e.gateway_id, e.candidates, true);
              } else if constexpr (std::is_same_v<T, relays_presence>) {
                s.connections.update_relays(e);
              }
            },
            in.event);
        publish(self);
      },
      [=](packet_batch& batch) {
        auto& s = self->state;
        if (batch.peer_id.empty()) {
          from_tun(self, batch);
          node::release_batch(s.settings.reader_credit);
        } else {
          from_gateway(self, batch);
        }
      },
      [=](flow_retry_atom) {
        trace::trace_in(self, "flow_retry");
        auto& s = self->state;
        s.retry_armed = false;
        for (auto& [id, r] : s.resources)
          if (!r.held.empty() && (r.gateway.empty() || !connection_usable(s, r.gateway))) request_flow(self, r);
      },
      [=](const local_candidates& lc) {
        trace::trace_in(self, "local_candidates", {{}, lc.peer_id, {}, lc.peer_id},
                        std::to_string(lc.candidates.size()) + " candidate(s)");
        node::push_to_portal(self, self->state.portal, "broadcast_ice_candidates",
                             to_json(client_topic::broadcast_ice_candidates{{lc.peer_id}, lc.candidates}));
      },
      [=](const connection_event& e) {
        trace::trace_in(self, "connection_event", {{}, e.peer_id, {}, e.peer_id},
                        std::string(to_string(e.state)) + (e.reason.empty() ? "" : ": " + e.reason));
        auto& s = self->state;
        s.goodbyes.count(e);
        if (!s.connections.on_event(e, caf::actor_cast<caf::actor_addr>(self->current_sender()))) {
          if (e.state == connection_state::connected) {
            s.log->info("[peer {}] connected ({})", e.peer_id, e.relayed ? "relayed" : "direct");
            observe_setup(self, e.peer_id);
          }
          publish(self);
          return;
        }
        s.log->info("[peer {}] connection {}{}: its resources ask for a flow again on their next packet", e.peer_id,
                    to_string(e.state), e.reason.empty() ? "" : " (" + e.reason + ")");
        for (auto& [id, r] : s.resources)
          if (r.gateway == e.peer_id) {
            r.gateway.clear();
            // The flow ended: asking again at once is not a flood (it is bounded by connections
            // closing), and waiting out the request interval would cost a restarting gateway's
            // clients up to 2 s.
            r.last_request.reset();
            // Its next flow is set up from its next request, not from this one's.
            r.setup_since.reset();
          }
        publish(self);
      },
      [=](const handshake_done& h) { self->state.flows.handshakes += h.count; },
      [=](node_status_atom) -> caf::result<std::string> {
        return node::answer_status(self, self->state.connections, status_head(self->state));
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

}  // namespace firebreak::client
