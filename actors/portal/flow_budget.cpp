#include "actors/portal/flow_budget.hpp"

#include <algorithm>

namespace firebreak::portal {

bool flow_budget::take(const std::string& client, clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (now - swept_ > std::chrono::seconds(10)) sweep(now);
  auto [it, fresh] = buckets_.try_emplace(client, bucket{burst_, now});
  auto& b = it->second;
  if (!fresh) {
    const double elapsed = std::chrono::duration<double>(now - b.at).count();
    b.tokens = std::min(burst_, b.tokens + std::max(0.0, elapsed) * per_second_);
    b.at = now;
  }
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

std::size_t flow_budget::tracked() const {
  std::lock_guard lock(mutex_);
  return buckets_.size();
}

void flow_budget::sweep(clock::time_point now) {
  swept_ = now;
  // Full again by now: forgetting it changes nothing.
  const auto refill = std::chrono::duration<double>(burst_ / std::max(per_second_, 1e-9));
  std::erase_if(buckets_, [&](const auto& entry) {
    return std::chrono::duration<double>(now - entry.second.at) >= refill;
  });
}

}  // namespace firebreak::portal
