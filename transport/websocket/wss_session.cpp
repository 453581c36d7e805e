#include "transport/websocket/wss_session.hpp"

#include <malloc.h>

#include <algorithm>
#include <exception>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "transport/websocket/logger.hpp"
#include "transport/websocket/target.hpp"

namespace firebreak::websocket {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ws = beast::websocket;
using tcp = net::ip::tcp;

// ---- the registry -----------------------------------------------------------------------------------

void wss_server::core::add(session_id id, std::weak_ptr<detail::wss_session> session) {
  std::lock_guard lock(mutex);
  sessions.emplace(id, std::move(session));
  peak = std::max(peak, sessions.size());
}

void wss_server::core::remove(session_id id) {
  bool trim = false;
  {
    std::lock_guard lock(mutex);
    sessions.erase(id);
    if (sessions.empty()) all_gone.notify_all();
    // A burst of connections (a flood, a fleet reconnecting) left the allocator holding its peak: once
    // four in five of them are gone, give the free memory back to the system. Rare by construction:
    // the count must climb again to trim again.
    if (peak >= trim_after && sessions.size() <= peak / 5) {
      peak = sessions.size();
      trim = true;
    }
  }
  if (trim) ::malloc_trim(0);
}

std::shared_ptr<detail::wss_session> wss_server::core::find(session_id id) const {
  std::lock_guard lock(mutex);
  auto it = sessions.find(id);
  return it == sessions.end() ? nullptr : it->second.lock();
}

namespace detail {

namespace {

/// The largest piece read at once: a message is gathered from pieces, so that an oversized one is
/// noticed after max_message_bytes + 1 bytes rather than after the length its header claims.
constexpr std::size_t read_piece = 64 * 1024;
/// A close frame holds at most 125 bytes of payload: a 2-byte code and 123 bytes of reason.
constexpr std::size_t max_close_reason = 123;
constexpr std::size_t max_request_header_bytes = 16 * 1024;

/// Cut to what a close frame holds, without splitting a UTF-8 sequence.
std::string fit_close_reason(std::string reason) {
  if (reason.size() <= max_close_reason) return reason;
  std::size_t cut = max_close_reason;
  while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xC0) == 0x80) --cut;
  reason.resize(cut);
  return reason;
}

const char* by_text(closed_by by) {
  switch (by) {
    case closed_by::server: return "server";
    case closed_by::peer: return "peer";
    case closed_by::network: return "network";
  }
  return "?";
}

}  // namespace

wss_session::wss_session(wss_server::core& core, tcp::socket socket, session_id id, admission::ticket ticket)
    : core_(core),
      id_(id),
      ticket_(std::move(ticket)),
      ws_(std::move(socket), *core.tls),
      idle_timer_(ws_.get_executor()),
      close_timer_(ws_.get_executor()) {
  boost::system::error_code ec;
  auto remote = beast::get_lowest_layer(ws_).socket().remote_endpoint(ec);
  if (!ec) {
    request_.remote_address = remote.address().to_string();
    request_.remote_port = remote.port();
  }
  peer_ = request_.remote_address + ":" + std::to_string(request_.remote_port);
}

wss_session::~wss_session() { core_.remove(id_); }

void wss_session::start() {
  core_.add(id_, weak_from_this());
  net::dispatch(ws_.get_executor(), [self = shared_from_this()] {
    // stop() may have taken its snapshot of the registry just before add(): then `stopping` is visible.
    if (self->core_.stopping) return;
    beast::get_lowest_layer(self->ws_).expires_after(self->core_.config.handshake_timeout);
    self->ws_.next_layer().async_handshake(net::ssl::stream_base::server,
                                           [self](boost::system::error_code ec) { self->on_tls_handshake(ec); });
  });
}

// ---- before the upgrade -----------------------------------------------------------------------------

