// Reads IP packets from a TUN device on a thread of its own and hands them on in batches (every
// packet that was waiting, up to `max_batch`), so the tunnel pays one message per batch, not per packet.
//
// Credit-based: at most `max_in_flight` batches are handed on and not yet released; beyond that the
// reader stops reading and the kernel's queue (then its drops) holds the rest, instead of memory.
//
// The device going away under it (deleted by someone, or an I/O error) is fatal: `on_fatal` is called
// once with what happened, and the reader stops.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace firebreak::tun {

class tun_reader {
 public:
  using batch = std::vector<std::vector<std::uint8_t>>;
  /// `fd` stays owned by the caller and must outlive stop(). The receiver decrements `in_flight` once
  /// per batch it has handled.
  tun_reader(int fd, std::shared_ptr<std::atomic<int>> in_flight, std::function<void(batch&&)> deliver,
             std::function<void(const std::string&)> on_fatal = {}, std::size_t max_batch = 128,
             int max_in_flight = 32);
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
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace firebreak::tun
