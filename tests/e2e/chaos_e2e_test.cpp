// What a hostile network and a crashing fleet do to the daemons, in the test network of
// tests/e2e/daemon_topology.hpp (CTest label "chaos", in `make test`, each case bounded):
//   * a gateway SIGKILLed mid-use: no goodbye, so the laptop recovers by its own timeout through the
//     site's other gateway, and the portal keeps one flow for it, not a stale one beside it;
//   * the portal restarted while the laptop fetches: the data plane does not need it, so every fetch
//     made while it was down succeeds, and both daemons join again and get new flows afterwards;
//   * 20 % of every packet through the hub dropped (portal, relay and peer traffic alike) during a
//     rolling restart of the site's two gateways: the laptop ends up served every time.
// Flood tests of the portal's sockets live in test_websocket and test_portal_protocol.
// Needs root, coturn, curl and python3; skips with a message otherwise.
#include "tests/e2e/daemon_topology.hpp"

using namespace firebreak::test::daemons;

namespace {

/// The client's portal link as its status shows it: "joined", "connecting", ...
std::string portal_state(const topology& t) {
  const auto s = status_of_socket(t.dir / "client.sock");
  if (!s.contains("health") || !s.at("health").contains("portal")) return {};
  return s.at("health").at("portal").value("state", "");
}

std::vector<json> flows_of(topology& t, const std::string& resource) {
  std::vector<json> out;
  for (const auto& f : t.admin({"flows", "list"}))
    if (f.at("resource_id") == resource) out.push_back(f);
  return out;
}

}  // namespace

