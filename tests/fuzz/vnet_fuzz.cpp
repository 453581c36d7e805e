// libFuzzer target for what a TUN with the virtio header hands the data path (vnet_split.hpp), and for
// the coalescer that writes super-packets back (tcp_coalesce.hpp).
// Properties checked beyond "no crash, no sanitizer report":
//   * a frame that splits yields packets no longer than the frame's packet, and an error appends nothing;
//   * every TCP segment cut from a TSO frame carries a correct TCP checksum (and IPv4 header checksum);
//   * coalescing the segments and splitting each written frame again gives back exactly the segments.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "transport/tun/tcp_coalesce.hpp"
#include "transport/tun/vnet_split.hpp"

namespace {

using namespace firebreak::tun;

void check(bool ok) {
  if (!ok) std::abort();
}

std::uint16_t ones_sum(const std::uint8_t* p, std::size_t n, std::uint32_t sum = 0) {
  for (std::size_t i = 0; i < n; ++i) sum += i % 2 == 0 ? p[i] * 256u : p[i];
  while (sum > 0xffff) sum = (sum >> 16) + (sum & 0xffff);
  return static_cast<std::uint16_t>(sum);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> frame(data, size);
  packet_arena out;
  const auto e = split_frame(frame, out);
  if (e != split_error::none) {
    check(out.size() == 0);
    return 0;
  }
  check(size > vnet_header_size);
  const bool tso = (data[1] & 0x7f) == 1 || (data[1] & 0x7f) == 4;
  for (std::size_t i = 0; i < out.size(); ++i) {
    check(out[i].size() <= size - vnet_header_size);
    if (!tso) continue;
    const auto p = out[i];
    const bool v6 = (p[0] >> 4) == 6;
    const std::size_t ip_len = v6 ? 40 : std::size_t(p[0] & 0x0f) * 4;
    const std::size_t l4 = p.size() - ip_len;
    if (!v6) check(ones_sum(p.data(), ip_len) == 0xffff);
    std::uint32_t pseudo = v6 ? ones_sum(p.data() + 8, 32) : ones_sum(p.data() + 12, 8);
    pseudo += 6 + static_cast<std::uint32_t>(l4 & 0xffff) + static_cast<std::uint32_t>(l4 >> 16);
    check(ones_sum(p.data() + ip_len, l4, pseudo) == 0xffff);
  }
  // Coalesce what came out, write it "to the TUN", read it back: the same packets, in the same order.
  std::vector<std::span<const std::uint8_t>> views;
  out.views(views);
  tcp_coalescer c;
  for (auto v : views) c.add(v);
  packet_arena back;
  c.finish([&](std::span<const iovec> parts) {
    std::vector<std::uint8_t> f;
    for (const auto& p : parts)
      f.insert(f.end(), static_cast<const std::uint8_t*>(p.iov_base),
               static_cast<const std::uint8_t*>(p.iov_base) + p.iov_len);
    check(split_frame(f, back) == split_error::none);
  });
  check(back.size() == out.size());
  // Coalescing only merges what it can prove contiguous; per flow the order holds, and a single flow
  // (what one super-packet is) comes back byte for byte, checksums recomputed alike.
  if (tso)
    for (std::size_t i = 0; i < out.size(); ++i)
      check(back[i].size() == out[i].size() && std::memcmp(back[i].data(), out[i].data(), out[i].size()) == 0);
  return 0;
}
