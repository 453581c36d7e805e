#include "transport/wireguard/replay_window.hpp"

namespace firebreak::wireguard {

bool replay_window::would_accept(std::uint64_t counter) const {
  if (counter >= reject_after_messages) return false;
  if (!any_ || counter > greatest_) return true;
  if (greatest_ - counter >= replay_window_size) return false;
  const std::size_t block = (counter / 64) % blocks;
  return (bitmap_[block] & (1ull << (counter % 64))) == 0;
}

bool replay_window::accept(std::uint64_t counter) {
  if (!would_accept(counter)) return false;
  if (!any_ || counter > greatest_) {
    // Clear the blocks the window slides over (at most all of them).
    const std::uint64_t from = any_ ? greatest_ / 64 : counter / 64;
    const std::uint64_t to = counter / 64;
    if (!any_) {
      bitmap_.fill(0);
    } else if (to - from >= blocks) {
      bitmap_.fill(0);
    } else {
      for (std::uint64_t b = from + 1; b <= to; ++b) bitmap_[b % blocks] = 0;
    }
    greatest_ = counter;
    any_ = true;
  }
  bitmap_[(counter / 64) % blocks] |= 1ull << (counter % 64);
  return true;
}

}  // namespace firebreak::wireguard
