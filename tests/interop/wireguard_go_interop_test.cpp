// Our tunnel against wireguard-go, the reference userspace implementation, over a veth between two
// network namespaces. Needs root; skips (with a message) where namespaces cannot be made.
//
//   10.99.0.1/24  [left ns] ====== veth ====== [right ns]  10.99.0.2/24      (UDP, port 51820)
//   10.100.0.1/24 tunnel ------------------------- tunnel  10.100.0.2/24
//
// The initiator sits on the left with Endpoint and PersistentKeepalive; the responder on the right
// has no Endpoint and learns it from the handshake.
//
// The firebreak cases take the binary from the FIREBREAK_BINARY environment variable, else from
// the FIREBREAK_BINARY compile definition (set once apps/ builds the firebreak target); with
// neither they are skipped.
#include <doctest/doctest.h>

#include <filesystem>
#include <regex>
#include <string>

#include "tests/interop/netns.hpp"
#include "tests/interop/peers.hpp"
#include "tests/support/local_machine.hpp"

namespace {

using namespace firebreak::test::netns;
using namespace firebreak::test::peers;
using firebreak::test::firebreak_binary;

const bool no_firebreak_binary = firebreak_binary().empty();

/// Why this machine cannot run the test; empty when it can.
std::string skip_reason() {
  if (auto reason = require_root_and_netns(); !reason.empty()) return reason;
  remove_stale_leftovers();
  return {};
}

/// The two namespaces, the veth between them, keys for both sides and a scratch folder.
/// Declared before the peers, so it is torn down after them.
struct topology {
  temp_directory dir;
  network_namespace left;
  network_namespace right;
  veth_link wire{left, "10.99.0.1/24", right, "10.99.0.2/24"};
  keypair left_keys = generate_keypair();
  keypair right_keys = generate_keypair();
  std::string psk = generate_preshared_key();

  static constexpr std::uint16_t port = 51820;

  /// The left side initiates: it knows the right side's endpoint and keeps the session alive.
  [[nodiscard]] tunnel_settings left_settings() const {
    tunnel_settings s;
    s.private_key = left_keys.private_key;
    s.listen_port = port;
    s.address = "10.100.0.1/24";
    s.peer_public_key = right_keys.public_key;
    s.preshared_key = psk;
    s.endpoint = wire.address_b() + ":" + std::to_string(port);
    s.allowed_ips = "10.100.0.2/32";
    s.persistent_keepalive = 25;
    return s;
  }

