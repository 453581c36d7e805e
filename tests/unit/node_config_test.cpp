// The client's and gateway's settings: defaults per role, a TOML file, the environment and flags in
// that order of strength, the token from FIREBREAK_TOKEN or a file (and never in a message), and
// every way to get a value wrong, each refused with the setting named as the user wrote it.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include <CLI/CLI.hpp>

#include "config/node_config.hpp"
#include "tests/support/local_machine.hpp"

using namespace firebreak::config;
using env_map = std::map<std::string, std::string>;

namespace {

constexpr const char* token = "fbt_9Qm2vX7LrT4kWzA1-enrollment-secret";

/// `firebreak <role> args...` parsed as the binary parses it, then loaded with `env`.
std::variant<node_config, config_error> load(node_role role, std::vector<std::string> args, const env_map& env) {
  CLI::App top{"firebreak"};
  CLI::App* sub = top.add_subcommand(name_of(role));
  node_config_loader loader(role, *sub);
  args.insert(args.begin(), {"firebreak", name_of(role)});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  top.parse(static_cast<int>(argv.size()), argv.data());
  return loader.load(env);
}

node_config loaded(node_role role, std::vector<std::string> args, const env_map& env) {
  auto r = load(role, std::move(args), env);
  if (auto* e = std::get_if<config_error>(&r)) FAIL("refused: " << describe(*e));
  return std::get<node_config>(r);
}

config_error refused(node_role role, std::vector<std::string> args, const env_map& env) {
  auto r = load(role, std::move(args), env);
  if (auto* c = std::get_if<node_config>(&r)) FAIL("accepted: " << describe(*c));
  const auto e = std::get<config_error>(r);
  INFO(describe(e));
  CHECK(e.key.find(token) == std::string::npos);
  CHECK(e.message.find(token) == std::string::npos);
  CHECK_FALSE(e.message.empty());
  return e;
}

std::string write(const firebreak::test::temp_directory& dir, const std::string& name, const std::string& text) {
  const std::string path = (dir / name).string();
  std::ofstream(path) << text;
  return path;
}

/// The least a node needs: a portal and a token.
env_map minimal_env() { return {{"FIREBREAK_PORTAL_URL", "wss://portal.example.com"}, {"FIREBREAK_TOKEN", token}}; }

env_map with(env_map env, const std::string& name, const std::string& value) {
  env[name] = value;
  return env;
}

}  // namespace

// ---- defaults and precedence -------------------------------------------------------------------------

TEST_CASE("a client and a gateway each get their own defaults") {
  const auto client = loaded(node_role::client, {}, minimal_env());
  CHECK(client.role == node_role::client);
  CHECK(client.portal_url == "wss://portal.example.com");
  CHECK(client.portal_host == "portal.example.com");
  CHECK(client.portal_port == 443);
  CHECK(client.portal_ca_file.empty());
  CHECK(client.token == token);
  CHECK(client.token_file.empty());
  CHECK(client.key_file == "/var/lib/firebreak/client.key");
  CHECK(client.interface == "fb-client");
  CHECK(client.status_socket == "/run/firebreak/client.sock");
  CHECK(client.log_level == "info");
  CHECK(client.local_addresses.empty());
  CHECK_FALSE(client.relay_only);
  CHECK(client.config_file.empty());

  const auto gateway = loaded(node_role::gateway, {}, minimal_env());
  CHECK(gateway.role == node_role::gateway);
  CHECK(gateway.key_file == "/var/lib/firebreak/gateway.key");
  CHECK(gateway.interface == "fb-gateway");
  CHECK(gateway.status_socket == "/run/firebreak/gateway.sock");
  CHECK(gateway.manage_forwarding);
  CHECK_FALSE(gateway.relay_only);
}