void wss_session::on_tls_handshake(boost::system::error_code ec) {
  if (ec) {
    // Port scanners and clients that do not trust our CA end here; not worth more than debug.
    logger()->debug("[S{}] TLS handshake with {} failed: {}", id_, peer_, ec.message());
    return;
  }
  phase_ = phase::reading_request;
  request_parser_.emplace();
  request_parser_->header_limit(max_request_header_bytes);
  http::async_read(ws_.next_layer(), http_buffer_, *request_parser_,
                   [self = shared_from_this()](boost::system::error_code read_ec, std::size_t) {
                     self->on_request(read_ec);
                   });
}

void wss_session::on_request(boost::system::error_code ec) {
  if (ec) {
    if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream) {
      refuse(400, "malformed HTTP request: " + ec.message());
    } else {
      logger()->debug("[S{}] no upgrade request from {}: {}", id_, peer_, ec.message());
    }
    return;
  }
  const auto& request = request_parser_->get();
  if (!ws::is_upgrade(request)) {
    refuse(426, "this port speaks WebSocket only");
    return;
  }
  auto target = parse_target(std::string_view(request.target().data(), request.target().size()));
  if (!target.target) {
    refuse(400, *target.error);
    return;
  }
  request_.path = std::move(target.target->path);
  request_.query = std::move(target.target->query);
  for (const auto& field : request) {
    std::string name(field.name_string().data(), field.name_string().size());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    auto [it, fresh] = request_.headers.emplace(std::move(name), std::string(field.value().data(), field.value().size()));
    if (!fresh) it->second.append(", ").append(field.value().data(), field.value().size());
  }
  if (core_.stopping) {
    refuse(503, "the server is shutting down");
    return;
  }

  // The handler may send() from on_open already; those messages go out right after the 101.
  accepting_sends_ = true;
  open_decision decision;
  try {
    decision = core_.handler.on_open(id_, request_);
  } catch (const std::exception& e) {
    logger()->error("[S{}] on_open threw: {}", id_, e.what());
    decision = open_decision::reject(500, "internal error");
  }
  if (!decision.accepted) {
    accepting_sends_ = false;
    if (decision.status < 400 || decision.status > 599) {
      logger()->error("[S{}] on_open refused with HTTP status {}, which is no error status; sending 403", id_,
                      decision.status);
      decision.status = 403;
    }
    // The path only: the query carries the token.
    logger()->info("[S{}] refused {} from {}: {} {}", id_, request_.path, peer_, decision.status, decision.reason);
    refuse(decision.status, std::move(decision.reason));
    return;
  }
  opened_ = true;
  core_.open_sessions.fetch_add(1);
  upgrade();
}

