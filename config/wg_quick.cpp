#include "config/wg_quick.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <initializer_list>
#include <new>
#include <system_error>

#include <ini.h>
#include <openssl/crypto.h>

namespace firebreak::config {

namespace {

// ---- small string helpers ----------------------------------------------------------------------

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

/// wg-quick drops everything from a '#'; inih also treats ';' at the start of a line or after
/// whitespace as a comment. Both are removed here so inih and we agree on every value.
std::string_view strip_comment(std::string_view line) {
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '#' || (line[i] == ';' && (i == 0 || is_space(line[i - 1])))) return line.substr(0, i);
  }
  return line;
}

/// True for text that could be a key: long and all base64 (or hex) characters. Such text is never
/// repeated in a diagnostic, whatever key it was found under.
bool looks_like_key_material(std::string_view s) {
  if (s.size() < 40) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
           c == '=';
  });
}

/// A value quoted for a diagnostic: cut short when long, withheld when it looks like key material.
std::string quote(std::string_view value) {
  if (looks_like_key_material(value)) return "(a value that looks like key material, not shown)";
  constexpr std::size_t max_shown = 80;
  if (value.size() > max_shown) return "'" + std::string(value.substr(0, max_shown)) + "...'";
  return "'" + std::string(value) + "'";
}

/// Plain decimal digits only (no sign, no spaces), at most `max`.
std::optional<unsigned long> parse_number(std::string_view s, unsigned long max) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  for (char c : s)
    if (c < '0' || c > '9') return std::nullopt;
  unsigned long n = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc{} || ptr != s.data() + s.size() || n > max) return std::nullopt;
  return n;
}

std::string format(const std::string& file, int line, const std::string& key, const std::string& message) {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  return out + message;
}

// ---- what the file may say ---------------------------------------------------------------------

enum class section_kind { none, interface, peer };

enum class key_id {
  private_key,
  listen_port,
  address,
  mtu,
  public_key,
  preshared_key,
  endpoint,
  allowed_ips,
  persistent_keepalive,
  ignored,  // a wg-quick key that is accepted and reported as a warning
};
constexpr std::size_t key_id_count = static_cast<std::size_t>(key_id::ignored) + 1;

struct key_info {
  std::string_view name;  // the canonical spelling, used in diagnostics
  key_id id;
  section_kind section;
  std::string_view ignored_why = {};  // for key_id::ignored
};

constexpr std::string_view wg_quick_only = "a wg-quick setting that Firebreak does not apply; ignored";

constexpr std::array<key_info, 17> known_keys{{
    {"PrivateKey", key_id::private_key, section_kind::interface},
    {"ListenPort", key_id::listen_port, section_kind::interface},
    {"Address", key_id::address, section_kind::interface},
    {"MTU", key_id::mtu, section_kind::interface},
    {"DNS", key_id::ignored, section_kind::interface, wg_quick_only},
    {"Table", key_id::ignored, section_kind::interface, wg_quick_only},
    {"PreUp", key_id::ignored, section_kind::interface, wg_quick_only},
    {"PostUp", key_id::ignored, section_kind::interface, wg_quick_only},
    {"PreDown", key_id::ignored, section_kind::interface, wg_quick_only},
    {"PostDown", key_id::ignored, section_kind::interface, wg_quick_only},
    {"SaveConfig", key_id::ignored, section_kind::interface, wg_quick_only},
    {"FwMark", key_id::ignored, section_kind::interface, "a socket mark, which Firebreak does not set; ignored"},
    {"PublicKey", key_id::public_key, section_kind::peer},
    {"PresharedKey", key_id::preshared_key, section_kind::peer},
    {"Endpoint", key_id::endpoint, section_kind::peer},
    {"AllowedIPs", key_id::allowed_ips, section_kind::peer},
    {"PersistentKeepalive", key_id::persistent_keepalive, section_kind::peer},
}};

const key_info* find_key(std::string_view name) {
  for (const auto& k : known_keys)
    if (iequals(k.name, name)) return &k;
  return nullptr;
}

std::string_view section_label(section_kind s) { return s == section_kind::interface ? "[Interface]" : "[Peer]"; }

constexpr std::string_view bad_key_text =
    "is not a valid key: expected 44 characters of base64 encoding 32 bytes, as wg genkey prints "
    "(the value is not shown)";

// ---- the parser --------------------------------------------------------------------------------

class wg_quick_parser {
 public:
  wg_quick_parser(std::string_view text, std::string file) : text_(text), file_(std::move(file)) {}

