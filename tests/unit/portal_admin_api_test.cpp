// The admin API as a pure mapping over an in-memory store: every route's happy path, input refused with
// a message that names the field, 404/405 for unknown ids, routes and methods, tokens shown once and never
// echoed in errors, and the flow changes a delete hands to the coordinator.
#include <doctest/doctest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "actors/portal/admin_api.hpp"
#include "actors/portal/store.hpp"

using namespace firebreak::portal;
using json = nlohmann::json;

namespace {

constexpr std::int64_t t0 = 1'700'000'000'000;  // unix ms
constexpr std::int64_t t0_s = t0 / 1000;

firebreak::wireguard::system_random randomness;

struct answer {
  int status = 0;
  json body;
  std::string text;

  std::string error() const { return body.is_object() && body.contains("error") ? body["error"].get<std::string>() : ""; }
};

struct fixture {
  store db = open();
  flow_changes changes;
  std::int64_t now = t0;

  static store open() {
    auto s = store::open(":memory:", randomness);
    REQUIRE(s);
    return std::move(s).value();
  }

  answer call(const std::string& method, const std::string& target, const std::string& body = "") {
    changes.clear();
    auto r = handle_admin(db, admin_request{method, target, body}, now, changes);
    answer a;
    a.status = r.status;
    a.text = r.body;
    if (!r.body.empty()) {
      a.body = json::parse(r.body, nullptr, false);
      REQUIRE_FALSE(a.body.is_discarded());  // every answer is JSON
    }
    if (r.status >= 400) {
      INFO(r.body);
      REQUIRE(a.body.is_object());
      CHECK_FALSE(a.error().empty());
    }
    return a;
  }

  answer post(const std::string& target, const json& body) { return call("POST", target, body.dump()); }

  std::string created(const std::string& target, const json& body) {
    auto a = post(target, body);
    INFO(a.text);
    REQUIRE(a.status == 201);
    return a.body["id"].get<std::string>();
  }
};

/// A site with a gateway, a user in a group with a client, a resource and a policy, and a flow granted
/// under that policy and recorded in the store.
struct granted : fixture {
  std::string site, gateway, user, group, client, resource, policy, flow_id;

  granted() {
    site = created("/v1/sites", {{"name", "hq"}});
    gateway = created("/v1/gateways", {{"site_id", site}, {"name", "gw-1"}});
    user = created("/v1/users", {{"name", "Ada"}, {"email", "ada@acme.test"}});
    group = created("/v1/groups", {{"name", "engineering"}});
    REQUIRE(post("/v1/groups/" + group + "/members", {{"user_id", user}}).status == 201);
    client = created("/v1/clients", {{"user_id", user}, {"name", "ada-laptop"}});
    resource = created("/v1/resources", {{"site_id", site}, {"name", "wiki"}, {"address", "10.0.0.5"}});
    policy = created("/v1/policies", {{"group_id", group}, {"resource_id", resource}});
    auto f = db.record_flow(new_flow{client, gateway, resource, policy, std::nullopt}, now);
    REQUIRE(f);
    flow_id = f->id;
  }
};

}  // namespace

TEST_CASE("sites: create, list, get, delete; names are required and unique") {
  fixture f;
  auto made = f.post("/v1/sites", {{"name", "hq"}});
  REQUIRE(made.status == 201);
  CHECK(made.body["name"] == "hq");
  const auto id = made.body["id"].get<std::string>();

  auto list = f.call("GET", "/v1/sites");
  CHECK(list.status == 200);
  REQUIRE(list.body.is_array());
  REQUIRE(list.body.size() == 1);
  CHECK(list.body[0]["id"] == id);

  CHECK(f.call("GET", "/v1/sites/" + id).body["name"] == "hq");
  CHECK(f.call("GET", "/v1/sites/?verbose=1").status == 200);  // a trailing slash and a query are fine

  auto missing = f.post("/v1/sites", json::object());
  CHECK(missing.status == 400);
  CHECK(missing.error().find("\"name\"") != std::string::npos);

  auto wrong_type = f.post("/v1/sites", {{"name", 7}});
  CHECK(wrong_type.status == 400);
  CHECK(wrong_type.error().find("\"name\" must be a string") != std::string::npos);

  auto empty_name = f.post("/v1/sites", {{"name", "  "}});
  CHECK(empty_name.status == 400);

  auto twice = f.post("/v1/sites", {{"name", "hq"}});
  CHECK(twice.status == 409);
  CHECK(twice.error().find("hq") != std::string::npos);

  auto gone = f.call("DELETE", "/v1/sites/" + id);
  CHECK(gone.status == 200);
  CHECK(gone.body["deleted"] == true);
  CHECK(gone.body["flows_revoked"] == 0);
  CHECK(f.call("GET", "/v1/sites/" + id).status == 404);
  CHECK(f.call("DELETE", "/v1/sites/" + id).status == 404);
  CHECK(f.call("GET", "/v1/sites").body.empty());
}

