// What the client's and the gateway's tunnel actors do alike: turn a flow into a connection spec, tell
// the portal something, put the node's tunnel addresses on its TUN, release a TUN reader's batch, and
// answer the status command with their own facts plus every connection's.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string_view>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/node/peer_connections.hpp"
#include "actors/trace/trace_point.hpp"
#include "messages/connection_messages.hpp"
#include "messages/portal_events.hpp"
#include "transport/tun/link_config_linux.hpp"

namespace firebreak::node {

/// The client's side of a flow: it controls ICE and initiates WireGuard.
messages::connection_spec spec_of(const messages::client_topic::flow_created& flow);
/// The gateway's side of a flow.
messages::connection_spec spec_of(const messages::gateway_topic::authorize_flow& flow);

/// An event to the portal through its link (nothing when there is no link yet).
void push_to_portal(caf::event_based_actor* self, const caf::actor& portal, std::string_view event,
                    const nlohmann::json& payload);

/// The node's tunnel addresses (/32 and /128) on its TUN; a failure is logged, not fatal.
void add_tunnel_addresses(tun::link_config& links, int ifindex, const messages::tunnel_interface& iface,
                          spdlog::logger& log);

/// The TUN reader's batch is handled: it may read more.
inline void release_batch(const std::shared_ptr<std::atomic<int>>& credit) {
  if (credit) credit->fetch_sub(1, std::memory_order_acq_rel);
}

/// The IP bytes in a batch, for the tunnels' byte counters.
inline std::uint64_t bytes_of(const messages::packet_batch& b) {
  std::uint64_t n = 0;
  for (const auto& p : b.packets) n += p.size();
  return n;
}

/// Goodbyes this node sent, by reason (revoked, expired, shutdown, site_removed), and received.
struct goodbye_counters {
  std::map<std::string, std::uint64_t> sent;
  std::uint64_t received = 0;
  /// Counts what a connection_event says actually happened (a close asked with a goodbye is silent
  /// when the connection was still in ICE).
  void count(const messages::connection_event& e);
  nlohmann::json to_json() const;
};

/// `head` with "connections" added once every connection answered (or 1 s passed), as JSON text.
caf::result<std::string> answer_status(caf::event_based_actor* self, peer_connections& connections, nlohmann::json head);

/// The ids a portal event is about, for the trace.
template <class Event>
trace::keys keys_of_event(const Event& e) {
  trace::keys k;
  if constexpr (requires { k.client = e.client_id; }) k.client = e.client_id;
  if constexpr (requires { k.client = e.client.id; }) k.client = e.client.id;
  if constexpr (requires { k.resource = e.resource_id; }) k.resource = e.resource_id;
  if constexpr (requires { k.resource = e.resource.id; }) k.resource = e.resource.id;
  if constexpr (requires { k.gateway = e.gateway_id; }) k.gateway = e.gateway_id;
  return k;
}

/// trace_in for a decoded portal event (client_event / gateway_event): its event name and ids.
template <class Self, class Variant>
void trace_event(Self* self, const Variant& v) {
  if (!trace::on()) return;
  std::visit([&](const auto& e) { trace::trace_in(self, std::decay_t<decltype(e)>::event, keys_of_event(e)); }, v);
}

}  // namespace firebreak::node
