#include "transport/tun/tun_reader.hpp"

#include <cerrno>
#include <chrono>
#include <poll.h>
#include <unistd.h>

namespace firebreak::tun {

tun_reader::tun_reader(int fd, std::shared_ptr<std::atomic<int>> in_flight, std::function<void(batch&&)> deliver,
                       std::size_t max_batch, int max_in_flight)
    : fd_(fd),
      in_flight_(std::move(in_flight)),
      deliver_(std::move(deliver)),
      max_batch_(max_batch),
      max_in_flight_(max_in_flight) {
  thread_ = std::thread([this] { run(); });
}

tun_reader::~tun_reader() { stop(); }

void tun_reader::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void tun_reader::run() {
  std::vector<std::uint8_t> buf(65536);
  while (!stopping_) {
    if (in_flight_->load(std::memory_order_acquire) >= max_in_flight_) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      continue;
    }
    pollfd p{fd_, POLLIN, 0};
    const int n = ::poll(&p, 1, 100);
    if (n <= 0) continue;
    batch out;
    while (out.size() < max_batch_) {
      const auto len = ::read(fd_, buf.data(), buf.size());
      if (len <= 0) break;  // EAGAIN: nothing more waiting (or the device went away)
      out.emplace_back(buf.begin(), buf.begin() + len);
    }
    if (out.empty()) {
      if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    in_flight_->fetch_add(1, std::memory_order_acq_rel);
    deliver_(std::move(out));
  }
}

}  // namespace firebreak::tun
