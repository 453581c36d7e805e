#include "transport/wireguard/random.hpp"

#include <stdexcept>

#include <openssl/rand.h>

namespace firebreak::wireguard {

void system_random::fill(std::span<std::uint8_t> out) {
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) throw std::runtime_error("RAND_bytes failed");
}

}  // namespace firebreak::wireguard
