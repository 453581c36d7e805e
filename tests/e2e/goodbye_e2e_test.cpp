// The goodbye end to end, with the daemons in network namespaces (tests/e2e/daemon_topology.hpp). Each
// trigger, with the far side's state checked through its status command well before an ICE timeout
// (15 s of unanswered data) could have fired:
//   * the gateway: the client's last grant revoked, or expired; its own SIGTERM; its TUN device
//     removed under it (a fatal error: goodbye, then exit 1);
//   * the client: a whole site removed; its SIGTERM; `firebreak client sign-out`;
//   * goodbyes switched off, and a goodbye lost on the way (an nftables drop): the connection lingers
//     until the timeout, which shows that the goodbye is what makes the difference;
//   * forgeries: a goodbye as plain UDP from the gateway's own address and port, a sealed goodbye of
//     an earlier session replayed, and a goodbye written into the client's TUN device by a local
//     program: each ignored and counted, the connection untouched.
// Needs root, coturn, curl and python3; skips with a message otherwise.
#include "tests/e2e/daemon_topology.hpp"

#include "messages/p2p_control.hpp"

using namespace firebreak::test::daemons;

namespace {

bool has_live_connection_to(const json& status, const std::string& peer) {
  return live_connection_to(status, peer).has_value();
}

std::chrono::milliseconds since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t);
}

int sent(const json& status, const std::string& reason) {
  return status.at("goodbyes").at("sent").value(reason, 0);
}
int received(const json& status) { return status.at("goodbyes").at("received").get<int>(); }

}  // namespace

