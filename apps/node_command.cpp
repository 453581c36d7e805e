#include "apps/node_command.hpp"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <pthread.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <systemd/sd-daemon.h>

#include "actors/client/client_tunnel.hpp"
#include "actors/connection/ice_actor.hpp"
#include "actors/gateway/authorization_actor.hpp"
#include "actors/gateway/gateway_tunnel.hpp"
#include "actors/node/data_plane.hpp"
#include "actors/node/supervisor.hpp"
#include "actors/portal_link/portal_link.hpp"
#include "apps/health_routes.hpp"
#include "apps/logging.hpp"
#include "apps/metrics_text.hpp"
#include "actors/trace/trace_recorder.hpp"
#include "apps/status_request.hpp"
#include "apps/status_socket.hpp"
#include "messages/connection_messages.hpp"
#include "messages/portal_messages.hpp"
#include "transport/ice/glib_loop.hpp"
#include "transport/tun/forwarding_linux.hpp"
#include "transport/tun/link_config_linux.hpp"
#include "transport/tun/tun_device_linux.hpp"
#include "transport/tun/tun_reader.hpp"
#include "transport/websocket/http_endpoint.hpp"
#include "transport/wireguard/crypto.hpp"
#include "transport/wireguard/random.hpp"

namespace firebreak::apps {

namespace {

using json = nlohmann::json;
constexpr unsigned tunnel_mtu = 1280;

const char* role_name(config::node_role r) { return r == config::node_role::client ? "client" : "gateway"; }

/// This device's WireGuard key: read from `path`, or created there (mode 0600) on the first start.
std::optional<wireguard::private_key> device_key(const std::string& path, std::string& why) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    wireguard::system_random rng;
    wireguard::private_key key;
    rng.fill(key.bytes);
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    const auto old = ::umask(077);
    std::ofstream out(path);
    out << wireguard::to_base64(key.bytes) << "\n";
    ::umask(old);
    if (!out) {
      why = "cannot create the key file " + path;
      return std::nullopt;
    }
    component_logger("node")->info("created a new device key in {}", path);
    return key;
  }
  std::ifstream in(path);
  std::string text;
  std::getline(in, text);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  auto key = wireguard::key_from_base64(text);
  if (!key) {
    // Never the file's content: it is a secret, even when it is a broken one.
    why = "the key file " + path + " does not hold a WireGuard private key (32 bytes of base64)";
    return std::nullopt;
  }
  wireguard::private_key out;
  std::copy(key->bytes.begin(), key->bytes.end(), out.bytes.begin());
  return out;
}

std::string age_of(std::int64_t unix_ms) {
  if (unix_ms <= 0) return "never";
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return std::to_string(std::max<std::int64_t>(0, (now - unix_ms) / 1000)) + " s ago";
}

std::string expiry_of(const json& v) {
  if (v.is_null()) return "never";
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const auto left = (v.get<std::int64_t>() - now) / 1000;
  std::time_t t = v.get<std::int64_t>() / 1000;
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&t));
  return std::string(when) + (left >= 0 ? " (in " + std::to_string(left) + " s)" : " (expired)");
}

