// A gateway restarting for an upgrade, with a second gateway in its site (tests/e2e/daemon_topology.hpp,
// two_gateway_site). The laptop fetches a page in a loop, as a person's browser would:
//   * with goodbyes, the first fetch started after the SIGTERM succeeds in under 2 s, through the
//     other gateway;
//   * with goodbyes switched off on the stopping gateway, it takes the timeout (no authenticated reply
//     to the client's data) before the client lets go and the portal can send it elsewhere.
// Asserting both shows that the goodbye is what makes the difference.
// Needs root, coturn, curl and python3; skips with a message otherwise.
#include "tests/e2e/daemon_topology.hpp"

using namespace firebreak::test::daemons;

TEST_CASE("a gateway's restart: with a goodbye the client is back within 2 s, without it after the timeout") {
  if (auto why = why_skip(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  topology t;
  two_gateway_site site(t);
  auto client = t.client(false);
  REQUIRE(wait_until([&] { return run(t.laptop, "ip route show | grep -q '10.72.0.2 dev'").ok(); }, 20s));
  fetch_loop browsing(t.laptop, "http://10.72.0.2:8080/hello.txt", 3s);

  // With goodbyes, twice (each gateway stops once); the second comes back without goodbyes.
  const auto first = site.restart(browsing, client);
  const auto second = site.restart(browsing, client, {"--no-goodbye"});
  MESSAGE("restart with a goodbye: first successful fetch " << first.count() << " ms and " << second.count()
                                                            << " ms after the SIGTERM");
  CHECK(first < 2s);
  CHECK(second < 2s);
  // The client is now on the gateway that came back first; the other one says no goodbyes. Stopping
  // the first (with a goodbye: a third measurement) moves the client onto the quiet one.
  auto& quiet = site.a.goodbye ? site.a2 : site.a;
  REQUIRE(!quiet.goodbye);
  if (site.serving().name != quiet.name) CHECK(site.restart(browsing, client) < 2s);
  REQUIRE(site.serving().name == quiet.name);
  const auto without = site.restart(browsing, client);
  MESSAGE("restart without a goodbye: first successful fetch " << without.count() << " ms after the SIGTERM");
  // The client had to wait for its timeout (consent lost or data unanswered, 5 s at the least), where
  // each goodbye brought it back within 2 s. The ratio of the two is measured by `make bench`
  // (bench_goodbye), not asserted here: under load it moves, while these bounds do not.
  CHECK(without > 5s);
  CHECK(client.log().find("failed") != std::string::npos);
  CHECK(client.terminate(5s) == 0);
}
