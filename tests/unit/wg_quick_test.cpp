// wg-quick style configuration files: the valid shape, every way to get one wrong (each error must
// name the right line and key and never repeat key material), CIDR prefixes, and reading from disk.
// The keys are `wg genkey` output with `wg pubkey` answers, made for these tests only.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "config/cidr.hpp"
#include "config/wg_quick.hpp"
#include "transport/wireguard/crypto.hpp"

using namespace firebreak::config;
namespace wg = firebreak::wireguard;

namespace {

constexpr const char* private_1 = "iI6N53yqpvjZOjhXi1/6EILjwMwPJ3ek9BIuVPnIhlA=";
constexpr const char* public_1 = "ZJgS0Rqd8n4mfwMWhdSwFb+YmhAjTxGWQJ8UmDqGIFo=";
constexpr const char* private_2 = "yK88aF5SX41YRZFAYz5/fedRsjmlWWszRhPy/FCUkGA=";
constexpr const char* public_2 = "0P/YpmNRiQV0gp0+0yPhtJAoTNqP2kTuFOMVklW/L20=";
constexpr const char* public_3 = "KKxlXuUhZxisxL0NvdorwZkeYQ/gCyVr8cuFW/PNAHU=";
constexpr const char* psk = "Ouvrhn6HDpIPmXev8v0bwitjhJ1W+Qtwmyy7IV7oqoQ=";

wg::public_key pub(const char* b64) {
  auto k = wg::key_from_base64(b64);
  REQUIRE(k);
  wg::public_key out{};
  std::copy(k->bytes.begin(), k->bytes.end(), out.begin());
  return out;
}

std::string interface_block() {
  return std::string("[Interface]\nPrivateKey = ") + private_1 + "\nAddress = 10.0.0.1/24\n";
}

/// Parses text that must be refused, and returns the error.
config_error refused(const std::string& text) {
  auto r = parse_wg_quick(text, "wg0.conf");
  REQUIRE_FALSE(r.config);
  REQUIRE(r.error);
  CHECK(r.error->file == "wg0.conf");
  CHECK_FALSE(static_cast<bool>(r));
  return *r.error;
}

std::array<std::uint8_t, 16> ip(const char* text) {
  auto c = cidr::parse(text);
  REQUIRE(c);
  return c->addr;
}

}  // namespace

// ---- a good file ---------------------------------------------------------------------------------

