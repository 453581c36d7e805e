#include "config/node_config.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

#include <CLI/CLI.hpp>
#include <toml++/toml.h>

namespace firebreak::config {

namespace {

// ---- the settings table (the header's table, as data) ------------------------------------------

enum class setting {
  portal_url,
  portal_ca_file,
  token_file,
  key_file,
  interface,
  status_socket,
  log_level,
  local_addresses,
  relay_only,
  manage_forwarding,
  goodbye,
  trace,
  trace_file,
  health_listen,
  data_threads,
};
constexpr std::size_t setting_count = 15;

enum class value_kind { text, boolean, list };

struct setting_spec {
  setting id;
  std::string_view toml_key;
  std::string_view env_var;
  std::string_view flag;        // how errors name the flag
  std::string_view flag_names;  // what CLI11 registers (a boolean may have a negated form)
  std::string_view type_name;   // the placeholder in --help
  value_kind kind;
  bool gateway_only;
  std::string_view help;
  std::string_view default_help;  // when the default does not depend on the role
};

constexpr std::array<setting_spec, setting_count> specs{{
    {setting::portal_url, "portal_url", "FIREBREAK_PORTAL_URL", "--portal-url", "--portal-url", "URL",
     value_kind::text, false, "the portal, as wss://host[:port] (port 443 if left out)", "none (required)"},
    {setting::portal_ca_file, "portal_ca_file", "FIREBREAK_PORTAL_CA_FILE", "--portal-ca-file", "--portal-ca-file",
     "FILE", value_kind::text, false, "PEM file of the CA certificates that may sign the portal's certificate",
     "empty (the system trust store)"},
    {setting::token_file, "token_file", "FIREBREAK_TOKEN_FILE", "--token-file", "--token-file", "FILE",
     value_kind::text, false,
     "file holding the enrollment token (trailing whitespace ignored); or give the token itself in env "
     "FIREBREAK_TOKEN, never on the command line",
     "none (this or FIREBREAK_TOKEN is required)"},
    {setting::key_file, "key_file", "FIREBREAK_KEY_FILE", "--key-file", "--key-file", "FILE", value_kind::text, false,
     "this node's private key, created if absent", ""},
    {setting::interface, "interface", "FIREBREAK_INTERFACE", "--interface", "--interface", "NAME", value_kind::text,
     false, "the tunnel interface (1 to 15 characters)", ""},
    {setting::status_socket, "status_socket", "FIREBREAK_STATUS_SOCKET", "--status-socket", "--status-socket", "PATH",
     value_kind::text, false, "Unix socket answering status queries", ""},
    {setting::log_level, "log_level", "FIREBREAK_LOG_LEVEL", "--log-level", "--log-level", "LEVEL", value_kind::text,
     false, "trace, debug, info, warn or error", ""},
    {setting::local_addresses, "local_addresses", "FIREBREAK_LOCAL_ADDRESSES", "--local-address", "--local-address",
     "IP", value_kind::list, false,
     "an address of this host to offer peers (repeatable; comma separated in the env, an array in TOML)",
     "none"},
    {setting::relay_only, "relay_only", "FIREBREAK_RELAY_ONLY", "--relay-only", "--relay-only", "", value_kind::boolean,
     false, "connect through TURN relays only (env: true/false, 1/0, yes/no)", "false"},
    {setting::manage_forwarding, "manage_forwarding", "FIREBREAK_MANAGE_FORWARDING", "--manage-forwarding",
     "--manage-forwarding,!--no-manage-forwarding", "", value_kind::boolean, true,
     "turn on IP forwarding and an nftables masquerade for the resources (env: true/false, 1/0, yes/no)", "true"},
    {setting::goodbye, "goodbye", "FIREBREAK_GOODBYE", "--goodbye", "--goodbye,!--no-goodbye", "", value_kind::boolean,
     false,
     "say goodbye through the tunnel when closing a connection, so the peer drops it at once (env: true/false, "
     "1/0, yes/no)",
     "true"},
    {setting::trace, "trace", "FIREBREAK_TRACE", "--trace", "--trace,!--no-trace", "", value_kind::boolean, false,
     "record the actor trace from the start; SIGUSR1 or `trace on|off` switch it at run time (env: true/false, "
     "1/0, yes/no)",
     "false"},
    {setting::trace_file, "trace_file", "FIREBREAK_TRACE_FILE", "--trace-file", "--trace-file", "FILE",
     value_kind::text, false, "where the actor trace goes (JSON lines, rotated at 16 MiB into FILE.1 .. FILE.3)", ""},
    {setting::health_listen, "health_listen", "FIREBREAK_HEALTH_LISTEN", "--health-listen", "--health-listen",
     "ADDRESS:PORT", value_kind::text, false,
     "serve plain HTTP GET /healthz (200 when joined and serving, else 503) and /metrics (Prometheus) here",
     "none (off)"},
    {setting::data_threads, "data_threads", "FIREBREAK_DATA_THREADS", "--data-threads", "--data-threads", "N",
     value_kind::text, false,
     "threads that seal and open packets in each direction (TUN queues and ICE loops), 1 to 64",
     "the number of CPU cores, at most 8"},
}};

constexpr std::string_view config_env = "FIREBREAK_CONFIG";
constexpr std::string_view token_env = "FIREBREAK_TOKEN";
constexpr std::string_view config_flag = "--config";
constexpr const char* log_levels[] = {"trace", "debug", "info", "warn", "error"};

// A token is a short line; a file much larger than that was named by mistake.
constexpr std::size_t max_token_file_bytes = 64 * 1024;
constexpr std::size_t max_config_file_bytes = 1024 * 1024;
// sockaddr_un::sun_path is 108 bytes, terminating NUL included.
constexpr std::size_t max_socket_path_bytes = 107;

/// 1 to 64 threads, in decimal digits.
std::optional<unsigned> parse_threads(std::string_view text) {
  if (text.empty() || text.size() > 2 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return std::nullopt;
  const unsigned n = static_cast<unsigned>(std::stoul(std::string(text)));
  if (n < 1 || n > 64) return std::nullopt;
  return n;
}

constexpr std::size_t index_of(setting id) { return static_cast<std::size_t>(id); }

bool applies_to(const setting_spec& spec, node_role role) { return !spec.gateway_only || role == node_role::gateway; }

std::string default_text(setting id, node_role role) {
  const std::string role_name = name_of(role);
  switch (id) {
    case setting::key_file:
      return "/var/lib/firebreak/" + role_name + ".key";
    case setting::interface:
      return "fb-" + role_name;
    case setting::status_socket:
      return "/run/firebreak/" + role_name + ".sock";
    case setting::trace_file:
      return "/var/log/firebreak/" + role_name + ".trace.jsonl";
    case setting::log_level:
      return "info";
    default:
      return {};
  }
}

std::string help_text(const setting_spec& spec, node_role role) {
  std::string shown = default_text(spec.id, role);
  if (shown.empty()) shown = spec.default_help;
  return std::string(spec.help) + " [env " + std::string(spec.env_var) + ", TOML " + std::string(spec.toml_key) +
         ", default: " + shown + "]";
}

// ---- one source's values, before they are checked ------------------------------------------------

// A boolean from the environment stays text until it is checked, so its error can quote it.
using raw_value = std::variant<std::string, bool, std::vector<std::string>>;

struct given {
  raw_value value;
  std::string key;  // the setting as the user wrote it
  int line = 0;     // TOML only
};

using layer = std::array<std::optional<given>, setting_count>;

config_error error(std::string key, std::string message) {
  config_error e;
  e.key = std::move(key);
  e.message = std::move(message);
  return e;
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view text) {
  const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  return text;
}

std::string on_line(int line) { return line > 0 ? " (line " + std::to_string(line) + ")" : ""; }

std::string_view type_phrase(toml::node_type type) {
  switch (type) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    default:
      return "nothing";
  }
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

struct file_text {
  std::string text;
  std::string problem;  // empty when the file was read: else errno's words, or what is wrong with it
};

/// The whole of a small regular file, or why not.
file_text read_small_file(const std::string& path, std::size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {{}, std::strerror(errno)};
  struct stat st {};
  std::string problem;
  std::string text;
  if (::fstat(fd, &st) != 0) {
    problem = std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    problem = "not a regular file";
  } else if (static_cast<std::size_t>(st.st_size) > max_bytes) {
    problem = "larger than " + std::to_string(max_bytes) + " bytes";
  } else {
    text.resize(static_cast<std::size_t>(st.st_size));
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::read(fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        problem = std::strerror(errno);
        break;
      }
      if (n == 0) break;  // shrank while we read: take what is there
      done += static_cast<std::size_t>(n);
    }
    text.resize(done);
  }
  ::close(fd);
  if (!problem.empty()) return {{}, std::move(problem)};
  return {std::move(text), {}};
}

// ---- checks on single values: nullopt when fine, else the message --------------------------------

bool valid_ipv4(const std::string& text) {
  in_addr a{};
  return ::inet_pton(AF_INET, text.c_str(), &a) == 1;
}

bool valid_ipv6(const std::string& text) {
  in6_addr a{};
  return ::inet_pton(AF_INET6, text.c_str(), &a) == 1;
}

/// Letters, digits, '-' and '_' in dot-separated labels of 1..63; 253 in all.
bool valid_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  std::size_t start = 0;
  while (start <= host.size()) {
    std::size_t dot = host.find('.', start);
    if (dot == std::string_view::npos) dot = host.size();
    const std::string_view label = host.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    start = dot + 1;
  }
  return true;
}

bool valid_interface_name(std::string_view name) {
  // The kernel's own rule (dev_valid_name): it refuses ':' too, which alias names once used.
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  return std::none_of(name.begin(), name.end(), [](char c) {
    return c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c)) != 0;
  });
}