TEST_CASE("a gateway SIGKILLed mid-use: the laptop recovers by its timeout through the other gateway, one flow kept") {
  if (auto why = why_skip(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  topology t;
  two_gateway_site site(t);
  auto client = t.client(false);
  REQUIRE(wait_until([&] { return run(t.laptop, "ip route show | grep -q '10.72.0.2 dev'").ok(); }, 20s));
  fetch_loop browsing(t.laptop, "http://10.72.0.2:8080/hello.txt", 3s);
  const auto began = std::chrono::steady_clock::now();
  REQUIRE_MESSAGE(wait_until([&] { return browsing.successes_since(began) >= 3; }, 30s), client.log());
  auto& killed = site.serving();
  const auto killed_id = killed.id(t);
  const int heard = goodbyes_heard(t);
  REQUIRE(heard >= 0);

  const auto t0 = std::chrono::steady_clock::now();
  ::kill(killed.proc->pid(), SIGKILL);
  CHECK(wait_until([&] { return !killed.proc->alive(); }, 5s));
  REQUIRE_MESSAGE(wait_until([&] { return browsing.first_success_after(t0).has_value(); }, 60s), client.log());
  MESSAGE("SIGKILL -> first successful fetch after "
          << std::chrono::duration_cast<std::chrono::milliseconds>(*browsing.first_success_after(t0) - t0).count() << " ms");
  // No goodbye could come: the client found out by itself, and moved.
  CHECK(goodbyes_heard(t) == heard);
  const auto now_through = gateway_of(status_of_socket(t.dir / "client.sock"), t.web);
  CHECK_FALSE(now_through.empty());
  CHECK(now_through != killed_id);
  // The portal keeps the flow the laptop uses, and not the dead gateway's beside it.
  REQUIRE(wait_until([&] { return flows_of(t, t.web).size() == 1; }, 10s));
  CHECK(flows_of(t, t.web).front().at("gateway_id") == now_through);
  // The killed gateway comes back (as its supervisor would restart it) and joins.
  killed.start(t);
  CHECK(wait_until([&] { return joined(*killed.proc); }, 20s));
  CHECK(client.terminate(5s) == 0);
}

TEST_CASE("the portal restarted under a fetch loop: the data plane keeps flowing, and both daemons join again") {
  if (auto why = why_skip(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  topology t;
  auto gw = t.gateway(t.gw_a, "gw-a", "10.71.2.1", "10.71.2.2");
  REQUIRE(wait_until([&] { return joined(gw); }, 20s));
  auto client = t.client(false);
  REQUIRE(wait_until([&] { return run(t.laptop, "ip route show | grep -q '10.72.0.2 dev'").ok(); }, 20s));
  REQUIRE_MESSAGE(t.fetch("http://10.72.0.2:8080/hello.txt", "hello.txt").ok(), client.log());
  fetch_loop browsing(t.laptop, "http://10.72.0.2:8080/hello.txt", 3s, 100ms);
  const auto began = std::chrono::steady_clock::now();
  REQUIRE(wait_until([&] { return browsing.successes_since(began) >= 3; }, 30s));

  const auto down = std::chrono::steady_clock::now();
  t.portal->terminate();  // SIGTERM: every session is closed
  REQUIRE(wait_until([&] { return portal_state(t) != "joined"; }, 15s));
  // The portal is away for a while; the fetches go on over the connection that exists.
  wait_until([&] { return browsing.successes_since(down) >= 30; }, 30s);
  const auto up = std::chrono::steady_clock::now();
  t.start_portal();
  const auto o = browsing.longest_outage(3s);
  MESSAGE("portal down " << std::chrono::duration_cast<std::chrono::milliseconds>(up - down).count() << " ms: "
                         << o.attempts << " fetches in all, " << o.failed << " failed");
  CHECK(browsing.successes_since(down) >= 30);
  CHECK(o.failed == 0);
  // Both daemons join again by themselves, and a new flow (another resource) is granted.
  CHECK(wait_until([&] { return portal_state(t) == "joined"; }, 60s));
  CHECK(wait_until([&] { return gw.log().find("joined the portal") != gw.log().rfind("joined the portal"); }, 60s));
  CHECK_MESSAGE(t.fetch("http://10.72.0.3:8080/hello.txt", "files.txt").ok(), client.log());
  CHECK(client.terminate(5s) == 0);
  CHECK(gw.terminate(5s) == 0);
}

TEST_CASE("20 % of every packet through the hub lost during a rolling restart: the laptop is served after each step") {
  if (auto why = why_skip(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  topology t;
  two_gateway_site site(t);
  auto client = t.client(false);
  REQUIRE(wait_until([&] { return run(t.laptop, "ip route show | grep -q '10.72.0.2 dev'").ok(); }, 20s));
  // Everything the hub routes or receives, in both directions: the portal's TLS, TURN, and the
  // laptop's packets to the gateways (direct paths cross the hub too).
  REQUIRE(run(t.hub,
              "nft add table inet chaos && "
              "nft add chain inet chaos pre '{ type filter hook prerouting priority -300; }' && "
              "nft add rule inet chaos pre numgen random mod 100 '<' 20 counter drop")
              .ok());
  fetch_loop browsing(t.laptop, "http://10.72.0.2:8080/hello.txt", 5s);
  for (int step = 0; step < 2; ++step) {
    CAPTURE(step);
    const auto settled = std::chrono::steady_clock::now();
    REQUIRE_MESSAGE(wait_until([&] { return browsing.successes_since(settled) >= 3; }, 60s), client.log());
    auto& stopping = site.serving();
    const auto from = stopping.id(t);
    const auto t0 = std::chrono::steady_clock::now();
    ::kill(stopping.proc->pid(), SIGTERM);
    // Goodbye or, when it was lost, the timeout: either way the laptop is served again.
    REQUIRE_MESSAGE(wait_until([&] { return browsing.first_success_after(t0).has_value(); }, 90s), client.log());
    CHECK(wait_until([&] { return !stopping.proc->alive(); }, 10s));
    CHECK(stopping.proc->terminate() == 0);
    CHECK(gateway_of(status_of_socket(t.dir / "client.sock"), t.web) != from);
    MESSAGE("step " << step << ": served again after "
                    << std::chrono::duration_cast<std::chrono::milliseconds>(*browsing.first_success_after(t0) - t0).count()
                    << " ms");
    stopping.start(t);
    REQUIRE(wait_until([&] { return joined(*stopping.proc); }, 60s));
  }
  // The loss was real: the rule dropped packets all along.
  CHECK(run(t.hub, "nft list table inet chaos | grep -Eq 'packets [1-9]'").ok());
  CHECK(client.terminate(5s) == 0);
}
