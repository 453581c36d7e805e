#include "actors/node/peer_connections.hpp"

#include <chrono>


namespace firebreak::node {

using namespace messages;

namespace {

constexpr std::size_t max_early_candidates = 64;
constexpr std::size_t max_early_peers = 256;

std::vector<turn_relay> turn_relays_of(const std::vector<relay>& relays) {
  std::vector<turn_relay> out;
  for (const auto& r : relays) {
    const auto colon = r.addr.rfind(':');
    if (colon == std::string::npos || colon + 1 >= r.addr.size()) continue;
    std::string host = r.addr.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    int port = 0;
    for (char c : r.addr.substr(colon + 1)) {
      if (c < '0' || c > '9' || port > 65535) { port = 0; break; }
      port = port * 10 + (c - '0');
    }
    if (port <= 0 || port > 65535) continue;
    out.push_back({host, static_cast<std::uint16_t>(port), r.username, r.password});
  }
  return out;
}

std::string keys_of(const connection_spec& spec) {
  return spec.preshared_key + '\n' + spec.local_ice_ufrag + '\n' + spec.local_ice_password + '\n' +
         spec.remote_ice_ufrag + '\n' + spec.remote_ice_password;
}

}  // namespace

void peer_connections::init(caf::event_based_actor* self, connection::connection_settings base, ice_options options) {
  self_ = self;
  base_ = std::move(base);
  base_.owner = caf::actor_cast<caf::actor>(self);
  base_.wireguard.packet_sink = base_.owner;
  options_ = std::move(options);
  log_ = base_.log ? base_.log : spdlog::default_logger();
}

void peer_connections::set_relays(const std::vector<relay>& relays) { relays_ = turn_relays_of(relays); }

void peer_connections::update_relays(const relays_presence& presence) {
  auto fresh = turn_relays_of(presence.connected);
  // Replace the credentials of relays we know, add new ones, drop those gone.
  std::erase_if(relays_, [&](const turn_relay& r) {
    for (const auto& f : fresh)
      if (f.host == r.host && f.port == r.port) return true;
    return false;
  });
  for (auto& f : fresh) relays_.push_back(std::move(f));
  if (!presence.disconnected_ids.empty())
    log_->info("relays gone: {} (connections through them fail over by ICE)", presence.disconnected_ids.size());
}

caf::actor peer_connections::start(connection_spec spec) {
  spec.relay_only = options_.relay_only;
  spec.local_addresses = options_.local_addresses;
  spec.relays = relays_;
  // coturn answers STUN too: the relays double as STUN servers for server-reflexive candidates.
  for (const auto& r : relays_) spec.stun_servers.push_back(r.host + ":" + std::to_string(r.port));
  const auto peer = spec.peer_id;
  if (auto it = live_.find(peer); it != live_.end())
    self_->send(it->second.actor, close_connection{"replaced by a new flow", close_mode::silent});
  auto keys = keys_of(spec);
  std::shared_ptr<connection::fast_link> fast;
  if (sink_) {
    fast = std::make_shared<connection::fast_link>(peer);
    fast->sink = sink_;
    spec.fast = fast;
  }
  auto actor = self_->spawn(connection::connection_actor, std::move(spec), base_);
  live_[peer] = entry{actor, connection_state::connecting, std::move(keys), {}, std::move(fast)};
  if (auto early = early_.find(peer); early != early_.end()) {
    self_->send(actor, remote_candidates{std::move(early->second), false});
    early_.erase(early);
  }
  return actor;
}

std::shared_ptr<connection::fast_link> peer_connections::fast_link_of(const std::string& peer) const {
  auto it = live_.find(peer);
  if (it == live_.end()) return nullptr;
  const auto st = it->second.state;
  return st == connection_state::connected || st == connection_state::idle ? it->second.fast : nullptr;
}

caf::actor peer_connections::find(const std::string& peer) const {
  auto it = live_.find(peer);
  return it == live_.end() ? caf::actor{} : it->second.actor;
}

bool peer_connections::send(packet_batch&& batch) {
  auto it = live_.find(batch.peer_id);
  if (it == live_.end()) return false;
  self_->send(it->second.data_path ? it->second.data_path : it->second.actor, std::move(batch));
  return true;
}

bool peer_connections::joins_existing(const connection_spec& spec) const {
  auto it = live_.find(spec.peer_id);
  if (it == live_.end()) return false;
  const auto s = it->second.state;
  return s != connection_state::closed && s != connection_state::failed && it->second.keys == keys_of(spec);
}

void peer_connections::candidates(const std::string& peer, const std::vector<std::string>& candidates,
                                  bool invalidated) {
  if (auto it = live_.find(peer); it != live_.end()) {
    self_->send(it->second.actor, remote_candidates{candidates, invalidated});
    return;
  }
  if (invalidated) return;
  if (early_.size() >= max_early_peers && !early_.count(peer)) {
    log_->warn("[peer {}] candidates for an unknown peer: dropped ({} peers already held)", peer, early_.size());
    return;
  }
  auto& held = early_[peer];
  for (const auto& c : candidates)
    if (held.size() < max_early_candidates) held.push_back(c);
}

bool peer_connections::on_event(const connection_event& e, const caf::actor_addr& sender) {
  auto it = live_.find(e.peer_id);
  if (it == live_.end() || it->second.actor.address() != sender) return false;
  it->second.state = e.state;
  it->second.data_path = e.data_path;
  if (e.state != connection_state::closed && e.state != connection_state::failed) return false;
  live_.erase(it);
  return true;
}

std::optional<connection_state> peer_connections::state_of(const std::string& peer) const {
  auto it = live_.find(peer);
  if (it == live_.end()) return std::nullopt;
  return it->second.state;
}

void peer_connections::close(const std::string& peer, const std::string& reason, close_mode mode) {
  auto it = live_.find(peer);
  if (it == live_.end()) return;
  self_->send(it->second.actor, close_connection{reason, mode});
  live_.erase(it);
}

void peer_connections::close_all(const std::string& reason, close_mode mode) {
  for (const auto& [peer, e] : live_) self_->send(e.actor, close_connection{reason, mode});
  live_.clear();
  early_.clear();
}

std::vector<std::string> peer_connections::peers() const {
  std::vector<std::string> out;
  for (const auto& [peer, e] : live_) out.push_back(peer);
  return out;
}

void peer_connections::status(std::function<void(nlohmann::json)> done) {
  struct pending {
    std::size_t left;
    nlohmann::json rows = nlohmann::json::array();
    std::function<void(nlohmann::json)> done;
  };
  auto p = std::make_shared<pending>(pending{live_.size(), nlohmann::json::array(), std::move(done)});
  if (p->left == 0) {
    p->done(p->rows);
    return;
  }
  for (const auto& [peer, e] : live_) {
    connection_status fallback{peer, e.state, false, {}, 0, 0, 0, 0};
    self_->request(e.actor, std::chrono::seconds(1), status_atom::value)
        .then([p](const connection_status& s) {
                p->rows.push_back(to_json(s));
                if (--p->left == 0) p->done(p->rows);
              },
              [p, fallback](const caf::error&) {
                p->rows.push_back(to_json(fallback));
                if (--p->left == 0) p->done(p->rows);
              });
  }
}

nlohmann::json to_json(const connection_status& s) {
  return {{"peer", s.peer_id},
          {"state", to_string(s.state)},
          {"path", s.path.empty() ? "" : (s.relayed ? "relayed" : "direct")},
          {"route", s.path},
          {"last_handshake_unix_ms", s.last_handshake_unix_ms},
          {"tx_bytes", s.tx_bytes},
          {"rx_bytes", s.rx_bytes},
          {"dropped", s.dropped}};
}

}  // namespace firebreak::node
