// Small helpers shared by the doctest programs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "transport/wireguard/crypto.hpp"

namespace firebreak::test {

inline std::vector<std::uint8_t> unhex(std::string_view hex) {
  auto s = wireguard::from_hex_string(hex);
  if (!s) throw std::invalid_argument("bad hex in test");
  return {s->begin(), s->end()};
}

template <std::size_t N>
wireguard::secret<N> secret_from_hex(std::string_view hex) {
  auto v = unhex(hex);
  wireguard::secret<N> out;
  std::copy_n(v.begin(), N, out.bytes.begin());
  return out;
}

template <std::size_t N>
std::array<std::uint8_t, N> array_from_hex(std::string_view hex) {
  auto v = unhex(hex);
  std::array<std::uint8_t, N> out{};
  std::copy_n(v.begin(), N, out.begin());
  return out;
}

inline std::string hex(wireguard::bytes_view b) { return wireguard::to_hex(b); }

/// ../shared beside the checkout, where the shared test vectors live; empty when absent.
inline std::filesystem::path shared_dir() {
  std::filesystem::path p = FIREBREAK_SHARED_DIR;
  return std::filesystem::exists(p) ? p : std::filesystem::path{};
}

}  // namespace firebreak::test
