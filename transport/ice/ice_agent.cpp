#include "transport/ice/ice_agent.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <agent.h>
#include <gio/gio.h>

#include <atomic>
#include <mutex>

namespace firebreak::ice {

namespace {

constexpr guint component_id = 1;
constexpr int socket_buffer_bytes = 7 << 20;
constexpr std::size_t max_batch = 64;  // datagrams per event: a bound on latency under bulk traffic

candidate_type type_of(NiceCandidateType t) {
  switch (t) {
    case NICE_CANDIDATE_TYPE_HOST: return candidate_type::host;
    case NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE: return candidate_type::server_reflexive;
    case NICE_CANDIDATE_TYPE_PEER_REFLEXIVE: return candidate_type::peer_reflexive;
    case NICE_CANDIDATE_TYPE_RELAYED: return candidate_type::relayed;
  }
  return candidate_type::host;
}

std::string address_text(const NiceAddress& a) {
  char ip[NICE_ADDRESS_STRING_LEN];
  nice_address_to_string(&a, ip);
  const bool v6 = nice_address_ip_version(&a) == 6;
  return (v6 ? "[" + std::string(ip) + "]" : std::string(ip)) + ":" + std::to_string(nice_address_get_port(&a));
}

/// libnice wants IP literals for its servers; a name is resolved here (on the loop thread).
std::optional<std::string> resolve(const std::string& host) {
  in6_addr scratch{};
  if (inet_pton(AF_INET, host.c_str(), &scratch) == 1 || inet_pton(AF_INET6, host.c_str(), &scratch) == 1)
    return host;
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0 || found == nullptr) return std::nullopt;
  char text[INET6_ADDRSTRLEN] = {};
  const void* where = found->ai_family == AF_INET6
                          ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(found->ai_addr)->sin6_addr)
                          : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr);
  inet_ntop(found->ai_family, where, text, sizeof text);
  freeaddrinfo(found);
  return std::string(text);
}

/// libnice parses "a=candidate:…"; Firezone's wire form has no "a=".
std::string as_sdp_line(std::string_view candidate) {
  if (candidate.starts_with("a=")) return std::string(candidate);
  return "a=" + std::string(candidate);
}

}  // namespace

std::string_view to_string(agent_state s) {
  switch (s) {
    case agent_state::gathering: return "gathering";
    case agent_state::connecting: return "connecting";
    case agent_state::connected: return "connected";
    case agent_state::failed: return "failed";
  }
  return "?";
}

std::string_view to_string(candidate_type t) {
  switch (t) {
    case candidate_type::host: return "host";
    case candidate_type::server_reflexive: return "srflx";
    case candidate_type::peer_reflexive: return "prflx";
    case candidate_type::relayed: return "relay";
  }
  return "?";
}

struct agent::impl {
  glib_loop& loop;
  agent_config config;
  agent_events events;
  NiceAgent* nice = nullptr;  // owned; touched on the loop thread except for the thread-safe calls
  guint stream = 0;
  std::atomic<bool> closed{false};
  std::atomic<bool> has_pair{false};
  gathering_result gathered;
  std::optional<agent_state> last_state;
  std::vector<datagram> batch;
  GSource* flush_source = nullptr;

  impl(glib_loop& l, agent_config c, agent_events e) : loop(l), config(std::move(c)), events(std::move(e)) {}

  // The GObject lives as long as anyone may still call send() on it; it is released on the loop thread.
  ~impl() {
    if (nice == nullptr) return;
    NiceAgent* n = nice;
    if (!loop.post([n] { g_object_unref(n); })) g_object_unref(n);
  }

  void emit_state(agent_state s) {
    if (last_state == s || closed) return;
    last_state = s;
    if (events.state) events.state(s);
  }

  void flush() {
    if (flush_source) {
      g_source_destroy(flush_source);
      g_source_unref(flush_source);
      flush_source = nullptr;
    }
    if (batch.empty() || closed) return;
    std::vector<datagram> out;
    out.swap(batch);
    if (events.datagrams) events.datagrams(std::move(out));
  }

