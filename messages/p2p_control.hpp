// p2p control packets: messages between the two ends of a connection that travel inside its
// WireGuard session, byte-compatible with Firezone's. One is an IPv6 packet that no host could send:
//
//   IPv6 header (40 bytes): version 6, traffic class and flow label 0, payload length = 8 + payload,
//                           next header 0xFF, hop limit 0, source ::, destination ::
//   control header (8 bytes): byte 0 = event, bytes 1-7 zero
//   payload: the event's (GOODBYE = 2 has none: 48 bytes in all)
//
// classify() is strict: a packet with the control packet's addresses and next header is a control
// packet; if any other field is off it is malformed (to be dropped and counted, never delivered). An
// event this build does not know is reported as such, so the caller can ignore it (forward compatible).
// Pure: no I/O, no allocation.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace firebreak::messages::p2p {

enum class event : std::uint8_t {
  goodbye = 2,  // "I am closing this connection": drop it at once, no reply
};

constexpr std::size_t ipv6_header_size = 40;
constexpr std::size_t control_header_size = 8;
constexpr std::size_t goodbye_size = ipv6_header_size + control_header_size;

enum class kind : std::uint8_t {
  not_control,    // an ordinary IP packet
  malformed,      // has a control packet's addresses and next header, but something else is wrong
  unknown_event,  // well formed, an event this build does not know
  goodbye,
};

struct classified {
  kind what = kind::not_control;
  std::uint8_t event = 0;                     // for unknown_event and goodbye
  std::span<const std::uint8_t> payload;      // the event's payload, inside the packet
};

classified classify(std::span<const std::uint8_t> packet);

/// The 48 bytes of a goodbye.
std::array<std::uint8_t, goodbye_size> goodbye();

}  // namespace firebreak::messages::p2p