TEST_CASE("bodies: malformed JSON, a non-object, an unknown field and no body are refused readably") {
  fixture f;
  auto malformed = f.call("POST", "/v1/sites", R"({"name": )");
  CHECK(malformed.status == 400);
  CHECK(malformed.error().find("malformed JSON") != std::string::npos);

  auto array = f.call("POST", "/v1/sites", R"(["hq"])");
  CHECK(array.status == 400);
  CHECK(array.error().find("JSON object") != std::string::npos);

  auto none = f.call("POST", "/v1/sites", "");
  CHECK(none.status == 400);
  CHECK(none.error().find("{\"name\": \"...\"}") != std::string::npos);  // shows what is expected

  auto typo = f.post("/v1/sites", {{"name", "hq"}, {"nmae", "x"}});
  CHECK(typo.status == 400);
  CHECK(typo.error().find("'nmae'") != std::string::npos);
}

TEST_CASE("routes: unknown paths are 404, known paths with another method are 405") {
  fixture f;
  for (const char* target : {"/", "/v1", "/v2/sites", "/v1/nothing", "/v1/sites/a/b", "/v1/groups/g/owners",
                             "/v1/groups/g/members/u/x", "/v1//sites"}) {
    INFO(target);
    CHECK(f.call("GET", target).status == 404);
  }
  CHECK(f.call("GET", "/v1/nothing").error().find("/v1/sites") != std::string::npos);  // lists the routes

  auto put = f.call("PUT", "/v1/sites");
  CHECK(put.status == 405);
  CHECK(put.error().find("GET or POST") != std::string::npos);
  CHECK(f.call("POST", "/v1/sites/abc").status == 405);
  CHECK(f.call("PATCH", "/v1/policies/abc").status == 405);
  CHECK(f.call("POST", "/v1/flows").status == 405);
  CHECK(f.call("DELETE", "/v1/flows").status == 405);
  CHECK(f.call("GET", "/v1/groups/g/members/u").status == 405);
  CHECK(f.call("GET", "/v1/sites/%zz").status == 400);
}

TEST_CASE("gateways: created with its token shown once; listed without it") {
  fixture f;
  const auto site = f.created("/v1/sites", {{"name", "hq"}});
  auto made = f.post("/v1/gateways", {{"site_id", site}, {"name", "gw-1"}});
  REQUIRE(made.status == 201);
  const auto token = made.body["token"].get<std::string>();
  CHECK(token.rfind("fbg_", 0) == 0);
  CHECK(made.body["site_id"] == site);
  CHECK_FALSE(made.body["ipv4"].get<std::string>().empty());
  CHECK(f.db.authenticate_gateway(token));

  auto list = f.call("GET", "/v1/gateways");
  REQUIRE(list.body.size() == 1);
  CHECK_FALSE(list.body[0].contains("token"));
  CHECK(list.text.find(token) == std::string::npos);
  CHECK(f.call("GET", "/v1/gateways/" + made.body["id"].get<std::string>()).text.find(token) == std::string::npos);

  auto no_site = f.post("/v1/gateways", {{"name", "gw-2"}});
  CHECK(no_site.status == 400);
  CHECK(no_site.error().find("\"site_id\"") != std::string::npos);
  auto no_name = f.post("/v1/gateways", {{"site_id", site}});
  CHECK(no_name.error().find("\"name\"") != std::string::npos);
  auto unknown_site = f.post("/v1/gateways", {{"site_id", "nope"}, {"name", "gw-2"}});
  CHECK(unknown_site.status == 400);
  CHECK(unknown_site.error().find("nope") != std::string::npos);

  CHECK(f.call("DELETE", "/v1/gateways/" + made.body["id"].get<std::string>()).status == 200);
  CHECK(f.call("GET", "/v1/gateways").body.empty());
}

