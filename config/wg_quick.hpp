// Reads a wg-quick style configuration file into an interface_config.
//
//   [Interface]
//   PrivateKey = <base64 of 32 bytes>            required
//   ListenPort = 51820                           optional, 0..65535 (0: any port)
//   Address = 10.0.0.1/24, fd00::1/64            required, repeatable; a bare address is /32 or /128
//   MTU = 1420                                   optional, default 1420; 576..65535, or 1280..65535
//                                                when any Address is IPv6
//   [Peer]                                       zero or more
//   PublicKey = <base64 of 32 bytes>             required, and unique among the peers
//   PresharedKey = <base64 of 32 bytes>          optional
//   Endpoint = 192.0.2.1:51820 | [2001:db8::1]:51820   optional; an IP address, never a host name
//   AllowedIPs = 10.0.0.2/32, 0.0.0.0/0          optional, repeatable; host bits are cleared (as wg
//                                                does) and repeats dropped
//   PersistentKeepalive = 25 | off               optional, 0..65535 seconds; 0 and off are the same
//
// Rules, following wg-quick(8) and wg(8) where they have one:
//   * Section and key names are case-insensitive. Whitespace around names and values is ignored.
//   * '#' starts a comment anywhere on a line (as wg-quick strips it); ';' starts one at the start of
//     a line or after whitespace (inih's rule, kept so a value never silently swallows one).
//   * Lists (Address, AllowedIPs) are comma separated; an empty entry is an error.
//   * Any other key given twice in one section is an error, as is a second [Interface] section.
//   * wg-quick's own [Interface] keys (DNS, Table, PreUp, PostUp, PreDown, PostDown, SaveConfig) and
//     wg's FwMark are accepted in [Interface], may repeat, are not validated, and each produces a
//     warning, so a file written for wg-quick loads unchanged. Any other key is an error naming it.
//   * Parsing stops at the first error. `config` and `error` are never both set.
//
// Secrets: no error or warning ever contains the value of PrivateKey, PresharedKey or PublicKey (a
// private key pasted into PublicKey is a common slip), nor a key name that looks like key material.
// Nothing here logs; warnings are returned for the caller to log. load_wg_quick_file wipes its copy
// of the file text before returning, and the keys themselves sit in self-wiping secrets (inih's own
// line buffer, on its stack, is out of our reach).
//
// The lines are read through libinih's ini_parse_stream with our own reader, which counts lines
// (so every diagnostic names the right one), notices [Section] headers (Debian's inih does not tell
// the handler about them, and each [Peer] header must start a new peer), strips comments, and
// carries values longer than inih's fixed 200-byte line buffer around it rather than truncating them.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/cidr.hpp"
#include "transport/wireguard/crypto.hpp"
#include "transport/wireguard/endpoint.hpp"

namespace firebreak::config {

struct peer_config {
  wireguard::public_key public_key{};
  std::optional<wireguard::symmetric_key> preshared_key;
  std::optional<wireguard::endpoint> endpoint;
  std::vector<cidr> allowed_ips;  // masked (no host bits), in file order, no repeats
  std::chrono::seconds persistent_keepalive{0};  // 0: off
};

struct interface_config {
  wireguard::private_key private_key;
  std::uint16_t listen_port = 0;  // 0: let the system choose
  std::vector<cidr> addresses;    // as written, host bits kept; never empty
  unsigned mtu = 1420;
  std::vector<peer_config> peers;  // in file order
};

/// Where and why a file was refused. `line` is 1-based; 0 means the file as a whole (it could not be
/// read, or a section is missing altogether). `key` is the key or [Section] concerned, or empty.
struct config_error {
  std::string file;
  int line = 0;
  std::string key;
  std::string message;
  /// "FILE:LINE: KEY: message"; the ":LINE" part is left out when line is 0, "KEY: " when key is empty.
  std::string to_string() const;
};

/// Something accepted but not acted on (a wg-quick key Firebreak ignores, a world-readable file).
/// Same shape and formatting as config_error.
struct config_warning {
  std::string file;
  int line = 0;
  std::string key;
  std::string message;
  std::string to_string() const;
};

struct load_result {
  std::optional<interface_config> config;  // set exactly when error is not
  std::optional<config_error> error;
  std::vector<config_warning> warnings;  // may be non-empty either way

  explicit operator bool() const { return config.has_value(); }
};

/// Reads and parses `path`. A file that cannot be read is an error naming the file, with line 0.
/// A file others may read or write gets a warning, as wg-quick gives.
load_result load_wg_quick_file(const std::filesystem::path& path);

/// Parses `text`; `file_name_for_errors` is only used to label diagnostics.
load_result parse_wg_quick(std::string_view text, std::string file_name_for_errors);

}  // namespace firebreak::config
