#include "messages/portal_events.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

#include "messages/described_type.hpp"

namespace firebreak::messages {

namespace {

using nlohmann::json;

// ---- decoding: the first error wins, and stops the decoder -----------------------------------------

struct decode_state {
  std::optional<decode_error_kind> kind;
  std::string field;
  std::string expected;  // wrong_type: "a string", "an array", ...
  std::string detail;    // wrong_type: "got a number"; bad_value: the whole complaint
};

/// A non-secret value for a message or a summary: JSON-quoted (so control characters cannot forge a log
/// line) and cut to a readable length.
std::string printable(std::string_view value) {
  constexpr std::size_t limit = 64;
  std::string text(value.substr(0, limit));
  std::string out = json(text).dump(-1, ' ', false, json::error_handler_t::replace);
  if (value.size() > limit) out += "...";
  return out;
}

bool missing(decode_state& s, std::string path) {
  s.kind = decode_error_kind::missing_field;
  s.field = std::move(path);
  return false;
}

bool wrong_type(decode_state& s, std::string path, std::string expected, const json& got) {
  s.kind = decode_error_kind::wrong_type;
  s.field = std::move(path);
  s.expected = std::move(expected);
  s.detail = "got " + described_type(got, number_naming::integer_or_fraction);
  return false;
}

bool bad_value(decode_state& s, std::string path, std::string complaint) {
  s.kind = decode_error_kind::bad_value;
  s.field = std::move(path);
  s.detail = std::move(complaint);
  return false;
}

std::string member(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string element(const std::string& path, std::size_t index) { return path + "[" + std::to_string(index) + "]"; }

// read(s, j, path, out): j is the value at path. Declared together, so the templates below see them all.
bool read(decode_state& s, const json& j, const std::string& path, std::string& out);
bool read(decode_state& s, const json& j, const std::string& path, std::int64_t& out);
bool read(decode_state& s, const json& j, const std::string& path, std::uint16_t& out);
bool read(decode_state& s, const json& j, const std::string& path, tunnel_interface& out);
bool read(decode_state& s, const json& j, const std::string& path, relay& out);
bool read(decode_state& s, const json& j, const std::string& path, ice_credentials& out);
bool read(decode_state& s, const json& j, const std::string& path, filter& out);
bool read(decode_state& s, const json& j, const std::string& path, resource_description& out);
bool read(decode_state& s, const json& j, const std::string& path, authorization& out);
bool read(decode_state& s, const json& j, const std::string& path, flow_client& out);
bool read(decode_state& s, const json& j, const std::string& path, client_topic::flow_failure_reason& out);

template <class T>
bool read(decode_state& s, const json& j, const std::string& path, std::vector<T>& out) {
  if (!j.is_array()) return wrong_type(s, path, "an array", j);
  out.clear();
  out.reserve(j.size());
  for (std::size_t i = 0; i < j.size(); ++i) {
    T v{};
    if (!read(s, j[i], element(path, i), v)) return false;
    out.push_back(std::move(v));
  }
  return true;
}

template <class T>
bool read(decode_state& s, const json& j, const std::string& path, std::optional<T>& out) {
  if (j.is_null()) {
    out.reset();
    return true;
  }
  T v{};
  if (!read(s, j, path, v)) {
    if (s.kind == decode_error_kind::wrong_type && s.field == path) s.expected += " or null";
    return false;
  }
  out = std::move(v);
  return true;
}

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

/// obj[key] into out; obj is an object at `path`. An optional field may be absent.
template <class T>
bool field(decode_state& s, const json& obj, const std::string& path, const char* key, T& out) {
  const auto it = obj.find(key);
  if (it == obj.end()) {
    if constexpr (is_optional<T>::value) {
      out.reset();
      return true;
    } else {
      return missing(s, member(path, key));
    }
  }
  return read(s, *it, member(path, key), out);
}

/// An id a peer names (a resource, a gateway, a client; the portal's own are UUIDs): 1 to 64 of
/// letters, digits and ". _ : -", so what reaches a log or a query is never a newline, an escape
/// sequence or a megabyte. The complaint does not repeat the value.
bool valid_id(std::string_view v) {
  return !v.empty() && v.size() <= 64 && std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ':';
  });
}

bool id_field(decode_state& s, const json& obj, const char* key, std::string& out) {
  if (!field(s, obj, "", key, out)) return false;
  if (valid_id(out)) return true;
  return bad_value(s, key, "must be an id (1 to 64 letters, digits, '-', '_', '.' or ':'); got " +
                               std::to_string(out.size()) + " bytes that are not");
}

bool id_field(decode_state& s, const json& obj, const char* key, std::vector<std::string>& out) {
  if (!field(s, obj, "", key, out)) return false;
  for (std::size_t i = 0; i < out.size(); ++i)
    if (!valid_id(out[i]))
      return bad_value(s, element(key, i), "must be an id (1 to 64 letters, digits, '-', '_', '.' or ':'); got " +
                                               std::to_string(out[i].size()) + " bytes that are not");
  return true;
}

bool object(decode_state& s, const json& j, const std::string& path) {
  return j.is_object() || wrong_type(s, path, "an object", j);
}

bool read(decode_state& s, const json& j, const std::string& path, std::string& out) {
  if (!j.is_string()) return wrong_type(s, path, "a string", j);
  out = j.get_ref<const std::string&>();
  return true;
}

bool read(decode_state& s, const json& j, const std::string& path, std::int64_t& out) {
  if (!j.is_number_integer()) return wrong_type(s, path, "an integer (unix seconds)", j);
  if (j.is_number_unsigned() && j.get<std::uint64_t>() > std::uint64_t(std::numeric_limits<std::int64_t>::max()))
    return bad_value(s, path, "is too large for a unix time in seconds");
  out = j.get<std::int64_t>();
  return true;
}

bool read(decode_state& s, const json& j, const std::string& path, std::uint16_t& out) {
  if (!j.is_number_integer()) return wrong_type(s, path, "an integer (a port)", j);
  const bool in_range = j.is_number_unsigned() ? j.get<std::uint64_t>() <= 65535
                                               : j.get<std::int64_t>() >= 0 && j.get<std::int64_t>() <= 65535;
  if (!in_range) return bad_value(s, path, "must be a port, 0 to 65535; got " + j.dump());
  out = static_cast<std::uint16_t>(j.get<std::int64_t>());
  return true;
}

// ---- checks on values of the right type -------------------------------------------------------------

bool ip_address(decode_state& s, const std::string& path, const std::string& value, int family) {
  std::array<unsigned char, 16> buffer{};
  if (value.find('\0') == std::string::npos && inet_pton(family, value.c_str(), buffer.data()) == 1) return true;
  return bad_value(s, path, std::string("must be an ") + (family == AF_INET ? "IPv4" : "IPv6") + " address; got " +
                                printable(value));
}

/// A WireGuard key: base64 of 32 bytes, 44 characters ending in '='. Never quoted: it may be a secret.
bool wireguard_key(decode_state& s, const std::string& path, const std::string& value) {
  const auto base64 = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
  };
  const bool ok = value.size() == 44 && value[43] == '=' && std::all_of(value.begin(), value.begin() + 43, base64) &&
                  // The last character of 32 bytes in base64 carries 4 bits, then two zero bits.
                  std::string_view("AEIMQUYcgkosw048").find(value[42]) != std::string_view::npos;
  return ok || bad_value(s, path, "must be a WireGuard key (base64 of 32 bytes); got " + std::to_string(value.size()) +
                                      " characters that are not one (the value is not shown)");
}