std::optional<bool> parse_bool(std::string_view text) {
  const std::string t = lowercase(text);
  if (t == "true" || t == "1" || t == "yes") return true;
  if (t == "false" || t == "0" || t == "no") return false;
  return std::nullopt;
}

struct portal_address {
  std::string host;
  std::uint16_t port = 443;
};

// ---- one load: the environment, the secrets known so far, and the sources in turn ---------------

class loading {
 public:
  loading(node_role role, const std::map<std::string, std::string>& environment) : role_(role), env_(environment) {
    if (auto t = env_.find(std::string(token_env)); t != env_.end() && !t->second.empty())
      secrets_.push_back(t->second);
  }

  /// Where a value is shown in a message: quoted, shortened, and never if it holds the token.
  std::string quote(std::string_view value) const {
    for (const auto& secret : secrets_) {
      if (value.find(secret) != std::string_view::npos || (value.size() >= 8 && secret.find(value) != std::string::npos))
        return "(a value holding the token, not shown)";
    }
    constexpr std::size_t max_shown = 80;
    std::string out = "\"";
    for (char c : value.substr(0, max_shown)) out += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
    return out + (value.size() > max_shown ? "...\"" : "\"");
  }

  /// Belt and braces: whatever a message says, the token is cut out of it.
  config_error redacted(config_error e) const {
    for (const auto& secret : secrets_) {
      if (secret.size() < 8) continue;  // too short to cut out without mangling the words around it
      for (std::string* text : {&e.key, &e.message}) {
        for (auto at = text->find(secret); at != std::string::npos; at = text->find(secret, at + 7))
          text->replace(at, secret.size(), "(token)");
      }
    }
    return e;
  }