  load_result run() {
    const int rc = ini_parse_stream(&wg_quick_parser::read, this, &wg_quick_parser::handle, this);
    if (out_of_memory_) throw std::bad_alloc();
    // Our reader refuses every line inih could object to, so inih's own verdict only matters if
    // that ever stops being true.
    if (!error_ && rc != 0) fail(rc > 0 ? rc : 0, "", "inih could not parse this line");
    if (!error_) finish();

    load_result out;
    out.warnings = std::move(warnings_);
    if (error_)
      out.error = std::move(error_);
    else
      out.config = std::move(config_);
    return out;
  }

 private:
  // inih's callbacks are called from C: nothing may be thrown through them.
  static char* read(char* buf, int num, void* self) {
    auto* p = static_cast<wg_quick_parser*>(self);
    try {
      return p->read_line(buf, num);
    } catch (...) {
      p->out_of_memory_ = true;
      return nullptr;
    }
  }

  static int handle(void* self, const char* section, const char* name, const char* value) {
    // inih's `section` is the last header our reader handed it, which begin_section has already
    // acted on; section_ says the same thing, so it is not consulted.
    (void)section;
    auto* p = static_cast<wg_quick_parser*>(self);
    try {
      return p->on_key(name, p->long_value_ ? *p->long_value_ : std::string_view(value ? value : "")) ? 1 : 0;
    } catch (...) {
      p->out_of_memory_ = true;
      return 0;
    }
  }

  /// One physical line per call, cleaned up, so inih's line count and ours never drift apart.
  char* read_line(char* buf, int num) {
    if (error_ || pos_ >= text_.size()) return nullptr;  // stop at the first error
    const auto nl = text_.find('\n', pos_);
    auto raw = text_.substr(pos_, nl == std::string_view::npos ? std::string_view::npos : nl - pos_);
    pos_ = nl == std::string_view::npos ? text_.size() : nl + 1;
    ++line_;
    long_value_.reset();

    if (line_ == 1 && raw.starts_with("\xEF\xBB\xBF")) raw.remove_prefix(3);  // a UTF-8 byte order mark
    if (raw.find('\0') != std::string_view::npos) return stop("the line contains a NUL byte");
    // inih's buffer is 200 bytes unless someone rebuilt it smaller; headers and key names must fit.
    if (num < 64) return stop("internal error: inih's line buffer is too small");
    const auto room = static_cast<std::size_t>(num) - 2;  // for the newline and the NUL

    const auto line = trim(strip_comment(raw));
    if (line.empty()) return put(buf, {""});

    if (line.front() == '[') {
      if (line.size() < 2 || line.back() != ']')
        return stop("malformed section header; expected [Interface] or [Peer]");
      if (!begin_section(trim(line.substr(1, line.size() - 2)))) return nullptr;
      return put(buf, {section_label(section_)});
    }

    const auto eq = line.find('=');
    if (eq == std::string_view::npos)
      return stop("expected 'Key = Value' or a [Section] header");
    if (line.find(':') < eq)  // inih would split "Key: Value" there; wg-quick would not
      return stop("expected 'Key = Value'; ':' cannot appear in a key name");
    const auto key = trim(line.substr(0, eq));
    if (key.empty()) return stop("expected a key name before '='");

    if (line.size() <= room) return put(buf, {line});
    // Too long for inih's buffer (a long AllowedIPs list, a PostUp script): hand inih the key alone
    // and keep the value, which points into text_, for the handler.
    if (key.size() + 1 > room) return stop("the key name is too long");
    long_value_ = trim(line.substr(eq + 1));
    return put(buf, {key, "="});
  }

  /// Writes the pieces and a newline into inih's buffer; the caller has checked that they fit.
  static char* put(char* buf, std::initializer_list<std::string_view> pieces) {
    char* out = buf;
    for (auto piece : pieces) out = std::copy(piece.begin(), piece.end(), out);
    *out++ = '\n';
    *out = '\0';
    return buf;
  }

  bool begin_section(std::string_view name) {
    if (!end_section()) return false;
    section_line_ = line_;
    seen_.fill(0);
    if (iequals(name, "Interface")) {
      if (interface_line_ != 0)
        return fail(line_, "[Interface]",
                    "a second [Interface] section; the first is on line " + std::to_string(interface_line_));
      section_ = section_kind::interface;
      interface_line_ = line_;
      return true;
    }
    if (iequals(name, "Peer")) {
      section_ = section_kind::peer;
      config_.peers.emplace_back();
      peer_lines_.push_back(line_);
      return true;
    }
    section_ = section_kind::none;
    if (looks_like_key_material(name)) return fail(line_, "", "unknown section; expected [Interface] or [Peer]");
    return fail(line_, "[" + std::string(name) + "]", "unknown section; expected [Interface] or [Peer]");
  }