/// "host:port" or "[v6]:port": something before the last colon, a port after it.
bool host_and_port(decode_state& s, const std::string& path, const std::string& value) {
  const auto colon = value.rfind(':');
  bool ok = colon != std::string::npos && colon > 0 && colon + 1 < value.size() && value.size() - colon - 1 <= 5;
  unsigned long port = 0;
  for (std::size_t i = colon + 1; ok && i < value.size(); ++i) {
    ok = value[i] >= '0' && value[i] <= '9';
    port = port * 10 + static_cast<unsigned long>(value[i] - '0');
  }
  return (ok && port <= 65535) || bad_value(s, path, "must be host:port; got " + printable(value));
}

// ---- the shapes ------------------------------------------------------------------------------------------

bool read_fields(decode_state& s, const json& o, const std::string& p, tunnel_interface& out) {
  return field(s, o, p, "ipv4", out.ipv4) && ip_address(s, member(p, "ipv4"), out.ipv4, AF_INET) &&
         field(s, o, p, "ipv6", out.ipv6) && ip_address(s, member(p, "ipv6"), out.ipv6, AF_INET6);
}

bool read_fields(decode_state& s, const json& o, const std::string& p, relay& out) {
  return field(s, o, p, "id", out.id) && field(s, o, p, "type", out.type) && field(s, o, p, "addr", out.addr) &&
         host_and_port(s, member(p, "addr"), out.addr) && field(s, o, p, "username", out.username) &&
         field(s, o, p, "password", out.password) && field(s, o, p, "expires_at", out.expires_at);
}

