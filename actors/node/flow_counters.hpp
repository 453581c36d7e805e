// What a node counts about its flows, for the status command and /metrics: flows asked for, granted
// and refused (by reason), WireGuard handshakes completed, and how long a flow took to set up, as a
// histogram with Prometheus' cumulative buckets.
//
// Flow setup is measured on the node's own clock (the actor clock, virtual in tests): on a client,
// from the first create_flow for a resource until its gateway's connection carries packets; on a
// gateway, from authorize_flow until the client's connection does. A flow that joins a connection
// already up counts when it is granted.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace firebreak::node {

/// Counts of observations at or below each bound (cumulative, as Prometheus reads them), their sum
/// and count. Bounds in milliseconds; the last bucket (+Inf) is the count.
class latency_histogram {
 public:
  static constexpr std::array<std::int64_t, 12> bounds_ms{5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000};

  void observe(std::chrono::nanoseconds d);
  std::uint64_t count() const { return count_; }
  /// {"bounds_ms":[...], "cumulative":[...], "sum_ms":x, "count":n}
  nlohmann::json to_json() const;

 private:
  std::array<std::uint64_t, bounds_ms.size()> cumulative_{};
  double sum_ms_ = 0;
  std::uint64_t count_ = 0;
};

struct flow_counters {
  std::uint64_t requested = 0;
  std::uint64_t granted = 0;
  std::map<std::string, std::uint64_t> refused;  // by reason
  std::uint64_t handshakes = 0;
  latency_histogram setup;

  void refuse(const std::string& reason) { ++refused[reason.empty() ? "unknown" : reason]; }
  /// {"requested", "granted", "refused": {reason: n}, "handshakes", "setup": histogram}
  nlohmann::json to_json() const;
};

}  // namespace firebreak::node
