#include "transport/tun/forwarding_linux.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <nftables/libnftables.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <sstream>
#include <utility>

namespace firebreak::tun {
namespace {

constexpr const char* ipv4_forwarding_sysctl = "/proc/sys/net/ipv4/ip_forward";
constexpr const char* ipv6_forwarding_sysctl = "/proc/sys/net/ipv6/conf/all/forwarding";

// ---- sysctl files -----------------------------------------------------------------------------------

/// The file's content without its trailing newline into `value`; empty on success, else what failed.
std::string read_sysctl(const char* path, std::string& value) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::string("cannot read ") + path + ": " + std::strerror(errno);
  char buf[64];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  const int err = errno;
  ::close(fd);
  if (n < 0) return std::string("cannot read ") + path + ": " + std::strerror(err);
  value.assign(buf, static_cast<std::size_t>(n));
  while (!value.empty() && (value.back() == '\n' || value.back() == ' ')) value.pop_back();
  return {};
}

/// Empty on success, else what failed.
std::string write_sysctl(const char* path, const std::string& value) {
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return std::string("cannot write ") + path + ": " + std::strerror(errno);
  const std::string line = value + "\n";
  const ssize_t n = ::write(fd, line.data(), line.size());
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(line.size()))
    return std::string("cannot write ") + value + " to " + path + ": " + (n < 0 ? std::strerror(err) : "short write");
  return {};
}

// ---- nftables ---------------------------------------------------------------------------------------

/// nft's error buffer as one line: its "Error: ..." sentences, without the echoed command and carets.
std::string error_sentences(const char* buffer) {
  std::istringstream lines(buffer ? buffer : "");
  std::string line, sentences;
  while (std::getline(lines, line)) {
    const auto at = line.find("Error: ");
    if (at == std::string::npos) continue;
    sentences += (sentences.empty() ? "" : "; ") + line.substr(at + 7);
  }
  if (sentences.empty()) sentences = buffer && *buffer ? buffer : "nft reported an error without text";
  std::replace(sentences.begin(), sentences.end(), '\n', ' ');
  return sentences;
}

/// Runs `commands` (nft syntax, one transaction) through libnftables; empty on success, else nft's error text.
std::string run_nft(const std::string& commands) {
  std::unique_ptr<nft_ctx, void (*)(nft_ctx*)> ctx(nft_ctx_new(NFT_CTX_DEFAULT), nft_ctx_free);
  if (!ctx) return "cannot create an nftables context";
  // Buffered, so nothing is printed and the error text can be handed back.
  if (nft_ctx_buffer_output(ctx.get()) != 0 || nft_ctx_buffer_error(ctx.get()) != 0)
    return "cannot buffer nftables output";
  if (nft_run_cmd_from_buffer(ctx.get(), commands.c_str()) == 0) return {};
  return error_sentences(nft_ctx_get_error_buffer(ctx.get()));
}

// ---- what goes into the ruleset text ----------------------------------------------------------------

/// Only names that are safe inside an nft quoted string and map to a valid table name.
bool valid_interface_name(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

struct prefix {
  int family;        // AF_INET or AF_INET6
  std::string text;  // canonical, host bits cleared: "100.64.0.0/10"
};

/// "address/length" of either family, host bits cleared; nullopt when it is not one.
std::optional<prefix> parse_prefix(const std::string& text) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) return std::nullopt;
  const std::string address = text.substr(0, slash), length_text = text.substr(slash + 1);
  if (length_text.empty() || length_text.size() > 3 ||
      !std::all_of(length_text.begin(), length_text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  const int length = std::stoi(length_text);
  unsigned char bytes[16] = {};
  int family = AF_INET;
  if (::inet_pton(AF_INET, address.c_str(), bytes) != 1) {
    family = AF_INET6;
    if (::inet_pton(AF_INET6, address.c_str(), bytes) != 1) return std::nullopt;
  }
  const int bits = family == AF_INET ? 32 : 128;
  if (length > bits) return std::nullopt;
  for (int i = 0; i < bits / 8; ++i) {
    const int keep = std::clamp(length - i * 8, 0, 8);
    bytes[i] &= static_cast<unsigned char>(0xff00 >> keep);
  }
  char canonical[INET6_ADDRSTRLEN];
  ::inet_ntop(family, bytes, canonical, sizeof canonical);
  return prefix{family, std::string(canonical) + "/" + std::to_string(length)};
}

std::string joined(const std::vector<prefix>& prefixes, int family) {
  std::string out;
  for (const auto& p : prefixes) {
    if (p.family == family) out += (out.empty() ? "" : ", ") + p.text;
  }
  return out;
}

/// One transaction: `add` + `delete` makes sure a table of this name exists and is gone, whether or not a
/// killed process left one behind (nft 1.0.6 has no `destroy`), then the table is created afresh.
std::string ruleset(const std::string& table, const std::string& tun_name, const std::vector<prefix>& prefixes) {
  const std::string tun = "\"" + tun_name + "\"";
  std::string text = "add table inet " + table + "\ndelete table inet " + table + "\n";
  text += "table inet " + table + " {\n";
  text += "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n";
  // A rule per prefix rather than one set: overlapping prefixes in a set are an error, in rules they are not.
  for (const auto& p : prefixes)
    text += "    oifname != " + tun + (p.family == AF_INET ? " ip saddr " : " ip6 saddr ") + p.text + " counter masquerade\n";
  text += "  }\n";
  text += "  chain forward {\n    type filter hook forward priority filter; policy accept;\n";
  text += "    iifname " + tun + " counter accept\n";
  text += "    oifname " + tun + " ct state established,related counter accept\n";
  text += "  }\n}\n";
  return text;
}

}  // namespace

