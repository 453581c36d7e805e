#include "apps/tunnel_command.hpp"

#include <filesystem>
#include <iostream>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "apps/logging.hpp"
#include "config/wg_quick.hpp"
#include "transport/tun/link_config_linux.hpp"
#include "transport/tunnel/tunnel_loop.hpp"
#include "transport/wireguard/device.hpp"

namespace firebreak::apps {

std::shared_ptr<tunnel_options> add_tunnel_command(CLI::App& app) {
  auto options = std::make_shared<tunnel_options>();
  auto* cmd = app.add_subcommand(
      "tunnel",
      "Bring up a WireGuard-compatible interface from a wg-quick style file and run it until SIGTERM/SIGINT.\n"
      "The file has [Interface] PrivateKey, ListenPort, Address, MTU and one [Peer] section per peer with\n"
      "PublicKey, PresharedKey, Endpoint, AllowedIPs, PersistentKeepalive. Routes follow AllowedIPs.\n"
      "SIGUSR1 logs every peer's endpoint, latest handshake, bytes and drop counters.");
  cmd->add_option("-c,--config", options->config_file, "the wg-quick style configuration file")->required();
  cmd->add_option("-i,--interface", options->interface,
                  "the TUN interface to create (default: the config file's name without its extension)");
  cmd->add_option("--log-level", options->log_level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  return options;
}

namespace {

wireguard::ip_prefix to_prefix(const config::cidr& c) {
  auto masked = c.masked();
  wireguard::ip_prefix p;
  p.v6 = masked.v6;
  p.addr = masked.addr;
  p.bits = masked.prefix;
  return p;
}

}  // namespace

int run_tunnel(const tunnel_options& options) {
  setup_logging(options.log_level);
  auto log = component_logger("tunnel");
  auto loaded = config::load_wg_quick_file(options.config_file);
  for (const auto& w : loaded.warnings) log->warn("{}", w.to_string());
  if (!loaded) {
    std::cerr << "firebreak tunnel: " << loaded.error->to_string() << "\n";
    return 2;
  }
  const auto& cfg = *loaded.config;
  std::string name = options.interface.empty() ? std::filesystem::path(options.config_file).stem().string()
                                                : options.interface;

  std::error_code ec;
  std::string why;
  auto tun = tun::tun_device::open(name, ec, why, true);
  if (ec) {
    std::cerr << "firebreak tunnel: " << why << "\n";
    return 1;
  }
  auto socket = udp::udp_socket::bind(cfg.listen_port, why);
  if (!why.empty()) {
    std::cerr << "firebreak tunnel: " << why << "\n";
    return 1;
  }

  tun::link_config links;
  for (const auto& address : cfg.addresses) {
    if (auto err = links.add_address(tun.ifindex(), address.to_string()); !err.empty()) {
      std::cerr << "firebreak tunnel: " << name << ": " << err << "\n";
      return 1;
    }
  }
  if (auto err = links.set_mtu_and_up(tun.ifindex(), cfg.mtu); !err.empty()) {
    std::cerr << "firebreak tunnel: " << name << ": " << err << "\n";
    return 1;
  }

  wireguard::system_random rng;
  wireguard::device_config dcfg;
  dcfg.local_private_key = cfg.private_key;
  dcfg.mtu = cfg.mtu;
  wireguard::device engine(dcfg, rng, component_logger("wireguard"));
  const auto now = tunnel::clock_now();
  for (const auto& p : cfg.peers) {
    wireguard::peer_config pc;
    pc.remote_static = p.public_key;
    if (p.preshared_key) pc.preshared_key = *p.preshared_key;
    pc.remote_endpoint = p.endpoint;
    pc.persistent_keepalive = p.persistent_keepalive;
    std::vector<wireguard::ip_prefix> allowed;
    for (const auto& c : p.allowed_ips) {
      allowed.push_back(to_prefix(c));
      if (c.prefix == 0) {
        // A default route through the tunnel would also capture the tunnel's own UDP packets;
        // that needs policy routing (wg-quick's fwmark table), which this command does not do.
        log->warn("not installing a default route for {}; traffic for it is still accepted from the peer",
                  c.to_string());
        continue;
      }
      if (auto err = links.add_route(tun.ifindex(), c.masked().to_string()); !err.empty()) {
        std::cerr << "firebreak tunnel: " << name << ": " << err << "\n";
        return 1;
      }
    }
    auto id = engine.add_peer(pc, allowed, now);
    log->info("peer {}: {} via {}", id, wireguard::to_base64(p.public_key),
              p.endpoint ? p.endpoint->to_string() : "(waits to be contacted)");
  }

  tunnel::tunnel_loop loop(std::move(tun), std::move(socket), engine, log);
  loop.run();
  log->info("stopped");
  return 0;
}

}  // namespace firebreak::apps
