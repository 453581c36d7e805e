// Reads IP packets from a TUN device on a thread of its own and hands them on in batches (every
// packet that was waiting, up to `max_batch`), so the tunnel pays one message per batch, not per packet.
//
// Credit-based: at most `max_in_flight` batches are handed on and not yet released; beyond that the
// reader stops reading and the kernel's queue (then its drops) holds the rest, instead of memory.
//
// With a fast path, every batch is offered to it first (as views, no copy): what it takes (sealed and
// sent on its thread) is gone, the rest is copied into the batch handed on. A device with the virtio
// header (tun_device.hpp) hands over frames, which are cut into plain packets here (vnet_split.hpp); a
// frame that does not split is dropped and counted.
//
// The device going away under it (deleted by someone, or an I/O error) is fatal: `on_fatal` is called
// once with what happened, and the reader stops.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace firebreak::tun {

class tun_reader {
 public:
  using batch = std::vector<std::vector<std::uint8_t>>;
  using views = std::span<const std::span<const std::uint8_t>>;
  /// Takes what it can of `packets`; appends the indices of the rest to `rest`.
  using fast_path = std::function<void(views packets, std::vector<std::size_t>& rest)>;
  /// `fd` stays owned by the caller and must outlive stop(). The receiver decrements `in_flight` once
  /// per batch it has handled.
  tun_reader(int fd, std::shared_ptr<std::atomic<int>> in_flight, std::function<void(batch&&)> deliver,
             std::function<void(const std::string&)> on_fatal = {}, std::size_t max_batch = 128,
             int max_in_flight = 32, bool vnet_header = false, fast_path fast = {});

  /// Frames that did not split into packets (malformed super-packets), since the start.
  std::uint64_t malformed() const { return malformed_.load(std::memory_order_relaxed); }
  ~tun_reader();
  tun_reader(const tun_reader&) = delete;
  tun_reader& operator=(const tun_reader&) = delete;

  void stop();

 private:
  void run();
  int fd_;
  std::shared_ptr<std::atomic<int>> in_flight_;
  std::function<void(batch&&)> deliver_;
  std::function<void(const std::string&)> on_fatal_;
  std::size_t max_batch_;
  int max_in_flight_;
  bool vnet_;
  fast_path fast_;
  std::atomic<std::uint64_t> malformed_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace firebreak::tun
