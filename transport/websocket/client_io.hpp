// Deadlines for the blocking clients (internal): each call runs a private io_context on the calling
// thread until its operation is done or the deadline passes.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "transport/websocket/client_error.hpp"

namespace firebreak::websocket::detail {

using client_clock = std::chrono::steady_clock;

/// Runs `io` until `done` turns true (true) or `deadline` passes (false). Operations stay pending.
bool run_until(boost::asio::io_context& io, const bool& done, client_clock::time_point deadline);

struct resolved {
  boost::asio::ip::tcp::resolver::results_type endpoints;
  std::optional<client_error> error;
};

/// host:port to endpoints; an IP literal without asking anyone, a name through getaddrinfo on Asio's
/// resolver thread. Past the deadline it reports a timeout, once getaddrinfo has returned (it cannot
/// be interrupted).
resolved resolve(boost::asio::io_context& io, const std::string& host, std::uint16_t port,
                 client_clock::time_point deadline);

/// "host:port", "[v6]:port": the Host header.
std::string host_header(const std::string& host, std::uint16_t port);

}  // namespace firebreak::websocket::detail