TEST_CASE("users: name and email required; the email must look like one and be unique") {
  fixture f;
  auto made = f.post("/v1/users", {{"name", "Ada"}, {"email", "ada@acme.test"}});
  REQUIRE(made.status == 201);
  CHECK(made.body["email"] == "ada@acme.test");
  CHECK(f.call("GET", "/v1/users").body.size() == 1);

  auto no_email = f.post("/v1/users", {{"name", "Bob"}});
  CHECK(no_email.status == 400);
  CHECK(no_email.error().find("\"email\"") != std::string::npos);
  CHECK(f.post("/v1/users", {{"name", "Bob"}, {"email", "bob"}}).status == 400);
  CHECK(f.post("/v1/users", {{"name", "Ada 2"}, {"email", "ada@acme.test"}}).status == 409);

  const auto id = made.body["id"].get<std::string>();
  CHECK(f.call("GET", "/v1/users/" + id).body["name"] == "Ada");
  CHECK(f.call("DELETE", "/v1/users/" + id).status == 200);
  CHECK(f.call("GET", "/v1/users/" + id).status == 404);
}

TEST_CASE("groups and memberships: add, list, remove; adding widens access") {
  fixture f;
  const auto user = f.created("/v1/users", {{"name", "Ada"}, {"email", "ada@acme.test"}});
  auto made = f.post("/v1/groups", {{"name", "engineering"}});
  REQUIRE(made.status == 201);
  CHECK(made.body["members"].empty());
  const auto group = made.body["id"].get<std::string>();

  auto added = f.post("/v1/groups/" + group + "/members", {{"user_id", user}});
  CHECK(added.status == 201);
  CHECK(added.body == json{{"group_id", group}, {"user_id", user}});

  CHECK(f.post("/v1/groups/" + group + "/members", {{"user_id", user}}).status == 409);
  CHECK(f.post("/v1/groups/nope/members", {{"user_id", user}}).status == 404);
  auto no_user = f.post("/v1/groups/" + group + "/members", json::object());
  CHECK(no_user.status == 400);
  CHECK(no_user.error().find("\"user_id\"") != std::string::npos);
  CHECK(f.post("/v1/groups/" + group + "/members", {{"user_id", "nobody"}}).status == 400);

  CHECK(f.call("GET", "/v1/groups/" + group + "/members").body == json::array({user}));
  CHECK(f.call("GET", "/v1/groups").body[0]["members"] == json::array({user}));
  CHECK(f.call("GET", "/v1/groups/" + group).body["members"] == json::array({user}));

  auto removed = f.call("DELETE", "/v1/groups/" + group + "/members/" + user);
  CHECK(removed.status == 200);
  CHECK(removed.body["deleted"] == true);
  CHECK(f.call("DELETE", "/v1/groups/" + group + "/members/" + user).status == 404);

  CHECK(f.call("DELETE", "/v1/groups/" + group).status == 200);
  CHECK(f.call("GET", "/v1/groups").body.empty());
}