  // ---- libnice's callbacks (loop thread) ----
  static void on_candidate(NiceAgent* a, NiceCandidate* c, gpointer self) {
    auto* me = static_cast<impl*>(self);
    if (me->closed) return;
    ++me->gathered.candidates;
    if (c->type == NICE_CANDIDATE_TYPE_RELAYED) ++me->gathered.relayed;
    gchar* sdp = nice_agent_generate_local_candidate_sdp(a, c);
    if (sdp == nullptr) return;
    std::string line(sdp);
    g_free(sdp);
    if (line.starts_with("a=")) line.erase(0, 2);
    if (me->events.local_candidate) me->events.local_candidate(std::move(line));
  }

  static void on_gathering_done(NiceAgent*, guint, gpointer self) {
    auto* me = static_cast<impl*>(self);
    if (me->closed) return;
    if (!me->config.turn.empty() && me->gathered.relayed == 0)
      me->gathered.warnings.push_back("no relayed candidate from " + std::to_string(me->config.turn.size()) +
                                      " TURN server(s): unreachable, or the credentials were refused");
    if (me->gathered.candidates == 0)
      me->gathered.warnings.push_back("no local candidate at all: the peer cannot reach this side");
    if (me->events.gathering_done) me->events.gathering_done(me->gathered);
    if (me->gathered.candidates == 0) me->emit_state(agent_state::failed);
  }

  static void on_state(NiceAgent*, guint, guint, guint state, gpointer self) {
    auto* me = static_cast<impl*>(self);
    switch (static_cast<NiceComponentState>(state)) {
      case NICE_COMPONENT_STATE_GATHERING: me->emit_state(agent_state::gathering); break;
      case NICE_COMPONENT_STATE_CONNECTING: me->emit_state(agent_state::connecting); break;
      case NICE_COMPONENT_STATE_CONNECTED:
      case NICE_COMPONENT_STATE_READY: me->emit_state(agent_state::connected); break;
      case NICE_COMPONENT_STATE_FAILED:
        me->has_pair = false;
        me->emit_state(agent_state::failed);
        break;
      default: break;
    }
  }

  /// Bulk data runs over the selected pair's socket: give it buffers as large as a busy tunnel needs
  /// (as wireguard-go does), or the kernel drops datagrams whenever the loop thread falls behind and
  /// TCP inside the tunnel reads that as congestion. FORCE needs CAP_NET_ADMIN; without it the
  /// plain options are capped by net.core.[rw]mem_max.
  static void enlarge_buffers(NiceAgent* agent, guint stream_id, guint component) {
    GSocket* socket = nice_agent_get_selected_socket(agent, stream_id, component);
    if (!socket) return;
    const int fd = g_socket_get_fd(socket);
    int size = socket_buffer_bytes;
    for (auto [force, plain] : {std::pair{SO_RCVBUFFORCE, SO_RCVBUF}, std::pair{SO_SNDBUFFORCE, SO_SNDBUF}})
      if (setsockopt(fd, SOL_SOCKET, force, &size, sizeof size) != 0) setsockopt(fd, SOL_SOCKET, plain, &size, sizeof size);
    g_object_unref(socket);
  }

  static void on_selected(NiceAgent* agent, guint stream_id, guint component, NiceCandidate* local,
                          NiceCandidate* remote, gpointer self) {
    auto* me = static_cast<impl*>(self);
    me->has_pair = true;
    if (me->closed) return;
    enlarge_buffers(agent, stream_id, component);
    selected_pair p{type_of(local->type), type_of(remote->type), address_text(local->addr), address_text(remote->addr)};
    GSocket* socket = p.local == candidate_type::relayed ? nullptr : nice_agent_get_selected_socket(agent, stream_id, component);
    if (socket) {
      p.socket_fd = g_socket_get_fd(socket);
      nice_address_copy_to_sockaddr(&remote->addr, reinterpret_cast<sockaddr*>(&p.remote_sockaddr));
      p.remote_sockaddr_len = remote->addr.s.addr.sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    }
    if (me->events.selected) me->events.selected(p);
    if (socket) g_object_unref(socket);
  }