TEST_CASE("a TOML file alone configures a gateway, named by --config or by FIREBREAK_CONFIG") {
  firebreak::test::temp_directory dir;
  const auto token_path = write(dir, "token", std::string(token) + "\n\n  \t\n");
  const auto ca_path = write(dir, "ca.pem", "-----BEGIN CERTIFICATE-----\n");
  const auto toml = write(dir, "gateway.toml",
                          "# written by hand\n"
                          "portal_url = \"wss://portal.example.com:8443\"\n"
                          "portal_ca_file = \"" + ca_path + "\"\n"
                          "token_file = \"" + token_path + "\"\n"
                          "key_file = \"/srv/gw.key\"\n"
                          "interface = \"tun-gw\"\n"
                          "status_socket = \"/srv/gw.sock\"\n"
                          "log_level = \"debug\"\n"
                          "local_addresses = [\"192.0.2.10\", \"2001:db8::10\"]\n"
                          "relay_only = true\n"
                          "manage_forwarding = false\n");

  for (const auto& [args, env] : {std::pair{std::vector<std::string>{"--config", toml}, env_map{}},
                                  std::pair{std::vector<std::string>{}, env_map{{"FIREBREAK_CONFIG", toml}}}}) {
    const auto c = loaded(node_role::gateway, args, env);
    CHECK(c.config_file == toml);
    CHECK(c.portal_url == "wss://portal.example.com:8443");
    CHECK(c.portal_host == "portal.example.com");
    CHECK(c.portal_port == 8443);
    CHECK(c.portal_ca_file == ca_path);
    CHECK(c.token_file == token_path);
    CHECK(c.token == token);  // trailing newlines and blanks trimmed
    CHECK(c.key_file == "/srv/gw.key");
    CHECK(c.interface == "tun-gw");
    CHECK(c.status_socket == "/srv/gw.sock");
    CHECK(c.log_level == "debug");
    CHECK(c.local_addresses == std::vector<std::string>{"192.0.2.10", "2001:db8::10"});
    CHECK(c.relay_only);
    CHECK_FALSE(c.manage_forwarding);
  }
}

TEST_CASE("the environment beats the file, and the file still gives what the environment does not") {
  firebreak::test::temp_directory dir;
  const auto toml = write(dir, "client.toml",
                          "portal_url = \"wss://file.example.com\"\n"
                          "interface = \"fb-file\"\n"
                          "status_socket = \"/srv/file.sock\"\n"
                          "log_level = \"debug\"\n"
                          "local_addresses = [\"192.0.2.1\", \"192.0.2.2\", \"192.0.2.3\"]\n"
                          "relay_only = false\n");
  env_map env{{"FIREBREAK_CONFIG", toml},
              {"FIREBREAK_TOKEN", token},
              {"FIREBREAK_PORTAL_URL", "wss://env.example.com:444"},
              {"FIREBREAK_LOG_LEVEL", "warn"},
              {"FIREBREAK_LOCAL_ADDRESSES", "10.0.0.1, fd00::1"},
              {"FIREBREAK_RELAY_ONLY", "YES"},
              {"FIREBREAK_INTERFACE", ""}};  // empty: as if unset
  const auto c = loaded(node_role::client, {}, env);
  CHECK(c.portal_host == "env.example.com");
  CHECK(c.portal_port == 444);
  CHECK(c.log_level == "warn");
  CHECK(c.local_addresses == std::vector<std::string>{"10.0.0.1", "fd00::1"});  // replaced, not merged
  CHECK(c.relay_only);
  CHECK(c.interface == "fb-file");
  CHECK(c.status_socket == "/srv/file.sock");
}

