#include "transport/tun/tun_reader.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <poll.h>
#include <unistd.h>

namespace firebreak::tun {

tun_reader::tun_reader(int fd, std::shared_ptr<std::atomic<int>> in_flight, std::function<void(batch&&)> deliver,
                       std::function<void(const std::string&)> on_fatal, std::size_t max_batch, int max_in_flight)
    : fd_(fd),
      in_flight_(std::move(in_flight)),
      deliver_(std::move(deliver)),
      on_fatal_(std::move(on_fatal)),
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
    int error = 0;
    while (out.size() < max_batch_) {
      const auto len = ::read(fd_, buf.data(), buf.size());
      if (len < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) error = errno;
      if (len <= 0) break;  // EAGAIN: nothing more waiting
      out.emplace_back(buf.begin(), buf.begin() + len);
    }
    if (out.empty() && (error != 0 || (p.revents & (POLLERR | POLLHUP | POLLNVAL)))) {
      // A detached TUN (its interface deleted) polls POLLERR and reads EBADFD: it will not come back.
      if (on_fatal_)
        on_fatal_(std::string("the TUN device failed: ") +
                  (error != 0 ? std::strerror(error) : "the interface was removed"));
      return;
    }
    if (out.empty()) continue;
    in_flight_->fetch_add(1, std::memory_order_acq_rel);
    deliver_(std::move(out));
  }
}

}  // namespace firebreak::tun
