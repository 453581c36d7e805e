#include "actors/node/supervisor.hpp"

#include <variant>

#include <nlohmann/json.hpp>

#include "actors/trace/trace_point.hpp"
#include "messages/portal_link_messages.hpp"

namespace firebreak::node {

using namespace messages;
using sup_self = caf::stateful_actor<supervisor_state>;

namespace {

using stop_now_atom = caf::atom_constant<caf::atom("stopnow")>;
using watchdog_atom = caf::atom_constant<caf::atom("watchdog")>;

/// `what` is one or more NAME=value lines of ours; a reason in it may come from the network (a
/// proxy's error page), so its own line breaks are flattened before it can start an assignment.
void notify(sup_self* self, const std::string& what) {
  if (self->state.settings.notify) self->state.settings.notify(what);
}

std::string one_line(std::string text) {
  for (auto& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  return text;
}

nlohmann::json health_of(const supervisor_state& st) {
  nlohmann::json portal = {{"state", st.portal}};
  if (!st.portal_reason.empty()) portal["reason"] = st.portal_reason;
  return {{"ready", st.portal == "joined" && !st.stopping}, {"portal", portal}, {"stopping", st.stopping}};
}

void begin_shutdown(sup_self* self, const std::string& why, int code, const char* goodbye_reason = "shutdown") {
  auto& st = self->state;
  if (st.stopping) return;
  st.stopping = true;
  if (code != 0) st.settings.exit_code->store(code);
  st.log->info("shutting down: {}", why);
  notify(self, "STOPPING=1\nSTATUS=stopping: " + one_line(why) + "; saying goodbye to every peer");
  // Leave first, so the portal stops choosing this node; then say goodbye to every peer.
  self->send(st.settings.portal_link, leave_atom::value);
  self->send(st.settings.tunnel, shutdown_atom::value, std::string(goodbye_reason));
  // Grants stop mattering once every connection is closing.
  if (st.settings.authorization) self->send_exit(st.settings.authorization, caf::exit_reason::user_shutdown);
  st.waiting = 2;
  self->monitor(st.settings.portal_link);
  self->monitor(st.settings.tunnel);
  self->set_down_handler([=](const caf::down_msg&) {
    if (--self->state.waiting == 0) self->quit();
  });
  self->delayed_send(self, st.settings.flush_bound, stop_now_atom::value);
}

template <class Variant, class Wrap>
void dispatch(sup_self* self, const push& in, Wrap&& route) {
  auto& st = self->state;
  auto payload = nlohmann::json::parse(in.payload, nullptr, false);
  auto ev = decode_event<Variant>(in.event, payload);
  if (!ev) {
    if (ev.error && ev.error->kind == decode_error_kind::unknown_event) {
      st.log->debug("portal event {} is not known to this version: ignored", in.event);
    } else {
      ++st.bad_events;
      st.log->warn("portal event {} refused: {}", in.event, ev.error ? ev.error->message : "not JSON");
    }
    return;
  }
  route(*ev.value);
}

}  // namespace

caf::behavior supervisor(sup_self* self, supervisor_settings settings) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.log = st.settings.log ? st.settings.log : spdlog::default_logger();
  if (st.settings.portal_link) self->send(st.settings.tunnel, st.settings.portal_link);
  if (st.settings.watchdog.count() > 0) self->send(self, watchdog_atom::value);
  notify(self, "STATUS=TUN device up; connecting to the portal");

  return {
      [=](const caf::actor& link) {
        // The portal link is spawned after this actor (it needs an owner): it arrives here.
        self->state.settings.portal_link = link;
        self->send(self->state.settings.tunnel, link);
      },
      [=](const push& in) {
        auto& s = self->state;
        if (s.stopping) return;
        if (s.settings.who == role::client) {
          dispatch<client_topic::from_portal>(self, in, [&](const client_topic::from_portal& e) {
            self->send(self->state.settings.tunnel, client_event{e});
          });
          return;
        }
        dispatch<gateway_topic::from_portal>(self, in, [&](const gateway_topic::from_portal& e) {
          auto& s2 = self->state;
          const bool for_authorization = std::holds_alternative<gateway_topic::authorize_flow>(e) ||
                                         std::holds_alternative<gateway_topic::reject_access>(e) ||
                                         std::holds_alternative<gateway_topic::access_authorization_expiry_updated>(e);
          if (for_authorization || std::holds_alternative<gateway_topic::init>(e))
            self->send(s2.settings.authorization, gateway_event{e});
          if (!for_authorization) self->send(s2.settings.tunnel, gateway_event{e});
        });
      },
      [=](const link_status& ls) {
        auto& s = self->state;
        switch (ls.phase) {
          case link_phase::joined:
            s.log->info("joined the portal");
            s.portal = "joined";
            s.portal_reason.clear();
            if (s.stopping) break;
            notify(self, std::string(s.joined_once ? "" : "READY=1\n") + "STATUS=joined the portal, serving");
            s.joined_once = true;
            break;
          case link_phase::lost:
            // Logged once per change: the link retries with backoff and says so at every attempt.
            if (s.portal != "lost" || s.portal_reason != ls.reason)
              s.log->warn("{} the portal ({}): reconnecting", s.joined_once ? "lost" : "cannot reach", ls.reason);
            s.portal = s.joined_once ? "lost" : "connecting";
            s.portal_reason = ls.reason;
            if (!s.stopping)
              notify(self, "STATUS=not ready: " + std::string(s.joined_once ? "lost" : "cannot reach") +
                               " the portal (" + one_line(ls.reason) + "), retrying");
            break;
          case link_phase::refused:
            s.log->error("the portal refused this node ({}): check its token", ls.reason);
            s.portal = "refused";
            s.portal_reason = ls.reason;
            begin_shutdown(self, "refused by the portal", 1);
            break;
        }
      },
      [=](health_atom) { return health_of(self->state).dump(); },
      [=](node_status_atom a) -> caf::result<std::string> {
        auto rp = self->make_response_promise<std::string>();
        self->request(self->state.settings.tunnel, std::chrono::seconds(3), a)
            .then(
                [=](const std::string& tunnel_status) mutable {
                  auto j = nlohmann::json::parse(tunnel_status, nullptr, false);
                  if (j.is_object()) j["health"] = health_of(self->state);
                  rp.deliver(j.is_object() ? j.dump() : tunnel_status);
                },
                [=](const caf::error& e) mutable { rp.deliver(e); });
        return rp;
      },
      [=](watchdog_atom) {
        notify(self, "WATCHDOG=1");
        self->delayed_send(self, self->state.settings.watchdog, watchdog_atom::value);
      },
      [=](shutdown_atom) {
        trace::trace_in(self, "shutdown", {}, "signal");
        begin_shutdown(self, "signal", 0);
      },
      [=](fatal_atom, const std::string& why) {
        trace::trace_in(self, "fatal", {}, why);
        self->state.log->error("{}", why);
        begin_shutdown(self, why, 1);
      },
      [=](sign_out_atom) {
        trace::trace_in(self, "sign_out");
        // Only a client signs out; a gateway asked to is told no (its operator stops it instead).
        if (self->state.settings.who != role::client) return false;
        begin_shutdown(self, "signed out", 0, "signed_out");
        return true;
      },
      [=](stop_now_atom) {
        auto& s = self->state;
        s.log->warn("shutdown took longer than {} ms: stopping now", s.settings.flush_bound.count());
        self->send_exit(s.settings.portal_link, caf::exit_reason::user_shutdown);
        self->quit();
      },
  };
}

}  // namespace firebreak::node