TEST_CASE("goodbye from the gateway: a revoked or expired last grant, and its shutdown") {
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
  auto client_status = [&] { return t.status(t.laptop, "client", "client.sock"); };
  auto gw_b_status = [&] { return t.status(t.gw_b, "gateway", "gw-b.sock"); };

  // The lab is the client's only resource behind gw-b: revoking it leaves gw-b nothing for the client.
  REQUIRE(t.fetch("http://10.73.0.2:8080/hello.txt", "lab.txt").ok());
  REQUIRE(t.fetch("http://10.72.0.2:8080/hello.txt", "web.txt").ok());
  auto s = client_status();
  const auto ga = gateway_of(s, t.web), gb = gateway_of(s, t.lab_res);
  REQUIRE(has_live_connection_to(s, gb));
  const auto revoked = std::chrono::steady_clock::now();
  t.admin({"policies", "delete", t.lab_policy});
  const bool gone = wait_until(
      [&] { return !has_live_connection_to(client_status(), gb) && live_connections(gw_b_status()).empty(); }, 10s);
  MESSAGE("revoke -> both sides' state gone in " << since(revoked).count() << " ms");
  REQUIRE_MESSAGE(gone, "client:\n" << client.log() << "\ngw-b:\n" << gw_b.log());
  CHECK(since(revoked) < 3s);
  CHECK(gw_b.log().find("goodbye") != std::string::npos);
  // Either side may have said it first (gw-b: revoked; the client: site_removed); each counts it.
  CHECK(sent(gw_b_status(), "revoked") + received(gw_b_status()) == 1);
  CHECK(gw_b_status().at("grants").empty());
  // The other gateway's connection is untouched.
  CHECK(has_live_connection_to(client_status(), ga));

  // The lab again, for a few seconds: when the grant expires, gw-b says goodbye.
  t.admin({"policies", "create", "--group", t.group, "--resource", t.lab_res, "--expires-in", "6s"});
  REQUIRE(wait_until([&] { return run(t.laptop, "ip route show | grep -q '10.73.0.2 dev'").ok(); }, 10s));
  REQUIRE_MESSAGE(t.fetch("http://10.73.0.2:8080/hello.txt", "lab2.txt").ok(), client.log());
  std::int64_t expiry_ms = 0;
  wait_until(
      [&] {
        const auto status = client_status();
        for (const auto& r : status.at("resources"))
          if (r.at("id") == t.lab_res && r.at("expires_at_unix_ms").is_number()) expiry_ms = r.at("expires_at_unix_ms");
        return expiry_ms > 0;
      },
      5s);
  REQUIRE_MESSAGE(expiry_ms > 0, client_status().at("resources").dump());
  REQUIRE(has_live_connection_to(client_status(), gb));
  // The portal also tells the client that the expired policy's resource is gone: whichever side
  // acts first says goodbye, the other counts it received. At the gateway its own expiry timer and
  // the portal's reject_access race: the goodbye says "expired" or "revoked", whichever came first.
  auto said_or_heard = [&] {
    const auto now = gw_b_status();
    return sent(now, "expired") + sent(now, "revoked") + received(now);
  };
  const int before_expiry = said_or_heard();
  REQUIRE(wait_until([&] { return live_connections(gw_b_status()).empty(); }, 15s));
  const auto gone_at = unix_ms_now();
  REQUIRE(wait_until([&] { return !has_live_connection_to(client_status(), gb); }, 5s));
  MESSAGE("grant expiry -> gw-b's connection gone " << gone_at - expiry_ms << " ms after the expiry");
  CHECK(gone_at >= expiry_ms);
  CHECK(gone_at < expiry_ms + 2000);  // the expiry timer is at most 1 s late; then the goodbye
  CHECK(said_or_heard() == before_expiry + 1);

  // gw-a shuts down: its goodbye reaches the client at once.
  const int received_before = received(client_status());
  const auto stopped = std::chrono::steady_clock::now();
  ::kill(gw_a->pid(), SIGTERM);
  REQUIRE(wait_until([&] { return !has_live_connection_to(client_status(), ga); }, 15s));
  MESSAGE("gateway SIGTERM -> the client's connection gone in " << since(stopped).count() << " ms");
  CHECK(since(stopped) < 3s);
  // It exits by itself (a second SIGTERM would make it exit at once, with status 1).
  CHECK(wait_until([&] { return !gw_a->alive(); }, 5s));
  CHECK(gw_a->terminate() == 0);
  // Everything it started was done before the flush bound: nothing was left running at exit.
  CHECK_MESSAGE(gw_a->log().find("at the 1 s bound") == std::string::npos, gw_a->log());
  CHECK(client.log().find("the peer said goodbye") != std::string::npos);
  CHECK(received(client_status()) == received_before + 1);

  // The same without goodbyes: the client still holds the dead connection well after the shutdown.
  gw_a.reset();
  gw_a.emplace(t.gw_a, t.gateway_argv("gw-a", "10.71.2.1", "10.71.2.2", {"--no-goodbye"}), t.dir / "gw-a2.log");
  REQUIRE(wait_until([&] { return joined(*gw_a); }, 20s));
  REQUIRE_MESSAGE(t.fetch("http://10.72.0.2:8080/hello.txt", "web2.txt").ok(), client.log());
  const auto ga2 = gateway_of(client_status(), t.web);
  REQUIRE(has_live_connection_to(client_status(), ga2));
  CHECK(gw_a->terminate(5s) == 0);
  std::this_thread::sleep_for(4s);
  CHECK_MESSAGE(has_live_connection_to(client_status(), ga2),
                "without a goodbye the client should not have known yet:\n" << client.log());
  CHECK(client.terminate(5s) == 0);
}

