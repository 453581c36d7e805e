#include "transport/wireguard/device.hpp"

#include <algorithm>

#include "transport/wireguard/limits.hpp"

namespace firebreak::wireguard {

device::device(device_config cfg, random_source& rng, std::shared_ptr<spdlog::logger> log)
    : cfg_(std::move(cfg)),
      rng_(rng),
      log_(std::move(log)),
      local_(noise::keypair_25519::from_private(cfg_.local_private_key)),
      cookies_(local_.pub),
      limiter_(handshakes_per_second_per_source, handshake_burst_per_source),
      indices_(rng) {}

device::~device() {
  auto ctx = context();
  for (auto& p : peers_)
    if (p) p->wipe(ctx);
}

peer_context device::context() {
  return peer_context{local_, rng_, cfg_.mtu, transmits_, drops_, indices_, *log_};
}

peer* device::get(peer_id id) const {
  if (id == 0 || id > peers_.size()) return nullptr;
  return peers_[id - 1].get();
}

peer_id device::add_peer(const peer_config& cfg, std::span<const ip_prefix> allowed, instant now) {
  auto ctx = context();
  peer_id id = 0;
  if (auto existing = find_peer(cfg.remote_static)) {
    id = *existing;
    routes_.remove(id);
    get(id)->update_config(ctx, cfg, now);
  } else {
      // Created without its keepalive so update_config sees it start (and sends the first one).
    peers_.push_back(std::make_unique<peer>(static_cast<peer_id>(peers_.size() + 1),
                                            peer_config{cfg.remote_static, cfg.preshared_key, cfg.remote_endpoint, {}}));
    id = static_cast<peer_id>(peers_.size());
    get(id)->update_config(ctx, cfg, now);
  }
  for (const auto& prefix : allowed) routes_.insert(prefix, id);
  return id;
}

void device::remove_peer(peer_id id) {
  if (auto* p = get(id)) {
    auto ctx = context();
    p->wipe(ctx);
    routes_.remove(id);
    std::erase_if(transmits_, [&](const transmit& t) { return t.peer == id; });
    peers_[id - 1].reset();
  }
}

void device::initiate_handshake(peer_id id, instant now) {
  auto* p = get(id);
  if (p == nullptr || p->status().has_session) return;
  auto ctx = context();
  p->initiate(ctx, now, false);
}

std::optional<peer_id> device::find_peer(const public_key& remote) const {
  for (const auto& p : peers_)
    if (p && equal(p->remote_static(), remote)) return p->id();
  return std::nullopt;
}

std::vector<peer_id> device::peers() const {
  std::vector<peer_id> ids;
  for (const auto& p : peers_)
    if (p) ids.push_back(p->id());
  return ids;
}

std::optional<peer_status> device::status(peer_id id) const {
  if (auto* p = get(id)) return p->status();
  return std::nullopt;
}

outcome device::drop(drop_reason why, instant now, peer_id peer) {
  const auto i = static_cast<std::size_t>(why);
  ++drops_[i];
  // One line per reason per interval, saying how many went by since the last line.
  if (drops_logged_[i] == 0 || now.mono - last_drop_log_[i] >= drop_log_interval) {
    log_->info("dropped {} datagram(s) or packet(s): {}", drops_[i] - drops_logged_[i], to_string(why));
    drops_logged_[i] = drops_[i];
    last_drop_log_[i] = now.mono;
  }
  return outcome{verdict::dropped, {}, {}, peer, why};
}

// ---- from the tunnel -----------------------------------------------------------------------------------

outcome device::encapsulate(bytes_view ip_packet, instant now, bytes_out out) {
  bool v6 = false;
  const std::uint8_t* dst = nullptr;
  if (!ip_packet_address(ip_packet, false, v6, dst)) return drop(drop_reason::bad_inner_packet, now);
  auto id = routes_.lookup(v6, dst);
  if (!id) return drop(drop_reason::no_route, now);
  peer* p = get(*id);
  auto ctx = context();
  drop_reason why = drop_reason::count;
  const std::size_t n = p->seal(ctx, ip_packet, now, out, why);
  if (n > 0) return outcome{verdict::to_network, out.first(n), *p->current_endpoint(), *id, drop_reason::count};
  if (why == drop_reason::count) return outcome{verdict::staged, {}, {}, *id, why};
  return drop(why, now, *id);
}

// ---- from the network ----------------------------------------------------------------------------------

outcome device::decapsulate(bytes_view bytes, const endpoint& from, instant now, bytes_out out) {
  auto parsed = parse_datagram(bytes);
  return std::visit(
      [&](const auto& msg) -> outcome {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, parse_error>) {
          switch (msg) {
            case parse_error::too_short: return drop(drop_reason::too_short, now);
            case parse_error::oversized: return drop(drop_reason::oversized, now);
            case parse_error::unknown_type: return drop(drop_reason::unknown_type, now);
            case parse_error::bad_size: return drop(drop_reason::bad_size, now);
          }
          return drop(drop_reason::unknown_type, now);
        } else if constexpr (std::is_same_v<T, handshake_initiation>) {
          return on_initiation(msg, from, now);
        } else if constexpr (std::is_same_v<T, handshake_response>) {
          return on_response(msg, from, now);
        } else if constexpr (std::is_same_v<T, cookie_reply>) {
          return on_cookie_reply(msg, now);
        } else {
          return on_transport_data(msg, from, now, out);
        }
      },
      parsed);
}

