// A gateway restarting for an upgrade, with a second gateway in its site (tests/e2e/daemon_topology.hpp,
// second_office_gateway()). The laptop fetches a page in a loop, as a person's browser would:
//   * with goodbyes, the first fetch started after the SIGTERM succeeds in under 2 s, through the
//     other gateway;
//   * with goodbyes switched off on the stopping gateway, it takes the ICE timeout (15 s of unanswered
//     data) before the client lets go and the portal can send it elsewhere.
// Asserting both shows that the goodbye is what makes the difference.
// Needs root, coturn, curl and python3; skips with a message otherwise.
#include "tests/e2e/daemon_topology.hpp"

using namespace firebreak::test::daemons;

namespace {

struct office_gateway {
  const network_namespace* ns;
  std::string name, hub_ip, own_ip;
  std::optional<process> proc;
  int generation = 0;
  bool goodbye = true;

  void start(topology& t, std::vector<std::string> extra = {}) {
    goodbye = std::find(extra.begin(), extra.end(), "--no-goodbye") == extra.end();
    proc.reset();
    proc.emplace(*ns, t.gateway_argv(name, hub_ip, own_ip, std::move(extra)),
                 t.dir / (name + "-" + std::to_string(++generation) + ".log"));
  }
  std::string id(topology& t) const { return t.gateway_ids.at(name); }
};

}  // namespace

TEST_CASE("a gateway's restart: with a goodbye the client is back within 2 s, without it after the timeout") {
  if (auto why = why_skip(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  topology t;
  t.second_office_gateway();
  office_gateway a{&t.gw_a, "gw-a", "10.71.2.1", "10.71.2.2"}, a2{&*t.gw_a2, "gw-a2", "10.71.4.1", "10.71.4.2"};
  a.start(t);
  a2.start(t);
  REQUIRE_MESSAGE(wait_until([&] { return joined(*a.proc) && joined(*a2.proc); }, 20s),
                  "the gateways did not join:\n" << a.proc->log() << "\n" << a2.proc->log());
  auto client = t.client(false);
  REQUIRE(wait_until([&] { return run(t.laptop, "ip route show | grep -q '10.72.0.2 dev'").ok(); }, 20s));
  auto serving = [&]() -> office_gateway& {
    const auto g = gateway_of(t.status(t.laptop, "client", "client.sock"), t.web);
    return g == a.id(t) ? a : a2;
  };

  fetch_loop browsing(t.laptop, "http://10.72.0.2:8080/hello.txt", 3s);
  // One restart: SIGTERM to the serving gateway, measured until a fetch started after it succeeds;
  // then the stopped gateway comes back (with `restart_extra`), as a rolling upgrade's next step.
  auto restart = [&](std::vector<std::string> restart_extra) -> std::chrono::milliseconds {
    const auto settled = std::chrono::steady_clock::now();
    REQUIRE_MESSAGE(wait_until([&] { return browsing.successes_since(settled) >= 3; }, 30s), client.log());
    auto& stopping = serving();
    const auto from = stopping.id(t);
    const auto t0 = std::chrono::steady_clock::now();
    ::kill(stopping.proc->pid(), SIGTERM);
    const bool back = wait_until([&] { return browsing.first_success_after(t0).has_value(); }, 60s);
    REQUIRE_MESSAGE(back, "no fetch succeeded after the restart:\n" << client.log());
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(*browsing.first_success_after(t0) - t0);
    CHECK(wait_until([&] { return !stopping.proc->alive(); }, 5s));
    CHECK(stopping.proc->terminate() == 0);
    const auto now_through = gateway_of(t.status(t.laptop, "client", "client.sock"), t.web);
    CHECK(now_through != from);
    CHECK_FALSE(now_through.empty());
    stopping.start(t, std::move(restart_extra));
    REQUIRE(wait_until([&] { return joined(*stopping.proc); }, 20s));
    return took;
  };

  // With goodbyes, twice (each gateway stops once); the second time, the gateway that came back
  // without goodbyes is left serving, for the last round.
  const auto first = restart({});
  const auto second = restart({"--no-goodbye"});
  MESSAGE("restart with a goodbye: first successful fetch " << first.count() << " ms and " << second.count()
                                                            << " ms after the SIGTERM");
  CHECK(first < 2s);
  CHECK(second < 2s);
  // The client is now on the gateway that came back first; the other one says no goodbyes. Stopping
  // the first (with a goodbye: a third measurement) moves the client onto the quiet one.
  auto& quiet = a.goodbye ? a2 : a;
  REQUIRE(!quiet.goodbye);
  if (serving().name != quiet.name) CHECK(restart({}) < 2s);
  REQUIRE(serving().name == quiet.name);
  const auto without = restart({});
  MESSAGE("restart without a goodbye: first successful fetch " << without.count() << " ms after the SIGTERM");
  // The client had to wait for its timeout (no authenticated reply to its data), an order of
  // magnitude longer than the goodbye takes.
  CHECK(without > 5s);
  CHECK(without > 10 * std::max(first, second));
  CHECK(client.log().find("failed") != std::string::npos);
  CHECK(client.terminate(5s) == 0);
}