  /// Checks what the section just finished must contain.
  bool end_section() {
    if (section_ == section_kind::interface) {
      if (seen(key_id::private_key) == 0) return fail(section_line_, "PrivateKey", "[Interface] has no PrivateKey");
      if (config_.addresses.empty())
        return fail(section_line_, "Address", "[Interface] has no Address; it needs at least one");
      const bool any_v6 = std::any_of(config_.addresses.begin(), config_.addresses.end(), [](const cidr& c) { return c.v6; });
      const unsigned min_mtu = any_v6 ? 1280 : 576;
      if (config_.mtu < min_mtu || config_.mtu > 65535)
        return fail(seen(key_id::mtu), "MTU",
                    "must be from " + std::to_string(min_mtu) + " to 65535" +
                        (any_v6 ? " when the interface has an IPv6 address" : "") + "; got " +
                        std::to_string(config_.mtu));
    } else if (section_ == section_kind::peer) {
      if (seen(key_id::public_key) == 0) return fail(section_line_, "PublicKey", "[Peer] has no PublicKey");
    }
    section_ = section_kind::none;
    return true;
  }

  void finish() {
    if (!end_section()) return;
    if (interface_line_ == 0) fail(0, "[Interface]", "the file has no [Interface] section");
  }

  bool on_key(std::string_view name, std::string_view value) {
    if (section_ == section_kind::none) {
      if (looks_like_key_material(name)) return fail(line_, "", "text outside any section (not shown: it looks like key material)");
      return fail(line_, std::string(name), "is outside any section; put it under [Interface] or [Peer]");
    }
    const key_info* key = find_key(name);
    if (!key) {
      if (looks_like_key_material(name)) return fail(line_, "", "unrecognized line (not shown: it looks like key material)");
      return fail(line_, std::string(name), "unknown key in " + std::string(section_label(section_)));
    }
    const std::string key_name(key->name);
    if (key->section != section_)
      return fail(line_, key_name,
                  "belongs in " + std::string(section_label(key->section)) + ", not in " + std::string(section_label(section_)));

    if (key->id == key_id::ignored) {
      warnings_.push_back({file_, line_, key_name, std::string(key->ignored_why)});
      return true;
    }
    const bool is_list = key->id == key_id::address || key->id == key_id::allowed_ips;
    if (!is_list && seen(key->id) != 0)
      return fail(line_, key_name, "given twice in one section; the first is on line " + std::to_string(seen(key->id)));
    seen_[static_cast<std::size_t>(key->id)] = line_;
    if (value.empty()) return fail(line_, key_name, "has no value");

    switch (key->id) {
      case key_id::private_key: {
        auto k = wireguard::key_from_base64(value);
        if (!k) return fail(line_, key_name, std::string(bad_key_text));
        config_.private_key = *k;
        return true;
      }
      case key_id::listen_port: {
        auto n = parse_number(value, 65535);
        if (!n) return fail(line_, key_name, "must be a port number from 0 to 65535; got " + quote(value));
        config_.listen_port = static_cast<std::uint16_t>(*n);
        return true;
      }
      case key_id::address:
        return parse_cidr_list(key_name, value, false, config_.addresses);
      case key_id::mtu: {
        auto n = parse_number(value, 65535);
        if (!n) return fail(line_, key_name, "must be a number from 576 to 65535; got " + quote(value));
        config_.mtu = static_cast<unsigned>(*n);  // the lower bound depends on Address: see end_section
        return true;
      }
      case key_id::public_key: {
        auto k = wireguard::key_from_base64(value);
        if (!k) return fail(line_, key_name, std::string(bad_key_text));
        auto& peer = config_.peers.back();
        std::copy(k->bytes.begin(), k->bytes.end(), peer.public_key.begin());
        for (std::size_t i = 0; i + 1 < config_.peers.size(); ++i)
          if (config_.peers[i].public_key == peer.public_key)
            return fail(line_, key_name,
                        "the same public key as the [Peer] on line " + std::to_string(peer_lines_[i]));
        return true;
      }
      case key_id::preshared_key: {
        auto k = wireguard::key_from_base64(value);
        if (!k) return fail(line_, key_name, std::string(bad_key_text));
        config_.peers.back().preshared_key = *k;
        return true;
      }
      case key_id::endpoint: {
        auto e = wireguard::endpoint::parse(value);
        if (!e)
          return fail(line_, key_name,
                      "Endpoint must be an IP address and port, like 192.0.2.1:51820 or [2001:db8::1]:51820 "
                      "(host names are not resolved); got " + quote(value));
        config_.peers.back().endpoint = *e;
        return true;
      }
      case key_id::allowed_ips:
        return parse_cidr_list(key_name, value, true, config_.peers.back().allowed_ips);
      case key_id::persistent_keepalive: {
        if (iequals(value, "off")) {
          config_.peers.back().persistent_keepalive = std::chrono::seconds{0};
          return true;
        }
        auto n = parse_number(value, 65535);
        if (!n) return fail(line_, key_name, "must be a number of seconds from 0 to 65535, or off; got " + quote(value));
        config_.peers.back().persistent_keepalive = std::chrono::seconds{*n};
        return true;
      }
      case key_id::ignored:
        break;
    }
    return true;
  }

