// A TCP listening socket whose accept loop outlives errors (internal, shared by both servers).
//
// EMFILE, ENFILE, ENOBUFS and the like are logged and the loop waits before trying again (50 ms
// doubling to 1 s, back to 50 ms after a success), rather than spinning or dying: a portal that runs
// out of descriptors for a moment must take connections again when some are freed.
//
// Both servers start the same way on it: open_tls and start_tls_server load the certificate, cap the
// connections and start the I/O threads, so the two cannot drift apart.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <optional>
#include <string_view>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "transport/websocket/admission.hpp"
#include "transport/websocket/log_limit.hpp"

namespace firebreak::websocket::detail {

class listener : public std::enable_shared_from_this<listener> {
 public:
  /// Gets an accepted socket, already bound to a strand of its own.
  using accept_handler = std::function<void(boost::asio::ip::tcp::socket)>;

  /// Binds and listens on address:port (port 0: the system chooses). nullptr with `why` naming the
  /// address and port when that fails (in use, not an address of this host, no permission).
  static std::shared_ptr<listener> open(boost::asio::io_context& io, const std::string& address, std::uint16_t port,
                                        accept_handler on_accept, std::string& why);

  /// How many connections a server holds at once: `live()` counts them (it may lock; it runs on the
  /// listener's strand), and a socket accepted at `max` or beyond is logged as "<live> <refusal>"
  /// and closed.
  struct connection_limit {
    std::size_t max;
    std::function<std::size_t()> live;
    std::string_view refusal;  // a string literal: the listener keeps it
    /// At most this many unproven connections per remote address (admission.hpp).
    std::size_t per_source = 256;
  };
  /// Gets an accepted socket and its admission ticket (released by the connection once it proved itself).
  using admitted_handler = std::function<void(boost::asio::ip::tcp::socket, admission::ticket)>;

  /// open() for a TLS server: loads the certificate and key into `tls` first (so a bad certificate fails start, not each handshake), then listens.
  /// Accepted sockets reach on_accept only while `stopping` is false, `limit` has room and their address
  /// holds fewer than limit.per_source unproven connections; refusals are logged once a second with
  /// their count. `stopping` and what `limit` uses must outlive the listener. nullptr with `why` set
  /// when either step fails.
  static std::shared_ptr<listener> open_tls(boost::asio::io_context& io, const std::string& address,
                                            std::uint16_t port, const std::filesystem::path& cert_path,
                                            const std::filesystem::path& key_path,
                                            std::unique_ptr<boost::asio::ssl::context>& tls,
                                            const std::atomic<bool>& stopping, connection_limit limit,
                                            admitted_handler on_accept, std::string& why);

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

/// The start() of a TLS server (wss_server, https_server), whose core names its parts alike: TLS
/// context and listener through listener::open_tls, capped at config.max_connections as `registry`
/// counts them under core.mutex; then the work guard and config.threads I/O threads named
/// `thread_name`. nullopt when listening; otherwise why not.
template <class Core, class Registry>
std::optional<std::string> start_tls_server(Core& core, const Registry& registry, std::string_view refusal,
                                            const char* thread_name, listener::admitted_handler on_accept) {
  const auto live = [&core, &registry] {
    std::lock_guard lock(core.mutex);
    return registry.size();
  };
  std::string why;
  core.listener = listener::open_tls(core.io, core.config.bind_address, core.config.port, core.config.cert_path,
                                     core.config.key_path, core.tls, core.stopping,
                                     {core.config.max_connections, live, refusal, core.config.max_unproven_per_source},
                                     std::move(on_accept), why);
  if (!core.listener) return why;
  core.work.emplace(boost::asio::make_work_guard(core.io));
  core.threads.start(core.io, core.config.threads, thread_name);
  core.listener->start();
  return std::nullopt;
}

}  // namespace firebreak::websocket::detail
