// WireGuard's two handshake messages around the Noise IKpsk2 core (noise.hpp): the header with the
// receiver indices, the TAI64N timestamp payload, and the slots for mac1/mac2 (filled by cookie.hpp).
#pragma once

#include <optional>

#include "transport/wireguard/constants.hpp"
#include "transport/wireguard/messages.hpp"
#include "transport/wireguard/noise.hpp"

namespace firebreak::wireguard {

using timestamp = std::array<std::uint8_t, timestamp_size>;

/// TAI64N of a wall-clock reading, with the low nanosecond bits whitened away as wireguard-go does,
/// so the timestamp does not leak a precise clock.
timestamp tai64n(std::chrono::nanoseconds wall);

/// Starts a handshake as initiator towards `remote`.
noise::ik_handshake begin_initiator(const noise::keypair_25519& local, const public_key& remote,
                                    const symmetric_key& psk);

/// Message 1; mac1/mac2 are left zero for the cookie generator.
std::optional<std::array<std::uint8_t, handshake_initiation_size>> write_initiation(
    noise::ik_handshake& hs, const noise::keypair_25519& ephemeral, std::uint32_t sender, const timestamp& now);

struct consumed_initiation {
  noise::ik_handshake hs;
  timestamp ts;
};
/// Decrypts message 1 (whose mac1 was already checked). The psk is not known yet: set it on `hs` once
/// the initiator's static key (hs.remote_static()) identifies the peer.
std::optional<consumed_initiation> read_initiation(const noise::keypair_25519& local,
                                                   const handshake_initiation& msg);

/// Message 2 answering an initiation from `receiver`.
std::optional<std::array<std::uint8_t, handshake_response_size>> write_response(
    noise::ik_handshake& hs, const noise::keypair_25519& ephemeral, std::uint32_t sender, std::uint32_t receiver);

bool read_response(noise::ik_handshake& hs, const handshake_response& msg);

}  // namespace firebreak::wireguard