  /// "a, b, c": each a CIDR prefix or bare address. AllowedIPs are masked and kept unique.
  bool parse_cidr_list(const std::string& key_name, std::string_view value, bool mask, std::vector<cidr>& out) {
    while (true) {
      const auto comma = value.find(',');
      const auto entry = trim(value.substr(0, comma));
      if (entry.empty()) return fail(line_, key_name, "has an empty entry in its comma-separated list");
      auto c = cidr::parse(entry);
      if (!c)
        return fail(line_, key_name,
                    quote(entry) + " is not an IP address or CIDR prefix (like 10.0.0.1/24 or fd00::1/64)");
      if (mask) *c = c->masked();
      if (!mask || std::find(out.begin(), out.end(), *c) == out.end()) out.push_back(*c);
      if (comma == std::string_view::npos) return true;
      value.remove_prefix(comma + 1);
    }
  }

  /// For the reader: records the error and ends the input.
  char* stop(std::string message) {
    fail(line_, "", std::move(message));
    return nullptr;
  }

  int seen(key_id id) const { return seen_[static_cast<std::size_t>(id)]; }

  bool fail(int line, std::string key, std::string message) {
    if (!error_) error_ = config_error{file_, line, std::move(key), std::move(message)};
    return false;
  }

  // the input
  std::string_view text_;
  std::size_t pos_ = 0;
  int line_ = 0;                                 // the physical line inih is working on
  std::optional<std::string_view> long_value_;  // its value, when the line did not fit inih's buffer
  std::string file_;

  // where we are
  section_kind section_ = section_kind::none;
  int section_line_ = 0;
  int interface_line_ = 0;                 // 0: no [Interface] yet
  std::array<int, key_id_count> seen_{};  // the line each key was set on in this section; 0: not yet
  std::vector<int> peer_lines_;           // the [Peer] header line of each peer

  // what we found
  interface_config config_;
  std::optional<config_error> error_;
  std::vector<config_warning> warnings_;
  bool out_of_memory_ = false;
};

/// Wipes a buffer that held the file's text, private key included, however we leave.
struct wipe_on_exit {
  std::string& s;
  ~wipe_on_exit() { OPENSSL_cleanse(s.data(), s.size()); }
};

struct fd_closer {
  int fd;
  ~fd_closer() { ::close(fd); }
};

}  // namespace

std::string config_error::to_string() const { return format(file, line, key, message); }
std::string config_warning::to_string() const { return format(file, line, key, message); }

load_result parse_wg_quick(std::string_view text, std::string file_name_for_errors) {
  return wg_quick_parser(text, std::move(file_name_for_errors)).run();
}

load_result load_wg_quick_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  auto refuse = [&name](std::string message) {
    load_result r;
    r.error = config_error{name, 0, "", std::move(message)};
    return r;
  };
  auto errno_text = [] { return std::error_code(errno, std::generic_category()).message(); };

  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return refuse("cannot open: " + errno_text());
  fd_closer closer{fd};

  struct stat st {};
  if (::fstat(fd, &st) != 0) return refuse("cannot stat: " + errno_text());
  if (!S_ISREG(st.st_mode)) return refuse("not a regular file");
  constexpr off_t max_size = 1 << 20;
  if (st.st_size > max_size) return refuse("larger than 1 MiB; not a WireGuard configuration");

  // Sized once, so no reallocation leaves a copy of the private key behind; the spare byte notices
  // a file that grew after fstat.
  std::string text(static_cast<std::size_t>(st.st_size) + 1, '\0');
  wipe_on_exit wiper{text};
  std::size_t got = 0;
  while (got < text.size()) {
    const auto n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return refuse("cannot read: " + errno_text());
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got > static_cast<std::size_t>(st.st_size)) return refuse("changed while being read");

  auto result = parse_wg_quick(std::string_view(text.data(), got), name);
  if ((st.st_mode & S_IRWXO) != 0)
    result.warnings.insert(result.warnings.begin(),
                           config_warning{name, 0, "", "is accessible to other users, and it holds a private key; "
                                                       "chmod 600 it"});
  return result;
}

}  // namespace firebreak::config
