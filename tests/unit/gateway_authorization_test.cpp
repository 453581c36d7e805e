// The gateway's grants: the pure table and its per-packet checks, then the authorization actor under
// CAF's test coordinator (one thread, virtual time; the wall clock is the test's own, moved with it).
#include <doctest/doctest.h>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <spdlog/sinks/null_sink.h>

#include "actors/gateway/authorization_actor.hpp"
#include "actors/gateway/grant_table.hpp"
#include "messages/connection_messages.hpp"
#include "messages/portal_messages.hpp"

namespace {

using namespace firebreak;
using namespace firebreak::messages;
using firebreak::gateway::grant_table;
using firebreak::gateway::verdict;

flow_client ada() { return {"client-ada", "pub", "psk", "100.64.0.7", "fd00:2021:1111::7"}; }

resource_description resource(std::string id, std::string address, std::vector<filter> filters = {}) {
  return {std::move(id), "name", std::move(address), "site-1", std::move(filters)};
}

/// An IPv4 packet from `src` to `dst` with protocol and, for TCP/UDP, a destination port.
std::vector<std::uint8_t> packet(std::array<std::uint8_t, 4> src, std::array<std::uint8_t, 4> dst, std::uint8_t proto,
                                 std::uint16_t port = 0) {
  std::vector<std::uint8_t> p(28, 0);
  p[0] = 0x45;
  p[3] = 28;
  p[8] = 64;
  p[9] = proto;
  std::copy(src.begin(), src.end(), p.begin() + 12);
  std::copy(dst.begin(), dst.end(), p.begin() + 16);
  if (proto == 6) {
    p.resize(40, 0);
    p[3] = 40;
    p[32] = 0x50;
  }
  if (proto == 1) p[20] = 8;  // echo request
  p[22] = static_cast<std::uint8_t>(port >> 8);
  p[23] = static_cast<std::uint8_t>(port);
  if (proto == 17) p[25] = 8;
  return p;
}

ip::packet_info info(const std::vector<std::uint8_t>& p) {
  auto i = ip::parse(p);
  REQUIRE(i);
  return *i;
}

const std::array<std::uint8_t, 4> ada_ip{100, 64, 0, 7}, web_ip{10, 72, 0, 2}, other_ip{10, 72, 0, 9};

}  // namespace

TEST_CASE("grant table: a packet passes only from the client's own address to what it was granted") {
  grant_table t;
  REQUIRE(t.grant(ada(), resource("web", "10.72.0.2", {{filter_protocol::tcp, 8080, 8080}}), std::nullopt).empty());
  REQUIRE(t.grant(ada(), resource("lan", "10.73.0.0/24"), std::nullopt).empty());

  CHECK(t.from_client("client-ada", info(packet(ada_ip, web_ip, 6, 8080)), 0) == verdict::allow);
  CHECK(t.from_client("client-ada", info(packet(ada_ip, web_ip, 6, 22)), 0) == verdict::not_granted);
  CHECK(t.from_client("client-ada", info(packet(ada_ip, web_ip, 1)), 0) == verdict::not_granted);
  CHECK(t.from_client("client-ada", info(packet(ada_ip, other_ip, 6, 8080)), 0) == verdict::not_granted);
  CHECK(t.from_client("client-ada", info(packet(ada_ip, {10, 73, 0, 200}, 17, 53)), 0) == verdict::allow);
  // Not from Ada's tunnel address: spoofed, whatever its destination.
  CHECK(t.from_client("client-ada", info(packet({100, 64, 0, 8}, web_ip, 6, 8080)), 0) == verdict::spoofed_source);
  CHECK(t.from_client("client-bob", info(packet(ada_ip, web_ip, 6, 8080)), 0) == verdict::unknown_client);

  // Answers go back to Ada only from what she holds; the address finds her.
  CHECK(t.client_at(false, info(packet(web_ip, ada_ip, 6)).dst) == std::optional<std::string>("client-ada"));
  CHECK(t.to_client("client-ada", info(packet(web_ip, ada_ip, 6)), 0) == verdict::allow);
  CHECK(t.to_client("client-ada", info(packet(other_ip, ada_ip, 6)), 0) == verdict::not_granted);
}