bool read_fields(decode_state& s, const json& o, const std::string& p, ice_credentials& out) {
  return field(s, o, p, "username", out.username) && field(s, o, p, "password", out.password);
}

bool read_fields(decode_state& s, const json& o, const std::string& p, filter& out) {
  std::string protocol;
  if (!field(s, o, p, "protocol", protocol)) return false;
  if (protocol == "icmp") {
    out = filter{filter_protocol::icmp, std::nullopt, std::nullopt};
    return true;
  }
  if (protocol != "tcp" && protocol != "udp")
    return bad_value(s, member(p, "protocol"), "must be one of \"tcp\", \"udp\", \"icmp\"; got " + printable(protocol));
  out.protocol = protocol == "tcp" ? filter_protocol::tcp : filter_protocol::udp;
  std::uint16_t start = 0;
  std::uint16_t end = 0;
  if (!field(s, o, p, "port_range_start", start) || !field(s, o, p, "port_range_end", end)) return false;
  if (start > end)
    return bad_value(s, member(p, "port_range_end"),
                     "must not be below port_range_start (" + std::to_string(start) + "); got " + std::to_string(end));
  out.port_range_start = start;
  out.port_range_end = end;
  return true;
}

bool read_fields(decode_state& s, const json& o, const std::string& p, resource_description& out) {
  return field(s, o, p, "id", out.id) && field(s, o, p, "name", out.name) && field(s, o, p, "address", out.address) &&
         field(s, o, p, "site_id", out.site_id) && field(s, o, p, "filters", out.filters);
}

bool read_fields(decode_state& s, const json& o, const std::string& p, authorization& out) {
  return field(s, o, p, "client_id", out.client_id) && field(s, o, p, "resource_id", out.resource_id) &&
         field(s, o, p, "expires_at", out.expires_at);
}

bool read_fields(decode_state& s, const json& o, const std::string& p, flow_client& out) {
  return field(s, o, p, "id", out.id) && field(s, o, p, "public_key", out.public_key) &&
         wireguard_key(s, member(p, "public_key"), out.public_key) &&
         field(s, o, p, "preshared_key", out.preshared_key) &&
         wireguard_key(s, member(p, "preshared_key"), out.preshared_key) && field(s, o, p, "ipv4", out.ipv4) &&
         ip_address(s, member(p, "ipv4"), out.ipv4, AF_INET) && field(s, o, p, "ipv6", out.ipv6) &&
         ip_address(s, member(p, "ipv6"), out.ipv6, AF_INET6);
}

#define FIREBREAK_OBJECT_READER(type)                                                        \
  bool read(decode_state& s, const json& j, const std::string& path, type& out) {            \
    return object(s, j, path) && read_fields(s, j, path, out);                               \
  }
FIREBREAK_OBJECT_READER(tunnel_interface)
FIREBREAK_OBJECT_READER(relay)
FIREBREAK_OBJECT_READER(ice_credentials)
FIREBREAK_OBJECT_READER(filter)
FIREBREAK_OBJECT_READER(resource_description)
FIREBREAK_OBJECT_READER(authorization)
FIREBREAK_OBJECT_READER(flow_client)
#undef FIREBREAK_OBJECT_READER

bool read(decode_state& s, const json& j, const std::string& path, client_topic::flow_failure_reason& out) {
  std::string text;
  if (!read(s, j, path, text)) return false;
  if (text == "not_found")
    out = client_topic::flow_failure_reason::not_found;
  else if (text == "offline")
    out = client_topic::flow_failure_reason::offline;
  else if (text == "forbidden")
    out = client_topic::flow_failure_reason::forbidden;
  else
    return bad_value(s, path, "must be one of \"not_found\", \"offline\", \"forbidden\"; got " + printable(text));
  return true;
}