TEST_CASE("clients: created with a token shown once; disabled and enabled by PATCH") {
  fixture f;
  const auto user = f.created("/v1/users", {{"name", "Ada"}, {"email", "ada@acme.test"}});
  auto made = f.post("/v1/clients", {{"user_id", user}, {"name", "ada-laptop"}});
  REQUIRE(made.status == 201);
  const auto token = made.body["token"].get<std::string>();
  CHECK(token.rfind("fbc_", 0) == 0);
  CHECK(made.body["disabled"] == false);
  const auto id = made.body["id"].get<std::string>();
  CHECK(f.call("GET", "/v1/clients").text.find(token) == std::string::npos);

  auto no_user = f.post("/v1/clients", {{"name", "x"}});
  CHECK(no_user.error().find("\"user_id\"") != std::string::npos);
  auto bad_key = f.post("/v1/clients", {{"user_id", user}, {"name", "x"}, {"public_key", "short"}});
  CHECK(bad_key.status == 400);

  auto off = f.call("PATCH", "/v1/clients/" + id, R"({"disabled": true})");
  CHECK(off.status == 200);
  CHECK(off.body["disabled"] == true);
  auto on = f.call("PATCH", "/v1/clients/" + id, R"({"disabled": false})");
  CHECK(on.body["disabled"] == false);

  auto not_bool = f.call("PATCH", "/v1/clients/" + id, R"({"disabled": "yes"})");
  CHECK(not_bool.status == 400);
  CHECK(not_bool.error().find("\"disabled\"") != std::string::npos);
  CHECK(f.call("PATCH", "/v1/clients/" + id, "{}").error().find("\"disabled\"") != std::string::npos);
  CHECK(f.call("PATCH", "/v1/clients/nope", R"({"disabled": true})").status == 404);

  CHECK(f.call("DELETE", "/v1/clients/" + id).status == 200);
  CHECK(f.call("GET", "/v1/clients/" + id).status == 404);
}

TEST_CASE("resources: address and port filters, validated, with errors that name the filter") {
  fixture f;
  const auto site = f.created("/v1/sites", {{"name", "hq"}});
  auto made = f.post("/v1/resources", {{"site_id", site},
                                       {"name", "web"},
                                       {"address", "10.0.0.0/24"},
                                       {"filters",
                                        {{{"protocol", "tcp"}, {"port_range_start", 80}, {"port_range_end", 443}},
                                         {{"protocol", "udp"}, {"port_range_start", 53}},
                                         {{"protocol", "icmp"}}}}});
  INFO(made.text);
  REQUIRE(made.status == 201);
  const auto& filters = made.body["filters"];
  REQUIRE(filters.size() == 3);
  CHECK(filters[0] == json{{"protocol", "tcp"}, {"port_range_start", 80}, {"port_range_end", 443}});
  CHECK(filters[1] == json{{"protocol", "udp"}, {"port_range_start", 53}, {"port_range_end", 53}});
  CHECK(filters[2] == json{{"protocol", "icmp"}});
  CHECK(f.call("GET", "/v1/resources").body[0] == made.body);

  auto all_traffic = f.post("/v1/resources", {{"site_id", site}, {"name", "db"}, {"address", "10.0.1.5"}});
  CHECK(all_traffic.status == 201);
  CHECK(all_traffic.body["filters"].empty());

  auto no_address = f.post("/v1/resources", {{"site_id", site}, {"name", "x"}});
  CHECK(no_address.error().find("\"address\"") != std::string::npos);
  auto host_bits = f.post("/v1/resources", {{"site_id", site}, {"name", "x"}, {"address", "10.0.0.1/24"}});
  CHECK(host_bits.status == 400);
  CHECK(host_bits.error().find("10.0.0.0/24") != std::string::npos);

  auto bad = [&](const json& filter) {
    return f.post("/v1/resources", {{"site_id", site}, {"name", "x"}, {"address", "10.0.2.0/24"},
                                    {"filters", json::array({filter})}});
  };
  auto reversed = bad({{"protocol", "tcp"}, {"port_range_start", 443}, {"port_range_end", 80}});
  CHECK(reversed.status == 400);
  CHECK(reversed.error().find("reversed") != std::string::npos);
  auto no_ports = bad({{"protocol", "tcp"}});
  CHECK(no_ports.error().find("filters[0]") != std::string::npos);
  CHECK(no_ports.error().find("\"port_range_start\"") != std::string::npos);
  CHECK(bad({{"protocol", "tcp"}, {"port_range_start", 70000}}).error().find("filters[0]") != std::string::npos);
  CHECK(bad({{"protocol", "sctp"}, {"port_range_start", 1}}).status == 400);
  CHECK(bad({{"port_range_start", 1}}).error().find("\"protocol\"") != std::string::npos);
  CHECK(bad({{"protocol", "tcp"}, {"port", 1}}).error().find("'port'") != std::string::npos);
  CHECK(bad("tcp:80").error().find("filters[0]") != std::string::npos);
  CHECK(f.post("/v1/resources", {{"site_id", site}, {"name", "x"}, {"address", "10.0.3.0/24"}, {"filters", "tcp"}})
            .error()
            .find("\"filters\"") != std::string::npos);

  CHECK(f.call("DELETE", "/v1/resources/" + made.body["id"].get<std::string>()).status == 200);
}

