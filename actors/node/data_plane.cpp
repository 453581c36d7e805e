#include "actors/node/data_plane.hpp"

#include <algorithm>
#include <chrono>

#include "messages/p2p_control.hpp"
#include "transport/tun/tcp_coalesce.hpp"

namespace firebreak::node {

namespace {

/// Packets of one batch bound for one connection.
struct group {
  connection::fast_link* link;
  std::vector<std::span<const std::uint8_t>> packets;
  std::vector<std::size_t> index;
};

}  // namespace

std::int64_t wall_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

data_plane::data_plane(std::shared_ptr<tun::tun_device> tun) : tun_(std::move(tun)) {}

void data_plane::publish(std::shared_ptr<const policy> p) {
  std::lock_guard lock(mu_);
  policy_ = std::move(p);
}

std::shared_ptr<const data_plane::policy> data_plane::current() const {
  std::lock_guard lock(mu_);
  return policy_;
}

void data_plane::outbound(std::span<const std::span<const std::uint8_t>> packets, std::vector<std::size_t>& slow,
                          unsigned queue) {
  const auto pol = current();
  if (!pol) {
    for (std::size_t i = 0; i < packets.size(); ++i) slow.push_back(i);
    return;
  }
  const auto now_ms = wall_ms_now();
  thread_local std::vector<group> groups_;  // this reader's, reused across batches
  for (auto& g : groups_) {
    g.packets.clear();
    g.index.clear();
  }
  std::size_t used = 0;
  for (std::size_t i = 0; i < packets.size(); ++i) {
    const auto packet = packets[i];
    auto info = ip::parse(packet);
    connection::fast_link* link = nullptr;
    // What the actors answer, count or refuse stays theirs: multicast, a local program's forged control
    // packet, anything the policy does not send at once.
    if (info && !ip::multicast_destination(*info) &&
        messages::p2p::classify(packet).what == messages::p2p::kind::not_control)
      link = pol->outbound(*info, now_ms);
    if (!link) {
      slow.push_back(i);
      continue;
    }
    std::size_t g = 0;
    while (g < used && groups_[g].link != link) ++g;
    if (g == used) {
      if (used == groups_.size()) groups_.push_back({});
      groups_[used].link = link;
      ++used;
    }
    groups_[g].packets.push_back(packet);
    groups_[g].index.push_back(i);
  }
  const auto now = wireguard::instant{std::chrono::steady_clock::now().time_since_epoch(),
                                      std::chrono::system_clock::now().time_since_epoch()};
  for (std::size_t g = 0; g < used; ++g) {
    auto& grp = groups_[g];
    if (!grp.link->send(grp.packets, now)) {
      // Closing or not yet up, or no direct socket (a relayed pair): the actors take them.
      slow.insert(slow.end(), grp.index.begin(), grp.index.end());
      continue;
    }
    std::uint64_t bytes = 0;
    for (const auto& p : grp.packets) bytes += p.size();
    out_packets_.fetch_add(grp.packets.size(), std::memory_order_relaxed);
    out_bytes_.fetch_add(bytes, std::memory_order_relaxed);
    sealed_by_queue_[queue % max_queues].fetch_add(grp.packets.size(), std::memory_order_relaxed);
  }
  std::sort(slow.begin(), slow.end());  // the slow way keeps the TUN's order among its own packets
}

void data_plane::deliver(const std::string& peer, std::span<const std::span<const std::uint8_t>> packets,
                         std::vector<std::size_t>& refused) {
  const auto pol = current();
  if (!pol) {
    for (std::size_t i = 0; i < packets.size(); ++i) refused.push_back(i);
    return;
  }
  // Every ICE loop thread its own coalescer, and its own TUN queue: the kernel then sends the replies of
  // this thread's flows to one reader, and the flows of other loops' connections to others.
  thread_local tun::tcp_coalescer coalescer;
  thread_local const unsigned queue = next_queue_.fetch_add(1, std::memory_order_relaxed) % tun_->queues();
  const bool coalesce = tun_->vnet_header() && coalesce_.load(std::memory_order_relaxed);
  const auto now_ms = wall_ms_now();
  std::uint64_t bytes = 0, passed = 0;
  for (std::size_t i = 0; i < packets.size(); ++i) {
    auto info = ip::parse(packets[i]);
    if (!info || !pol->inbound(peer, *info, now_ms)) {
      refused.push_back(i);
      continue;
    }
    ++passed;
    bytes += packets[i].size();
    if (coalesce) {
      coalescer.add(packets[i].first(info->length));
    } else if (!tun_->write(packets[i], queue)) {
      tun_write_failed_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (coalesce) {
    coalescer.finish([&](std::span<const iovec> frame) {
      tun_frames_.fetch_add(1, std::memory_order_relaxed);
      if (tun_->write_frame(frame, queue)) return;
      if (frame.size() <= 2) {
        tun_write_failed_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      // The kernel refused the super-packet: from now on plain packets only (these ones are lost,
      // counted once each; TCP sends them again).
      coalesce_.store(false, std::memory_order_relaxed);
      tun_write_failed_.fetch_add(frame.size() - 1, std::memory_order_relaxed);
    });
  }
  in_packets_.fetch_add(passed, std::memory_order_relaxed);
  in_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  opened_by_queue_[queue % max_queues].fetch_add(passed, std::memory_order_relaxed);
}

data_plane::totals data_plane::counters() const {
  return {out_packets_.load(), out_bytes_.load(), in_packets_.load(), in_bytes_.load(), tun_write_failed_.load()};
}

nlohmann::json data_plane::to_json() const {
  const auto t = counters();
  auto sealed = nlohmann::json::array(), opened = nlohmann::json::array();
  for (unsigned q = 0; q < std::min(tun_->queues(), max_queues); ++q) {
    sealed.push_back(sealed_by_queue_[q].load(std::memory_order_relaxed));
    opened.push_back(opened_by_queue_[q].load(std::memory_order_relaxed));
  }
  return {{"packets_sealed", t.out_packets}, {"packets_opened", t.in_packets}, {"bytes_sealed", t.out_bytes},
          {"bytes_opened", t.in_bytes}, {"tun_offload", tun_->segmentation_offload()},
          {"tun_frames_written", tun_frames_.load()}, {"tun_coalescing", tun_->vnet_header() && coalesce_.load()},
          {"tun_queues", tun_->queues()}, {"sealed_by_queue", sealed}, {"opened_by_queue", opened}};
}

}  // namespace firebreak::node
