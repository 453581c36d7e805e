// libFuzzer target for what a WebSocket peer can send the portal or a node: the Phoenix frame parser,
// then every event decoder of both topics on the payload of each frame that parses.
// So that random bytes reach the decoders' deeper checks soon, each input is also tried as one field of
// a payload that is valid for every event at once: its first byte picks the field (any member or list
// element, at any depth) and whether to remove it, the second the direction whose events decode it; the
// rest, if it is JSON, becomes the field's value.
// Properties checked beyond "no crash, no sanitizer report":
//   * a parsed frame serializes to text that parses again and serializes to the same text;
//   * a decoded event encodes to a payload that decodes to an equal event;
//   * every refusal carries a message.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "messages/phoenix_frame.hpp"
#include "messages/portal_events.hpp"

namespace {

using namespace firebreak::messages;

void check(bool ok) {
  if (!ok) std::abort();
}

/// Decodes the payload as `Event`, through the direction V that carries it.
template <class V, class Event>
void decode_as(const nlohmann::json& payload) {
  const auto r = decode_event<V>(Event::event, payload);
  check(r.value.has_value() != r.error.has_value());
  if (!r) {
    check(!r.error->message.empty());
    return;
  }
  check(std::holds_alternative<Event>(*r.value));
  const auto again = from_json<Event>(to_json(*r.value));
  check(again && *again == std::get<Event>(*r.value));
  check(!summary(*r.value).empty());
}

/// Decodes the payload as every event V carries, whatever the frame's own event name says.
template <class... Events>
void decode_as_every_event(const nlohmann::json& payload, std::variant<Events...>*) {
  (decode_as<std::variant<Events...>, Events>(payload), ...);
}

template <class V>
void decode_as_every_event(const nlohmann::json& payload) {
  decode_as_every_event(payload, static_cast<V*>(nullptr));
}

/// Valid for every event: decoders ignore the fields of the others.
const nlohmann::json& universal_payload() {
  static const auto* payload = new nlohmann::json(nlohmann::json::parse(R"({
    "interface": {"ipv4": "100.64.0.7", "ipv6": "fd00:2021:1111::7"},
    "resources": [{"id": "r1", "name": "n", "address": "10.0.0.0/24", "site_id": "s1",
                   "filters": [{"protocol": "tcp", "port_range_start": 80, "port_range_end": 443},
                               {"protocol": "icmp"}]}],
    "relays": [{"id": "rl", "type": "turn", "addr": "203.0.113.9:3478", "username": "1:rl", "password": "p",
                "expires_at": 1700000000}],
    "id": "r1", "name": "n", "address": "10.0.0.1", "site_id": "s1",
    "filters": [{"protocol": "udp", "port_range_start": 53, "port_range_end": 53}],
    "resource_id": "r1", "gateway_id": "g1",
    "gateway_public_key": "ZJgS0Rqd8n4mfwMWhdSwFb+YmhAjTxGWQJ8UmDqGIFo=",
    "gateway_ipv4": "100.64.0.2", "gateway_ipv6": "fd00::2",
    "preshared_key": "Ouvrhn6HDpIPmXev8v0bwitjhJ1W+Qtwmyy7IV7oqoQ=",
    "client_ice_credentials": {"username": "u", "password": "p"},
    "gateway_ice_credentials": {"username": "u", "password": "p"},
    "expires_at": null, "reason": "offline", "candidates": ["candidate:1"],
    "connected": [], "disconnected_ids": ["rl"], "connected_gateway_ids": ["g1"], "gateway_ids": ["g1"],
    "authorizations": [{"client_id": "c1", "resource_id": "r1", "expires_at": 1}],
    "ref": "x", "client_id": "c1", "client_ids": ["c1"],
    "client": {"id": "c1", "public_key": "0P/YpmNRiQV0gp0+0yPhtJAoTNqP2kTuFOMVklW/L20=",
               "preshared_key": "Ouvrhn6HDpIPmXev8v0bwitjhJ1W+Qtwmyy7IV7oqoQ=", "ipv4": "100.64.0.7",
               "ipv6": "fd00::7"},
    "resource": {"id": "r1", "name": "n", "address": "10.0.0.1", "site_id": "s1", "filters": []}
  })"));
  return *payload;
}

void decode_payload(const nlohmann::json& payload) {
  decode_as_every_event<client_topic::from_portal>(payload);
  decode_as_every_event<client_topic::to_portal>(payload);
  decode_as_every_event<gateway_topic::from_portal>(payload);
  decode_as_every_event<gateway_topic::to_portal>(payload);
}

/// JSON pointers to every member and list element of the universal payload.
void collect_pointers(const nlohmann::json& j, const std::string& at, std::vector<std::string>& out) {
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      out.push_back(at + "/" + key);
      collect_pointers(value, at + "/" + key, out);
    }
  } else if (j.is_array()) {
    for (std::size_t i = 0; i < j.size(); ++i) {
      out.push_back(at + "/" + std::to_string(i));
      collect_pointers(j[i], at + "/" + std::to_string(i), out);
    }
  }
}

const std::vector<std::string>& field_pointers() {
  static const auto* pointers = [] {
    auto* out = new std::vector<std::string>();
    collect_pointers(universal_payload(), "", *out);
    return out;
  }();
  return *pointers;
}

/// data[0] picks a field of the universal payload (bit 7: remove it), data[1] the direction whose events
/// decode it; the rest is the field's new value.
void one_field(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return;
  const auto& pointers = field_pointers();
  const nlohmann::json::json_pointer where(pointers[(data[0] & 0x7f) % pointers.size()]);
  nlohmann::json payload = universal_payload();
  if (data[0] & 0x80) {
    payload.at(where.parent_pointer()).is_object() ? (void)payload.at(where.parent_pointer()).erase(where.back())
                                                   : payload.at(where.parent_pointer()).erase(std::stoul(where.back()));
  } else {
    // Through the frame parser, so the value obeys the same size and depth limits as any payload.
    std::string text = R"([null,null,"t","e",{"v":)";
    text.append(reinterpret_cast<const char*>(data + 2), size - 2);
    text += "}]";
    const auto parsed = parse_frame(text, 64 * 1024);
    if (!parsed) return;
    payload.at(where) = parsed->payload.at("v");
  }
  switch (data[1] & 3) {
    case 0: decode_as_every_event<client_topic::from_portal>(payload); break;
    case 1: decode_as_every_event<client_topic::to_portal>(payload); break;
    case 2: decode_as_every_event<gateway_topic::from_portal>(payload); break;
    default: decode_as_every_event<gateway_topic::to_portal>(payload); break;
  }
}

void one_frame(std::string_view text) {
  const auto parsed = parse_frame(text, 64 * 1024);
  check(parsed.value.has_value() != parsed.error.has_value());
  if (!parsed) {
    check(!parsed.error->message.empty());
    return;
  }
  const frame& f = *parsed;
  const std::string once = serialize(f);
  const auto reparsed = parse_frame(once, once.size());
  check(reparsed.value.has_value());
  check(serialize(*reparsed) == once);

  decode_payload(f.payload);
  // And by the frame's own event name, as the portal link and the portal's sessions will.
  const auto by_name = decode_event<gateway_topic::to_portal>(f.event, f.payload);
  check(by_name.value.has_value() != by_name.error.has_value());
  (void)is_heartbeat(f);
  (void)read_reply(f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  one_frame(text);
  std::string wrapped = R"([null,null,"client","fuzz",)";
  wrapped.append(text);
  wrapped += "]";
  one_frame(wrapped);
  one_field(data, size);
  return 0;
}
