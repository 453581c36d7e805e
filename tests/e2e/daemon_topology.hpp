// The daemons' test network, shared by the e2e tests of the client and gateway (access, goodbye):
//
//   [laptop] 10.71.1.2 ── 10.71.1.1 [hub: portal, coturn] 10.71.2.1 ── 10.71.2.2 [gw-a] 10.72.0.1 ── [office] 10.72.0.2-4
//                                                         10.71.3.1 ── 10.71.3.2 [gw-b] 10.73.0.1 ── [lab]    10.73.0.2
//
// second_office_gateway() adds a second gateway for site A, the way a fleet runs two:
//
//   [hub] 10.71.4.1 ── 10.71.4.2 [gw-a2] 10.76.0.1 ── 10.76.0.2 [office] (10.72.0.0/24 routed through it)
//
// and office_gateway_slot(n, name) more of them (n >= 3), as a rolling upgrade starts new allocations.
//
// Resources: web 10.72.0.2 (TCP 8080 only), files 10.72.0.3 (everything), office-net 10.72.0.0/24 (UDP 9
// only) in site A; lab 10.73.0.2 in site B; branch-web 10.74.0.2 in site C, which has no gateway. A web
// server (python3 http.server) in the office and in the lab serves big.bin (100 MB) and hello.txt.
// Everything is stopped by PID and the namespaces deleted when the topology goes.
#pragma once

#include <doctest/doctest.h>

#include <openssl/evp.h>

#include <algorithm>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "apps/status_socket.hpp"
#include "tests/interop/coturn.hpp"
#include "tests/interop/netns.hpp"

#ifndef CONNECTION_PEER_BINARY
#define CONNECTION_PEER_BINARY ""
#endif

namespace firebreak::test::daemons {

using namespace firebreak::test;
using namespace firebreak::test::netns;
using json = nlohmann::json;
using namespace std::chrono_literals;



inline constexpr const char* python = "/usr/bin/python3";


inline std::string why_skip() {
  if (firebreak_binary().empty()) return "the firebreak binary is not built";
  if (auto missing = coturn::missing_tools(); !missing.empty()) return missing;
  if (auto why = require_root_and_netns(); !why.empty()) return why;
  for (const char* tool : {"curl", "ping", "nft"})
    if (!executable_in_path(tool)) return std::string(tool) + " is not installed";
  if (::access(python, X_OK) != 0) return "python3 (Debian's, for the web servers) is not installed";
  return {};
}

inline std::string sha256_of(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    EVP_DigestUpdate(ctx, buf.data(), static_cast<std::size_t>(in.gcount()));
  }
  unsigned char md[32];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  for (unsigned i = 0; i < len; ++i) {
    char b[3];
    std::snprintf(b, sizeof b, "%02x", md[i]);
    hex += b;
  }
  return hex;
}

