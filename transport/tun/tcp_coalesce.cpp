#include "transport/tun/tcp_coalesce.hpp"

#include <algorithm>
#include <cstring>

#include "transport/tun/vnet_split.hpp"

namespace firebreak::tun {

namespace {

constexpr std::uint8_t protocol_tcp = 6;
constexpr std::uint8_t tcp_ack = 0x10, tcp_psh = 0x08;
constexpr std::uint8_t needs_csum = 1, gso_tcpv4 = 1, gso_tcpv6 = 4;

std::uint16_t load_be16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }
std::uint32_t load_be32(const std::uint8_t* p) {
  return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3];
}
void store_be16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
void store_le16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}

/// Whether `p` is TCP over IPv4 without options or IPv6 without extension headers (its flow can be
/// compared with a run's).
bool plain_tcp(std::span<const std::uint8_t> p, std::size_t& ip_len, bool& v6) {
  if (p.size() < 40) return false;
  if (p[0] >> 4 == 4 && (p[0] & 0x0f) == 5 && p[9] == protocol_tcp) {
    ip_len = 20;
    v6 = false;
    return true;
  }
  if (p[0] >> 4 == 6 && p.size() >= 60 && p[6] == protocol_tcp) {
    ip_len = 40;
    v6 = true;
    return true;
  }
  return false;
}

/// IP and TCP header lengths of a TCP segment we may coalesce; 0 when it is not one.
std::size_t tcp_headers(std::span<const std::uint8_t> p, std::size_t& ip_len, bool& v6) {
  if (p.size() < 40) return 0;
  const auto version = p[0] >> 4;
  if (version == 4) {
    ip_len = std::size_t(p[0] & 0x0f) * 4;
    // No options, not a fragment (MF clear, offset zero), the total length exactly the packet.
    if (ip_len != 20 || p[9] != protocol_tcp || (load_be16(&p[6]) & 0x3fff) != 0 || load_be16(&p[2]) != p.size())
      return 0;
    v6 = false;
  } else if (version == 6) {
    ip_len = 40;
    if (p.size() < 60 || p[6] != protocol_tcp || std::size_t(load_be16(&p[4])) + 40 != p.size()) return 0;
    v6 = true;
  } else {
    return 0;
  }
  if (p.size() < ip_len + 20) return 0;
  const std::size_t tcp_len = std::size_t(p[ip_len + 12] >> 4) * 4;
  if (tcp_len < 20 || ip_len + tcp_len > p.size()) return 0;
  const std::uint8_t flags = p[ip_len + 13];
  if ((flags & ~(tcp_ack | tcp_psh)) != 0 || !(flags & tcp_ack)) return 0;
  if (ip_len + tcp_len == p.size()) return 0;  // no payload: a pure ACK goes as it is
  return ip_len + tcp_len;
}

}  // namespace

bool tcp_coalescer::joins(const run& r, std::span<const std::uint8_t> p, std::size_t ip_len, std::size_t headers) const {
  if (!r.coalescable || r.closed || r.headers != headers || r.ip_len != ip_len) return false;
  const auto* a = r.first.data();
  const auto* b = p.data();
  if (r.v6) {
    // Version, traffic class, flow label; hop limit; addresses.
    if (std::memcmp(a, b, 4) != 0 || a[7] != b[7] || std::memcmp(a + 8, b + 8, 32) != 0) return false;
  } else {
    // TOS; DF; TTL; addresses.
    if (a[1] != b[1] || (a[6] & 0xe0) != (b[6] & 0xe0) || a[8] != b[8] || std::memcmp(a + 12, b + 12, 8) != 0)
      return false;
  }
  const auto* ta = a + ip_len;
  const auto* tb = b + ip_len;
  // Ports; acknowledgement; window; options (everything after the checksum and urgent pointer).
  if (std::memcmp(ta, tb, 4) != 0 || std::memcmp(ta + 8, tb + 8, 4) != 0 || std::memcmp(ta + 14, tb + 14, 2) != 0 ||
      std::memcmp(ta + 20, tb + 20, headers - ip_len - 20) != 0)
    return false;
  if (load_be32(tb + 4) != r.next_seq) return false;
  const std::size_t payload = p.size() - headers;
  if (payload > r.segment || r.members.size() >= max_run_segments || headers + r.payload + payload > max_run_bytes)
    return false;
  return true;
}

