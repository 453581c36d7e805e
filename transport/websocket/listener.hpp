// A TCP listening socket whose accept loop outlives errors (internal, shared by both servers).
//
// EMFILE, ENFILE, ENOBUFS and the like are logged and the loop waits before trying again (50 ms
// doubling to 1 s, back to 50 ms after a success), rather than spinning or dying: a portal that runs
// out of descriptors for a moment must take connections again when some are freed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

namespace firebreak::websocket::detail {

class listener : public std::enable_shared_from_this<listener> {
 public:
  /// Gets an accepted socket, already bound to a strand of its own.
  using accept_handler = std::function<void(boost::asio::ip::tcp::socket)>;

  /// Binds and listens on address:port (port 0: the system chooses). nullptr with `why` naming the
  /// address and port when that fails (in use, not an address of this host, no permission).
  static std::shared_ptr<listener> open(boost::asio::io_context& io, const std::string& address, std::uint16_t port,
                                        accept_handler on_accept, std::string& why);

  listener(boost::asio::io_context& io, accept_handler on_accept);

  /// Starts the accept loop. Thread-safe.
  void start();
  /// Closes the listening socket and stops retrying; accepted sockets are not touched. Thread-safe.
  void stop();
  /// Closes the listening socket now. Only once no thread runs the io_context (stop() posts, and a
  /// stopped io_context may never run what was posted).
  void close_now();
  std::uint16_t port() const { return port_; }

 private:
  void accept();
  void on_accepted(boost::system::error_code ec, boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& io_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;
  accept_handler on_accept_;
  std::uint16_t port_ = 0;
  std::string name_;  // "address:port", for log lines
  std::chrono::milliseconds backoff_{50};
  bool stopped_ = false;
};

}  // namespace firebreak::websocket::detail