  static void on_receive(NiceAgent*, guint, guint, guint len, gchar* buf, gpointer self) {
    auto* me = static_cast<impl*>(self);
    if (me->closed) return;
    me->batch.emplace_back(reinterpret_cast<std::uint8_t*>(buf), reinterpret_cast<std::uint8_t*>(buf) + len);
    if (me->batch.size() >= max_batch) {
      me->flush();
      return;
    }
    if (me->flush_source == nullptr) {
      // After the sockets ready in this iteration have been read: one event for all of them.
      me->flush_source = g_timeout_source_new(0);
      g_source_set_callback(
          me->flush_source,
          [](gpointer data) -> gboolean {
            static_cast<impl*>(data)->flush();
            return G_SOURCE_REMOVE;
          },
          me, nullptr);
      g_source_attach(me->flush_source, me->loop.context());
    }
  }

  /// Runs on the loop thread: builds the agent and starts gathering.
  bool setup(std::string& error) {
    auto options = static_cast<NiceAgentOption>(NICE_AGENT_OPTION_ICE_TRICKLE | NICE_AGENT_OPTION_CONSENT_FRESHNESS);
    nice = nice_agent_new_full(loop.context(), NICE_COMPATIBILITY_RFC5245, options);
    if (nice == nullptr) {
      error = "libnice could not create an agent";
      return false;
    }
    g_object_set(nice, "controlling-mode", config.controlling ? TRUE : FALSE, "upnp", FALSE, "ice-tcp", FALSE,
                 "force-relay", config.relay_only ? TRUE : FALSE, nullptr);
    if (config.stun) {
      auto ip = resolve(config.stun->host);
      if (!ip) {
        error = "cannot resolve the STUN server " + config.stun->host;
        return false;
      }
      g_object_set(nice, "stun-server", ip->c_str(), "stun-server-port", static_cast<guint>(config.stun->port), nullptr);
    }
    for (const auto& a : config.local_addresses) {
      NiceAddress addr;
      nice_address_init(&addr);
      if (!nice_address_set_from_string(&addr, a.c_str())) {
        error = "not a local IP address: " + a;
        return false;
      }
      nice_agent_add_local_address(nice, &addr);
    }
    g_signal_connect(nice, "new-candidate-full", G_CALLBACK(on_candidate), this);
    g_signal_connect(nice, "candidate-gathering-done", G_CALLBACK(on_gathering_done), this);
    g_signal_connect(nice, "component-state-changed", G_CALLBACK(on_state), this);
    g_signal_connect(nice, "new-selected-pair-full", G_CALLBACK(on_selected), this);

    stream = nice_agent_add_stream(nice, 1);
    if (stream == 0) {
      error = "libnice could not add a stream";
      return false;
    }
    nice_agent_set_stream_name(nice, stream, "application");
    for (const auto& t : config.turn) {
      auto ip = resolve(t.host);
      if (!ip) {
        gathered.warnings.push_back("cannot resolve the TURN server " + t.host);
        continue;
      }
      if (!nice_agent_set_relay_info(nice, stream, component_id, ip->c_str(), t.port, t.username.c_str(),
                                     t.password.c_str(), NICE_RELAY_TYPE_TURN_UDP)) {
        error = "libnice refused the TURN server " + t.host + ":" + std::to_string(t.port);
        return false;
      }
    }
    if (!nice_agent_set_local_credentials(nice, stream, config.local.ufrag.c_str(), config.local.password.c_str())) {
      error = "libnice refused the local ICE credentials";
      return false;
    }
    if (!nice_agent_set_remote_credentials(nice, stream, config.remote.ufrag.c_str(), config.remote.password.c_str())) {
      error = "libnice refused the remote ICE credentials";
      return false;
    }
    nice_agent_attach_recv(nice, stream, component_id, loop.context(), on_receive, this);
    if (!nice_agent_gather_candidates(nice, stream)) {
      error = "libnice could not start gathering candidates (no usable local address?)";
      return false;
    }
    return true;
  }

