#include "transport/tun/tun_reader.hpp"

#include "transport/tun/vnet_split.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <poll.h>
#include <unistd.h>

namespace firebreak::tun {

tun_reader::tun_reader(int fd, std::shared_ptr<std::atomic<int>> in_flight, std::function<void(batch&&)> deliver,
                       std::function<void(const std::string&)> on_fatal, std::size_t max_batch, int max_in_flight,
                       bool vnet_header, fast_path fast)
    : fd_(fd),
      in_flight_(std::move(in_flight)),
      deliver_(std::move(deliver)),
      on_fatal_(std::move(on_fatal)),
      max_batch_(max_batch),
      max_in_flight_(max_in_flight),
      vnet_(vnet_header),
      fast_(std::move(fast)) {
  thread_ = std::thread([this] { run(); });
}

tun_reader::~tun_reader() { stop(); }

void tun_reader::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void tun_reader::run() {
  std::vector<std::uint8_t> buf(65536 + vnet_header_size);
  packet_arena packets;
  std::vector<std::span<const std::uint8_t>> view;
  std::vector<std::size_t> rest;
  while (!stopping_) {
    if (in_flight_->load(std::memory_order_acquire) >= max_in_flight_) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      continue;
    }
    pollfd p{fd_, POLLIN, 0};
    const int n = ::poll(&p, 1, 100);
    if (n <= 0) continue;
    packets.clear();
    int error = 0;
    std::size_t reads = 0;
    // Up to max_batch packets, or as many frames: one super-packet alone may hold 45.
    while (packets.size() < max_batch_ && reads < max_batch_) {
      const auto len = ::read(fd_, buf.data(), buf.size());
      if (len < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) error = errno;
      if (len <= 0) break;  // EAGAIN: nothing more waiting
      ++reads;
      const std::span<const std::uint8_t> frame{buf.data(), static_cast<std::size_t>(len)};
      if (!vnet_) {
        std::memcpy(packets.append(frame.size()), frame.data(), frame.size());
      } else if (split_frame(frame, packets) != split_error::none) {
        malformed_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (reads == 0 && (error != 0 || (p.revents & (POLLERR | POLLHUP | POLLNVAL)))) {
      // A detached TUN (its interface deleted) polls POLLERR and reads EBADFD: it will not come back.
      if (on_fatal_)
        on_fatal_(std::string("the TUN device failed: ") +
                  (error != 0 ? std::strerror(error) : "the interface was removed"));
      return;
    }
    if (packets.size() == 0) continue;
    packets.views(view);
    rest.clear();
    if (fast_)
      fast_(view, rest);
    else
      for (std::size_t i = 0; i < view.size(); ++i) rest.push_back(i);
    if (rest.empty()) continue;
    batch out;
    out.reserve(rest.size());
    for (auto i : rest) out.emplace_back(view[i].begin(), view[i].end());
    in_flight_->fetch_add(1, std::memory_order_acq_rel);
    deliver_(std::move(out));
  }
}

}  // namespace firebreak::tun
