// The node's data plane: what the TUN reader thread and the ICE loop thread do with bulk packets
// without a message, under the tunnel actor's policy of the moment — an immutable snapshot the actor
// publishes again on every change (routes and flows on a client, grants on a gateway, connections
// going up or down on both).
//
// Both are called from several threads at once (one TUN reader per queue, one ICE loop per share of the
// connections): what a call reuses across batches is its thread's own.
//
//   TUN reader ── outbound(): a packet the policy sends to a connection whose fast_link is open is sealed
//                 and sent there, in one batch per connection; every other packet (unparsable, multicast,
//                 a forged control packet, no route, no grant, a connection not up) stays for the
//                 tunnel actor, which answers, holds or counts it exactly as before
//   ICE thread  ── deliver(): opened packets the policy passes go to the TUN — TCP segments of one flow
//                 as one super-packet where the device has the virtio header (tcp_coalesce.hpp) — and
//                 the rest the slow way
//
// Checks on every packet, in both directions, as the actors do: a gateway's grants (expiry against the
// clock of the moment) and a client's "a gateway speaks only for its own resources". The counters are
// the data plane's share of the tunnel's; the tunnel adds them to its own in status and /metrics.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/connection/fast_link.hpp"
#include "transport/ip/packet.hpp"
#include "transport/tun/tun_device_linux.hpp"

namespace firebreak::node {

class data_plane final : public connection::inbound_sink {
 public:
  struct policy {
    virtual ~policy() = default;
    /// The connection a packet read from the TUN goes to at once, or null (the slow way).
    virtual connection::fast_link* outbound(const ip::packet_info& p, std::int64_t now_ms) const = 0;
    /// Whether a packet opened from `peer` may go to the TUN at once.
    virtual bool inbound(const std::string& peer, const ip::packet_info& p, std::int64_t now_ms) const = 0;
  };

  struct totals {
    std::uint64_t out_packets = 0, out_bytes = 0, in_packets = 0, in_bytes = 0, tun_write_failed = 0;
  };

  explicit data_plane(std::shared_ptr<tun::tun_device> tun);

  /// Replaces the policy (the tunnel actor, after every change). Null: everything the slow way.
  void publish(std::shared_ptr<const policy> p);

  /// From the reader of TUN queue `queue`. Sends what it can; the indices of the rest go to `slow`.
  void outbound(std::span<const std::span<const std::uint8_t>> packets, std::vector<std::size_t>& slow,
                unsigned queue = 0);

  void deliver(const std::string& peer, std::span<const std::span<const std::uint8_t>> packets,
               std::vector<std::size_t>& refused) override;

  totals counters() const;
  /// For status: what took the fast path.
  nlohmann::json to_json() const;

 private:
  std::shared_ptr<const policy> current() const;

  std::shared_ptr<tun::tun_device> tun_;
  mutable std::mutex mu_;  // guards policy_ only: taken once per batch to copy the pointer
  std::shared_ptr<const policy> policy_;
  std::atomic<std::uint64_t> out_packets_{0}, out_bytes_{0}, in_packets_{0}, in_bytes_{0}, tun_write_failed_{0};
  std::atomic<std::uint64_t> tun_frames_{0};
  std::atomic<bool> coalesce_{true};  // off after the kernel refused a super-packet once
  std::atomic<unsigned> next_queue_{0};
  // Per TUN queue: what its reader sealed, and what the ICE loop writing on it opened, so status shows
  // how the work spread over the threads.
  static constexpr unsigned max_queues = 64;
  std::array<std::atomic<std::uint64_t>, max_queues> sealed_by_queue_{}, opened_by_queue_{};
};

/// Unix milliseconds now, for the policies' expiry checks.
std::int64_t wall_ms_now();

}  // namespace firebreak::node