// ---- the events (payload root: path "") ------------------------------------------------------------------

bool read_event(decode_state& s, const json& o, client_topic::init& e) {
  return field(s, o, "", "interface", e.interface) && field(s, o, "", "resources", e.resources) &&
         field(s, o, "", "relays", e.relays);
}

bool read_event(decode_state& s, const json& o, client_topic::resource_created_or_updated& e) {
  return read_fields(s, o, "", e.resource);
}

bool read_event(decode_state& s, const json& o, client_topic::resource_deleted& e) { return field(s, o, "", "id", e.id); }

bool read_event(decode_state& s, const json& o, client_topic::flow_created& e) {
  return field(s, o, "", "resource_id", e.resource_id) && field(s, o, "", "gateway_id", e.gateway_id) &&
         field(s, o, "", "site_id", e.site_id) && field(s, o, "", "gateway_public_key", e.gateway_public_key) &&
         wireguard_key(s, "gateway_public_key", e.gateway_public_key) &&
         field(s, o, "", "gateway_ipv4", e.gateway_ipv4) && ip_address(s, "gateway_ipv4", e.gateway_ipv4, AF_INET) &&
         field(s, o, "", "gateway_ipv6", e.gateway_ipv6) && ip_address(s, "gateway_ipv6", e.gateway_ipv6, AF_INET6) &&
         field(s, o, "", "preshared_key", e.preshared_key) && wireguard_key(s, "preshared_key", e.preshared_key) &&
         field(s, o, "", "client_ice_credentials", e.client_ice_credentials) &&
         field(s, o, "", "gateway_ice_credentials", e.gateway_ice_credentials) &&
         field(s, o, "", "expires_at", e.expires_at);
}

bool read_event(decode_state& s, const json& o, client_topic::flow_creation_failed& e) {
  return field(s, o, "", "resource_id", e.resource_id) && field(s, o, "", "reason", e.reason);
}

bool read_event(decode_state& s, const json& o, client_topic::ice_candidates& e) {
  return id_field(s, o, "gateway_id", e.gateway_id) && field(s, o, "", "candidates", e.candidates);
}

bool read_event(decode_state& s, const json& o, client_topic::invalidate_ice_candidates& e) {
  return id_field(s, o, "gateway_id", e.gateway_id) && field(s, o, "", "candidates", e.candidates);
}

bool read_event(decode_state& s, const json& o, relays_presence& e) {
  return field(s, o, "", "connected", e.connected) && field(s, o, "", "disconnected_ids", e.disconnected_ids);
}

bool read_event(decode_state& s, const json& o, client_topic::create_flow& e) {
  return id_field(s, o, "resource_id", e.resource_id) &&
         id_field(s, o, "connected_gateway_ids", e.connected_gateway_ids);
}

bool read_event(decode_state& s, const json& o, client_topic::broadcast_ice_candidates& e) {
  return id_field(s, o, "gateway_ids", e.gateway_ids) && field(s, o, "", "candidates", e.candidates);
}

bool read_event(decode_state& s, const json& o, client_topic::broadcast_invalidated_ice_candidates& e) {
  return id_field(s, o, "gateway_ids", e.gateway_ids) && field(s, o, "", "candidates", e.candidates);
}

bool read_event(decode_state& s, const json& o, gateway_topic::init& e) {
  return field(s, o, "", "interface", e.interface) && field(s, o, "", "relays", e.relays) &&
         field(s, o, "", "authorizations", e.authorizations);
}

bool read_event(decode_state& s, const json& o, gateway_topic::authorize_flow& e) {
  return field(s, o, "", "ref", e.ref) && field(s, o, "", "client", e.client) &&
         field(s, o, "", "client_ice_credentials", e.client_ice_credentials) &&
         field(s, o, "", "gateway_ice_credentials", e.gateway_ice_credentials) &&
         field(s, o, "", "resource", e.resource) && field(s, o, "", "expires_at", e.expires_at);
}

bool read_event(decode_state& s, const json& o, gateway_topic::reject_access& e) {
  return field(s, o, "", "client_id", e.client_id) && field(s, o, "", "resource_id", e.resource_id);
}

bool read_event(decode_state& s, const json& o, gateway_topic::access_authorization_expiry_updated& e) {
  return field(s, o, "", "client_id", e.client_id) && field(s, o, "", "resource_id", e.resource_id) &&
         field(s, o, "", "expires_at", e.expires_at);
}

