// How `firebreak client` and `firebreak gateway` are configured.
//
// Each setting is taken from the first of these that gives it:
//   1. a command-line flag
//   2. an environment variable (how Nomad passes settings)
//   3. the TOML file named by --config FILE, or else by FIREBREAK_CONFIG
//   4. the default
// A list (local_addresses) is replaced as a whole by a higher source, never merged with a lower one.
// An environment variable set to the empty string counts as unset, except FIREBREAK_TOKEN: an empty
// token there is an error, because it usually means a secret failed to render.
//
//   TOML key           environment variable          flag                    default
//   portal_url         FIREBREAK_PORTAL_URL          --portal-url URL        required; wss://host[:port], port 443
//                                                                            if left out; host a name, an IPv4
//                                                                            address or a [bracketed] IPv6 one
//   portal_ca_file     FIREBREAK_PORTAL_CA_FILE      --portal-ca-file FILE   empty: the system trust store
//   token_file         FIREBREAK_TOKEN_FILE          --token-file FILE       } one of the two is required; the
//   (none)             FIREBREAK_TOKEN               (none)                  } token itself is never a flag (`ps`
//                                                                              shows command lines) nor a TOML key
//   key_file           FIREBREAK_KEY_FILE            --key-file FILE         /var/lib/firebreak/<role>.key
//   interface          FIREBREAK_INTERFACE           --interface NAME        fb-<role>
//   status_socket      FIREBREAK_STATUS_SOCKET       --status-socket PATH    /run/firebreak/<role>.sock
//   log_level          FIREBREAK_LOG_LEVEL           --log-level LEVEL       info (trace, debug, info, warn, error)
//   local_addresses    FIREBREAK_LOCAL_ADDRESSES     --local-address IP      none; the environment separates them
//                      (comma separated)             (repeatable)            with commas
//   relay_only         FIREBREAK_RELAY_ONLY          --relay-only            false
//   manage_forwarding  FIREBREAK_MANAGE_FORWARDING   --manage-forwarding,    true; gateway only: it turns on IP
//                                                    --no-manage-forwarding  forwarding and an nftables masquerade
//   goodbye            FIREBREAK_GOODBYE             --goodbye,              true: a closing connection tells its
//                                                    --no-goodbye            peer through the tunnel
//   trace              FIREBREAK_TRACE               --trace, --no-trace     false: record the actor trace from
//                                                                            the start (SIGUSR1 or `<role> trace
//                                                                            on|off` switch it at run time)
//   trace_file         FIREBREAK_TRACE_FILE          --trace-file FILE       /var/log/firebreak/<role>.trace.jsonl
//   health_listen      FIREBREAK_HEALTH_LISTEN       --health-listen         none (off): plain HTTP /healthz and
//                                                    ADDRESS:PORT            /metrics ([v6]:port for IPv6)
//   data_threads       FIREBREAK_DATA_THREADS        --data-threads N        the number of cores, at most 8:
//                      (TOML: an integer)                                    threads sealing (TUN queues) and
//                                                                            opening (ICE loops), 1 to 64
//   (the file itself)  FIREBREAK_CONFIG              --config FILE           none
//
// Booleans in the environment are true/false, 1/0 or yes/no, in any case. A token file is read whole
// and trimmed of trailing whitespace. The key file need not exist yet: the daemon creates it.
// Relative paths are taken from the working directory, wherever they were written.
//
// Every mistake is refused, none ignored: an unknown TOML key (a typo), a TOML value of the wrong
// type, a malformed value in any source, even one a higher source overrides. The error names the
// setting as the user wrote it ("client.toml: portal_url", "FIREBREAK_RELAY_ONLY", "--portal-url").
// The token never appears in an error or in describe(). Nothing here logs.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string_view>
#include <utility>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "config/wg_quick.hpp"  // config_error, shared with the wg-quick loader

namespace CLI {
class App;
}

namespace firebreak::config {

enum class node_role { client, gateway };

struct node_config {
  node_role role = node_role::client;
  std::string portal_url;       // as written
  std::string portal_host;      // a name, or an IP address (IPv6 without its brackets)
  std::uint16_t portal_port = 443;
  std::string portal_ca_file;   // empty: the system trust store
  std::string token_file;       // empty when the token came from FIREBREAK_TOKEN
  std::string token;            // secret
  std::string key_file;
  std::string interface;
  std::string status_socket;
  std::string log_level = "info";
  std::vector<std::string> local_addresses;  // IP addresses as written
  bool relay_only = false;
  bool manage_forwarding = true;  // read for the gateway only
  bool goodbye = true;            // closing a connection sends the peer a goodbye
  bool trace = false;             // record the actor trace from the start
  std::string trace_file;         // where the actor trace goes (rotated beside it)
  std::string health_address;     // /healthz and /metrics: an IP address (IPv6 without brackets)
  std::uint16_t health_port = 0;  // 0: not served
  unsigned data_threads = 0;      // 0: one per core, at most 8
  std::string config_file;        // the TOML file read, as named; empty if none
};

// Errors are the config_error of config/wg_quick.hpp. This loader sets `key` (the setting as the user
// wrote it; for a TOML key or a syntax error it includes the file name) and `message` (one sentence:
// what is wrong and what is expected), and leaves `file` and `line` unset: print describe(error).

/// Registers every flag on `app` (the role's CLI11 subcommand), each with help text naming its
/// environment variable, its TOML key and its default, and appends the precedence rules to the footer.
/// The loader holds where CLI11 writes the flags' values: keep it alive until load() has run.
class node_config_loader {
 public:
  node_config_loader(node_role role, CLI::App& app);
  ~node_config_loader();
  node_config_loader(node_config_loader&&) noexcept;
  node_config_loader& operator=(node_config_loader&&) noexcept;

  /// After app.parse(): merges flags > env > file > defaults. `env` is the environment (tests pass
  /// their own; the daemon passes environment_of(environ)). Reads the TOML file and the token file.
  [[nodiscard]] std::variant<node_config, config_error> load(const std::map<std::string, std::string>& env) const;

 private:
  struct flags;
  node_role role_;
  std::unique_ptr<flags> flags_;
};

/// "NAME=value" entries into a map; the first of repeated names wins, as with getenv. Null gives {}.
std::map<std::string, std::string> environment_of(char** envp);

/// A one-line description for the startup log, without the token.
std::string describe(const node_config& config);

/// "KEY: message", e.g. `FIREBREAK_RELAY_ONLY: expected true or false, got "maybe"`.
std::string describe(const config_error& error);

/// "client" or "gateway".
const char* name_of(node_role role);

/// "ADDRESS:PORT" (IPv4, or [IPv6]) → the address without brackets and a port from 1 to 65535.
std::optional<std::pair<std::string, std::uint16_t>> parse_listen(std::string_view text);
/// The other way: "address:port", an IPv6 address in brackets.
std::string listen_text(const std::string& address, std::uint16_t port);

}  // namespace firebreak::config
