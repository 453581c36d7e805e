// The two kinds of tunnel peer an interop test sets up inside a network namespace:
//
//   wireguard_go_peer  Debian's wireguard-go, configured the way wg-quick would: wg setconf,
//                      ip addr add, ip link set mtu ... up
//   firebreak_peer     our `firebreak tunnel --config FILE --interface IFNAME`, which creates the
//                      TUN, assigns Address, sets MTU, brings it up and routes AllowedIPs itself
//
// Keys come from `wg genkey`, `wg pubkey` and `wg genpsk`. Private keys and preshared keys never
// reach test output: they are written only to 0600 files in the test's temp_directory, and
// everything a peer reports (its log, a failed command's output) goes through redact() first.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/interop/netns.hpp"

namespace firebreak::test::peers {

using netns::command_result;
using netns::network_namespace;
using netns::process;
using test::temp_directory;
using namespace std::chrono_literals;

// ---- keys ---------------------------------------------------------------------------------------

struct keypair {
  std::string private_key;  // secret: never print
  std::string public_key;
};

namespace detail {

inline std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

/// The first line a command prints, read through popen; the text is never echoed anywhere.
inline std::string popen_line(const char* command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command, "r"), ::pclose);
  if (!pipe) throw std::runtime_error(std::string("popen failed: ") + command);
  char line[256] = {};
  if (std::fgets(line, sizeof line, pipe.get()) == nullptr)
    throw std::runtime_error(std::string("no output from: ") + command);
  return trim(line);
}

}  // namespace detail

/// `wg genkey` and `wg pubkey`; the private key goes to wg pubkey on stdin, never on a command line.
inline keypair generate_keypair() {
  keypair k;
  k.private_key = detail::popen_line("wg genkey");
  auto pub = netns::detail::capture({"wg", "pubkey"}, 10s, k.private_key + "\n");
  if (!pub.ok()) throw std::runtime_error("wg pubkey failed");  // its output could echo the key
  k.public_key = detail::trim(pub.output);
  return k;
}

/// `wg genpsk`.
inline std::string generate_preshared_key() { return detail::popen_line("wg genpsk"); }

/// Every occurrence of each secret in `text` replaced with "(redacted)".
inline std::string redact(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& secret : secrets) {
    if (secret.empty()) continue;
    for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at))
      text.replace(at, secret.size(), "(redacted)");
  }
  return text;
}

/// Writes `text` to a file only its owner can read.
inline void write_private_file(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::remove(path);
  const mode_t old = ::umask(077);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  ::umask(old);
  out << text;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path.string());
  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

// ---- configuration ------------------------------------------------------------------------------

/// One side of a point-to-point tunnel.
struct tunnel_settings {
  std::string private_key;      // secret
  std::uint16_t listen_port = 51820;
  std::string address;          // this side's tunnel address, CIDR: "10.100.0.1/24"
  int mtu = 1420;
  std::string peer_public_key;
  std::string preshared_key;    // secret
  std::string endpoint;         // "10.99.0.2:51820"; empty on a responder, which learns it
  std::string allowed_ips;      // "10.100.0.2/32"
  int persistent_keepalive = 0; // seconds; 0 = off

  /// The secrets in here, for redact().
  [[nodiscard]] std::vector<std::string> secrets() const { return {private_key, preshared_key}; }
  /// The tunnel address without its prefix length.
  [[nodiscard]] std::string bare_address() const { return address.substr(0, address.find('/')); }
};

namespace detail {

inline void write_peer_section(std::ostream& out, const tunnel_settings& s) {
  out << "\n[Peer]\n"
      << "PublicKey = " << s.peer_public_key << "\n"
      << "PresharedKey = " << s.preshared_key << "\n";
  if (!s.endpoint.empty()) out << "Endpoint = " << s.endpoint << "\n";
  out << "AllowedIPs = " << s.allowed_ips << "\n";
  if (s.persistent_keepalive > 0) out << "PersistentKeepalive = " << s.persistent_keepalive << "\n";
}

}  // namespace detail

/// The wg(8) setconf format: no Address or MTU, which `ip` sets instead.
inline std::string wg_setconf_text(const tunnel_settings& s) {
  std::ostringstream out;
  out << "[Interface]\n"
      << "PrivateKey = " << s.private_key << "\n"
      << "ListenPort = " << s.listen_port << "\n";
  detail::write_peer_section(out, s);
  return out.str();
}

/// The wg-quick format our binary reads: [Interface] also carries Address and MTU.
inline std::string wg_quick_text(const tunnel_settings& s) {
  std::ostringstream out;
  out << "[Interface]\n"
      << "PrivateKey = " << s.private_key << "\n"
      << "ListenPort = " << s.listen_port << "\n"
      << "Address = " << s.address << "\n"
      << "MTU = " << s.mtu << "\n";
  detail::write_peer_section(out, s);
  return out.str();
}

// ---- peers --------------------------------------------------------------------------------------

/// What both kinds of peer offer a test.
class tunnel_peer {
 public:
  virtual ~tunnel_peer() = default;
  tunnel_peer(const tunnel_peer&) = delete;
  tunnel_peer& operator=(const tunnel_peer&) = delete;

