// What a session actor needs from the WebSocket server it serves: send a text frame, close the socket.
// Both may be called from any thread. A fake records calls in tests.
#pragma once

#include <cstdint>
#include <string>

namespace firebreak::portal {

class socket_port {
 public:
  virtual ~socket_port() = default;
  virtual void send(std::uint64_t socket, std::string text) = 0;
  virtual void close(std::uint64_t socket, std::uint16_t code, std::string reason) = 0;
};

}  // namespace firebreak::portal