TEST_CASE("a flag beats the environment") {
  env_map env = minimal_env();
  env["FIREBREAK_LOG_LEVEL"] = "warn";
  env["FIREBREAK_LOCAL_ADDRESSES"] = "10.0.0.1";
  env["FIREBREAK_RELAY_ONLY"] = "true";
  env["FIREBREAK_MANAGE_FORWARDING"] = "1";
  env["FIREBREAK_KEY_FILE"] = "/env/key";
  const auto c = loaded(node_role::gateway,
                        {"--portal-url", "wss://[2001:db8::1]:9443", "--log-level", "error", "--local-address",
                         "192.0.2.7", "--local-address", "2001:db8::7", "--relay-only=false",
                         "--no-manage-forwarding"},
                        env);
  CHECK(c.portal_url == "wss://[2001:db8::1]:9443");
  CHECK(c.portal_host == "2001:db8::1");
  CHECK(c.portal_port == 9443);
  CHECK(c.log_level == "error");
  CHECK(c.local_addresses == std::vector<std::string>{"192.0.2.7", "2001:db8::7"});
  CHECK_FALSE(c.relay_only);
  CHECK_FALSE(c.manage_forwarding);
  CHECK(c.key_file == "/env/key");  // no flag: the environment's

  const auto on = loaded(node_role::client, {"--relay-only"}, with(minimal_env(), "FIREBREAK_RELAY_ONLY", "no"));
  CHECK(on.relay_only);
}

TEST_CASE("a value a higher source overrides is still checked") {
  auto e = refused(node_role::client, {"--log-level", "debug"}, with(minimal_env(), "FIREBREAK_LOG_LEVEL", "loud"));
  CHECK(e.key == "FIREBREAK_LOG_LEVEL");
}

TEST_CASE("the portal URL is required") {
  auto e = refused(node_role::client, {}, {{"FIREBREAK_TOKEN", token}});
  CHECK(e.key == "--portal-url");
  CHECK(e.message.find("FIREBREAK_PORTAL_URL") != std::string::npos);
}

// ---- the token ---------------------------------------------------------------------------------------

TEST_CASE("the token comes from FIREBREAK_TOKEN or from a token file, never from a flag") {
  firebreak::test::temp_directory dir;
  const auto file = write(dir, "token", "from-the-file-0123456789 \r\n");
  const env_map url{{"FIREBREAK_PORTAL_URL", "wss://portal.example.com"}};

  SUBCASE("from the environment") {
    const auto c = loaded(node_role::client, {}, with(url, "FIREBREAK_TOKEN", token));
    CHECK(c.token == token);
    CHECK(c.token_file.empty());
  }
  SUBCASE("from a file named in the environment, trailing whitespace trimmed") {
    const auto c = loaded(node_role::client, {}, with(url, "FIREBREAK_TOKEN_FILE", file));
    CHECK(c.token == "from-the-file-0123456789");
    CHECK(c.token_file == file);
  }
  SUBCASE("--token-file beats FIREBREAK_TOKEN") {
    const auto c = loaded(node_role::client, {"--token-file", file}, with(url, "FIREBREAK_TOKEN", token));
    CHECK(c.token == "from-the-file-0123456789");
  }
  SUBCASE("FIREBREAK_TOKEN beats token_file in the file") {
    const auto toml = write(dir, "c.toml", "token_file = \"" + file + "\"\n");
    const auto c = loaded(node_role::client, {"--config", toml}, with(url, "FIREBREAK_TOKEN", token));
    CHECK(c.token == token);
  }
  SUBCASE("there is no --token flag") {
    CLI::App top;
    CLI::App* sub = top.add_subcommand("client");
    node_config_loader loader(node_role::client, *sub);
    CHECK(sub->get_option_no_throw("--token") == nullptr);
    CHECK(sub->get_option_no_throw("--token-file") != nullptr);
  }
}

