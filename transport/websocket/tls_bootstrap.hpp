// A private certificate authority and a server certificate for a portal that was given none: made on
// the first start, kept in a directory (beside the database), reused on every later start.
//
//   dir/ca-cert.pem       the CA certificate: what clients and gateways are told to trust
//   dir/ca-key.pem        the CA key (0600): needed only to sign a new server certificate
//   dir/server-cert.pem   the server certificate, signed by the CA, SANs = the requested names
//   dir/server-key.pem    its key (0600)
//
// What happens on a start:
//   no CA certificate                      → a new CA (EC P-256, 10 years) and a new server certificate
//   CA expired or expiring within 30 days  → the same, with a warning: peers must trust the new CA file
//   server certificate valid, signed by the CA, same SANs, not expiring within 30 days → all reused
//   otherwise                              → a new server certificate (EC P-256, ~2 years, never past
//                                            the CA), signed with the kept CA key
// A CA certificate without its key is kept as long as the server certificate needs no renewal (an
// operator may move the CA key offline); when one is needed, the error says so. Files are replaced
// atomically (write, fsync, rename). Key material is never logged.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace firebreak::websocket {

inline constexpr auto ca_validity = std::chrono::days(3650);
inline constexpr auto server_validity = std::chrono::days(730);
/// A certificate that expires sooner than this is renewed on start.
inline constexpr auto renew_before = std::chrono::days(30);

struct bootstrap_result {
  std::filesystem::path ca_cert_path;
  std::filesystem::path server_cert_path;
  std::filesystem::path server_key_path;
  bool created = false;     // a server certificate (and maybe a CA) was written on this call
  bool ca_created = false;  // a new CA was written: peers must be given the new ca_cert_path
  std::optional<std::string> error;  // for a person to act on; the paths may be empty then

  explicit operator bool() const { return !error; }
};

/// Makes or reuses the four files in `dir` (created 0700 when missing). `hostnames_and_ips` are the
/// server certificate's subject alternative names: IPv4/IPv6 literals become IP entries, everything
/// else must be a DNS name (letters, digits, '-', '.', a leading "*." wildcard) and is compared
/// without regard to case. At least one is required. `now` decides validity and renewal.
bootstrap_result ensure_certificates(const std::filesystem::path& dir,
                                     const std::vector<std::string>& hostnames_and_ips,
                                     std::chrono::system_clock::time_point now);

}  // namespace firebreak::websocket
