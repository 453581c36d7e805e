// Seal+open of 1350-byte packets through the engine, beside raw OpenSSL ChaCha20-Poly1305 seal+open on
// the same core: the engine's ceiling. Run by `make bench`.
#include <benchmark/benchmark.h>

#include <openssl/evp.h>

#include "tests/unit/wireguard_harness.hpp"

using namespace firebreak::test;

namespace {

constexpr std::size_t packet_size = 1350;

void engine_seal_open(benchmark::State& state) {
  network net;
  net.add({192, 168, 1, 1});
  net.add({192, 168, 1, 2});
  net.connect(0, 1, true, false);
  auto packet = ipv4_packet(net.tunnel_addr(0), net.tunnel_addr(1), packet_size);
  net.send(0, packet);
  net.pump();
  auto& a = *net.nodes[0]->dev;
  auto& b = *net.nodes[1]->dev;
  std::vector<std::uint8_t> sealed(packet_size + 64), opened(packet_size + 64);
  for (auto _ : state) {
    auto s = a.encapsulate(packet, net.now, sealed);
    auto o = b.decapsulate(s.bytes, net.nodes[0]->addr, net.now, opened);
    benchmark::DoNotOptimize(o.bytes.data());
    if (o.what != verdict::to_tunnel) state.SkipWithError("packet did not open");
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(packet_size));
}

void openssl_seal_open(benchmark::State& state) {
  std::uint8_t key[32] = {1}, nonce[12] = {}, tag[16];
  std::vector<std::uint8_t> pt(packet_size, 0xab), ct(packet_size), back(packet_size);
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  EVP_CIPHER_CTX* enc = EVP_CIPHER_CTX_new();
  EVP_CIPHER_CTX* dec = EVP_CIPHER_CTX_new();
  EVP_EncryptInit_ex(enc, cipher, nullptr, key, nullptr);
  EVP_DecryptInit_ex(dec, cipher, nullptr, key, nullptr);
  std::uint64_t counter = 0;
  int len = 0;
  for (auto _ : state) {
    std::memcpy(nonce + 4, &counter, 8);
    ++counter;
    EVP_EncryptInit_ex(enc, nullptr, nullptr, nullptr, nonce);
    EVP_EncryptUpdate(enc, ct.data(), &len, pt.data(), static_cast<int>(pt.size()));
    EVP_EncryptFinal_ex(enc, ct.data() + len, &len);
    EVP_CIPHER_CTX_ctrl(enc, EVP_CTRL_AEAD_GET_TAG, 16, tag);
    EVP_DecryptInit_ex(dec, nullptr, nullptr, nullptr, nonce);
    EVP_DecryptUpdate(dec, back.data(), &len, ct.data(), static_cast<int>(ct.size()));
    EVP_CIPHER_CTX_ctrl(dec, EVP_CTRL_AEAD_SET_TAG, 16, tag);
    if (EVP_DecryptFinal_ex(dec, back.data() + len, &len) != 1) state.SkipWithError("tag mismatch");
    benchmark::DoNotOptimize(back.data());
  }
  EVP_CIPHER_CTX_free(enc);
  EVP_CIPHER_CTX_free(dec);
  EVP_CIPHER_free(cipher);
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(packet_size));
}

}  // namespace

BENCHMARK(openssl_seal_open)->MinTime(2.0);
BENCHMARK(engine_seal_open)->MinTime(2.0);
BENCHMARK_MAIN();
