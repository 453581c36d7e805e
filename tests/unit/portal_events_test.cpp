// The portal's events: each one survives to_json → from_json unchanged; a payload in Firezone's shape
// decodes; every missing or mistyped field, at any depth, is refused with an error naming its path;
// fields from a newer portal are ignored; and no summary or error ever shows a secret.
#include <doctest/doctest.h>

#include <string>
#include <tuple>
#include <vector>

#include "messages/portal_events.hpp"

using namespace firebreak::messages;
using nlohmann::json;
namespace ct = firebreak::messages::client_topic;
namespace gt = firebreak::messages::gateway_topic;

namespace {

// WireGuard keys made for these tests only.
constexpr const char* gateway_public_key = "ZJgS0Rqd8n4mfwMWhdSwFb+YmhAjTxGWQJ8UmDqGIFo=";
constexpr const char* client_public_key = "0P/YpmNRiQV0gp0+0yPhtJAoTNqP2kTuFOMVklW/L20=";
constexpr const char* preshared_key = "Ouvrhn6HDpIPmXev8v0bwitjhJ1W+Qtwmyy7IV7oqoQ=";
constexpr const char* relay_password = "relay-pw-8d2f1c0a-secret";
constexpr const char* client_ice_password = "client-ice-pw-secret-4af1";
constexpr const char* gateway_ice_password = "gateway-ice-pw-secret-77c2";
const std::vector<std::string> secrets = {preshared_key, relay_password, client_ice_password, gateway_ice_password};

relay sample_relay(std::string id) {
  return relay{id, "turn", "203.0.113.9:3478", "1700003600:" + id, relay_password, 1700003600};
}

resource_description sample_resource() {
  return resource_description{"res-1",
                              "intranet",
                              "10.0.0.0/24",
                              "site-1",
                              {filter{filter_protocol::tcp, 80, 443}, filter{filter_protocol::udp, 53, 53},
                               filter{filter_protocol::icmp, std::nullopt, std::nullopt}}};
}

ice_credentials client_ice() { return {"cufrag", client_ice_password}; }
ice_credentials gateway_ice() { return {"gufrag", gateway_ice_password}; }
tunnel_interface sample_interface() { return {"100.64.0.7", "fd00:2021:1111::7"}; }

ct::flow_created sample_flow_created() {
  return {"res-1",        "gw-1",      "site-1",     gateway_public_key, "100.64.0.2", "fd00:2021:1111::2",
          preshared_key, client_ice(), gateway_ice(), 1700007200};
}

gt::authorize_flow sample_authorize_flow() {
  return {"ref-42",    flow_client{"cl-1", client_public_key, preshared_key, "100.64.0.7", "fd00:2021:1111::7"},
          client_ice(), gateway_ice(), sample_resource(), 1700007200};
}

/// One of every event, with every list non-empty and every optional set (plus a few unset).
auto samples() {
  return std::make_tuple(
      ct::init{sample_interface(), {sample_resource()}, {sample_relay("relay-a"), sample_relay("relay-b")}},
      ct::resource_created_or_updated{sample_resource()}, ct::resource_deleted{"res-1"}, sample_flow_created(),
      ct::flow_creation_failed{"res-1", ct::flow_failure_reason::offline},
      ct::ice_candidates{"gw-1", {"candidate:1 1 UDP 2130706431 192.0.2.3 51820 typ host"}},
      ct::invalidate_ice_candidates{"gw-1", {"candidate:1 1 UDP 2130706431 192.0.2.3 51820 typ host"}},
      relays_presence{{sample_relay("relay-c")}, {"relay-a"}}, ct::create_flow{"res-1", {"gw-1", "gw-2"}},
      ct::broadcast_ice_candidates{{"gw-1"}, {"candidate:2 1 UDP 1694498815 198.51.100.4 40000 typ srflx"}},
      ct::broadcast_invalidated_ice_candidates{{"gw-1"}, {"candidate:2"}},
      gt::init{sample_interface(),
               {sample_relay("relay-a")},
               {authorization{"cl-1", "res-1", 1700007200}, authorization{"cl-2", "res-1", std::nullopt}}},
      sample_authorize_flow(), gt::reject_access{"cl-1", "res-1"},
      gt::access_authorization_expiry_updated{"cl-1", "res-1", 1700009000}, gt::ice_candidates{"cl-1", {"candidate:3"}},
      gt::invalidate_ice_candidates{"cl-1", {"candidate:3"}}, gt::flow_authorized{"ref-42"},
      gt::broadcast_ice_candidates{{"cl-1", "cl-2"}, {"candidate:4"}},
      gt::broadcast_invalidated_ice_candidates{{"cl-1"}, {"candidate:4"}});
}

template <class F>
void for_each_sample(F f) {
  std::apply([&](const auto&... e) { (f(e), ...); }, samples());
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

template <class T, class V>
constexpr bool carries = false;
template <class T, class... Events>
constexpr bool carries<T, std::variant<Events...>> = (std::is_same_v<T, Events> || ...);

template <class T>
decode_error refused(const json& payload) {
  auto r = from_json<T>(payload);
  REQUIRE_FALSE(r);
  REQUIRE(r.error);
  return *r.error;
}

/// A member of an object somewhere in a payload: its parent (as a JSON pointer), its key, and its path
/// as errors name it ("relays[1].expires_at").
struct member_ref {
  std::string parent;
  std::string key;
  std::string path;
};

void collect_members(const json& j, const std::string& pointer, const std::string& path, std::vector<member_ref>& out) {
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      const std::string p = path.empty() ? key : path + "." + key;
      out.push_back({pointer, key, p});
      collect_members(value, pointer + "/" + key, p, out);
    }
  } else if (j.is_array()) {
    for (std::size_t i = 0; i < j.size(); ++i)
      collect_members(j[i], pointer + "/" + std::to_string(i), path + "[" + std::to_string(i) + "]", out);
  }
}