TEST_CASE("a missing, empty or doubly given token is refused") {
  firebreak::test::temp_directory dir;
  const env_map url{{"FIREBREAK_PORTAL_URL", "wss://portal.example.com"}};

  SUBCASE("none at all") {
    auto e = refused(node_role::client, {}, url);
    CHECK(e.message.find("FIREBREAK_TOKEN") != std::string::npos);
    CHECK(e.message.find("--token-file") != std::string::npos);
  }
  SUBCASE("FIREBREAK_TOKEN set but empty") {
    CHECK(refused(node_role::client, {}, with(url, "FIREBREAK_TOKEN", "")).key == "FIREBREAK_TOKEN");
  }
  SUBCASE("a token file with only whitespace") {
    const auto file = write(dir, "token", " \n\n");
    auto e = refused(node_role::client, {"--token-file", file}, url);
    CHECK(e.key == "--token-file");
    CHECK(e.message.find("empty") != std::string::npos);
  }
  SUBCASE("a token file that does not exist") {
    auto e = refused(node_role::client, {}, with(url, "FIREBREAK_TOKEN_FILE", (dir / "absent").string()));
    CHECK(e.key == "FIREBREAK_TOKEN_FILE");
    CHECK(e.message.find("No such file") != std::string::npos);
  }
  SUBCASE("both FIREBREAK_TOKEN and FIREBREAK_TOKEN_FILE") {
    const auto file = write(dir, "token", "x");
    auto e = refused(node_role::client, {}, with(with(url, "FIREBREAK_TOKEN", token), "FIREBREAK_TOKEN_FILE", file));
    CHECK(e.key == "FIREBREAK_TOKEN_FILE");
  }
  SUBCASE("a token in the TOML file") {
    const auto toml = write(dir, "c.toml", std::string("token = \"") + token + "\"\n");
    auto e = refused(node_role::client, {"--config", toml}, url);
    CHECK(e.key == toml + ": token");
    CHECK(e.message.find("token_file") != std::string::npos);
  }
}

TEST_CASE("the token appears in no error message and not in describe()") {
  firebreak::test::temp_directory dir;
  const auto file = write(dir, "token", std::string(token) + "\n");
  // refused() checks every error against the token; here the token is also pasted where it does not belong.
  for (const env_map& env : {
           with(minimal_env(), "FIREBREAK_RELAY_ONLY", token),
           with(minimal_env(), "FIREBREAK_LOG_LEVEL", std::string("x") + token + "x"),
           with(minimal_env(), "FIREBREAK_INTERFACE", token),
           with(minimal_env(), "FIREBREAK_LOCAL_ADDRESSES", token),
           with(minimal_env(), "FIREBREAK_PORTAL_URL", std::string("wss://") + token + ":0"),
           with(minimal_env(), "FIREBREAK_PORTAL_URL", std::string("wss://user:") + token + "@portal.example.com"),
           with(minimal_env(), "FIREBREAK_PORTAL_CA_FILE", std::string("/nonexistent/") + token),
           with(with(minimal_env(), "FIREBREAK_TOKEN_FILE", file), "FIREBREAK_INTERFACE", "bad/name"),
       }) {
    refused(node_role::client, {}, env);
  }
  // Cut short in a message, a token is no longer whole, so nothing after the fact could find it.
  auto cut = refused(node_role::client, {}, with(minimal_env(), "FIREBREAK_LOG_LEVEL", std::string(70, 'x') + token));
  CHECK(cut.message.find(std::string(token).substr(0, 8)) == std::string::npos);
  // The token only in the file, pasted into a flag:
  refused(node_role::client, {"--token-file", file, "--interface", token},
          {{"FIREBREAK_PORTAL_URL", "wss://portal.example.com"}});

  // A token is a fine host name: accepted, but describe() still leaves it out.
  const auto as_host = loaded(node_role::client, {}, with(minimal_env(), "FIREBREAK_PORTAL_URL", std::string("wss://") + token));
  CHECK(as_host.portal_host == token);
  CHECK(describe(as_host).find(token) == std::string::npos);

  const auto from_env = loaded(node_role::gateway, {}, minimal_env());
  CHECK(describe(from_env).find(token) == std::string::npos);
  CHECK(describe(from_env).find("FIREBREAK_TOKEN") != std::string::npos);
  const auto from_file = loaded(node_role::client, {"--token-file", file}, {{"FIREBREAK_PORTAL_URL", "wss://p.example"}});
  CHECK(from_file.token == token);
  CHECK(describe(from_file).find(token) == std::string::npos);
  CHECK(describe(from_file).find(file) != std::string::npos);
}

// ---- the TOML file -----------------------------------------------------------------------------------