  std::optional<std::string> env(std::string_view name) const {
    auto it = env_.find(std::string(name));
    if (it == env_.end() || it->second.empty()) return std::nullopt;
    return it->second;
  }

  // -- the TOML file --

  std::optional<config_error> read_file_layer(const std::string& path, const std::string& named_by, layer& out) const {
    if (path.empty()) return error(named_by, "expected the name of a TOML file, got an empty value");
    const auto read = read_small_file(path, max_config_file_bytes);
    if (!read.problem.empty())
      return error(named_by, "cannot read " + quote(path) + " (" + read.problem + "); expected a TOML file");
    toml::table table;
    try {
      table = toml::parse(std::string_view(read.text), std::string_view(path));
    } catch (const toml::parse_error& e) {
      return error(path, "invalid TOML at line " + std::to_string(e.source().begin.line) + ", column " +
                             std::to_string(e.source().begin.column) + ": " + std::string(e.description()));
    }
    // toml++ keeps keys sorted; report the first problem in the order the file was written.
    std::vector<std::pair<const toml::key*, const toml::node*>> entries;
    for (auto&& [k, v] : table) entries.emplace_back(&k, &v);
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.first->source().begin < b.first->source().begin; });
    for (const auto& [k, node] : entries) {
      if (auto e = read_toml_entry(path, k->str(), *node, static_cast<int>(k->source().begin.line), out)) return e;
    }
    return std::nullopt;
  }

  std::optional<config_error> read_toml_entry(const std::string& path, std::string_view name, const toml::node& node,
                                              int line, layer& out) const {
    const std::string key = path + ": " + std::string(name);
    const auto spec = std::find_if(specs.begin(), specs.end(), [&](const auto& s) { return s.toml_key == name; });
    if (name == "token")
      return error(key, "the token is never read from the configuration file; expected it in a file named by "
                        "token_file, or in FIREBREAK_TOKEN" + on_line(line));
    if (spec != specs.end() && !applies_to(*spec, role_))
      return error(key, "is a gateway setting; expected only settings of firebreak " + std::string(name_of(role_)) +
                            on_line(line));
    if (spec == specs.end()) return error(key, "unknown setting" + on_line(line) + "; " + suggestion(name));

    given g{std::string{}, key, line};
    switch (spec->kind) {
      case value_kind::text:
        if (spec->id == setting::data_threads && node.is_integer()) {  // a number, written as one
          g.value = std::to_string(node.as_integer()->get());
          break;
        }
        if (spec->id == setting::data_threads && !node.is_string())
          return error(key, "expected an integer from 1 to 64, got " + std::string(type_phrase(node.type())) +
                                on_line(line));
        if (!node.is_string())
          return error(key, "expected a string, got " + std::string(type_phrase(node.type())) + on_line(line));
        g.value = node.as_string()->get();
        break;
      case value_kind::boolean:
        if (!node.is_boolean())
          return error(key, "expected a boolean (true or false), got " + std::string(type_phrase(node.type())) +
                                on_line(line));
        g.value = node.as_boolean()->get();
        break;
      case value_kind::list: {
        if (!node.is_array())
          return error(key, "expected an array of strings, got " + std::string(type_phrase(node.type())) +
                                on_line(line));
        std::vector<std::string> items;
        for (const toml::node& item : *node.as_array()) {
          if (!item.is_string())
            return error(key, "expected an array of strings, but entry " + std::to_string(items.size() + 1) + " is " +
                                  std::string(type_phrase(item.type())) + on_line(line));
          items.push_back(item.as_string()->get());
        }
        g.value = std::move(items);
        break;
      }
    }
    out[index_of(spec->id)] = std::move(g);
    return std::nullopt;
  }

  std::string suggestion(std::string_view name) const {
    std::string best;
    std::size_t best_distance = 3;  // suggest only near misses
    std::string all;
    for (const auto& s : specs) {
      if (!applies_to(s, role_)) continue;
      all += (all.empty() ? "" : ", ") + std::string(s.toml_key);
      const std::size_t d = edit_distance(name, s.toml_key);
      if (d < best_distance) {
        best_distance = d;
        best = s.toml_key;
      }
    }
    if (!best.empty()) return "did you mean " + best + "?";
    return "expected one of " + all;
  }

  // -- the environment --

  std::optional<config_error> read_env_layer(layer& out) const {
    for (const auto& s : specs) {
      if (!applies_to(s, role_)) continue;
      const auto value = env(s.env_var);
      if (!value) continue;
      given g{*value, std::string(s.env_var)};
      if (s.kind == value_kind::list) {
        std::vector<std::string> items;
        std::string_view rest = *value;
        while (true) {
          const auto comma = rest.find(',');
          const std::string_view item = trim(rest.substr(0, comma));
          if (item.empty())
            return error(g.key, "expected IP addresses separated by commas, but entry " +
                                    std::to_string(items.size() + 1) + " is empty");
          items.emplace_back(item);
          if (comma == std::string_view::npos) break;
          rest.remove_prefix(comma + 1);
        }
        g.value = std::move(items);
      }
      out[index_of(s.id)] = std::move(g);
    }
    return std::nullopt;
  }

  // -- the token: found and read before any value is checked, so no message can quote it --

  std::variant<std::pair<std::string, std::string>, config_error> read_token(const layer& flags, const layer& file) {
    const auto token_file_var = specs[index_of(setting::token_file)].env_var;
    if (auto t = env_.find(std::string(token_env)); t != env_.end() && t->second.empty())
      return error(std::string(token_env), "is set but empty; expected the enrollment token, or unset it and name a "
                                           "token file");
    const auto env_token = env(token_env);
    if (env_token && env(token_file_var))
      return error(std::string(token_file_var),
                   "is set together with FIREBREAK_TOKEN; expected only one of the two");

    const auto env_file = env(token_file_var);
    const given* source = nullptr;
    if (auto& f = flags[index_of(setting::token_file)]) source = &*f;
    if (source == nullptr && env_token) return std::pair<std::string, std::string>{std::string{}, *env_token};
    given env_given;
    if (source == nullptr && env_file) {
      env_given = given{*env_file, std::string(token_file_var)};
      source = &env_given;
    }
    if (source == nullptr)
      if (auto& f = file[index_of(setting::token_file)]) source = &*f;
    if (source == nullptr)
      return error("--token-file", "no token given; expected a token file (--token-file, FIREBREAK_TOKEN_FILE or "
                                   "token_file in the configuration file) or the token itself in FIREBREAK_TOKEN");

    const std::string& path = std::get<std::string>(source->value);
    if (path.empty()) return error(source->key, "expected the name of a file holding the token, got an empty value");
    auto read = read_small_file(path, max_token_file_bytes);
    if (!read.problem.empty())
      return error(source->key, "cannot read " + quote(path) + " (" + read.problem +
                                    "); expected a readable file holding the enrollment token");
    std::string token = std::move(read.text);
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
    if (token.empty())
      return error(source->key, quote(path) + " holds no token (it is empty or only whitespace); expected the "
                                               "enrollment token");
    secrets_.push_back(token);
    return std::pair<std::string, std::string>{path, std::move(token)};
  }

  // -- checking values, in every source, even one a higher source overrides --

  std::optional<config_error> check_layer(layer& values) const {
    for (const auto& s : specs) {
      auto& g = values[index_of(s.id)];
      if (!g) continue;
      if (auto e = check_value(s, *g)) return e;
    }
    return std::nullopt;
  }

  std::optional<config_error> check_value(const setting_spec& s, given& g) const {
    if (s.kind == value_kind::boolean) {
      if (auto* text = std::get_if<std::string>(&g.value)) {  // from the environment
        const auto b = parse_bool(*text);
        if (!b) return error(g.key, "expected true or false, got " + quote(*text));
        g.value = *b;
      }
      return std::nullopt;
    }
    if (s.kind == value_kind::list) {
      const auto& items = std::get<std::vector<std::string>>(g.value);
      for (const auto& item : items) {
        if (item.find('/') != std::string::npos || !(valid_ipv4(item) || valid_ipv6(item)))
          return error(g.key, "expected an IPv4 or IPv6 address without a prefix length, got " + quote(item) +
                                  on_line(g.line));
      }
      return std::nullopt;
    }
    const auto& text = std::get<std::string>(g.value);
    const std::string where = on_line(g.line);
    switch (s.id) {
      case setting::portal_url: {
        auto parsed = parse_portal_url(text);
        if (auto* message = std::get_if<std::string>(&parsed)) return error(g.key, *message + where);
        return std::nullopt;
      }
      case setting::key_file:
      case setting::token_file:
      case setting::trace_file:
        if (text.empty()) return error(g.key, "expected a file name, got an empty value" + where);
        return std::nullopt;
      case setting::interface:
        if (!valid_interface_name(text))
          return error(g.key, "expected a Linux interface name of 1 to 15 characters without '/', ':' or "
                              "whitespace, and not \".\" or \"..\", got " + quote(text) + where);
        return std::nullopt;
      case setting::status_socket:
        if (text.empty()) return error(g.key, "expected a socket path, got an empty value" + where);
        if (text.size() > max_socket_path_bytes)
          return error(g.key, "expected a socket path of at most " + std::to_string(max_socket_path_bytes) +
                                  " bytes, got one of " + std::to_string(text.size()) + where);
        return std::nullopt;
      case setting::health_listen:
        if (!parse_listen(text)) return error(g.key, "expected ADDRESS:PORT (an IPv4 address, or an IPv6 one in brackets, "
                                                     "and a port from 1 to 65535), got " + quote(text) + where);
        return std::nullopt;
      case setting::data_threads:
        if (!parse_threads(text))
          return error(g.key, "expected a number of threads from 1 to 64, got " + quote(text) + where);
        return std::nullopt;
      case setting::log_level:
        if (std::find(std::begin(log_levels), std::end(log_levels), text) == std::end(log_levels))
          return error(g.key, "expected trace, debug, info, warn or error, got " + quote(text) + where);
        return std::nullopt;
      default:
        return std::nullopt;  // portal_ca_file: empty is allowed; whether it exists is checked for the winner
    }
  }

  std::variant<portal_address, std::string> parse_portal_url(std::string_view url) const {
    const std::string expected = "expected wss://host[:port]";
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) return expected + ", got " + quote(url);
    const std::string scheme = lowercase(url.substr(0, scheme_end));
    if (scheme == "ws") return expected + " (the portal is reached over TLS only), got " + quote(url);
    if (scheme != "wss") return expected + ", got " + quote(url);
    std::string_view rest = url.substr(scheme_end + 3);
    if (rest.find('@') != std::string_view::npos)
      return expected + " without a user name or password, got a URL with '@' in it (not shown)";
    if (rest.find_first_of("/?#") != std::string_view::npos) return expected + " without a path, got " + quote(url);

    portal_address out;
    std::string_view port_text;
    bool has_port = false;
    if (!rest.empty() && rest.front() == '[') {
      const auto close = rest.find(']');
      if (close == std::string_view::npos) return expected + " with a closing ']' after the IPv6 address, got " + quote(url);
      out.host = std::string(rest.substr(1, close - 1));
      if (!valid_ipv6(out.host))
        return expected + " with an IPv6 address between the brackets, got " + quote(url);
      rest.remove_prefix(close + 1);
      if (!rest.empty()) {
        if (rest.front() != ':') return expected + ", got " + quote(url);
        has_port = true;
        port_text = rest.substr(1);
      }
    } else {
      const auto colon = rest.find(':');
      out.host = std::string(rest.substr(0, colon));
      if (colon != std::string_view::npos) {
        has_port = true;
        port_text = rest.substr(colon + 1);
        if (port_text.find(':') != std::string_view::npos)
          return expected + " with an IPv6 host in brackets ([2001:db8::1]), got " + quote(url);
      }
      if (out.host.empty()) return expected + " with a host, got " + quote(url);
      const bool numeric = std::all_of(out.host.begin(), out.host.end(),
                                       [](char c) { return c == '.' || std::isdigit(static_cast<unsigned char>(c)); });
      if (numeric ? !valid_ipv4(out.host) : !valid_host_name(out.host))
        return expected + " with a host name, an IPv4 address or a bracketed IPv6 address, got " + quote(url);
    }
    if (has_port) {
      unsigned long port = 0;
      const bool digits = !port_text.empty() && port_text.size() <= 5 &&
                          std::all_of(port_text.begin(), port_text.end(),
                                      [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
      if (digits) port = std::stoul(std::string(port_text));
      if (!digits || port < 1 || port > 65535)
        return expected + " with a port from 1 to 65535, got " + quote(url);
      out.port = static_cast<std::uint16_t>(port);
    }
    return out;
  }

 private:
  node_role role_;
  const std::map<std::string, std::string>& env_;
  std::vector<std::string> secrets_;  // the token, once known, and FIREBREAK_TOKEN in any case
};

}  // namespace

