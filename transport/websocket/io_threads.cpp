#include "transport/websocket/io_threads.hpp"

#include <pthread.h>

#include <algorithm>
#include <exception>

#include "transport/websocket/logger.hpp"

namespace firebreak::websocket::detail {

void io_threads::start(boost::asio::io_context& io, unsigned count, const std::string& name) {
  count = std::max(count, 1u);
  for (unsigned i = 0; i < count; ++i) {
    threads_.emplace_back([&io, name] {
      ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
      for (;;) {
        try {
          io.run();
          return;
        } catch (const std::exception& e) {
          logger()->error("a handler on {} threw: {}", name, e.what());
        }
      }
    });
  }
}

void io_threads::join() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

bool io_threads::on_this_thread() const {
  return std::any_of(threads_.begin(), threads_.end(),
                     [](const std::thread& t) { return t.get_id() == std::this_thread::get_id(); });
}

}  // namespace firebreak::websocket::detail
