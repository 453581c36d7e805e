// One named spdlog logger per component, all writing to stderr in one format.
#pragma once

#include <memory>
#include <string>

#include <spdlog/logger.h>

namespace firebreak::apps {

/// Sets the level (trace..error) for every component logger, existing and future.
void setup_logging(const std::string& level);
/// The logger of a component ("tunnel", "wireguard", ...), created on first use.
std::shared_ptr<spdlog::logger> component_logger(const std::string& name);

}  // namespace firebreak::apps
