// coturn, the relay Firebreak uses, started by a test: `turnserver` with use-auth-secret on a UDP port
// of its own, optionally inside a network namespace, stopped by PID on destruction. Tests then speak
// TURN to it with credentials the portal minted, or with coturn's own client (`turnutils_uclient`).
#pragma once

#include <sys/socket.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <ctime>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tests/interop/netns.hpp"
#include "tests/support/local_machine.hpp"

namespace firebreak::test::coturn {

using namespace std::chrono_literals;

/// Why coturn cannot run here; empty when it can.
inline std::string missing_tools() {
  for (const char* tool : {"turnserver", "turnutils_uclient", "turnutils_stunclient", "turnutils_peer"})
    if (!executable_in_path(tool)) return std::string(tool) + " is not installed (Debian: coturn)";
  return {};
}

/// coturn's REST-API credentials, computed here with OpenSSL directly (independently of the portal's code):
/// username "<unix expiry>:<name>", password base64(HMAC-SHA1(secret, username)).
inline std::pair<std::string, std::string> rest_credentials(const std::string& secret, const std::string& name,
                                                            std::time_t expires_at) {
  const std::string username = std::to_string(expires_at) + ":" + name;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(username.data()), username.size(), mac, &mac_len);
  std::string password(4 * ((mac_len + 2) / 3), '\0');
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(password.data()), mac, static_cast<int>(mac_len));
  return {username, password};
}

struct relay_settings {
  std::string listen_ip = "127.0.0.1";
  std::uint16_t port = 0;  // 0: a free one on 127.0.0.1
  std::string secret;      // coturn's static-auth-secret, which the portal shares
  std::string realm = "firebreak.test";
  const netns::network_namespace* ns = nullptr;  // run inside this namespace
};

class relay {
 public:
  relay(const temp_directory& dir, relay_settings s) : settings_(std::move(s)) {
    if (settings_.port == 0) settings_.port = free_loopback_port(SOCK_DGRAM);
    std::vector<std::string> argv = {"turnserver", "-n",  // no configuration file
                                     "--listening-ip=" + settings_.listen_ip,
                                     "--listening-port=" + std::to_string(settings_.port),
                                     "--relay-ip=" + settings_.listen_ip,
                                     "--use-auth-secret",
                                     "--static-auth-secret=" + settings_.secret,
                                     "--realm=" + settings_.realm,
                                     "--no-tls", "--no-dtls", "--no-cli",
                                     "--allow-loopback-peers",  // tests relay to peers on loopback
                                     "--userdb=" + (dir / "turndb").string(),
                                     "--pidfile=" + (dir / "turnserver.pid").string(),
                                     "--log-file=stdout", "--simple-log"};
    argv_ = std::move(argv);
    log_ = dir / ("turnserver-" + std::to_string(settings_.port) + ".log");
    start();
  }

  /// Waits until it completes an allocation (its authentication thread starts after it already answers
  /// STUN); false, with its log in `why`, when it does not. Relays to `peer_ip:peer_port`.
  /// On a loaded machine a turnserver now and then stalls in its start-up and never opens its
  /// listeners; one that is not ready halfway through `timeout` is started once more.
  bool wait_ready(const std::string& peer_ip, std::uint16_t peer_port, std::string& why,
                  std::chrono::milliseconds timeout = 60s) {
    auto ready = [&](std::chrono::milliseconds within) {
      const bool up = netns::wait_until(
          [&] {
            if (!process_->alive()) return true;
            auto [user, password] = rest_credentials(settings_.secret, "readiness", std::time(nullptr) + 60);
            // Short attempts: a request sent before coturn listens is lost, and uclient would wait long.
            return allocate_and_echo(user, password, peer_ip, peer_port, 1, 3s).ok();
          },
          within);
      return up && process_->alive();
    };
    if (ready(timeout / 2)) return true;
    const std::string first_log = process_->log();
    process_.reset();
    start();
    if (ready(timeout / 2)) return true;
    why = "turnserver did not come up, twice; first:\n" + first_log + "\nsecond:\n" + process_->log();
    return false;
  }

  /// coturn's own TURN client: allocates with `username`/`password`, relays `messages` datagrams to
  /// `peer` (an address turnutils_peer echoes on) and back. The output says what happened.
  netns::command_result allocate_and_echo(const std::string& username, const std::string& password,
                                          const std::string& peer_ip, std::uint16_t peer_port,
                                          int messages = 3, std::chrono::milliseconds timeout = 20s) const {
    return run({"turnutils_uclient", "-p", std::to_string(settings_.port), "-u", username, "-w", password, "-e",
                peer_ip, "-r", std::to_string(peer_port), "-n", std::to_string(messages), "-c",
                settings_.listen_ip},
               timeout);
  }

  [[nodiscard]] std::string address() const { return settings_.listen_ip + ":" + std::to_string(settings_.port); }
  [[nodiscard]] std::uint16_t port() const { return settings_.port; }
  [[nodiscard]] std::string log() const { return process_->log(); }

 private:
  void start() {
    if (settings_.ns)
      process_.emplace(*settings_.ns, argv_, log_);
    else
      process_.emplace(argv_, log_);
  }
  std::vector<std::string> argv_;
  std::filesystem::path log_;

  netns::command_result run(std::vector<std::string> argv, std::chrono::milliseconds timeout) const {
    if (settings_.ns) argv.insert(argv.begin(), {"ip", "netns", "exec", settings_.ns->name()});
    return netns::detail::capture(std::move(argv), timeout);
  }

  relay_settings settings_;
  std::optional<netns::process> process_;
};

/// turnutils_peer: echoes UDP datagrams on `ip:port` so a TURN client has someone to relay to.
class echo_peer {
 public:
  echo_peer(const temp_directory& dir, std::string ip, const netns::network_namespace* ns = nullptr)
      : ip_(std::move(ip)), port_(free_loopback_port(SOCK_DGRAM)) {
    std::vector<std::string> argv = {"turnutils_peer", "-L", ip_, "-p", std::to_string(port_)};
    const auto log = dir / ("turnutils_peer-" + std::to_string(port_) + ".log");
    if (ns)
      process_.emplace(*ns, std::move(argv), log);
    else
      process_.emplace(std::move(argv), log);
  }
  [[nodiscard]] const std::string& ip() const { return ip_; }
  [[nodiscard]] std::uint16_t port() const { return port_; }

 private:
  std::string ip_;
  std::uint16_t port_;
  std::optional<netns::process> process_;
};

}  // namespace firebreak::test::coturn
