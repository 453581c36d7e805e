// Implementation limits: our choices, not the protocol's. The protocol's constants are in constants.hpp.
#pragma once

#include <chrono>
#include <cstddef>

namespace firebreak::wireguard {

using namespace std::chrono_literals;

/// Packets held per peer while a handshake is under way (wireguard-go keeps 1024).
inline constexpr std::size_t max_staged_packets = 128;
/// At most one handshake initiation consumed per peer per this interval (wireguard-go's rate).
inline constexpr auto handshake_initiation_rate = 20ms;
/// The largest datagram we accept: 64 KiB UDP payload.
inline constexpr std::size_t max_datagram_size = 65535;
/// Handshake messages per second above which the responder is "under load" and demands cookies.
inline constexpr unsigned under_load_handshakes_per_second = 256;
/// Once under load, stay there this long (wireguard-go: UnderLoadAfterTime).
inline constexpr auto under_load_hold = 1s;
/// Per-source token bucket for handshake messages under load (wireguard-go's ratelimiter values).
inline constexpr unsigned handshakes_per_second_per_source = 20;
inline constexpr unsigned handshake_burst_per_source = 5;
/// How often the per-source buckets are swept of idle entries.
inline constexpr auto rate_limiter_sweep = 1s;
/// Minimum gap between two log lines about drops of one reason.
inline constexpr auto drop_log_interval = 5s;

}  // namespace firebreak::wireguard
