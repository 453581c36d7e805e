// A peer's timers as data: one optional deadline per rule, indexed by an enum, each with the
// whitepaper's reason. The peer arms and disarms them from protocol events (see peer.cpp's timer hooks)
// and acts on the due ones in handle_timeout.
#pragma once

#include <array>
#include <optional>
#include <string_view>
#include <utility>

#include "transport/wireguard/time.hpp"

namespace firebreak::wireguard {

enum class timer {
  /// No response to our initiation within REKEY_TIMEOUT (+ jitter): send it again.
  retransmit_handshake,
  /// We received data and sent nothing back for KEEPALIVE_TIMEOUT: send a keepalive.
  send_keepalive,
  /// We sent data and heard nothing authenticated for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT: new handshake.
  new_handshake,
  /// No new session for 3 * REJECT_AFTER_TIME: wipe every key.
  zero_key_material,
  /// The configured persistent keepalive interval passed without an authenticated packet sent.
  persistent_keepalive,
  count,
};

constexpr std::string_view timer_reason(timer t) {
  switch (t) {
    case timer::retransmit_handshake: return "retransmit handshake initiation";
    case timer::send_keepalive: return "keepalive after received data";
    case timer::new_handshake: return "no reply to sent data: new handshake";
    case timer::zero_key_material: return "wipe key material";
    case timer::persistent_keepalive: return "persistent keepalive";
    case timer::count: break;
  }
  return "?";
}

struct deadline {
  mono_time at;
  std::string_view reason;
};

class timer_set {
 public:
  void arm(timer t, mono_time at) { at_[index(t)] = at; }
  /// Arms only if not already armed (the "if not pending" rules).
  void arm_if_idle(timer t, mono_time at) {
    if (!armed(t)) arm(t, at);
  }
  void disarm(timer t) { at_[index(t)].reset(); }
  bool armed(timer t) const { return at_[index(t)].has_value(); }
  /// Disarms and returns true when `t` is due at `now`.
  bool take_due(timer t, mono_time now) {
    auto& slot = at_[index(t)];
    if (!slot || *slot > now) return false;
    slot.reset();
    return true;
  }
  std::optional<deadline> next() const {
    std::optional<deadline> best;
    for (std::size_t i = 0; i < at_.size(); ++i)
      if (at_[i] && (!best || *at_[i] < best->at)) best = deadline{*at_[i], timer_reason(static_cast<timer>(i))};
    return best;
  }
  void clear() {
    for (auto& slot : at_) slot.reset();
  }

 private:
  static constexpr std::size_t index(timer t) { return static_cast<std::size_t>(t); }
  std::array<std::optional<mono_time>, static_cast<std::size_t>(timer::count)> at_{};
};

}  // namespace firebreak::wireguard
