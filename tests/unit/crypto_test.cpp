// The primitives against published vectors: RFC 7748 (X25519), RFC 8439 (ChaCha20-Poly1305),
// RFC 7693 (BLAKE2s), draft-irtf-cfrg-xchacha-03 (HChaCha20, XChaCha20-Poly1305). The keyed
// 16-byte BLAKE2s and HMAC-BLAKE2s answers come from Python's hashlib, an independent implementation.
#include <doctest/doctest.h>

#include <string>

#include "tests/unit/test_support.hpp"
#include "transport/wireguard/crypto.hpp"

using namespace firebreak::wireguard;
using firebreak::test::array_from_hex;
using firebreak::test::hex;
using firebreak::test::secret_from_hex;
using firebreak::test::unhex;

namespace {
const std::string sunscreen =
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
    "sunscreen would be it.";
bytes_view as_bytes(const std::string& s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }
}  // namespace

TEST_CASE("X25519 matches RFC 7748 section 6.1") {
  auto alice = secret_from_hex<32>("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  auto bob = secret_from_hex<32>("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  CHECK(hex(x25519_public(alice)) == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  CHECK(hex(x25519_public(bob)) == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  auto shared = x25519(alice, x25519_public(bob));
  REQUIRE(shared);
  CHECK(hex(shared->bytes) == "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
}

TEST_CASE("X25519 refuses a low-order public key") {
  auto alice = secret_from_hex<32>("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  public_key zero{};
  CHECK_FALSE(x25519(alice, zero).has_value());
}

TEST_CASE("ChaCha20-Poly1305 matches RFC 8439 section 2.8.2") {
  auto key = secret_from_hex<32>("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  auto nonce = array_from_hex<12>("070000004041424344454647");
  auto ad = unhex("50515253c0c1c2c3c4c5c6c7");
  std::vector<std::uint8_t> out(sunscreen.size() + 16);
  REQUIRE(chacha20poly1305_seal(key, nonce, as_bytes(sunscreen), ad, out));
  CHECK(hex(out) ==
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71"
        "de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def0"
        "8e4b7a9de576d26586cec64b61161ae10b594f09e26a7e902ecbd0600691");
}

TEST_CASE("WireGuard's AEAD round-trips with a counter nonce and rejects tampering") {
  auto key = secret_from_hex<32>("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  std::vector<std::uint8_t> ct(sunscreen.size() + 16), pt(sunscreen.size());
  REQUIRE(aead_seal(key, 42, as_bytes(sunscreen), {}, ct));
  CHECK(aead_open(key, 42, ct, {}, pt));
  CHECK(std::string(pt.begin(), pt.end()) == sunscreen);
  CHECK_FALSE(aead_open(key, 43, ct, {}, pt));  // wrong counter
  ct[3] ^= 1;
  CHECK_FALSE(aead_open(key, 42, ct, {}, pt));  // flipped bit

  aead_context sealer(key, true), opener(key, false);
  std::vector<std::uint8_t> ct2(sunscreen.size() + 16);
  REQUIRE(sealer.seal(7, as_bytes(sunscreen), ct2));
  CHECK(opener.open(7, ct2, pt));
  CHECK_FALSE(opener.open(8, ct2, pt));
  CHECK(opener.open(7, ct2, pt));  // a failed open leaves the context usable
}

TEST_CASE("BLAKE2s-256 matches RFC 7693 appendix B") {
  std::string abc = "abc";
  CHECK(hex(hash(as_bytes(abc))) == "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
  blake2s incremental;
  incremental.update(as_bytes(std::string("a"))).update(as_bytes(std::string("bc")));
  CHECK(hex(incremental.final()) == hex(hash(as_bytes(abc))));
}

TEST_CASE("keyed BLAKE2s with 16-byte output and HMAC-BLAKE2s match hashlib") {
  std::vector<std::uint8_t> key32(32), key16(16);
  for (int i = 0; i < 32; ++i) key32[i] = static_cast<std::uint8_t>(i);
  for (int i = 0; i < 16; ++i) key16[i] = static_cast<std::uint8_t>(i);
  std::string msg = "Firebreak mac test";
  CHECK(hex(mac(key32, as_bytes(msg))) == "3554c86f5210c5931c83b4400c1e8b5d");
  CHECK(hex(mac(key16, as_bytes(msg))) == "d3f85d9645e095cdf768e6707bab78d4");
  CHECK(hex(hmac(key32, as_bytes(msg))) == "11e294b49770c034a468e46060d5985e5d8aa3c17f7b6257bc46685ddf698db8");
}

TEST_CASE("HChaCha20 matches draft-irtf-cfrg-xchacha section 2.2.1") {
  auto key = secret_from_hex<32>("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  auto nonce = array_from_hex<16>("000000090000004a0000000031415927");
  CHECK(hex(hchacha20(key, nonce).bytes) == "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc");
}

TEST_CASE("XChaCha20-Poly1305 matches draft-irtf-cfrg-xchacha appendix A.3.1") {
  auto key = secret_from_hex<32>("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  auto nonce = array_from_hex<24>("404142434445464748494a4b4c4d4e4f5051525354555657");
  auto ad = unhex("50515253c0c1c2c3c4c5c6c7");
  std::vector<std::uint8_t> out(sunscreen.size() + 16), back(sunscreen.size());
  REQUIRE(xaead_seal(key, nonce, as_bytes(sunscreen), ad, out));
  CHECK(hex(out) ==
        "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64"
        "c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c"
        "97637da9768812f615c68b13b52ec0875924c1c7987947deafd8780acf49");
  CHECK(xaead_open(key, nonce, out, ad, back));
  out[0] ^= 0x80;
  CHECK_FALSE(xaead_open(key, nonce, out, ad, back));
}

TEST_CASE("keys decode from wg's base64 form and nothing else") {
  auto k = key_from_base64("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=");
  REQUIRE(k);
  CHECK(to_base64(k->bytes) == "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=");
  CHECK_FALSE(key_from_base64("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBm=="));
  CHECK_FALSE(key_from_base64("short="));
  CHECK_FALSE(key_from_base64("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBm!="));
}