  /// The right side responds: no Endpoint, no keepalive.
  [[nodiscard]] tunnel_settings right_settings() const {
    tunnel_settings s;
    s.private_key = right_keys.private_key;
    s.listen_port = port;
    s.address = "10.100.0.2/24";
    s.peer_public_key = left_keys.public_key;
    s.preshared_key = psk;
    s.allowed_ips = "10.100.0.1/32";
    return s;
  }
};

/// Pings once a second until a reply comes back: the first handshake is done.
bool tunnel_comes_up(const network_namespace& from, const std::string& to) {
  return wait_until([&] { return run(from, "ping -c 1 -W 1 " + to, 5s).ok(); }, 20s, 100ms);
}

struct ping_stats {
  int transmitted = -1;
  int received = -1;
  std::string output;
};

/// `ping -c COUNT -i 0.002 -q`; a lost reply is waited for at most 2 s.
ping_stats ping(const network_namespace& from, const std::string& to, int count) {
  ping_stats stats;
  auto r = run(from, "ping -c " + std::to_string(count) + " -i 0.002 -W 2 -q " + to, 120s);
  stats.output = r.output;
  static const std::regex summary(R"((\d+) packets transmitted, (\d+) received)");
  std::smatch m;
  if (std::regex_search(r.output, m, summary)) {
    stats.transmitted = std::stoi(m[1].str());
    stats.received = std::stoi(m[2].str());
  }
  return stats;
}

std::string sha256_of(const std::filesystem::path& file) {
  auto r = run_host("sha256sum -- '" + file.string() + "'", 120s);
  return r.ok() ? r.output.substr(0, r.output.find(' ')) : "sha256sum failed: " + r.output;
}

/// Serves `file` with socat in `sender` on `sender_address`, receives it with socat in `receiver`,
/// and checks that what arrived has the same SHA-256 as what was sent.
void check_transfer(const topology& t, const network_namespace& sender, const std::string& sender_address,
                    const network_namespace& receiver, const std::filesystem::path& file,
                    const std::string& expected_sha256) {
  const std::string port = "7001";
  const auto received = t.dir / "received.bin";
  process server(sender,
                 {"socat", "-u", "FILE:" + file.string(),
                  "TCP-LISTEN:" + port + ",bind=" + sender_address + ",reuseaddr"},
                 t.dir / ("socat-server-" + sender.name() + ".log"));
  const bool listening = wait_until(
      [&] { return !server.alive() || !run(sender, "ss -Hltn 'sport = :" + port + "'", 5s).output.empty(); },
      10s);
  INFO("socat server log: " << server.log());
  REQUIRE(listening);
  REQUIRE(server.alive());

  auto client = run(receiver,
                    "socat -u TCP:" + sender_address + ":" + port +
                        ",connect-timeout=10 OPEN:" + received.string() + ",creat,trunc",
                    180s);
  INFO("socat client output: " << client.output);
  CHECK_FALSE(client.timed_out);
  CHECK(client.exit_code == 0);
  CHECK(wait_until([&] { return !server.alive(); }, 10s));
  CHECK(server.terminate() == 0);
  CHECK(sha256_of(received) == expected_sha256);
  std::filesystem::remove(received);
}

/// A file of random bytes and its SHA-256.
struct payload {
  std::filesystem::path path;
  std::string sha256;
};

payload make_payload(const topology& t, const std::string& size) {
  payload p{t.dir / ("payload-" + size + ".bin"), {}};
  auto r = run_host("head -c " + size + " /dev/urandom > '" + p.path.string() + "'", 60s);
  REQUIRE_MESSAGE(r.ok(), r.output);
  p.sha256 = sha256_of(p.path);
  return p;
}

/// The assertions every pairing must pass: pings without loss, then the payload both ways.
void check_tunnel(const topology& t, int ping_count, const std::string& payload_size) {
  REQUIRE(tunnel_comes_up(t.left, "10.100.0.2"));

  auto stats = ping(t.left, "10.100.0.2", ping_count);
  INFO("ping output: " << stats.output);
  CHECK(stats.transmitted == ping_count);
  CHECK(stats.received == ping_count);
  CHECK(stats.output.find(" 0% packet loss") != std::string::npos);

  const auto data = make_payload(t, payload_size);
  check_transfer(t, t.left, "10.100.0.1", t.right, data.path, data.sha256);   // left -> right
  check_transfer(t, t.right, "10.100.0.2", t.left, data.path, data.sha256);   // right -> left
}

std::string missing_interop_tools() {
  return missing_tools({"wireguard-go", "wg", "ping", "socat", "ss", "sha256sum", "head"});
}

/// False (with the reason as a message) where network namespaces cannot be used; tools must exist.
bool ready_to_run() {
  if (auto reason = skip_reason(); !reason.empty()) {
    MESSAGE("skipped: " << reason);
    return false;
  }
  REQUIRE_MESSAGE(missing_interop_tools().empty(), missing_interop_tools());
  return true;
}

std::filesystem::path existing_firebreak_binary() {
  auto binary = firebreak_binary();
  REQUIRE_MESSAGE(std::filesystem::exists(binary), "firebreak binary not found at " << binary);
  return binary;
}

/// Both daemons survived the traffic and exit 0 on SIGTERM.
template <typename Initiator, typename Responder>
void check_clean_shutdown(Initiator& initiator, Responder& responder) {
  CHECK(initiator.alive());
  CHECK(responder.alive());
  CHECK(initiator.daemon().terminate() == 0);
  CHECK(responder.daemon().terminate() == 0);
}

}  // namespace