void tcp_coalescer::add(std::span<const std::uint8_t> packet) {
  std::size_t ip_len = 0;
  bool v6 = false;
  const std::size_t headers = tcp_headers(packet, ip_len, v6);
  if (headers != 0 || plain_tcp(packet, ip_len, v6)) {
    // The newest run of the same flow decides: join it, or close it and start the next (so nothing of
    // this flow can join a run from before this packet).
    for (std::size_t i = used_; i-- > 0;) {
      auto& r = runs_[i];
      if (!r.coalescable || r.ip_len != ip_len || r.v6 != v6) continue;
      const bool same_flow = std::memcmp(r.first.data() + ip_len, packet.data() + ip_len, 4) == 0 &&
                             (v6 ? std::memcmp(r.first.data() + 8, packet.data() + 8, 32)
                                 : std::memcmp(r.first.data() + 12, packet.data() + 12, 8)) == 0;
      if (!same_flow) continue;
      if (headers != 0 && joins(r, packet, ip_len, headers)) {
        const std::size_t payload = packet.size() - headers;
        r.members.push_back(packet);
        r.payload += payload;
        r.next_seq += static_cast<std::uint32_t>(payload);
        // A shorter segment, or PSH, is the end of what the sender had: the run is complete.
        if (payload < r.segment || (packet[ip_len + 13] & tcp_psh)) r.closed = true;
        return;
      }
      r.closed = true;
      break;
    }
  }
  if (used_ == runs_.size()) runs_.emplace_back();
  auto& r = runs_[used_++];
  r.first = packet;
  r.members.clear();
  r.members.push_back(packet);
  r.coalescable = headers != 0;
  r.closed = false;
  r.headers = headers;
  r.ip_len = ip_len;
  r.v6 = v6;
  if (r.coalescable) {
    r.segment = packet.size() - headers;
    r.payload = r.segment;
    r.next_seq = load_be32(packet.data() + ip_len + 4) + static_cast<std::uint32_t>(r.segment);
    if (packet[ip_len + 13] & tcp_psh) r.closed = true;
  }
}

void tcp_coalescer::finish(const std::function<void(std::span<const iovec>)>& write) {
  for (std::size_t i = 0; i < used_; ++i) {
    auto& r = runs_[i];
    iov_.clear();
    head_.fill(0);
    if (r.members.size() == 1) {
      iov_.push_back({head_.data(), vnet_header_size});
      iov_.push_back({const_cast<std::uint8_t*>(r.first.data()), r.first.size()});
      write(iov_);
      continue;
    }
    // One super-packet: the first member's headers, fixed up, then every member's payload.
    std::uint8_t* vh = head_.data();
    std::uint8_t* h = vh + vnet_header_size;
    std::memcpy(h, r.first.data(), r.headers);
    const std::size_t total = r.headers + r.payload;
    vh[0] = needs_csum;
    vh[1] = r.v6 ? gso_tcpv6 : gso_tcpv4;
    store_le16(vh + 2, static_cast<std::uint16_t>(r.headers));
    store_le16(vh + 4, static_cast<std::uint16_t>(r.segment));
    store_le16(vh + 6, static_cast<std::uint16_t>(r.ip_len));
    store_le16(vh + 8, 16);  // the TCP checksum's offset
    // The last member's flags (it may carry PSH).
    const auto& last = r.members.back();
    h[r.ip_len + 13] = last[r.ip_len + 13];
    std::uint64_t sum = 0;
    const std::size_t l4 = total - r.ip_len;
    if (r.v6) {
      store_be16(h + 4, static_cast<std::uint16_t>(l4));
      sum = checksum_add({h + 8, 32});
    } else {
      store_be16(h + 2, static_cast<std::uint16_t>(total));
      h[10] = h[11] = 0;
      const auto ip_sum = checksum_finish(checksum_add({h, r.ip_len}));
      std::memcpy(h + 10, &ip_sum, 2);
      sum = checksum_add({h + 12, 8});
    }
    // Partial: the pseudo-header's sum, not complemented; the kernel completes each segment's.
    const std::uint8_t pseudo[4] = {0, protocol_tcp, static_cast<std::uint8_t>(l4 >> 8), static_cast<std::uint8_t>(l4)};
    sum = checksum_add({pseudo, 4}, sum);
    const auto partial = static_cast<std::uint16_t>(~checksum_finish(sum));
    std::memcpy(h + r.ip_len + 16, &partial, 2);
    iov_.push_back({head_.data(), vnet_header_size + r.headers});
    for (const auto& m : r.members) iov_.push_back({const_cast<std::uint8_t*>(m.data()) + r.headers, m.size() - r.headers});
    write(iov_);
  }
  used_ = 0;
}

}  // namespace firebreak::tun
