#include "actors/node/tunnel_common.hpp"

#include "messages/portal_messages.hpp"

namespace firebreak::node {

using namespace messages;

connection_spec spec_of(const client_topic::flow_created& flow) {
  connection_spec spec;
  spec.peer_id = flow.gateway_id;
  spec.controlling = true;
  spec.remote_public_key = flow.gateway_public_key;
  spec.preshared_key = flow.preshared_key;
  spec.local_ice_ufrag = flow.client_ice_credentials.username;
  spec.local_ice_password = flow.client_ice_credentials.password;
  spec.remote_ice_ufrag = flow.gateway_ice_credentials.username;
  spec.remote_ice_password = flow.gateway_ice_credentials.password;
  return spec;
}

connection_spec spec_of(const gateway_topic::authorize_flow& flow) {
  connection_spec spec;
  spec.peer_id = flow.client.id;
  spec.controlling = false;
  spec.remote_public_key = flow.client.public_key;
  spec.preshared_key = flow.client.preshared_key;
  spec.local_ice_ufrag = flow.gateway_ice_credentials.username;
  spec.local_ice_password = flow.gateway_ice_credentials.password;
  spec.remote_ice_ufrag = flow.client_ice_credentials.username;
  spec.remote_ice_password = flow.client_ice_credentials.password;
  return spec;
}

void push_to_portal(caf::event_based_actor* self, const caf::actor& portal, std::string_view event,
                    const nlohmann::json& payload) {
  if (portal) self->send(portal, push{std::string(event), payload.dump()});
}

void add_tunnel_addresses(tun::link_config& links, int ifindex, const tunnel_interface& iface, spdlog::logger& log) {
  for (const auto& a : {iface.ipv4 + "/32", iface.ipv6 + "/128"})
    if (auto why = links.add_address(ifindex, a); !why.empty()) log.warn("tunnel address {}: {}", a, why);
}

void goodbye_counters::count(const connection_event& e) {
  if (e.state != connection_state::closed) return;
  if (e.by == closed_by::remote)
    ++received;
  else if (e.by == closed_by::local && e.mode == close_mode::goodbye_and_flush)
    ++sent[e.reason];
}

nlohmann::json goodbye_counters::to_json() const {
  return {{"sent", sent}, {"received", received}};
}

caf::result<std::string> answer_status(caf::event_based_actor* self, peer_connections& connections,
                                       nlohmann::json head) {
  auto rp = self->make_response_promise<std::string>();
  connections.status([rp, head = std::move(head)](nlohmann::json rows) mutable {
    head["connections"] = std::move(rows);
    rp.deliver(head.dump());
  });
  return rp;
}

}  // namespace firebreak::node
