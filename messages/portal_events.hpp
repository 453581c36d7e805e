// The portal's events, as typed structs with strict JSON codecs: the payloads of the Phoenix frames on
// the `client` and `gateway` topics (see phoenix_frame.hpp for the framing). Names and shapes follow
// Firezone's.
//
//   portal → client   init, resource_created_or_updated, resource_deleted, flow_created,
//                     flow_creation_failed, ice_candidates, invalidate_ice_candidates, relays_presence
//   client → portal   create_flow, broadcast_ice_candidates, broadcast_invalidated_ice_candidates
//   portal → gateway  init, authorize_flow, reject_access, access_authorization_expiry_updated,
//                     ice_candidates, invalidate_ice_candidates, relays_presence
//   gateway → portal  flow_authorized, broadcast_ice_candidates, broadcast_invalidated_ice_candidates
//
// Every event lives in the namespace of its topic, client_topic or gateway_topic: several names mean
// different things on the two (init, ice_candidates, ...), and the actors' own message catalog (e.g.
// portal_messages.hpp) keeps names like flow_authorized for its internal messages. relays_presence, the
// same on both topics, is one type named in both. Each topic has a variant per direction, from_portal
// and to_portal.
//
// Decoding rules:
//   * Every field is required unless its type is std::optional; an optional field may be absent or null.
//     Timestamps (expires_at) are integer unix seconds; an absent or null one means "no expiry".
//   * A missing field, a wrongly typed one, or a value the protocol does not allow (an address that is not
//     one, a key that is not base64 of 32 bytes, a reason outside the list) is an error value naming the
//     field by its path, e.g. `resource.filters[0].port_range_end`. Nothing throws.
//   * Fields this build does not know are ignored, so the portal can add some without breaking old nodes.
//   * Error messages and summary() never contain a secret (preshared_key, a relay's password, an ICE
//     password): secrets are never quoted, whatever was wrong with them.
//
// to_json writes every field, optional ones as null when empty, so from_json(to_json(e)) == e.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace firebreak::messages {

// ---- shapes shared by several events ----------------------------------------------------------------

/// A node's addresses inside the tunnel.
struct tunnel_interface {
  std::string ipv4;  // e.g. "100.64.0.1"
  std::string ipv6;  // e.g. "fd00:2021:1111::1"
  friend bool operator==(const tunnel_interface&, const tunnel_interface&) = default;
};

/// A TURN relay (coturn), with credentials in coturn's REST-API form.
struct relay {
  std::string id;
  std::string type = "turn";
  std::string addr;  // "host:port", "[v6]:port"
  std::string username;
  std::string password;                   // secret
  std::optional<std::int64_t> expires_at;  // unix seconds; when the credentials stop working
  friend bool operator==(const relay&, const relay&) = default;
};

struct ice_credentials {
  std::string username;
  std::string password;  // secret
  friend bool operator==(const ice_credentials&, const ice_credentials&) = default;
};

enum class filter_protocol { tcp, udp, icmp };

/// Traffic a resource accepts. tcp and udp carry a port range (both ends inclusive); icmp has none.
struct filter {
  filter_protocol protocol = filter_protocol::tcp;
  std::optional<std::uint16_t> port_range_start;  // set exactly for tcp and udp
  std::optional<std::uint16_t> port_range_end;
  friend bool operator==(const filter&, const filter&) = default;
};

struct resource_description {
  std::string id;
  std::string name;
  std::string address;  // an IP address, a CIDR range or a DNS name, as the admin wrote it
  std::string site_id;
  std::vector<filter> filters;  // empty: all traffic (the field itself is still required)
  friend bool operator==(const resource_description&, const resource_description&) = default;
};

// ---- the events ----------------------------------------------------------------------------------------

/// Sent on both topics with the same shape, so both namespaces below name this one type.
struct relays_presence {
  static constexpr std::string_view event = "relays_presence";
  std::vector<relay> connected;
  std::vector<std::string> disconnected_ids;
  friend bool operator==(const relays_presence&, const relays_presence&) = default;
};

