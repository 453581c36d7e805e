// Bearer tokens for clients, gateways and admins.
//
// A token is 32 random bytes in base64url without padding behind a prefix that names its kind:
// "fbc_" client, "fbg_" gateway, "fba_" admin (47 characters in all). The portal shows a token once,
// when it is created, and keeps only its SHA-256 digest, so a stolen database grants nothing.
//
// A token in the clear is a `token`: it has no stream operator or formatter, so it cannot slip into a
// log line or an error message by accident; `reveal()` is the one deliberate way to read it.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "transport/wireguard/random.hpp"

namespace firebreak::portal {

enum class token_kind { client, gateway, admin };

/// "fbc_", "fbg_" or "fba_".
std::string_view token_prefix(token_kind kind);

/// A token in the clear. Move-only; its bytes are wiped when it goes away.
class token {
 public:
  explicit token(std::string text) : text_(std::move(text)) {}
  token(token&& other) noexcept;
  token& operator=(token&& other) noexcept;
  token(const token&) = delete;
  token& operator=(const token&) = delete;
  ~token();

  /// The text to show the admin once (or to hand to a test client). Never log it.
  const std::string& reveal() const { return text_; }

 private:
  void wipe();
  std::string text_;
};

using token_digest = std::array<std::uint8_t, 32>;

/// A fresh token of `kind` from 32 bytes of `random`.
token mint_token(token_kind kind, wireguard::random_source& random);

/// True when `presented` has the shape of a `kind` token: its prefix and 43 base64url characters.
/// Says nothing about whether the token is known.
bool is_well_formed(std::string_view presented, token_kind kind);

/// SHA-256 of the token text: what the store keeps and looks tokens up by.
token_digest digest(std::string_view presented);

/// Constant-time comparison of two digests.
bool digests_equal(const token_digest& a, const token_digest& b);

}  // namespace firebreak::portal