// ---- the loader -------------------------------------------------------------------------------------

struct node_config_loader::flags {
  std::string config;
  CLI::Option* config_option = nullptr;
  std::array<std::string, setting_count> text;
  std::array<std::vector<std::string>, setting_count> lists;
  std::array<bool, setting_count> booleans{};
  std::array<CLI::Option*, setting_count> options{};
};

node_config_loader::node_config_loader(node_role role, CLI::App& app) : role_(role), flags_(std::make_unique<flags>()) {
  auto& f = *flags_;
  f.config_option = app.add_option(std::string(config_flag), f.config,
                                   "a TOML file with the settings below, by their TOML keys [env " +
                                       std::string(config_env) + "]")
                        ->type_name("FILE");
  for (const auto& s : specs) {
    if (!applies_to(s, role)) continue;
    const auto i = index_of(s.id);
    const std::string names(s.flag_names);
    const std::string help = help_text(s, role);
    switch (s.kind) {
      case value_kind::text:
        f.options[i] = app.add_option(names, f.text[i], help)->type_name(std::string(s.type_name));
        break;
      case value_kind::list:
        // One value per occurrence: `--local-address A --local-address B`.
        f.options[i] = app.add_option(names, f.lists[i], help)->type_name(std::string(s.type_name))->allow_extra_args(false);
        break;
      case value_kind::boolean:
        f.options[i] = app.add_flag(names, f.booleans[i], help);
        break;
    }
  }
  std::string footer = app.get_footer();
  if (!footer.empty()) footer += "\n";
  footer +=
      "Each setting comes from its flag, else its environment variable, else the TOML file (--config or "
      "FIREBREAK_CONFIG), else its default.\n"
      "The token is read from FIREBREAK_TOKEN or a token file only: never from a flag, never from the TOML file.";
  app.footer(footer);
}