TEST_CASE("wireguard-go to wireguard-go") {
  if (!ready_to_run()) return;

  topology t;
  // The responder first: a handshake initiation that finds it not yet up waits 5 s for a retry.
  wireguard_go_peer responder(t.right, unique_interface_name("wgr"), t.right_settings(), t.dir);
  wireguard_go_peer initiator(t.left, unique_interface_name("wgi"), t.left_settings(), t.dir);
  INFO("initiator (wireguard-go) log: " << initiator.log());
  INFO("responder (wireguard-go) log: " << responder.log());

  check_tunnel(t, 100, "10M");
  CHECK(responder.latest_handshake() > 0);
  CHECK(responder.peer_endpoint() == t.wire.address_a() + ":51820");
  check_clean_shutdown(initiator, responder);
}

TEST_CASE("our engine initiates to wireguard-go" * doctest::skip(no_firebreak_binary)) {
  if (!ready_to_run()) return;
  const auto binary = existing_firebreak_binary();

  topology t;
  wireguard_go_peer responder(t.right, unique_interface_name("wgr"), t.right_settings(), t.dir);
  firebreak_peer initiator(t.left, binary, unique_interface_name("fbi"), t.left_settings(), t.dir);
  INFO("initiator (firebreak) log: " << initiator.log());
  INFO("responder (wireguard-go) log: " << responder.log());

  check_tunnel(t, 1000, "100M");
  CHECK(responder.latest_handshake() > 0);
  // wireguard-go learned our endpoint from the handshake: we sent from our ListenPort.
  CHECK(responder.peer_endpoint() == t.wire.address_a() + ":51820");
  check_clean_shutdown(initiator, responder);
}

TEST_CASE("wireguard-go initiates to our engine" * doctest::skip(no_firebreak_binary)) {
  if (!ready_to_run()) return;
  const auto binary = existing_firebreak_binary();

  topology t;
  firebreak_peer responder(t.right, binary, unique_interface_name("fbr"), t.right_settings(), t.dir);
  wireguard_go_peer initiator(t.left, unique_interface_name("wgi"), t.left_settings(), t.dir);
  INFO("initiator (wireguard-go) log: " << initiator.log());
  INFO("responder (firebreak) log: " << responder.log());

  check_tunnel(t, 1000, "100M");
  // wireguard-go completed a handshake with us (it, not we, initiated).
  CHECK(initiator.latest_handshake() > 0);
  check_clean_shutdown(initiator, responder);
}

// ---- a handshake flood (the `chaos` label runs these; the interop label leaves them out) ----------
//
//   10.98.0.1/24  [attacker ns] ====== veth ====== [right ns]  10.98.0.2/24
//
// The attacker sends 2,000 initiations a second with a valid mac1 to our responder on the right; the
// legitimate initiator on the left must still connect, through the cookie the responder hands it.

namespace {

/// The flood script, running in its own namespace against the responder's port.
struct flood {
  network_namespace attacker;
  veth_link wire;
  process flooder;

  flood(const topology& t, const network_namespace& target)
      : wire{attacker, "10.98.0.1/24", target, "10.98.0.2/24"},
        flooder(attacker,
                {"python3", FIREBREAK_HANDSHAKE_FLOOD, "--to", "10.98.0.2:" + std::to_string(topology::port),
                 "--public-key", t.right_keys.public_key, "--rate", "2000"},
                t.dir / "flood.log") {}

