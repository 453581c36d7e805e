// The goodbye's speed, with the real daemons in network namespaces (tests/e2e/daemon_topology.hpp):
//
//   recovery    a gateway of a two-gateway site restarted BENCH_RESTARTS times (default 20) while the
//               laptop fetches a page in a loop: SIGTERM -> the first fetch started after it succeeds,
//               p50/p95, with goodbyes and without them, and their ratio.
//               Bars: p95 under 1 s with goodbyes; at least 10x faster than without.
//   revocation  the client's only grant on a gateway revoked with `firebreak admin policies delete`,
//               BENCH_RUNS times (default 20): the admin command starts -> the client's connection
//               state is gone, p50/p95. Bar: p95 under 200 ms.
//   fan-out     (also: SIGTERM -> the gateway's exit, beside the Nomad job's kill_timeout)
//               a gateway with BENCH_CLIENTS connected clients (default 200, simulated by connection_peer,
//               50 identities per process) shuts down: how many received its goodbye within the 1 s
//               flush, and the slowest. Bar: all of them.
//
// Each figure is printed beside its bar and its anchor from the same run. Needs root, coturn, curl,
// python3; prints why and exits 0 when it cannot run.
#include "tests/e2e/daemon_topology.hpp"

#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

using namespace firebreak::test::daemons;

#ifndef CONNECTION_PEER_BINARY
#define CONNECTION_PEER_BINARY ""
#endif

namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && std::atoi(v) > 0 ? std::atoi(v) : fallback;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

std::string ms(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.0f ms", v);
  return b;
}

void report(const std::string& line) { std::cout << line << std::endl; }

}  // namespace

TEST_CASE("recovery after a gateway restart, with and without goodbyes") {
  if (auto why = why_skip(); !why.empty()) {
    report("goodbye bench skipped: " + why);
    return;
  }
  const int restarts = env_int("BENCH_RESTARTS", 20);
  std::vector<double> with, without;
  for (const bool goodbye : {true, false}) {
    topology t;
    two_gateway_site site(t, goodbye ? std::vector<std::string>{} : std::vector<std::string>{"--no-goodbye"});
    auto client = t.client(false);
    REQUIRE(wait_until([&] { return run(t.laptop, "ip route show | grep -q '10.72.0.2 dev'").ok(); }, 20s));
    fetch_loop browsing(t.laptop, "http://10.72.0.2:8080/hello.txt", 3s);
    for (int i = 0; i < restarts; ++i) {
      const auto took = site.restart(browsing, client, goodbye ? std::vector<std::string>{}
                                                               : std::vector<std::string>{"--no-goodbye"});
      (goodbye ? with : without).push_back(static_cast<double>(took.count()));
    }
  }
  const double w50 = percentile(with, 50), w95 = percentile(with, 95);
  const double n50 = percentile(without, 50), n95 = percentile(without, 95);
  report("goodbye: gateway restart, SIGTERM -> the resource answers again (" + std::to_string(restarts) +
         " restarts each)");
  report("  with goodbyes     p50 " + ms(w50) + "  p95 " + ms(w95) + "   (bar: p95 < 1000 ms)");
  report("  without goodbyes  p50 " + ms(n50) + "  p95 " + ms(n95) + "   (the anchor: the client's timeout)");
  char ratio[64];
  std::snprintf(ratio, sizeof ratio, "%.1fx", w50 > 0 ? n50 / w50 : 0.0);
  report(std::string("  without / with (p50): ") + ratio + "   (bar: >= 10x)");
}

TEST_CASE("revocation: admin revoke -> the client's connection gone") {
  if (auto why = why_skip(); !why.empty()) return;
  const int runs = env_int("BENCH_RUNS", 20);
  topology t;
  auto gw_b = t.gateway(t.gw_b, "gw-b", "10.71.3.1", "10.71.3.2");
  REQUIRE(wait_until([&] { return joined(gw_b); }, 20s));
  auto client = t.client(false);
  const auto sock = t.dir / "client.sock";
  std::string policy = t.lab_policy;
  std::vector<double> gone_ms, admin_ms;
  for (int i = 0; i < runs; ++i) {
    REQUIRE(wait_until([&] { return run(t.laptop, "ip route show | grep -q '10.73.0.2 dev'").ok(); }, 20s));
    REQUIRE_MESSAGE(t.fetch("http://10.73.0.2:8080/hello.txt", "lab.txt").ok(), client.log());
    const auto gateway = gateway_of(status_of_socket(sock), t.lab_res);
    auto connected = [&] { return live_connection_to(status_of_socket(sock), gateway).has_value(); };
    REQUIRE(connected());
    const auto t0 = std::chrono::steady_clock::now();
    t.admin({"policies", "delete", policy});
    admin_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    REQUIRE(wait_until([&] { return !connected(); }, 10s, 1ms));
    gone_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    policy = t.admin({"policies", "create", "--group", t.group, "--resource", t.lab_res}).at("id");
  }
  report("goodbye: revocation, `firebreak admin policies delete` starts -> the client's connection state gone (" +
         std::to_string(runs) + " runs)");
  report("  p50 " + ms(percentile(gone_ms, 50)) + "  p95 " + ms(percentile(gone_ms, 95)) +
         "   (bar: p95 < 200 ms)");
  report("  of which the admin command itself: p50 " + ms(percentile(admin_ms, 50)) + "  p95 " +
         ms(percentile(admin_ms, 95)));
}