TEST_CASE("an unknown TOML key is refused, naming it and the likely setting") {
  firebreak::test::temp_directory dir;
  const auto typo = write(dir, "client.toml", "log_level = \"info\"\nportal_ulr = \"wss://p.example\"\n");
  auto e = refused(node_role::client, {"--config", typo}, minimal_env());
  CHECK(e.key == typo + ": portal_ulr");
  CHECK(e.message.find("line 2") != std::string::npos);
  CHECK(e.message.find("did you mean portal_url?") != std::string::npos);

  const auto table = write(dir, "table.toml", "[portal]\nurl = \"wss://p.example\"\n");
  CHECK(refused(node_role::client, {"--config", table}, minimal_env()).key == table + ": portal");

  // A gateway setting in a client's file is a mistake too; in a gateway's file it is fine.
  const auto gateway_only = write(dir, "gw.toml", "manage_forwarding = false\n");
  auto g = refused(node_role::client, {"--config", gateway_only}, minimal_env());
  CHECK(g.key == gateway_only + ": manage_forwarding");
  CHECK(g.message.find("gateway") != std::string::npos);
  CHECK_FALSE(loaded(node_role::gateway, {"--config", gateway_only}, minimal_env()).manage_forwarding);
}

TEST_CASE("a TOML value of the wrong type is refused, naming the key and the expected type") {
  firebreak::test::temp_directory dir;
  struct wrong {
    const char* text;
    const char* key;
    const char* expected;
  };
  for (const auto& w : {wrong{"relay_only = \"yes\"\n", "relay_only", "expected a boolean (true or false), got a string"},
                        wrong{"portal_url = 443\n", "portal_url", "expected a string, got an integer"},
                        wrong{"local_addresses = \"10.0.0.1\"\n", "local_addresses", "expected an array of strings, got a string"},
                        wrong{"local_addresses = [\"10.0.0.1\", 7]\n", "local_addresses", "entry 2 is an integer"}}) {
    const auto toml = write(dir, "c.toml", w.text);
    auto e = refused(node_role::client, {"--config", toml}, minimal_env());
    CHECK(e.key == toml + ": " + w.key);
    CHECK(e.message.find(w.expected) != std::string::npos);
    CHECK(e.message.find("line 1") != std::string::npos);
  }
}

TEST_CASE("a TOML syntax error names the file, the line and the column") {
  firebreak::test::temp_directory dir;
  const auto toml = write(dir, "client.toml",
                          "portal_url = \"wss://portal.example.com\"\n"
                          "log_level = \"debug\"\n"
                          "interface = fb-x\n");
  auto e = refused(node_role::client, {}, with(minimal_env(), "FIREBREAK_CONFIG", toml));
  CHECK(e.key == toml);
  CHECK(e.message.find("line 3, column") != std::string::npos);
}

TEST_CASE("a bad value in the file is refused with its key and line") {
  firebreak::test::temp_directory dir;
  const auto toml = write(dir, "client.toml", "\n\nlog_level = \"verbose\"\n");
  auto e = refused(node_role::client, {"--config", toml}, minimal_env());
  CHECK(e.key == toml + ": log_level");
  CHECK(e.message == "expected trace, debug, info, warn or error, got \"verbose\" (line 3)");
}

TEST_CASE("a configuration file that cannot be read is refused, naming how it was named") {
  firebreak::test::temp_directory dir;
  CHECK(refused(node_role::client, {"--config", (dir / "absent.toml").string()}, minimal_env()).key == "--config");
  CHECK(refused(node_role::client, {}, with(minimal_env(), "FIREBREAK_CONFIG", dir.path().string())).key ==
        "FIREBREAK_CONFIG");
}

// ---- values ------------------------------------------------------------------------------------------