std::vector<member_ref> members(const json& j) {
  std::vector<member_ref> out;
  collect_members(j, "", "", out);
  return out;
}

json& parent_of(json& j, const member_ref& m) { return j.at(json::json_pointer(m.parent)); }

}  // namespace

// ---- round trips ------------------------------------------------------------------------------------------

TEST_CASE("every event survives to_json then from_json unchanged") {
  for_each_sample([](const auto& e) {
    using T = std::decay_t<decltype(e)>;
    INFO(T::event);
    const auto back = from_json<T>(to_json(e));
    INFO((back.error ? back.error->message : ""));
    REQUIRE(back);
    CHECK(*back == e);
  });
}

TEST_CASE("optional expiries that are empty survive the round trip as null") {
  auto f = sample_flow_created();
  f.expires_at.reset();
  CHECK(to_json(f)["expires_at"].is_null());
  CHECK(*from_json<ct::flow_created>(to_json(f)) == f);
  gt::access_authorization_expiry_updated u{"cl-1", "res-1", std::nullopt};
  CHECK(*from_json<gt::access_authorization_expiry_updated>(to_json(u)) == u);
}

TEST_CASE("every event decodes through its direction's variant, by name") {
  const auto through = [](const auto& e, auto direction) {
    using V = decltype(direction);
    using T = std::decay_t<decltype(e)>;
    INFO(T::event);
    const auto r = decode_event<V>(T::event, to_json(e));
    REQUIRE(r);
    REQUIRE(std::holds_alternative<T>(*r.value));
    CHECK(std::get<T>(*r.value) == e);
    CHECK(event_name(*r.value) == T::event);
    CHECK(to_json(*r.value) == to_json(e));
  };
  for_each_sample([&](const auto& e) {
    using T = std::decay_t<decltype(e)>;
    bool carried = false;
    if constexpr (carries<T, ct::from_portal>) through(e, ct::from_portal{}), carried = true;
    if constexpr (carries<T, ct::to_portal>) through(e, ct::to_portal{}), carried = true;
    if constexpr (carries<T, gt::from_portal>) through(e, gt::from_portal{}), carried = true;
    if constexpr (carries<T, gt::to_portal>) through(e, gt::to_portal{}), carried = true;
    CHECK(carried);
  });
}