TEST_CASE("goodbye from the client: a removed site, its shutdown, and sign-out") {
  if (auto why = why_skip(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  topology t;
  // The gateways say no goodbyes here, so every goodbye they count comes from the client. (A gateway
  // without goodbyes still closes, silently, when it loses the client's last grant.)
  auto gw_a = t.gateway(t.gw_a, "gw-a", "10.71.2.1", "10.71.2.2", {"--no-goodbye"});
  auto gw_b = t.gateway(t.gw_b, "gw-b", "10.71.3.1", "10.71.3.2", {"--no-goodbye"});
  REQUIRE_MESSAGE(wait_until([&] { return joined(gw_a) && joined(gw_b); }, 20s),
                  "the gateways did not join:\n" << gw_a.log() << "\n" << gw_b.log());
  auto gw_a_status = [&] { return t.status(t.gw_a, "gateway", "gw-a.sock"); };
  auto gw_b_status = [&] { return t.status(t.gw_b, "gateway", "gw-b.sock"); };
  int heard_site_removed = 0;
  {
    auto client = t.client(false);
    REQUIRE(wait_until([&] { return run(t.laptop, "ip route show | grep -q '10.73.0.2 dev'").ok(); }, 20s));
    REQUIRE(t.fetch("http://10.73.0.2:8080/hello.txt", "lab.txt").ok());
    REQUIRE(t.fetch("http://10.72.0.2:8080/hello.txt", "web.txt").ok());
    REQUIRE(live_connections(gw_b_status()).size() == 1);

    // The lab's policy deleted: the client loses every resource of site B and says goodbye to gw-b.
    const auto revoked = std::chrono::steady_clock::now();
    t.admin({"policies", "delete", t.lab_policy});
    REQUIRE_MESSAGE(wait_until([&] { return live_connections(gw_b_status()).empty(); }, 10s), gw_b.log());
    MESSAGE("site removed -> gw-b's connection gone in " << since(revoked).count() << " ms");
    CHECK(since(revoked) < 3s);
    // Both sides heard of the revoke: the client said goodbye, and gw-b either heard it first or had
    // closed silently already, having lost the grant itself.
    CHECK(sent(t.status(t.laptop, "client", "client.sock"), "site_removed") == 1);
    heard_site_removed = received(gw_b_status());
    CHECK_MESSAGE((heard_site_removed == 1 || gw_b.log().find("closing silently") != std::string::npos), gw_b.log());
    CHECK(live_connections(gw_a_status()).size() == 1);

    // The client's SIGTERM: goodbye to gw-a.
    const auto stopped = std::chrono::steady_clock::now();
    ::kill(client.pid(), SIGTERM);
    REQUIRE_MESSAGE(wait_until([&] { return live_connections(gw_a_status()).empty(); }, 10s), gw_a.log());
    MESSAGE("client SIGTERM -> gw-a's connection gone in " << since(stopped).count() << " ms");
    CHECK(since(stopped) < 3s);
    CHECK(received(gw_a_status()) == 1);
    CHECK(wait_until([&] { return !client.alive(); }, 5s));
    CHECK(client.terminate() == 0);
  }

  // Sign-out: the running client says goodbye to every gateway, leaves and stops with status 0.
  t.admin({"policies", "create", "--group", t.group, "--resource", t.lab_res});
  auto client = t.client(false);
  REQUIRE(wait_until([&] { return run(t.laptop, "ip route show | grep -q '10.73.0.2 dev'").ok(); }, 20s));
  REQUIRE_MESSAGE(t.fetch("http://10.73.0.2:8080/hello.txt", "lab2.txt").ok(), client.log());
  REQUIRE(t.fetch("http://10.72.0.2:8080/hello.txt", "web2.txt").ok());
  REQUIRE(live_connections(gw_a_status()).size() == 1);
  REQUIRE(live_connections(gw_b_status()).size() == 1);
  const auto signing_out = std::chrono::steady_clock::now();
  auto out = detail::capture({"ip", "netns", "exec", t.laptop.name(), firebreak_binary(), "client", "sign-out",
                              "--status-socket", (t.dir / "client.sock").string()},
                             15s);
  CHECK_MESSAGE(out.ok(), out.output);
  CHECK(out.output.find("signed out") != std::string::npos);
  REQUIRE(wait_until([&] { return live_connections(gw_a_status()).empty() && live_connections(gw_b_status()).empty(); },
                     10s));
  MESSAGE("sign-out -> both gateways' connections gone in " << since(signing_out).count() << " ms");
  CHECK(since(signing_out) < 3s);
  CHECK(received(gw_a_status()) == 2);
  CHECK(received(gw_b_status()) == heard_site_removed + 1);
  CHECK(client.log().find("signed_out") != std::string::npos);
  CHECK(wait_until([&] { return !client.alive(); }, 5s));
  CHECK(client.terminate() == 0);
  // A gateway cannot be signed out: its operator stops it.
  auto gw = detail::capture({"ip", "netns", "exec", t.gw_a.name(), firebreak_binary(), "client", "sign-out",
                             "--status-socket", (t.dir / "gw-a.sock").string()},
                            15s);
  CHECK_FALSE(gw.ok());
  CHECK(gw_a.alive());
}

TEST_CASE("goodbye on a fatal error: the gateway's TUN device removed under it") {
  if (auto why = why_skip(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  topology t;
  auto gw_b = t.gateway(t.gw_b, "gw-b", "10.71.3.1", "10.71.3.2");
  REQUIRE(wait_until([&] { return joined(gw_b); }, 20s));
  auto client = t.client(false);
  REQUIRE(wait_until([&] { return run(t.laptop, "ip route show | grep -q '10.73.0.2 dev'").ok(); }, 20s));
  REQUIRE(t.fetch("http://10.73.0.2:8080/hello.txt", "lab.txt").ok());
  auto client_status = [&] { return t.status(t.laptop, "client", "client.sock"); };
  const auto gb = gateway_of(client_status(), t.lab_res);
  REQUIRE(has_live_connection_to(client_status(), gb));

  const auto removed = std::chrono::steady_clock::now();
  REQUIRE(run(t.gw_b, "ip link del fb-gateway").ok());
  REQUIRE_MESSAGE(wait_until([&] { return !has_live_connection_to(client_status(), gb); }, 10s), gw_b.log());
  MESSAGE("TUN removed -> the client's connection gone in " << since(removed).count() << " ms");
  CHECK(since(removed) < 3s);
  CHECK(received(client_status()) == 1);
  CHECK(wait_until([&] { return !gw_b.alive(); }, 5s));
  CHECK(gw_b.terminate() == 1);  // a failure, for its supervisor to see
  CHECK(gw_b.log().find("the TUN device failed") != std::string::npos);
  CHECK(client.terminate(5s) == 0);
}

TEST_CASE("goodbyes off: a revoked flow closes silently, and the client recovers by its own timeout") {
  if (auto why = why_skip(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  topology t;
  auto gw_b = t.gateway(t.gw_b, "gw-b", "10.71.3.1", "10.71.3.2", {"--no-goodbye"});
  REQUIRE(wait_until([&] { return joined(gw_b); }, 20s));
  auto client = t.client(false);
  REQUIRE(wait_until([&] { return run(t.laptop, "ip route show | grep -q '10.73.0.2 dev'").ok(); }, 20s));
  REQUIRE(t.fetch("http://10.73.0.2:8080/hello.txt", "lab.txt").ok());
  auto client_status = [&] { return t.status(t.laptop, "client", "client.sock"); };
  auto gw_b_status = [&] { return t.status(t.gw_b, "gateway", "gw-b.sock"); };
  const auto gb = gateway_of(client_status(), t.lab_res);
  REQUIRE(has_live_connection_to(client_status(), gb));
  std::string flow;
  for (const auto& f : t.admin({"flows", "list"}))
    if (f.at("resource_id") == t.lab_res) flow = f.at("id").get<std::string>();
  REQUIRE(!flow.empty());

  // The flow is revoked (the policy stays, so asking again is granted).
  const auto revoked = std::chrono::steady_clock::now();
  t.admin({"flows", "revoke", flow});
  REQUIRE_MESSAGE(wait_until([&] { return live_connections(gw_b_status()).empty(); }, 10s), gw_b.log());
  CHECK(gw_b.log().find("closing silently") != std::string::npos);
  CHECK(gw_b_status().at("goodbyes").at("sent").empty());
  // The laptop keeps using the lab; with no answer its connection times out, it asks again and is
  // back through a new flow.
  fetch_loop browsing(t.laptop, "http://10.73.0.2:8080/hello.txt", 3s);
  REQUIRE_MESSAGE(wait_until([&] { return browsing.first_success_after(revoked).has_value(); }, 60s), client.log());
  MESSAGE("revoked without a goodbye -> the lab answers again after "
          << std::chrono::duration_cast<std::chrono::milliseconds>(*browsing.first_success_after(revoked) - revoked).count()
          << " ms");
  CHECK(received(client_status()) == 0);
  bool new_flow = false;
  for (const auto& f : t.admin({"flows", "list"}))
    new_flow = new_flow || (f.at("resource_id") == t.lab_res && f.at("id") != flow);
  CHECK(new_flow);
  CHECK(client.terminate(5s) == 0);
  CHECK(gw_b.terminate(5s) == 0);
}

TEST_CASE("a lost goodbye: the client falls back to the timeout") {
  if (auto why = why_skip(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  topology t;
  std::optional<process> gw_b;
  gw_b.emplace(t.gw_b, t.gateway_argv("gw-b", "10.71.3.1", "10.71.3.2"), t.dir / "gw-b.log");
  REQUIRE(wait_until([&] { return joined(*gw_b); }, 20s));
  auto client = t.client(false);
  REQUIRE(wait_until([&] { return run(t.laptop, "ip route show | grep -q '10.73.0.2 dev'").ok(); }, 20s));
  REQUIRE(t.fetch("http://10.73.0.2:8080/hello.txt", "lab.txt").ok());
  auto client_status = [&] { return t.status(t.laptop, "client", "client.sock"); };
  const auto gb = gateway_of(client_status(), t.lab_res);
  REQUIRE(has_live_connection_to(client_status(), gb));

  // The hub drops every UDP datagram gw-b sends (to the laptop directly, or to the relay).
  REQUIRE(run(t.hub,
              "nft add table inet lost && "
              "nft add chain inet lost pre '{ type filter hook prerouting priority -300; }' && "
              "nft add rule inet lost pre ip saddr 10.71.3.2 meta l4proto udp counter drop")
              .ok());
  const auto stopped = std::chrono::steady_clock::now();
  CHECK(gw_b->terminate(5s) == 0);
  CHECK(gw_b->log().find("goodbye") != std::string::npos);  // it was sent...
  std::this_thread::sleep_for(3s);
  CHECK_MESSAGE(has_live_connection_to(client_status(), gb), "...but must not have arrived:\n" << client.log());
  // Someone keeps using the lab: unanswered data ends the connection (the ICE timeout of 15 s).
  fetch_loop browsing(t.laptop, "http://10.73.0.2:8080/hello.txt", 3s);
  REQUIRE_MESSAGE(wait_until([&] { return !has_live_connection_to(client_status(), gb); }, 45s), client.log());
  MESSAGE("lost goodbye -> the client's connection gone after " << since(stopped).count() << " ms");
  CHECK(since(stopped) > 5s);
  CHECK(received(client_status()) == 0);
  CHECK(run(t.hub, "nft list table inet lost | grep -Eq 'packets [1-9]'").ok());
}

namespace {

// Helpers run with Debian's python3 inside a namespace: capture from a veth (AF_PACKET), send UDP with
// a chosen source address and port (a raw socket), write into a TUN device (AF_PACKET on it).
constexpr const char* capture_py = R"(import socket, sys
iface, src, out = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))
s.bind((iface, 0))
with open(out, "w") as f:
    while True:
        frame = s.recv(65535)
        if len(frame) < 42 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        if ip[9] != 17 or socket.inet_ntoa(ip[12:16]) != src:
            continue
        payload = ip[(ip[0] & 15) * 4 + 8:]
        # A WireGuard transport message carrying 48 bytes (a goodbye): 16 + 48 + 16.
        if len(payload) == 80 and payload[0] == 4:
            f.write(payload.hex() + "\n")
            f.flush()
)";

constexpr const char* send_udp_py = R"(import socket, struct, sys
src, sport, dst, dport = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for h in sys.argv[5:]:
    p = bytes.fromhex(h)
    udp = struct.pack("!HHHH", sport, dport, 8 + len(p), 0) + p
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    s.sendto(ip + udp, (dst, 0))
)";

constexpr const char* into_tun_py = R"(import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x86DD))
s.sendto(bytes.fromhex(sys.argv[2]), (sys.argv[1], 0x86DD))
)";

std::string hex_of(std::span<const std::uint8_t> bytes) {
  std::string out;
  for (auto b : bytes) {
    char h[3];
    std::snprintf(h, sizeof h, "%02x", b);
    out += h;
  }
  return out;
}

struct endpoints {
  std::string local_ip, remote_ip;
  int local_port = 0, remote_port = 0;
};

/// "host 10.71.1.2:40000 -> host 10.71.3.2:50000" as the status command shows a connection's route.
std::optional<endpoints> endpoints_of(const std::string& route) {
  static const std::regex re(R"(([\d.]+):(\d+) -> \w+ ([\d.]+):(\d+))");
  std::smatch m;
  if (!std::regex_search(route, m, re)) return std::nullopt;
  return endpoints{m[1], m[3], std::stoi(m[2]), std::stoi(m[4])};
}

}  // namespace

TEST_CASE("forged, replayed and local goodbyes are ignored and counted") {
  if (auto why = why_skip(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  topology t;
  for (auto [name, text] : {std::pair{"capture.py", capture_py}, {"send_udp.py", send_udp_py},
                            {"into_tun.py", into_tun_py}})
    t.write_file(name, text);
  auto py = [&](const char* script) { return std::string(python) + " " + (t.dir / script).string() + " "; };
  std::optional<process> gw_b;
  gw_b.emplace(t.gw_b, t.gateway_argv("gw-b", "10.71.3.1", "10.71.3.2"), t.dir / "gw-b.log");
  REQUIRE(wait_until([&] { return joined(*gw_b); }, 20s));
  auto client = t.client(false);
  REQUIRE(wait_until([&] { return run(t.laptop, "ip route show | grep -q '10.73.0.2 dev'").ok(); }, 20s));
  auto client_status = [&] { return t.status(t.laptop, "client", "client.sock"); };
  REQUIRE(t.fetch("http://10.73.0.2:8080/hello.txt", "lab.txt").ok());
  const auto gb = gateway_of(client_status(), t.lab_res);

  // A first session ends with gw-b's goodbye, captured on its way into the laptop.
  {
    process capture(t.laptop,
                    {python, (t.dir / "capture.py").string(), t.l1.interface_b(), "10.71.3.2",
                     (t.dir / "captured").string()},
                    t.dir / "capture.log");
    std::this_thread::sleep_for(500ms);
    CHECK(gw_b->terminate(5s) == 0);
    REQUIRE(wait_until([&] { return !has_live_connection_to(client_status(), gb); }, 5s));
    std::this_thread::sleep_for(200ms);
  }
  std::ifstream captured_file(t.dir / "captured");
  std::string line, captured;
  while (std::getline(captured_file, line)) captured += line + " ";
  REQUIRE_MESSAGE(!captured.empty(), "no sealed goodbye was captured");
  const int goodbyes_received = received(client_status());
  CHECK(goodbyes_received == 1);

  // gw-b back with the same key, and a second session.
  gw_b.emplace(t.gw_b, t.gateway_argv("gw-b", "10.71.3.1", "10.71.3.2"), t.dir / "gw-b2.log");
  REQUIRE(wait_until([&] { return joined(*gw_b); }, 20s));
  REQUIRE_MESSAGE(t.fetch("http://10.73.0.2:8080/hello.txt", "lab2.txt").ok(), client.log());
  auto conn = live_connection_to(client_status(), gb);
  REQUIRE(conn);
  REQUIRE_MESSAGE(conn->at("path") == "direct", conn->dump());
  const auto ends = endpoints_of(conn->at("route"));
  REQUIRE_MESSAGE(ends, conn->dump());
  const auto dropped_before = conn->at("dropped").get<int>();
  const auto udp_from_gateway = py("send_udp.py") + ends->remote_ip + " " + std::to_string(ends->remote_port) + " " +
                                ends->local_ip + " " + std::to_string(ends->local_port) + " ";

  // 1. A goodbye as plain UDP, from gw-b's own address and port: it is not WireGuard.
  const auto plain = hex_of(firebreak::messages::p2p::goodbye());
  REQUIRE(run(t.gw_b, udp_from_gateway + plain).ok());
  // 2. The first session's sealed goodbye, replayed the same way.
  REQUIRE(run(t.gw_b, udp_from_gateway + captured).ok());
  // 3. A goodbye written into the client's TUN device by a local program.
  const auto tun = client_status().at("interface").get<std::string>();
  REQUIRE(run(t.laptop, py("into_tun.py") + tun + " " + plain).ok());

  std::this_thread::sleep_for(1s);
  auto after = client_status();
  auto still = live_connection_to(after, gb);
  REQUIRE_MESSAGE(still, "a forged goodbye closed the connection:\n" << client.log());
  CHECK(still->at("route") == conn->at("route"));
  CHECK(received(after) == goodbyes_received);
  MESSAGE("the connection's drop counter: " << dropped_before << " -> " << still->at("dropped"));
  CHECK(still->at("dropped").get<int>() >= dropped_before + 2);
  CHECK(after.at("dropped").at("control_from_tun").get<int>() >= 1);
  CHECK(t.fetch("http://10.73.0.2:8080/hello.txt", "lab3.txt").ok());
  CHECK(client.terminate(5s) == 0);
}