std::optional<forwarding> forwarding::enable(const std::string& tun_name,
                                             const std::vector<std::string>& tunnel_prefixes, std::string& why) {
  if (!valid_interface_name(tun_name)) {
    why = "TUN interface name '" + tun_name + "' must be 1 to " + std::to_string(IFNAMSIZ - 1) +
          " letters, digits, '-' or '_'";
    return std::nullopt;
  }
  std::vector<prefix> prefixes;
  for (const auto& text : tunnel_prefixes) {
    auto p = parse_prefix(text);
    if (!p) {
      why = "tunnel prefix '" + text + "' is not an IPv4 or IPv6 address/length";
      return std::nullopt;
    }
    prefixes.push_back(std::move(*p));
  }
  const auto has = [&](int family) {
    return std::any_of(prefixes.begin(), prefixes.end(), [&](const prefix& p) { return p.family == family; });
  };
  if (prefixes.empty()) {
    why = "no tunnel prefixes to forward for " + tun_name;
    return std::nullopt;
  }

  forwarding f;  // from here on, its destructor undoes whatever a failure leaves half done
  f.table_name_ = "firebreak_" + tun_name;
  std::replace(f.table_name_.begin(), f.table_name_.end(), '-', '_');

  // Read both before changing anything. A namespace without IPv6 has no /proc/sys/net/ipv6 at all: its
  // prefixes are left out of the table, and IPv4 goes on alone.
  std::string ipv4_before, ipv6_before;
  if (has(AF_INET)) {
    if (auto err = read_sysctl(ipv4_forwarding_sysctl, ipv4_before); !err.empty()) {
      why = err;
      return std::nullopt;
    }
  }
  bool ipv6 = has(AF_INET6);
  if (ipv6) {
    if (auto err = read_sysctl(ipv6_forwarding_sysctl, ipv6_before); !err.empty()) {
      f.warnings_.push_back(err + "; IPv6 tunnel traffic (" + joined(prefixes, AF_INET6) + ") is not forwarded");
      std::erase_if(prefixes, [](const prefix& p) { return p.family == AF_INET6; });
      ipv6 = false;
      if (prefixes.empty()) {
        why = err + ", and there are no IPv4 tunnel prefixes to forward";
        return std::nullopt;
      }
    }
  }

  // The masquerade rule goes in first, so that nothing is ever forwarded from the tunnel with its own source.
  if (auto err = run_nft(ruleset(f.table_name_, tun_name, prefixes)); !err.empty()) {
    why = "cannot install nftables table inet " + f.table_name_ + ": " + err;
    return std::nullopt;
  }
  f.table_installed_ = true;

  if (has(AF_INET) && ipv4_before != "1") {
    if (auto err = write_sysctl(ipv4_forwarding_sysctl, "1"); !err.empty()) {
      why = err;
      return std::nullopt;
    }
    f.changed_.push_back({ipv4_forwarding_sysctl, ipv4_before});
  }
  if (ipv6 && ipv6_before != "1") {
    if (auto err = write_sysctl(ipv6_forwarding_sysctl, "1"); !err.empty()) {
      f.warnings_.push_back(err + "; IPv6 tunnel traffic is not forwarded");
    } else {
      f.changed_.push_back({ipv6_forwarding_sysctl, ipv6_before});
    }
  }
  return std::optional<forwarding>(std::move(f));
}

forwarding::forwarding(forwarding&& other) noexcept
    : table_name_(std::move(other.table_name_)),
      table_installed_(std::exchange(other.table_installed_, false)),
      changed_(std::exchange(other.changed_, {})),
      warnings_(std::move(other.warnings_)) {}

forwarding& forwarding::operator=(forwarding&& other) noexcept {
  if (this != &other) {
    disable();
    table_name_ = std::move(other.table_name_);
    table_installed_ = std::exchange(other.table_installed_, false);
    changed_ = std::exchange(other.changed_, {});
    warnings_ = std::move(other.warnings_);
  }
  return *this;
}

forwarding::~forwarding() { disable(); }

std::string forwarding::disable() {
  std::string failures;
  const auto note = [&](const std::string& failure) { failures += (failures.empty() ? "" : "; ") + failure; };
  if (std::exchange(table_installed_, false)) {
    if (auto err = run_nft("delete table inet " + table_name_); !err.empty())
      note("cannot delete nftables table inet " + table_name_ + ": " + err);
  }
  for (auto it = changed_.rbegin(); it != changed_.rend(); ++it) {
    if (auto err = write_sysctl(it->path.c_str(), it->previous); !err.empty()) note(err);
  }
  changed_.clear();
  return failures;
}

}  // namespace firebreak::tun
