// The Noise layer against the cacophony vectors for Noise_IK and Noise_IKpsk2 over
// 25519/ChaChaPoly/BLAKE2s, read from the shared vectors beside the checkout at test time.
#include <doctest/doctest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/unit/test_support.hpp"
#include "transport/wireguard/noise.hpp"

using namespace firebreak::wireguard;
using namespace firebreak::test;

namespace {

nlohmann::json load_vectors() {
  auto dir = shared_dir();
  if (dir.empty()) return {};
  std::ifstream in(dir / "vectors" / "noise-ik-25519-chachapoly-blake2s.json");
  if (!in) return {};
  return nlohmann::json::parse(in);
}

void run_vector(const nlohmann::json& v) {
  const std::string name = v.at("protocol_name");
  const bool psk_mode = name.find("psk2") != std::string::npos;
  auto init_s = noise::keypair_25519::from_private(secret_from_hex<32>(v.at("init_static").get<std::string>()));
  auto resp_s = noise::keypair_25519::from_private(secret_from_hex<32>(v.at("resp_static").get<std::string>()));
  auto init_e = noise::keypair_25519::from_private(secret_from_hex<32>(v.at("init_ephemeral").get<std::string>()));
  auto resp_e = noise::keypair_25519::from_private(secret_from_hex<32>(v.at("resp_ephemeral").get<std::string>()));
  CHECK(hex(resp_s.pub) == v.at("init_remote_static").get<std::string>());
  std::optional<symmetric_key> init_psk, resp_psk;
  if (psk_mode) {
    init_psk = secret_from_hex<32>(v.at("init_psks")[0].get<std::string>());
    resp_psk = secret_from_hex<32>(v.at("resp_psks")[0].get<std::string>());
  }
  auto init_prologue = unhex(v.at("init_prologue").get<std::string>());
  auto resp_prologue = unhex(v.at("resp_prologue").get<std::string>());
  auto init = noise::ik_handshake::initiator(name, init_prologue, init_s, resp_s.pub, init_psk);
  auto resp = noise::ik_handshake::responder(name, resp_prologue, resp_s, resp_psk);

  const auto& messages = v.at("messages");
  REQUIRE(messages.size() >= 2);
  // Message 1: initiator -> responder.
  auto p1 = unhex(messages[0].at("payload").get<std::string>());
  std::vector<std::uint8_t> m1(p1.size() + noise::ik_handshake::message1_overhead);
  REQUIRE(init.write_message1(init_e, p1, m1));
  CHECK(hex(m1) == messages[0].at("ciphertext").get<std::string>());
  std::vector<std::uint8_t> got1(p1.size());
  REQUIRE(resp.read_message1(m1, got1));
  CHECK(got1 == p1);
  CHECK(resp.remote_static() == init_s.pub);
  // Message 2: responder -> initiator.
  auto p2 = unhex(messages[1].at("payload").get<std::string>());
  std::vector<std::uint8_t> m2(p2.size() + noise::ik_handshake::message2_overhead);
  REQUIRE(resp.write_message2(resp_e, p2, m2));
  CHECK(hex(m2) == messages[1].at("ciphertext").get<std::string>());
  std::vector<std::uint8_t> got2(p2.size());
  REQUIRE(init.read_message2(m2, got2));
  CHECK(got2 == p2);
  CHECK(hex(init.handshake_hash()) == v.at("handshake_hash").get<std::string>());
  CHECK(hex(resp.handshake_hash()) == v.at("handshake_hash").get<std::string>());

  // Transport messages alternate direction; each direction counts its own nonces from zero.
  auto [i2r, r2i] = init.split();
  std::uint64_t n_i2r = 0, n_r2i = 0;
  for (std::size_t i = 2; i < messages.size(); ++i) {
    auto pt = unhex(messages[i].at("payload").get<std::string>());
    std::vector<std::uint8_t> ct(pt.size() + 16);
    const bool from_initiator = i % 2 == 0;
    REQUIRE(aead_seal(from_initiator ? i2r : r2i, from_initiator ? n_i2r++ : n_r2i++, pt, {}, ct));
    CHECK(hex(ct) == messages[i].at("ciphertext").get<std::string>());
  }
}

}  // namespace

TEST_CASE("Noise IK and IKpsk2 handshakes reproduce the cacophony vectors") {
  auto doc = load_vectors();
  if (doc.is_null()) {
    MESSAGE("skipped: the shared Noise vectors are not beside this checkout");
    return;
  }
  bool saw_psk2 = false;
  for (const auto& v : doc.at("vectors")) {
    CAPTURE(v.at("protocol_name").get<std::string>());
    saw_psk2 |= v.at("protocol_name").get<std::string>() == "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
    run_vector(v);
  }
  CHECK(saw_psk2);
}

TEST_CASE("a tampered message 1 is refused by the responder") {
  auto s_i = noise::keypair_25519::from_private(secret_from_hex<32>(std::string(64, '1')));
  auto s_r = noise::keypair_25519::from_private(secret_from_hex<32>(std::string(64, '2')));
  auto e_i = noise::keypair_25519::from_private(secret_from_hex<32>(std::string(64, '3')));
  auto init = noise::ik_handshake::initiator("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s", {}, s_i, s_r.pub, symmetric_key{});
  auto resp = noise::ik_handshake::responder("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s", {}, s_r, symmetric_key{});
  std::vector<std::uint8_t> m1(noise::ik_handshake::message1_overhead);
  REQUIRE(init.write_message1(e_i, {}, m1));
  m1[40] ^= 1;
  std::vector<std::uint8_t> none;
  CHECK_FALSE(resp.read_message1(m1, none));
}
