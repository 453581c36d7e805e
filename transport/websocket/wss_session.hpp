// One connection of a wss_server, from TCP accept to on_close (internal).
//
//   tls_handshake ─► reading_request ─┬─► rejecting ─► (gone; the handler never hears of it)
//                                     └─► upgrading ─► open ─► closing ─► finished
//                                                        └──────────────────┘ (peer close, lost connection)
//
// Every handler below runs on the session's strand (the socket's executor); send(), close() and
// shutdown() are the only entry points from other threads, and they post. The read loop runs from
// `open` to the end: a read that fails is how every connection ends, so on_close is called from there
// (or when a close handshake finishes with no read outstanding).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "transport/websocket/io_threads.hpp"
#include "transport/websocket/listener.hpp"
#include "transport/websocket/wss_server.hpp"

namespace firebreak::websocket {

namespace detail {
class wss_session;
}

/// What the server and its sessions share. The io_context comes after the registry, so it is destroyed
/// first: handlers still queued in it (and the sessions they hold) go before the registry they use.
/// The objects that use its services (listener, work guard) come after it, so they go before it.
struct wss_server::core {
  core(wss_server_config cfg, wss_handler& h) : config(std::move(cfg)), handler(h) {}

  void add(session_id id, std::weak_ptr<detail::wss_session> session);
  void remove(session_id id);
  std::shared_ptr<detail::wss_session> find(session_id id) const;

  const wss_server_config config;
  wss_handler& handler;
  std::unique_ptr<boost::asio::ssl::context> tls;
  detail::io_threads threads;  // joined by stop(), before anything here goes
  bool stopped = false;
  std::atomic<bool> stopping{false};
  std::atomic<session_id> next_id{1};
  std::atomic<std::size_t> open_sessions{0};

  mutable std::mutex mutex;
  std::condition_variable all_gone;  // notified when `sessions` becomes empty
  std::unordered_map<session_id, std::weak_ptr<detail::wss_session>> sessions;  // every live connection
  std::size_t peak = 0;  // the most sessions since memory was last given back
  /// A burst this big is worth giving back: one address's cap of unproven connections (256) holds
  /// about 30 MB of TLS state that the allocator would otherwise keep.
  static constexpr std::size_t trim_after = 200;

  boost::asio::io_context io;
  // After the io_context, so destroyed before it: both use its services.
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
  std::shared_ptr<detail::listener> listener;
};

namespace detail {

class wss_session : public std::enable_shared_from_this<wss_session> {
 public:
  wss_session(wss_server::core& core, boost::asio::ip::tcp::socket socket, session_id id,
              admission::ticket ticket = {});
  ~wss_session();
  wss_session(const wss_session&) = delete;
  wss_session& operator=(const wss_session&) = delete;

  /// Registers with the core and begins the TLS handshake. Once, right after construction.
  void start();
  /// See wss_server::send / close. Any thread.
  bool send(std::string text);
  bool close(std::uint16_t code, std::string reason);
  /// The server is stopping: abort a connection that is not open yet; close an open one with 1001
  /// "shutdown", flushing, within shutdown_timeout. Any thread.
  void shutdown();

 private:
  using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;
  using ws_stream = boost::beast::websocket::stream<tls_stream>;
  using clock = std::chrono::steady_clock;
  enum class phase { tls_handshake, reading_request, rejecting, upgrading, open, closing, finished };

  struct pending_close {
    std::uint16_t code;
    std::string reason;
    bool flush;
    std::chrono::milliseconds bound;
  };

  void on_tls_handshake(boost::system::error_code ec);
  void on_request(boost::system::error_code ec);
  void refuse(unsigned status, std::string reason);
  void upgrade();
  void on_upgraded(boost::system::error_code ec);

  void read();
  void on_read(boost::system::error_code ec);
  void deliver(std::string text);

  void enqueue(std::string text);
  void write();
  void on_written(boost::system::error_code ec);
  void forget_queued(std::size_t bytes, std::size_t messages);

  void begin_close(pending_close how);
  void send_close_frame();
  void on_close_frame_done(boost::system::error_code ec);
  void arm_idle_timer();
  void drop_connection();
  void finish(close_reason reason);
  close_reason reason_for(boost::system::error_code ec) const;

  wss_server::core& core_;
  const session_id id_;
  admission::ticket ticket_;  // counts against the remote address until the upgrade
  std::string peer_;  // "address:port" for log lines
  request_info request_;
  ws_stream ws_;
  boost::asio::steady_timer idle_timer_;
  boost::asio::steady_timer close_timer_;

  phase phase_ = phase::tls_handshake;
  bool opened_ = false;  // on_open accepted: on_close is owed
  boost::beast::flat_buffer http_buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::empty_body>> request_parser_;
  boost::beast::http::response<boost::beast::http::string_body> refusal_;

  boost::beast::flat_buffer inbound_;
  bool reading_ = false;
  clock::time_point last_frame_{};

  std::deque<std::string> outbox_;
  bool writing_ = false;
  // Counted at send() time, so a flood from another thread is bounded before it reaches the strand.
  std::atomic<std::size_t> queued_bytes_{0};
  std::atomic<std::size_t> queued_messages_{0};
  std::atomic<bool> accepting_sends_{false};

  std::optional<pending_close> close_after_upgrade_;
  std::optional<close_reason> local_close_;  // what we sent or are about to send
  bool close_after_flush_ = false;
  bool close_in_flight_ = false;
};

}  // namespace detail
}  // namespace firebreak::websocket
