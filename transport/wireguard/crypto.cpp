#include "transport/wireguard/crypto.hpp"

#include <cstring>
#include <stdexcept>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

namespace firebreak::wireguard {
namespace {

// Algorithms are fetched once: fetching by name on every call costs a provider lookup.
struct algorithms {
  EVP_MD* blake2s = EVP_MD_fetch(nullptr, "BLAKE2S-256", nullptr);
  EVP_MAC* hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC* blake2smac = EVP_MAC_fetch(nullptr, "BLAKE2SMAC", nullptr);
  EVP_CIPHER* chachapoly = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  EVP_CIPHER* chacha20 = EVP_CIPHER_fetch(nullptr, "ChaCha20", nullptr);

  algorithms() {
    if (!blake2s || !hmac || !blake2smac || !chachapoly || !chacha20)
      throw std::runtime_error("OpenSSL lacks an algorithm WireGuard needs (BLAKE2s, ChaCha20-Poly1305)");
  }
};

const algorithms& algo() {
  static const algorithms instance;
  return instance;
}

void nonce_for(std::uint64_t counter, std::uint8_t (&nonce)[12]) {
  std::memset(nonce, 0, 4);
  for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<std::uint8_t>(counter >> (8 * i));
}

struct cipher_ctx {
  EVP_CIPHER_CTX* p = EVP_CIPHER_CTX_new();
  ~cipher_ctx() { EVP_CIPHER_CTX_free(p); }
};

bool aead_run(EVP_CIPHER_CTX* ctx, bool encrypt, const std::uint8_t* nonce12, bytes_view in,
              bytes_view ad, bytes_out out) {
  int len = 0;
  if (encrypt) {
    if (out.size() < in.size() + tag_size) return false;
    if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce12) != 1) return false;
    if (!ad.empty() && EVP_EncryptUpdate(ctx, nullptr, &len, ad.data(), static_cast<int>(ad.size())) != 1)
      return false;
    if (!in.empty() &&
        EVP_EncryptUpdate(ctx, out.data(), &len, in.data(), static_cast<int>(in.size())) != 1)
      return false;
    if (EVP_EncryptFinal_ex(ctx, out.data() + in.size(), &len) != 1) return false;
    return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, tag_size, out.data() + in.size()) == 1;
  }
  if (in.size() < tag_size) return false;
  const std::size_t plain = in.size() - tag_size;
  if (out.size() < plain) return false;
  if (EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce12) != 1) return false;
  if (!ad.empty() && EVP_DecryptUpdate(ctx, nullptr, &len, ad.data(), static_cast<int>(ad.size())) != 1)
    return false;
  if (plain > 0 &&
      EVP_DecryptUpdate(ctx, out.data(), &len, in.data(), static_cast<int>(plain)) != 1)
    return false;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, tag_size,
                          const_cast<std::uint8_t*>(in.data() + plain)) != 1)
    return false;
  return EVP_DecryptFinal_ex(ctx, out.data() + plain, &len) == 1;
}

bool aead_once(const symmetric_key& key, const std::uint8_t* nonce12, bool encrypt, bytes_view in,
               bytes_view ad, bytes_out out) {
  cipher_ctx ctx;
  if (!ctx.p) return false;
  if (EVP_CipherInit_ex(ctx.p, algo().chachapoly, nullptr, key.data(), nullptr, encrypt ? 1 : 0) != 1)
    return false;
  return aead_run(ctx.p, encrypt, nonce12, in, ad, out);
}

// Writes the MAC straight into the caller's memory (a secret<> where it is key material), so no
// unwiped copy of a derived key is left behind on the stack.
void mac_run(EVP_MAC* alg, bytes_view key, bytes_view data, OSSL_PARAM* params, std::uint8_t* out,
             std::size_t outlen) {
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(alg);
  std::size_t written = 0;
  bool ok = ctx && EVP_MAC_init(ctx, key.data(), key.size(), params) == 1 &&
            EVP_MAC_update(ctx, data.data(), data.size()) == 1 &&
            EVP_MAC_final(ctx, out, &written, outlen) == 1 && written == outlen;
  EVP_MAC_CTX_free(ctx);
  if (!ok) throw std::runtime_error("OpenSSL MAC computation failed");
}

