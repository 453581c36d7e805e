// Sliding-window replay protection for transport counters (RFC 6479's bitmap, as WireGuard uses it).
#pragma once

#include <array>
#include <cstdint>

#include "transport/wireguard/constants.hpp"

namespace firebreak::wireguard {

class replay_window {
 public:
  /// True when `counter` is new and acceptable; marks it seen. Call only after the packet authenticated,
  /// so forged counters cannot advance the window.
  bool accept(std::uint64_t counter);
  /// True when `counter` would be accepted, without marking it (a cheap check before decrypting).
  bool would_accept(std::uint64_t counter) const;
  std::uint64_t greatest() const { return greatest_; }

 private:
  static constexpr std::size_t blocks = replay_bitmap_bits / 64;
  std::array<std::uint64_t, blocks> bitmap_{};
  std::uint64_t greatest_ = 0;
  bool any_ = false;
};

}  // namespace firebreak::wireguard
