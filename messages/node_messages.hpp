// The typed messages inside a client or gateway daemon, between its supervisor, authorization and
// tunnel actors (the connection actors' own catalog is connection_messages.hpp):
//
//   portal_link ──push──> supervisor ──client_event / gateway_event (decoded)──> tunnel | authorization
//   authorization ──accept_flow, client_grants, client_unauthorized──> tunnel        (gateway)
//   tunnel ──push (create_flow, flow_authorized, candidates)──> portal_link
//   TUN reader thread ──packet_batch (no peer id)──> tunnel
//   status socket, /metrics ──(status_atom)──> supervisor ──> tunnel ──(status_atom)──> each connection
//   /healthz ──(health_atom)──> supervisor
//   signal thread ──(shutdown_atom)──> supervisor
//
// Events carrying secrets (flow keys, ICE and TURN passwords) have no printable form.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "config/cidr.hpp"
#include "messages/portal_events.hpp"

namespace firebreak::messages {

/// A portal event for the client's actors, decoded and validated by the supervisor.
struct client_event {
  client_topic::from_portal event;
};
/// A portal event for the gateway's actors, decoded and validated by the supervisor.
struct gateway_event {
  gateway_topic::from_portal event;
};

/// One resource a client holds a grant for, as the gateway enforces it.
struct granted_resource {
  std::string id;
  std::string name;
  config::cidr prefix;
  std::vector<filter> filters;                // empty: everything
  std::optional<std::int64_t> expires_at_ms;  // none: until revoked
};

/// Everything one client may reach through this gateway; the tunnel's copy is replaced whole.
struct client_grants {
  std::string client_id;
  std::optional<config::cidr> ipv4, ipv6;  // the client's tunnel addresses (/32, /128)
  std::map<std::string, granted_resource> resources;  // by resource id
};

/// authorization -> tunnel: the portal authorized a flow; the grant is recorded. Accept (or keep) the
/// connection to this client and tell the portal flow_authorized.
struct accept_flow {
  gateway_topic::authorize_flow flow;
  bool granted = true;  // false: the grant was refused (the connection is still accepted)
};

/// authorization -> tunnel: this client has no grant left here. The seam for the goodbye: the tunnel
/// decides what happens to the connection.
struct client_unauthorized {
  std::string client_id;
  std::string reason;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, client_unauthorized& x) {
  return f(caf::meta::type_name("client_unauthorized"), x.client_id, x.reason);
}

/// Asks the supervisor whether the node is ready (joined the portal, TUN up, not stopping): answered
/// with {"ready", "portal": {"state", "reason"}, "stopping"} as JSON text, without asking any
/// connection (it backs /healthz, which is polled).
using health_atom = caf::atom_constant<caf::atom("health")>;
/// Requests a node's status: answered with the JSON the status command renders.
using node_status_atom = caf::atom_constant<caf::atom("nodestat")>;
/// SIGTERM/SIGINT (or a fatal error): run the shutdown sequence. To a tunnel it comes with the
/// reason each goodbye is counted under ("shutdown", "signed_out").
using shutdown_atom = caf::atom_constant<caf::atom("shutdown")>;
/// A fatal error outside the actors (the TUN device gone), with what happened: the shutdown
/// sequence, goodbyes included (they travel through ICE, not the TUN), then exit 1.
using fatal_atom = caf::atom_constant<caf::atom("fatal")>;
/// `firebreak client sign-out`: the shutdown sequence, with goodbyes counted as "signed_out".
using sign_out_atom = caf::atom_constant<caf::atom("signout")>;
/// The gateway's authorization actor: the earliest grant expiry is due.
using expiry_atom = caf::atom_constant<caf::atom("expiry")>;
/// The client's tunnel: retry held packets whose flow request may be repeated.
using flow_retry_atom = caf::atom_constant<caf::atom("flowretry")>;

}  // namespace firebreak::messages

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(firebreak::messages::client_event)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(firebreak::messages::gateway_event)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(firebreak::messages::client_grants)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(firebreak::messages::accept_flow)