TEST_CASE("a full wg-quick file with two peers") {
  const std::string text = std::string() +
                           "# wg0, written for wg-quick\n"                       // 1
                           "[Interface]\n"                                       // 2
                           "PrivateKey = " + private_1 + "\n"                    // 3
                           "ListenPort = 51820\n"                                // 4
                           "Address = 10.0.0.1/24, fd00::1/64\n"                 // 5
                           "address = 10.0.1.1\n"                                // 6 (case, repeat, bare)
                           "MTU = 1380\n"                                        // 7
                           "DNS = 1.1.1.1\n"                                     // 8
                           "PostUp = iptables -A FORWARD -i %i -j ACCEPT\n"      // 9
                           "\n"                                                  // 10
                           "[Peer]  # laptop\n"                                  // 11
                           "PublicKey = " + public_2 + "\n"                      // 12
                           "PresharedKey = " + psk + "\n"                        // 13
                           "Endpoint = 192.0.2.7:51820\n"                        // 14
                           "AllowedIPs = 10.0.0.2/32, fd00::2/128\r\n"           // 15 (CRLF)
                           "PersistentKeepalive = 25\n"                          // 16
                           "\n"                                                  // 17
                           "[peer]\n"                                            // 18
                           "  publickey=" + public_3 + "\n"                      // 19
                           "Endpoint = [2001:db8::9]:443\n"                      // 20
                           "AllowedIPs = 0.0.0.0/0, ::/0\n"                      // 21
                           "AllowedIPs = 10.9.8.7/8 ; host bits, masked\n"       // 22
                           "PersistentKeepalive = off\n";                        // 23
  auto r = parse_wg_quick(text, "wg0.conf");
  REQUIRE_MESSAGE(r.config, (r.error ? r.error->to_string() : ""));
  CHECK_FALSE(r.error);
  const auto& c = *r.config;

  CHECK(wg::x25519_public(c.private_key) == pub(public_1));
  auto private_2_key = wg::key_from_base64(private_2);  // the fixture pairs really are pairs
  REQUIRE(private_2_key);
  CHECK(wg::x25519_public(*private_2_key) == pub(public_2));
  CHECK(c.listen_port == 51820);
  REQUIRE(c.addresses.size() == 3);
  CHECK(c.addresses[0].to_string() == "10.0.0.1/24");  // host bits kept on an Address
  CHECK(c.addresses[1].to_string() == "fd00::1/64");
  CHECK(c.addresses[2].to_string() == "10.0.1.1/32");
  CHECK(c.mtu == 1380);

  REQUIRE(c.peers.size() == 2);
  const auto& laptop = c.peers[0];
  CHECK(laptop.public_key == pub(public_2));
  REQUIRE(laptop.preshared_key);
  CHECK(wg::to_base64(laptop.preshared_key->bytes) == psk);
  REQUIRE(laptop.endpoint);
  CHECK(laptop.endpoint->to_string() == "192.0.2.7:51820");
  REQUIRE(laptop.allowed_ips.size() == 2);
  CHECK(laptop.allowed_ips[0].to_string() == "10.0.0.2/32");
  CHECK(laptop.allowed_ips[1].to_string() == "fd00::2/128");
  CHECK(laptop.persistent_keepalive == std::chrono::seconds{25});

  const auto& server = c.peers[1];
  CHECK(server.public_key == pub(public_3));
  CHECK_FALSE(server.preshared_key);
  REQUIRE(server.endpoint);
  CHECK(server.endpoint->v6);
  CHECK(server.endpoint->to_string() == "[2001:db8::9]:443");
  REQUIRE(server.allowed_ips.size() == 3);
  CHECK(server.allowed_ips[0].to_string() == "0.0.0.0/0");
  CHECK(server.allowed_ips[1].to_string() == "::/0");
  CHECK(server.allowed_ips[2].to_string() == "10.0.0.0/8");
  CHECK(server.persistent_keepalive == std::chrono::seconds{0});

  // wg-quick's own keys are accepted and reported.
  REQUIRE(r.warnings.size() == 2);
  CHECK(r.warnings[0].line == 8);
  CHECK(r.warnings[0].key == "DNS");
  CHECK(r.warnings[1].line == 9);
  CHECK(r.warnings[1].key == "PostUp");
  CHECK(r.warnings[0].to_string() == "wg0.conf:8: DNS: a wg-quick setting that Firebreak does not apply; ignored");
}

TEST_CASE("defaults, a file without peers, and a byte order mark") {
  auto r = parse_wg_quick("\xEF\xBB\xBF" + interface_block(), "x");
  REQUIRE(r.config);
  CHECK(r.config->listen_port == 0);
  CHECK(r.config->mtu == 1420);
  CHECK(r.config->peers.empty());
  CHECK(r.warnings.empty());
}

TEST_CASE("an MTU's lower bound depends on whether there is an IPv6 address") {
  CHECK(parse_wg_quick(interface_block() + "MTU = 576\n", "x").config);
  auto e = refused(interface_block() + "MTU = 575\n");
  CHECK(e.line == 4);
  CHECK(e.key == "MTU");

  // The IPv6 address may come after the MTU; the error still names the MTU's line.
  e = refused(std::string("[Interface]\nPrivateKey = ") + private_1 + "\nMTU = 1279\nAddress = fd00::1/64\n");
  CHECK(e.line == 3);
  CHECK(e.key == "MTU");
  CHECK(e.message.find("1280") != std::string::npos);
  CHECK(parse_wg_quick(std::string("[Interface]\nPrivateKey = ") + private_1 + "\nMTU = 1280\nAddress = fd00::1/64\n", "x")
            .config);
  CHECK(refused(interface_block() + "MTU = 65536\n").line == 4);
  CHECK(refused(interface_block() + "MTU = big\n").key == "MTU");
}