/// A grant a gateway already holds, sent in its init.
struct authorization {
  std::string client_id;
  std::string resource_id;
  std::optional<std::int64_t> expires_at;
  friend bool operator==(const authorization&, const authorization&) = default;
};

/// The client side of a flow, as the gateway needs it.
struct flow_client {
  std::string id;
  std::string public_key;     // WireGuard, base64
  std::string preshared_key;  // secret; WireGuard, base64
  std::string ipv4;
  std::string ipv6;
  friend bool operator==(const flow_client&, const flow_client&) = default;
};

namespace client_topic {

// portal → client

struct init {
  static constexpr std::string_view event = "init";
  tunnel_interface interface;
  std::vector<resource_description> resources;
  std::vector<relay> relays;
  friend bool operator==(const init&, const init&) = default;
};

/// On the wire the payload is the resource description itself, not wrapped in a field.
struct resource_created_or_updated {
  static constexpr std::string_view event = "resource_created_or_updated";
  resource_description resource;
  friend bool operator==(const resource_created_or_updated&, const resource_created_or_updated&) = default;
};

struct resource_deleted {
  static constexpr std::string_view event = "resource_deleted";
  std::string id;
  friend bool operator==(const resource_deleted&, const resource_deleted&) = default;
};

struct flow_created {
  static constexpr std::string_view event = "flow_created";
  std::string resource_id;
  std::string gateway_id;
  std::string site_id;
  std::string gateway_public_key;  // WireGuard, base64
  std::string gateway_ipv4;
  std::string gateway_ipv6;
  std::string preshared_key;  // secret; WireGuard, base64
  ice_credentials client_ice_credentials;
  ice_credentials gateway_ice_credentials;
  std::optional<std::int64_t> expires_at;
  friend bool operator==(const flow_created&, const flow_created&) = default;
};

enum class flow_failure_reason { not_found, offline, forbidden };

struct flow_creation_failed {
  static constexpr std::string_view event = "flow_creation_failed";
  std::string resource_id;
  flow_failure_reason reason = flow_failure_reason::not_found;
  friend bool operator==(const flow_creation_failed&, const flow_creation_failed&) = default;
};

struct ice_candidates {
  static constexpr std::string_view event = "ice_candidates";
  std::string gateway_id;
  std::vector<std::string> candidates;
  friend bool operator==(const ice_candidates&, const ice_candidates&) = default;
};

struct invalidate_ice_candidates {
  static constexpr std::string_view event = "invalidate_ice_candidates";
  std::string gateway_id;
  std::vector<std::string> candidates;
  friend bool operator==(const invalidate_ice_candidates&, const invalidate_ice_candidates&) = default;
};

using messages::relays_presence;

// client → portal

struct create_flow {
  static constexpr std::string_view event = "create_flow";
  std::string resource_id;
  std::vector<std::string> connected_gateway_ids;  // preferred by the portal when it picks a gateway
  friend bool operator==(const create_flow&, const create_flow&) = default;
};

struct broadcast_ice_candidates {
  static constexpr std::string_view event = "broadcast_ice_candidates";
  std::vector<std::string> gateway_ids;
  std::vector<std::string> candidates;
  friend bool operator==(const broadcast_ice_candidates&, const broadcast_ice_candidates&) = default;
};

struct broadcast_invalidated_ice_candidates {
  static constexpr std::string_view event = "broadcast_invalidated_ice_candidates";
  std::vector<std::string> gateway_ids;
  std::vector<std::string> candidates;
  friend bool operator==(const broadcast_invalidated_ice_candidates&,
                         const broadcast_invalidated_ice_candidates&) = default;
};

}  // namespace client_topic