TEST_CASE("init on the client topic and init on the gateway topic are different events") {
  const auto client_init = std::get<0>(samples());
  const auto r = decode_event<gt::from_portal>("init", to_json(client_init));
  REQUIRE_FALSE(r);
  CHECK(r.error->kind == decode_error_kind::missing_field);
  CHECK(r.error->field == "authorizations");
}

// ---- the wire shape ------------------------------------------------------------------------------------

TEST_CASE("a flow_created in Firezone's shape decodes") {
  const auto payload = json::parse(R"({
    "resource_id": "73037362-715d-4a83-a749-f18eadd970e6",
    "gateway_id": "f1a1b2c3-0000-4000-8000-000000000001",
    "site_id": "5d9c1f1e-0000-4000-8000-000000000002",
    "gateway_public_key": "ZJgS0Rqd8n4mfwMWhdSwFb+YmhAjTxGWQJ8UmDqGIFo=",
    "gateway_ipv4": "100.64.0.2",
    "gateway_ipv6": "fd00:2021:1111::2",
    "preshared_key": "Ouvrhn6HDpIPmXev8v0bwitjhJ1W+Qtwmyy7IV7oqoQ=",
    "client_ice_credentials": {"username": "cufrag", "password": "cpass"},
    "gateway_ice_credentials": {"username": "gufrag", "password": "gpass"},
    "expires_at": 1700007200
  })");
  const auto r = from_json<ct::flow_created>(payload);
  REQUIRE(r);
  CHECK(r->gateway_ipv6 == "fd00:2021:1111::2");
  CHECK(r->gateway_ice_credentials.password == "gpass");
  CHECK(r->expires_at == 1700007200);
}

TEST_CASE("resource_created_or_updated's payload is the resource itself, with icmp carrying no ports") {
  const auto j = to_json(ct::resource_created_or_updated{sample_resource()});
  CHECK(j["id"] == "res-1");
  CHECK(j["filters"][0] == json{{"protocol", "tcp"}, {"port_range_start", 80}, {"port_range_end", 443}});
  CHECK(j["filters"][2] == json{{"protocol", "icmp"}});
}

TEST_CASE("an absent optional field is the same as null") {
  auto j = to_json(sample_flow_created());
  j.erase("expires_at");
  const auto r = from_json<ct::flow_created>(j);
  REQUIRE(r);
  CHECK_FALSE(r->expires_at);
}

TEST_CASE("fields this build does not know are ignored, at the root and inside") {
  for_each_sample([](const auto& e) {
    using T = std::decay_t<decltype(e)>;
    INFO(T::event);
    auto j = to_json(e);
    for (const auto& m : members(j)) parent_of(j, m)["also_new"] = "ignored";
    j["added_in_a_later_portal"] = json{{"x", 1}};
    const auto r = from_json<T>(j);
    REQUIRE(r);
    CHECK(*r == e);
  });
}

// ---- refusals -------------------------------------------------------------------------------------------

TEST_CASE("removing any required field, at any depth, is an error naming its path") {
  for_each_sample([](const auto& e) {
    using T = std::decay_t<decltype(e)>;
    const json whole = to_json(e);
    for (const auto& m : members(whole)) {
      INFO(T::event << ": without " << m.path);
      json j = whole;
      REQUIRE(parent_of(j, m).erase(m.key) == 1);
      const auto r = from_json<T>(j);
      if (m.key == "expires_at") {  // the one optional field: absent is the same as null
        CHECK(r);
        continue;
      }
      REQUIRE_FALSE(r);
      CHECK(r.error->kind == decode_error_kind::missing_field);
      CHECK(r.error->field == m.path);
      CHECK(r.error->message == std::string(T::event) + ": field \"" + m.path + "\" is missing");
    }
  });
}

