// The client and gateway daemons end to end, in network namespaces: `firebreak client` in a laptop
// namespace reaches web servers behind two gateways (`firebreak gateway`, each in its own namespace
// with its site's network behind it), through a portal and coturn in a hub namespace.
//
//   [laptop] 10.71.1.2 ── 10.71.1.1 [hub: portal, coturn] 10.71.2.1 ── 10.71.2.2 [gw-a] 10.72.0.1 ── [office] 10.72.0.2-4
//                                                         10.71.3.1 ── 10.71.3.2 [gw-b] 10.73.0.1 ── [lab]    10.73.0.2
//
// Resources: web 10.72.0.2 (TCP 8080 only), files 10.72.0.3 (everything), office-net 10.72.0.0/24 (UDP 9
// only) in site A; lab 10.73.0.2 in site B. What is checked, in one topology (building it takes seconds):
//   * a 100 MB download with curl, checksum compared, on the fast path (sealed on the gateway's TUN
//     reader, opened and coalesced into super-packets on the client's ICE thread); the same through
//     the relay only;
//   * web and files (site A) share one connection; lab (site B) uses the other gateway;
//   * a ping to web (not granted: ICMP) is answered with ICMP "administratively prohibited";
//   * a client that sends to an address outside its grants (connection_peer with the client's own
//     token and tunnel address) gets "administratively prohibited" from the gateway;
//   * a resource whose site has no gateway online: the flow fails, curl's connect fails at once (ICMP);
//   * a grant that expires: pings answered until then, "prohibited" from within 1 s of the expiry;
//   * a policy deleted (reject_access): "prohibited" at once;
//   * SIGTERM: both daemons exit 0 and remove what they set up (TUN, nftables table);
//   * a configuration error exits 2 and names the setting.
#include "tests/e2e/daemon_topology.hpp"

using namespace firebreak::test::daemons;

