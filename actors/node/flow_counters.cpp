#include "actors/node/flow_counters.hpp"

namespace firebreak::node {

void latency_histogram::observe(std::chrono::nanoseconds d) {
  const double ms = std::chrono::duration<double, std::milli>(d).count();
  for (std::size_t i = 0; i < bounds_ms.size(); ++i)
    if (ms <= static_cast<double>(bounds_ms[i])) ++cumulative_[i];
  sum_ms_ += ms < 0 ? 0 : ms;
  ++count_;
}

nlohmann::json latency_histogram::to_json() const {
  return {{"bounds_ms", bounds_ms}, {"cumulative", cumulative_}, {"sum_ms", sum_ms_}, {"count", count_}};
}

nlohmann::json flow_counters::to_json() const {
  return {{"requested", requested},
          {"granted", granted},
          {"refused", refused},
          {"handshakes", handshakes},
          {"setup", setup.to_json()}};
}

}  // namespace firebreak::node