  [[nodiscard]] const std::string& interface_name() const { return ifname_; }
  [[nodiscard]] const tunnel_settings& settings() const { return settings_; }
  [[nodiscard]] const network_namespace& ns() const { return ns_; }
  [[nodiscard]] process& daemon() { return *daemon_; }
  [[nodiscard]] bool alive() const { return daemon_ && daemon_->alive(); }
  /// The daemon's output so far, secrets redacted.
  [[nodiscard]] std::string log() const {
    return daemon_ ? redact(daemon_->log(), settings_.secrets()) : std::string{};
  }

 protected:
  tunnel_peer(const network_namespace& ns, std::string ifname, tunnel_settings settings)
      : ns_(ns), ifname_(std::move(ifname)), settings_(std::move(settings)) {}

  /// Runs a setup command in the namespace; throws (output redacted) when it fails.
  void setup_step(const std::string& command) const {
    auto r = netns::run(ns_, command, 20s);
    if (!r.ok()) {
      throw std::runtime_error(redact(command + " failed in " + ns_.name() + " (exit " +
                                          std::to_string(r.exit_code) + "): " + r.output +
                                          "\n--- daemon log ---\n" + log(),
                                      settings_.secrets()));
    }
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(redact(what + "\n--- daemon log ---\n" + log(), settings_.secrets()));
  }

  const network_namespace& ns_;
  std::string ifname_;
  tunnel_settings settings_;
  std::unique_ptr<process> daemon_;
};

/// wireguard-go in the foreground inside `ns`, configured with wg setconf and ip.
class wireguard_go_peer : public tunnel_peer {
 public:
  wireguard_go_peer(const network_namespace& ns, std::string ifname, tunnel_settings settings,
                    const temp_directory& dir)
      : tunnel_peer(ns, std::move(ifname), std::move(settings)) {
    // LOG_LEVEL=verbose logs handshakes and keepalives (never keys), which helps a post-mortem.
    daemon_ = std::make_unique<process>(
        ns_,
        std::vector<std::string>{"env", "WG_PROCESS_FOREGROUND=1",
                                 "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1", "LOG_LEVEL=verbose",
                                 "wireguard-go", "-f", ifname_},
        dir / (ifname_ + ".log"));
    const bool created = netns::wait_until(
        [&] { return !daemon_->alive() || netns::run(ns_, "ip link show dev " + ifname_, 5s).ok(); },
        10s);
    if (!created || !daemon_->alive()) fail("wireguard-go did not create " + ifname_ + " in " + ns_.name());

    const auto conf = dir / (ifname_ + ".conf");
    write_private_file(conf, wg_setconf_text(settings_));
    setup_step("wg setconf " + ifname_ + " " + conf.string());
    setup_step("ip addr add " + settings_.address + " dev " + ifname_);
    setup_step("ip link set mtu " + std::to_string(settings_.mtu) + " up dev " + ifname_);
  }

  /// Seconds since the epoch of the latest handshake with its peer; 0 when there was none.
  [[nodiscard]] long latest_handshake() const {
    auto r = netns::run(ns_, "wg show " + ifname_ + " latest-handshakes", 10s);
    std::istringstream in(r.output);
    std::string key;
    long when = 0;
    in >> key >> when;
    return r.ok() ? when : 0;
  }

  /// The endpoint wireguard-go has for its peer ("10.99.0.1:51820"), "(none)" when it has none.
  [[nodiscard]] std::string peer_endpoint() const {
    auto r = netns::run(ns_, "wg show " + ifname_ + " endpoints", 10s);
    std::istringstream in(r.output);
    std::string key, endpoint;
    in >> key >> endpoint;
    return endpoint;
  }
};

/// Our binary: `firebreak tunnel --config FILE --interface IFNAME` inside `ns`.
class firebreak_peer : public tunnel_peer {
 public:
  firebreak_peer(const network_namespace& ns, const std::string& binary, std::string ifname,
                 tunnel_settings settings, const temp_directory& dir)
      : tunnel_peer(ns, std::move(ifname), std::move(settings)) {
    const auto conf = dir / (ifname_ + ".conf");
    write_private_file(conf, wg_quick_text(settings_));
    daemon_ = std::make_unique<process>(
        ns_, std::vector<std::string>{binary, "tunnel", "--config", conf.string(), "--interface", ifname_},
        dir / (ifname_ + ".log"));
    // Ready once the interface is up and carries its Address.
    const std::string ready = "ip -o link show up dev " + ifname_ + " | grep -q . && ip -o addr show dev " +
                              ifname_ + " | grep -qF ' " + settings_.address + " '";
    const bool up = netns::wait_until(
        [&] { return !daemon_->alive() || netns::run(ns_, ready, 5s).ok(); }, 15s);
    if (!daemon_->alive()) {
      const int status = daemon_->terminate();
      fail("firebreak exited with status " + std::to_string(status) + " before " + ifname_ + " came up");
    }
    if (!up) fail("firebreak did not bring up " + ifname_ + " with " + settings_.address + " in " + ns_.name());
  }
};

}  // namespace firebreak::test::peers
