// Peer connections end to end, in network namespaces: a portal and coturn in a hub namespace, a client
// and a gateway (each a connection_peer process: portal_link, the connection actor, libnice, our
// WireGuard) in namespaces of their own, each joined to the hub by a veth; the hub routes between them.
//
//     [client ns] 10.71.1.2 ──veth── 10.71.1.1 [hub ns: portal, coturn] 10.71.2.1 ──veth── 10.71.2.2 [gateway ns]
//
// Cases: the direct path; relay-only (the client gathers only TURN candidates); 20 % random loss on the
// client's UDP (nftables numgen, as this kernel has no netem); the gateway killed with SIGKILL, which the
// client must report as failed within 20 s. Everything started is stopped by PID; namespaces are deleted.
// Needs root and the tools; skips with a message otherwise. libnice skips interfaces named veth* when it
// looks for host addresses, so each side names its address (--local-address), as an operator can.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "tests/interop/coturn.hpp"
#include "tests/interop/netns.hpp"

namespace {

using namespace firebreak::test;
using namespace firebreak::test::netns;
using json = nlohmann::json;
using namespace std::chrono_literals;

#ifndef CONNECTION_PEER_BINARY
#define CONNECTION_PEER_BINARY ""
#endif

std::string why_skip() {
  if (firebreak_binary().empty() || std::string(CONNECTION_PEER_BINARY).empty())
    return "the firebreak and connection_peer binaries are not built";
  if (auto missing = coturn::missing_tools(); !missing.empty()) return missing;
  if (::geteuid() != 0) return "needs root for network namespaces";
  for (const char* tool : {"ip", "nft", "wg"})
    if (!executable_in_path(tool)) return std::string(tool) + " is not installed";
  return {};
}

/// The JSON lines a connection_peer printed so far.
std::vector<json> lines_of(const process& p) {
  std::vector<json> out;
  std::istringstream in(p.log());
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line.front() != '{') continue;
    auto j = json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

std::optional<json> find_event(const process& p, const std::string& event, const std::string& state = {}) {
  for (auto& j : lines_of(p))
    if (j.value("event", "") == event && (state.empty() || j.value("state", "") == state)) return j;
  return std::nullopt;
}

/// Hub, client and gateway namespaces; the portal and coturn in the hub; a site with a resource the
/// client may reach, and the tokens and keys of both sides in a scratch folder.
struct topology {
  temp_directory dir;
  network_namespace hub, client_ns, gateway_ns;
  veth_link to_client{hub, "10.71.1.1/24", client_ns, "10.71.1.2/24"};
  veth_link to_gateway{hub, "10.71.2.1/24", gateway_ns, "10.71.2.2/24"};
  std::string secret = "e2e-static-auth-secret";
  std::optional<coturn::relay> relay;
  std::optional<process> portal;
  std::string resource;

  topology() {
    REQUIRE(run(hub, "sysctl -qw net.ipv4.ip_forward=1").ok());
    REQUIRE(run(client_ns, "ip route add default via 10.71.1.1").ok());
    REQUIRE(run(gateway_ns, "ip route add default via 10.71.2.1").ok());

    relay.emplace(dir, coturn::relay_settings{.listen_ip = "10.71.1.1", .port = 3478, .secret = secret, .ns = &hub});
    write_file("relay-secret", secret);
    portal.emplace(hub,
                   std::vector<std::string>{firebreak_binary(), "portal", "--data-dir", (dir / "portal").string(),
                                            "--listen", "0.0.0.0:8443", "--admin-listen", "127.0.0.1:8444",
                                            "--hostname", "10.71.1.1", "--hostname", "10.71.2.1", "--hostname", "127.0.0.1", "--relay",
                                            "turn-1=10.71.1.1:3478", "--relay-secret-file",
                                            (dir / "relay-secret").string()},
                   dir / "portal.log");
    const bool up = wait_until([&] { return !portal->alive() || run(hub, "exec 3<>/dev/tcp/127.0.0.1/8444", 2s).ok(); }, 20s);
    const bool running = up && portal->alive();
    REQUIRE_MESSAGE(running, "the portal did not start:\n" << portal->log());
    std::string why;
    coturn::echo_peer echo(dir, "10.71.1.1", &hub);
    REQUIRE_MESSAGE(relay->wait_ready(echo.ip(), echo.port(), why), why);

    const auto site = admin({"sites", "create", "e2e-site"}).at("id").get<std::string>();
    const auto user = admin({"users", "create", "ada", "--email", "ada@example.com"}).at("id").get<std::string>();
    const auto group = admin({"groups", "create", "engineers"}).at("id").get<std::string>();
    admin({"groups", "add-member", group, user});
    write_file("client.token", admin({"clients", "create", "--user", user, "--name", "laptop"}).at("token"));
    write_file("gateway.token", admin({"gateways", "create", "--site", site, "--name", "gw-1"}).at("token"));
    resource = admin({"resources", "create", "--site", site, "--name", "web", "--address", "10.0.0.0/24"})
                   .at("id")
                   .get<std::string>();
    admin({"policies", "create", "--group", group, "--resource", resource});
    for (const char* side : {"client.key", "gateway.key"}) {
      auto key = detail::capture({"wg", "genkey"}, 10s);
      REQUIRE(key.ok());
      write_file(side, key.output);
    }
  }

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

