// The goodbye end to end, with the daemons in network namespaces (tests/e2e/daemon_topology.hpp):
//   * the client's last grant on a gateway revoked: the connection is gone on both sides within
//     seconds, not after an ICE timeout;
//   * a gateway's SIGTERM: the client drops its connection at once, on the gateway's goodbye;
//   * the same shutdown with goodbyes switched off: the client still holds the dead connection
//     seconds later, which shows that the goodbye is what makes the difference.
// Needs root, coturn, curl and python3; skips with a message otherwise.
#include "tests/e2e/daemon_topology.hpp"

#include <thread>

using namespace firebreak::test::daemons;

namespace {

bool has_live_connection_to(const json& status, const std::string& peer) {
  for (const auto& c : live_connections(status))
    if (c.at("peer") == peer) return true;
  return false;
}

std::chrono::milliseconds since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t);
}

}  // namespace

TEST_CASE("goodbye: a revoked last grant and a gateway's shutdown close the connection at once") {
  if (auto why = why_skip(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  topology t;
  std::optional<process> gw_a;
  gw_a.emplace(t.gw_a, t.gateway_argv("gw-a", "10.71.2.1", "10.71.2.2"), t.dir / "gw-a.log");
  auto gw_b = t.gateway(t.gw_b, "gw-b", "10.71.3.1", "10.71.3.2");
  REQUIRE_MESSAGE(wait_until([&] { return joined(*gw_a) && joined(gw_b); }, 20s),
                  "the gateways did not join:\n" << gw_a->log() << "\n" << gw_b.log());
  auto client = t.client(false);
  REQUIRE(wait_until([&] { return run(t.laptop, "ip route show | grep -q '10.73.0.2 dev'").ok(); }, 20s));

  // The lab is the client's only resource behind gw-b: revoking it leaves gw-b nothing for the client.
  REQUIRE(t.fetch("http://10.73.0.2:8080/hello.txt", "lab.txt").ok());
  REQUIRE(t.fetch("http://10.72.0.2:8080/hello.txt", "web.txt").ok());
  auto s = t.status(t.laptop, "client", "client.sock");
  const auto ga = gateway_of(s, t.web), gb = gateway_of(s, t.lab_res);
  REQUIRE(has_live_connection_to(s, gb));
  const auto revoked = std::chrono::steady_clock::now();
  t.admin({"policies", "delete", t.lab_policy});
  const bool gone = wait_until(
      [&] {
        return !has_live_connection_to(t.status(t.laptop, "client", "client.sock"), gb) &&
               live_connections(t.status(t.gw_b, "gateway", "gw-b.sock")).empty();
      },
      10s);
  MESSAGE("revoke -> both sides' state gone in " << since(revoked).count() << " ms");
  REQUIRE_MESSAGE(gone, "client:\n" << client.log() << "\ngw-b:\n" << gw_b.log());
  CHECK(since(revoked) < 3s);  // an ICE timeout takes 10 s or more
  CHECK(gw_b.log().find("goodbye") != std::string::npos);
  // Either side may have said it first (gw-b: revoked; the client: site_removed); each counts it.
  const auto gbye = t.status(t.gw_b, "gateway", "gw-b.sock").at("goodbyes");
  CHECK(gbye.at("sent").value("revoked", 0) + gbye.at("received").get<int>() == 1);
  // The other gateway's connection is untouched.
  CHECK(has_live_connection_to(t.status(t.laptop, "client", "client.sock"), ga));

  // gw-a shuts down: its goodbye reaches the client at once.
  const auto stopped = std::chrono::steady_clock::now();
  ::kill(gw_a->pid(), SIGTERM);
  REQUIRE(wait_until([&] { return !has_live_connection_to(t.status(t.laptop, "client", "client.sock"), ga); }, 15s));
  MESSAGE("gateway SIGTERM -> the client's connection gone in " << since(stopped).count() << " ms");
  CHECK(since(stopped) < 3s);
  // It exits by itself (a second SIGTERM would make it exit at once, with status 1).
  CHECK(wait_until([&] { return !gw_a->alive(); }, 5s));
  CHECK(gw_a->terminate() == 0);
  CHECK(client.log().find("the peer said goodbye") != std::string::npos);
  CHECK(t.status(t.laptop, "client", "client.sock").at("goodbyes").at("received").get<int>() >= 1);

  // The same without goodbyes: the client still holds the dead connection well after the shutdown.
  gw_a.reset();
  gw_a.emplace(t.gw_a, t.gateway_argv("gw-a", "10.71.2.1", "10.71.2.2", {"--no-goodbye"}), t.dir / "gw-a2.log");
  REQUIRE(wait_until([&] { return joined(*gw_a); }, 20s));
  REQUIRE_MESSAGE(t.fetch("http://10.72.0.2:8080/hello.txt", "web2.txt").ok(), client.log());
  const auto ga2 = gateway_of(t.status(t.laptop, "client", "client.sock"), t.web);
  REQUIRE(has_live_connection_to(t.status(t.laptop, "client", "client.sock"), ga2));
  CHECK(gw_a->terminate(5s) == 0);
  std::this_thread::sleep_for(4s);
  CHECK_MESSAGE(has_live_connection_to(t.status(t.laptop, "client", "client.sock"), ga2),
                "without a goodbye the client should not have known yet:\n" << client.log());
  CHECK(client.terminate(5s) == 0);
}