TEST_CASE("lines longer than inih's 200-byte buffer are read whole") {
  std::string list = "10.0.0.2/32";
  for (int i = 1; i <= 40; ++i) list += ", 10." + std::to_string(i) + ".0.0/16";
  REQUIRE(list.size() > 400);
  const std::string text = interface_block() + "[Peer]\nPublicKey = " + public_2 + "\nAllowedIPs = " + list +
                           "\nPersistentKeepalive = 7\n";
  auto r = parse_wg_quick(text, "x");
  REQUIRE(r.config);
  REQUIRE(r.config->peers.size() == 1);
  CHECK(r.config->peers[0].allowed_ips.size() == 41);
  CHECK(r.config->peers[0].allowed_ips.back().to_string() == "10.40.0.0/16");
  CHECK(r.config->peers[0].persistent_keepalive == std::chrono::seconds{7});

  // ...and a mistake at the end of a long line is still found, on the right line.
  auto e = refused(interface_block() + "[Peer]\nPublicKey = " + public_2 + "\nAllowedIPs = " + list + ", 10.0.0.0/40\n");
  CHECK(e.line == 6);
  CHECK(e.key == "AllowedIPs");
  CHECK(e.message.find("'10.0.0.0/40'") != std::string::npos);
  // A line after a long one keeps its number.
  e = refused(interface_block() + "[Peer]\nPublicKey = " + public_2 + "\nAllowedIPs = " + list + "\nBogus = 1\n");
  CHECK(e.line == 7);
  CHECK(e.key == "Bogus");
}

// ---- errors: each names its line and key -------------------------------------------------------------

TEST_CASE("a bad key is refused without repeating it") {
  const std::string bad = "iI6N53yqpvjZOjhXi1/6EILjwMwPJ3ek9BIuVPnIh";  // a private key, cut short
  auto e = refused("[Interface]\nAddress = 10.0.0.1/24\nPrivateKey = " + bad + "\n");
  CHECK(e.line == 3);
  CHECK(e.key == "PrivateKey");
  CHECK(e.message.find("not a valid key") != std::string::npos);
  CHECK(e.to_string().find(bad) == std::string::npos);
  CHECK(e.to_string().find("iI6N53") == std::string::npos);

  e = refused(interface_block() + "[Peer]\nPublicKey = " + public_2 + "\nPresharedKey = " + bad + "!\n");
  CHECK(e.line == 6);
  CHECK(e.key == "PresharedKey");
  CHECK(e.to_string().find("iI6N53") == std::string::npos);

  // A private key pasted into PublicKey is a common slip: it is not repeated either.
  e = refused(interface_block() + "[Peer]\nPublicKey = " + bad + "\n");
  CHECK(e.line == 5);
  CHECK(e.key == "PublicKey");
  CHECK(e.to_string().find("iI6N53") == std::string::npos);

  // Nor is a key that lost its "PrivateKey =" and became a line of its own.
  e = refused(std::string("[Interface]\nPrivateKey =\n") + private_1 + "\n");
  CHECK(e.line == 2);
  CHECK(e.message == "has no value");
  e = refused(std::string("[Interface]\n") + private_1 + "\n");
  CHECK(e.line == 2);
  CHECK(e.to_string().find("iI6N53") == std::string::npos);
}

TEST_CASE("an Endpoint must be an IP address and port") {
  const std::string head = interface_block() + "[Peer]\nPublicKey = " + public_2 + "\n";
  auto e = refused(head + "Endpoint = vpn.example.com:51820\n");
  CHECK(e.line == 6);
  CHECK(e.key == "Endpoint");
  CHECK(e.message.find("Endpoint must be an IP address and port") != std::string::npos);
  CHECK(e.message.find("'vpn.example.com:51820'") != std::string::npos);
  CHECK(refused(head + "Endpoint = 192.0.2.1\n").key == "Endpoint");
  CHECK(refused(head + "Endpoint = 192.0.2.1:65536\n").key == "Endpoint");
  CHECK(refused(head + "Endpoint = fd00::1:51820\n").key == "Endpoint");  // IPv6 needs brackets
}

