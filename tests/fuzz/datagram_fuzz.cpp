// libFuzzer target for everything the network can send us: the datagram parser and the device's
// dispatcher behind it (handshakes, cookie replies, transport data), with a live session in place.
// Input layout: a sequence of records [flags:1][len:2][bytes:len]. Flag bit 0 gives a handshake message a
// valid mac1 (so the fuzzer reaches the Noise code behind the cheap check); bit 1 advances the clock;
// bit 2 forces the under-load state; bit 3 sends the record as an IP packet from the tunnel.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "tests/unit/wireguard_harness.hpp"

using namespace firebreak::test;

namespace {

struct fixture {
  network net;
  fixture() {
    net.add({192, 168, 1, 1});
    net.add({192, 168, 1, 2});
    net.connect(0, 1, true, false);
    net.send(0, ipv4_packet(net.tunnel_addr(0), net.tunnel_addr(1)));
    net.pump();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static fixture* f = new fixture();  // one live session, reused: state carries across inputs as in life
  auto& target = *f->net.nodes[1]->dev;
  const auto mac1_key = hash({reinterpret_cast<const std::uint8_t*>(label_mac1), 8}, target.local_public_key());
  const endpoint source = endpoint::ipv4({198, 51, 100, 7}, 4242);
  std::vector<std::uint8_t> out(70000);
  std::size_t at = 0;
  while (at + 3 <= size) {
    const std::uint8_t flags = data[at];
    std::size_t len = std::size_t(data[at + 1]) | std::size_t(data[at + 2]) << 8;
    at += 3;
    len = std::min(len, size - at);
    std::vector<std::uint8_t> bytes(data + at, data + at + len);
    at += len;
    if ((flags & 1) && (bytes.size() == handshake_initiation_size || bytes.size() == handshake_response_size)) {
      auto m = mac(mac1_key, std::span(bytes).first(bytes.size() - 32));
      std::memcpy(bytes.data() + bytes.size() - 32, m.data(), 16);
    }
    if (flags & 2) f->net.now = f->net.now + std::chrono::milliseconds(flags * 97);
    target.force_under_load((flags & 4) ? std::optional<bool>(true) : std::nullopt);
    if (flags & 8)
      target.encapsulate(bytes, f->net.now, out);
    else
      target.decapsulate(bytes, source, f->net.now, out);
    target.handle_timeout(f->net.now);
    while (target.poll_transmit()) {
    }
  }
  // The live session must survive whatever came before.
  f->net.filter = {};
  f->net.nodes[0]->delivered.clear();
  f->net.send(1, ipv4_packet(f->net.tunnel_addr(1), f->net.tunnel_addr(0)));
  f->net.pump();
  return 0;
}