TEST_CASE("policies: expires_at in unix seconds or absent; validation names the field") {
  fixture f;
  const auto site = f.created("/v1/sites", {{"name", "hq"}});
  const auto group = f.created("/v1/groups", {{"name", "eng"}});
  const auto resource = f.created("/v1/resources", {{"site_id", site}, {"name", "wiki"}, {"address", "10.0.0.5"}});

  auto forever = f.post("/v1/policies", {{"group_id", group}, {"resource_id", resource}});
  REQUIRE(forever.status == 201);
  CHECK(forever.body["expires_at"].is_null());

  auto timed = f.post("/v1/policies", {{"group_id", group},
                                       {"resource_id", resource},
                                       {"expires_at", t0_s + 600},
                                       {"description", "ten minutes"}});
  REQUIRE(timed.status == 201);
  CHECK(timed.body["expires_at"] == t0_s + 600);
  const auto id = timed.body["id"].get<std::string>();
  auto stored = f.db.get_policy(id);
  REQUIRE(stored);
  CHECK(stored->expires_at_ms == (t0_s + 600) * 1000);
  CHECK(stored->description == "ten minutes");
  CHECK(f.call("GET", "/v1/policies").body.size() == 2);
  CHECK(f.call("GET", "/v1/policies/" + id).body["description"] == "ten minutes");

  auto past = f.post("/v1/policies", {{"group_id", group}, {"resource_id", resource}, {"expires_at", t0_s - 1}});
  CHECK(past.status == 400);
  CHECK(past.error().find("expires_at") != std::string::npos);
  auto fractional = f.post("/v1/policies", {{"group_id", group}, {"resource_id", resource}, {"expires_at", 1.5}});
  CHECK(fractional.status == 400);
  CHECK(fractional.error().find("\"expires_at\"") != std::string::npos);
  auto in_ms = f.post("/v1/policies", {{"group_id", group}, {"resource_id", resource}, {"expires_at", t0 * 1000}});
  CHECK(in_ms.status == 400);
  CHECK(in_ms.error().find("\"expires_at\"") != std::string::npos);
  CHECK(f.post("/v1/policies", {{"group_id", group}, {"resource_id", resource}, {"expires_at", nullptr}}).status ==
        201);
  CHECK(f.post("/v1/policies", {{"resource_id", resource}}).error().find("\"group_id\"") != std::string::npos);
  CHECK(f.post("/v1/policies", {{"group_id", group}}).error().find("\"resource_id\"") != std::string::npos);
  CHECK(f.post("/v1/policies", {{"group_id", "nope"}, {"resource_id", resource}}).status == 400);

  CHECK(f.call("DELETE", "/v1/policies/" + id).status == 200);
  CHECK(f.call("GET", "/v1/policies/" + id).status == 404);
}

TEST_CASE("deleting a policy revokes the flow it granted, for the coordinator to announce") {
  granted g;
  auto gone = g.call("DELETE", "/v1/policies/" + g.policy);
  REQUIRE(gone.status == 200);
  CHECK(gone.body["flows_revoked"] == 1);
  REQUIRE(g.changes.size() == 1);
  CHECK(g.changes[0].kind == flow_change_kind::revoke);
  CHECK(g.changes[0].reason == revoke_reason::access_removed);
  CHECK(g.changes[0].flow.id == g.flow_id);
  CHECK(g.changes[0].flow.client_id == g.client);
  CHECK(g.call("GET", "/v1/flows").body.empty());
}

TEST_CASE("disabling a client and removing a membership revoke its flows") {
  SUBCASE("disable") {
    granted g;
    auto off = g.call("PATCH", "/v1/clients/" + g.client, R"({"disabled": true})");
    CHECK(off.body["flows_revoked"] == 1);
    REQUIRE(g.changes.size() == 1);
    CHECK(g.changes[0].reason == revoke_reason::client_disabled);
  }
  SUBCASE("membership") {
    granted g;
    auto out = g.call("DELETE", "/v1/groups/" + g.group + "/members/" + g.user);
    CHECK(out.body["flows_revoked"] == 1);
    REQUIRE(g.changes.size() == 1);
    CHECK(g.changes[0].flow.id == g.flow_id);
  }
  SUBCASE("resource") {
    granted g;
    CHECK(g.call("DELETE", "/v1/resources/" + g.resource).body["flows_revoked"] == 1);
    REQUIRE(g.changes.size() == 1);
    CHECK(g.changes[0].reason == revoke_reason::resource_deleted);
  }
}