void hmac_into(bytes_view key, bytes_view data, std::uint8_t* out) {
  char digest[] = "BLAKE2S-256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  mac_run(algo().hmac, key, data, params, out, hash_size);
}

}  // namespace

bool equal(bytes_view a, bytes_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// ---- X25519 -----------------------------------------------------------------------------------

public_key x25519_public(const private_key& priv) {
  public_key out{};
  EVP_PKEY* key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, priv.data(), priv.size());
  std::size_t len = out.size();
  bool ok = key && EVP_PKEY_get_raw_public_key(key, out.data(), &len) == 1 && len == out.size();
  EVP_PKEY_free(key);
  if (!ok) throw std::runtime_error("X25519 public key derivation failed");
  return out;
}

std::optional<secret<32>> x25519(const private_key& priv, const public_key& pub) {
  EVP_PKEY* mine = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, priv.data(), priv.size());
  EVP_PKEY* theirs = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, pub.data(), pub.size());
  EVP_PKEY_CTX* ctx = mine ? EVP_PKEY_CTX_new(mine, nullptr) : nullptr;
  secret<32> shared;
  std::size_t len = shared.size();
  // OpenSSL refuses to derive an all-zero secret, which is exactly the low-order-point check
  // the whitepaper asks for; is_zero() keeps the rule explicit should that ever change.
  bool ok = ctx && theirs && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, theirs) == 1 &&
            EVP_PKEY_derive(ctx, shared.data(), &len) == 1 && len == shared.size();
  EVP_PKEY_CTX_free(ctx);
  EVP_PKEY_free(theirs);
  EVP_PKEY_free(mine);
  if (!ok || shared.is_zero()) return std::nullopt;
  return shared;
}

// ---- BLAKE2s ----------------------------------------------------------------------------------

blake2s::blake2s() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), algo().blake2s, nullptr) != 1)
    throw std::runtime_error("BLAKE2s initialisation failed");
}

blake2s::~blake2s() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

blake2s& blake2s::update(bytes_view data) {
  if (!data.empty()) EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size());
  return *this;
}

hash32 blake2s::final() {
  hash32 out{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), out.data(), &len);
  return out;
}

hash32 hash(bytes_view a, bytes_view b) {
  blake2s h;
  h.update(a).update(b);
  return h.final();
}

mac16 mac(bytes_view key, bytes_view data) {
  std::size_t size = mac_size;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_construct_end()};
  mac16 out{};
  mac_run(algo().blake2smac, key, data, params, out.data(), out.size());
  return out;
}

hash32 hmac(bytes_view key, bytes_view data) {
  hash32 out{};
  hmac_into(key, data, out.data());
  return out;
}

void kdf(bytes_view key, bytes_view input, secret<32>* t1, secret<32>* t2, secret<32>* t3) {
  secret<32> t0;
  hmac_into(key, input, t0.data());
  // The chaining key may be one of the outputs: read `key` only before writing them.
  std::uint8_t one = 1;
  hmac_into(t0.bytes, {&one, 1}, t1->data());
  if (!t2) return;
  secret<33> buf;
  std::memcpy(buf.data(), t1->data(), 32);
  buf.bytes[32] = 2;
  hmac_into(t0.bytes, buf.bytes, t2->data());
  if (t3) {
    std::memcpy(buf.data(), t2->data(), 32);
    buf.bytes[32] = 3;
    hmac_into(t0.bytes, buf.bytes, t3->data());
  }
}

// ---- ChaCha20-Poly1305 -------------------------------------------------------------------------

bool chacha20poly1305_seal(const symmetric_key& key, std::span<const std::uint8_t, 12> nonce,
                           bytes_view plaintext, bytes_view ad, bytes_out out) {
  return aead_once(key, nonce.data(), true, plaintext, ad, out);
}

bool aead_seal(const symmetric_key& key, std::uint64_t counter, bytes_view plaintext, bytes_view ad,
               bytes_out out) {
  std::uint8_t nonce[12];
  nonce_for(counter, nonce);
  return aead_once(key, nonce, true, plaintext, ad, out);
}

bool aead_open(const symmetric_key& key, std::uint64_t counter, bytes_view ciphertext, bytes_view ad,
               bytes_out out) {
  std::uint8_t nonce[12];
  nonce_for(counter, nonce);
  return aead_once(key, nonce, false, ciphertext, ad, out);
}

