#include "actors/portal_link/portal_link.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "actors/trace/trace_point.hpp"
#include "messages/phoenix_frame.hpp"
#include "transport/websocket/target.hpp"
#include "transport/websocket/wss_client.hpp"

namespace firebreak::portal_link {

using namespace messages;
using namespace std::chrono_literals;

namespace {

/// How long a receive waits when nothing is queued: the bound on the delay of an outgoing event.
constexpr auto poll_interval = 5ms;

/// From the worker to its actor: the channel was left and the socket closed.
using left_atom = caf::atom_constant<caf::atom("left")>;

/// The ids a portal event is about, for the trace; nothing else of the payload is recorded.
trace::keys keys_of(const nlohmann::json& payload) {
  trace::keys k;
  if (!payload.is_object()) return k;
  auto text = [&](const nlohmann::json& o, const char* field, std::string& out) {
    if (auto it = o.find(field); it != o.end() && it->is_string()) out = it->get<std::string>();
  };
  text(payload, "client_id", k.client);
  text(payload, "resource_id", k.resource);
  text(payload, "gateway_id", k.gateway);
  if (auto c = payload.find("client"); c != payload.end() && c->is_object()) text(*c, "id", k.client);
  if (auto r = payload.find("resource"); r != payload.end() && r->is_object()) text(*r, "id", k.resource);
  return k;
}

}  // namespace

/// The blocking side: one thread, one socket at a time.
class worker {
 public:
  worker(link_settings s, const caf::actor_addr& self) : s_(std::move(s)), self_(self) {
    thread_ = std::thread([this] { run(); });
  }
  ~worker() { stop(); }

