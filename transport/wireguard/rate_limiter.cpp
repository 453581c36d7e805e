#include "transport/wireguard/rate_limiter.hpp"

#include <algorithm>
#include <cstring>

#include "transport/wireguard/limits.hpp"

namespace firebreak::wireguard {

std::size_t rate_limiter::key_hash::operator()(const std::array<std::uint8_t, 9>& k) const {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a: the key is not attacker-chosen beyond its address
  for (auto b : k) h = (h ^ b) * 1099511628211ull;
  return static_cast<std::size_t>(h);
}

bool rate_limiter::allow(const endpoint& source, mono_time now) {
  if (now - last_sweep_ >= rate_limiter_sweep) sweep(now);
  std::array<std::uint8_t, 9> key{};
  key[0] = source.v6 ? 6 : 4;
  std::memcpy(key.data() + 1, source.addr.data(), source.v6 ? 8 : 4);
  const std::int64_t cost = std::chrono::nanoseconds(1s).count() / per_second_;
  const std::int64_t cap = cost * burst_;
  auto [it, fresh] = buckets_.try_emplace(key, bucket{cap, now});
  bucket& b = it->second;
  if (!fresh) {
    b.tokens = std::min(cap, b.tokens + (now - b.last).count());
    b.last = now;
  }
  if (b.tokens < cost) return false;
  b.tokens -= cost;
  return true;
}

void rate_limiter::sweep(mono_time now) {
  last_sweep_ = now;
  std::erase_if(buckets_, [&](const auto& entry) { return now - entry.second.last >= rate_limiter_sweep; });
}

}  // namespace firebreak::wireguard