void wss_session::refuse(unsigned status, std::string reason) {
  phase_ = phase::rejecting;
  refusal_.version(11);
  refusal_.result(status);
  refusal_.set(http::field::server, "firebreak");
  refusal_.set(http::field::content_type, "text/plain; charset=utf-8");
  if (status == 426) refusal_.set(http::field::upgrade, "websocket");
  refusal_.keep_alive(false);
  refusal_.body() = std::move(reason) + "\n";
  refusal_.prepare_payload();
  // Still under the handshake deadline: a peer that does not read the refusal cannot hold us.
  http::async_write(ws_.next_layer(), refusal_, [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
    if (ec) return;
    self->ws_.next_layer().async_shutdown([self](boost::system::error_code) {
      boost::system::error_code ignored;
      beast::get_lowest_layer(self->ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    });
  });
}

void wss_session::upgrade() {
  phase_ = phase::upgrading;
  // From here Beast keeps the time: the TCP deadline goes, the WebSocket timeouts come.
  beast::get_lowest_layer(ws_).expires_never();
  auto timeouts = ws::stream_base::timeout::suggested(beast::role_type::server);
  timeouts.handshake_timeout = core_.config.handshake_timeout;  // the upgrade and every close handshake
  // Beast's keep-alive pings are off: a peer's pong is a frame, so with them on a session would never
  // be idle. Our idle timer closes a silent peer with a reason; a dead one is caught the same way.
  timeouts.idle_timeout = ws::stream_base::none();
  timeouts.keep_alive_pings = false;
  ws_.set_option(timeouts);
  ws_.set_option(ws::stream_base::decorator(
      [](ws::response_type& response) { response.set(http::field::server, "firebreak"); }));
  // Size is checked by read() as pieces arrive, so that the close frame can say why (Beast's own limit
  // closes with 1009 and no reason).
  ws_.read_message_max(0);
  ws_.async_accept(request_parser_->get(),
                   [self = shared_from_this()](boost::system::error_code ec) { self->on_upgraded(ec); });
}

void wss_session::on_upgraded(boost::system::error_code ec) {
  request_parser_.reset();
  http_buffer_.clear();
  if (ec) {
    finish({close_code::abnormal, "WebSocket handshake failed: " + ec.message(), closed_by::network});
    return;
  }
  phase_ = phase::open;
  ticket_.release();  // proven: it no longer counts against its address
  logger()->info("[S{}] open: {} from {}", id_, request_.path, peer_);
  ws_.control_callback([this](ws::frame_type, beast::string_view) { last_frame_ = clock::now(); });
  last_frame_ = clock::now();
  arm_idle_timer();
  read();
  if (!outbox_.empty()) write();
  if (close_after_upgrade_) {
    auto how = std::move(*close_after_upgrade_);
    close_after_upgrade_.reset();
    begin_close(std::move(how));
  }
}

// ---- reading ----------------------------------------------------------------------------------------

void wss_session::read() {
  reading_ = true;
  std::size_t room = core_.config.max_message_bytes + 1 - std::min(inbound_.size(), core_.config.max_message_bytes);
  ws_.async_read_some(inbound_, std::min(room, read_piece),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) { self->on_read(ec); });
}

void wss_session::on_read(boost::system::error_code ec) {
  reading_ = false;
  if (ec) {
    finish(reason_for(ec));
    return;
  }
  last_frame_ = clock::now();
  if (phase_ != phase::open) {
    // Closing: keep reading so Beast sees the peer's close frame; what arrives now is not delivered.
    inbound_.clear();
    read();
    return;
  }
  if (ws_.got_binary()) {
    inbound_.clear();
    begin_close({close_code::unsupported_data, "binary messages are not accepted; send text", false,
                 core_.config.handshake_timeout});
  } else if (inbound_.size() > core_.config.max_message_bytes) {
    inbound_.clear();
    begin_close({close_code::message_too_big,
                 "message exceeds " + std::to_string(core_.config.max_message_bytes) + " bytes", false,
                 core_.config.handshake_timeout});
  } else if (ws_.is_message_done()) {
    std::string text = beast::buffers_to_string(inbound_.data());
    inbound_.clear();
    deliver(std::move(text));
  }
  read();
}

void wss_session::deliver(std::string text) {
  try {
    core_.handler.on_text(id_, std::move(text));
  } catch (const std::exception& e) {
    logger()->error("[S{}] on_text threw: {}", id_, e.what());
    if (accepting_sends_.exchange(false)) {
      begin_close({close_code::internal_error, "internal error", true, core_.config.handshake_timeout});
    }
  }
}

close_reason wss_session::reason_for(boost::system::error_code ec) const {
  if (local_close_) return *local_close_;
  const auto& received = ws_.reason();
  if (ec == ws::error::closed || received.code != ws::close_code::none) {
    std::uint16_t code = received.code == ws::close_code::none ? close_code::no_status : received.code;
    return {code, std::string(received.reason.data(), received.reason.size()), closed_by::peer};
  }
  if (ec == beast::error::timeout) return {close_code::abnormal, "timed out", closed_by::network};
  if (ec.category() == ws::make_error_code(ws::error::closed).category()) {
    // Beast failed the connection for a protocol violation and sent the close frame itself.
    std::uint16_t code = ec == ws::error::bad_frame_payload ? close_code::invalid_payload : close_code::protocol_error;
    return {code, "protocol error: " + ec.message(), closed_by::server};
  }
  if (ec == net::error::eof || ec == net::ssl::error::stream_truncated) {
    return {close_code::abnormal, "connection closed without a close frame", closed_by::network};
  }
  return {close_code::abnormal, "connection lost: " + ec.message(), closed_by::network};
}