TEST_CASE("bad CIDR prefixes") {
  auto e = refused(interface_block() + "[Peer]\nPublicKey = " + public_2 + "\nAllowedIPs = 10.0.0.2/32, 10.0.0.0/33\n");
  CHECK(e.line == 6);
  CHECK(e.key == "AllowedIPs");
  CHECK(e.message.find("'10.0.0.0/33'") != std::string::npos);
  CHECK(e.to_string() ==
        "wg0.conf:6: AllowedIPs: '10.0.0.0/33' is not an IP address or CIDR prefix (like 10.0.0.1/24 or fd00::1/64)");

  e = refused(std::string("[Interface]\nPrivateKey = ") + private_1 + "\nAddress = 10.0.0.1/24, 300.0.0.1/24\n");
  CHECK(e.line == 3);
  CHECK(e.key == "Address");
  CHECK(e.message.find("'300.0.0.1/24'") != std::string::npos);

  e = refused(interface_block() + "[Peer]\nPublicKey = " + public_2 + "\nAllowedIPs = 10.0.0.2/32,, 10.0.0.3/32\n");
  CHECK(e.key == "AllowedIPs");
  CHECK(e.message.find("empty entry") != std::string::npos);
}

TEST_CASE("numbers out of range") {
  auto e = refused(interface_block() + "ListenPort = 65536\n");
  CHECK(e.line == 4);
  CHECK(e.key == "ListenPort");
  CHECK(e.message.find("'65536'") != std::string::npos);
  CHECK(refused(interface_block() + "ListenPort = -1\n").key == "ListenPort");
  CHECK(refused(interface_block() + "ListenPort = 51820x\n").key == "ListenPort");
  CHECK(parse_wg_quick(interface_block() + "ListenPort = 65535\n", "x").config->listen_port == 65535);

  const std::string head = interface_block() + "[Peer]\nPublicKey = " + public_2 + "\n";
  e = refused(head + "PersistentKeepalive = 65536\n");
  CHECK(e.line == 6);
  CHECK(e.key == "PersistentKeepalive");
  CHECK(parse_wg_quick(head + "PersistentKeepalive = OFF\n", "x").config);
}

TEST_CASE("unknown keys and sections") {
  auto e = refused(interface_block() + "Foo = bar\n");
  CHECK(e.line == 4);
  CHECK(e.key == "Foo");
  CHECK(e.message == "unknown key in [Interface]");
  CHECK(e.to_string() == "wg0.conf:4: Foo: unknown key in [Interface]");

  e = refused(interface_block() + "[Peer]\nPublicKey = " + public_2 + "\nListenPort = 1\n");
  CHECK(e.line == 6);
  CHECK(e.key == "ListenPort");
  CHECK(e.message == "belongs in [Interface], not in [Peer]");

  e = refused(interface_block() + "[Peer]\nDNS = 1.1.1.1\n");  // wg-quick's keys are [Interface] keys
  CHECK(e.line == 5);
  CHECK(e.key == "DNS");

  e = refused(interface_block() + "\n[Peers]\n");
  CHECK(e.line == 5);
  CHECK(e.key == "[Peers]");
  CHECK(e.message.find("unknown section") != std::string::npos);

  e = refused(interface_block() + "[Interface]\n");
  CHECK(e.line == 4);
  CHECK(e.key == "[Interface]");
  CHECK(e.message.find("line 1") != std::string::npos);
}