namespace gateway_topic {

// portal → gateway

struct init {
  static constexpr std::string_view event = "init";
  tunnel_interface interface;
  std::vector<relay> relays;
  std::vector<authorization> authorizations;
  friend bool operator==(const init&, const init&) = default;
};

struct authorize_flow {
  static constexpr std::string_view event = "authorize_flow";
  std::string ref;  // echoed in flow_authorized
  flow_client client;
  ice_credentials client_ice_credentials;
  ice_credentials gateway_ice_credentials;
  resource_description resource;
  std::optional<std::int64_t> expires_at;
  friend bool operator==(const authorize_flow&, const authorize_flow&) = default;
};

struct reject_access {
  static constexpr std::string_view event = "reject_access";
  std::string client_id;
  std::string resource_id;
  friend bool operator==(const reject_access&, const reject_access&) = default;
};

struct access_authorization_expiry_updated {
  static constexpr std::string_view event = "access_authorization_expiry_updated";
  std::string client_id;
  std::string resource_id;
  std::optional<std::int64_t> expires_at;
  friend bool operator==(const access_authorization_expiry_updated&,
                         const access_authorization_expiry_updated&) = default;
};

struct ice_candidates {
  static constexpr std::string_view event = "ice_candidates";
  std::string client_id;
  std::vector<std::string> candidates;
  friend bool operator==(const ice_candidates&, const ice_candidates&) = default;
};

struct invalidate_ice_candidates {
  static constexpr std::string_view event = "invalidate_ice_candidates";
  std::string client_id;
  std::vector<std::string> candidates;
  friend bool operator==(const invalidate_ice_candidates&, const invalidate_ice_candidates&) = default;
};

using messages::relays_presence;

// gateway → portal

struct flow_authorized {
  static constexpr std::string_view event = "flow_authorized";
  std::string ref;  // authorize_flow's
  friend bool operator==(const flow_authorized&, const flow_authorized&) = default;
};

struct broadcast_ice_candidates {
  static constexpr std::string_view event = "broadcast_ice_candidates";
  std::vector<std::string> client_ids;
  std::vector<std::string> candidates;
  friend bool operator==(const broadcast_ice_candidates&, const broadcast_ice_candidates&) = default;
};

struct broadcast_invalidated_ice_candidates {
  static constexpr std::string_view event = "broadcast_invalidated_ice_candidates";
  std::vector<std::string> client_ids;
  std::vector<std::string> candidates;
  friend bool operator==(const broadcast_invalidated_ice_candidates&,
                         const broadcast_invalidated_ice_candidates&) = default;
};

}  // namespace gateway_topic

// ---- one type per direction ---------------------------------------------------------------------------

namespace client_topic {
using from_portal = std::variant<init, resource_created_or_updated, resource_deleted, flow_created,
                                 flow_creation_failed, ice_candidates, invalidate_ice_candidates, relays_presence>;
using to_portal = std::variant<create_flow, broadcast_ice_candidates, broadcast_invalidated_ice_candidates>;
}  // namespace client_topic

namespace gateway_topic {
using from_portal = std::variant<init, authorize_flow, reject_access, access_authorization_expiry_updated,
                                 ice_candidates, invalidate_ice_candidates, relays_presence>;
using to_portal = std::variant<flow_authorized, broadcast_ice_candidates, broadcast_invalidated_ice_candidates>;
}  // namespace gateway_topic

// ---- decoding -------------------------------------------------------------------------------------------

enum class decode_error_kind {
  unknown_event,  // decode_event: no event of that name in this direction (ignore it, or refuse it)
  missing_field,
  wrong_type,
  bad_value,  // the right type, but a value the protocol does not allow
};

struct decode_error {
  decode_error_kind kind;
  std::string field;    // path from the payload's root, e.g. "relays[1].expires_at"; empty: the payload itself
  std::string message;  // a sentence naming the event and the field, e.g.
                        // `flow_created: field "gateway_ipv4" is missing`
};

/// Exactly one of value and error is set.
template <class T>
struct decoded {
  std::optional<T> value;
  std::optional<decode_error> error;

  explicit operator bool() const { return value.has_value(); }
  const T& operator*() const { return *value; }
  const T* operator->() const { return &*value; }
};

/// Decodes the payload of event T (any event struct above, e.g.
/// from_json<client_topic::flow_created>(frame.payload)). Never throws.
template <class T>
decoded<T> from_json(const nlohmann::json& payload);

/// Decodes the payload of the event named `event` in one direction: V is client_topic::from_portal,
/// client_topic::to_portal, gateway_topic::from_portal or gateway_topic::to_portal. Never throws.
template <class V>
decoded<V> decode_event(std::string_view event, const nlohmann::json& payload);