/// The status as a person reads it.
void render_status(const json& s, std::ostream& out) {
  out << s.value("role", "?") << " on " << s.value("interface", "?") << ", tunnel address " << s.value("ipv4", "-")
      << " / " << s.value("ipv6", "-") << "\n";
  if (s.contains("resources")) {
    out << "\nresources (" << s["resources"].size() << ")\n";
    for (const auto& r : s["resources"]) {
      std::string gw = r.value("gateway", "");
      out << "  " << r.value("name", "") << "  " << r.value("address", "") << "  id " << r.value("id", "") << "  "
          << (gw.empty() ? "no flow" : "through gateway " + gw + ", access expires " + expiry_of(r["expires_at_unix_ms"]))
          << "\n";
    }
  }
  if (s.contains("grants")) {
    out << "\ngrants\n";
    for (const auto& c : s["grants"]) {
      out << "  client " << c.value("client", "") << " (" << c.value("ipv4", "") << ")\n";
      for (const auto& r : c["resources"])
        out << "    " << r.value("name", "") << "  " << r.value("address", "") << "  expires "
            << expiry_of(r["expires_at_unix_ms"]) << "\n";
      if (c["resources"].empty()) out << "    (none)\n";
    }
  }
  out << "\nconnections (" << s["connections"].size() << ")\n";
  for (const auto& c : s["connections"]) {
    std::string path = c.value("path", "");
    out << "  " << c.value("peer", "") << "  " << c.value("state", "") << "  " << (path.empty() ? "no path yet" : path)
        << "  handshake " << age_of(c.value("last_handshake_unix_ms", std::int64_t{0})) << "  sent "
        << c.value("tx_bytes", std::uint64_t{0}) << " B  received " << c.value("rx_bytes", std::uint64_t{0}) << " B\n";
    if (!c.value("route", std::string{}).empty()) out << "      " << c.value("route", std::string{}) << "\n";
  }
  out << "\npackets " << s["packets"].dump() << "\ndropped " << s["dropped"].dump() << "\n";
  if (s.contains("fast_path") && s["fast_path"].is_object()) {
    const auto& f = s["fast_path"];
    out << "fast path: " << f.value("packets_sealed", std::uint64_t{0}) << " packets sealed, "
        << f.value("packets_opened", std::uint64_t{0}) << " opened into " << f.value("tun_frames_written", std::uint64_t{0})
        << " TUN writes; TUN segmentation offload " << (f.value("tun_offload", false) ? "on" : "off")
        << ", coalescing " << (f.value("tun_coalescing", false) ? "on" : "off") << "; "
        << f.value("tun_queues", 1u) << " data thread" << (f.value("tun_queues", 1u) == 1 ? "" : "s") << " each way\n";
  }
  if (s.contains("goodbyes"))
    out << "goodbyes sent " << s["goodbyes"]["sent"].dump() << ", received " << s["goodbyes"]["received"].dump() << "\n";
  if (s.contains("trace")) {
    const auto& t = s["trace"];
    out << "actor trace " << (t.value("on", false) ? "on: " + t.value("file", std::string()) : std::string("off"));
    if (t.value("recorded", 0) > 0) out << " (" << t.value("recorded", 0) << " recorded, " << t.value("dropped", 0) << " dropped)";
    if (t.contains("error")) out << "; " << t.value("error", std::string());
    out << "\n";
  }
}

std::string socket_path(const node_command& cmd) {
  if (!cmd.status_socket.empty()) return cmd.status_socket;
  // `firebreak client --status-socket X status`: the daemon's own flag, given before the subcommand.
  if (const auto* given = cmd.app->get_option_no_throw("--status-socket"); given && given->count() > 0)
    return given->as<std::string>();
  const char* env = std::getenv("FIREBREAK_STATUS_SOCKET");
  return env ? env : std::string("/run/firebreak/") + role_name(cmd.role) + ".sock";
}

/// `firebreak client sign-out`: the daemon says goodbye to every gateway, leaves the portal and exits
/// 0 (so a supervisor restarting on failure leaves it stopped). The token stays where it is: it is the
/// administrator's to revoke.
int run_sign_out(node_command& cmd) {
  const auto path = socket_path(cmd);
  std::string why;
  auto answer = ask_daemon(path, "sign-out", why);
  if (!answer) {
    std::cerr << "firebreak client sign-out: " << why << "\n";
    return 1;
  }
  auto a = json::parse(*answer, nullptr, false);
  if (a.is_discarded() || !a.value("signing_out", false)) {
    std::cerr << "firebreak client sign-out: unexpected answer: " << *answer;
    return 1;
  }
  // The daemon removes its socket as it stops.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::filesystem::exists(path) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (std::filesystem::exists(path)) {
    std::cerr << "firebreak client sign-out: goodbyes sent, but the daemon is still stopping\n";
    return 1;
  }
  std::cout << "signed out: every gateway was told goodbye and the client has stopped\n";
  return 0;
}

int run_status(node_command& cmd) {
  const auto path = socket_path(cmd);
  std::string why;
  auto answer = ask_daemon(path, "status", why);
  if (!answer) {
    std::cerr << "firebreak " << role_name(cmd.role) << " status: " << why << "\n";
    return 1;
  }
  if (cmd.status_json) {
    std::cout << *answer;
    return 0;
  }
  auto s = json::parse(*answer, nullptr, false);
  if (s.is_discarded() || s.contains("error")) {
    std::cerr << "firebreak " << role_name(cmd.role) << " status: unexpected answer: " << *answer;
    return 1;
  }
  render_status(s, std::cout);
  return 0;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "host";
  return buf;
}