TEST_CASE("fan-out: a gateway with many clients shuts down") {
  if (auto why = why_skip(); !why.empty()) return;
  if (std::string(CONNECTION_PEER_BINARY).empty()) return;
  const int clients = env_int("BENCH_CLIENTS", 200);
  constexpr int per_process = 50;
  topology t;
  auto gw_b = t.gateway(t.gw_b, "gw-b", "10.71.3.1", "10.71.3.2", {"--health-listen", "127.0.0.1:9090"});
  REQUIRE(wait_until([&] { return joined(gw_b); }, 20s));
  std::vector<std::vector<std::string>> argvs;
  for (int i = 0; i < clients; ++i) {
    if (i % per_process == 0)
      argvs.push_back({CONNECTION_PEER_BINARY, "--portal", "10.71.1.1:8443", "--ca", t.ca(), "--role", "client",
                       "--resource", t.lab_res, "--dst", "10.73.0.2", "--packets", "1", "--probe-ms", "2000",
                       "--duration", "300", "--local-address", "10.71.1.2"});
    const auto name = "sim-" + std::to_string(i) + ".token";
    t.write_file(name, t.admin({"clients", "create", "--user", t.user, "--name", "sim-" + std::to_string(i)})
                           .at("token"));
    argvs.back().push_back("--token-file");
    argvs.back().push_back((t.dir / name).string());
  }
  std::vector<std::unique_ptr<process>> sims;
  for (std::size_t p = 0; p < argvs.size(); ++p)
    sims.push_back(std::make_unique<process>(t.laptop, argvs[p], t.dir / ("sim-" + std::to_string(p) + ".log")));
  const auto sock = t.dir / "gw-b.sock";
  const bool all_up = wait_until(
      [&] { return live_connections(status_of_socket(sock)).size() == static_cast<std::size_t>(clients); }, 180s,
      500ms);
  const auto up = live_connections(status_of_socket(sock)).size();
  REQUIRE_MESSAGE(all_up, up << " of " << clients << " clients connected");
  std::this_thread::sleep_for(1s);

  // What a scrape costs a gateway this busy: /metrics asks every connection for its counters;
  // /healthz, the anchor, asks none. Timed by curl itself, 20 times each.
  auto p50_of = [&](const std::string& path) {
    std::vector<double> ms;
    for (int i = 0; i < 20; ++i) {
      auto r = run(t.gw_b, "curl -s -o /dev/null -w '%{time_total}' http://127.0.0.1:9090" + path, 10s);
      if (r.ok()) ms.push_back(std::stod(r.output) * 1000);
    }
    std::sort(ms.begin(), ms.end());
    return ms.empty() ? -1.0 : ms[ms.size() / 2];
  };
  const auto metrics_ms = p50_of("/metrics"), healthz_ms = p50_of("/healthz");
  char scrape_line[200];
  std::snprintf(scrape_line, sizeof scrape_line, "  GET /metrics with %d connections: p50 %.1f ms (anchor: GET /healthz, p50 %.1f ms)",
                clients, metrics_ms, healthz_ms);

  const auto sigterm_unix_ms = unix_ms_now();
  const auto sigterm_at = std::chrono::steady_clock::now();
  ::kill(gw_b.pid(), SIGTERM);
  CHECK(wait_until([&] { return !gw_b.alive(); }, 10s, 2ms));
  const auto exit_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - sigterm_at).count();
  std::this_thread::sleep_for(2s);
  // Each simulated client printed when its connection closed, and why, with the wall clock.
  std::map<int, std::int64_t> closed_at;  // client -> ms after the SIGTERM
  int other = 0;
  for (std::size_t p = 0; p < sims.size(); ++p) {
    std::istringstream lines(sims[p]->log());
    std::string line;
    while (std::getline(lines, line)) {
      auto j = json::parse(line, nullptr, false);
      if (j.is_discarded() || j.value("event", "") != "connection" || j.value("state", "") != "closed") continue;
      if (j.value("reason", "") != "remote_goodbye") {
        ++other;
        continue;
      }
      closed_at[static_cast<int>(p) * per_process + j.value("id", 0)] = j.at("unix_ms").get<std::int64_t>() -
                                                                         sigterm_unix_ms;
    }
  }
  int within = 0;
  std::int64_t slowest = 0;
  for (const auto& [id, at] : closed_at) {
    within += at <= 1000;
    slowest = std::max(slowest, at);
  }
  const auto gateway_log = gw_b.log();
  int sent = 0;
  for (std::size_t at = 0; (at = gateway_log.find("goodbye sent", at)) != std::string::npos; ++at) ++sent;
  report("goodbye: fan-out, a gateway with " + std::to_string(clients) + " connected clients gets SIGTERM");
  report("  goodbyes sent " + std::to_string(sent) + ", received within the 1 s flush " + std::to_string(within) +
         " of " + std::to_string(clients) + " (bar: all), slowest " + std::to_string(slowest) +
         " ms after the SIGTERM; closed otherwise: " + std::to_string(other));
  report(scrape_line);
  report("  the gateway exited " + std::to_string(exit_ms) +
         " ms after the SIGTERM (anchor: the 1 s flush bound; bar: the Nomad job's kill_timeout, 5 s)");
  for (auto& s : sims) s->terminate(5s);
}