TEST_CASE("portal URLs: wss with a name, an IPv4 or a bracketed IPv6 host, and an optional port") {
  struct good {
    const char* url;
    const char* host;
    std::uint16_t port;
  };
  for (const auto& g : {good{"wss://portal.example.com", "portal.example.com", 443},
                        good{"WSS://Portal.Example.com:8443", "Portal.Example.com", 8443},
                        good{"wss://192.0.2.1:1", "192.0.2.1", 1},
                        good{"wss://[2001:db8::1]", "2001:db8::1", 443},
                        good{"wss://[::1]:65535", "::1", 65535},
                        good{"wss://localhost", "localhost", 443}}) {
    CAPTURE(g.url);
    const auto c = loaded(node_role::client, {"--portal-url", g.url}, minimal_env());
    CHECK(c.portal_host == g.host);
    CHECK(c.portal_port == g.port);
  }

  for (const char* bad : {"http://portal.example.com", "ws://portal.example.com", "portal.example.com",
                          "wss://portal.example.com:0", "wss://portal.example.com:65536", "wss://portal.example.com:",
                          "wss://portal.example.com:https", "wss://:443", "wss://", "wss://portal.example.com/socket",
                          "wss://2001:db8::1", "wss://[2001:db8::1", "wss://[not-v6]:443", "wss://300.1.1.1",
                          "wss://bad_-.example..com", "wss://portal example.com"}) {
    CAPTURE(bad);
    auto e = refused(node_role::client, {}, with(minimal_env(), "FIREBREAK_PORTAL_URL", bad));
    CHECK(e.key == "FIREBREAK_PORTAL_URL");
    CHECK(e.message.find("expected wss://host[:port]") == 0);
  }

  auto e = refused(node_role::client, {"--portal-url", "wss://admin:hunter22@portal.example.com"}, minimal_env());
  CHECK(e.key == "--portal-url");
  CHECK(e.message.find("hunter22") == std::string::npos);
}

TEST_CASE("booleans in the environment: true/false, 1/0, yes/no in any case, and nothing else") {
  for (const auto& [text, value] : {std::pair{"true", true}, std::pair{"TRUE", true}, std::pair{"1", true},
                                    std::pair{"Yes", true}, std::pair{"false", false}, std::pair{"0", false},
                                    std::pair{"NO", false}}) {
    CAPTURE(text);
    CHECK(loaded(node_role::client, {}, with(minimal_env(), "FIREBREAK_RELAY_ONLY", text)).relay_only == value);
  }
  auto e = refused(node_role::client, {}, with(minimal_env(), "FIREBREAK_RELAY_ONLY", "maybe"));
  CHECK(describe(e) == "FIREBREAK_RELAY_ONLY: expected true or false, got \"maybe\"");
  CHECK(refused(node_role::gateway, {}, with(minimal_env(), "FIREBREAK_MANAGE_FORWARDING", "on")).key ==
        "FIREBREAK_MANAGE_FORWARDING");
}

TEST_CASE("local addresses must be IP addresses without a prefix") {
  firebreak::test::temp_directory dir;
  auto env = refused(node_role::client, {}, with(minimal_env(), "FIREBREAK_LOCAL_ADDRESSES", "10.0.0.1,10.0.0.300"));
  CHECK(env.key == "FIREBREAK_LOCAL_ADDRESSES");
  CHECK(env.message.find("\"10.0.0.300\"") != std::string::npos);

  auto flag = refused(node_role::client, {"--local-address", "10.0.0.0/24"}, minimal_env());
  CHECK(flag.key == "--local-address");
  CHECK(flag.message.find("without a prefix length") != std::string::npos);

  const auto toml = write(dir, "c.toml", "local_addresses = [\"fd00::1\", \"host.example\"]\n");
  CHECK(refused(node_role::client, {"--config", toml}, minimal_env()).key == toml + ": local_addresses");

  auto empty = refused(node_role::client, {}, with(minimal_env(), "FIREBREAK_LOCAL_ADDRESSES", "10.0.0.1,,10.0.0.2"));
  CHECK(empty.message.find("entry 2 is empty") != std::string::npos);
}