bool read_event(decode_state& s, const json& o, gateway_topic::ice_candidates& e) {
  return id_field(s, o, "client_id", e.client_id) && field(s, o, "", "candidates", e.candidates);
}

bool read_event(decode_state& s, const json& o, gateway_topic::invalidate_ice_candidates& e) {
  return id_field(s, o, "client_id", e.client_id) && field(s, o, "", "candidates", e.candidates);
}

bool read_event(decode_state& s, const json& o, gateway_topic::flow_authorized& e) { return id_field(s, o, "ref", e.ref); }

bool read_event(decode_state& s, const json& o, gateway_topic::broadcast_ice_candidates& e) {
  return id_field(s, o, "client_ids", e.client_ids) && field(s, o, "", "candidates", e.candidates);
}

bool read_event(decode_state& s, const json& o, gateway_topic::broadcast_invalidated_ice_candidates& e) {
  return id_field(s, o, "client_ids", e.client_ids) && field(s, o, "", "candidates", e.candidates);
}

decode_error to_error(std::string_view event, const decode_state& s) {
  const std::string subject = s.field.empty() ? "the payload" : "field \"" + s.field + "\"";
  std::string message = std::string(event) + ": " + subject;
  switch (*s.kind) {
    case decode_error_kind::missing_field: message += " is missing"; break;
    case decode_error_kind::wrong_type: message += " must be " + s.expected + "; " + s.detail; break;
    default: message += " " + s.detail; break;
  }
  return decode_error{*s.kind, s.field, std::move(message)};
}

// ---- encoding helpers ---------------------------------------------------------------------------------------

json timestamp(const std::optional<std::int64_t>& t) { return t ? json(*t) : json(nullptr); }

template <class T>
json array_of(const std::vector<T>& items) {
  json out = json::array();
  for (const auto& item : items) out.push_back(to_json(item));
  return out;
}

json strings(const std::vector<std::string>& items) { return json(items); }

// ---- summary helpers ----------------------------------------------------------------------------------------

std::string expiry(const std::optional<std::int64_t>& t) { return t ? std::to_string(*t) : std::string("never"); }

std::string id_list(const std::vector<std::string>& ids) {
  constexpr std::size_t shown = 8;
  std::string out = "[";
  for (std::size_t i = 0; i < ids.size() && i < shown; ++i) out += (i ? "," : "") + printable(ids[i]);
  if (ids.size() > shown) out += ",... " + std::to_string(ids.size() - shown) + " more";
  return out + "]";
}

std::string relay_ids(const std::vector<relay>& relays) {
  std::vector<std::string> ids;
  for (const auto& r : relays) ids.push_back(r.id);
  return id_list(ids);
}

}  // namespace

// ---- from_json and decode_event ---------------------------------------------------------------------------

template <class T>
decoded<T> from_json(const json& payload) {
  decode_state s;
  T value{};
  if (payload.is_object() ? read_event(s, payload, value) : wrong_type(s, "", "a JSON object", payload))
    return {std::move(value), std::nullopt};
  return {std::nullopt, to_error(T::event, s)};
}

template decoded<client_topic::init> from_json<client_topic::init>(const json&);
template decoded<client_topic::resource_created_or_updated> from_json<client_topic::resource_created_or_updated>(const json&);
template decoded<client_topic::resource_deleted> from_json<client_topic::resource_deleted>(const json&);
template decoded<client_topic::flow_created> from_json<client_topic::flow_created>(const json&);
template decoded<client_topic::flow_creation_failed> from_json<client_topic::flow_creation_failed>(const json&);
template decoded<client_topic::ice_candidates> from_json<client_topic::ice_candidates>(const json&);
template decoded<client_topic::invalidate_ice_candidates> from_json<client_topic::invalidate_ice_candidates>(
    const json&);
template decoded<relays_presence> from_json<relays_presence>(const json&);
template decoded<client_topic::create_flow> from_json<client_topic::create_flow>(const json&);
template decoded<client_topic::broadcast_ice_candidates> from_json<client_topic::broadcast_ice_candidates>(
    const json&);
