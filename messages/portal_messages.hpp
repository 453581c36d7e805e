// The typed messages the portal's actors exchange (sessions, presence, the flow coordinator, the store).
// Payloads that cross the wire stay JSON text here: the session actor is the only place that frames them.
// Every type has an `inspect` so CAF can print it (and, later, the actor trace can summarise it); the
// type-ID block at the bottom names each one once for every binary.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <caf/type_id.hpp>

namespace firebreak::messages {

// ---- a socket and its session actor -------------------------------------------------------------
/// A text frame that arrived on the session's socket.
struct socket_text {
  std::string text;
};
/// The socket is gone (closed by the peer, timed out, or failed).
struct socket_closed {
  std::string reason;
};
/// Push `event` with `payload` (JSON object text) on the session's channel.
struct push {
  std::string event;
  std::string payload;
};
/// Close the session's socket with a reason a person can read.
struct close_session {
  std::string reason;
};

// ---- who is connected -------------------------------------------------------------------------------
enum class peer_kind : std::uint8_t { client, gateway };

/// Who a token belongs to, as the store found it.
struct identity {
  peer_kind kind = peer_kind::client;
  std::string id;
  std::string site_id;  // gateways only
  std::string name;
  /// Set when the token is good but the connection may not go on (its WireGuard public key is not
  /// usable, or belongs to another peer): why, in words safe to tell the peer that proved the token.
  std::string refused;
};

/// A session joined its channel: the presence actor monitors it from now on.
struct session_joined {
  identity who;
  caf::actor session;
};

/// ICE candidates (or their invalidation) from one side, for the sessions of the other side.
struct candidates_relay {
  peer_kind from_kind = peer_kind::client;
  std::string from_id;
  std::vector<std::string> to_ids;
  std::vector<std::string> candidates;
  bool invalidated = false;
};

// ---- flows ------------------------------------------------------------------------------------------
/// A client asked for a flow to a resource.
struct flow_request {
  std::string client_id;
  std::string resource_id;
  std::vector<std::string> connected_gateway_ids;
  caf::actor client_session;
};
/// A gateway accepted the flow it was asked to authorize (`ref` from authorize_flow).
struct flow_authorized {
  std::string gateway_id;
  std::string ref;
};
/// The store changed in a way that may revoke or extend live flows.
struct store_changed {
  std::string what;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, socket_text& x) {
  return f(caf::meta::type_name("socket_text"), x.text);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, socket_closed& x) {
  return f(caf::meta::type_name("socket_closed"), x.reason);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, push& x) {
  return f(caf::meta::type_name("push"), x.event, x.payload);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, close_session& x) {
  return f(caf::meta::type_name("close_session"), x.reason);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, identity& x) {
  return f(caf::meta::type_name("identity"), x.kind, x.id, x.site_id, x.name, x.refused);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_joined& x) {
  return f(caf::meta::type_name("session_joined"), x.who, x.session);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, candidates_relay& x) {
  return f(caf::meta::type_name("candidates_relay"), x.from_kind, x.from_id, x.to_ids, x.candidates, x.invalidated);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, flow_request& x) {
  return f(caf::meta::type_name("flow_request"), x.client_id, x.resource_id, x.connected_gateway_ids,
           x.client_session);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, flow_authorized& x) {
  return f(caf::meta::type_name("flow_authorized"), x.gateway_id, x.ref);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, store_changed& x) {
  return f(caf::meta::type_name("store_changed"), x.what);
}

// ---- atoms (requests without a payload type of their own) ---------------------------------------------
using authenticate_atom = caf::atom_constant<caf::atom("authentic")>;
using join_data_atom = caf::atom_constant<caf::atom("joindata")>;
using online_atom = caf::atom_constant<caf::atom("online")>;
using session_atom = caf::atom_constant<caf::atom("session")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using timeout_atom = caf::atom_constant<caf::atom("timeout")>;
using admin_atom = caf::atom_constant<caf::atom("admin")>;
using flows_atom = caf::atom_constant<caf::atom("flows")>;
/// To the store: (relays_atom, identity) -> relays_presence payload (JSON text) with fresh credentials;
/// to a session: time to send its peer fresh ones.
using relays_atom = caf::atom_constant<caf::atom("relays")>;
/// Presence and the flow coordinator: their counters as JSON text, for the portal's /metrics.
using stats_atom = caf::atom_constant<caf::atom("stats")>;

/// Registers every message type above with CAF; call once on the config before the actor system starts.
void register_portal_messages(caf::actor_system_config& cfg);

}  // namespace firebreak::messages

CAF_BEGIN_TYPE_ID_BLOCK(firebreak, caf::first_custom_type_id)
CAF_ADD_TYPE_ID(firebreak, (firebreak::messages::socket_text))
CAF_ADD_TYPE_ID(firebreak, (firebreak::messages::socket_closed))
CAF_ADD_TYPE_ID(firebreak, (firebreak::messages::push))
CAF_ADD_TYPE_ID(firebreak, (firebreak::messages::close_session))
CAF_ADD_TYPE_ID(firebreak, (firebreak::messages::identity))
CAF_ADD_TYPE_ID(firebreak, (firebreak::messages::session_joined))
CAF_ADD_TYPE_ID(firebreak, (firebreak::messages::candidates_relay))
CAF_ADD_TYPE_ID(firebreak, (firebreak::messages::flow_request))
CAF_ADD_TYPE_ID(firebreak, (firebreak::messages::flow_authorized))
CAF_ADD_TYPE_ID(firebreak, (firebreak::messages::store_changed))
CAF_END_TYPE_ID_BLOCK(firebreak)
