// Fleet operations, with the real daemons in the test network of tests/e2e/daemon_topology.hpp:
//   * a rolling upgrade of site A's two gateways as Nomad runs one (deploy/nomad/gateway.nomad.hcl):
//     for each old gateway, a new one starts in a namespace of its own (as a bridge-mode allocation),
//     its /healthz is awaited, the old one gets SIGTERM and SIGKILL after the job's kill_timeout; the
//     laptop fetches a page all along and no fetch is out of reach for more than 1 s;
//   * /metrics on both daemons and the portal parses with the Prometheus project's parser, and its counters move
//     when traffic, flows and a goodbye happen; /healthz answers 200 when joined;
//   * sd_notify as systemd's Type=notify sees it: READY=1 after the join, WATCHDOG=1 at half of
//     WATCHDOG_USEC, STOPPING=1 at the goodbye;
//   * bad input: an unreachable portal (retries, /healthz 503 saying why), the health port in use,
//     no /dev/net/tun, an unreadable one, no CAP_NET_ADMIN: each a clear message and the exit or the
//     retry it should be.
// Needs root, coturn, curl and python3; skips with a message otherwise.
#include <sys/socket.h>
#include <sys/un.h>

#include "tests/e2e/daemon_topology.hpp"

#ifndef PROMETHEUS_TEXT_SCRIPT
#define PROMETHEUS_TEXT_SCRIPT ""
#endif

using namespace firebreak::test::daemons;

namespace {

constexpr auto kill_timeout = 5s;  // the gateway job's kill_timeout
const std::string health = "127.0.0.1:9090";

struct http_result {
  int status = 0;
  std::string body;
};

/// GET (or another method) from inside `ns`, with curl.
http_result http(const network_namespace& ns, const std::string& url, const std::string& method = "GET") {
  auto r = run(ns, "curl -s -X " + method + " --max-time 5 -w '\\n%{http_code}' " + url, 10s);
  http_result out;
  const auto nl = r.output.rfind('\n');
  if (nl == std::string::npos) return out;
  out.body = r.output.substr(0, nl);
  try {
    out.status = std::stoi(r.output.substr(nl + 1));
  } catch (...) {
    out.status = 0;
  }
  return out;
}

bool healthy(const network_namespace& ns) { return http(ns, "http://" + health + "/healthz").status == 200; }

/// The samples of a /metrics page, read by the Prometheus client's own parser; fails the test if the
/// page does not parse.
json scrape(const network_namespace& ns, const temp_directory& dir, const std::string& name,
            const std::string& at = health) {
  auto page = http(ns, "http://" + at + "/metrics");
  REQUIRE(page.status == 200);
  const auto file = dir / (name + ".prom");
  {
    std::ofstream out(file);
    out << page.body << "\n";
  }
  auto parsed = run_host(std::string("/usr/bin/python3 ") + PROMETHEUS_TEXT_SCRIPT + " < " + file.string(), 20s);
  REQUIRE_MESSAGE(parsed.ok(), "/metrics did not parse as Prometheus text: " << parsed.output << "\n" << page.body);
  auto j = json::parse(parsed.output, nullptr, false);
  REQUIRE(!j.is_discarded());
  return j;
}

double sample(const json& scraped, const std::string& key) {
  const auto& s = scraped.at("samples");
  return s.contains(key) ? s.at(key).get<double>() : -1;
}

}  // namespace