TEST_CASE("firebreak client and gateway: downloads, shared and separate connections, refusals, expiry, shutdown") {
  if (auto why = why_skip(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  topology t;

  {
    // A configuration error: exit 2, naming the setting.
    auto bad = detail::capture({firebreak_binary(), "client", "--portal-url", "http://10.71.1.1:8443",
                                "--token-file", (t.dir / "client.token").string()},
                               10s);
    CHECK(bad.exit_code == 2);
    CHECK(bad.output.find("--portal-url") != std::string::npos);
  }

  auto gw_a = t.gateway(t.gw_a, "gw-a", "10.71.2.1", "10.71.2.2");
  auto gw_b = t.gateway(t.gw_b, "gw-b", "10.71.3.1", "10.71.3.2");
  REQUIRE_MESSAGE(wait_until([&] { return joined(gw_a) && joined(gw_b); }, 20s),
                  "the gateways did not join:\n" << gw_a.log() << "\n" << gw_b.log());
  const auto expected = sha256_of(t.dir / "www" / "big.bin");

  {
    // Two data threads each way whatever the machine: the two connections (gw-a, gw-b) open on two
    // ICE loops, each writing on a TUN queue of its own.
    auto client = t.client(false, {"FIREBREAK_DATA_THREADS=2"});
    REQUIRE_MESSAGE(wait_until([&] { return run(t.laptop, "ip route show | grep -q '10.72.0.2 dev'").ok(); }, 20s),
                    "the client did not route its resources:\n" << client.log());

    // 100 MB through the tunnel; the first packet asks the portal for the flow.
    auto got = t.fetch("http://10.72.0.2:8080/big.bin", "big-direct.bin");
    REQUIRE_MESSAGE(got.ok(), "curl failed: " << got.output << "\nclient:\n" << client.log() << "\ngateway:\n"
                                              << gw_a.log());
    CHECK(sha256_of(t.dir / "big-direct.bin") == expected);

    // A second resource of the same site: the same gateway, the same connection.
    REQUIRE(t.fetch("http://10.72.0.3:8080/hello.txt", "hello-a.txt").ok());
    CHECK(read_file(t.dir / "hello-a.txt") == "files\n");
    // A resource of the other site: the other gateway.
    auto lab = t.fetch("http://10.73.0.2:8080/hello.txt", "hello-b.txt");
    REQUIRE_MESSAGE(lab.ok(), "curl to the lab failed: " << lab.output << "\n" << client.log());

    auto s = t.status(t.laptop, "client", "client.sock");
    const auto ga = gateway_of(s, t.web), gb = gateway_of(s, t.lab_res);
    CHECK(!ga.empty());
    CHECK(gateway_of(s, t.files) == ga);
    CHECK(!gb.empty());
    CHECK(gb != ga);
    auto live = live_connections(s);
    CHECK(live.size() == 2);
    // The socket named before the subcommand, as a person types it, is the one asked.
    {
      auto r = run(t.laptop, firebreak_binary() + " client --status-socket " + (t.dir / "client.sock").string() +
                                 " status --json", 10s);
      CHECK_MESSAGE(r.ok(), r.output);
      auto j = json::parse(r.output, nullptr, false);
      CHECK((j.is_object() && live_connections(j).size() == 2));
    }
    for (const auto& c : live) {
      CHECK(c.at("path") == "direct");
      CHECK(c.at("last_handshake_unix_ms").get<std::int64_t>() > 0);
    }
    // A site without a gateway online: the portal refuses the flow, the held SYN is answered at once.
    auto offline = t.fetch("http://10.74.0.2:8080/hello.txt", "never.txt");
    // curl's 7 is "could not connect": the held SYN was answered with ICMP unreachable. Without that
    // answer curl would still be retrying the SYN when --max-time ends it (28).
    CHECK_MESSAGE(offline.exit_code == 7, offline.output);
    CHECK(client.log().find("offline") != std::string::npos);

    auto sa = t.status(t.gw_a, "gateway", "gw-a.sock");
    CHECK(live_connections(sa).size() == 1);
    // The download took the fast path: sealed on the gateway's TUN reader, opened on the client's ICE
    // thread and written to its TUN as coalesced super-packets (fewer writes than packets), never
    // through a mailbox; and the tunnels' own counters include it.
    const auto& gfast = sa.at("fast_path");
    const auto& cfast = s.at("fast_path");
    CHECK(gfast.at("packets_sealed").get<std::uint64_t>() > 50'000);  // 100 MB in segments of < 1.4 kB
    CHECK(cfast.at("packets_opened").get<std::uint64_t>() > 50'000);
    CHECK(cfast.at("tun_frames_written").get<std::uint64_t>() < cfast.at("packets_opened").get<std::uint64_t>());
    CHECK(s.at("packets").at("from_gateways").get<std::uint64_t>() >= cfast.at("packets_opened").get<std::uint64_t>());
    CHECK(sa.at("packets").at("to_clients").get<std::uint64_t>() >= gfast.at("packets_sealed").get<std::uint64_t>());
    // Opening ran on both of the client's threads, one connection each, and the shares add up.
    REQUIRE(cfast.at("tun_queues").get<unsigned>() == 2);
    const auto& by_queue = cfast.at("opened_by_queue");
    REQUIRE(by_queue.size() == 2);
    CHECK(by_queue[0].get<std::uint64_t>() > 0);
    CHECK(by_queue[1].get<std::uint64_t>() > 0);
    CHECK(by_queue[0].get<std::uint64_t>() + by_queue[1].get<std::uint64_t>() ==
          cfast.at("packets_opened").get<std::uint64_t>());
    REQUIRE(sa.at("grants").size() == 1);
    CHECK(sa.at("grants")[0].at("resources").size() == 2);  // web and files

    // ICMP to web, whose grant covers TCP 8080 only: refused by gw-a, and said so.
    auto ping = run(t.laptop, "ping -c 2 -W 2 10.72.0.2", 10s);
    CHECK_MESSAGE(ping.output.find("Packet filtered") != std::string::npos, ping.output);
    CHECK(t.status(t.gw_a, "gateway", "gw-a.sock").at("dropped").at("not_granted").get<int>() >= 1);

    // A grant that expires: "temp" (10.72.0.4, everything) for a few seconds. office-net (10.72.0.0/24,
    // UDP 9 only) still routes the address afterwards, so pings keep reaching gw-a, which must refuse
    // them from the expiry on.
    const auto temp = t.resource(t.site_a, "temp", "10.72.0.4", {}, {"--expires-in", "8s"});
    const std::int64_t expiry_ms = t.last_policy.at("expires_at").get<std::int64_t>() * 1000;
    REQUIRE(wait_until([&] { return run(t.laptop, "ip route show | grep -q '10.72.0.4 dev'").ok(); }, 10s));
    const auto wait_s = std::max<std::int64_t>(1, (expiry_ms - unix_ms_now()) / 1000 + 4);
    auto pings = run(t.laptop, "ping -D -i 0.1 -W 1 -w " + std::to_string(wait_s) + " 10.72.0.4", 30s);
    std::regex reply(R"(\[(\d+)\.(\d+)\] \d+ bytes from 10\.72\.0\.4)");
    std::regex filtered(R"(\[(\d+)\.(\d+)\] From 10\.72\.0\.4 icmp_seq=\d+ Packet filtered)");
    std::int64_t last_reply = 0, first_filtered = 0;
    std::istringstream lines(pings.output);
    std::string line;
    auto ms_of = [](const std::smatch& m) { return std::stoll(m[1]) * 1000 + std::stoll(m[2].str().substr(0, 3)); };
    while (std::getline(lines, line)) {
      std::smatch m;
      if (std::regex_search(line, m, reply)) last_reply = ms_of(m);
      if (std::regex_search(line, m, filtered) && first_filtered == 0) first_filtered = ms_of(m);
    }
    MESSAGE("grant expiry at " << expiry_ms << ": last echo reply " << (last_reply - expiry_ms)
                               << " ms from it, first 'prohibited' " << (first_filtered - expiry_ms) << " ms");
    CHECK_MESSAGE(last_reply > 0, "no echo reply before the expiry:\n" << pings.output);
    CHECK_MESSAGE(first_filtered > 0, "no 'Packet filtered' after the expiry:\n" << pings.output << gw_a.log());
    CHECK(last_reply < expiry_ms + 100);  // the ping's own timestamp is taken when the reply arrives
    CHECK(first_filtered >= expiry_ms);
    CHECK(first_filtered <= expiry_ms + 1000);
    (void)temp;

    // reject_access: the policy for files deleted. gw-a refuses at once; office-net (UDP 9 only) still
    // routes the address on the laptop, so the pings reach gw-a and come back "prohibited".
    REQUIRE(run(t.laptop, "ping -c 1 -W 2 10.72.0.3", 10s).ok());
    auto route_to = [&](const std::string& gateway) -> std::string {
      const auto c = live_connection_to(t.status(t.laptop, "client", "client.sock"), gateway);
      return c ? c->at("route").get<std::string>() : std::string();
    };
    const auto gw_a_id = gateway_of(t.status(t.laptop, "client", "client.sock"), t.web);
    const auto before_revoke = route_to(gw_a_id);
    REQUIRE(!before_revoke.empty());
    t.admin({"policies", "delete", t.files_policy});
    auto after = run(t.laptop, "sleep 0.5; ping -c 3 -i 0.2 -W 1 10.72.0.3", 10s);
    CHECK_MESSAGE(after.output.find("Packet filtered") != std::string::npos, after.output);
    CHECK(after.output.find("bytes from 10.72.0.3") == std::string::npos);
    // A partial revoke keeps the connection: web still answers through the same ICE pair, and
    // neither side said goodbye.
    CHECK(t.fetch("http://10.72.0.2:8080/hello.txt", "after-revoke.txt").ok());
    CHECK(route_to(gw_a_id) == before_revoke);
    CHECK(t.status(t.gw_a, "gateway", "gw-a.sock").at("goodbyes").at("received").get<int>() == 0);
    CHECK(t.status(t.laptop, "client", "client.sock").at("goodbyes").at("received").get<int>() == 0);

    // SIGTERM: exit 0, the TUN device gone.
    CHECK(client.terminate(5s) == 0);
    CHECK(run(t.laptop, "ip link show fb-client").exit_code != 0);
  }

  if (!std::string(CONNECTION_PEER_BINARY).empty()) {
    // A client that sends where it has no grant: the same token and tunnel address as the laptop's
    // daemon, a flow for web, then UDP to 10.72.0.9, which no grant covers.
    const auto before = t.status(t.gw_a, "gateway", "gw-a.sock").at("dropped").at("not_granted").get<int>();
    process rogue(t.laptop,
                  {CONNECTION_PEER_BINARY, "--portal", "10.71.1.1:8443", "--ca", t.ca(), "--token-file",
                   (t.dir / "client.token").string(), "--key-file", (t.dir / "client.key").string(), "--role",
                   "client", "--resource", t.web, "--dst", "10.72.0.9", "--packets", "3", "--until-echoed",
                   "--duration", "20", "--local-address", "10.71.1.2"},
                  t.dir / "rogue.log");
    REQUIRE_MESSAGE(wait_until([&] { return rogue.log().find("\"prohibited\"") != std::string::npos; }, 20s),
                    "no ICMP prohibited came back:\n" << rogue.log() << "\ngateway:\n" << gw_a.log());
    CHECK(rogue.log().find("\"from\":\"10.72.0.9\"") != std::string::npos);
    CHECK(t.status(t.gw_a, "gateway", "gw-a.sock").at("dropped").at("not_granted").get<int>() > before);
  }

  {
    // The relay-only variant of the download.
    auto client = t.client(true);
    REQUIRE(wait_until([&] { return run(t.laptop, "ip route show | grep -q '10.72.0.2 dev'").ok(); }, 20s));
    auto got = t.fetch("http://10.72.0.2:8080/big.bin", "big-relayed.bin");
    REQUIRE_MESSAGE(got.ok(), "curl failed: " << got.output << "\nclient:\n" << client.log());
    CHECK(sha256_of(t.dir / "big-relayed.bin") == expected);
    auto s = t.status(t.laptop, "client", "client.sock");
    auto live = live_connections(s);
    REQUIRE(live.size() == 1);
    CHECK(live[0].at("path") == "relayed");
    CHECK(client.terminate(5s) == 0);
  }

  // The gateway's SIGTERM: exit 0, its nftables table and TUN gone.
  REQUIRE(run(t.gw_a, "nft list tables | grep -q firebreak_fb_gateway").ok());
  CHECK(gw_a.terminate(5s) == 0);
  CHECK_MESSAGE(run(t.gw_a, "nft list tables | grep -q firebreak").exit_code != 0, "the nftables table was left");
  CHECK(run(t.gw_a, "ip link show fb-gateway").exit_code != 0);
}