node_config_loader::~node_config_loader() = default;
node_config_loader::node_config_loader(node_config_loader&&) noexcept = default;
node_config_loader& node_config_loader::operator=(node_config_loader&&) noexcept = default;

std::variant<node_config, config_error> node_config_loader::load(const std::map<std::string, std::string>& env) const {
  loading run(role_, env);
  const auto fail = [&](config_error e) { return std::variant<node_config, config_error>(run.redacted(std::move(e))); };
  const auto& f = *flags_;

  node_config out;
  out.role = role_;

  layer file{};
  if (f.config_option->count() > 0) {
    out.config_file = f.config;
    if (auto e = run.read_file_layer(f.config, std::string(config_flag), file)) return fail(*e);
  } else if (auto path = run.env(config_env)) {
    out.config_file = *path;
    if (auto e = run.read_file_layer(*path, std::string(config_env), file)) return fail(*e);
  }

  layer environment{};
  if (auto e = run.read_env_layer(environment)) return fail(*e);

  layer flag_values{};
  for (const auto& s : specs) {
    const auto i = index_of(s.id);
    if (f.options[i] == nullptr || f.options[i]->count() == 0) continue;
    raw_value v = s.kind == value_kind::text      ? raw_value(f.text[i])
                  : s.kind == value_kind::list    ? raw_value(f.lists[i])
                                                  : raw_value(f.booleans[i]);
    flag_values[i] = given{std::move(v), std::string(s.flag)};
  }

  auto token = run.read_token(flag_values, file);
  if (auto* e = std::get_if<config_error>(&token)) return fail(*e);
  out.token_file = std::move(std::get<0>(token).first);
  out.token = std::move(std::get<0>(token).second);

  for (layer* l : {&flag_values, &environment, &file}) {
    if (auto e = run.check_layer(*l)) return fail(*e);
  }

  const auto winner = [&](setting id) -> const given* {
    for (const layer* l : {&flag_values, &environment, &file})
      if (const auto& g = (*l)[index_of(id)]) return &*g;
    return nullptr;
  };
  const auto text = [&](setting id) {
    const given* g = winner(id);
    return g ? std::get<std::string>(g->value) : default_text(id, role_);
  };

  const given* url = winner(setting::portal_url);
  if (url == nullptr)
    return fail(error("--portal-url", "no portal given; expected wss://host[:port] from --portal-url, "
                                      "FIREBREAK_PORTAL_URL or portal_url in the configuration file"));
  out.portal_url = std::get<std::string>(url->value);
  auto address = std::get<portal_address>(run.parse_portal_url(out.portal_url));
  out.portal_host = std::move(address.host);
  out.portal_port = address.port;

  if (const given* ca = winner(setting::portal_ca_file)) {
    out.portal_ca_file = std::get<std::string>(ca->value);
    if (!out.portal_ca_file.empty()) {
      const auto readable = read_small_file(out.portal_ca_file, max_config_file_bytes);
      if (!readable.problem.empty())
        return fail(error(ca->key, "cannot read " + run.quote(out.portal_ca_file) + " (" + readable.problem +
                                       "); expected a readable PEM file, or leave it unset for the system trust "
                                       "store" + on_line(ca->line)));
    }
  }

  out.key_file = text(setting::key_file);
  out.interface = text(setting::interface);
  out.status_socket = text(setting::status_socket);
  out.log_level = text(setting::log_level);
  if (const given* g = winner(setting::local_addresses)) out.local_addresses = std::get<std::vector<std::string>>(g->value);
  if (const given* g = winner(setting::relay_only)) out.relay_only = std::get<bool>(g->value);
  if (const given* g = winner(setting::goodbye)) out.goodbye = std::get<bool>(g->value);
  if (const given* g = winner(setting::trace)) out.trace = std::get<bool>(g->value);
  out.trace_file = text(setting::trace_file);
  if (const given* g = winner(setting::health_listen)) {
    const auto listen = parse_listen(std::get<std::string>(g->value));
    out.health_address = listen->first;
    out.health_port = listen->second;
  }
  if (const given* g = winner(setting::data_threads)) out.data_threads = *parse_threads(std::get<std::string>(g->value));
  if (role_ == node_role::gateway)
    if (const given* g = winner(setting::manage_forwarding)) out.manage_forwarding = std::get<bool>(g->value);
  return out;
}