TEST_CASE("interface names follow the kernel's rules") {
  CHECK(loaded(node_role::client, {"--interface", "fifteen-chars-x"}, minimal_env()).interface == "fifteen-chars-x");
  for (const char* bad : {"sixteen-chars-xx", "a/b", "a b", "tab\tname", ".", "..", "eth0:1", ""}) {
    CAPTURE(bad);
    auto e = refused(node_role::client, {"--interface", bad}, minimal_env());
    CHECK(e.key == "--interface");
    CHECK(e.message.find("expected a Linux interface name") == 0);
  }
}

TEST_CASE("the portal CA file must be readable when given") {
  firebreak::test::temp_directory dir;
  const auto ca = write(dir, "ca.pem", "pem");
  CHECK(loaded(node_role::client, {"--portal-ca-file", ca}, minimal_env()).portal_ca_file == ca);
  auto e = refused(node_role::client, {"--portal-ca-file", (dir / "absent.pem").string()}, minimal_env());
  CHECK(e.key == "--portal-ca-file");
  CHECK(e.message.find("system trust store") != std::string::npos);
}

TEST_CASE("a status socket path must fit in a sockaddr_un") {
  CHECK(refused(node_role::client, {"--status-socket", "/run/" + std::string(120, 's')}, minimal_env()).key ==
        "--status-socket");
}

// ---- help and the environment -----------------------------------------------------------------------

TEST_CASE("--help names every environment variable, TOML key and default") {
  for (const auto role : {node_role::client, node_role::gateway}) {
    CLI::App top{"firebreak"};
    CLI::App* sub = top.add_subcommand(name_of(role));
    node_config_loader loader(role, *sub);
    const std::string help = sub->help();
    CAPTURE(help);
    for (const char* text :
         {"FIREBREAK_PORTAL_URL", "FIREBREAK_PORTAL_CA_FILE", "FIREBREAK_TOKEN_FILE", "FIREBREAK_TOKEN,",
          "FIREBREAK_KEY_FILE", "FIREBREAK_INTERFACE", "FIREBREAK_STATUS_SOCKET", "FIREBREAK_LOG_LEVEL",
          "FIREBREAK_LOCAL_ADDRESSES", "FIREBREAK_RELAY_ONLY", "FIREBREAK_CONFIG", "TOML portal_url",
          "TOML portal_ca_file", "TOML token_file", "TOML key_file", "TOML interface", "TOML status_socket",
          "TOML log_level", "TOML local_addresses", "TOML relay_only", "--portal-url", "--local-address",
          "--relay-only", "--config"}) {
      CHECK_MESSAGE(help.find(text) != std::string::npos, text);
    }
    const std::string role_name = name_of(role);
    CHECK(help.find("default: /var/lib/firebreak/" + role_name + ".key") != std::string::npos);
    CHECK(help.find("default: fb-" + role_name) != std::string::npos);
    CHECK(help.find("default: /run/firebreak/" + role_name + ".sock") != std::string::npos);
    CHECK(help.find("default: info") != std::string::npos);
    const bool gateway = role == node_role::gateway;
    CHECK((help.find("FIREBREAK_MANAGE_FORWARDING") != std::string::npos) == gateway);
    CHECK((help.find("--no-manage-forwarding") != std::string::npos) == gateway);
  }
}

TEST_CASE("environment_of splits NAME=value entries, the first of a repeated name winning") {
  std::string a = "FIREBREAK_TOKEN=abc=def", b = "EMPTY=", c = "NO_EQUALS", d = "FIREBREAK_TOKEN=second";
  char* envp[] = {a.data(), b.data(), c.data(), d.data(), nullptr};
  const auto env = environment_of(envp);
  CHECK(env == env_map{{"FIREBREAK_TOKEN", "abc=def"}, {"EMPTY", ""}});
  CHECK(environment_of(nullptr).empty());
}