  void enqueue(std::string event, std::string payload) {
    std::lock_guard lock(m_);
    out_.emplace_back(std::move(event), std::move(payload));
  }
  void leave() {
    {
      std::lock_guard lock(m_);
      leaving_ = true;
    }
    wake_.notify_all();
  }
  void stop() {
    {
      std::lock_guard lock(m_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  bool should_stop() {
    std::lock_guard lock(m_);
    return stopping_;
  }

  void tell_owner_status(link_phase phase, std::string reason) {
    trace::record("portal_link", "supervisor", "link_status", {},
                  phase == link_phase::joined ? std::string("joined")
                  : phase == link_phase::lost ? "lost: " + reason
                                              : "refused: " + reason);
    caf::anon_send(s_.owner, link_status{phase, std::move(reason)});
  }

  /// Waits for `d` unless told to stop; false when told.
  bool wait_for(std::chrono::milliseconds d) {
    std::unique_lock lock(m_);
    return !wake_.wait_for(lock, d, [&] { return stopping_ || leaving_; });
  }

  void run() {
    loop();
    std::lock_guard lock(m_);
    if (leaving_ && !stopping_)
      if (auto me = caf::actor_cast<caf::actor>(self_)) caf::anon_send(me, left_atom::value);
  }

  void loop() {
    auto backoff = s_.backoff_initial;
    while (!should_stop()) {
      const std::string target = "/socket/websocket?token=" + websocket::percent_encode(s_.token) + "&vsn=2.0.0" +
                                 (s_.public_key.empty() ? "" : "&public_key=" + websocket::percent_encode(s_.public_key));
      auto c = websocket::wss_client::connect(s_.host, s_.port, target, s_.ca_file, 10s);
      if (c.error) {
        if (c.error->what == websocket::client_error::kind::refused &&
            (c.error->http_status == 401 || c.error->http_status == 403)) {
          s_.log->error("the portal refused this {}'s token (HTTP {}): not retrying", s_.topic, c.error->http_status);
          tell_owner_status(link_phase::refused, "the portal refused the token (HTTP " +
                                                     std::to_string(c.error->http_status) + ")");
          return;
        }
        s_.log->warn("cannot reach the portal at {}:{}: {}; retrying in {} ms", s_.host, s_.port, c.error->message,
                     backoff.count());
        tell_owner_status(link_phase::lost, c.error->message);
        if (!wait_for(backoff)) break;
        backoff = std::min(backoff * 2, s_.backoff_max);
        continue;
      }
      if (session(*c.client)) backoff = s_.backoff_initial;
      if (should_stop()) break;
      {
        std::lock_guard lock(m_);
        if (leaving_) break;
      }
      if (!wait_for(backoff)) break;
      backoff = std::min(backoff * 2, s_.backoff_max);
    }
  }

  /// One socket from join to its end; true when it joined.
  bool session(websocket::wss_client& ws) {
    std::uint64_t ref = 0;
    const std::string join_ref = std::to_string(++ref);
    frame join{join_ref, join_ref, s_.topic, "phx_join", nlohmann::json::object()};
    if (ws.send_text(serialize(join))) return false;
    bool joined = false;
    auto next_heartbeat = std::chrono::steady_clock::now() + s_.heartbeat_interval;
    while (true) {
      // Outgoing events first, then whatever arrived.
      std::deque<std::pair<std::string, std::string>> out;
      bool leaving = false;
      {
        std::lock_guard lock(m_);
        if (stopping_) return joined;
        leaving = leaving_;
        if (joined) out.swap(out_);
      }
      if (leaving) {
        frame leave{join_ref, std::to_string(++ref), s_.topic, "phx_leave", nlohmann::json::object()};
        ws.send_text(serialize(leave), 2s);
        ws.close(1000, "leaving", 2s);
        return joined;
      }
      for (auto& [event, payload] : out) {
        auto body = nlohmann::json::parse(payload, nullptr, false);
        if (!body.is_object()) body = nlohmann::json::object();
        frame f{join_ref, std::to_string(++ref), s_.topic, event, std::move(body)};
        if (auto err = ws.send_text(serialize(f))) {
          s_.log->warn("lost the portal while sending {}: {}", event, err->message);
          tell_owner_status(link_phase::lost, err->message);
          return joined;
        }
      }
      if (std::chrono::steady_clock::now() >= next_heartbeat) {
        frame hb{std::nullopt, std::to_string(++ref), "phoenix", "heartbeat", nlohmann::json::object()};
        ws.send_text(serialize(hb));
        next_heartbeat = std::chrono::steady_clock::now() + s_.heartbeat_interval;
      }
      auto r = ws.receive_text(poll_interval);
      if (r.timed_out()) continue;
      if (r.error) {
        s_.log->warn("lost the portal: {}", r.error->message);
        tell_owner_status(link_phase::lost, r.error->message);
        return joined;
      }
      auto parsed = parse_frame(*r.text, default_max_frame_bytes);
      if (!parsed) {
        s_.log->warn("the portal sent a frame we cannot read ({}); ignored", parsed.error->message);
        continue;
      }
      const frame& f = *parsed;
      if (auto reply = read_reply(f)) {
        if (f.ref == join_ref && !joined) {
          if (reply->status != reply_status::ok) {
            s_.log->error("the portal refused the join of topic {}: {}", s_.topic, reply->response.dump());
            tell_owner_status(link_phase::refused, "join refused: " + reply->response.dump());
            return false;
          }
          joined = true;
          s_.log->info("joined the portal's {} topic", s_.topic);
          tell_owner_status(link_phase::joined, {});
        } else if (reply->status != reply_status::ok) {
          s_.log->warn("the portal answered an event with an error: {}", reply->response.dump());
        }
        continue;
      }
      if (f.topic != s_.topic) continue;
      if (trace::on()) {
        const auto k = keys_of(f.payload);
        trace::record("portal", "portal_link", f.event, k, "frame in");
        trace::record("portal_link", "supervisor", f.event, k, "push");
      }
      caf::anon_send(s_.owner, push{f.event, f.payload.dump()});
    }
  }

  link_settings s_;
  caf::actor_addr self_;
  std::thread thread_;
  std::mutex m_;
  std::condition_variable wake_;
  std::deque<std::pair<std::string, std::string>> out_;
  bool stopping_ = false;
  bool leaving_ = false;
};

caf::behavior portal_link_actor(caf::stateful_actor<link_state>* self, link_settings settings) {
  if (!settings.log) settings.log = spdlog::default_logger();
  self->state.io = std::make_shared<worker>(std::move(settings), self->address());
  // The worker's thread ends with the actor, however it ends.
  self->attach_functor([io = self->state.io] { io->stop(); });
  return {
      [=](const push& out) {
        if (trace::on()) {
          const auto k = keys_of(nlohmann::json::parse(out.payload, nullptr, false));
          trace::trace_in(self, out.event, k);
          trace::record("portal_link", "portal", out.event, k, "frame out");
        }
        self->state.io->enqueue(out.event, out.payload);
      },
      [=](leave_atom) {
        trace::trace_in(self, "leave");
        self->state.io->leave();
      },
      [=](left_atom) { self->quit(); },
  };
}

}  // namespace firebreak::portal_link
