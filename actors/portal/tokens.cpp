#include "actors/portal/tokens.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <stdexcept>

namespace firebreak::portal {

namespace {

constexpr std::size_t random_bytes = 32;
constexpr std::size_t encoded_length = 43;  // ceil(32 * 8 / 6), no padding
constexpr std::string_view base64url_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url(const std::array<std::uint8_t, random_bytes>& bytes) {
  std::string out;
  out.reserve(encoded_length);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = std::uint32_t(bytes[i]) << 16 | std::uint32_t(bytes[i + 1]) << 8 | bytes[i + 2];
    for (int shift = 18; shift >= 0; shift -= 6) out += base64url_alphabet[(v >> shift) & 0x3f];
  }
  // 32 = 10 * 3 + 2: two bytes remain, which make three characters.
  const std::uint32_t v = std::uint32_t(bytes[i]) << 16 | std::uint32_t(bytes[i + 1]) << 8;
  out += base64url_alphabet[(v >> 18) & 0x3f];
  out += base64url_alphabet[(v >> 12) & 0x3f];
  out += base64url_alphabet[(v >> 6) & 0x3f];
  return out;
}

}  // namespace

std::string_view token_prefix(token_kind kind) {
  switch (kind) {
    case token_kind::client: return "fbc_";
    case token_kind::gateway: return "fbg_";
    case token_kind::admin: return "fba_";
  }
  return "";
}

token::token(token&& other) noexcept : text_(std::move(other.text_)) { other.wipe(); }

token& token::operator=(token&& other) noexcept {
  if (this != &other) {
    wipe();
    text_ = std::move(other.text_);
    other.wipe();
  }
  return *this;
}

token::~token() { wipe(); }

void token::wipe() {
  if (!text_.empty()) OPENSSL_cleanse(text_.data(), text_.size());
  text_.clear();
}

token mint_token(token_kind kind, wireguard::random_source& random) {
  std::array<std::uint8_t, random_bytes> bytes{};
  random.fill(bytes);
  std::string text(token_prefix(kind));
  text += base64url(bytes);
  OPENSSL_cleanse(bytes.data(), bytes.size());
  return token(std::move(text));
}

bool is_well_formed(std::string_view presented, token_kind kind) {
  const auto prefix = token_prefix(kind);
  if (presented.size() != prefix.size() + encoded_length || !presented.starts_with(prefix)) return false;
  for (char c : presented.substr(prefix.size()))
    if (base64url_alphabet.find(c) == std::string_view::npos) return false;
  return true;
}

token_digest digest(std::string_view presented) {
  token_digest out{};
  unsigned int length = 0;
  if (EVP_Digest(presented.data(), presented.size(), out.data(), &length, EVP_sha256(), nullptr) != 1 ||
      length != out.size())
    throw std::runtime_error("SHA-256 is unavailable in this OpenSSL");
  return out;
}

bool digests_equal(const token_digest& a, const token_digest& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace firebreak::portal
