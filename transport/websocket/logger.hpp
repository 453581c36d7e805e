// The "websocket" component logger, shared by the servers and clients in this folder.
#pragma once

#include <memory>

#include <spdlog/logger.h>

namespace firebreak::websocket {

/// The spdlog logger named "websocket": the one the application registered, or one made here on first
/// use (stderr, the global level). Lines about a session carry its id as "[S42]".
/// Never give it query strings, tokens, headers or key material.
std::shared_ptr<spdlog::logger> logger();

}  // namespace firebreak::websocket
