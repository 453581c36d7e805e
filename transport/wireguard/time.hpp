// Time as the engine sees it: passed in by the caller, never read from a clock.
#pragma once

#include <chrono>

namespace firebreak::wireguard {

/// A monotonic reading (for timers) together with the wall clock (only for TAI64N handshake
/// timestamps, which the responder compares across restarts of the initiator).
struct instant {
  std::chrono::nanoseconds mono{0};
  std::chrono::nanoseconds wall{0};

  friend instant operator+(instant t, std::chrono::nanoseconds d) { return {t.mono + d, t.wall + d}; }
};

using mono_time = std::chrono::nanoseconds;

}  // namespace firebreak::wireguard