TEST_CASE("goodbyes are on unless switched off, by flag, environment or file") {
  CHECK(loaded(node_role::client, {}, minimal_env()).goodbye);
  CHECK(loaded(node_role::gateway, {}, minimal_env()).goodbye);
  CHECK_FALSE(loaded(node_role::gateway, {"--no-goodbye"}, minimal_env()).goodbye);
  CHECK_FALSE(loaded(node_role::client, {}, with(minimal_env(), "FIREBREAK_GOODBYE", "no")).goodbye);
  CHECK(loaded(node_role::client, {"--goodbye"}, with(minimal_env(), "FIREBREAK_GOODBYE", "false")).goodbye);
  firebreak::test::temp_directory dir;
  const auto file = write(dir, "gw.toml", "goodbye = false\n");
  CHECK_FALSE(loaded(node_role::gateway, {"--config", file}, minimal_env()).goodbye);
  CHECK(refused(node_role::client, {}, with(minimal_env(), "FIREBREAK_GOODBYE", "maybe")).key == "FIREBREAK_GOODBYE");
}

TEST_CASE("the health listener is off unless given, and must be an address and a port") {
  CHECK(loaded(node_role::gateway, {}, minimal_env()).health_port == 0);
  const auto v4 = loaded(node_role::gateway, {"--health-listen", "127.0.0.1:9090"}, minimal_env());
  CHECK(v4.health_address == "127.0.0.1");
  CHECK(v4.health_port == 9090);
  const auto v6 = loaded(node_role::client, {}, with(minimal_env(), "FIREBREAK_HEALTH_LISTEN", "[::1]:9100"));
  CHECK(v6.health_address == "::1");
  CHECK(v6.health_port == 9100);
  CHECK(describe(v6).find("health_listen=[::1]:9100") != std::string::npos);
  firebreak::test::temp_directory dir;
  CHECK(loaded(node_role::gateway, {"--config", write(dir, "gw.toml", "health_listen = \"0.0.0.0:8080\"\n")}, minimal_env())
            .health_port == 8080);
  for (const char* bad : {"9090", "localhost:9090", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "::1:9090",
                          "127.0.0.1:90x", "[::1]9090", ""}) {
    CAPTURE(bad);
    auto e = refused(node_role::gateway, {"--health-listen", bad}, minimal_env());
    CHECK(e.key == "--health-listen");
    CHECK(e.message.find("expected ADDRESS:PORT") == 0);
  }
}

TEST_CASE("data threads: one per core unless given, 1 to 64, a TOML integer or a string") {
  const auto auto_threads = loaded(node_role::gateway, {}, minimal_env());
  CHECK(auto_threads.data_threads == 0);
  CHECK(describe(auto_threads).find("data_threads=(one per core)") != std::string::npos);
  CHECK(loaded(node_role::gateway, {"--data-threads", "4"}, minimal_env()).data_threads == 4);
  CHECK(loaded(node_role::client, {}, with(minimal_env(), "FIREBREAK_DATA_THREADS", "64")).data_threads == 64);
  firebreak::test::temp_directory dir;
  CHECK(loaded(node_role::gateway, {"--config", write(dir, "gw.toml", "data_threads = 3\n")}, minimal_env())
            .data_threads == 3);
  CHECK(loaded(node_role::gateway, {"--config", write(dir, "gw2.toml", "data_threads = \"2\"\n")}, minimal_env())
            .data_threads == 2);
  for (const char* bad : {"0", "65", "-1", "two", "1.5", "", "100"}) {
    CAPTURE(bad);
    auto e = refused(node_role::gateway, {"--data-threads", bad}, minimal_env());
    CHECK(e.key == "--data-threads");
    CHECK(e.message.find("expected a number of threads from 1 to 64") == 0);
  }
  auto e = refused(node_role::gateway, {"--config", write(dir, "gw3.toml", "data_threads = 0\n")}, minimal_env());
  CHECK(e.key.find("data_threads") != std::string::npos);
  auto b = refused(node_role::gateway, {"--config", write(dir, "gw4.toml", "data_threads = true\n")}, minimal_env());
  CHECK(b.message.find("expected an integer from 1 to 64") == 0);
}
