// The portal's protocol over its real TLS WebSocket, with a client and a gateway of our own (see
// portal_harness.hpp): join, heartbeat and init; refused tokens; create_flow end to end and its three
// refusals; revoke, expiry update and expiry; a gateway that goes away; a restart; and bad input, which
// must hurt only the session that sent it.
//
// Every wait is an upper bound of a few seconds on something a working portal does at once; the only
// test that waits for time to pass is the one about a policy that expires.
#include "tests/e2e/portal_harness.hpp"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>

using namespace firebreak;
using namespace firebreak::portal_test;
using messages::reply_status;
namespace ct = messages::client_topic;
namespace gt = messages::gateway_topic;
using std::chrono::steady_clock;

namespace {

template <class T>
T decode(const messages::frame& f) {
  auto d = messages::from_json<T>(f.payload);
  REQUIRE_MESSAGE(d, f.event << " does not decode: " << d.error->message);
  return *d;
}

std::set<std::string> ids_of(const std::vector<messages::resource_description>& resources) {
  std::set<std::string> out;
  for (const auto& r : resources) out.insert(r.id);
  return out;
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TEST_CASE("join, heartbeat and init: a client sees exactly the resources its groups may reach") {
  portal_harness p;
  const auto& admin = p.admin();
  world w(admin);
  // A second resource for the client's group, one for a group the user is not in, one without a policy.
  const auto granted2 = admin.create_resource(w.site_id, "db", "10.30.0.5",
                                              json::array({{{"protocol", "icmp"}}}));
  admin.create_policy(w.group_id, granted2);
  const auto other_group = admin.create_group("finance");
  const auto not_mine = admin.create_resource(w.site_id, "ledger", "10.40.0.0/16");
  admin.create_policy(other_group, not_mine);
  const auto no_policy = admin.create_resource(w.site_id, "printer", "10.50.0.9");
  (void)no_policy;

  auto client = p.connect(w.client.token, w.client_key, "client", "client");
  auto joined = client->join();
  REQUIRE(joined.status == reply_status::ok);

  auto init = decode<ct::init>(client->next_push("init"));
  CHECK(init.interface.ipv4 == w.client.item.at("ipv4").get<std::string>());
  CHECK(init.interface.ipv6 == w.client.item.at("ipv6").get<std::string>());
  CHECK(!init.interface.ipv4.empty());
  CHECK(ids_of(init.resources) == std::set<std::string>{w.resource_id, granted2});
  for (const auto& r : init.resources) {
    CHECK(r.site_id == w.site_id);
    if (r.id == w.resource_id) {
      CHECK(r.address == "10.20.0.0/24");
      REQUIRE(r.filters.size() == 1);
      CHECK(r.filters[0].protocol == messages::filter_protocol::tcp);
      CHECK(r.filters[0].port_range_start == 443);
      CHECK(r.filters[0].port_range_end == 443);
    }
  }

  auto hb = client->heartbeat();
  CHECK(hb.status == reply_status::ok);

  // The client's WireGuard key from the connect parameters is what the admin API now shows.
  auto listed = admin.expect(200, "GET", "/v1/clients/" + w.client.id);
  CHECK(listed.at("public_key") == w.client_key);

  auto gateway = p.connect(w.gateway.token, w.gateway_key, "gateway", "gateway");
  REQUIRE(gateway->join().status == reply_status::ok);
  auto ginit = decode<gt::init>(gateway->next_push("init"));
  CHECK(ginit.interface.ipv4 == w.gateway.item.at("ipv4").get<std::string>());
  CHECK(ginit.interface.ipv6 == w.gateway.item.at("ipv6").get<std::string>());
  CHECK(ginit.authorizations.empty());
  CHECK(gateway->heartbeat().status == reply_status::ok);
  CHECK(admin.expect(200, "GET", "/v1/gateways/" + w.gateway.id).at("public_key") == w.gateway_key);
}

TEST_CASE("--hostname adds names to the certificate: localhost and 127.0.0.1 stay, so the local admin still connects") {
  portal_harness p([](portal::portal_config& c) { c.hostnames = {"portal.example.test"}; });
  // The harness's admin client reaches 127.0.0.1 and verifies the certificate against that address.
  CHECK(p.admin().list("sites").is_array());
  FILE* f = std::fopen((p.data_dir() / "tls" / "server-cert.pem").c_str(), "r");
  REQUIRE(f != nullptr);
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  REQUIRE(cert != nullptr);
  CHECK(X509_check_host(cert, "portal.example.test", 0, 0, nullptr) == 1);
  CHECK(X509_check_host(cert, "localhost", 0, 0, nullptr) == 1);
  CHECK(X509_check_ip_asc(cert, "127.0.0.1", 0) == 1);
  CHECK(X509_check_host(cert, "elsewhere.example.test", 0, 0, nullptr) != 1);
  X509_free(cert);
}

TEST_CASE("tokens: a bad one is refused with 403, a missing one with 401, a client cannot join the gateway topic") {
  portal_harness p;
  world w(p.admin());

  SUBCASE("bad and missing tokens get no session") {
    const auto probe_key = new_public_key();
    const std::vector<std::string> bad_tokens = {"fbc_0123456789abcdefghijklmnopqrstuv",
                                                 "fbg_0123456789abcdefghijklmnopqrstuv", "not-a-token",
                                                 w.client.token + "x", w.gateway.token + "x"};
    for (const auto& bad : bad_tokens) {
      CAPTURE(bad.substr(0, 4));
      auto c = p.connect_raw(portal_harness::socket_target(bad, probe_key));
      REQUIRE(c.error);
      CHECK(c.error->what == websocket::client_error::kind::refused);
      CHECK(c.error->http_status == 403);
      CHECK(c.error->message.find("invalid token") != std::string::npos);
      CHECK(c.error->message.find(bad) == std::string::npos);  // the token is never echoed
    }
    auto missing = p.connect_raw("/socket/websocket?vsn=2.0.0");
    REQUIRE(missing.error);
    CHECK(missing.error->what == websocket::client_error::kind::refused);
    CHECK(missing.error->http_status == 401);
    CHECK(missing.error->message.find("missing token") != std::string::npos);
    auto empty = p.connect_raw("/socket/websocket?token=&vsn=2.0.0");
    REQUIRE(empty.error);
    CHECK(empty.error->http_status == 401);
    // A refused connection stored nothing: the probe's WireGuard key belongs to no one.
    for (const auto& c : p.admin().list("clients")) CHECK(c.at("public_key") != probe_key);
    for (const auto& g : p.admin().list("gateways")) CHECK(g.at("public_key") != probe_key);
  }

  SUBCASE("a client token cannot join topic gateway; a gateway token cannot join topic client") {
    auto client = p.connect(w.client.token, w.client_key, "client", "client");
    auto wrong = client->join("gateway");
    CHECK(wrong.status == reply_status::error);
    CHECK(wrong.response.value("reason", "") == "unmatched topic");
    // Nothing was pushed for the refused join, and the right topic still works.
    CHECK(client->join().status == reply_status::ok);
    auto init = decode<ct::init>(client->next_push("init"));
    CHECK(ids_of(init.resources) == std::set<std::string>{w.resource_id});

    auto gateway = p.connect(w.gateway.token, w.gateway_key, "gateway", "gateway");
    auto gwrong = gateway->join("client");
    CHECK(gwrong.status == reply_status::error);
    CHECK(gwrong.response.value("reason", "") == "unmatched topic");
    // An event before the join is refused with a reason, the socket stays.
    auto early = gateway->push("flow_authorized", {{"ref", "1"}});
    CHECK(early.status == reply_status::error);
    CHECK(early.response.value("reason", "") == "join the channel first");
    CHECK(gateway->join().status == reply_status::ok);
    const auto ginit = gateway->next_push("init");
    CHECK(ginit.payload.contains("authorizations"));
  }

  SUBCASE("a good token with an unusable key (all zero, a gateway's, another client's): 409 saying why") {
    auto gateway = join_gateway(p, w);  // registers w.gateway_key
    auto other = p.admin().create_client(w.user_id, "w-phone");
    const auto other_key = new_public_key();
    auto phone = p.connect(other.token, other_key, "client", "phone");
    const std::vector<std::pair<std::string, std::string>> refused = {
        {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "all-zero"},
        {w.gateway_key, "a gateway uses this public key"},
        {other_key, "another client uses this public key"},
    };
    for (const auto& [key, why] : refused) {
      CAPTURE(why);
      auto c = p.connect_raw(portal_harness::socket_target(w.client.token, key));
      REQUIRE(c.error);
      CHECK(c.error->what == websocket::client_error::kind::refused);
      CHECK(c.error->http_status == 409);
      CHECK_MESSAGE(c.error->message.find(why) != std::string::npos, c.error->message);
      CHECK(c.error->message.find("invalid token") == std::string::npos);
      CHECK(c.error->message.find(w.client.token) == std::string::npos);
    }
    // A gateway presenting a client's key is refused the same way.
    auto g = p.connect_raw(portal_harness::socket_target(w.gateway.token, other_key));
    REQUIRE(g.error);
    CHECK(g.error->http_status == 409);
    // Nothing was taken over: each peer keeps its key, and the client still joins with its own.
    for (const auto& c : p.admin().list("clients"))
      if (c.at("id") == other.id) CHECK(c.at("public_key") == other_key);
    for (const auto& gw : p.admin().list("gateways"))
      if (gw.at("id") == w.gateway.id) CHECK(gw.at("public_key") == w.gateway_key);
    auto client = join_client(p, w);
    CHECK(client.init.contains("resources"));
  }
}

TEST_CASE("create_flow end to end: authorize_flow at our gateway, flow_authorized, flow_created at the client") {
  portal_harness p;
  const auto& admin = p.admin();
  world w(admin);
  auto gateway = join_gateway(p, w);
  auto client = join_client(p, w);

  auto r = client->push("create_flow", {{"resource_id", w.resource_id}, {"connected_gateway_ids", json::array()}});
  REQUIRE(r.status == reply_status::ok);

  auto af = decode<gt::authorize_flow>(gateway->next_push("authorize_flow"));
  CHECK(!af.ref.empty());
  CHECK(af.client.id == w.client.id);
  CHECK(af.client.public_key == w.client_key);
  CHECK(af.client.ipv4 == w.client.item.at("ipv4").get<std::string>());
  CHECK(af.client.ipv6 == w.client.item.at("ipv6").get<std::string>());
  CHECK(wireguard::key_from_base64(af.client.preshared_key).has_value());
  CHECK(!af.client_ice_credentials.username.empty());
  CHECK(!af.client_ice_credentials.password.empty());
  CHECK(!af.gateway_ice_credentials.username.empty());
  CHECK(!af.gateway_ice_credentials.password.empty());
  CHECK(af.client_ice_credentials != af.gateway_ice_credentials);
  CHECK(af.resource.id == w.resource_id);
  CHECK(af.resource.address == "10.20.0.0/24");
  CHECK(af.resource.site_id == w.site_id);
  CHECK(af.resource.filters.size() == 1);
  CHECK(!af.expires_at);  // the policy never expires
  // Nothing reaches the client before the gateway has answered.
  CHECK(!client->has_unread("flow_created"));

  auto ok = gateway->push("flow_authorized", {{"ref", af.ref}});
  CHECK(ok.status == reply_status::ok);

  auto created = decode<ct::flow_created>(client->next_push("flow_created"));
  CHECK(created.resource_id == w.resource_id);
  CHECK(created.gateway_id == w.gateway.id);
  CHECK(created.site_id == w.site_id);
  CHECK(created.gateway_public_key == w.gateway_key);
  CHECK(created.gateway_ipv4 == w.gateway.item.at("ipv4").get<std::string>());
  CHECK(created.gateway_ipv6 == w.gateway.item.at("ipv6").get<std::string>());
  CHECK(created.preshared_key == af.client.preshared_key);
  CHECK(created.client_ice_credentials == af.client_ice_credentials);
  CHECK(created.gateway_ice_credentials == af.gateway_ice_credentials);
  CHECK(!created.expires_at);

  auto flows = admin.flows_of(w.client.id, w.resource_id);
  REQUIRE(flows.size() == 1);
  CHECK(flows[0].at("gateway_id") == w.gateway.id);
  CHECK(flows[0].at("policy_id") == w.policy_id);
  CHECK(flows[0].at("expires_at").is_null());

  SUBCASE("a late or foreign flow_authorized is ignored (acknowledged, nothing more happens)") {
    auto again = gateway->push("flow_authorized", {{"ref", af.ref}});
    CHECK(again.status == reply_status::ok);
    auto bogus = gateway->push("flow_authorized", {{"ref", "no-such-ref"}});
    CHECK(bogus.status == reply_status::ok);
    // The client hears nothing more: the next thing it gets is the reply to its own heartbeat.
    CHECK(client->heartbeat().status == reply_status::ok);
    CHECK(!client->has_unread("flow_created"));
    CHECK(admin.flows_of(w.client.id, w.resource_id).size() == 1);
  }

  SUBCASE("the portal prefers a gateway the client is already connected to") {
    auto second = admin.create_gateway(w.site_id, "gw-2");
    world w2 = w;
    w2.gateway = second;
    w2.gateway_key = new_public_key();
    auto gateway2 = join_gateway(p, w2, "gateway-2");
    auto c2 = create_flow(*client.peer, *gateway2.peer, w.client.id, w.resource_id, json::array({second.id}));
    CHECK(c2.gateway_id == second.id);
    CHECK(c2.gateway_public_key == w2.gateway_key);
    CHECK(!gateway->has_unread("authorize_flow"));
  }
}

TEST_CASE("create_flow refused: not_found, forbidden, offline") {
  portal_harness p;
  const auto& admin = p.admin();
  world w(admin);
  auto gateway = join_gateway(p, w);
  auto client = join_client(p, w);

  SUBCASE("not_found: no such resource") {
    {  // a failed wait ends the test here, not inside CHECK
      const auto got = create_flow_failure(*client.peer, "res_does_not_exist");
      CHECK(got == "not_found");
    }
  }
  SUBCASE("forbidden: a resource with no policy, and one whose policy is for another group") {
    const auto bare = admin.create_resource(w.site_id, "bare", "10.60.0.1");
    {  // a failed wait ends the test here, not inside CHECK
      const auto got = create_flow_failure(*client.peer, bare);
      CHECK(got == "forbidden");
    }
    const auto others = admin.create_resource(w.site_id, "others", "10.60.0.2");
    admin.create_policy(admin.create_group("outsiders"), others);
    {  // a failed wait ends the test here, not inside CHECK
      const auto got = create_flow_failure(*client.peer, others);
      CHECK(got == "forbidden");
    }
  }
  SUBCASE("offline: the resource's site has a gateway, but it is not connected") {
    const auto site2 = admin.create_site("branch");
    admin.create_gateway(site2, "branch-gw");
    const auto far = admin.create_resource(site2, "far", "10.70.0.0/24");
    admin.create_policy(w.group_id, far);
    {  // a failed wait ends the test here, not inside CHECK
      const auto got = create_flow_failure(*client.peer, far);
      CHECK(got == "offline");
    }
    const auto site3 = admin.create_site("empty");
    const auto nowhere = admin.create_resource(site3, "nowhere", "10.80.0.1");
    admin.create_policy(w.group_id, nowhere);
    {  // a failed wait ends the test here, not inside CHECK
      const auto got = create_flow_failure(*client.peer, nowhere);
      CHECK(got == "offline");
    }
  }
  // The gateway of the resource's own site was never asked, and no flow was recorded.
  CHECK(gateway->heartbeat().status == reply_status::ok);
  CHECK(!gateway->has_unread("authorize_flow"));
  CHECK(admin.flows().empty());
  // The client's session is fine: a permitted flow still goes through.
  auto created = create_flow(*client.peer, *gateway.peer, w.client.id, w.resource_id);
  CHECK(created.gateway_id == w.gateway.id);
}

TEST_CASE("revoke: reject_access to the gateway and resource_deleted to the client") {
  portal_harness p;
  const auto& admin = p.admin();
  world w(admin);
  auto gateway = join_gateway(p, w);
  auto client = join_client(p, w);
  create_flow(*client.peer, *gateway.peer, w.client.id, w.resource_id);
  auto flows = admin.flows_of(w.client.id, w.resource_id);
  REQUIRE(flows.size() == 1);
  const auto flow_id = flows[0].at("id").get<std::string>();

  // Each way of taking access away; what the client hears when it asks again.
  std::string what;
  std::string asking_again;
  const auto t0 = steady_clock::now();
  SUBCASE("deleting the policy") {
    what = "policy deleted";
    auto answer = admin.remove("policies", w.policy_id);
    CHECK(answer.at("flows_revoked") == 1);
    CHECK(answer.at("flows_updated") == 0);
    asking_again = "forbidden";
  }
  SUBCASE("removing the user from the group") {
    what = "membership removed";
    auto answer = admin.expect(200, "DELETE", "/v1/groups/" + w.group_id + "/members/" + w.user_id);
    CHECK(answer.at("flows_revoked") == 1);
    asking_again = "forbidden";
  }
  SUBCASE("disabling the client") {
    what = "client disabled";
    auto answer = admin.expect(200, "PATCH", "/v1/clients/" + w.client.id, {{"disabled", true}});
    CHECK(answer.at("disabled") == true);
    CHECK(answer.at("flows_revoked") == 1);
    asking_again = "closed";  // a disabled client's session ends, and its token no longer connects
  }
  SUBCASE("deleting the resource") {
    what = "resource deleted";
    auto answer = admin.remove("resources", w.resource_id);
    CHECK(answer.at("flows_revoked") == 1);
    asking_again = "not_found";
  }
  SUBCASE("revoking the one flow (the policy stays)") {
    what = "flow revoked";
    auto answer = admin.remove("flows", flow_id);
    CHECK(answer.at("flows_revoked") == 1);
    asking_again = "granted";
  }
  CAPTURE(what);

  auto reject = decode<gt::reject_access>(gateway->next_push("reject_access", 2s));
  const auto at_gateway = steady_clock::now() - t0;
  CHECK(reject.client_id == w.client.id);
  CHECK(reject.resource_id == w.resource_id);
  if (asking_again != "granted") {  // access is gone: the client drops the resource
    auto deleted = decode<ct::resource_deleted>(client->next_push("resource_deleted", 2s));
    CHECK(deleted.id == w.resource_id);
  }
  MESSAGE(what << ": admin call -> reject_access at the gateway: "
               << std::chrono::duration_cast<std::chrono::milliseconds>(at_gateway).count() << " ms");

  CHECK(admin.flows_of(w.client.id, w.resource_id).empty());
  CHECK(!gateway->has_unread("access_authorization_expiry_updated"));
  if (asking_again == "granted") {
    {  // a failed wait ends the test here, not inside CHECK
      const auto got = create_flow(*client.peer, *gateway.peer, w.client.id, w.resource_id).gateway_id;
      CHECK(got == w.gateway.id);
    }
    // The policy still grants the resource: the client was never told to drop it.
    CHECK(!client->has_unread("resource_deleted"));
  } else if (asking_again == "closed") {
    auto closed = client->wait_closed();
    CHECK(closed.what == websocket::client_error::kind::closed);
    CHECK(closed.close_code == 1008);
    CHECK_MESSAGE(closed.close_reason.find("disabled") != std::string::npos, closed.close_reason);
    auto again = p.connect_raw(portal_harness::socket_target(w.client.token, w.client_key));
    REQUIRE(again.error);
    CHECK(again.error->http_status == 403);
  } else {
    {  // a failed wait ends the test here, not inside CHECK
      const auto got = create_flow_failure(*client.peer, w.resource_id);
      CHECK(got == asking_again);
    }
  }
}

TEST_CASE("expiry updated: a second policy still covers the flow after the longer one is deleted") {
  portal_harness p;
  const auto& admin = p.admin();
  world w(admin);  // w.policy_id: the client's group, never expires
  const auto contractors = admin.create_group("contractors");
  admin.add_member(contractors, w.user_id);
  const auto short_expiry = unix_now() + 3600;
  const auto short_policy = admin.create_policy(contractors, w.resource_id, short_expiry);

  auto gateway = join_gateway(p, w);
  auto client = join_client(p, w);
  auto created = create_flow(*client.peer, *gateway.peer, w.client.id, w.resource_id);
  CHECK(!created.expires_at);  // granted by the policy that lasts longest: never expires
  {
    auto flows = admin.flows_of(w.client.id, w.resource_id);
    REQUIRE(flows.size() == 1);
    CHECK(flows[0].at("policy_id") == w.policy_id);
  }

  auto answer = admin.remove("policies", w.policy_id);
  CHECK(answer.at("flows_revoked") == 0);
  CHECK(answer.at("flows_updated") == 1);

  auto updated = decode<gt::access_authorization_expiry_updated>(
      gateway->next_push("access_authorization_expiry_updated", 2s));
  CHECK(updated.client_id == w.client.id);
  CHECK(updated.resource_id == w.resource_id);
  CHECK(updated.expires_at == short_expiry);
  CHECK_MESSAGE(!gateway->has_unread("reject_access"), "read before the update: " << gateway->unread_summary());

  auto flows = admin.flows_of(w.client.id, w.resource_id);
  REQUIRE(flows.size() == 1);
  CHECK(flows[0].at("expires_at") == short_expiry);
  CHECK(flows[0].at("policy_id") == short_policy);

  // Ordering shows that no reject_access came in between: the first one is for the second delete.
  auto last = admin.remove("policies", short_policy);
  CHECK(last.at("flows_revoked") == 1);
  auto reject = decode<gt::reject_access>(gateway->next_push("reject_access", 2s));
  CHECK(reject.client_id == w.client.id);
  CHECK(!gateway->has_unread("reject_access"));
  {  // a failed wait ends the test here, not inside CHECK
    const auto got = decode<ct::resource_deleted>(client->next_push("resource_deleted", 2s)).id;
    CHECK(got == w.resource_id);
  }
  // Only that one resource_deleted: none went out for the update.
  CHECK(!client->has_unread("resource_deleted"));
}

TEST_CASE("a policy that expires while the flow is live revokes it without any admin action") {
  portal_harness p;
  const auto& admin = p.admin();
  world w(admin);
  const auto temps = admin.create_group("temps");
  admin.add_member(temps, w.user_id);
  const auto expires_at = unix_now() + 3;  // unix seconds
  const auto fleeting = admin.create_resource(w.site_id, "fleeting", "10.90.0.1");
  admin.create_policy(temps, fleeting, expires_at);

  auto gateway = join_gateway(p, w);
  auto client = join_client(p, w);
  const auto cinit = decode<ct::init>({std::nullopt, std::nullopt, "client", "init", client.init});
  CHECK(ids_of(cinit.resources).count(fleeting) == 1);

  auto r = client->push("create_flow", {{"resource_id", fleeting}, {"connected_gateway_ids", json::array()}});
  REQUIRE(r.status == reply_status::ok);
  auto af = authorize_next(*gateway.peer, w.client.id);
  CHECK(af.resource.id == fleeting);
  CHECK(af.expires_at == expires_at);  // the gateway can enforce it without the portal
  auto created = decode<ct::flow_created>(client->next_push("flow_created"));
  CHECK(created.expires_at == expires_at);
  REQUIRE(admin.flows_of(w.client.id, fleeting).size() == 1);

  // Nobody does anything now; the portal's own timer ends the grant.
  const auto wait = std::chrono::seconds(expires_at - unix_now() + 5);
  auto reject = decode<gt::reject_access>(gateway->next_push("reject_access", wait));
  const auto arrived_ms = unix_ms();
  CHECK(reject.client_id == w.client.id);
  CHECK(reject.resource_id == fleeting);
  CHECK_MESSAGE(arrived_ms >= expires_at * 1000, "revoked " << expires_at * 1000 - arrived_ms << " ms early");
  MESSAGE("reject_access " << arrived_ms - expires_at * 1000 << " ms after the policy's expiry");
  {  // a failed wait ends the test here, not inside CHECK
    const auto got = decode<ct::resource_deleted>(client->next_push("resource_deleted", 2s)).id;
    CHECK(got == fleeting);
  }
  CHECK(admin.flows_of(w.client.id, fleeting).empty());
  // The other flow-free grant is untouched, and the expired one is refused now.
  {  // a failed wait ends the test here, not inside CHECK
    const auto got = create_flow_failure(*client.peer, fleeting);
    CHECK(got == "forbidden");
  }
  {  // a failed wait ends the test here, not inside CHECK
    const auto got = create_flow(*client.peer, *gateway.peer, w.client.id, w.resource_id).gateway_id;
    CHECK(got == w.gateway.id);
  }
}

TEST_CASE("gateway presence: a closed socket or missing heartbeats make the gateway offline") {
  SUBCASE("the gateway closes its socket: the next create_flow is offline") {
    portal_harness p;
    world w(p.admin());
    auto gateway = join_gateway(p, w);
    auto client = join_client(p, w);
    create_flow(*client.peer, *gateway.peer, w.client.id, w.resource_id);

    gateway->close();
    const auto t0 = steady_clock::now();
    // Well under the portal's 10 s authorize timeout: "offline" must come from presence, not from a timeout.
    {  // a failed wait ends the test here, not inside CHECK
      const auto got = create_flow_failure(*client.peer, w.resource_id, 3s);
      CHECK(got == "offline");
    }
    MESSAGE("close -> offline answer: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - t0).count() << " ms");

    // The gateway comes back: chosen again.
    auto back = join_gateway(p, w, "gateway-again");
    CHECK(back.init.at("authorizations").size() == 1);
    {  // a failed wait ends the test here, not inside CHECK
      const auto got = create_flow(*client.peer, *back.peer, w.client.id, w.resource_id).gateway_id;
      CHECK(got == w.gateway.id);
    }
  }

  SUBCASE("the gateway stops heartbeating: the portal closes it and it is offline") {
    portal_harness p([](portal::portal_config& c) { c.sessions.heartbeat_timeout = 1000ms; });
    world w(p.admin());
    auto gateway = join_gateway(p, w);
    auto client = join_client(p, w);
    create_flow(*client.peer, *gateway.peer, w.client.id, w.resource_id);

    // The client keeps heartbeating and stays; the gateway says nothing and is closed.
    const auto deadline = steady_clock::now() + 6s;
    std::optional<websocket::client_error> ended;
    while (!ended && steady_clock::now() < deadline) {
      REQUIRE(client->heartbeat().status == reply_status::ok);
      auto got = gateway->socket().receive_text(200ms);
      if (got.error) ended = got.error;
    }
    REQUIRE_MESSAGE(ended, "the silent gateway was not closed within 6 s (heartbeat timeout 1 s)");
    CHECK(ended->what == websocket::client_error::kind::closed);
    CHECK(ended->close_code == 1008);
    CHECK(ended->close_reason == "heartbeat timeout");
    CHECK(client->heartbeat().status == reply_status::ok);
    {  // a failed wait ends the test here, not inside CHECK
      const auto got = create_flow_failure(*client.peer, w.resource_id, 3s);
      CHECK(got == "offline");
    }
  }
}

TEST_CASE("a deleted gateway, or one whose site is deleted, loses its session at once, flows or none") {
  portal_harness p;
  world w(p.admin());
  world other(p.admin(), "o");  // another site's gateway, which must stay
  auto gateway = join_gateway(p, w);
  auto bystander = join_gateway(p, other, "bystander");
  std::string deleted_what;
  SUBCASE("deleting the gateway") {
    p.admin().remove("gateways", w.gateway.id);
    deleted_what = "gateway";
  }
  SUBCASE("deleting its site") {
    p.admin().remove("sites", w.site_id);
    deleted_what = "site";
  }
  CAPTURE(deleted_what);
  auto closed = gateway->wait_closed();
  CHECK(closed.what == websocket::client_error::kind::closed);
  CHECK(closed.close_code == 1008);
  CHECK_MESSAGE(closed.close_reason.find("deleted") != std::string::npos, closed.close_reason);
  // Its token no longer connects, so it gets no fresh relay credentials either.
  auto again = p.connect_raw(portal_harness::socket_target(w.gateway.token, w.gateway_key));
  REQUIRE(again.error);
  CHECK(again.error->http_status == 403);
  // The other site's gateway keeps its session and is still chosen for its flows.
  CHECK(bystander->heartbeat().status == reply_status::ok);
  auto client = join_client(p, other);
  CHECK(create_flow(*client.peer, *bystander.peer, other.client.id, other.resource_id).gateway_id == other.gateway.id);
}

TEST_CASE("portal restart: tokens, flows and the gateway's authorizations survive") {
  portal_harness p;
  world w(p.admin());
  std::string flow_id;
  std::string ca_before;
  {
    auto gateway = join_gateway(p, w);
    auto client = join_client(p, w);
    create_flow(*client.peer, *gateway.peer, w.client.id, w.resource_id);
    auto flows = p.admin().flows_of(w.client.id, w.resource_id);
    REQUIRE(flows.size() == 1);
    flow_id = flows[0].at("id").get<std::string>();
    std::ifstream in(p.ca_file());
    ca_before.assign(std::istreambuf_iterator<char>(in), {});

    p.restart();
    // The old sessions were closed by the stop, with a close frame that says so.
    auto gone = client->wait_closed();
    CHECK(gone.what == websocket::client_error::kind::closed);
    CHECK(gone.close_code == 1001);
  }
  CHECK(!p.node().admin_token_created());  // the same admin token works
  {
    std::ifstream in(p.ca_file());
    CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == ca_before);  // clients keep trusting it
  }

  auto flows = p.admin().flows();
  REQUIRE(flows.size() == 1);
  CHECK(flows[0].at("id") == flow_id);
  CHECK(flows[0].at("client_id") == w.client.id);
  CHECK(flows[0].at("gateway_id") == w.gateway.id);

  auto gateway = join_gateway(p, w);
  auto ginit = decode<gt::init>({std::nullopt, std::nullopt, "gateway", "init", gateway.init});
  REQUIRE(ginit.authorizations.size() == 1);
  CHECK(ginit.authorizations[0].client_id == w.client.id);
  CHECK(ginit.authorizations[0].resource_id == w.resource_id);
  CHECK(!ginit.authorizations[0].expires_at);

  auto client = join_client(p, w);
  auto cinit = decode<ct::init>({std::nullopt, std::nullopt, "client", "init", client.init});
  CHECK(ids_of(cinit.resources) == std::set<std::string>{w.resource_id});
  CHECK(cinit.interface.ipv4 == w.client.item.at("ipv4").get<std::string>());

  // The live path works after the restart too: a revoke reaches the reconnected peers.
  auto answer = p.admin().remove("policies", w.policy_id);
  CHECK(answer.at("flows_revoked") == 1);
  {  // a failed wait ends the test here, not inside CHECK
    const auto got = decode<gt::reject_access>(gateway->next_push("reject_access", 2s)).client_id;
    CHECK(got == w.client.id);
  }
  {  // a failed wait ends the test here, not inside CHECK
    const auto got = decode<ct::resource_deleted>(client->next_push("resource_deleted", 2s)).id;
    CHECK(got == w.resource_id);
  }
}

TEST_CASE("bad input hurts only the session that sent it") {
  portal_harness p;
  const auto& admin = p.admin();
  world w(admin);
  const auto bystander_key = new_public_key();
  const auto bystander_client = admin.create_client(w.user_id, "bystander-phone", bystander_key);
  const auto victim_key = new_public_key();
  const auto victim_client = admin.create_client(w.user_id, "victim-tablet", victim_key);
  const auto forbidden_resource = admin.create_resource(w.site_id, "off-limits", "10.99.0.1");

  auto gateway = join_gateway(p, w);
  joined_peer bystander{p.connect(bystander_client.token, bystander_key, "client", "bystander"), {}};
  bystander.init = bystander->join_and_init();

  const std::vector<std::string> collections = {"sites",   "gateways",  "users",   "groups",
                                                "clients", "resources", "policies"};
  std::map<std::string, json> before;
  for (const auto& c : collections) before[c] = admin.list(c);
  const auto flows_before = admin.flows();

  auto victim = [&] {
    joined_peer v{p.connect(victim_client.token, victim_key, "client", "victim"), {}};
    v.init = v->join_and_init();
    return v;
  };

  // After each bad input: the bystander still heartbeats and gets flows; the store is as it was.
  auto everyone_else_fine = [&] {
    CHECK(bystander->heartbeat().status == reply_status::ok);
    auto created = create_flow(*bystander.peer, *gateway.peer, bystander_client.id, w.resource_id);
    CHECK(created.gateway_id == w.gateway.id);
    CHECK(gateway->heartbeat().status == reply_status::ok);
    for (const auto& c : collections) CHECK_MESSAGE(admin.list(c) == before[c], c << " changed");
    for (const auto& f : admin.flows()) {
      const bool old = std::find(flows_before.begin(), flows_before.end(), f) != flows_before.end();
      CHECK_MESSAGE((old || f.at("client_id") == bystander_client.id), "unexpected flow " << f.dump());
    }
  };

  SUBCASE("malformed JSON: closed with a reason a person can read") {
    auto v = victim();
    v->send_raw(R"(["1","5","client","create_flow",{"resource_id": )");
    auto closed = v->wait_closed();
    CHECK(closed.what == websocket::client_error::kind::closed);
    CHECK(closed.close_code == 1007);
    CHECK_MESSAGE(closed.close_reason.find("not valid JSON") != std::string::npos, closed.close_reason);
    everyone_else_fine();
  }
  SUBCASE("a frame that is not a 5-element array: closed with a reason") {
    auto v = victim();
    v->send_raw(R"(["1","6","client"])");
    auto closed = v->wait_closed();
    CHECK(closed.what == websocket::client_error::kind::closed);
    CHECK(closed.close_code == 1007);
    CHECK_MESSAGE(closed.close_reason.find("5 elements") != std::string::npos, closed.close_reason);
    everyone_else_fine();
    auto v2 = victim();
    v2->send_raw(R"({"topic":"client","event":"create_flow"})");
    auto closed2 = v2->wait_closed();
    CHECK(closed2.close_code == 1007);
    CHECK(!closed2.close_reason.empty());
    everyone_else_fine();
  }
  SUBCASE("an unknown event: an error reply naming it, the session stays") {
    auto v = victim();
    auto r = v->push("frobnicate", json::object());
    CHECK(r.status == reply_status::error);
    const auto reason = r.response.value("reason", "");
    CHECK_MESSAGE(reason.find("unknown event") != std::string::npos, reason);
    CHECK_MESSAGE(reason.find("frobnicate") != std::string::npos, reason);
    // A known event with a bad payload: the field is named.
    auto bad = v->push("create_flow", {{"resource_id", 42}, {"connected_gateway_ids", json::array()}});
    CHECK(bad.status == reply_status::error);
    CHECK_MESSAGE(bad.response.value("reason", "").find("resource_id") != std::string::npos, bad.response.dump());
    CHECK(v->heartbeat().status == reply_status::ok);
    {  // a failed wait ends the test here, not inside CHECK
      const auto got = create_flow_failure(*v.peer, forbidden_resource);
      CHECK(got == "forbidden");
    }
    everyone_else_fine();
  }
  SUBCASE("an unknown topic: unmatched topic, the session stays") {
    auto v = victim();
    const auto ref = v->send("room:lobby", "create_flow", {{"resource_id", w.resource_id}}, "1");
    auto r = v->wait_reply(ref);
    CHECK(r.status == reply_status::error);
    CHECK(r.response.value("reason", "") == "unmatched topic");
    auto join = v->join("room:lobby");
    CHECK(join.status == reply_status::error);
    CHECK(join.response.value("reason", "") == "unmatched topic");
    CHECK(v->heartbeat().status == reply_status::ok);
    everyone_else_fine();
  }
  SUBCASE("an oversized frame: closed with 1009") {
    auto v = victim();
    const std::size_t limit = portal::session_settings{}.max_frame_bytes;
    std::string huge = R"(["1","9","client","create_flow",{"resource_id":")";
    huge += std::string(limit + 1 - huge.size() - 3, 'a');
    huge += R"("}])";
    REQUIRE(huge.size() == limit + 1);
    v->send_raw(huge);
    auto closed = v->wait_closed();
    CHECK(closed.what == websocket::client_error::kind::closed);
    CHECK(closed.close_code == 1009);
    CHECK_MESSAGE(!closed.close_reason.empty(), "a close without a reason");
    everyone_else_fine();
  }
  SUBCASE("the create_flow budget is the client's, not the socket's: reconnecting does not refill it") {
    // 10 sockets one after the other, 10 requests each, faster than the 10/s a client may make: a
    // per-socket bucket (burst 20) would accept all 100.
    int ok = 0, limited = 0;
    for (int round = 0; round < 10; ++round) {
      auto v = victim();
      std::vector<std::string> refs;
      for (int i = 0; i < 10; ++i)
        refs.push_back(v->send_event("create_flow", {{"resource_id", forbidden_resource},
                                                     {"connected_gateway_ids", json::array()}}));
      for (const auto& ref : refs) {
        auto r = v->wait_reply(ref);
        if (r.status == reply_status::ok) ++ok;
        if (r.response.value("reason", "").rfind("rate_limited", 0) == 0) ++limited;
      }
    }
    MESSAGE(ok << " accepted, " << limited << " rate_limited over 10 sockets");
    CHECK(limited >= 1);
    CHECK(ok + limited == 100);
    everyone_else_fine();
  }
  SUBCASE("ids that are no ids (a newline, an escape, a megabyte) are refused without being repeated") {
    auto v = victim();
    for (const std::string& bad : {std::string("x\n2026-12-06 [portal] [info] flow granted"), std::string("\x1b[31mred"),
                                  std::string(1 << 19, 'a'), std::string()}) {
      auto r = v->push("create_flow", {{"resource_id", bad}, {"connected_gateway_ids", json::array()}});
      CHECK(r.status == reply_status::error);
      const auto reason = r.response.value("reason", "");
      CHECK_MESSAGE(reason.find("resource_id") != std::string::npos, reason);
      CHECK(reason.size() < 300);
      CHECK(reason.find("flow granted") == std::string::npos);
    }
    auto r = v->push("create_flow", {{"resource_id", forbidden_resource}, {"connected_gateway_ids", {"gw\nforged"}}});
    CHECK(r.status == reply_status::error);
    CHECK(r.response.value("reason", "").find("connected_gateway_ids[0]") != std::string::npos);
    everyone_else_fine();
  }
  SUBCASE("a flood of create_flow: some are refused as rate_limited, each is answered") {
    auto v = victim();
    std::vector<std::string> refs;
    for (int i = 0; i < 100; ++i)
      refs.push_back(v->send_event("create_flow", {{"resource_id", forbidden_resource},
                                                   {"connected_gateway_ids", json::array()}}));
    int ok = 0, limited = 0, other = 0;
    for (const auto& ref : refs) {
      auto r = v->wait_reply(ref);
      if (r.status == reply_status::ok)
        ++ok;
      else if (r.response.value("reason", "").rfind("rate_limited", 0) == 0)
        ++limited;
      else
        ++other;
    }
    MESSAGE(ok << " accepted, " << limited << " rate_limited");
    CHECK(ok >= 1);
    CHECK(limited >= 1);
    CHECK(other == 0);
    CHECK(ok + limited == 100);
    // Every accepted one gets its answer.
    for (int i = 0; i < ok; ++i) {
      const auto failed = decode<ct::flow_creation_failed>(v->next_push("flow_creation_failed"));
      CHECK(failed.reason == ct::flow_failure_reason::forbidden);
    }
    CHECK(v->heartbeat().status == reply_status::ok);
    CHECK(!gateway->has_unread("authorize_flow"));
    everyone_else_fine();
  }
}

