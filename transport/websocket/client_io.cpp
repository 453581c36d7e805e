#include "transport/websocket/client_io.hpp"

#include <boost/asio/ip/address.hpp>

namespace firebreak::websocket::detail {

namespace net = boost::asio;
using tcp = net::ip::tcp;

bool run_until(net::io_context& io, const bool& done, client_clock::time_point deadline) {
  while (!done) {
    if (io.stopped()) io.restart();
    if (io.run_one_until(deadline) == 0 && !done) {
      // Either the deadline passed, or nothing is pending that could ever set `done`.
      return false;
    }
  }
  return true;
}

resolved resolve(net::io_context& io, const std::string& host, std::uint16_t port, client_clock::time_point deadline) {
  resolved out;
  const std::string service = std::to_string(port);
  boost::system::error_code ec;
  auto literal = net::ip::make_address(host, ec);
  if (!ec) {
    out.endpoints = tcp::resolver::results_type::create(tcp::endpoint(literal, port), host, service);
    return out;
  }
  tcp::resolver resolver(io);
  bool done = false;
  resolver.async_resolve(host, service, [&](boost::system::error_code resolve_ec, tcp::resolver::results_type results) {
    ec = resolve_ec;
    out.endpoints = std::move(results);
    done = true;
  });
  if (!run_until(io, done, deadline)) {
    resolver.cancel();
    io.restart();
    while (!done) io.run_one();
    out.error = client_error{client_error::kind::timeout, "resolving " + host + " took too long"};
  } else if (ec) {
    out.error = client_error{client_error::kind::resolve, "cannot resolve " + host + ": " + ec.message()};
  }
  return out;
}

std::string host_header(const std::string& host, std::uint16_t port) {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace firebreak::websocket::detail
