// Per-source token buckets for handshake messages under load. IPv4 sources count per address, IPv6
// sources per /64 (one host usually holds a whole /64).
#pragma once

#include <array>
#include <cstdint>
#include <unordered_map>

#include "transport/wireguard/endpoint.hpp"
#include "transport/wireguard/time.hpp"

namespace firebreak::wireguard {

class rate_limiter {
 public:
  rate_limiter(unsigned per_second, unsigned burst) : per_second_(per_second), burst_(burst) {}

  /// True when a handshake from `source` may be processed now; takes a token.
  bool allow(const endpoint& source, mono_time now);
  std::size_t tracked_sources() const { return buckets_.size(); }

 private:
  struct bucket {
    std::int64_t tokens;  // in nanoseconds of credit; one packet costs 1 s / per_second
    mono_time last;
  };
  struct key_hash {
    std::size_t operator()(const std::array<std::uint8_t, 9>& k) const;
  };
  void sweep(mono_time now);

  unsigned per_second_;
  unsigned burst_;
  std::unordered_map<std::array<std::uint8_t, 9>, bucket, key_hash> buckets_;
  mono_time last_sweep_{0};
};

}  // namespace firebreak::wireguard