// A connected client's list of resources follows the admin's changes without a reconnect.
TEST_CASE("a connected client is told about a resource it gains") {
  portal_harness p;
  const auto& admin = p.admin();
  world w(admin);
  auto client = join_client(p, w);
  const auto gained = admin.create_resource(w.site_id, "new-wiki", "10.21.0.1");
  admin.create_policy(w.group_id, gained);
  auto pushed = decode<ct::resource_created_or_updated>(client->next_push("resource_created_or_updated", 2s));
  CHECK(pushed.resource.id == gained);
  CHECK(pushed.resource.address == "10.21.0.1");
  CHECK(pushed.resource.site_id == w.site_id);
}

// Deleting a policy sends resource_deleted to a connected client even when it has no flow to the resource.
TEST_CASE("a connected client without a flow is told about a resource it loses") {
  portal_harness p;
  const auto& admin = p.admin();
  world w(admin);
  auto client = join_client(p, w);
  REQUIRE(ids_of(decode<ct::init>({std::nullopt, std::nullopt, "client", "init", client.init}).resources) ==
          std::set<std::string>{w.resource_id});
  admin.remove("policies", w.policy_id);
  auto deleted = decode<ct::resource_deleted>(client->next_push("resource_deleted", 2s));
  CHECK(deleted.id == w.resource_id);
}