inline std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct topology {
  temp_directory dir;
  network_namespace hub, laptop, gw_a, gw_b, office, lab;
  veth_link l1{hub, "10.71.1.1/24", laptop, "10.71.1.2/24"};
  veth_link l2{hub, "10.71.2.1/24", gw_a, "10.71.2.2/24"};
  veth_link l3{hub, "10.71.3.1/24", gw_b, "10.71.3.2/24"};
  veth_link l4{gw_a, "10.72.0.1/24", office, "10.72.0.2/24"};
  veth_link l5{gw_b, "10.73.0.1/24", lab, "10.73.0.2/24"};
  std::string secret = "e2e-static-auth-secret";
  std::optional<coturn::relay> relay;
  std::optional<process> portal, office_web, lab_web;
  std::string site_a, site_b, site_c, user, group, web, files, office_net, lab_res, branch;

  topology() {
    REQUIRE(run(hub, "sysctl -qw net.ipv4.ip_forward=1").ok());
    REQUIRE(run(laptop, "ip route add default via 10.71.1.1").ok());
    REQUIRE(run(gw_a, "ip route add default via 10.71.2.1").ok());
    REQUIRE(run(gw_b, "ip route add default via 10.71.3.1").ok());
    for (const char* a : {"10.72.0.3/24", "10.72.0.4/24"})
      REQUIRE(run(office, std::string("ip addr add ") + a + " dev " + l4.interface_b()).ok());
    // The office and the lab know no route back to the tunnel: only masqueraded packets get answers.
    std::filesystem::create_directories(dir / "www");
    REQUIRE(run_host("head -c 100000000 /dev/urandom > " + (dir / "www" / "big.bin").string() +
                     " && echo files > " + (dir / "www" / "hello.txt").string()).ok());
    office_web.emplace(office, std::vector<std::string>{python, "-m", "http.server", "8080", "--directory",
                                                        (dir / "www").string()},
                       dir / "office-web.log");
    lab_web.emplace(lab, std::vector<std::string>{python, "-m", "http.server", "8080", "--directory",
                                                  (dir / "www").string()},
                    dir / "lab-web.log");

    relay.emplace(dir, coturn::relay_settings{.listen_ip = "10.71.1.1", .port = 3478, .secret = secret, .ns = &hub});
    write_file("relay-secret", secret);
    portal_argv = std::vector<std::string>{firebreak_binary(), "portal", "--data-dir", (dir / "portal").string(),
                                            "--listen", "0.0.0.0:8443", "--admin-listen", "127.0.0.1:8444",
                                            "--hostname", "10.71.1.1", "--hostname", "10.71.2.1", "--hostname",
                                            "10.71.3.1", "--hostname", "10.71.4.1", "--hostname", "127.0.0.1", "--relay", "turn-1=10.71.1.1:3478",
                                            "--relay-secret-file", (dir / "relay-secret").string(), "--health-listen", "127.0.0.1:9091"};
    start_portal();
    std::string why;
    coturn::echo_peer echo(dir, "10.71.1.1", &hub);
    REQUIRE_MESSAGE(relay->wait_ready(echo.ip(), echo.port(), why), why);

    site_a = id_of(admin({"sites", "create", "office"}));
    site_b = id_of(admin({"sites", "create", "lab"}));
    user = id_of(admin({"users", "create", "ada", "--email", "ada@example.com"}));
    group = id_of(admin({"groups", "create", "engineers"}));
    admin({"groups", "add-member", group, user});
    write_file("client.token", admin({"clients", "create", "--user", user, "--name", "laptop"}).at("token"));
    enroll_gateway(site_a, "gw-a");
    enroll_gateway(site_b, "gw-b");
    web = resource(site_a, "web", "10.72.0.2", {"--filter", "tcp:8080"});
    files = resource(site_a, "files", "10.72.0.3", {});
    files_policy = id_of(last_policy);
    office_net = resource(site_a, "office-net", "10.72.0.0/24", {"--filter", "udp:9"});
    lab_res = resource(site_b, "lab", "10.73.0.2", {});
    lab_policy = id_of(last_policy);
    site_c = id_of(admin({"sites", "create", "branch"}));  // no gateway there
    branch = resource(site_c, "branch-web", "10.74.0.2", {});
  }

  static std::string id_of(const json& j) { return j.at("id").get<std::string>(); }

  /// The portal, on its data directory (a restart keeps the database, the CA and the tokens); each
  /// run logs to a file of its own.
  std::vector<std::string> portal_argv;
  int portal_runs = 0;
  void start_portal() {
    portal.reset();
    portal.emplace(hub, portal_argv, dir / (portal_runs++ == 0 ? "portal.log" : "portal-" + std::to_string(portal_runs) + ".log"));
    const bool up =
        wait_until([&] { return !portal->alive() || run(hub, "exec 3<>/dev/tcp/127.0.0.1/8444", 2s).ok(); }, 30s);
    REQUIRE_MESSAGE((up && portal->alive()), "the portal did not start:\n" << portal->log());
  }

  // The second gateway of site A (see the top of this file); its token is gw-a2.token.
  std::optional<network_namespace> gw_a2;
  std::optional<veth_link> l6, l7;
  void second_office_gateway() {
    gw_a2.emplace();
    l6.emplace(hub, "10.71.4.1/24", *gw_a2, "10.71.4.2/24");
    l7.emplace(*gw_a2, "10.76.0.1/24", office, "10.76.0.2/24");
    REQUIRE(run(*gw_a2, "ip route add default via 10.71.4.1 && ip route add 10.72.0.0/24 via 10.76.0.2").ok());
    enroll_gateway(site_a, "gw-a2");
  }

  // More of site A's gateways, each in a namespace of its own, as Nomad's bridge networking gives every
  // allocation: slot n (3, 4, ...) is 10.71.(n+2).2 towards the hub and 10.(n+74).0.1 towards the
  // office. Its token is <name>.token; it reaches the portal at 10.71.1.1.
  std::deque<network_namespace> slots;
  std::deque<veth_link> slot_links;
  const network_namespace& office_gateway_slot(int n, const std::string& name) {
    auto& ns = slots.emplace_back();
    const std::string hub_net = "10.71." + std::to_string(n + 2), site_net = "10." + std::to_string(n + 74) + ".0";
    slot_links.emplace_back(hub, hub_net + ".1/24", ns, hub_net + ".2/24");
    slot_links.emplace_back(ns, site_net + ".1/24", office, site_net + ".2/24");
    REQUIRE(run(ns, "ip route add default via " + hub_net + ".1 && ip route add 10.72.0.0/24 via " + site_net + ".2").ok());
    enroll_gateway(site_a, name);
    return ns;
  }

  std::map<std::string, std::string> gateway_ids;  // name -> id
  void enroll_gateway(const std::string& site, const std::string& name) {
    auto g = admin({"gateways", "create", "--site", site, "--name", name});
    write_file(name + ".token", g.at("token"));
    gateway_ids[name] = id_of(g);
  }

  std::string resource(const std::string& site, const std::string& name, const std::string& address,
                       std::vector<std::string> extra, const std::vector<std::string>& policy_extra = {}) {
    std::vector<std::string> args = {"resources", "create", "--site", site, "--name", name, "--address", address};
    args.insert(args.end(), extra.begin(), extra.end());
    auto id = id_of(admin(args));
    std::vector<std::string> p = {"policies", "create", "--group", group, "--resource", id};
    p.insert(p.end(), policy_extra.begin(), policy_extra.end());
    last_policy = admin(p);
    return id;
  }
  json last_policy;
  std::string files_policy, lab_policy;

  void write_file(const std::string& name, const std::string& text) {
    std::ofstream out(dir / name);
    out << text;
    REQUIRE(out.good());
    std::filesystem::permissions(dir / name, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }

  json admin(std::vector<std::string> args) {
    std::vector<std::string> argv = {"ip", "netns", "exec", hub.name(), firebreak_binary(), "admin", "--portal",
                                     "127.0.0.1:8444", "--token-file", (dir / "portal" / "admin-token").string(),
                                     "--json"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = detail::capture(argv, 30s);
    REQUIRE_MESSAGE(r.ok(), "firebreak admin failed:\n" << r.output);
    auto j = json::parse(r.output, nullptr, false);
    REQUIRE_MESSAGE(!j.is_discarded(), "firebreak admin printed no JSON:\n" << r.output);
    return j;
  }

  std::string ca() const { return (dir / "portal" / "tls" / "ca-cert.pem").string(); }

  /// A gateway configured with flags (its address and status socket) and a TOML file (the rest).
  process gateway(const network_namespace& ns, const std::string& name, const std::string& hub_ip,
                  const std::string& own_ip, std::vector<std::string> extra = {}) {
    return process(ns, gateway_argv(name, hub_ip, own_ip, std::move(extra)), dir / (name + ".log"));
  }
  std::vector<std::string> gateway_argv(const std::string& name, const std::string& hub_ip, const std::string& own_ip,
                                        std::vector<std::string> extra = {}) {
    std::ofstream toml(dir / (name + ".toml"));
    toml << "portal_url = \"wss://" << hub_ip << ":8443\"\nportal_ca_file = \"" << ca() << "\"\ntoken_file = \""
         << (dir / (name + ".token")).string() << "\"\nkey_file = \"" << (dir / (name + ".key")).string() << "\"\n";
    toml.close();
    std::vector<std::string> argv = {firebreak_binary(), "gateway", "--config", (dir / (name + ".toml")).string(),
                                     "--local-address", own_ip, "--status-socket", (dir / (name + ".sock")).string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  /// The client configured through its environment, as under systemd or Nomad.
  process client(bool relay_only, const std::vector<std::string>& extra_env = {}) {
    std::vector<std::string> argv = {"env",
                                     "FIREBREAK_PORTAL_URL=wss://10.71.1.1:8443",
                                     "FIREBREAK_PORTAL_CA_FILE=" + ca(),
                                     "FIREBREAK_TOKEN_FILE=" + (dir / "client.token").string(),
                                     "FIREBREAK_KEY_FILE=" + (dir / "client.key").string(),
                                     "FIREBREAK_STATUS_SOCKET=" + (dir / "client.sock").string(),
                                     "FIREBREAK_LOCAL_ADDRESSES=10.71.1.2",
                                     std::string("FIREBREAK_RELAY_ONLY=") + (relay_only ? "true" : "false")};
    argv.insert(argv.end(), extra_env.begin(), extra_env.end());
    argv.push_back(firebreak_binary());
    argv.push_back("client");
    return process(laptop, argv, dir / (relay_only ? "client-relayed.log" : "client.log"));
  }

  json status(const network_namespace& ns, const std::string& who, const std::string& sock) {
    auto r = detail::capture({"ip", "netns", "exec", ns.name(), firebreak_binary(), who, "status", "--status-socket",
                              (dir / sock).string(), "--json"},
                             10s);
    REQUIRE_MESSAGE(r.ok(), who << " status failed:\n" << r.output);
    auto j = json::parse(r.output, nullptr, false);
    REQUIRE_MESSAGE(!j.is_discarded(), who << " status printed no JSON:\n" << r.output);
    return j;
  }

  /// curl from the laptop; the body goes to `out`.
  command_result fetch(const std::string& url, const std::string& out) {
    return run(laptop, "curl -sS --fail --max-time 120 -o " + (dir / out).string() + " " + url, 150s);
  }
};

/// A person's browser, as the gateway behind it restarts: a fetch from the laptop started every
/// `every` (each bounded by `attempt_limit`, several in flight at once, so one whose packets died with
/// a gateway does not hold up the next), every outcome recorded.
class fetch_loop {
 public:
  using clock = std::chrono::steady_clock;
  struct attempt {
    clock::time_point started, ended;
    bool ok;
  };
  fetch_loop(const network_namespace& ns, std::string url, std::chrono::seconds attempt_limit = 5s,
             std::chrono::milliseconds every = 50ms)
      : thread_([this, &ns, url = std::move(url), attempt_limit, every] {
          std::vector<std::thread> running;
          while (!stop_) {
            running.emplace_back([this, &ns, url, attempt_limit] {
              const auto started = clock::now();
              const bool ok = run(ns,
                                  "curl -sS --fail -o /dev/null --max-time " +
                                      std::to_string(attempt_limit.count()) + " " + url,
                                  attempt_limit + 5s)
                                  .ok();
              std::lock_guard lock(mutex_);
              attempts_.push_back({started, clock::now(), ok});
            });
            std::this_thread::sleep_for(every);
            if (running.size() > 200) {  // join the oldest, long finished
              running.front().join();
              running.erase(running.begin());
            }
          }
          for (auto& t : running) t.join();
        }) {}
  ~fetch_loop() {
    stop_ = true;
    thread_.join();
  }
  std::size_t successes_since(clock::time_point t) const {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& a : attempts_) n += a.ok && a.started >= t;
    return n;
  }
  /// The longest time the resource was out of reach as a person sees it: from the start of a fetch
  /// that failed or took longer than `slow` to the start of the next fetch that succeeded within
  /// `slow`. Also how many fetches were made and failed outright.
  struct outage {
    std::chrono::milliseconds longest{0};
    std::size_t attempts = 0, failed = 0;
  };
  outage longest_outage(std::chrono::milliseconds slow) const {
    std::lock_guard lock(mutex_);
    auto sorted = attempts_;
    std::sort(sorted.begin(), sorted.end(), [](const attempt& a, const attempt& b) { return a.started < b.started; });
    outage out;
    out.attempts = sorted.size();
    std::optional<clock::time_point> bad_since;
    for (const auto& a : sorted) {
      out.failed += !a.ok;
      const bool good = a.ok && a.ended - a.started <= slow;
      if (!good && !bad_since) bad_since = a.started;
      if (good && bad_since) {
        out.longest = std::max(out.longest, std::chrono::duration_cast<std::chrono::milliseconds>(a.started - *bad_since));
        bad_since.reset();
      }
    }
    if (bad_since && !sorted.empty())
      out.longest = std::max(out.longest, std::chrono::duration_cast<std::chrono::milliseconds>(sorted.back().started - *bad_since));
    return out;
  }
  /// When the resource first answered a fetch started at or after `t`; nullopt if none has yet.
  std::optional<clock::time_point> first_success_after(clock::time_point t) const {
    std::lock_guard lock(mutex_);
    std::optional<clock::time_point> first;
    for (const auto& a : attempts_)
      if (a.ok && a.started >= t && (!first || a.ended < *first)) first = a.ended;
    return first;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<attempt> attempts_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// One of site A's two gateways, restarted as a rolling upgrade would (second_office_gateway()).
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
  std::string id(const topology& t) const { return t.gateway_ids.at(name); }
};

inline bool joined(const process& p) { return p.log().find("joined the portal") != std::string::npos; }

/// The daemon's status straight from its socket (no CLI process): for timing, where polling through
/// `firebreak ... status` would cost more than what is measured.
inline json status_of_socket(const std::filesystem::path& path) {
  std::string why;
  const auto answer = firebreak::apps::ask_daemon(path.string(), "status", why);
  auto j = answer ? json::parse(*answer, nullptr, false) : json();
  return j.is_discarded() ? json{} : j;
}

/// How many goodbyes the laptop's client has received; -1 when its status does not say.
inline int goodbyes_heard(const topology& t) {
  const auto s = status_of_socket(t.dir / "client.sock");
  return s.contains("goodbyes") ? s.at("goodbyes").value("received", -1) : -1;
}

inline std::vector<json> live_connections(const json& status) {
  std::vector<json> out;
  if (!status.contains("connections")) return out;
  for (const auto& c : status.at("connections"))
    if (c.at("state") == "connected" || c.at("state") == "idle") out.push_back(c);
  return out;
}

/// The live connection to `peer`, as the status shows it; nullopt if there is none.
inline std::optional<json> live_connection_to(const json& status, const std::string& peer) {
  for (const auto& c : live_connections(status))
    if (c.at("peer") == peer) return c;
  return std::nullopt;
}


inline std::string gateway_of(const json& status, const std::string& resource) {
  for (const auto& r : status.at("resources"))
    if (r.at("id") == resource) return r.at("gateway");
  return {};
}

/// Site A with two gateways (second_office_gateway()) serving web, restarted one at a time.
struct two_gateway_site {
  topology& t;
  office_gateway a{&t.gw_a, "gw-a", "10.71.2.1", "10.71.2.2"}, a2{nullptr, "gw-a2", "10.71.4.1", "10.71.4.2"};

  explicit two_gateway_site(topology& top, std::vector<std::string> extra = {}) : t(top) {
    t.second_office_gateway();
    a2.ns = &*t.gw_a2;
    a.start(t, extra);
    a2.start(t, extra);
    REQUIRE_MESSAGE(wait_until([&] { return joined(*a.proc) && joined(*a2.proc); }, 20s),
                    "the gateways did not join:\n" << a.proc->log() << "\n" << a2.proc->log());
  }

  /// The gateway the client's web flow goes through now.
  office_gateway& serving() {
    const auto g = gateway_of(status_of_socket(t.dir / "client.sock"), t.web);
    return g == a.id(t) ? a : a2;
  }

  /// One restart: SIGTERM to the serving gateway, timed until a fetch started after it succeeds
  /// (through the other gateway); then the stopped one comes back with `restart_extra`, as a rolling
  /// upgrade's next step would.
  std::chrono::milliseconds restart(const fetch_loop& browsing, const process& client,
                                    std::vector<std::string> restart_extra = {}) {
    const auto settled = std::chrono::steady_clock::now();
    REQUIRE_MESSAGE(wait_until([&] { return browsing.successes_since(settled) >= 3; }, 30s), client.log());
    auto& stopping = serving();
    const auto from = stopping.id(t);
    const int heard_before = goodbyes_heard(t);
    REQUIRE(heard_before >= 0);
    const auto t0 = std::chrono::steady_clock::now();
    ::kill(stopping.proc->pid(), SIGTERM);
    const bool back = wait_until([&] { return browsing.first_success_after(t0).has_value(); }, 60s, 2ms);
    REQUIRE_MESSAGE(back, "no fetch succeeded after the restart:\n" << client.log());
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(*browsing.first_success_after(t0) - t0);
    CHECK(wait_until([&] { return !stopping.proc->alive(); }, 5s));
    CHECK(stopping.proc->terminate() == 0);
    const auto now_through = gateway_of(status_of_socket(t.dir / "client.sock"), t.web);
    CHECK(now_through != from);
    CHECK_FALSE(now_through.empty());
    // What brought the client over: the stopping gateway's goodbye, or (without one) its own timeout.
    CHECK(goodbyes_heard(t) == heard_before + (stopping.goodbye ? 1 : 0));
    stopping.start(t, std::move(restart_extra));
    REQUIRE(wait_until([&] { return joined(*stopping.proc); }, 20s));
    return took;
  }
};


}  // namespace firebreak::test::daemons