TEST_CASE("missing keys name their section's line") {
  auto e = refused("# no key here\n[Interface]\nAddress = 10.0.0.1/24\nListenPort = 1\n");
  CHECK(e.line == 2);
  CHECK(e.key == "PrivateKey");
  CHECK(e.to_string() == "wg0.conf:2: PrivateKey: [Interface] has no PrivateKey");

  e = refused(std::string("[Interface]\nPrivateKey = ") + private_1 + "\n");
  CHECK(e.line == 1);
  CHECK(e.key == "Address");

  e = refused(interface_block() + "[Peer]\nPublicKey = " + public_2 + "\n\n[Peer]\nEndpoint = 192.0.2.1:1\n");
  CHECK(e.line == 7);
  CHECK(e.key == "PublicKey");

  // The missing key is noticed when the section ends, at the next header or the end of the file.
  e = refused(interface_block() + "[Peer]\nAllowedIPs = 10.0.0.2/32\n[Peer]\nPublicKey = " + public_2 + "\n");
  CHECK(e.line == 4);
  CHECK(e.key == "PublicKey");

  e = refused("[Peer]\nPublicKey = " + std::string(public_2) + "\n");
  CHECK(e.line == 0);
  CHECK(e.key == "[Interface]");
  CHECK(e.to_string() == "wg0.conf: [Interface]: the file has no [Interface] section");
  CHECK(refused("").key == "[Interface]");
}

TEST_CASE("duplicate keys") {
  auto e = refused(interface_block() + "[Peer]\nPublicKey = " + public_2 + "\nEndpoint = 192.0.2.1:1\npublickey = " +
                   public_3 + "\n");
  CHECK(e.line == 7);
  CHECK(e.key == "PublicKey");
  CHECK(e.message.find("line 5") != std::string::npos);

  CHECK(refused(interface_block() + "ListenPort = 1\nListenPort = 2\n").line == 5);

  // The same peer twice is refused too.
  e = refused(interface_block() + "[Peer]\nPublicKey = " + public_2 + "\n[Peer]\nPublicKey = " + public_2 + "\n");
  CHECK(e.line == 7);
  CHECK(e.key == "PublicKey");
  CHECK(e.message.find("[Peer] on line 4") != std::string::npos);
}

TEST_CASE("a key before any section, and lines that are not key = value") {
  auto e = refused("; comment\nListenPort = 51820\n" + interface_block());
  CHECK(e.line == 2);
  CHECK(e.key == "ListenPort");
  CHECK(e.message.find("outside any section") != std::string::npos);

  e = refused(interface_block() + "ListenPort: 51820\n");
  CHECK(e.line == 4);
  e = refused(interface_block() + "ListenPort 51820\n");
  CHECK(e.line == 4);
  CHECK(e.message.find("Key = Value") != std::string::npos);
  e = refused(interface_block() + "[Peer\n");
  CHECK(e.line == 4);
  e = refused(interface_block() + " = 3\n");
  CHECK(e.line == 4);
}

// ---- cidr ----------------------------------------------------------------------------------------

TEST_CASE("cidr parsing") {
  auto c = cidr::parse("10.1.2.3/8");
  REQUIRE(c);
  CHECK_FALSE(c->v6);
  CHECK(c->prefix == 8);
  CHECK(c->to_string() == "10.1.2.3/8");
  CHECK(c->addr[0] == 10);
  CHECK(c->addr[3] == 3);
  CHECK(c->addr[4] == 0);

  CHECK(cidr::parse("192.0.2.1")->prefix == 32);
  CHECK(cidr::parse("fd00::1")->prefix == 128);
  CHECK(cidr::parse("fd00::1")->v6);
  CHECK(cidr::parse("0.0.0.0/0")->to_string() == "0.0.0.0/0");
  CHECK(cidr::parse("::/0")->to_string() == "::/0");
  CHECK(cidr::parse("2001:DB8::/32")->to_string() == "2001:db8::/32");
  CHECK(cidr::parse("1.2.3.4/32"));
  CHECK(cidr::parse("::1/128"));

  for (const char* bad : {"", "/24", "10.0.0.1/", "10.0.0.1/33", "::/129", "10.0.0/24", "10.0.0.256", "10.0.0.1/+8",
                          "10.0.0.1/-1", "10.0.0.1 /24", " 10.0.0.1/24", "10.0.0.1/2 4", "[::1]/128", "fe80::1%eth0",
                          "10.0.0.1/24/1", "host.example", "10.0.0.1/0024"}) {
    CAPTURE(bad);
    CHECK_FALSE(cidr::parse(bad));
  }
}