/// Switches the actor trace on or off; its outcome as the status socket answers it.
std::string switch_trace(bool enable) {
  std::string why;
  auto log = component_logger("node");
  if (!trace::recorder::instance().set_enabled(enable, why)) {
    log->warn("the actor trace cannot be switched on: {}", why);
    return json{{"error", why}}.dump();
  }
  const auto st = trace::recorder::instance().stats();
  log->info("actor trace {}{}", enable ? "on: " : "off", enable ? st.path : "");
  return json{{"trace", enable ? "on" : "off"}, {"file", st.path}}.dump();
}

/// Asks the supervisor something answered with JSON text; nullopt when it did not answer in time or
/// stopped meanwhile. Monitored, not merely requested: CAF 0.17 sends nothing for a promise its actor
/// dropped by quitting, and a scrape arriving during the shutdown must not hold up the exit.
template <class Atom>
std::optional<std::string> ask_supervisor(caf::actor_system& sys, const caf::actor& sup, Atom what) {
  caf::scoped_actor asker{sys};
  asker->monitor(sup);
  std::optional<std::string> out;
  asker->send(sup, what);
  bool done = false;
  asker->receive_while([&] { return !done; })(
      [&](const std::string& s) {
        out = s;
        done = true;
      },
      [&](const caf::down_msg&) { done = true; }, [&](const caf::error&) { done = true; },
      caf::after(std::chrono::seconds(3)) >> [&] { done = true; });
  return out;
}

/// SIGTERM/SIGINT: the first starts the shutdown sequence, a second one exits at once. SIGUSR1
/// switches the actor trace on or off.
class signal_watch {
 public:
  signal_watch(sigset_t set, caf::actor supervisor, std::atomic<std::int64_t>& stop_asked_ns)
      : set_(set) {
    thread_ = std::thread([this, supervisor, &stop_asked_ns] {
      int seen = 0;
      timespec tick{0, 200'000'000};
      while (!stop_) {
        const int sig = sigtimedwait(&set_, nullptr, &tick);
        if (sig <= 0) continue;
        if (sig == SIGUSR1) {
          switch_trace(!trace::on());
          continue;
        }
        if (++seen == 1) {
          stop_asked_ns = std::chrono::steady_clock::now().time_since_epoch().count();
          component_logger("node")->info("received {}: leaving the portal, closing connections",
                                         sig == SIGTERM ? "SIGTERM" : "SIGINT");
          caf::anon_send(supervisor, messages::shutdown_atom::value);
        } else {
          component_logger("node")->warn("second signal: exiting at once");
          std::_Exit(1);
        }
      }
    });
  }
  ~signal_watch() {
    stop_ = true;
    thread_.join();
  }

