// Interop: the official `phoenix` JavaScript client (npm `phoenix`, `ws` as its Node transport) against
// our portal. This program is the driver; the client side is tests/interop/phoenix_js/interop.mjs.
//
//   1. `npm ci` in tests/interop/phoenix_js when its node_modules is missing (skips when node or npm is absent)
//   2. `firebreak portal` on free ports with a scratch data dir (stopped by PID however the test ends)
//   3. with `firebreak admin --json`: a site, a user in a group, a client of that user, a resource of the
//      site and a policy granting the group the resource
//   4. `node interop.mjs`: joins "client" with the client's token and checks "init"; is refused with bad tokens
//
// The binary comes from the FIREBREAK_BINARY environment variable, else from the compile definition of the
// same name (set once apps/ builds the firebreak target); with neither the test is skipped.
#include <sys/socket.h>

#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/interop/netns.hpp"
#include "tests/support/local_machine.hpp"

namespace {

using namespace firebreak::test::netns;
using detail::capture;
using firebreak::test::accepts_connections;
using firebreak::test::executable_in_path;
using firebreak::test::firebreak_binary;
using firebreak::test::free_loopback_port;
using firebreak::test::temp_directory;
using json = nlohmann::json;

const std::filesystem::path package_dir = PHOENIX_JS_DIR;

/// A portal of our own in a scratch folder; destruction stops it by PID (SIGTERM, then SIGKILL).
struct running_portal {
  std::string binary;
  temp_directory dir;
  std::filesystem::path data = dir / "portal";
  std::uint16_t port = 0;
  std::uint16_t admin_port = 0;
  std::optional<process> portal;

  explicit running_portal(std::string bin) : binary(std::move(bin)) {
    // The ports are free when chosen; if someone takes one before the portal binds it, try again.
    for (int attempt = 1; attempt <= 3 && !portal; ++attempt) {
      port = free_loopback_port(SOCK_STREAM);
      admin_port = free_loopback_port(SOCK_STREAM);
      REQUIRE(port != 0);
      REQUIRE(admin_port != 0);
      portal.emplace(std::vector<std::string>{binary, "portal", "--data-dir", data.string(), "--listen",
                                              "127.0.0.1:" + std::to_string(port), "--admin-listen",
                                              "127.0.0.1:" + std::to_string(admin_port)},
                     dir / ("portal-" + std::to_string(attempt) + ".log"));
      const bool up = wait_until(
          [&] {
            return !portal->alive() || (std::filesystem::exists(data / "admin-token") &&
                                        std::filesystem::exists(ca_file()) && accepts_connections(port) &&
                                        accepts_connections(admin_port));
          },
          20s);
      if (up && portal->alive()) break;
      // Still running but not ready after 20 s, or exited (a port taken?): only the latter is worth a retry.
      const bool exited = !portal->alive();
      const auto log = portal->log();
      portal->terminate();
      if (attempt == 3 || !exited) FAIL("the portal did not come up:\n" << log);
      MESSAGE("the portal did not start (a port was taken?); retrying:\n" << log);
      portal.reset();
    }
  }

  [[nodiscard]] std::filesystem::path ca_file() const { return data / "tls" / "ca-cert.pem"; }
  [[nodiscard]] std::string url() const { return "wss://127.0.0.1:" + std::to_string(port) + "/socket/websocket"; }

  /// `firebreak admin --json ARGS...`: the JSON object it prints.
  json admin(std::vector<std::string> args) {
    std::vector<std::string> argv{binary,       "admin", "--portal", "127.0.0.1:" + std::to_string(admin_port),
                                  "--token-file", (data / "admin-token").string(), "--json"};
    std::string shown;
    for (const auto& a : args) shown += " " + a;
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = capture(argv, 30s);
    REQUIRE_MESSAGE(r.ok(), "firebreak admin" << shown << " failed (" << r.exit_code << "):\n" << r.output);
    // stdout and stderr arrive interleaved: the answer is the line holding a JSON object.
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);) {
      if (line.empty() || line.front() != '{') continue;
      auto parsed = json::parse(line, nullptr, false);
      if (parsed.is_object()) return parsed;
    }
    FAIL("firebreak admin" << shown << " printed no JSON object:\n" << r.output);
    return {};
  }

  /// The created item's "id".
  std::string create(std::vector<std::string> args) {
    auto made = admin(std::move(args));
    REQUIRE_MESSAGE(made.contains("id"), "no id in " << made.dump());
    return made.at("id").get<std::string>();
  }
};

}  // namespace

TEST_CASE("the phoenix JavaScript client joins \"client\", gets init, and is refused with a bad token") {
  const auto binary = firebreak_binary();
  if (binary.empty()) {
    MESSAGE("skipped: no firebreak binary (set FIREBREAK_BINARY or build the firebreak target)");
    return;
  }
  REQUIRE_MESSAGE(std::filesystem::exists(binary), "firebreak binary not found at " << binary);
  if (!executable_in_path("node") || !executable_in_path("npm")) {
    MESSAGE("skipped: node and npm are needed (Debian: apt-get install nodejs npm; deploy/install-deps.sh does it)");
    return;
  }

  // The client library, exactly as package-lock.json pins it.
  if (!std::filesystem::exists(package_dir / "node_modules" / "phoenix" / "package.json") ||
      !std::filesystem::exists(package_dir / "node_modules" / "ws" / "package.json")) {
    MESSAGE("npm ci in " << package_dir.string());
    auto r = capture({"npm", "ci", "--prefix", package_dir.string(), "--no-audit", "--no-fund"}, 240s);
    REQUIRE_MESSAGE(r.ok(), "npm ci failed in " << package_dir.string() << " (" << r.exit_code << "):\n" << r.output);
  }

  running_portal portal(binary);
  const auto site = portal.create({"sites", "create", "interop-site"});
  const auto user = portal.create({"users", "create", "ada", "--email", "ada@example.com"});
  const auto group = portal.create({"groups", "create", "engineers"});
  portal.admin({"groups", "add-member", group, user});
  const auto client = portal.admin({"clients", "create", "--user", user, "--name", "ada-laptop"});
  REQUIRE_MESSAGE(client.contains("token"), "clients create printed no token");
  const auto resource = portal.create({"resources", "create", "--site", site, "--name", "intranet", "--address",
                                       "10.0.0.0/24"});
  portal.create({"policies", "create", "--group", group, "--resource", resource});

  // The token goes through the environment, not the command line (where ps would show it).
  ::setenv("CLIENT_TOKEN", client.at("token").get<std::string>().c_str(), 1);
  auto r = capture({"node", (package_dir / "interop.mjs").string(), "--url", portal.url(), "--ca",
                    portal.ca_file().string(), "--resource", resource},
                   120s);
  ::unsetenv("CLIENT_TOKEN");
  MESSAGE("node interop.mjs:\n" << r.output);
  CHECK_MESSAGE(r.ok(), "the phoenix client checks failed (exit " << r.exit_code << (r.timed_out ? ", timed out" : "")
                                                                   << "); the portal's log:\n"
                                                                   << portal.portal->log());
  CHECK_MESSAGE(portal.portal->alive(), "the portal died during the test:\n" << portal.portal->log());
}