TEST_CASE("cidr masking and containment") {
  auto c = *cidr::parse("10.1.2.3/8");
  CHECK(c.has_host_bits());
  CHECK(c.masked().to_string() == "10.0.0.0/8");
  CHECK_FALSE(c.masked().has_host_bits());
  CHECK(cidr::parse("192.168.1.255/23")->masked().to_string() == "192.168.0.0/23");
  CHECK(cidr::parse("fd00::1:2:3/65")->masked().to_string() == "fd00::/65");
  CHECK(cidr::parse("fd00:0:0:0:ffff::/65")->masked().to_string() == "fd00::8000:0:0:0/65");
  CHECK(cidr::parse("1.2.3.4/0")->masked().to_string() == "0.0.0.0/0");
  CHECK_FALSE(cidr::parse("1.2.3.4/32")->has_host_bits());

  // contains looks at the prefix bits only, so masking does not change the answer.
  for (const auto& net : {c, c.masked()}) {
    CHECK(net.contains(ip("10.200.0.1"), false));
    CHECK_FALSE(net.contains(ip("11.0.0.1"), false));
    CHECK_FALSE(net.contains(ip("::a01:203"), true));  // the other family never matches
  }
  auto twenty_three = *cidr::parse("192.168.0.0/23");
  CHECK(twenty_three.contains(ip("192.168.1.200"), false));
  CHECK_FALSE(twenty_three.contains(ip("192.168.2.0"), false));

  auto v6 = *cidr::parse("2001:db8::/33");
  CHECK(v6.contains(ip("2001:db8:7fff::1"), true));
  CHECK_FALSE(v6.contains(ip("2001:db8:8000::1"), true));
  CHECK_FALSE(v6.contains(ip("10.0.0.1"), false));

  CHECK(cidr::parse("0.0.0.0/0")->contains(ip("255.255.255.255"), false));
  CHECK(cidr::parse("::/0")->contains(ip("::1"), true));
  CHECK(cidr::parse("10.0.0.1")->contains(ip("10.0.0.1"), false));
  CHECK_FALSE(cidr::parse("10.0.0.1")->contains(ip("10.0.0.2"), false));
}

// ---- files ---------------------------------------------------------------------------------------

TEST_CASE("a missing file is an error naming the file") {
  const auto path = std::filesystem::temp_directory_path() / "firebreak-no-such-dir" / "wg9.conf";
  auto r = load_wg_quick_file(path);
  REQUIRE(r.error);
  CHECK_FALSE(r.config);
  CHECK(r.error->file == path.string());
  CHECK(r.error->line == 0);
  CHECK(r.error->message.find("No such file") != std::string::npos);
  CHECK(r.error->to_string().rfind(path.string() + ": ", 0) == 0);

  r = load_wg_quick_file(std::filesystem::temp_directory_path());
  REQUIRE(r.error);
  CHECK(r.error->message == "not a regular file");
}

TEST_CASE("a file on disk loads, and a world-readable one draws a warning") {
  namespace fs = std::filesystem;
  const auto path = fs::temp_directory_path() / ("firebreak-wg-quick-test-" + std::to_string(::getpid()) + ".conf");
  {
    std::ofstream out(path);
    out << interface_block() << "[Peer]\nPublicKey = " << public_2 << "\nAllowedIPs = 10.0.0.2/32\nBad = 1\n";
  }
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
  auto r = load_wg_quick_file(path);
  REQUIRE(r.error);
  CHECK(r.error->file == path.string());
  CHECK(r.error->line == 7);
  CHECK(r.error->key == "Bad");
  CHECK(r.warnings.empty());

  {
    std::ofstream out(path, std::ios::trunc);
    out << interface_block() << "[Peer]\nPublicKey = " << public_2 << "\nAllowedIPs = 10.0.0.2/32\n";
  }
  fs::permissions(path, fs::perms::others_read, fs::perm_options::add);
  r = load_wg_quick_file(path);
  fs::remove(path);
  REQUIRE(r.config);
  CHECK(r.config->peers.size() == 1);
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0].file == path.string());
  CHECK(r.warnings[0].message.find("chmod 600") != std::string::npos);
}