// ---- writing ----------------------------------------------------------------------------------------

bool wss_session::send(std::string text) {
  if (!accepting_sends_) return false;
  const std::size_t size = text.size();
  const std::size_t bytes = queued_bytes_.fetch_add(size) + size;
  const std::size_t messages = queued_messages_.fetch_add(1) + 1;
  if (bytes > core_.config.max_outbound_bytes || messages > core_.config.max_outbound_messages) {
    forget_queued(size, 1);
    if (accepting_sends_.exchange(false)) {
      net::post(ws_.get_executor(), [self = shared_from_this()] {
        logger()->warn("[S{}] outbound queue full ({} messages, {} bytes): closing", self->id_,
                       self->queued_messages_.load(), self->queued_bytes_.load());
        self->begin_close({close_code::policy_violation, "outbound queue full: the client reads too slowly", false,
                           self->core_.config.handshake_timeout});
      });
    }
    return false;
  }
  net::post(ws_.get_executor(), [self = shared_from_this(), text = std::move(text)]() mutable {
    self->enqueue(std::move(text));
  });
  return true;
}

void wss_session::forget_queued(std::size_t bytes, std::size_t messages) {
  queued_bytes_.fetch_sub(bytes);
  queued_messages_.fetch_sub(messages);
}

void wss_session::enqueue(std::string text) {
  const bool dropping = !opened_ || phase_ == phase::finished || (phase_ == phase::closing && !close_after_flush_);
  if (dropping) {
    forget_queued(text.size(), 1);
    return;
  }
  outbox_.push_back(std::move(text));
  if (phase_ == phase::open && !writing_) write();
}

void wss_session::write() {
  writing_ = true;
  ws_.text(true);
  ws_.async_write(net::buffer(outbox_.front()),
                  [self = shared_from_this()](boost::system::error_code ec, std::size_t) { self->on_written(ec); });
}

void wss_session::on_written(boost::system::error_code ec) {
  writing_ = false;
  forget_queued(outbox_.front().size(), 1);
  outbox_.pop_front();
  if (ec || phase_ == phase::finished) return;  // the read fails too and reports it
  if (!outbox_.empty()) {
    write();
  } else if (close_after_flush_) {
    close_after_flush_ = false;
    send_close_frame();
  }
}

// ---- closing ----------------------------------------------------------------------------------------

bool wss_session::close(std::uint16_t code, std::string reason) {
  if (!accepting_sends_.exchange(false)) return false;
  net::post(ws_.get_executor(), [self = shared_from_this(), code, reason = std::move(reason)]() mutable {
    self->begin_close({code, std::move(reason), true, self->core_.config.handshake_timeout});
  });
  return true;
}

void wss_session::shutdown() {
  accepting_sends_ = false;
  net::post(ws_.get_executor(), [self = shared_from_this()] {
    self->begin_close({close_code::going_away, "shutdown", true, self->core_.config.shutdown_timeout});
  });
}

