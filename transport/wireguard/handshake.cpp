#include "transport/wireguard/handshake.hpp"

namespace firebreak::wireguard {
namespace {

bytes_view text(const char* s, std::size_t n) { return {reinterpret_cast<const std::uint8_t*>(s), n}; }
bytes_view prologue() { return text(identifier, sizeof identifier - 1); }

}  // namespace

timestamp tai64n(std::chrono::nanoseconds wall) {
  constexpr std::uint64_t tai64_base = 0x400000000000000aull;  // 2^62 + 10 leap seconds
  constexpr std::uint32_t whitener_mask = 0x1000000 - 1;
  const auto secs = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(wall).count());
  const auto nanos = static_cast<std::uint32_t>((wall - std::chrono::seconds(secs)).count()) & ~whitener_mask;
  timestamp out{};
  const std::uint64_t s = tai64_base + secs;
  for (int i = 0; i < 8; ++i) out[i] = static_cast<std::uint8_t>(s >> (56 - 8 * i));
  for (int i = 0; i < 4; ++i) out[8 + i] = static_cast<std::uint8_t>(nanos >> (24 - 8 * i));
  return out;
}

noise::ik_handshake begin_initiator(const noise::keypair_25519& local, const public_key& remote,
                                    const symmetric_key& psk) {
  return noise::ik_handshake::initiator(construction, prologue(), local, remote, psk);
}

std::optional<std::array<std::uint8_t, handshake_initiation_size>> write_initiation(
    noise::ik_handshake& hs, const noise::keypair_25519& ephemeral, std::uint32_t sender, const timestamp& now) {
  std::array<std::uint8_t, handshake_initiation_size> msg{};
  msg[0] = static_cast<std::uint8_t>(message_type::handshake_initiation);
  store_le32(msg.data() + 4, sender);
  if (!hs.write_message1(ephemeral, now, std::span(msg).subspan(8, 108))) return std::nullopt;
  return msg;
}

std::optional<consumed_initiation> read_initiation(const noise::keypair_25519& local,
                                                   const handshake_initiation& msg) {
  // IKpsk2 mixes the psk only into message 2; a placeholder keeps the psk-mode steps of message 1.
  consumed_initiation out{noise::ik_handshake::responder(construction, prologue(), local, symmetric_key{}), {}};
  if (!out.hs.read_message1(msg.noise(), out.ts)) return std::nullopt;
  return out;
}

std::optional<std::array<std::uint8_t, handshake_response_size>> write_response(
    noise::ik_handshake& hs, const noise::keypair_25519& ephemeral, std::uint32_t sender, std::uint32_t receiver) {
  std::array<std::uint8_t, handshake_response_size> msg{};
  msg[0] = static_cast<std::uint8_t>(message_type::handshake_response);
  store_le32(msg.data() + 4, sender);
  store_le32(msg.data() + 8, receiver);
  if (!hs.write_message2(ephemeral, {}, std::span(msg).subspan(12, 48))) return std::nullopt;
  return msg;
}

bool read_response(noise::ik_handshake& hs, const handshake_response& msg) {
  std::uint8_t none[1];
  return hs.read_message2(msg.noise(), std::span(none, 0));
}

}  // namespace firebreak::wireguard