TEST_CASE("grant table: expiry is exact, revoke and renew take effect at once") {
  grant_table t;
  REQUIRE(t.grant(ada(), resource("web", "10.72.0.2"), 10'000).empty());
  const auto p = info(packet(ada_ip, web_ip, 6, 80));
  CHECK(t.from_client("client-ada", p, 9'999) == verdict::allow);
  CHECK(t.from_client("client-ada", p, 10'000) == verdict::expired);
  CHECK(t.next_expiry() == std::optional<std::int64_t>(10'000));
  CHECK(t.has_grants("client-ada", 9'999));
  CHECK_FALSE(t.has_grants("client-ada", 10'000));

  CHECK(t.update_expiry("client-ada", "web", 20'000));
  CHECK(t.from_client("client-ada", p, 15'000) == verdict::allow);
  CHECK(t.expire(15'000).empty());
  auto gone = t.expire(20'000);
  REQUIRE(gone.size() == 1);
  CHECK(gone[0] == std::pair<std::string, std::string>{"client-ada", "web"});
  // Her last grant gone, nothing about her is kept.
  CHECK(t.entry("client-ada") == nullptr);
  CHECK(t.from_client("client-ada", p, 20'000) == verdict::unknown_client);

  REQUIRE(t.grant(ada(), resource("web", "10.72.0.2"), std::nullopt).empty());
  CHECK(t.revoke("client-ada", "web"));
  CHECK_FALSE(t.revoke("client-ada", "web"));
  CHECK(t.entry("client-ada") == nullptr);
  CHECK(t.from_client("client-ada", p, 0) == verdict::unknown_client);

  // A revoke that leaves another grant keeps the client, and refuses only the revoked resource.
  REQUIRE(t.grant(ada(), resource("web", "10.72.0.2"), std::nullopt).empty());
  REQUIRE(t.grant(ada(), resource("files", "10.72.0.9"), std::nullopt).empty());
  CHECK(t.revoke("client-ada", "files"));
  CHECK(t.from_client("client-ada", info(packet(ada_ip, other_ip, 6, 80)), 0) == verdict::not_granted);
  CHECK(t.from_client("client-ada", p, 0) == verdict::allow);
  CHECK(t.has_grants("client-ada", 0));
}

TEST_CASE("grant table: what cannot be enforced is refused, and changes nothing") {
  grant_table t;
  CHECK(t.grant(ada(), resource("dns", "intranet.example.com"), std::nullopt).find("cannot enforce") !=
        std::string::npos);
  CHECK_FALSE(t.has_grants("client-ada", 0));
  auto bad = ada();
  bad.ipv4 = "not an address";
  CHECK_FALSE(t.grant(bad, resource("web", "10.72.0.2"), std::nullopt).empty());
  CHECK(t.entry("client-ada") != nullptr);  // the first call learnt her addresses
  CHECK(t.entry("client-ada")->resources.empty());
}

namespace {

/// What the tunnel hears from the authorization actor.
struct tunnel_recorder_state {
  std::string role;  // CAF 0.17 dereferences a null argument pack for actors without arguments
  std::vector<client_grants> grants;
  std::vector<accept_flow> accepted;
  std::vector<client_unauthorized> unauthorized;
  static inline const char* name = "tunnel-recorder";
};

caf::behavior tunnel_recorder(caf::stateful_actor<tunnel_recorder_state>* self, std::string role) {
  self->state.role = std::move(role);
  return {
      [=](client_grants& g) { self->state.grants.push_back(std::move(g)); },
      [=](accept_flow& a) { self->state.accepted.push_back(std::move(a)); },
      [=](const client_unauthorized& u) { self->state.unauthorized.push_back(u); },
  };
}

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::shared_ptr<std::int64_t> wall = std::make_shared<std::int64_t>(1'800'000'000'000);  // unix ms
  caf::actor tunnel, auth;

  fixture() {
    cfg.set("scheduler.policy", caf::atom("testing"));
    register_connection_messages(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    tunnel = sys->spawn(tunnel_recorder, std::string("tunnel"));
    auto w = wall;
    auth = sys->spawn(gateway::authorization_actor,
                      gateway::authorization_settings{
                          tunnel, [w] { return *w; },
                          std::make_shared<spdlog::logger>("auth-test", std::make_shared<spdlog::sinks::null_sink_mt>())});
    sched->run();
  }
  ~fixture() {
    caf::anon_send_exit(auth, caf::exit_reason::kill);
    caf::anon_send_exit(tunnel, caf::exit_reason::kill);
    sched->run();
  }
  tunnel_recorder_state& heard() {
    return dynamic_cast<caf::stateful_actor<tunnel_recorder_state>&>(*caf::actor_cast<caf::abstract_actor*>(tunnel))
        .state;
  }
  void to_auth(gateway_topic::from_portal e) {
    caf::anon_send(auth, gateway_event{std::move(e)});
    sched->run();
  }
  /// Virtual time and the test's wall clock move together.
  void advance(std::chrono::milliseconds t) {
    *wall += t.count();
    sched->advance_time(t);
    sched->run();
  }
  gateway_topic::authorize_flow flow(std::string resource_id, std::optional<std::int64_t> expires_at_s) {
    gateway_topic::authorize_flow f;
    f.ref = "ref-" + resource_id;
    f.client = ada();
    f.resource = resource(resource_id, resource_id == "web" ? "10.72.0.2" : "10.72.0.3");
    f.expires_at = expires_at_s;
    return f;
  }
};

}  // namespace

TEST_CASE_FIXTURE(fixture, "authorization: a flow is granted, then expires at its exact second") {
  const std::int64_t expiry_s = *wall / 1000 + 5;
  to_auth(flow("web", expiry_s));
  REQUIRE(heard().accepted.size() == 1);
  CHECK(heard().accepted[0].flow.ref == "ref-web");
  REQUIRE(heard().grants.size() == 1);
  CHECK(heard().grants[0].resources.count("web") == 1);
  CHECK(heard().unauthorized.empty());

  advance(std::chrono::milliseconds(4'999));
  CHECK(heard().grants.size() == 1);  // nothing yet
  advance(std::chrono::milliseconds(1));
  REQUIRE(heard().grants.size() == 2);
  CHECK(heard().grants[1].resources.empty());
  REQUIRE(heard().unauthorized.size() == 1);
  CHECK(heard().unauthorized[0].client_id == "client-ada");
}

TEST_CASE_FIXTURE(fixture, "authorization: reject_access of one of two grants, then of the last") {
  to_auth(flow("web", std::nullopt));
  to_auth(flow("files", std::nullopt));
  CHECK(heard().accepted.size() == 2);
  to_auth(gateway_topic::reject_access{"client-ada", "web"});
  REQUIRE(heard().grants.size() == 3);
  CHECK(heard().grants.back().resources.count("files") == 1);
  CHECK(heard().grants.back().resources.count("web") == 0);
  CHECK(heard().unauthorized.empty());
  to_auth(gateway_topic::reject_access{"client-ada", "files"});
  CHECK(heard().grants.back().resources.empty());
  CHECK(heard().unauthorized.size() == 1);
  // Rejecting what is not held changes nothing and tells nobody.
  to_auth(gateway_topic::reject_access{"client-ada", "files"});
  CHECK(heard().grants.size() == 4);
}

TEST_CASE_FIXTURE(fixture, "authorization: an expiry moved later is honoured, and one removed never fires") {
  const std::int64_t now_s = *wall / 1000;
  to_auth(flow("web", now_s + 2));
  to_auth(gateway_topic::access_authorization_expiry_updated{"client-ada", "web", now_s + 10});
  advance(std::chrono::milliseconds(5'000));
  CHECK(heard().unauthorized.empty());
  CHECK(heard().grants.back().resources.count("web") == 1);
  advance(std::chrono::milliseconds(5'000));
  CHECK(heard().unauthorized.size() == 1);

  to_auth(flow("files", now_s + 12));
  to_auth(gateway_topic::access_authorization_expiry_updated{"client-ada", "files", std::nullopt});
  advance(std::chrono::milliseconds(10'000));
  CHECK(heard().grants.back().resources.count("files") == 1);
  CHECK(heard().unauthorized.size() == 1);
}