void wss_session::begin_close(pending_close how) {
  switch (phase_) {
    case phase::finished:
      return;
    case phase::tls_handshake:
    case phase::reading_request:
      drop_connection();  // only shutdown() gets here: nobody is owed a close handshake yet
      return;
    case phase::rejecting:
      return;  // already ending, within the handshake deadline
    case phase::upgrading:
      if (!close_after_upgrade_) close_after_upgrade_ = std::move(how);
      return;
    case phase::closing:
      // Already closing; a shutdown may only make the wait shorter.
      if (close_timer_.expiry() > clock::now() + how.bound) {
        close_timer_.expires_after(how.bound);
        close_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
          if (!ec) self->drop_connection();
        });
      }
      return;
    case phase::open:
      break;
  }
  phase_ = phase::closing;
  accepting_sends_ = false;
  idle_timer_.cancel();
  local_close_ = close_reason{how.code, fit_close_reason(std::move(how.reason)), closed_by::server};
  logger()->debug("[S{}] closing: {} {}", id_, local_close_->code, local_close_->reason);

  close_timer_.expires_after(how.bound);
  close_timer_.async_wait([self = shared_from_this(), bound = how.bound](boost::system::error_code ec) {
    if (ec) return;
    logger()->info("[S{}] close handshake not done within {} ms: dropping the connection", self->id_, bound.count());
    self->drop_connection();
  });

  if (!how.flush) {
    // Keep only the message being written: Beast must finish a frame it started.
    std::size_t keep = writing_ ? 1 : 0;
    std::size_t bytes = 0, messages = 0;
    while (outbox_.size() > keep) {
      bytes += outbox_.back().size();
      ++messages;
      outbox_.pop_back();
    }
    forget_queued(bytes, messages);
  }
  if (writing_ || !outbox_.empty()) {
    close_after_flush_ = true;
    if (!writing_) write();
  } else {
    send_close_frame();
  }
}

void wss_session::send_close_frame() {
  close_in_flight_ = true;
  std::uint16_t code = close_code::sendable(local_close_->code) ? local_close_->code : close_code::normal;
  ws_.async_close(ws::close_reason(static_cast<ws::close_code>(code), beast::string_view(local_close_->reason)),
                  [self = shared_from_this()](boost::system::error_code ec) { self->on_close_frame_done(ec); });
}

void wss_session::on_close_frame_done(boost::system::error_code ec) {
  close_in_flight_ = false;
  close_timer_.cancel();
  // Normally the outstanding read saw the peer's close frame and reports; without one, report here.
  if (!reading_) finish(reason_for(ec ? ec : boost::system::error_code(ws::error::closed)));
}

void wss_session::arm_idle_timer() {
  idle_timer_.expires_at(last_frame_ + core_.config.idle_timeout);
  idle_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->phase_ != phase::open) return;
    if (clock::now() - self->last_frame_ < self->core_.config.idle_timeout) {
      self->arm_idle_timer();
      return;
    }
    logger()->info("[S{}] no frame for {} ms: closing", self->id_, self->core_.config.idle_timeout.count());
    self->accepting_sends_ = false;
    self->begin_close({close_code::going_away, "idle", false, self->core_.config.handshake_timeout});
  });
}

void wss_session::drop_connection() {
  boost::system::error_code ignored;
  beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
  beast::get_lowest_layer(ws_).close();
}

void wss_session::finish(close_reason reason) {
  if (phase_ == phase::finished) return;
  phase_ = phase::finished;
  accepting_sends_ = false;
  idle_timer_.cancel();
  if (!close_in_flight_) {
    close_timer_.cancel();
    drop_connection();
  }
  std::size_t bytes = 0;
  for (const auto& message : outbox_) bytes += message.size();
  if (writing_ && !outbox_.empty()) bytes -= outbox_.front().size();  // on_written accounts for that one
  std::size_t messages = outbox_.size() - (writing_ && !outbox_.empty() ? 1 : 0);
  forget_queued(bytes, messages);
  if (writing_) {
    outbox_.erase(outbox_.begin() + 1, outbox_.end());
  } else {
    outbox_.clear();
  }
  if (!opened_) return;
  logger()->info("[S{}] closed by {}: {} {}", id_, by_text(reason.by), reason.code, reason.reason);
  core_.open_sessions.fetch_sub(1);
  try {
    core_.handler.on_close(id_, reason);
  } catch (const std::exception& e) {
    logger()->error("[S{}] on_close threw: {}", id_, e.what());
  }
}

}  // namespace detail
}  // namespace firebreak::websocket