TEST_CASE("a field of the wrong type, at any depth, is an error naming its path and never its value") {
  for_each_sample([](const auto& e) {
    using T = std::decay_t<decltype(e)>;
    const json whole = to_json(e);
    for (const auto& m : members(whole)) {
      INFO(T::event << ": " << m.path << " a boolean");
      json j = whole;
      parent_of(j, m)[m.key] = true;  // a boolean is valid nowhere in these events
      const auto r = from_json<T>(j);
      REQUIRE_FALSE(r);
      CHECK(r.error->kind == decode_error_kind::wrong_type);
      CHECK(r.error->field == m.path);
      CHECK(contains(r.error->message, "\"" + m.path + "\" must be "));
      CHECK(r.error->message.ends_with("; got a boolean"));
      for (const auto& secret : secrets) CHECK_FALSE(contains(r.error->message, secret));
    }
  });
}

TEST_CASE("a list element of the wrong type is named by its index") {
  auto j = to_json(std::get<0>(samples()));
  j["relays"][1]["expires_at"] = "soon";
  CHECK(refused<ct::init>(j).field == "relays[1].expires_at");
  j = to_json(ct::create_flow{"res-1", {"gw-1", "gw-2"}});
  j["connected_gateway_ids"][1] = 7;
  const auto e = refused<ct::create_flow>(j);
  CHECK(e.message == "create_flow: field \"connected_gateway_ids[1]\" must be a string; got an integer");
}

TEST_CASE("a payload that is not an object is refused as a whole") {
  const auto e = refused<ct::create_flow>(json::array());
  CHECK(e.kind == decode_error_kind::wrong_type);
  CHECK(e.field.empty());
  CHECK(e.message == "create_flow: the payload must be a JSON object; got an array");
}

TEST_CASE("an expiry that is text, fractional or out of range is refused") {
  auto j = to_json(sample_flow_created());
  j["expires_at"] = "2024-01-01T00:00:00Z";
  auto e = refused<ct::flow_created>(j);
  CHECK(e.message == "flow_created: field \"expires_at\" must be an integer (unix seconds) or null; got a string");
  j["expires_at"] = 1.5;
  CHECK(refused<ct::flow_created>(j).message.ends_with("got a fractional number"));
  j["expires_at"] = std::uint64_t(1) << 63;
  CHECK(refused<ct::flow_created>(j).kind == decode_error_kind::bad_value);
  j["expires_at"] = -5;  // before 1970 is odd, but a valid time
  CHECK(from_json<ct::flow_created>(j)->expires_at == -5);
}

TEST_CASE("flow_creation_failed's reason must be one of the three") {
  for (const auto* reason : {"not_found", "offline", "forbidden"}) {
    const auto r = from_json<ct::flow_creation_failed>(json{{"resource_id", "r"}, {"reason", reason}});
    REQUIRE(r);
    CHECK(to_string(r->reason) == reason);
  }
  const auto e = refused<ct::flow_creation_failed>(json{{"resource_id", "r"}, {"reason", "busy"}});
  CHECK(e.kind == decode_error_kind::bad_value);
  CHECK(e.field == "reason");
  CHECK(e.message ==
        "flow_creation_failed: field \"reason\" must be one of \"not_found\", \"offline\", \"forbidden\"; got \"busy\"");
}

TEST_CASE("addresses must be addresses of the right family") {
  auto j = to_json(std::get<0>(samples()));
  j["interface"]["ipv4"] = "fd00::1";
  auto e = refused<ct::init>(j);
  CHECK(e.kind == decode_error_kind::bad_value);
  CHECK(e.message == "init: field \"interface.ipv4\" must be an IPv4 address; got \"fd00::1\"");
  j = to_json(sample_flow_created());
  j["gateway_ipv6"] = "100.64.0.2";
  CHECK(refused<ct::flow_created>(j).field == "gateway_ipv6");
  j = to_json(sample_authorize_flow());
  j["client"]["ipv4"] = std::string("100.64.0.1\0evil", 15);
  CHECK(refused<gt::authorize_flow>(j).field == "client.ipv4");
}