template decoded<client_topic::broadcast_invalidated_ice_candidates>
from_json<client_topic::broadcast_invalidated_ice_candidates>(const json&);
template decoded<gateway_topic::init> from_json<gateway_topic::init>(const json&);
template decoded<gateway_topic::authorize_flow> from_json<gateway_topic::authorize_flow>(const json&);
template decoded<gateway_topic::reject_access> from_json<gateway_topic::reject_access>(const json&);
template decoded<gateway_topic::access_authorization_expiry_updated> from_json<gateway_topic::access_authorization_expiry_updated>(const json&);
template decoded<gateway_topic::ice_candidates> from_json<gateway_topic::ice_candidates>(const json&);
template decoded<gateway_topic::invalidate_ice_candidates> from_json<gateway_topic::invalidate_ice_candidates>(
    const json&);
template decoded<gateway_topic::flow_authorized> from_json<gateway_topic::flow_authorized>(const json&);
template decoded<gateway_topic::broadcast_ice_candidates> from_json<gateway_topic::broadcast_ice_candidates>(
    const json&);
template decoded<gateway_topic::broadcast_invalidated_ice_candidates>
from_json<gateway_topic::broadcast_invalidated_ice_candidates>(const json&);

namespace {

template <class V, class T>
void take(decoded<V>& out, decoded<T> one) {
  if (one.value)
    out.value.emplace(std::in_place_type<T>, std::move(*one.value));
  else
    out.error = std::move(one.error);
}

template <class... Events>
std::string known_events() {
  std::string out;
  ((out += (out.empty() ? "" : ", ") + std::string(Events::event)), ...);
  return out;
}

template <class... Events>
decoded<std::variant<Events...>> decode_one_of(std::type_identity<std::variant<Events...>>, std::string_view event,
                                               const json& payload) {
  decoded<std::variant<Events...>> out;
  const bool known = ((Events::event == event && (take(out, from_json<Events>(payload)), true)) || ...);
  if (!known)
    out.error = decode_error{decode_error_kind::unknown_event, "",
                             "unknown event " + printable(event) + "; this direction carries " + known_events<Events...>()};
  return out;
}

}  // namespace

template <class V>
decoded<V> decode_event(std::string_view event, const json& payload) {
  return decode_one_of(std::type_identity<V>{}, event, payload);
}

template decoded<client_topic::from_portal> decode_event<client_topic::from_portal>(std::string_view, const json&);
template decoded<client_topic::to_portal> decode_event<client_topic::to_portal>(std::string_view, const json&);
template decoded<gateway_topic::from_portal> decode_event<gateway_topic::from_portal>(std::string_view, const json&);
template decoded<gateway_topic::to_portal> decode_event<gateway_topic::to_portal>(std::string_view, const json&);

// ---- to_json ----------------------------------------------------------------------------------------------

std::string_view to_string(filter_protocol p) {
  switch (p) {
    case filter_protocol::tcp: return "tcp";
    case filter_protocol::udp: return "udp";
    case filter_protocol::icmp: return "icmp";
  }
  return "unknown";
}

std::string_view to_string(client_topic::flow_failure_reason r) {
  switch (r) {
    case client_topic::flow_failure_reason::not_found: return "not_found";
    case client_topic::flow_failure_reason::offline: return "offline";
    case client_topic::flow_failure_reason::forbidden: return "forbidden";
  }
  return "unknown";
}

json to_json(const tunnel_interface& v) { return {{"ipv4", v.ipv4}, {"ipv6", v.ipv6}}; }

json to_json(const relay& v) {
  return {{"id", v.id},           {"type", v.type},         {"addr", v.addr},
          {"username", v.username}, {"password", v.password}, {"expires_at", timestamp(v.expires_at)}};
}

json to_json(const ice_credentials& v) { return {{"username", v.username}, {"password", v.password}}; }

json to_json(const filter& v) {
  json out = {{"protocol", to_string(v.protocol)}};
  if (v.port_range_start) out["port_range_start"] = *v.port_range_start;
  if (v.port_range_end) out["port_range_end"] = *v.port_range_end;
  return out;
}

json to_json(const resource_description& v) {
  return {{"id", v.id},           {"name", v.name}, {"address", v.address},
          {"site_id", v.site_id}, {"filters", array_of(v.filters)}};
}

json to_json(const authorization& v) {
  return {{"client_id", v.client_id}, {"resource_id", v.resource_id}, {"expires_at", timestamp(v.expires_at)}};
}

