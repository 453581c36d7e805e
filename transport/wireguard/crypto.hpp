// The cryptographic primitives WireGuard names, on OpenSSL 3's EVP interfaces only.
//
//   DH      X25519                       (EVP_PKEY X25519)
//   AEAD    ChaCha20-Poly1305, RFC 8439  (EVP_CIPHER "ChaCha20-Poly1305")
//   XAEAD   XChaCha20-Poly1305           (HChaCha20 derived from EVP_chacha20, then the AEAD above)
//   HASH    BLAKE2s-256                  (EVP_MD "BLAKE2S-256")
//   HMAC    HMAC-BLAKE2s                 (EVP_MAC "HMAC" over BLAKE2S-256)
//   MAC     keyed BLAKE2s, 16-byte out   (EVP_MAC "BLAKE2SMAC", size 16)
//
// Secrets live in `secret<N>`, which wipes itself with OPENSSL_cleanse and has no way to be printed.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include <openssl/crypto.h>

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

namespace firebreak::wireguard {

using bytes_view = std::span<const std::uint8_t>;
using bytes_out = std::span<std::uint8_t>;

constexpr std::size_t key_size = 32;
constexpr std::size_t hash_size = 32;
constexpr std::size_t tag_size = 16;
constexpr std::size_t mac_size = 16;
constexpr std::size_t xnonce_size = 24;

/// Key material that is wiped when it goes away. Deliberately has no stream operator.
template <std::size_t N>
struct secret {
  std::array<std::uint8_t, N> bytes{};

  secret() = default;
  secret(const secret&) = default;
  secret& operator=(const secret&) = default;
  ~secret() { wipe(); }

  void wipe() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
  std::uint8_t* data() { return bytes.data(); }
  const std::uint8_t* data() const { return bytes.data(); }
  static constexpr std::size_t size() { return N; }
  std::span<const std::uint8_t, N> view() const { return bytes; }
  bool is_zero() const;
};

template <std::size_t N>
bool secret<N>::is_zero() const {
  std::uint8_t acc = 0;
  for (auto b : bytes) acc |= b;
  return acc == 0;
}

using public_key = std::array<std::uint8_t, key_size>;
using private_key = secret<key_size>;
using symmetric_key = secret<key_size>;
using mac16 = std::array<std::uint8_t, mac_size>;
using hash32 = std::array<std::uint8_t, hash_size>;

/// Constant-time comparison.
bool equal(bytes_view a, bytes_view b);

// ---- X25519 -----------------------------------------------------------------------------------
/// Clamps and returns the public key for a private key.
public_key x25519_public(const private_key& priv);
/// Diffie-Hellman; nullopt when the result is the all-zero point (a low-order public key).
std::optional<secret<32>> x25519(const private_key& priv, const public_key& pub);

// ---- BLAKE2s ----------------------------------------------------------------------------------
/// Incremental BLAKE2s-256, for HASH(a || b || ...).
class blake2s {
 public:
  blake2s();
  ~blake2s();
  blake2s(const blake2s&) = delete;
  blake2s& operator=(const blake2s&) = delete;
  blake2s& update(bytes_view data);
  hash32 final();

 private:
  void* ctx_;
};
hash32 hash(bytes_view a, bytes_view b = {});
/// Keyed BLAKE2s with a 16-byte output (WireGuard's MAC). Key is 16 or 32 bytes.
mac16 mac(bytes_view key, bytes_view data);
/// HMAC-BLAKE2s, 32-byte output.
hash32 hmac(bytes_view key, bytes_view data);

/// WireGuard's KDF_n(key, input): n outputs chained by HMAC. Outputs are wiped by the caller's secrets.
void kdf(bytes_view key, bytes_view input, secret<32>* t1, secret<32>* t2 = nullptr,
         secret<32>* t3 = nullptr);

// ---- ChaCha20-Poly1305 -------------------------------------------------------------------------
/// RFC 8439 with an explicit 96-bit nonce (what the RFC's vectors use).
bool chacha20poly1305_seal(const symmetric_key& key, std::span<const std::uint8_t, 12> nonce,
                           bytes_view plaintext, bytes_view ad, bytes_out out);
/// One-shot AEAD with WireGuard's nonce layout (32 zero bits || 64-bit little-endian counter).
/// `out` must hold plaintext.size() + 16. Returns false only on an OpenSSL failure.
bool aead_seal(const symmetric_key& key, std::uint64_t counter, bytes_view plaintext, bytes_view ad,
               bytes_out out);
/// `out` must hold ciphertext.size() - 16. Returns false on authentication failure.
bool aead_open(const symmetric_key& key, std::uint64_t counter, bytes_view ciphertext, bytes_view ad,
               bytes_out out);

/// A keyed AEAD context kept for the life of a transport key: the per-packet cost is setting the
/// nonce, not re-expanding the key. Not thread-safe; one per direction.
class aead_context {
 public:
  explicit aead_context(const symmetric_key& key, bool encrypt);
  ~aead_context();
  aead_context(const aead_context&) = delete;
  aead_context& operator=(const aead_context&) = delete;
  bool seal(std::uint64_t counter, bytes_view plaintext, bytes_out out);
  bool open(std::uint64_t counter, bytes_view ciphertext, bytes_out out);

 private:
  EVP_CIPHER_CTX* ctx_;
};

// ---- XChaCha20-Poly1305 ------------------------------------------------------------------------
/// HChaCha20(key, nonce16) -> subkey, derived from the ChaCha20 block function of EVP_chacha20.
symmetric_key hchacha20(const symmetric_key& key, std::span<const std::uint8_t, 16> nonce);
bool xaead_seal(const symmetric_key& key, std::span<const std::uint8_t, xnonce_size> nonce,
                bytes_view plaintext, bytes_view ad, bytes_out out);
bool xaead_open(const symmetric_key& key, std::span<const std::uint8_t, xnonce_size> nonce,
                bytes_view ciphertext, bytes_view ad, bytes_out out);

// ---- encodings ---------------------------------------------------------------------------------
std::string to_hex(bytes_view data);
std::optional<std::string> from_hex_string(std::string_view hex);
std::string to_base64(bytes_view data);
/// Decodes exactly 32 bytes of standard base64 (wg's key format); nullopt otherwise.
std::optional<secret<32>> key_from_base64(std::string_view text);

}  // namespace firebreak::wireguard
