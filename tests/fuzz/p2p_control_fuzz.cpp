// libFuzzer target for p2p control packets: what a peer (through the tunnel) or a local program
// (through the TUN) could hand the classifier. Properties beyond "no crash, no sanitizer report":
//   * a goodbye is exactly the 48 bytes goodbye() makes;
//   * a payload always lies inside the packet;
//   * a packet that is not a control packet changes nothing when its first byte is kept: flipping a
//     byte outside the 40-byte IPv6 header never turns an ordinary packet into a control packet.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "messages/p2p_control.hpp"

namespace p2p = firebreak::messages::p2p;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  const auto c = p2p::classify(in);
  if (c.what == p2p::kind::goodbye) {
    const auto g = p2p::goodbye();
    if (size != g.size() || !std::equal(g.begin(), g.end(), data)) std::abort();
  }
  if (!c.payload.empty() && (c.payload.data() < data || c.payload.data() + c.payload.size() > data + size)) std::abort();
  if (c.what == p2p::kind::not_control && size > p2p::ipv6_header_size) {
    std::vector<std::uint8_t> copy(data, data + size);
    copy.back() ^= 0xff;
    if (p2p::classify(copy).what != p2p::kind::not_control) std::abort();
  }
  return 0;
}
