// The client's tunnel actor: its TUN device, the routes for its resources, which gateway each
// resource's flow goes through, and the connections to those gateways.
//
//   init / resource_created_or_updated / resource_deleted ──> resources and their routes on the TUN
//   a packet from the TUN for resource R
//       ── R has a flow and its gateway's connection lives ──> that connection (batched)
//       ── otherwise ──> held (bounded per resource); create_flow{R, connected gateways} at most once per 2 s
//   flow_created{R, G}  ──> R goes through G; G's connection is kept if it lives, else started;
//                           R's held packets follow; the flow's setup time is observed once G's
//                           connection is connected (flows, handshakes and setup times: status, /metrics)
//   flow_creation_failed{R, reason} ──> held packets answered with ICMP unreachable; logged
//   a connection closed or failed ──> its resources have no flow; their next packet asks again
//   resource_deleted{R}, R the last resource through G ──> goodbye to G, connection closed
//   G's goodbye ──> its connection closed as on a failure: its resources ask for a flow again
//   a p2p control packet from the TUN (a local program forging a goodbye) ──> dropped, counted
//   packets from gateway G ──> the TUN, if their source lies in a resource whose flow goes through G
//   after every change of routes, flows or connections ──> a new policy snapshot for the data plane:
//       packets to a resource whose flow's connection is up are sealed on the TUN reader's thread,
//       packets from its gateway written to the TUN on the ICE thread, under the same rules as here;
//       everything else still comes here
//   shutdown_atom, reason ("shutdown" | "signed_out") ──> goodbye to every connected gateway (silent while in ICE), quit
//
// The client has no separate authorization actor: what it may reach is its resource list, which is
// this actor's routing table; the portal decides the rest.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <set>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/node/data_plane.hpp"
#include "actors/node/flow_counters.hpp"
#include "actors/node/peer_connections.hpp"
#include "actors/node/tunnel_common.hpp"
#include "config/cidr.hpp"
#include "messages/node_messages.hpp"
#include "transport/tun/link_config_linux.hpp"
#include "transport/tun/tun_device_linux.hpp"
#include "transport/wireguard/allowed_ips.hpp"

namespace firebreak::client {

struct tunnel_settings {
  std::shared_ptr<tun::tun_device> tun;
  std::shared_ptr<std::atomic<int>> reader_credit;
  connection::connection_settings connection;
  node::ice_options ice;
  std::size_t max_held_per_resource = 64;
  std::chrono::milliseconds flow_request_interval{2000};
  std::shared_ptr<spdlog::logger> log;
  bool goodbye = true;  // closing a connection tells the gateway
  /// Bulk packets without a message (data_plane.hpp); null: every packet through this actor.
  std::shared_ptr<node::data_plane> plane;
};

struct resource_entry {
  messages::resource_description description;
  std::optional<config::cidr> prefix;  // none: a DNS name, not routed by this client
  std::string gateway;                 // the flow's gateway; empty: no flow
  std::optional<std::int64_t> expires_at;  // the flow's, unix seconds; none: until revoked
  std::optional<caf::actor_clock::time_point> last_request;
  std::optional<caf::actor_clock::time_point> setup_since;  // the first request of a flow being set up
  std::deque<std::vector<std::uint8_t>> held;
};

struct tunnel_state {
  tunnel_settings settings;
  std::shared_ptr<spdlog::logger> log;
  std::unique_ptr<tun::link_config> links;
  caf::actor portal;
  messages::tunnel_interface interface;
  std::map<std::string, resource_entry> resources;
  wireguard::allowed_ips<std::string> routes;  // destination -> resource id
  node::peer_connections connections;
  node::goodbye_counters goodbyes;
  node::flow_counters flows;
  std::uint64_t held_drops = 0, multicast = 0, control_from_tun = 0, no_resource = 0, spoofed = 0, unparsable = 0, tun_write_failed = 0;
  std::uint64_t to_gateways = 0, from_gateways = 0;  // packets
  std::uint64_t bytes_to_gateways = 0, bytes_from_gateways = 0;
  bool retry_armed = false;
  std::vector<std::uint8_t> icmp;
  static inline const char* name = "client_tunnel";
};

caf::behavior client_tunnel(caf::stateful_actor<tunnel_state>* self, tunnel_settings settings);

}  // namespace firebreak::client