json to_json(const flow_client& v) {
  return {{"id", v.id},     {"public_key", v.public_key}, {"preshared_key", v.preshared_key},
          {"ipv4", v.ipv4}, {"ipv6", v.ipv6}};
}

json to_json(const client_topic::init& e) {
  return {{"interface", to_json(e.interface)}, {"resources", array_of(e.resources)}, {"relays", array_of(e.relays)}};
}

json to_json(const client_topic::resource_created_or_updated& e) { return to_json(e.resource); }

json to_json(const client_topic::resource_deleted& e) { return {{"id", e.id}}; }

json to_json(const client_topic::flow_created& e) {
  return {{"resource_id", e.resource_id},
          {"gateway_id", e.gateway_id},
          {"site_id", e.site_id},
          {"gateway_public_key", e.gateway_public_key},
          {"gateway_ipv4", e.gateway_ipv4},
          {"gateway_ipv6", e.gateway_ipv6},
          {"preshared_key", e.preshared_key},
          {"client_ice_credentials", to_json(e.client_ice_credentials)},
          {"gateway_ice_credentials", to_json(e.gateway_ice_credentials)},
          {"expires_at", timestamp(e.expires_at)}};
}

json to_json(const client_topic::flow_creation_failed& e) {
  return {{"resource_id", e.resource_id}, {"reason", to_string(e.reason)}};
}

json to_json(const client_topic::ice_candidates& e) {
  return {{"gateway_id", e.gateway_id}, {"candidates", strings(e.candidates)}};
}

json to_json(const client_topic::invalidate_ice_candidates& e) {
  return {{"gateway_id", e.gateway_id}, {"candidates", strings(e.candidates)}};
}

json to_json(const relays_presence& e) {
  return {{"connected", array_of(e.connected)}, {"disconnected_ids", strings(e.disconnected_ids)}};
}

json to_json(const client_topic::create_flow& e) {
  return {{"resource_id", e.resource_id}, {"connected_gateway_ids", strings(e.connected_gateway_ids)}};
}

json to_json(const client_topic::broadcast_ice_candidates& e) {
  return {{"gateway_ids", strings(e.gateway_ids)}, {"candidates", strings(e.candidates)}};
}

json to_json(const client_topic::broadcast_invalidated_ice_candidates& e) {
  return {{"gateway_ids", strings(e.gateway_ids)}, {"candidates", strings(e.candidates)}};
}

json to_json(const gateway_topic::init& e) {
  return {{"interface", to_json(e.interface)},
          {"relays", array_of(e.relays)},
          {"authorizations", array_of(e.authorizations)}};
}

json to_json(const gateway_topic::authorize_flow& e) {
  return {{"ref", e.ref},
          {"client", to_json(e.client)},
          {"client_ice_credentials", to_json(e.client_ice_credentials)},
          {"gateway_ice_credentials", to_json(e.gateway_ice_credentials)},
          {"resource", to_json(e.resource)},
          {"expires_at", timestamp(e.expires_at)}};
}

json to_json(const gateway_topic::reject_access& e) { return {{"client_id", e.client_id}, {"resource_id", e.resource_id}}; }

json to_json(const gateway_topic::access_authorization_expiry_updated& e) {
  return {{"client_id", e.client_id}, {"resource_id", e.resource_id}, {"expires_at", timestamp(e.expires_at)}};
}

json to_json(const gateway_topic::ice_candidates& e) {
  return {{"client_id", e.client_id}, {"candidates", strings(e.candidates)}};
}

json to_json(const gateway_topic::invalidate_ice_candidates& e) {
  return {{"client_id", e.client_id}, {"candidates", strings(e.candidates)}};
}

json to_json(const gateway_topic::flow_authorized& e) { return {{"ref", e.ref}}; }

json to_json(const gateway_topic::broadcast_ice_candidates& e) {
  return {{"client_ids", strings(e.client_ids)}, {"candidates", strings(e.candidates)}};
}

json to_json(const gateway_topic::broadcast_invalidated_ice_candidates& e) {
  return {{"client_ids", strings(e.client_ids)}, {"candidates", strings(e.candidates)}};
}

// ---- summary ----------------------------------------------------------------------------------------------

std::string summary(const client_topic::init& e) {
  return "init interface=" + printable(e.interface.ipv4) + "," + printable(e.interface.ipv6) +
         " resources=" + std::to_string(e.resources.size()) + " relays=" + relay_ids(e.relays);
}