 private:
  sigset_t set_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

std::shared_ptr<node_command> add_node_command(CLI::App& app, config::node_role role) {
  auto cmd = std::make_shared<node_command>();
  cmd->role = role;
  const bool client = role == config::node_role::client;
  cmd->app = app.add_subcommand(role_name(role), client ? "run the client daemon: a TUN interface with routes to your "
                                                          "resources, connections to their gateways"
                                                        : "run a gateway: accept the flows the portal authorizes, "
                                                          "forward to resources, enforce grants");
  cmd->loader = std::make_unique<config::node_config_loader>(role, *cmd->app);
  cmd->status = cmd->app->add_subcommand("status", "show the running daemon's connections, paths, handshakes, bytes"
                                                   " and grants");
  cmd->status->add_option("--status-socket", cmd->status_socket,
                          "the daemon's status socket (env FIREBREAK_STATUS_SOCKET; default /run/firebreak/" +
                              std::string(role_name(role)) + ".sock)");
  cmd->status->add_flag("--json", cmd->status_json, "print the status as JSON");
  cmd->trace = cmd->app->add_subcommand("trace", "switch the running daemon's actor trace on or off");
  cmd->trace->add_option("state", cmd->trace_state, "on or off")->required()->check(CLI::IsMember({"on", "off"}));
  cmd->trace->add_option("--status-socket", cmd->status_socket,
                         "the daemon's status socket (env FIREBREAK_STATUS_SOCKET; default /run/firebreak/" +
                             std::string(role_name(role)) + ".sock)");
  if (client) {
    cmd->sign_out = cmd->app->add_subcommand(
        "sign-out", "tell the running client to say goodbye to every gateway, leave the portal and stop");
    cmd->sign_out->add_option("--status-socket", cmd->status_socket,
                              "the client's status socket (env FIREBREAK_STATUS_SOCKET; default "
                              "/run/firebreak/client.sock)");
  }
  return cmd;
}

int run_node(node_command& cmd, char** envp) {
  if (cmd.status->parsed()) return run_status(cmd);
  if (cmd.sign_out && cmd.sign_out->parsed()) return run_sign_out(cmd);
  if (cmd.trace->parsed()) {
    std::string why;
    auto answer = ask_daemon(socket_path(cmd), "trace " + cmd.trace_state, why);
    auto a = answer ? json::parse(*answer, nullptr, false) : json();
    if (!answer || a.is_discarded() || a.contains("error")) {
      std::cerr << "firebreak " << role_name(cmd.role) << " trace: "
                << (answer ? (a.is_object() && a.contains("error") ? a["error"].get<std::string>() : *answer) : why) << "\n";
      return 1;
    }
    std::cout << "actor trace " << a.value("trace", "?") << (a.value("trace", "") == "on" ? ": " + a.value("file", "") : "")
              << "\n";
    return 0;
  }
  const char* who = role_name(cmd.role);
  auto loaded = cmd.loader->load(config::environment_of(envp));
  if (auto* err = std::get_if<config::config_error>(&loaded)) {
    std::cerr << "firebreak " << who << ": " << config::describe(*err) << "\n";
    return 2;
  }
  auto conf = std::get<config::node_config>(std::move(loaded));
  // Signals are waited for on a thread of their own; block them before any other thread starts (the
  // trace's writer, spdlog's, CAF's), or one of those would take SIGTERM's default action.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  setup_logging(conf.log_level);
  trace::recorder::instance().configure(
      {.path = conf.trace_file, .role = who, .proc = std::string(who) + "@" + host_name() + ":" + std::to_string(::getpid())});
  // Flushed and closed however the process ends through main's return.
  struct trace_closer {
    ~trace_closer() { trace::recorder::instance().shutdown(); }
  } close_trace;
  if (conf.trace) {
    std::string trace_why;
    if (!trace::recorder::instance().set_enabled(true, trace_why)) {
      std::cerr << "firebreak " << who << ": trace: " << trace_why << "\n";
      return 2;
    }
  }
  auto log = component_logger(who);
  log->info("starting: {}", config::describe(conf));

  std::string why;
  auto key = device_key(conf.key_file, why);
  if (!key) {
    std::cerr << "firebreak " << who << ": " << why << "\n";
    return 2;
  }


  // Sealing runs on one TUN reader per queue, opening on one ICE loop per share of the connections.
  const unsigned data_threads =
      conf.data_threads != 0 ? conf.data_threads : std::clamp(std::thread::hardware_concurrency(), 1u, 8u);
  std::error_code ec;
  auto tun = std::make_shared<tun::tun_device>(tun::tun_device::open(conf.interface, ec, why, true, data_threads));
  if (ec) {
    std::cerr << "firebreak " << who << ": " << why << "\n";
    return 1;
  }
  {
    tun::link_config links;
    if (auto e = links.set_mtu_and_up(tun->ifindex(), tunnel_mtu); !e.empty()) {
      std::cerr << "firebreak " << who << ": " << conf.interface << ": " << e << "\n";
      return 1;
    }
  }
  std::optional<tun::forwarding> forwarding;
  if (cmd.role == config::node_role::gateway && conf.manage_forwarding) {
    forwarding = tun::forwarding::enable(conf.interface, {"100.64.0.0/10", "fd00:2021:1111::/48"}, why);
    if (!forwarding) {
      std::cerr << "firebreak gateway: cannot set up forwarding: " << why << "\n";
      return 1;
    }
    for (const auto& w : forwarding->warnings()) log->warn("forwarding: {}", w);
    log->info("forwarding on, clients masqueraded (nftables table {})", forwarding->table_name());
  }

  auto exit_code = std::make_shared<std::atomic<int>>(0);
  caf::actor_system_config cfg;
  // Packets arrive from threads outside CAF (the TUN reader, libnice's loop) all the time. A shared
  // queue wakes an idle worker at once; work stealing polls and sleeps in between, which measured
  // 10-40 % less throughput here (make bench).
  cfg.set("scheduler.policy", caf::atom("sharing"));
  messages::register_portal_messages(cfg);
  messages::register_connection_messages(cfg);
  {
    caf::actor_system sys{cfg};
    // Each connection's agent lives on one loop for its life (its packets open there, in order).
    std::vector<std::unique_ptr<ice::glib_loop>> loops;
    for (unsigned i = 0; i < data_threads; ++i) loops.push_back(std::make_unique<ice::glib_loop>());
    auto next_loop = std::make_shared<std::atomic<unsigned>>(0);
    connection::connection_settings base;
    base.log = component_logger("connection");
    base.wireguard.local_key = *key;
    base.wireguard.rng = std::make_shared<wireguard::system_random>();
    base.wireguard.log = component_logger("wireguard");
    auto* all_loops = &loops;
    auto ice_log = component_logger("ice");
    base.make_ice = [all_loops, next_loop, ice_log](caf::local_actor* parent, const caf::actor& conn,
                                                     const caf::actor& wg, const messages::connection_spec& spec) {
      auto* l = (*all_loops)[next_loop->fetch_add(1, std::memory_order_relaxed) % all_loops->size()].get();
      return parent->spawn<caf::linked>(connection::ice_actor, conn, wg, spec, connection::ice_settings{l, ice_log});
    };
    node::ice_options ice{conf.relay_only, conf.local_addresses};

    auto credit = std::make_shared<std::atomic<int>>(0);
    // Bulk packets seal on the TUN readers' threads and open on the ICE loops', past the actors.
    auto plane = std::make_shared<node::data_plane>(tun);
    caf::actor tunnel, authorization;
    if (cmd.role == config::node_role::client) {
      client::tunnel_settings ts{tun,  credit, base, ice, 64, std::chrono::milliseconds(2000), component_logger("tunnel"),
                                 conf.goodbye, plane};
      tunnel = sys.spawn(client::client_tunnel, ts);
    } else {
      gateway::tunnel_settings ts{tun, credit, base, ice, component_logger("tunnel"), conf.goodbye, plane};
      tunnel = sys.spawn(gateway::gateway_tunnel, ts);
      authorization = sys.spawn(gateway::authorization_actor,
                                gateway::authorization_settings{tunnel, {}, component_logger("authorization")});
    }
    node::supervisor_settings ss;
    ss.who = cmd.role == config::node_role::client ? node::role::client : node::role::gateway;
    ss.tunnel = tunnel;
    ss.authorization = authorization;
    ss.exit_code = exit_code;
    ss.log = log;
    // systemd (Type=notify): READY=1 once joined, STOPPING=1 at the goodbye, WATCHDOG=1 at half the
    // unit's WatchdogSec. Without NOTIFY_SOCKET (not under systemd) sd_notify does nothing.
    ss.notify = [](const std::string& state) { ::sd_notify(0, state.c_str()); };
    if (std::uint64_t usec = 0; ::sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
      ss.watchdog = std::chrono::milliseconds(std::max<std::uint64_t>(usec / 2000, 1));
    auto sup = sys.spawn(node::supervisor, ss);

    portal_link::link_settings ls;
    ls.host = conf.portal_host;
    ls.port = conf.portal_port;
    ls.ca_file = conf.portal_ca_file;
    ls.token = conf.token;
    ls.public_key = wireguard::to_base64(wireguard::x25519_public(*key));
    ls.topic = who;
    ls.owner = sup;
    ls.log = component_logger("portal_link");
    auto link = sys.spawn(portal_link::portal_link_actor, ls);
    caf::anon_send(sup, link);

    // The readers count batches in flight; the tunnel releases them through the same counter.
    // Every queue sees the interface go away: the first to notice tells the supervisor.
    std::vector<std::unique_ptr<tun::tun_reader>> readers;
    auto told = std::make_shared<std::atomic<bool>>(false);
    for (unsigned q = 0; q < tun->queues(); ++q)
      readers.push_back(std::make_unique<tun::tun_reader>(
          tun->queue_fd(q), credit,
          [tunnel](tun::tun_reader::batch&& b) { caf::anon_send(tunnel, messages::packet_batch{{}, std::move(b)}); },
          [sup, told](const std::string& what) {
            if (!told->exchange(true)) caf::anon_send(sup, messages::fatal_atom::value, what);
          },
          128, 32, tun->vnet_header(),
          [plane, q](tun::tun_reader::views packets, std::vector<std::size_t>& rest) {
            plane->outbound(packets, rest, q);
          }));
    log->info("data path: {} TUN queue{} sealing, {} ICE loop{} opening", tun->queues(), tun->queues() == 1 ? "" : "s",
              loops.size(), loops.size() == 1 ? "" : "s");

    auto status = status_server::start(
        conf.status_socket,
        [&sys, sup](const std::string& request) -> std::string {
          caf::scoped_actor asker{sys};
          std::string out = R"({"error":"the daemon did not answer in time"})";
          const auto asked = parse_status_request(request);
          if (asked == status_request::status) {
            if (auto s = ask_supervisor(sys, sup, messages::node_status_atom::value)) {
              auto j = json::parse(*s, nullptr, false);
              if (j.is_discarded()) return *s;
              const auto t = trace::recorder::instance().stats();
              j["trace"] = {{"on", t.on}, {"file", t.path}, {"recorded", t.recorded}, {"dropped", t.dropped}};
              if (!t.error.empty()) j["trace"]["error"] = t.error;
              out = j.dump();
            }
          } else if (asked == status_request::trace_on || asked == status_request::trace_off) {
            out = switch_trace(asked == status_request::trace_on);
          } else if (asked == status_request::sign_out) {
            asker->request(sup, std::chrono::seconds(3), messages::sign_out_atom::value)
                .receive([&](bool ok) { out = ok ? R"({"signing_out":true})" : R"({"error":"only a client signs out"})"; },
                         [&](const caf::error&) {});
          } else {
            out = json{{"error", std::string("unknown request (") + known_status_requests + ")"}}.dump();
          }
          return out;
        },
        why);
    if (!status) log->warn("no status socket: {}", why);
    else log->info("status: firebreak {} status --status-socket {}", who, conf.status_socket);

    // /healthz and /metrics. A port that cannot be had is fatal: the operator asked for it, and a
    // supervisor polling a health check that never answers would only say "unhealthy".
    std::optional<websocket::http_endpoint> health;
    if (conf.health_port != 0) {
      health.emplace(websocket::http_endpoint_config{conf.health_address, conf.health_port},
                     [&sys, sup](const std::string& path) {
                       return health_route(
                           path, {[&] { return ask_supervisor(sys, sup, messages::health_atom::value); },
                                  [&]() -> std::optional<std::string> {
                                    auto answer = ask_supervisor(sys, sup, messages::node_status_atom::value);
                                    if (!answer) return std::nullopt;
                                    return node_metrics_text(json::parse(*answer, nullptr, false));
                                  }});
                     });
      if (auto e = health->start()) {
        const std::string what = "cannot serve /healthz and /metrics: " + *e +
                                 "; choose another with --health-listen or FIREBREAK_HEALTH_LISTEN";
        std::cerr << "firebreak " << who << ": " << what << "\n";
        caf::anon_send(sup, messages::fatal_atom::value, what);
        health.reset();
      } else {
        log->info("health and metrics: http://{}/healthz and /metrics",
                  config::listen_text(conf.health_address, health->port()));
      }
    }

    // When SIGTERM/SIGINT came: the whole shutdown (goodbyes, leaving the portal, releasing relay
    // allocations) is bounded by 1 s from then, as the supervisor's flush bound promises.
    std::atomic<std::int64_t> stop_asked_ns{0};
    {
      signal_watch signals_thread(signals, sup, stop_asked_ns);
      caf::scoped_actor waiter{sys};
      waiter->monitor(sup);
      waiter->receive([](const caf::down_msg&) {});
    }
    for (auto& r : readers) r->stop();
    health.reset();
    status.reset();
    // The goodbyes went out when the connections were told to close; what may still run is ICE
    // releasing TURN allocations, a courtesy the relay does not need (its allocations expire). It
    // gets the rest of the flush bound, then the process ends regardless.
    const auto asked = stop_asked_ns.load();
    const auto deadline =
        asked != 0 ? std::max(std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(asked)) +
                                  std::chrono::seconds(1),
                              std::chrono::steady_clock::now() + std::chrono::milliseconds(50))
                   : std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (sys.registry().running() > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (sys.registry().running() > 0) {
      log->info("connections still releasing relay allocations at the 1 s bound: stopping anyway");
      forwarding.reset();  // the nftables table and the sysctls, before the process goes
      log->info("stopped");
      log->flush();
      trace::recorder::instance().shutdown();
      std::_Exit(exit_code->load());
    }
    sys.await_all_actors_done();
    for (auto& l : loops) l->stop();
  }
  log->info("stopped");
  return exit_code->load();
}

}  // namespace firebreak::apps
