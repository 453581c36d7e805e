// Constants the WireGuard whitepaper (section 6 and the protocol messages) fixes. Implementation
// choices (queue bounds, load thresholds) live apart, in limits.hpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace firebreak::wireguard {

using namespace std::chrono_literals;

// ---- Noise and the protocol identity --------------------------------------------------------------
inline constexpr char construction[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
inline constexpr char identifier[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";
inline constexpr char label_mac1[] = "mac1----";
inline constexpr char label_cookie[] = "cookie--";

// ---- message types and sizes ----------------------------------------------------------------------
enum class message_type : std::uint8_t {
  handshake_initiation = 1,
  handshake_response = 2,
  cookie_reply = 3,
  transport_data = 4,
};

inline constexpr std::size_t handshake_initiation_size = 148;
inline constexpr std::size_t handshake_response_size = 92;
inline constexpr std::size_t cookie_reply_size = 64;
inline constexpr std::size_t transport_header_size = 16;
inline constexpr std::size_t transport_overhead = transport_header_size + 16;  // + Poly1305 tag
inline constexpr std::size_t timestamp_size = 12;                              // TAI64N

// ---- timers (whitepaper section 6.1) ---------------------------------------------------------------
inline constexpr std::uint64_t rekey_after_messages = 1ull << 60;
inline constexpr std::uint64_t reject_after_messages = ~0ull - (1ull << 13);  // 2^64 - 2^13 - 1
inline constexpr auto rekey_after_time = 120s;
inline constexpr auto reject_after_time = 180s;
inline constexpr auto rekey_attempt_time = 90s;
inline constexpr auto rekey_timeout = 5s;
inline constexpr auto rekey_timeout_jitter_max = 333ms;
inline constexpr auto keepalive_timeout = 10s;
inline constexpr auto cookie_refresh_time = 120s;
inline constexpr auto wipe_after_time = 3 * reject_after_time;  // 540 s
/// Handshake initiations sent before giving up: REKEY_ATTEMPT_TIME / REKEY_TIMEOUT.
inline constexpr int max_timer_handshakes = static_cast<int>(rekey_attempt_time / rekey_timeout);

// ---- replay protection -------------------------------------------------------------------------------
/// Bitmap of 8192 bits kept in 64-bit blocks; one block is always being recycled, so 8128 counters
/// behind the newest are accepted (RFC 6479's scheme, the size wireguard-go and the kernel use).
inline constexpr std::size_t replay_bitmap_bits = 8192;
inline constexpr std::size_t replay_window_size = replay_bitmap_bits - 64;

}  // namespace firebreak::wireguard
