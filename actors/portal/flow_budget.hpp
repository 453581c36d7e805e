// How many create_flow requests each client may make: a token bucket per client identity, shared by
// all of that client's sessions, so reconnecting does not refill it (a new socket per request would
// otherwise get a fresh burst each time). Sans-IO: the caller gives `now`. Thread-safe: every
// session actor asks it.
//
//   take(client, now) ── true: go on (one token spent); false: refuse as rate_limited
//
// A bucket that has been full for a while is forgotten, so memory follows the clients that are
// asking, not every client that ever asked.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace firebreak::portal {

class flow_budget {
 public:
  using clock = std::chrono::steady_clock;
  flow_budget(double per_second, double burst) : per_second_(per_second), burst_(burst) {}

  bool take(const std::string& client, clock::time_point now);
  std::size_t tracked() const;

 private:
  struct bucket {
    double tokens;
    clock::time_point at;
  };
  void sweep(clock::time_point now);

  mutable std::mutex mutex_;
  const double per_second_, burst_;
  std::unordered_map<std::string, bucket> buckets_;
  clock::time_point swept_{};
};

}  // namespace firebreak::portal
