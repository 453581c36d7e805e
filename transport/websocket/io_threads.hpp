// The threads that run one server's io_context (internal).
#pragma once

#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

namespace firebreak::websocket::detail {

class io_threads {
 public:
  io_threads() = default;
  io_threads(const io_threads&) = delete;
  io_threads& operator=(const io_threads&) = delete;
  ~io_threads() { join(); }

  /// Starts `count` threads (at least 1) named `name` (15 characters at most are kept) that run `io`.
  /// A handler that throws is logged and the thread goes on running.
  void start(boost::asio::io_context& io, unsigned count, const std::string& name);
  /// Waits for every thread to return from run(); run() returns once `io` is out of work or stopped.
  void join();
  /// True on one of these threads: joining from here would wait for ourselves.
  bool on_this_thread() const;

 private:
  std::vector<std::thread> threads_;
};

}  // namespace firebreak::websocket::detail