// ---- encoding -------------------------------------------------------------------------------------------

nlohmann::json to_json(const tunnel_interface& v);
nlohmann::json to_json(const relay& v);
nlohmann::json to_json(const ice_credentials& v);
nlohmann::json to_json(const filter& v);
nlohmann::json to_json(const resource_description& v);
nlohmann::json to_json(const authorization& v);
nlohmann::json to_json(const flow_client& v);

nlohmann::json to_json(const relays_presence& e);

nlohmann::json to_json(const client_topic::init& e);
nlohmann::json to_json(const client_topic::resource_created_or_updated& e);
nlohmann::json to_json(const client_topic::resource_deleted& e);
nlohmann::json to_json(const client_topic::flow_created& e);
nlohmann::json to_json(const client_topic::flow_creation_failed& e);
nlohmann::json to_json(const client_topic::ice_candidates& e);
nlohmann::json to_json(const client_topic::invalidate_ice_candidates& e);
nlohmann::json to_json(const client_topic::create_flow& e);
nlohmann::json to_json(const client_topic::broadcast_ice_candidates& e);
nlohmann::json to_json(const client_topic::broadcast_invalidated_ice_candidates& e);

nlohmann::json to_json(const gateway_topic::init& e);
nlohmann::json to_json(const gateway_topic::authorize_flow& e);
nlohmann::json to_json(const gateway_topic::reject_access& e);
nlohmann::json to_json(const gateway_topic::access_authorization_expiry_updated& e);
nlohmann::json to_json(const gateway_topic::ice_candidates& e);
nlohmann::json to_json(const gateway_topic::invalidate_ice_candidates& e);
nlohmann::json to_json(const gateway_topic::flow_authorized& e);
nlohmann::json to_json(const gateway_topic::broadcast_ice_candidates& e);
nlohmann::json to_json(const gateway_topic::broadcast_invalidated_ice_candidates& e);

/// "tcp", "udp", "icmp".
std::string_view to_string(filter_protocol p);
/// "not_found", "offline", "forbidden".
std::string_view to_string(client_topic::flow_failure_reason r);

// ---- one line for a log or the actor trace ------------------------------------------------------------
// The event name, then ids, counts and expiries; e.g. `flow_created resource=R gateway=G site=S
// expires_at=1700000000`. Never a secret, never a candidate (they carry addresses; the count is given).

std::string summary(const relays_presence& e);

std::string summary(const client_topic::init& e);
std::string summary(const client_topic::resource_created_or_updated& e);
std::string summary(const client_topic::resource_deleted& e);
std::string summary(const client_topic::flow_created& e);
std::string summary(const client_topic::flow_creation_failed& e);
std::string summary(const client_topic::ice_candidates& e);
std::string summary(const client_topic::invalidate_ice_candidates& e);
std::string summary(const client_topic::create_flow& e);
std::string summary(const client_topic::broadcast_ice_candidates& e);
std::string summary(const client_topic::broadcast_invalidated_ice_candidates& e);

std::string summary(const gateway_topic::init& e);
std::string summary(const gateway_topic::authorize_flow& e);
std::string summary(const gateway_topic::reject_access& e);
std::string summary(const gateway_topic::access_authorization_expiry_updated& e);
std::string summary(const gateway_topic::ice_candidates& e);
std::string summary(const gateway_topic::invalidate_ice_candidates& e);
std::string summary(const gateway_topic::flow_authorized& e);
std::string summary(const gateway_topic::broadcast_ice_candidates& e);
std::string summary(const gateway_topic::broadcast_invalidated_ice_candidates& e);

// ---- the same for whichever event a direction's variant holds -------------------------------------------

template <class... Events>
std::string_view event_name(const std::variant<Events...>& v) {
  return std::visit([](const auto& e) { return std::decay_t<decltype(e)>::event; }, v);
}

template <class... Events>
nlohmann::json to_json(const std::variant<Events...>& v) {
  return std::visit([](const auto& e) { return to_json(e); }, v);
}

template <class... Events>
std::string summary(const std::variant<Events...>& v) {
  return std::visit([](const auto& e) { return summary(e); }, v);
}

}  // namespace firebreak::messages