// ---- small things ---------------------------------------------------------------------------------

std::string listen_text(const std::string& address, std::uint16_t port) {
  return (address.find(':') != std::string::npos ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

std::optional<std::pair<std::string, std::uint16_t>> parse_listen(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 >= text.size()) return std::nullopt;
  std::string host(text.substr(0, colon));
  const auto port_text = text.substr(colon + 1);
  if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  const auto port = std::stoul(std::string(port_text));
  if (port == 0 || port > 65535) return std::nullopt;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    in6_addr a6{};
    if (::inet_pton(AF_INET6, host.c_str(), &a6) != 1) return std::nullopt;
  } else {
    in_addr a4{};
    if (::inet_pton(AF_INET, host.c_str(), &a4) != 1) return std::nullopt;
  }
  return std::pair{host, static_cast<std::uint16_t>(port)};
}

std::map<std::string, std::string> environment_of(char** envp) {
  std::map<std::string, std::string> out;
  for (char** entry = envp; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const auto eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    out.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
  }
  return out;
}

const char* name_of(node_role role) { return role == node_role::gateway ? "gateway" : "client"; }

std::string describe(const node_config& c) {
  const bool v6 = c.portal_host.find(':') != std::string::npos;
  std::string local;
  for (const auto& a : c.local_addresses) local += (local.empty() ? "" : ",") + a;
  std::string out = std::string("role=") + name_of(c.role) + " portal=" + (v6 ? "[" + c.portal_host + "]" : c.portal_host) +
                    ":" + std::to_string(c.portal_port) +
                    " portal_ca_file=" + (c.portal_ca_file.empty() ? "(system trust store)" : c.portal_ca_file) +
                    (c.token_file.empty() ? " token=(from FIREBREAK_TOKEN)" : " token_file=" + c.token_file) +
                    " key_file=" + c.key_file + " interface=" + c.interface + " status_socket=" + c.status_socket +
                    " log_level=" + c.log_level + " local_addresses=" + (local.empty() ? "(none)" : local) +
                    " relay_only=" + (c.relay_only ? "true" : "false") + " goodbye=" + (c.goodbye ? "true" : "false") +
                    " trace=" + (c.trace ? "true" : "false") + " trace_file=" + c.trace_file + " health_listen=" +
                    (c.health_port == 0 ? std::string("(off)") : listen_text(c.health_address, c.health_port));
  out += " data_threads=" + (c.data_threads == 0 ? std::string("(one per core)") : std::to_string(c.data_threads));
  if (c.role == node_role::gateway) out += std::string(" manage_forwarding=") + (c.manage_forwarding ? "true" : "false");
  out += " config_file=" + (c.config_file.empty() ? std::string("(none)") : c.config_file);
  // The token pasted into another setting (a URL that is all host name, say) is still cut out.
  if (c.token.size() >= 8)
    for (auto at = out.find(c.token); at != std::string::npos; at = out.find(c.token, at + 7))
      out.replace(at, c.token.size(), "(token)");
  return out;
}

std::string describe(const config_error& e) { return e.key.empty() ? e.message : e.key + ": " + e.message; }

}  // namespace firebreak::config
