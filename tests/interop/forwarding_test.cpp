// The gateway's kernel forwarding (transport/tun/forwarding_linux.hpp) against the real kernel: the two sysctls,
// the nftables table, and a ping from a client's tunnel address through a TUN to a resource behind the gateway.
// Needs root; skips with a message otherwise.
//
// The machine's own namespace is never touched: every case first moves this whole process into a fresh network
// namespace (unshare(CLONE_NEWNET)), which starts with forwarding off, lo down and an empty ruleset.
//
//   client 100.64.0.2, fd00:2021:1111::2     packets the test writes into the TUN
//          |  TUN fb-gw (routes to 100.64.0.0/10, fd00:2021:1111::/48)
//   [this process's namespace: the gateway]  10.203.0.1/24, fd99:203::1/64
//          |  veth
//   [resource namespace fb-<pid>-<n>]        10.203.0.2/24, fd99:203::2/64, no route to the tunnel ranges
//
// The resource can only answer a client when the gateway masqueraded the request behind 10.203.0.1/fd99:203::1.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <linux/capability.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "tests/interop/netns.hpp"
#include "transport/tun/forwarding_linux.hpp"
#include "transport/tun/link_config_linux.hpp"
#include "transport/tun/tun_device_linux.hpp"

namespace {

using firebreak::tun::forwarding;
using namespace std::chrono_literals;

constexpr const char* ipv4_forwarding = "/proc/sys/net/ipv4/ip_forward";
constexpr const char* ipv6_forwarding = "/proc/sys/net/ipv6/conf/all/forwarding";
const std::vector<std::string> tunnel_prefixes = {"100.64.0.0/10", "fd00:2021:1111::/48"};

// ---- the machine --------------------------------------------------------------------------------------

std::string sysctl(const char* path) {
  std::string value = firebreak::test::read_file(path);
  while (!value.empty() && value.back() == '\n') value.pop_back();
  return value;
}

bool set_sysctl(const char* path, const std::string& value) {
  std::ofstream out(path);
  out << value << '\n';
  out.flush();
  return static_cast<bool>(out);
}

/// Moves this process into a new network namespace with both forwarding sysctls off. False (with a message, so
/// the case passes as skipped) where that cannot be done.
bool in_fresh_namespace() {
  if (::geteuid() != 0) {
    MESSAGE("skipped: needs root for a network namespace of its own, sysctls and nftables");
    return false;
  }
  if (::unshare(CLONE_NEWNET) != 0) {
    MESSAGE("skipped: unshare(CLONE_NEWNET) failed: " << std::strerror(errno));
    return false;
  }
  // A new namespace starts with both off, unless net.core.devconf_inherit_init_net copies the host's values.
  REQUIRE(set_sysctl(ipv4_forwarding, "0"));
  REQUIRE(set_sysctl(ipv6_forwarding, "0"));
  return true;
}

struct nft_result {
  bool ok = false;
  std::string output;
  std::string error;
};

/// One nft command through libnftables, as the code under test talks to the kernel.
nft_result nft(const std::string& command) {
  std::unique_ptr<nft_ctx, void (*)(nft_ctx*)> ctx(nft_ctx_new(NFT_CTX_DEFAULT), nft_ctx_free);
  REQUIRE(ctx);
  nft_ctx_buffer_output(ctx.get());
  nft_ctx_buffer_error(ctx.get());
  nft_result r;
  r.ok = nft_run_cmd_from_buffer(ctx.get(), command.c_str()) == 0;
  r.output = nft_ctx_get_output_buffer(ctx.get());
  r.error = nft_ctx_get_error_buffer(ctx.get());
  return r;
}

/// The listing of our table; REQUIREs that it exists.
std::string table_listing(const std::string& table = "firebreak_fb_gw") {
  auto r = nft("list table inet " + table);
  REQUIRE_MESSAGE(r.ok, "table inet " << table << " is missing: " << r.error);
  return r.output;
}

/// How many lines of `text` contain every one of `parts`.
int lines_with(const std::string& text, std::initializer_list<std::string> parts) {
  std::istringstream lines(text);
  int count = 0;
  for (std::string line; std::getline(lines, line);) {
    bool all = true;
    for (const auto& part : parts) all = all && line.find(part) != std::string::npos;
    count += all ? 1 : 0;
  }
  return count;
}

/// The tables in this namespace, one `table <family> <name>` per line.
std::string tables() {
  auto r = nft("list tables");
  REQUIRE_MESSAGE(r.ok, r.error);
  return r.output;
}

/// Runs `body` in a forked child, in this same network namespace, and returns what it returned. Whatever else
/// the child changes about itself (capabilities, mounts) dies with it. Only async-signal-safe-enough work: the
/// child never returns into doctest.
std::string in_child(const std::function<std::string()>& body) {
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(pipe_fds[0]);
    std::string report;
    try {
      report = body();
    } catch (const std::exception& e) {
      report = std::string("exception: ") + e.what();
    }
    for (std::size_t done = 0; done < report.size();) {
      const auto n = ::write(pipe_fds[1], report.data() + done, report.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string report;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    report.append(buf, static_cast<std::size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), "the child died: " << report);
  return report;
}

// ---- packets a client would send through the tunnel -----------------------------------------------------

std::uint16_t internet_checksum(std::span<const std::uint8_t> bytes, std::uint32_t sum = 0) {
  for (std::size_t i = 0; i + 1 < bytes.size(); i += 2) sum += static_cast<std::uint32_t>(bytes[i] << 8 | bytes[i + 1]);
  if (bytes.size() % 2) sum += static_cast<std::uint32_t>(bytes.back() << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

void put16(std::vector<std::uint8_t>& p, std::size_t at, std::uint16_t v) {
  p[at] = static_cast<std::uint8_t>(v >> 8);
  p[at + 1] = static_cast<std::uint8_t>(v);
}

std::array<std::uint8_t, 16> address_bytes(int family, const char* text) {
  std::array<std::uint8_t, 16> out{};
  REQUIRE(::inet_pton(family, text, out.data()) == 1);
  return out;
}

const std::string echo_payload = "firebreak forwarding";

std::vector<std::uint8_t> icmp_echo_request_v4(const char* source, const char* destination, std::uint16_t id) {
  std::vector<std::uint8_t> p(20 + 8 + echo_payload.size());
  p[0] = 0x45;
  put16(p, 2, static_cast<std::uint16_t>(p.size()));
  p[6] = 0x40;  // don't fragment
  p[8] = 64;    // TTL
  p[9] = 1;     // ICMP
  const auto src = address_bytes(AF_INET, source), dst = address_bytes(AF_INET, destination);
  std::copy_n(src.begin(), 4, p.begin() + 12);
  std::copy_n(dst.begin(), 4, p.begin() + 16);
  put16(p, 10, internet_checksum(std::span(p).first(20)));
  p[20] = 8;  // echo request
  put16(p, 24, id);
  put16(p, 26, 1);  // sequence
  std::copy(echo_payload.begin(), echo_payload.end(), p.begin() + 28);
  put16(p, 22, internet_checksum(std::span(p).subspan(20)));
  return p;
}

std::vector<std::uint8_t> icmp_echo_request_v6(const char* source, const char* destination, std::uint16_t id) {
  const std::size_t icmp_length = 8 + echo_payload.size();
  std::vector<std::uint8_t> p(40 + icmp_length);
  p[0] = 0x60;
  put16(p, 4, static_cast<std::uint16_t>(icmp_length));
  p[6] = 58;  // ICMPv6
  p[7] = 64;  // hop limit
  const auto src = address_bytes(AF_INET6, source), dst = address_bytes(AF_INET6, destination);
  std::copy(src.begin(), src.end(), p.begin() + 8);
  std::copy(dst.begin(), dst.end(), p.begin() + 24);
  p[40] = 128;  // echo request
  put16(p, 44, id);
  put16(p, 46, 1);
  std::copy(echo_payload.begin(), echo_payload.end(), p.begin() + 48);
  // The pseudo-header: both addresses, the upper-layer length and the next header.
  std::uint32_t pseudo = 0;
  for (std::size_t i = 8; i < 40; i += 2) pseudo += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
  pseudo += static_cast<std::uint32_t>(icmp_length) + 58;
  put16(p, 42, internet_checksum(std::span(p).subspan(40), pseudo));
  return p;
}

/// Is `p` the echo reply from `resource` to `client` for echo `id`, in either family?
bool is_echo_reply(std::span<const std::uint8_t> p, int family, const char* resource, const char* client,
                   std::uint16_t id) {
  const auto src = address_bytes(family, resource), dst = address_bytes(family, client);
  if (family == AF_INET) {
    if (p.size() < 28 || p[0] >> 4 != 4 || p[9] != 1) return false;
    const std::size_t icmp = (p[0] & 0x0f) * 4u;
    return p.size() >= icmp + 8 && std::equal(src.begin(), src.begin() + 4, p.begin() + 12) &&
           std::equal(dst.begin(), dst.begin() + 4, p.begin() + 16) && p[icmp] == 0 &&
           (p[icmp + 4] << 8 | p[icmp + 5]) == id;
  }
  if (p.size() < 48 || p[0] >> 4 != 6 || p[6] != 58) return false;
  return std::equal(src.begin(), src.end(), p.begin() + 8) && std::equal(dst.begin(), dst.end(), p.begin() + 24) &&
         p[40] == 129 && (p[44] << 8 | p[45]) == id;
}

/// Reads packets from the TUN until `wanted` holds for one of them or `timeout` passes.
bool tun_delivers(firebreak::tun::tun_device& tun, const std::function<bool(std::span<const std::uint8_t>)>& wanted,
                  std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::array<std::uint8_t, 2048> buf{};
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{tun.fd(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    for (long n; (n = tun.read(buf)) > 0;) {
      if (wanted(std::span<const std::uint8_t>(buf.data(), static_cast<std::size_t>(n)))) return true;
    }
  }
  return false;
}

/// The `packets N` of the first line of `listing` containing every part; -1 when there is none.
long counter_packets(const std::string& listing, std::initializer_list<std::string> parts) {
  std::istringstream lines(listing);
  for (std::string line; std::getline(lines, line);) {
    bool all = true;
    for (const auto& part : parts) all = all && line.find(part) != std::string::npos;
    const auto at = line.find("packets ");
    if (all && at != std::string::npos) return std::stol(line.substr(at + 8));
  }
  return -1;
}

}  // namespace

TEST_CASE("enabling forwarding turns both sysctls on and installs the masquerade; destruction undoes both") {
  if (!in_fresh_namespace()) return;
  std::string why;
  {
    auto fw = forwarding::enable("fb-gw", tunnel_prefixes, why);
    REQUIRE_MESSAGE(fw, why);
    CHECK(fw->table_name() == "firebreak_fb_gw");
    CHECK(fw->warnings().empty());
    CHECK(sysctl(ipv4_forwarding) == "1");
    CHECK(sysctl(ipv6_forwarding) == "1");

    const std::string listing = table_listing();
    INFO(listing);
    CHECK(lines_with(listing, {"type nat hook postrouting priority srcnat"}) == 1);
    CHECK(lines_with(listing, {"oifname != \"fb-gw\"", "ip saddr 100.64.0.0/10", "masquerade"}) == 1);
    CHECK(lines_with(listing, {"oifname != \"fb-gw\"", "ip6 saddr fd00:2021:1111::/48", "masquerade"}) == 1);
    CHECK(lines_with(listing, {"type filter hook forward priority filter; policy accept"}) == 1);
    CHECK(lines_with(listing, {"iifname \"fb-gw\"", "accept"}) == 1);
    CHECK(lines_with(listing, {"oifname \"fb-gw\" ct state established,related", "accept"}) == 1);
  }
  CHECK(sysctl(ipv4_forwarding) == "0");
  CHECK(sysctl(ipv6_forwarding) == "0");
  CHECK_FALSE(nft("list table inet firebreak_fb_gw").ok);
  CHECK(tables().empty());
}

TEST_CASE("a sysctl that was already on is left on when the gateway goes") {
  if (!in_fresh_namespace()) return;
  REQUIRE(set_sysctl(ipv4_forwarding, "1"));
  std::string why;
  {
    auto fw = forwarding::enable("fb-gw", tunnel_prefixes, why);
    REQUIRE_MESSAGE(fw, why);
    CHECK(sysctl(ipv6_forwarding) == "1");
  }
  CHECK(sysctl(ipv4_forwarding) == "1");  // someone else's setting
  CHECK(sysctl(ipv6_forwarding) == "0");  // ours, undone
}

TEST_CASE("a table left behind by a killed gateway is replaced, not duplicated") {
  if (!in_fresh_namespace()) return;
  auto stale = nft(
      "table inet firebreak_fb_gw {\n"
      "  chain postrouting {\n"
      "    type nat hook postrouting priority srcnat; policy accept;\n"
      "    ip saddr 100.64.0.0/10 counter masquerade comment \"left behind\"\n"
      "  }\n"
      "  chain left_behind { }\n"
      "}\n");
  REQUIRE_MESSAGE(stale.ok, stale.error);

  std::string why;
  {
    auto fw = forwarding::enable("fb-gw", tunnel_prefixes, why);
    REQUIRE_MESSAGE(fw, why);
    const std::string all = tables();
    CHECK_MESSAGE(lines_with(all, {"table inet firebreak_fb_gw"}) == 1, all);
    const std::string listing = table_listing();
    INFO(listing);
    CHECK(listing.find("left behind") == std::string::npos);
    CHECK(listing.find("left_behind") == std::string::npos);
    CHECK(lines_with(listing, {"ip saddr 100.64.0.0/10", "masquerade"}) == 1);
  }
  CHECK(tables().empty());
}

TEST_CASE("a bad TUN name or tunnel prefix is an error that changes nothing") {
  if (!in_fresh_namespace()) return;
  for (const std::string name : {"fb\"gw", "", "a-name-too-long-x", "fb gw", "fb;gw", "fb}gw"}) {
    std::string why;
    CAPTURE(name);
    CHECK_FALSE(forwarding::enable(name, tunnel_prefixes, why));
    CHECK(why.find("TUN interface name") != std::string::npos);
  }
  for (const std::vector<std::string>& prefixes : std::vector<std::vector<std::string>>{
           {"100.64.0.0/33"}, {"100.64.0.0"}, {"not-a-prefix/10"}, {"100.64.0.0/10 counter"},
           {"100.64.0.0/10\"; flush ruleset; \""}, {"fd00::/129"}, {}}) {
    std::string why;
    CAPTURE(prefixes.empty() ? std::string("(none)") : prefixes.front());
    CHECK_FALSE(forwarding::enable("fb-gw", prefixes, why));
    CHECK_FALSE(why.empty());
  }
  CHECK(sysctl(ipv4_forwarding) == "0");
  CHECK(sysctl(ipv6_forwarding) == "0");
  CHECK(tables().empty());
}

TEST_CASE("when nftables refuses, the error carries nft's text and nothing is left changed") {
  if (!in_fresh_namespace()) return;
  // Without CAP_NET_ADMIN the kernel refuses every nftables change; root may still write the sysctls.
  const std::string report = in_child([] {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct caps[2]{};
    if (::syscall(SYS_capget, &header, caps) != 0) return std::string("capget failed");
    caps[CAP_NET_ADMIN / 32].effective &= ~(1u << (CAP_NET_ADMIN % 32));
    caps[CAP_NET_ADMIN / 32].permitted &= ~(1u << (CAP_NET_ADMIN % 32));
    if (::syscall(SYS_capset, &header, caps) != 0) return std::string("capset failed");
    std::string why;
    auto fw = forwarding::enable("fb-gw", tunnel_prefixes, why);
    return fw ? std::string("enabled without CAP_NET_ADMIN") : "why: " + why;
  });
  INFO(report);
  CHECK(report.find("why: cannot install nftables table inet firebreak_fb_gw: ") == 0);
  CHECK(report.find("Operation not permitted") != std::string::npos);
  CHECK(report.find('\n') == std::string::npos);  // one sentence, not nft's echoed command and carets
  CHECK(sysctl(ipv4_forwarding) == "0");
  CHECK(sysctl(ipv6_forwarding) == "0");
  CHECK(tables().empty());
}

TEST_CASE("without IPv6 in the namespace, IPv4 is forwarded and IPv6 is a warning") {
  if (!in_fresh_namespace()) return;
  // A kernel booted with ipv6.disable=1 has no /proc/sys/net/ipv6: an empty tmpfs over it in a mount namespace
  // of the child's own looks the same to the code under test.
  const std::string report = in_child([] {
    if (::unshare(CLONE_NEWNS) != 0) return "unshare(CLONE_NEWNS): " + std::string(std::strerror(errno));
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("none", "/proc/sys/net/ipv6", "tmpfs", 0, nullptr) != 0)
      return "mount: " + std::string(std::strerror(errno));
    std::string why;
    auto fw = forwarding::enable("fb-gw", tunnel_prefixes, why);
    if (!fw) return "why: " + why;
    std::string out = "ipv4: " + sysctl(ipv4_forwarding) + "\n";
    for (const auto& w : fw->warnings()) out += "warning: " + w + "\n";
    return out + nft("list table inet firebreak_fb_gw").output;
  });
  INFO(report);
  CHECK(report.find("ipv4: 1\n") == 0);
  CHECK(lines_with(report, {"warning: cannot read /proc/sys/net/ipv6/conf/all/forwarding", "fd00:2021:1111::/48"}) ==
        1);
  CHECK(lines_with(report, {"ip saddr 100.64.0.0/10", "masquerade"}) == 1);
  CHECK(lines_with(report, {"ip6 saddr"}) == 0);
  // The child's forwarding object is gone with it: all undone.
  CHECK(sysctl(ipv4_forwarding) == "0");
  CHECK(tables().empty());
}

TEST_CASE("a moved forwarding stays enabled until its last owner goes") {
  if (!in_fresh_namespace()) return;
  std::string why;
  auto first = forwarding::enable("fb-gw", tunnel_prefixes, why);
  REQUIRE_MESSAGE(first, why);
  std::optional<forwarding> second(std::move(*first));
  first.reset();
  CHECK(sysctl(ipv4_forwarding) == "1");
  CHECK(lines_with(tables(), {"table inet firebreak_fb_gw"}) == 1);
  CHECK(second->disable().empty());
  CHECK(second->disable().empty());  // idempotent
  CHECK(sysctl(ipv4_forwarding) == "0");
  CHECK(sysctl(ipv6_forwarding) == "0");
  CHECK(tables().empty());
}

TEST_CASE("a client's ping through the TUN reaches a resource behind the gateway, masqueraded, and comes back") {
  if (!in_fresh_namespace()) return;
  namespace netns = firebreak::test::netns;
  if (auto missing = netns::missing_tools({"ip"}); !missing.empty()) {
    MESSAGE("skipped: " << missing);
    return;
  }
  netns::remove_stale_leftovers();

  // The resource's namespace; deleting it (destructor, also when an assertion fails) takes the veth pair along.
  netns::network_namespace resource;
  // run_host runs in this process's namespace, which is now the gateway's, not the machine's.
  const std::string setup =
      "ip link set lo up && "
      "ip link add fbres0 type veth peer name fbres1 netns " + resource.name() + " && "
      "ip addr add 10.203.0.1/24 dev fbres0 && ip addr add fd99:203::1/64 dev fbres0 nodad && "
      "ip link set fbres0 up && "
      "ip -n " + resource.name() + " addr add 10.203.0.2/24 dev fbres1 && "
      "ip -n " + resource.name() + " addr add fd99:203::2/64 dev fbres1 nodad && "
      "ip -n " + resource.name() + " link set fbres1 up";
  auto made = netns::run_host(setup, 20s);
  REQUIRE_MESSAGE(made.ok(), setup << "\n" << made.output);

  std::error_code ec;
  std::string why;
  auto tun = firebreak::tun::tun_device::open("fb-gw", ec, why);
  REQUIRE_MESSAGE(!ec, why);
  firebreak::tun::link_config links;
  REQUIRE(links.set_mtu_and_up(tun.ifindex(), 1280).empty());
  for (const auto& prefix : tunnel_prefixes) REQUIRE(links.add_route(tun.ifindex(), prefix).empty());

  auto fw = forwarding::enable("fb-gw", tunnel_prefixes, why);
  REQUIRE_MESSAGE(fw, why);

  SUBCASE("IPv4") {
    REQUIRE(tun.write(icmp_echo_request_v4("100.64.0.2", "10.203.0.2", 0x4201)));
    CHECK(tun_delivers(
        tun, [](auto p) { return is_echo_reply(p, AF_INET, "10.203.0.2", "100.64.0.2", 0x4201); }, 5s));
    const std::string listing = table_listing();
    INFO(listing);
    CHECK(counter_packets(listing, {"ip saddr 100.64.0.0/10", "masquerade"}) == 1);  // the flow's first packet
    CHECK(counter_packets(listing, {"iifname \"fb-gw\""}) >= 1);
    CHECK(counter_packets(listing, {"ct state established,related"}) >= 1);
  }
  SUBCASE("IPv6") {
    REQUIRE(tun.write(icmp_echo_request_v6("fd00:2021:1111::2", "fd99:203::2", 0x4206)));
    CHECK(tun_delivers(
        tun, [](auto p) { return is_echo_reply(p, AF_INET6, "fd99:203::2", "fd00:2021:1111::2", 0x4206); }, 5s));
    const std::string listing = table_listing();
    INFO(listing);
    CHECK(counter_packets(listing, {"ip6 saddr fd00:2021:1111::/48", "masquerade"}) == 1);
    CHECK(counter_packets(listing, {"iifname \"fb-gw\""}) >= 1);
    CHECK(counter_packets(listing, {"ct state established,related"}) >= 1);
  }
}
