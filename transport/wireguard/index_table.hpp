// Receiver indices: the random 32-bit numbers a peer puts in every message to us, so we find the
// handshake or keypair without trying every key. Random so they reveal nothing about how many sessions we hold.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>

#include "transport/wireguard/random.hpp"

namespace firebreak::wireguard {

using peer_id = std::uint32_t;

class index_table {
 public:
  explicit index_table(random_source& rng) : rng_(rng) {}

  std::uint32_t allocate(peer_id owner) {
    for (;;) {
      std::uint32_t index = rng_.u32();
      if (index != 0 && map_.try_emplace(index, owner).second) return index;
    }
  }
  void release(std::uint32_t index) { map_.erase(index); }
  std::optional<peer_id> lookup(std::uint32_t index) const {
    auto it = map_.find(index);
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }
  std::size_t size() const { return map_.size(); }

 private:
  random_source& rng_;
  std::unordered_map<std::uint32_t, peer_id> map_;
};

}  // namespace firebreak::wireguard