  /// Loop thread: no more events, then release the relays and free the agent.
  void shut(std::shared_ptr<impl> keep, std::function<void()> done) {
    closed = true;
    has_pair = false;
    batch.clear();
    if (flush_source) {
      g_source_destroy(flush_source);
      g_source_unref(flush_source);
      flush_source = nullptr;
    }
    if (nice == nullptr) {
      if (done) done();
      return;
    }
    g_signal_handlers_disconnect_by_data(nice, this);
    // The receive callback stays attached (it ignores data once closed): libnice reads the TURN
    // server's answers to the deallocations through it, and without them each one would wait out
    // its retransmissions (over a second) before the close completed.
    struct closing {
      std::shared_ptr<impl> keep;
      std::function<void()> done;
    };
    nice_agent_close_async(
        nice,
        [](GObject*, GAsyncResult*, gpointer data) {
          std::unique_ptr<closing> c(static_cast<closing*>(data));
          if (c->done) c->done();
        },
        new closing{std::move(keep), std::move(done)});
  }
};

std::shared_ptr<agent> agent::start(glib_loop& loop, agent_config config, agent_events events, std::string& error) {
  auto i = std::make_shared<impl>(loop, std::move(config), std::move(events));
  bool ok = false;
  if (loop.on_loop_thread())
    ok = i->setup(error);
  else
    loop.run_sync([&] { ok = i->setup(error); });
  if (!ok) {
    if (error.empty()) error = "the ICE loop is stopping";
    auto keep = i;
    auto shut = [keep] { keep->shut(keep, {}); };
    if (loop.on_loop_thread())
      shut();
    else
      loop.post(shut);
    return nullptr;
  }
  return std::shared_ptr<agent>(new agent(std::move(i)));
}

agent::agent(std::shared_ptr<impl> i) : impl_(std::move(i)) {}

agent::~agent() { close(); }

namespace {

/// The candidate as libnice reads it (caller frees), or null with `why` set.
NiceCandidate* parse_remote(const agent::impl& i, std::string_view candidate, std::string& why);

}  // namespace

bool agent::add_remote_candidate(std::string_view candidate, std::string& why) {
  NiceCandidate* c = parse_remote(*impl_, candidate, why);
  if (c == nullptr) return false;
  GSList* list = g_slist_append(nullptr, c);
  const int added = nice_agent_set_remote_candidates(impl_->nice, impl_->stream, component_id, list);
  g_slist_free_full(list, reinterpret_cast<GDestroyNotify>(nice_candidate_free));
  if (added < 1) {
    why = "libnice did not accept the candidate";
    return false;
  }
  return true;
}

bool agent::remove_remote_candidate(std::string_view candidate, std::string& why) {
  // libnice 0.1.21 cannot forget one remote candidate; parse it, so garbage is still reported, and
  // leave the pair to fail its checks (or consent) on its own.
  NiceCandidate* c = parse_remote(*impl_, candidate, why);
  if (c == nullptr) return false;
  nice_candidate_free(c);
  return true;
}

namespace {

NiceCandidate* parse_remote(const agent::impl& i, std::string_view candidate, std::string& why) {
  if (i.closed || i.nice == nullptr) {
    why = "the agent is closed";
    return nullptr;
  }
  const auto line = as_sdp_line(candidate);
  NiceCandidate* c = nice_agent_parse_remote_candidate_sdp(i.nice, i.stream, line.c_str());
  if (c == nullptr) why = "not an ICE candidate";
  return c;
}

}  // namespace

bool agent::send(std::span<const std::uint8_t> bytes) {
  if (!impl_->has_pair || impl_->closed) return false;
  return nice_agent_send(impl_->nice, impl_->stream, component_id, static_cast<guint>(bytes.size()),
                         reinterpret_cast<const gchar*>(bytes.data())) >= 0;
}

void agent::close(std::function<void()> done) {
  if (impl_->closed.exchange(true)) {
    if (done) done();
    return;
  }
  auto keep = impl_;
  auto run = [keep, done]() mutable { keep->shut(keep, std::move(done)); };
  if (impl_->loop.on_loop_thread())
    run();
  else if (!impl_->loop.post(std::move(run)) && done)
    done();  // the loop is gone, and the agent with it
}

}  // namespace firebreak::ice
