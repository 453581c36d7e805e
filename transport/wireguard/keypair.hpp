// One direction-pair of transport keys from a completed handshake: the sealer, the opener, the two
// receiver indices, the send counter and the replay window. A peer holds up to three (previous,
// current, next) so in-flight packets under the old keys still open while the new ones take over.
#pragma once

#include "transport/wireguard/constants.hpp"
#include "transport/wireguard/crypto.hpp"
#include "transport/wireguard/replay_window.hpp"
#include "transport/wireguard/time.hpp"

namespace firebreak::wireguard {

struct keypair {
  keypair(const symmetric_key& send_key, const symmetric_key& receive_key, std::uint32_t local,
          std::uint32_t remote, mono_time born, bool we_initiated)
      : sealer(send_key, true),
        opener(receive_key, false),
        local_index(local),
        remote_index(remote),
        created(born),
        initiator(we_initiated) {}

  aead_context sealer;
  aead_context opener;
  std::uint32_t local_index;
  std::uint32_t remote_index;
  std::uint64_t next_counter = 0;
  replay_window replay;
  mono_time created;
  bool initiator;

  bool can_send(mono_time now) const {
    return now - created < reject_after_time && next_counter < reject_after_messages;
  }
  bool can_receive(mono_time now) const { return now - created < reject_after_time; }
};

}  // namespace firebreak::wireguard