std::string summary(const client_topic::resource_created_or_updated& e) {
  return "resource_created_or_updated resource=" + printable(e.resource.id) + " address=" + printable(e.resource.address) +
         " site=" + printable(e.resource.site_id) + " filters=" + std::to_string(e.resource.filters.size());
}

std::string summary(const client_topic::resource_deleted& e) { return "resource_deleted resource=" + printable(e.id); }

std::string summary(const client_topic::flow_created& e) {
  return "flow_created resource=" + printable(e.resource_id) + " gateway=" + printable(e.gateway_id) +
         " site=" + printable(e.site_id) + " gateway_ipv4=" + printable(e.gateway_ipv4) +
         " gateway_ipv6=" + printable(e.gateway_ipv6) + " expires_at=" + expiry(e.expires_at);
}

std::string summary(const client_topic::flow_creation_failed& e) {
  return "flow_creation_failed resource=" + printable(e.resource_id) + " reason=" + std::string(to_string(e.reason));
}

std::string summary(const client_topic::ice_candidates& e) {
  return "ice_candidates gateway=" + printable(e.gateway_id) + " candidates=" + std::to_string(e.candidates.size());
}

std::string summary(const client_topic::invalidate_ice_candidates& e) {
  return "invalidate_ice_candidates gateway=" + printable(e.gateway_id) +
         " candidates=" + std::to_string(e.candidates.size());
}

std::string summary(const relays_presence& e) {
  return "relays_presence connected=" + relay_ids(e.connected) + " disconnected=" + id_list(e.disconnected_ids);
}

std::string summary(const client_topic::create_flow& e) {
  return "create_flow resource=" + printable(e.resource_id) + " connected_gateways=" + id_list(e.connected_gateway_ids);
}

std::string summary(const client_topic::broadcast_ice_candidates& e) {
  return "broadcast_ice_candidates gateways=" + id_list(e.gateway_ids) +
         " candidates=" + std::to_string(e.candidates.size());
}

std::string summary(const client_topic::broadcast_invalidated_ice_candidates& e) {
  return "broadcast_invalidated_ice_candidates gateways=" + id_list(e.gateway_ids) +
         " candidates=" + std::to_string(e.candidates.size());
}

std::string summary(const gateway_topic::init& e) {
  return "init interface=" + printable(e.interface.ipv4) + "," + printable(e.interface.ipv6) +
         " relays=" + relay_ids(e.relays) + " authorizations=" + std::to_string(e.authorizations.size());
}

std::string summary(const gateway_topic::authorize_flow& e) {
  return "authorize_flow ref=" + printable(e.ref) + " client=" + printable(e.client.id) +
         " client_ipv4=" + printable(e.client.ipv4) + " resource=" + printable(e.resource.id) +
         " expires_at=" + expiry(e.expires_at);
}

std::string summary(const gateway_topic::reject_access& e) {
  return "reject_access client=" + printable(e.client_id) + " resource=" + printable(e.resource_id);
}

std::string summary(const gateway_topic::access_authorization_expiry_updated& e) {
  return "access_authorization_expiry_updated client=" + printable(e.client_id) + " resource=" + printable(e.resource_id) +
         " expires_at=" + expiry(e.expires_at);
}

std::string summary(const gateway_topic::ice_candidates& e) {
  return "ice_candidates client=" + printable(e.client_id) + " candidates=" + std::to_string(e.candidates.size());
}

std::string summary(const gateway_topic::invalidate_ice_candidates& e) {
  return "invalidate_ice_candidates client=" + printable(e.client_id) +
         " candidates=" + std::to_string(e.candidates.size());
}

std::string summary(const gateway_topic::flow_authorized& e) { return "flow_authorized ref=" + printable(e.ref); }

std::string summary(const gateway_topic::broadcast_ice_candidates& e) {
  return "broadcast_ice_candidates clients=" + id_list(e.client_ids) +
         " candidates=" + std::to_string(e.candidates.size());
}

std::string summary(const gateway_topic::broadcast_invalidated_ice_candidates& e) {
  return "broadcast_invalidated_ice_candidates clients=" + id_list(e.client_ids) +
         " candidates=" + std::to_string(e.candidates.size());
}

}  // namespace firebreak::messages
