// The four WireGuard messages on the wire, as typed views over a datagram. Parsing checks only the
// framing (type, reserved bytes, exact or minimum size); cryptographic checks come after, in order of cost.
//
//   initiation (148)  type|0 0 0|sender:4|ephemeral:32|static:32+16|timestamp:12+16|mac1:16|mac2:16
//   response    (92)  type|0 0 0|sender:4|receiver:4|ephemeral:32|empty:0+16|mac1:16|mac2:16
//   cookie      (64)  type|0 0 0|receiver:4|nonce:24|cookie:16+16
//   data     (32+n)   type|0 0 0|receiver:4|counter:8|packet:n+16
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <variant>

#include "transport/wireguard/constants.hpp"
#include "transport/wireguard/crypto.hpp"

namespace firebreak::wireguard {

inline std::uint32_t load_le32(const std::uint8_t* p) {
  return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
}
inline std::uint64_t load_le64(const std::uint8_t* p) { return load_le32(p) | std::uint64_t(load_le32(p + 4)) << 32; }
inline void store_le32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
inline void store_le64(std::uint8_t* p, std::uint64_t v) {
  store_le32(p, static_cast<std::uint32_t>(v));
  store_le32(p + 4, static_cast<std::uint32_t>(v >> 32));
}

/// A handshake message (initiation or response): the part mac1 covers, then mac1, then mac2.
struct handshake_view {
  bytes_view bytes;
  bytes_view before_mac1() const { return bytes.first(bytes.size() - 32); }
  bytes_view before_mac2() const { return bytes.first(bytes.size() - 16); }
  bytes_view mac1() const { return bytes.subspan(bytes.size() - 32, 16); }
  bytes_view mac2() const { return bytes.subspan(bytes.size() - 16, 16); }
  std::uint32_t sender() const { return load_le32(bytes.data() + 4); }
};

struct handshake_initiation : handshake_view {
  /// ephemeral || enc(static) || enc(timestamp): Noise message 1.
  bytes_view noise() const { return bytes.subspan(8, 32 + 48 + 28); }
};

struct handshake_response : handshake_view {
  std::uint32_t receiver() const { return load_le32(bytes.data() + 8); }
  /// ephemeral || enc(empty): Noise message 2.
  bytes_view noise() const { return bytes.subspan(12, 32 + 16); }
};

struct cookie_reply {
  bytes_view bytes;
  std::uint32_t receiver() const { return load_le32(bytes.data() + 4); }
  std::span<const std::uint8_t, xnonce_size> nonce() const { return bytes.subspan<8, xnonce_size>(); }
  bytes_view encrypted_cookie() const { return bytes.subspan(32, 32); }
};

struct transport_data {
  bytes_view bytes;
  std::uint32_t receiver() const { return load_le32(bytes.data() + 4); }
  std::uint64_t counter() const { return load_le64(bytes.data() + 8); }
  bytes_view encrypted() const { return bytes.subspan(transport_header_size); }
};

enum class parse_error { too_short, oversized, unknown_type, bad_size };

using datagram = std::variant<handshake_initiation, handshake_response, cookie_reply, transport_data, parse_error>;

/// Classifies a datagram by its first four bytes and its size. Never reads past `bytes`.
datagram parse_datagram(bytes_view bytes);

}  // namespace firebreak::wireguard
