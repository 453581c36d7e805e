// The portal's named logger ("portal"), created on first use so actors work the same in tests.
#pragma once

#include <memory>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace firebreak::portal {

inline std::shared_ptr<spdlog::logger> portal_logger() {
  if (auto existing = spdlog::get("portal")) return existing;
  try {
    return spdlog::stderr_color_mt("portal");
  } catch (const spdlog::spdlog_ex&) {
    return spdlog::get("portal");  // another thread registered it first
  }
}

}  // namespace firebreak::portal