TEST_CASE("a rolling upgrade of a site's gateways, as Nomad runs it: no fetch out of reach for more than 1 s") {
  if (auto why = why_skip(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  topology t;
  t.second_office_gateway();
  struct allocation {
    const network_namespace* ns;
    std::string name, own_ip;
    std::unique_ptr<process> proc;
  };
  auto start = [&](allocation& a) {
    a.proc = std::make_unique<process>(*a.ns, t.gateway_argv(a.name, "10.71.1.1", a.own_ip, {"--health-listen", health}),
                                       t.dir / (a.name + ".log"));
  };
  std::deque<allocation> running;
  running.push_back({&t.gw_a, "gw-a", "10.71.2.2", {}});
  running.push_back({&*t.gw_a2, "gw-a2", "10.71.4.2", {}});
  for (auto& a : running) start(a);
  for (auto& a : running)
    REQUIRE_MESSAGE(wait_until([&] { return healthy(*a.ns); }, 20s), a.name << " never became healthy:\n" << a.proc->log());

  auto client = t.client(false);
  REQUIRE(wait_until([&] { return run(t.laptop, "ip route show | grep -q '10.72.0.2 dev'").ok(); }, 20s));
  fetch_loop browsing(t.laptop, "http://10.72.0.2:8080/hello.txt", 3s);
  const auto began = std::chrono::steady_clock::now();
  REQUIRE_MESSAGE(wait_until([&] { return browsing.successes_since(began) >= 5; }, 30s), client.log());

  // The upgrade: each old allocation in turn is replaced by a new one.
  int slot = 3;
  std::vector<std::string> stopped_logs;
  for (int step = 0; step < 2; ++step) {
    allocation fresh{&t.office_gateway_slot(slot, "gw-new-" + std::to_string(step)), "gw-new-" + std::to_string(step),
                     "10.71." + std::to_string(slot + 2) + ".2", {}};
    ++slot;
    start(fresh);
    REQUIRE_MESSAGE(wait_until([&] { return healthy(*fresh.ns); }, 20s),
                    fresh.name << " never became healthy:\n" << fresh.proc->log());
    auto old = std::move(running.front());
    running.pop_front();
    ::kill(old.proc->pid(), SIGTERM);
    const bool exited = wait_until([&] { return !old.proc->alive(); }, kill_timeout);
    if (!exited) ::kill(old.proc->pid(), SIGKILL);
    CHECK_MESSAGE(exited, old.name << " needed SIGKILL after the kill_timeout");
    CHECK(old.proc->terminate() == 0);
    stopped_logs.push_back(old.proc->log());
    running.push_back(std::move(fresh));
    // Nomad's min_healthy_time before the next step; the clients settle meanwhile.
    std::this_thread::sleep_for(2s);
  }
  const auto done = std::chrono::steady_clock::now();
  REQUIRE_MESSAGE(wait_until([&] { return browsing.successes_since(done) >= 5; }, 30s), client.log());
  const auto o = browsing.longest_outage(1s);
  MESSAGE("rolling upgrade of 2 gateways: " << o.attempts << " fetches, " << o.failed
                                            << " failed, longest time out of reach " << o.longest.count() << " ms");
  CHECK(o.longest < 1s);
  for (const auto& log : stopped_logs) CHECK(log.find("goodbye") != std::string::npos);
  // The laptop ends on the new gateways only.
  const auto s = status_of_socket(t.dir / "client.sock");
  for (const auto& c : live_connections(s)) {
    const auto peer = c.at("peer").get<std::string>();
    CHECK((peer == t.gateway_ids.at("gw-new-0") || peer == t.gateway_ids.at("gw-new-1")));
  }
  CHECK(client.terminate(5s) == 0);
}

TEST_CASE("/metrics parses as Prometheus text and its counters move; /healthz says ready") {
  if (auto why = why_skip(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  topology t;
  process gw(t.gw_a, t.gateway_argv("gw-a", "10.71.2.1", "10.71.2.2", {"--health-listen", health}), t.dir / "gw-a.log");
  auto client = t.client(false, {"FIREBREAK_HEALTH_LISTEN=" + health});
  REQUIRE_MESSAGE(wait_until([&] { return healthy(t.gw_a) && healthy(t.laptop); }, 20s), gw.log() << client.log());

  auto h = http(t.laptop, "http://" + health + "/healthz");
  auto hj = json::parse(h.body, nullptr, false);
  REQUIRE(hj.is_object());
  CHECK(hj["ready"] == true);
  CHECK(hj["portal"]["state"] == "joined");
  CHECK(http(t.laptop, "http://" + health + "/nothing").status == 404);
  CHECK(http(t.laptop, "http://" + health + "/metrics", "POST").status == 405);

  const auto p0 = scrape(t.hub, t.dir, "portal-0", "127.0.0.1:9091");
  CHECK(http(t.hub, "http://127.0.0.1:9091/healthz").status == 200);
  CHECK(sample(p0, "firebreak_portal_ready") == 1);
  CHECK(sample(p0, "firebreak_portal_sessions{kind=client}") == 1);
  CHECK(sample(p0, "firebreak_portal_sessions{kind=gateway}") == 1);
  const auto c0 = scrape(t.laptop, t.dir, "client-0");
  const auto g0 = scrape(t.gw_a, t.dir, "gateway-0");
  CHECK(c0.at("types").at("firebreak_flow_setup_seconds") == "histogram");
  CHECK(c0.at("types").at("firebreak_connections") == "gauge");
  CHECK(sample(c0, "firebreak_ready") == 1);
  CHECK(sample(g0, "firebreak_portal_joined") == 1);
  CHECK(sample(c0, "firebreak_flows_requested_total") == 0);
  CHECK(sample(c0, "firebreak_connections{state=connected}") == 0);

  // Traffic: a fetch from the office asks for a flow, connects and moves bytes.
  REQUIRE(t.fetch("http://10.72.0.2:8080/hello.txt", "hello.txt").ok());
  REQUIRE(t.fetch("http://10.72.0.3:8080/hello.txt", "hello2.txt").ok());
  const auto c1 = scrape(t.laptop, t.dir, "client-1");
  const auto g1 = scrape(t.gw_a, t.dir, "gateway-1");
  CHECK(sample(c1, "firebreak_flows_requested_total") >= 2);
  CHECK(sample(c1, "firebreak_flows_granted_total") == 2);
  CHECK(sample(g1, "firebreak_flows_requested_total") == 2);
  CHECK(sample(g1, "firebreak_flows_granted_total") == 2);
  CHECK(sample(c1, "firebreak_handshakes_total") >= 1);
  CHECK(sample(g1, "firebreak_handshakes_total") >= 1);
  CHECK(sample(c1, "firebreak_connections{state=connected}") == 1);
  CHECK(sample(g1, "firebreak_connections{state=connected}") == 1);
  CHECK(sample(c1, "firebreak_tunnel_bytes_total{direction=from_gateways}") > 0);
  CHECK(sample(c1, "firebreak_tunnel_packets_total{direction=to_gateways}") >
        sample(c0, "firebreak_tunnel_packets_total{direction=to_gateways}"));
  CHECK(sample(g1, "firebreak_tunnel_bytes_total{direction=to_resources}") > 0);
  // Both flows were set up and observed: the first through a new connection, the second on it.
  CHECK(sample(c1, "firebreak_flow_setup_seconds_count") == 2);
  CHECK(sample(c1, "firebreak_flow_setup_seconds_bucket{le=+Inf}") == 2);
  CHECK(sample(c1, "firebreak_flow_setup_seconds_sum") > 0);
  CHECK(sample(g1, "firebreak_flow_setup_seconds_count") >= 1);

  const auto p1 = scrape(t.hub, t.dir, "portal-1", "127.0.0.1:9091");
  CHECK(sample(p1, "firebreak_portal_flows_requested_total") >= 2);
  CHECK(sample(p1, "firebreak_portal_flows_granted_total") == 2);
  CHECK(sample(p1, "firebreak_portal_flows_pending") == 0);

  // A flow the gateway's portal does not offer: a packet for branch-web (site C, no gateway).
  run(t.laptop, "curl -s --max-time 2 -o /dev/null http://10.74.0.2:8080/", 5s);
  REQUIRE(wait_until([&] { return sample(scrape(t.laptop, t.dir, "client-2"), "firebreak_flows_refused_total{reason=offline}") >= 1; }, 10s));
  CHECK(sample(scrape(t.hub, t.dir, "portal-2", "127.0.0.1:9091"), "firebreak_portal_flows_refused_total{reason=offline}") >= 1);

  // The goodbye, both ways. Revoking both office resources leaves the laptop no grant at gw-a and
  // no resource of site A: gw-a says goodbye ("revoked") and the laptop its own ("site_removed").
  t.admin({"policies", "delete", t.files_policy});
  for (const auto& p : t.admin({"policies", "list"}))
    if (p.value("resource_id", "") == t.web) t.admin({"policies", "delete", p.at("id").get<std::string>()});
  // Whichever side hears first says goodbye first; the other may find the connection already gone.
  REQUIRE(wait_until([&] {
    return sample(scrape(t.gw_a, t.dir, "gateway-3"), "firebreak_goodbyes_sent_total{reason=revoked}") +
               sample(scrape(t.laptop, t.dir, "client-3"), "firebreak_goodbyes_sent_total{reason=site_removed}") >= 1;
  }, 10s));
  CHECK(wait_until([&] { return sample(scrape(t.gw_a, t.dir, "gateway-4"), "firebreak_connections{state=connected}") == 0; }, 5s));
  // A gateway that stops says goodbye ("shutdown"), and the laptop counts it as received.
  process gw_b(t.gw_b, t.gateway_argv("gw-b", "10.71.3.1", "10.71.3.2"), t.dir / "gw-b.log");
  REQUIRE(wait_until([&] { return joined(gw_b); }, 20s));
  REQUIRE(t.fetch("http://10.73.0.2:8080/hello.txt", "lab.txt").ok());
  const auto before = sample(scrape(t.laptop, t.dir, "client-4"), "firebreak_goodbyes_received_total");
  ::kill(gw_b.pid(), SIGTERM);
  CHECK(wait_until([&] { return sample(scrape(t.laptop, t.dir, "client-5"), "firebreak_goodbyes_received_total") == before + 1; }, 10s));
  CHECK(wait_until([&] { return !gw_b.alive(); }, 5s));
  CHECK(gw_b.terminate() == 0);
  CHECK(gw.terminate(5s) == 0);
  CHECK(client.terminate(5s) == 0);
}

TEST_CASE("sd_notify: READY=1 once joined, WATCHDOG=1 pings, STOPPING=1 at the goodbye") {
  if (auto why = why_skip(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  topology t;
  // systemd's side of NOTIFY_SOCKET: a datagram socket; every datagram is one notification.
  const auto path = t.dir / "notify.sock";
  detail::fd_guard sock(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  REQUIRE(::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  timeval tv{0, 100'000};
  ::setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>> got;
  auto drain = [&] {
    char buf[4096];
    for (;;) {
      const auto n = ::recv(sock.get(), buf, sizeof buf, 0);
      if (n <= 0) return;
      got.emplace_back(std::chrono::steady_clock::now(), std::string(buf, static_cast<std::size_t>(n)));
    }
  };
  auto count = [&](const std::string& what) {
    return std::count_if(got.begin(), got.end(), [&](const auto& g) { return g.second.find(what) != std::string::npos; });
  };
  auto argv = t.gateway_argv("gw-a", "10.71.2.1", "10.71.2.2");
  argv.insert(argv.begin(), {"env", "NOTIFY_SOCKET=" + path.string(), "WATCHDOG_USEC=400000"});
  process gw(t.gw_a, argv, t.dir / "gw-a.log");
  REQUIRE(wait_until([&] { drain(); return count("READY=1") > 0; }, 20s));
  CHECK(joined(gw));
  const auto ready_at = got.back().first;
  wait_until([&] { drain(); return false; }, 1500ms);
  // Half of 400 ms: about 7 pings in 1.5 s; at least 3 leaves room for a loaded machine.
  std::size_t pings = 0;
  for (const auto& g : got) pings += g.first >= ready_at && g.second.find("WATCHDOG=1") != std::string::npos;
  CHECK(pings >= 3);
  CHECK(count("READY=1") == 1);
  CHECK(count("STOPPING=1") == 0);
  ::kill(gw.pid(), SIGTERM);
  CHECK(wait_until([&] { drain(); return count("STOPPING=1") > 0; }, 5s));
  CHECK(wait_until([&] { return !gw.alive(); }, 5s));
  CHECK(gw.terminate(5s) == 0);
  std::string all;
  for (const auto& g : got) all += g.second + " | ";
  MESSAGE("notifications: " << all.substr(0, 600));
}

TEST_CASE("bad input: unreachable portal, health port in use, no TUN device or an unreadable one, no CAP_NET_ADMIN") {
  if (auto why = why_skip(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  topology t;

  SUBCASE("an unreachable portal: retried with backoff, /healthz 503 saying why, SIGTERM still exits 0") {
    auto argv = t.gateway_argv("gw-a", "10.71.2.1", "10.71.2.2", {"--health-listen", health, "--portal-url", "wss://10.71.2.1:9"});
    process gw(t.gw_a, argv, t.dir / "gw-unreachable.log");
    REQUIRE(wait_until([&] { return http(t.gw_a, "http://" + health + "/healthz").status == 503; }, 10s));
    CHECK(wait_until([&] { return gw.log().find("retrying in") != std::string::npos; }, 10s));
    auto h = json::parse(http(t.gw_a, "http://" + health + "/healthz").body, nullptr, false);
    REQUIRE(h.is_object());
    CHECK(h["ready"] == false);
    CHECK(h["portal"]["state"] == "connecting");
    CHECK_FALSE(h["portal"].value("reason", "").empty());
    std::this_thread::sleep_for(2s);
    CHECK(gw.alive());
    CHECK(gw.terminate(5s) == 0);
  }
  SUBCASE("the health port in use: exit 1, naming the address and the setting") {
    process squatter(t.gw_a, {"socat", "TCP-LISTEN:9090,bind=127.0.0.1,fork,reuseaddr", "SYSTEM:true"}, t.dir / "squatter.log");
    REQUIRE(wait_until([&] { return run(t.gw_a, "exec 3<>/dev/tcp/127.0.0.1/9090", 2s).ok(); }, 5s));
    process gw(t.gw_a, t.gateway_argv("gw-a", "10.71.2.1", "10.71.2.2", {"--health-listen", health}), t.dir / "gw-port.log");
    REQUIRE(wait_until([&] { return !gw.alive(); }, 10s));
    CHECK(gw.terminate() == 1);
    CHECK(gw.log().find("127.0.0.1:9090") != std::string::npos);
    CHECK(gw.log().find("in use") != std::string::npos);
    CHECK(gw.log().find("--health-listen") != std::string::npos);
    squatter.terminate();
  }
  SUBCASE("no /dev/net/tun (hidden in a mount namespace): exit 1, saying what to do") {
    auto argv = t.gateway_argv("gw-a", "10.71.2.1", "10.71.2.2");
    std::string cmd = "mount -t tmpfs none /dev/net && exec";
    for (const auto& a : argv) cmd += " '" + a + "'";
    process gw(t.gw_a, {"unshare", "--mount", "--propagation", "private", "sh", "-c", cmd}, t.dir / "gw-notun.log");
    REQUIRE(wait_until([&] { return !gw.alive(); }, 10s));
    CHECK(gw.terminate() == 1);
    CHECK(gw.log().find("/dev/net/tun does not exist") != std::string::npos);
  }
  SUBCASE("an unreadable /dev/net/tun (mode 000, no DAC override): exit 1, saying what to fix") {
    auto argv = t.gateway_argv("gw-a", "10.71.2.1", "10.71.2.2");
    std::string cmd =
        "mount -t tmpfs none /dev/net && mknod /dev/net/tun c 10 200 && chmod 000 /dev/net/tun && exec setpriv "
        "--bounding-set -dac_override,-dac_read_search --inh-caps -dac_override,-dac_read_search";
    for (const auto& a : argv) cmd += " '" + a + "'";
    process gw(t.gw_a, {"unshare", "--mount", "--propagation", "private", "sh", "-c", cmd}, t.dir / "gw-tunmode.log");
    REQUIRE(wait_until([&] { return !gw.alive(); }, 10s));
    CHECK(gw.terminate() == 1);
    CHECK(gw.log().find("cannot open /dev/net/tun: permission denied") != std::string::npos);
  }
  SUBCASE("no CAP_NET_ADMIN: exit 1, naming the capability") {
    auto argv = t.gateway_argv("gw-a", "10.71.2.1", "10.71.2.2");
    argv.insert(argv.begin(), {"setpriv", "--bounding-set", "-net_admin", "--inh-caps", "-net_admin"});
    process gw(t.gw_a, argv, t.dir / "gw-nocap.log");
    REQUIRE(wait_until([&] { return !gw.alive(); }, 10s));
    CHECK(gw.terminate() == 1);
    CHECK(gw.log().find("CAP_NET_ADMIN") != std::string::npos);
  }
}
