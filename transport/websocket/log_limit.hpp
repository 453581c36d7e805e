// At most one log line per interval for a repeated event, saying how many were folded into it, so a
// flood of the same refusal costs one line a second instead of one line per socket. Sans-IO: the
// caller gives `now`. Thread-safe.
//
//   if (auto n = limit.due(now)) log->warn("... ({} such since the last line)", *n);
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

namespace firebreak::websocket {

class log_limit {
 public:
  using clock = std::chrono::steady_clock;
  explicit log_limit(clock::duration interval = std::chrono::seconds(1)) : interval_(interval) {}

  /// Counts one event; when a line is due, how many events it stands for (this one included).
  std::optional<std::uint64_t> due(clock::time_point now) {
    std::lock_guard lock(mutex_);
    ++folded_;
    if (logged_ && now - *logged_ < interval_) return std::nullopt;
    logged_ = now;
    const auto n = folded_;
    folded_ = 0;
    return n;
  }

 private:
  std::mutex mutex_;
  clock::duration interval_;
  std::optional<clock::time_point> logged_;
  std::uint64_t folded_ = 0;
};

}  // namespace firebreak::websocket