TEST_CASE("a key that is not base64 of 32 bytes is refused without showing it") {
  auto j = to_json(sample_authorize_flow());
  const std::string almost = std::string(preshared_key).substr(0, 40) + "!!!=";
  j["client"]["preshared_key"] = almost;
  const auto e = refused<gt::authorize_flow>(j);
  CHECK(e.kind == decode_error_kind::bad_value);
  CHECK(e.field == "client.preshared_key");
  CHECK_FALSE(contains(e.message, almost));
  CHECK_FALSE(contains(e.message, std::string(preshared_key).substr(0, 20)));
  j = to_json(sample_flow_created());
  j["gateway_public_key"] = std::string(gateway_public_key).substr(0, 43);  // one character short
  CHECK(refused<ct::flow_created>(j).field == "gateway_public_key");
}

TEST_CASE("filters: ports in range, start not above end, a protocol we know") {
  auto j = to_json(ct::resource_created_or_updated{sample_resource()});
  j["filters"][0]["port_range_end"] = 70000;
  auto e = refused<ct::resource_created_or_updated>(j);
  CHECK(e.field == "filters[0].port_range_end");
  CHECK(e.message == "resource_created_or_updated: field \"filters[0].port_range_end\" must be a port, 0 to 65535; got 70000");
  j["filters"][0]["port_range_end"] = 79;
  CHECK(refused<ct::resource_created_or_updated>(j).message ==
        "resource_created_or_updated: field \"filters[0].port_range_end\" must not be below port_range_start (80); got 79");
  j["filters"][0]["port_range_end"] = -1;
  CHECK(refused<ct::resource_created_or_updated>(j).kind == decode_error_kind::bad_value);
  j = to_json(ct::resource_created_or_updated{sample_resource()});
  j["filters"][1]["protocol"] = "sctp";
  CHECK(refused<ct::resource_created_or_updated>(j).field == "filters[1].protocol");
}

TEST_CASE("a relay's addr must be host:port") {
  for (const auto* addr : {"203.0.113.9", "203.0.113.9:", ":3478", "203.0.113.9:99999", "relay:34x8"}) {
    auto j = to_json(relays_presence{{sample_relay("r")}, {}});
    j["connected"][0]["addr"] = addr;
    INFO(addr);
    CHECK(refused<relays_presence>(j).field == "connected[0].addr");
  }
  auto j = to_json(relays_presence{{sample_relay("r")}, {}});
  j["connected"][0]["addr"] = "[2001:db8::1]:3478";
  CHECK(from_json<relays_presence>(j));
}

TEST_CASE("an event a direction does not carry is unknown_event, naming what it does carry") {
  const auto r = decode_event<gt::to_portal>("create_flow", json::object());
  REQUIRE_FALSE(r);
  CHECK(r.error->kind == decode_error_kind::unknown_event);
  CHECK(r.error->message ==
        "unknown event \"create_flow\"; this direction carries flow_authorized, broadcast_ice_candidates, "
        "broadcast_invalidated_ice_candidates");
}

// ---- summaries --------------------------------------------------------------------------------------------

TEST_CASE("no summary contains a secret, and each starts with its event's name") {
  for_each_sample([](const auto& e) {
    using T = std::decay_t<decltype(e)>;
    const auto s = summary(e);
    INFO(s);
    CHECK(s.starts_with(std::string(T::event) + " "));
    for (const auto& secret : secrets) CHECK_FALSE(contains(s, secret));
  });
  const ct::from_portal v = sample_flow_created();
  CHECK(summary(v) == summary(sample_flow_created()));
}

TEST_CASE("a flow_created summary names the flow and its expiry") {
  CHECK(summary(sample_flow_created()) ==
        "flow_created resource=\"res-1\" gateway=\"gw-1\" site=\"site-1\" gateway_ipv4=\"100.64.0.2\" "
        "gateway_ipv6=\"fd00:2021:1111::2\" expires_at=1700007200");
  CHECK(summary(gt::access_authorization_expiry_updated{"cl-1", "res-1", std::nullopt}) ==
        "access_authorization_expiry_updated client=\"cl-1\" resource=\"res-1\" expires_at=never");
}

TEST_CASE("summaries quote ids, so a hostile id cannot forge a log line") {
  const auto s = summary(ct::resource_deleted{"r1\nflow_created resource=\"x\""});
  CHECK_FALSE(contains(s, "\n"));
  CHECK(s == R"(resource_deleted resource="r1\nflow_created resource=\"x\"")");
}