TEST_CASE("a second policy with a later expiry updates a live flow's expiry") {
  granted g;
  // Replace the everlasting policy by a timed one, then add a longer one: the flow's expiry moves.
  auto timed = g.post("/v1/policies", {{"group_id", g.group}, {"resource_id", g.resource}, {"expires_at", t0_s + 60}});
  REQUIRE(timed.status == 201);
  auto gone = g.call("DELETE", "/v1/policies/" + g.policy);
  REQUIRE(gone.status == 200);
  CHECK(gone.body["flows_updated"] == 1);
  auto longer = g.post("/v1/policies", {{"group_id", g.group}, {"resource_id", g.resource}, {"expires_at", t0_s + 3600}});
  REQUIRE(longer.status == 201);
  REQUIRE(g.changes.size() == 1);
  CHECK(g.changes[0].kind == flow_change_kind::expiry_updated);
  CHECK(g.changes[0].new_expires_at_ms == (t0_s + 3600) * 1000);
}

TEST_CASE("flows: listed with ids and expiry in unix seconds; one revoked by DELETE") {
  granted g;
  auto list = g.call("GET", "/v1/flows");
  REQUIRE(list.status == 200);
  REQUIRE(list.body.size() == 1);
  const auto& row = list.body[0];
  CHECK(row["id"] == g.flow_id);
  CHECK(row["client_id"] == g.client);
  CHECK(row["gateway_id"] == g.gateway);
  CHECK(row["resource_id"] == g.resource);
  CHECK(row["policy_id"] == g.policy);
  CHECK(row["created_at"] == t0_s);
  CHECK(row["expires_at"].is_null());
  CHECK(g.call("GET", "/v1/flows/" + g.flow_id).body == row);
  CHECK(g.call("GET", "/v1/flows/nope").status == 404);

  auto revoked = g.call("DELETE", "/v1/flows/" + g.flow_id);
  REQUIRE(revoked.status == 200);
  CHECK(revoked.body["flows_revoked"] == 1);
  REQUIRE(g.changes.size() == 1);
  CHECK(g.changes[0].kind == flow_change_kind::revoke);
  CHECK(g.changes[0].reason == revoke_reason::access_removed);
  CHECK(g.changes[0].flow.id == g.flow_id);
  CHECK(g.changes[0].flow.gateway_id == g.gateway);
  CHECK(g.call("GET", "/v1/flows").body.empty());
  CHECK(g.call("DELETE", "/v1/flows/" + g.flow_id).status == 404);
  CHECK(g.changes.empty());

  auto timed = g.db.record_flow(new_flow{g.client, g.gateway, g.resource, g.policy, t0 + 90'500}, t0);
  REQUIRE(timed);
  CHECK(g.call("GET", "/v1/flows").body[0]["expires_at"] == t0_s + 90);
}

TEST_CASE("tokens never appear in error messages") {
  granted g;
  auto made = g.post("/v1/clients", {{"user_id", g.user}, {"name", "second"}});
  const auto token = made.body["token"].get<std::string>();
  for (const auto& a : {g.call("GET", "/v1/clients/" + token), g.call("DELETE", "/v1/gateways/" + token),
                        g.call("GET", "/v1/" + token), g.post("/v1/sites", {{token, "x"}}),
                        g.post("/v1/gateways", {{"site_id", token}, {"name", "x"}}),
                        g.call("POST", "/v1/sites", "{\"name\": " + token + "}"),
                        g.call("PUT", "/v1/clients/" + token)}) {
    INFO(a.text);
    CHECK(a.status >= 400);
    CHECK(a.text.find(token) == std::string::npos);
    CHECK(a.text.find(token.substr(4, 20)) == std::string::npos);
  }
}
