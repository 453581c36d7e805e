#include "transport/websocket/logger.hpp"

#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace firebreak::websocket {

std::shared_ptr<spdlog::logger> logger() {
  static std::mutex creating;
  if (auto existing = spdlog::get("websocket")) return existing;
  std::lock_guard lock(creating);
  if (auto existing = spdlog::get("websocket")) return existing;
  try {
    auto made = spdlog::stderr_color_mt("websocket");
    made->set_level(spdlog::get_level());
    return made;
  } catch (const spdlog::spdlog_ex&) {
    // Registered by someone else (apps/logging.cpp) between the look-up and the creation.
    return spdlog::get("websocket");
  }
}

}  // namespace firebreak::websocket