  process gateway(int duration_s = 60) {
    return process(gateway_ns,
                   {CONNECTION_PEER_BINARY, "--portal", "10.71.2.1:8443", "--ca",
                    (dir / "portal" / "tls" / "ca-cert.pem").string(), "--token-file", (dir / "gateway.token").string(),
                    "--key-file", (dir / "gateway.key").string(), "--role", "gateway", "--duration",
                    std::to_string(duration_s), "--local-address", "10.71.2.2"},
                   dir / "gateway.log");
  }

  std::vector<std::string> client_argv(std::vector<std::string> extra, int duration_s) {
    std::vector<std::string> argv = {CONNECTION_PEER_BINARY, "--portal", "10.71.1.1:8443", "--ca",
                                     (dir / "portal" / "tls" / "ca-cert.pem").string(), "--token-file",
                                     (dir / "client.token").string(), "--key-file", (dir / "client.key").string(),
                                     "--role", "client", "--resource", resource, "--duration",
                                     std::to_string(duration_s), "--local-address", "10.71.1.2"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  process client(std::vector<std::string> extra, int duration_s = 30) {
    return process(client_ns, client_argv(std::move(extra), duration_s), dir / "client.log");
  }
};

/// Waits for the gateway to have joined the portal, so create_flow finds it online.
void wait_joined(const process& p) {
  REQUIRE_MESSAGE(wait_until([&] { return find_event(p, "link").has_value(); }, 20s), "did not join:\n" << p.log());
}

}  // namespace

TEST_CASE("peer connections through the portal's signalling: direct, relay-only, lossy, and a killed gateway") {
  if (auto why = why_skip(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  topology t;
  auto gateway = t.gateway();
  wait_joined(gateway);

  SUBCASE("direct: the two sides connect and packets go both ways") {
    auto client = t.client({"--packets", "50"}, 10);
    REQUIRE_MESSAGE(wait_until([&] { return find_event(client, "echoed").has_value(); }, 20s),
                    "no echoes:\n" << client.log() << "\ngateway:\n" << gateway.log());
    auto connected = find_event(client, "connection", "connected");
    REQUIRE(connected);
    CHECK(connected->at("relayed") == false);
    CHECK(find_event(client, "echoed")->at("count") == 50);
    CHECK(find_event(gateway, "connection", "connected"));
  }
  SUBCASE("relay-only: the client's only candidates are relayed, and it still connects") {
    auto client = t.client({"--packets", "20", "--relay-only"}, 10);
    REQUIRE_MESSAGE(wait_until([&] { return find_event(client, "echoed").has_value(); }, 20s),
                    "no echoes:\n" << client.log() << "\ngateway:\n" << gateway.log());
    auto connected = find_event(client, "connection", "connected");
    REQUIRE(connected);
    CHECK(connected->at("relayed") == true);
  }
  SUBCASE("20 % loss on the client's UDP: it connects and carries the transfer") {
    REQUIRE(run(t.client_ns,
                "nft add table inet lossy && "
                "nft add chain inet lossy in '{ type filter hook input priority 0; }' && "
                "nft add chain inet lossy out '{ type filter hook output priority 0; }' && "
                "nft add rule inet lossy in meta l4proto udp numgen random mod 100 '<' 20 drop && "
                "nft add rule inet lossy out meta l4proto udp numgen random mod 100 '<' 20 drop")
                .ok());
    // A lost handshake message costs a 5 s retry, and libnice's consent check can give up on a path
    // this lossy, so a client may need another try (as a real one would): up to three, 25 s each.
    std::optional<process> client;
    for (int attempt = 1; attempt <= 3; ++attempt) {
      client.reset();
      client.emplace(t.client_ns, t.client_argv({"--packets", "200", "--probe-ms", "20"}, 25), t.dir / "client.log");
      REQUIRE_MESSAGE(wait_until([&] { return find_event(*client, "summary").has_value(); }, 45s),
                      "no summary:\n" << client->log());
      if (find_event(*client, "connection", "connected")) break;
      MESSAGE("attempt " << attempt << " did not connect: " << client->log());
    }
    REQUIRE(find_event(*client, "connection", "connected"));
    auto summary = find_event(*client, "summary");
    const double sent = summary->at("sent").get<double>(), echoed = summary->at("echoed").get<double>();
    MESSAGE("with 20 % loss each way: " << echoed << " of " << sent << " packets echoed");
    // Each echo crosses the lossy link twice: about 64 % come back once connected (less of what was
    // held while connecting). A broken path brings back next to nothing.
    CHECK(echoed >= 0.3 * sent);
  }
  SUBCASE("the gateway killed with SIGKILL: the client reports failed within 20 s") {
    auto client = t.client({"--packets", "5", "--probe-ms", "200"}, 60);
    REQUIRE_MESSAGE(wait_until([&] { return find_event(client, "echoed").has_value(); }, 20s), client.log());
    ::kill(gateway.pid(), SIGKILL);
    const auto killed = std::chrono::steady_clock::now();
    REQUIRE_MESSAGE(wait_until([&] { return find_event(client, "connection", "failed").has_value(); }, 25s),
                    "not failed 25 s after the kill:\n" << client.log());
    const auto after = std::chrono::steady_clock::now() - killed;
    auto failed = find_event(client, "connection", "failed");
    MESSAGE("failed " << std::chrono::duration_cast<std::chrono::milliseconds>(after).count()
                      << " ms after SIGKILL: " << failed->at("reason"));
    CHECK(failed->at("by") == "liveness");
    CHECK(after < 20s);
  }
}