  /// The latest "sent N cookie_replies M" line the flood printed, as {N, M}; {-1, -1} before the first.
  [[nodiscard]] std::pair<long, long> counts() const {
    static const std::regex line(R"(sent (\d+) cookie_replies (\d+))");
    const auto log = flooder.log();
    std::pair<long, long> latest{-1, -1};
    for (std::sregex_iterator it(log.begin(), log.end(), line), end; it != end; ++it)
      latest = {std::stol((*it)[1].str()), std::stol((*it)[2].str())};
    return latest;
  }
};

/// Asks our daemon for its status (SIGUSR1) and returns its count of drops for `reason`, 0 when it
/// reports none. The report ends with its "dropped: ..." line.
long dropped(firebreak_peer& peer, const std::string& reason) {
  const auto before = peer.log().size();
  ::kill(peer.daemon().pid(), SIGUSR1);
  static const std::regex drops_line(R"(  dropped: ([^\n]*)\n)");
  std::smatch m;
  std::string report;
  const bool reported = wait_until(
      [&] {
        report = peer.log().substr(before);
        return std::regex_search(report, m, drops_line);
      },
      10s);
  REQUIRE_MESSAGE(reported, "no status report after SIGUSR1; log: " << peer.log());
  const std::string drops = m[1].str();
  const std::regex count("\\b" + reason + R"( (\d+))");
  std::smatch c;
  return std::regex_search(drops, c, count) ? std::stol(c[1].str()) : 0;
}

/// The assertions both flood cases share, once the responder runs under the flood and the
/// initiator has been started.
void check_connects_through_flood(topology& t, firebreak_peer& responder, flood& f) {
  // The tunnel comes up in spite of the flood; the initiator's first attempt gets a cookie and its
  // retry (REKEY_TIMEOUT, 5 s later) carries mac2, so allow several retries.
  REQUIRE(wait_until([&] { return run(t.left, "ping -c 1 -W 1 10.100.0.2", 5s).ok(); }, 60s, 100ms));
  auto stats = ping(t.left, "10.100.0.2", 100);
  INFO("ping output: " << stats.output);
  CHECK(stats.received == 100);

  // The flood stops first: every cookie reply it counted was then sent before the responder counts.
  REQUIRE(f.flooder.terminate() == 0);
  const auto [sent, replies] = f.counts();
  const long cookies = dropped(responder, "cookie_required");
  const long failed = dropped(responder, "handshake_failed");
  MESSAGE("flood sent " << sent << ", cookie replies " << replies << "; responder dropped: cookie_required "
                        << cookies << ", handshake_failed " << failed);
  // Most of the flood was answered with a cookie reply, which costs no Diffie-Hellman; only what
  // came before the load was noticed reached the handshake and failed there.
  CHECK(replies > sent / 2);
  CHECK(cookies >= replies);
  CHECK(failed < cookies / 4);
}

}  // namespace

TEST_CASE("handshake flood: wireguard-go still connects to our engine" * doctest::skip(no_firebreak_binary)) {
  if (!ready_to_run()) return;
  REQUIRE_MESSAGE(missing_tools({"python3"}).empty(), missing_tools({"python3"}));
  const auto binary = existing_firebreak_binary();

  topology t;
  firebreak_peer responder(t.right, binary, unique_interface_name("fbr"), t.right_settings(), t.dir);
  flood f(t, t.right);
  INFO("responder (firebreak) log: " << responder.log());
  INFO("flood log: " << f.flooder.log());
  // Cookie mode is on once cookie replies come back to the attacker.
  REQUIRE(wait_until([&] { return f.counts().second > 0; }, 30s));

  wireguard_go_peer initiator(t.left, unique_interface_name("wgi"), t.left_settings(), t.dir);
  INFO("initiator (wireguard-go) log: " << initiator.log());
  check_connects_through_flood(t, responder, f);
  CHECK(initiator.latest_handshake() > 0);
  check_clean_shutdown(initiator, responder);
}

TEST_CASE("handshake flood: our engine still connects to our engine" * doctest::skip(no_firebreak_binary)) {
  if (!ready_to_run()) return;
  REQUIRE_MESSAGE(missing_tools({"python3"}).empty(), missing_tools({"python3"}));
  const auto binary = existing_firebreak_binary();

  topology t;
  firebreak_peer responder(t.right, binary, unique_interface_name("fbr"), t.right_settings(), t.dir);
  flood f(t, t.right);
  INFO("responder (firebreak) log: " << responder.log());
  INFO("flood log: " << f.flooder.log());
  REQUIRE(wait_until([&] { return f.counts().second > 0; }, 30s));

  firebreak_peer initiator(t.left, binary, unique_interface_name("fbi"), t.left_settings(), t.dir);
  INFO("initiator (firebreak) log: " << initiator.log());
  check_connects_through_flood(t, responder, f);
  check_clean_shutdown(initiator, responder);
}
