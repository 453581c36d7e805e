// The gateway's tunnel actor: its TUN device, the clients' connections, and the per-packet checks.
//
//   from a client (decrypted, packet_batch with its id)
//       ── source is not the client's tunnel address ──> dropped, counted
//       ── no live grant covers destination/protocol/port ──> ICMP "administratively prohibited" back
//       ── granted ──> TUN ──> kernel (forwarding + masquerade) ──> the resource
//   from the TUN (answers, packet_batch without id): destination = a client's tunnel address
//       ── its source lies in a resource the client holds ──> that client's connection
//       ── otherwise ──> dropped, counted
//   accept_flow (authorization) ──> the client's connection is started, or kept if one is up or on
//       its way ──> flow_authorized to the portal; counted (requested, granted or refused), and its
//       setup time observed once the connection carries packets
//   client_grants (authorization) ──> this actor's copy for the checks
//   client_unauthorized (its last grant is gone) ──> goodbye to that client, connection closed
//       (goodbyes off: the connection stays, its packets refused, until ICE or WireGuard ends it)
//   connection closed by the client's goodbye ──> forgotten, as on a failure
//   after every change of grants or connections ──> a new policy snapshot for the data plane: granted
//       packets of a connected client pass on the ICE thread, answers to it are sealed on the TUN
//       reader's thread, with the same checks on every packet; every other packet still comes here
//   shutdown_atom, reason ──> goodbye to every connected client (silent while in ICE), quit
#pragma once

#include <memory>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/gateway/grant_table.hpp"
#include "actors/node/data_plane.hpp"
#include "actors/node/flow_counters.hpp"
#include "actors/node/peer_connections.hpp"
#include "actors/node/tunnel_common.hpp"
#include "messages/node_messages.hpp"
#include "transport/tun/link_config_linux.hpp"
#include "transport/tun/tun_device_linux.hpp"

namespace firebreak::gateway {

struct tunnel_settings {
  std::shared_ptr<tun::tun_device> tun;
  std::shared_ptr<std::atomic<int>> reader_credit;  // released per batch from the TUN reader
  connection::connection_settings connection;
  node::ice_options ice;
  std::shared_ptr<spdlog::logger> log;
  bool goodbye = true;  // closing a connection tells the client (off: silent, as before the goodbye)
  /// Bulk packets without a message (data_plane.hpp); null: every packet through this actor.
  std::shared_ptr<node::data_plane> plane;
};

struct drop_counters {
  std::uint64_t spoofed = 0, not_granted = 0, expired = 0, unknown_client = 0, unparsable = 0, multicast = 0;
  std::uint64_t control_from_tun = 0;  // p2p control packets a local program wrote: never sent on
  std::uint64_t no_connection = 0, tun_write_failed = 0, icmp_sent = 0;
};

struct tunnel_state {
  tunnel_settings settings;
  std::shared_ptr<spdlog::logger> log;
  grant_table grants;  // a copy per client, from the authorization actor
  node::peer_connections connections;
  node::goodbye_counters goodbyes;
  node::flow_counters flows;
  std::map<std::string, caf::actor_clock::time_point> setup_since;  // by client: accepted, not yet connected
  std::unique_ptr<tun::link_config> links;
  caf::actor portal;  // portal_link: where pushes go
  messages::tunnel_interface interface;
  drop_counters drops;
  std::uint64_t forwarded_in = 0, forwarded_out = 0;  // packets
  std::uint64_t bytes_in = 0, bytes_out = 0;          // their IP bytes
  std::vector<std::uint8_t> icmp;  // scratch for answers
  static inline const char* name = "gateway_tunnel";
};

caf::behavior gateway_tunnel(caf::stateful_actor<tunnel_state>* self, tunnel_settings settings);

}  // namespace firebreak::gateway