bool device::under_load(mono_time now) const {
  if (forced_under_load_) return *forced_under_load_;
  return under_load_until_ && now < *under_load_until_;
}

bool device::admit_handshake(const handshake_view& msg, const endpoint& from, instant now, outcome& result) {
  // Cheapest check first: mac1 needs only our public key, no DH.
  if (!cookies_.mac1_valid(msg)) {
    result = drop(drop_reason::bad_mac1, now);
    return false;
  }
  if (now.mono - load_window_start_ >= 1s) {
    load_window_start_ = now.mono;
    handshakes_in_window_ = 0;
  }
  if (++handshakes_in_window_ > under_load_handshakes_per_second) under_load_until_ = now.mono + under_load_hold;
  if (!under_load(now.mono)) return true;
  if (!cookies_.mac2_valid(msg, from, now.mono, rng_)) {
    auto reply = cookies_.make_reply(msg, from, now.mono, rng_);
    transmits_.push_back(transmit{0, from, {reply.begin(), reply.end()}});
    result = drop(drop_reason::cookie_required, now);
    return false;
  }
  if (!limiter_.allow(from, now.mono)) {
    result = drop(drop_reason::rate_limited, now);
    return false;
  }
  return true;
}

outcome device::on_initiation(const handshake_initiation& msg, const endpoint& from, instant now) {
  outcome result;
  if (!admit_handshake(msg, from, now, result)) return result;
  auto consumed = read_initiation(local_, msg);
  if (!consumed) return drop(drop_reason::handshake_failed, now);
  auto id = find_peer(consumed->hs.remote_static());
  if (!id) return drop(drop_reason::unknown_peer, now);
  peer* p = get(*id);
  // An initiation must carry a timestamp newer than any before it (a replayed one would otherwise
  // make us drop the live session), and may come at most 50 times a second.
  auto ctx = context();
  if (!p->accepts_timestamp(consumed->ts)) return drop(drop_reason::stale_timestamp, now, *id);
  if (p->initiation_too_soon(now)) return drop(drop_reason::handshake_flood, now, *id);
  p->on_initiation(ctx, *consumed, msg.sender(), from, now);
  return outcome{verdict::nothing, {}, {}, *id, drop_reason::count};
}

outcome device::on_response(const handshake_response& msg, const endpoint& from, instant now) {
  outcome result;
  if (!admit_handshake(msg, from, now, result)) return result;
  auto id = indices_.lookup(msg.receiver());
  peer* p = id ? get(*id) : nullptr;
  if (!p || !p->has_handshake_index(msg.receiver())) return drop(drop_reason::unexpected_response, now);
  auto ctx = context();
  if (auto why = p->on_response(ctx, msg, from, now)) return drop(*why, now, *id);
  return outcome{verdict::nothing, {}, {}, *id, drop_reason::count};
}

outcome device::on_cookie_reply(const cookie_reply& msg, instant now) {
  auto id = indices_.lookup(msg.receiver());
  peer* p = id ? get(*id) : nullptr;
  if (!p) return drop(drop_reason::unknown_receiver, now);
  drop_reason why{};
  bool ok = false;
  p->on_cookie_reply(msg, now, why, ok);
  if (!ok) return drop(why, now, *id);
  log_->debug("[peer {}] cookie reply accepted: the peer is under load", *id);
  return outcome{verdict::nothing, {}, {}, *id, drop_reason::count};
}

outcome device::on_transport_data(const transport_data& msg, const endpoint& from, instant now, bytes_out out) {
  auto id = indices_.lookup(msg.receiver());
  peer* p = id ? get(*id) : nullptr;
  if (!p) return drop(drop_reason::unknown_receiver, now);
  auto ctx = context();
  drop_reason why = drop_reason::count;
  auto packet = p->open(ctx, msg, from, now, out, why);
  if (!packet) return drop(why, now, *id);
  if (packet->empty()) return outcome{verdict::nothing, {}, {}, *id, drop_reason::count};
  // Cryptokey routing, inbound: the packet's source must be an address this peer is allowed to use.
  bool v6 = false;
  const std::uint8_t* src = nullptr;
  if (!ip_packet_address(*packet, true, v6, src)) return drop(drop_reason::bad_inner_packet, now, *id);
  if (routes_.lookup(v6, src) != id) return drop(drop_reason::source_not_allowed, now, *id);
  return outcome{verdict::to_tunnel, *packet, {}, *id, drop_reason::count};
}

// ---- time ----------------------------------------------------------------------------------------------

void device::handle_timeout(instant now) {
  auto ctx = context();
  for (auto& p : peers_)
    if (p) p->handle_timeout(ctx, now);
}

std::optional<deadline> device::poll_timeout() const {
  std::optional<deadline> best;
  for (const auto& p : peers_) {
    if (!p) continue;
    auto d = p->next_deadline();
    if (d && (!best || d->at < best->at)) best = d;
  }
  return best;
}

std::optional<transmit> device::poll_transmit() {
  if (transmits_.empty()) return std::nullopt;
  transmit t = std::move(transmits_.front());
  transmits_.pop_front();
  return t;
}

}  // namespace firebreak::wireguard
