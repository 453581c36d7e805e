// Randomness as a parameter: the engine never reaches for a global generator, so tests can replay it.
#pragma once

#include <cstdint>
#include <span>

namespace firebreak::wireguard {

class random_source {
 public:
  virtual ~random_source() = default;
  virtual void fill(std::span<std::uint8_t> out) = 0;

  std::uint32_t u32() {
    std::uint8_t b[4];
    fill(b);
    return std::uint32_t(b[0]) | std::uint32_t(b[1]) << 8 | std::uint32_t(b[2]) << 16 | std::uint32_t(b[3]) << 24;
  }
};

/// OpenSSL's CSPRNG (RAND_bytes), for real processes.
class system_random final : public random_source {
 public:
  void fill(std::span<std::uint8_t> out) override;
};

}  // namespace firebreak::wireguard