aead_context::aead_context(const symmetric_key& key, bool encrypt) : ctx_(EVP_CIPHER_CTX_new()) {
  if (!ctx_ || EVP_CipherInit_ex(ctx_, algo().chachapoly, nullptr, key.data(), nullptr, encrypt ? 1 : 0) != 1)
    throw std::runtime_error("ChaCha20-Poly1305 key setup failed");
}

aead_context::~aead_context() { EVP_CIPHER_CTX_free(ctx_); }  // frees and cleanses the key schedule

bool aead_context::seal(std::uint64_t counter, bytes_view plaintext, bytes_out out) {
  std::uint8_t nonce[12];
  nonce_for(counter, nonce);
  return aead_run(ctx_, true, nonce, plaintext, {}, out);
}

bool aead_context::open(std::uint64_t counter, bytes_view ciphertext, bytes_out out) {
  std::uint8_t nonce[12];
  nonce_for(counter, nonce);
  return aead_run(ctx_, false, nonce, ciphertext, {}, out);
}

// ---- XChaCha20-Poly1305 ------------------------------------------------------------------------

// ChaCha20's block function returns rounds(state) + state. HChaCha20 is rounds(state) without the
// final addition, keeping words 0..3 and 12..15. EVP_chacha20 takes a 16-byte IV laid out exactly as
// state words 12..15, so one block of keystream over zeros, minus the known input words, is HChaCha20.
symmetric_key hchacha20(const symmetric_key& key, std::span<const std::uint8_t, 16> nonce) {
  static constexpr std::uint32_t sigma[4] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
  std::uint8_t zeros[64] = {};
  secret<64> block;
  cipher_ctx ctx;
  int len = 0;
  if (!ctx.p || EVP_EncryptInit_ex(ctx.p, algo().chacha20, nullptr, key.data(), nonce.data()) != 1 ||
      EVP_EncryptUpdate(ctx.p, block.data(), &len, zeros, sizeof zeros) != 1 || len != 64)
    throw std::runtime_error("HChaCha20 failed");
  auto word = [](const std::uint8_t* p) {
    return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
  };
  auto put = [](std::uint8_t* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
  };
  symmetric_key out;
  for (int i = 0; i < 4; ++i) {
    put(out.data() + 4 * i, word(block.data() + 4 * i) - sigma[i]);
    put(out.data() + 16 + 4 * i, word(block.data() + 48 + 4 * i) - word(nonce.data() + 4 * i));
  }
  return out;
}

namespace {
bool xaead(const symmetric_key& key, std::span<const std::uint8_t, xnonce_size> nonce, bool encrypt,
           bytes_view in, bytes_view ad, bytes_out out) {
  symmetric_key sub = hchacha20(key, nonce.first<16>());
  std::uint8_t n12[12] = {};
  std::memcpy(n12 + 4, nonce.data() + 16, 8);
  return aead_once(sub, n12, encrypt, in, ad, out);
}
}  // namespace

bool xaead_seal(const symmetric_key& key, std::span<const std::uint8_t, xnonce_size> nonce,
                bytes_view plaintext, bytes_view ad, bytes_out out) {
  return xaead(key, nonce, true, plaintext, ad, out);
}

bool xaead_open(const symmetric_key& key, std::span<const std::uint8_t, xnonce_size> nonce,
                bytes_view ciphertext, bytes_view ad, bytes_out out) {
  return xaead(key, nonce, false, ciphertext, ad, out);
}

// ---- encodings ---------------------------------------------------------------------------------

std::string to_hex(bytes_view data) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (auto b : data) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

std::optional<std::string> from_hex_string(std::string_view hex) {
  if (hex.size() % 2) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

std::string to_base64(bytes_view data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data.data(), static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<secret<32>> key_from_base64(std::string_view text) {
  // A 32-byte key is 44 characters ending in exactly one '='.
  if (text.size() != 44 || text[43] != '=' || text[42] == '=') return std::nullopt;
  secret<33> decoded;  // EVP_DecodeBlock writes 33 bytes for 44 characters, padding included
  int n = EVP_DecodeBlock(decoded.data(), reinterpret_cast<const unsigned char*>(text.data()), 44);
  if (n != 33) return std::nullopt;
  secret<32> key;
  std::memcpy(key.data(), decoded.data(), 32);
  return key;
}

}  // namespace firebreak::wireguard
