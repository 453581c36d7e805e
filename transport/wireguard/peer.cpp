#include "transport/wireguard/peer.hpp"

#include <algorithm>
#include <cstring>

#include "transport/wireguard/allowed_ips.hpp"
#include "transport/wireguard/limits.hpp"

namespace firebreak::wireguard {
namespace {

std::chrono::nanoseconds jitter(random_source& rng) {
  return std::chrono::milliseconds(rng.u32() % (rekey_timeout_jitter_max.count() + 1));
}

noise::keypair_25519 fresh_ephemeral(random_source& rng) {
  private_key priv;
  rng.fill(priv.bytes);
  return noise::keypair_25519::from_private(priv);
}

std::size_t padded_size(std::size_t len, unsigned mtu) {
  const std::size_t rounded = (len + 15) & ~std::size_t{15};
  if (mtu == 0) return rounded;
  if (len >= mtu) return len;
  return std::min<std::size_t>(rounded, mtu);
}

}  // namespace

peer::peer(peer_id id, peer_config cfg)
    : id_(id), cfg_(std::move(cfg)), cookies_(cfg_.remote_static), endpoint_(cfg_.remote_endpoint) {}

void peer::update_config(peer_context& ctx, peer_config cfg, instant now) {
  const bool keepalive_started = cfg.persistent_keepalive.count() > 0 && cfg_.persistent_keepalive.count() == 0;
  if (cfg.remote_endpoint) endpoint_ = cfg.remote_endpoint;
  cfg_ = std::move(cfg);
  if (cfg_.persistent_keepalive.count() == 0) timers_.disarm(timer::persistent_keepalive);
  // wireguard-go sends a keepalive as soon as a persistent keepalive is configured; with no session
  // that keepalive is what brings the session up.
  if (keepalive_started && endpoint_) send_keepalive(ctx, now);
}

// ---- timer hooks -------------------------------------------------------------------------------------

void peer::data_sent(peer_context& ctx, instant now) {
  // Jittered, so two peers that both stopped hearing each other do not start crossing handshakes at once.
  if (!timers_.armed(timer::new_handshake))
    timers_.arm(timer::new_handshake, now.mono + keepalive_timeout + rekey_timeout + jitter(ctx.rng));
}

void peer::data_received(instant now) {
  if (timers_.armed(timer::send_keepalive))
    need_another_keepalive_ = true;
  else
    timers_.arm(timer::send_keepalive, now.mono + keepalive_timeout);
}

void peer::any_authenticated_sent(instant) { timers_.disarm(timer::send_keepalive); }

void peer::any_authenticated_received(instant) {
  timers_.disarm(timer::new_handshake);
  unanswered_ = 0;
  gave_up_ = false;
}

void peer::authenticated_traversal(instant now) {
  if (cfg_.persistent_keepalive.count() > 0)
    timers_.arm(timer::persistent_keepalive, now.mono + cfg_.persistent_keepalive);
}

void peer::handshake_initiated(peer_context& ctx, instant now) {
  timers_.arm(timer::retransmit_handshake, now.mono + rekey_timeout + jitter(ctx.rng));
}

void peer::handshake_complete(instant now) {
  timers_.disarm(timer::retransmit_handshake);
  attempts_started_.reset();
  sent_last_minute_handshake_ = false;
  last_handshake_wall_ = now.wall;
  ++handshakes_;
}

void peer::session_derived(instant now) { timers_.arm(timer::zero_key_material, now.mono + wipe_after_time); }

// ---- handshakes --------------------------------------------------------------------------------------

void peer::initiate(peer_context& ctx, instant now, bool retry) {
  if (!retry && last_initiation_sent_ && now.mono - *last_initiation_sent_ < rekey_timeout) return;
  if (!endpoint_) {
    ++ctx.drops[static_cast<std::size_t>(drop_reason::no_endpoint)];
    return;
  }
  if (handshake_) ctx.indices.release(handshake_->local_index);
  handshake_.reset();
  const std::uint32_t index = ctx.indices.allocate(id_);
  auto hs = begin_initiator(ctx.local, cfg_.remote_static, cfg_.preshared_key);
  auto msg = write_initiation(hs, fresh_ephemeral(ctx.rng), index, tai64n(now.wall));
  if (!msg) {
    // Only a low-order remote static key makes DH fail; nothing to retry.
    ctx.indices.release(index);
    ++ctx.drops[static_cast<std::size_t>(drop_reason::handshake_failed)];
    ctx.log.warn("[peer {}] cannot start a handshake: the peer's public key is a low-order point", id_);
    return;
  }
  handshake_.emplace(pending_handshake{std::move(hs), index});
  cookies_.add_macs(*msg, now.mono);
  last_initiation_sent_ = now.mono;
  if (!attempts_started_) attempts_started_ = now.mono;
  ctx.log.debug("[peer {}] handshake initiation sent to {}{}", id_, endpoint_->to_string(), retry ? " (retry)" : "");
  queue(ctx, {msg->begin(), msg->end()});
  handshake_initiated(ctx, now);
  any_authenticated_sent(now);
  authenticated_traversal(now);
}

void peer::on_initiation(peer_context& ctx, consumed_initiation& in, std::uint32_t their_index,
                         const endpoint& from, instant now) {
  // Fresh keys for the responder become `next`: usable for sending only once the initiator proves it
  // has them by sending data with them.
  in.hs.set_psk(cfg_.preshared_key);
  greatest_timestamp_ = in.ts;
  last_initiation_consumed_ = now.mono;
  const std::uint32_t index = ctx.indices.allocate(id_);
  auto msg = write_response(in.hs, fresh_ephemeral(ctx.rng), index, their_index);
  if (!msg) {
    ctx.indices.release(index);
    ++ctx.drops[static_cast<std::size_t>(drop_reason::handshake_failed)];
    return;
  }
  cookies_.add_macs(*msg, now.mono);
  endpoint_ = from;
  auto [i2r, r2i] = in.hs.split();
  install_keypair(ctx, std::make_unique<keypair>(r2i, i2r, index, their_index, now.mono, false), false, now);
  ctx.log.debug("[peer {}] handshake initiation from {} answered", id_, from.to_string());
  queue(ctx, {msg->begin(), msg->end()});
  any_authenticated_received(now);
  any_authenticated_sent(now);
  authenticated_traversal(now);
}

bool peer::accepts_timestamp(const timestamp& ts) const {
  return std::memcmp(ts.data(), greatest_timestamp_.data(), ts.size()) > 0;
}

bool peer::initiation_too_soon(instant now) const {
  return last_initiation_consumed_ && now.mono - *last_initiation_consumed_ < handshake_initiation_rate;
}

std::optional<drop_reason> peer::on_response(peer_context& ctx, const handshake_response& msg,
                                             const endpoint& from, instant now) {
  if (!handshake_ || handshake_->local_index != msg.receiver()) return drop_reason::unexpected_response;
  // Work on a copy: a forged response (the index is public, mac1 needs only our public key) must not
  // spoil the handshake the genuine response will complete.
  auto hs = handshake_->hs;
  if (!read_response(hs, msg)) return drop_reason::handshake_failed;
  auto [i2r, r2i] = hs.split();
  const std::uint32_t index = handshake_->local_index;
  handshake_.reset();  // the index now belongs to the keypair
  endpoint_ = from;
  install_keypair(ctx, std::make_unique<keypair>(i2r, r2i, index, msg.sender(), now.mono, true), true, now);
  handshake_complete(now);
  ctx.log.info("[peer {}] handshake complete with {} (we initiated)", id_, from.to_string());
  any_authenticated_received(now);
  authenticated_traversal(now);
  // The responder may not send until it hears from us under the new keys: give it that, with data if
  // any waited for the session, or with a keepalive.
  if (!staged_.empty())
    flush_staged(ctx, now);
  else
    send_keepalive(ctx, now);
  return std::nullopt;
}

void peer::on_cookie_reply(const cookie_reply& msg, instant now, drop_reason& why, bool& ok) {
  ok = cookies_.consume_reply(msg, now.mono);
  if (!ok) why = drop_reason::bad_cookie;
}

void peer::install_keypair(peer_context& ctx, std::unique_ptr<keypair> kp, bool as_initiator, instant now) {
  auto release = [&](std::unique_ptr<keypair>& slot) {
    if (slot) ctx.indices.release(slot->local_index);
    slot.reset();
  };
  if (as_initiator) {
    // The initiator uses new keys at once. When handshakes crossed, the keys we offered as responder
    // (`next`) may be what the other side now sends with: keep them as `previous`, as wireguard-go does.
    release(previous_);
    if (next_) {
      release(current_);
      previous_ = std::move(next_);
    } else {
      previous_ = std::move(current_);
    }
    current_ = std::move(kp);
  } else {
    release(next_);
    release(previous_);
    next_ = std::move(kp);
  }
  session_derived(now);
}

keypair* peer::keypair_for(std::uint32_t index) {
  for (auto* kp : {current_.get(), previous_.get(), next_.get()})
    if (kp && kp->local_index == index) return kp;
  return nullptr;
}

bool peer::owns_index(std::uint32_t index) const {
  if (handshake_ && handshake_->local_index == index) return true;
  for (auto* kp : {current_.get(), previous_.get(), next_.get()})
    if (kp && kp->local_index == index) return true;
  return false;
}

void peer::wipe(peer_context& ctx) {
  for (auto* slot : {&previous_, &current_, &next_}) {
    if (*slot) ctx.indices.release((*slot)->local_index);
    slot->reset();  // aead_context frees its key schedule with EVP_CIPHER_CTX_free, which cleanses
  }
  if (handshake_) ctx.indices.release(handshake_->local_index);
  handshake_.reset();
  staged_.clear();
}

// ---- data ---------------------------------------------------------------------------------------------

std::size_t peer::seal_with(peer_context& ctx, keypair& kp, bytes_view packet, bytes_out out) {
  const std::size_t padded = padded_size(packet.size(), ctx.mtu);
  const std::size_t total = transport_header_size + padded + tag_size;
  if (out.size() < total) return 0;
  const std::uint64_t counter = kp.next_counter++;
  std::uint8_t* p = out.data();
  store_le32(p, static_cast<std::uint32_t>(message_type::transport_data));
  store_le32(p + 4, kp.remote_index);
  store_le64(p + 8, counter);
  // Pad in place in the output buffer, then seal it onto itself (the AEAD works in place).
  std::uint8_t* body = p + transport_header_size;
  if (!packet.empty()) std::memmove(body, packet.data(), packet.size());
  std::memset(body + packet.size(), 0, padded - packet.size());
  if (!kp.sealer.seal(counter, {body, padded}, {body, padded + tag_size})) return 0;
  return total;
}

std::size_t peer::seal(peer_context& ctx, bytes_view packet, instant now, bytes_out out, drop_reason& why) {
  if (!endpoint_) {
    why = drop_reason::no_endpoint;
    return 0;
  }
  if (!current_ || !current_->can_send(now.mono)) {
    stage(ctx, packet, now);
    why = drop_reason::count;  // staged, not dropped (unless stage() counted staging_full)
    initiate(ctx, now, false);
    return 0;
  }
  const std::size_t n = seal_with(ctx, *current_, packet, out);
  if (n == 0) {
    why = drop_reason::too_large;
    return 0;
  }
  tx_bytes_ += n;
  if (!packet.empty()) data_sent(ctx, now);
  any_authenticated_sent(now);
  authenticated_traversal(now);
  // Keep the key fresh: either side renews keys that sealed too many messages; the initiator of a
  // session also renews it before it gets old.
  if (current_->next_counter >= rekey_after_messages ||
      (current_->initiator && now.mono - current_->created >= rekey_after_time))
    initiate(ctx, now, false);
  return n;
}

void peer::stage(peer_context& ctx, bytes_view packet, instant) {
  if (staged_.size() >= max_staged_packets) {
    staged_.pop_front();  // the oldest is the least useful to a retransmitting sender
    ++ctx.drops[static_cast<std::size_t>(drop_reason::staging_full)];
  }
  staged_.emplace_back(packet.begin(), packet.end());
}

void peer::queue(peer_context& ctx, std::vector<std::uint8_t> bytes) {
  if (!endpoint_) return;
  ctx.transmits.push_back(transmit{id_, *endpoint_, std::move(bytes)});
}

void peer::flush_staged(peer_context& ctx, instant now) {
  std::vector<std::uint8_t> buf;
  while (!staged_.empty() && current_ && current_->can_send(now.mono)) {
    auto& packet = staged_.front();
    buf.resize(packet.size() + transport_overhead + 16);
    drop_reason why{};
    const std::size_t n = seal(ctx, packet, now, buf, why);
    staged_.pop_front();
    if (n > 0) queue(ctx, {buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n)});
  }
}

void peer::send_keepalive(peer_context& ctx, instant now) {
  if (!current_ || !current_->can_send(now.mono)) {
    // Like wireguard-go: a keepalive without a session is staged, so the handshake it starts carries it.
    if (staged_.empty()) stage(ctx, {}, now);
    initiate(ctx, now, false);
    return;
  }
  std::array<std::uint8_t, transport_overhead> buf{};
  drop_reason why{};
  const std::size_t n = seal(ctx, {}, now, buf, why);
  if (n > 0) queue(ctx, {buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n)});
}

std::optional<bytes_out> peer::open(peer_context& ctx, const transport_data& msg, const endpoint& from, instant now,
                                    bytes_out out, drop_reason& why) {
  keypair* kp = keypair_for(msg.receiver());
  if (!kp) {
    why = drop_reason::unknown_receiver;
    return std::nullopt;
  }
  if (!kp->can_receive(now.mono)) {
    why = drop_reason::keypair_expired;
    return std::nullopt;
  }
  const std::uint64_t counter = msg.counter();
  if (!kp->replay.would_accept(counter)) {
    why = drop_reason::replayed;
    return std::nullopt;
  }
  const auto sealed = msg.encrypted();
  const std::size_t plain = sealed.size() - tag_size;
  if (out.size() < plain) {
    why = drop_reason::too_large;
    return std::nullopt;
  }
  if (!kp->opener.open(counter, sealed, out)) {
    why = drop_reason::decrypt_failed;
    return std::nullopt;
  }
  if (!kp->replay.accept(counter)) {
    why = drop_reason::replayed;
    return std::nullopt;
  }
  rx_bytes_ += msg.bytes.size();
  endpoint_ = from;  // roam to wherever authenticated packets come from

  if (kp == next_.get()) {
    // The initiator used the keys we offered: they become current.
    if (previous_) ctx.indices.release(previous_->local_index);
    previous_ = std::move(current_);
    current_ = std::move(next_);
    handshake_complete(now);
    ctx.log.info("[peer {}] handshake complete with {} (they initiated)", id_, from.to_string());
    flush_staged(ctx, now);
  }
  any_authenticated_received(now);
  authenticated_traversal(now);
  // Keep the key fresh from the receiving side: an initiator whose session nears REJECT_AFTER_TIME
  // starts one last handshake rather than let the session die under traffic.
  if (kp == current_.get() && kp->initiator && !sent_last_minute_handshake_ &&
      now.mono - kp->created >= reject_after_time - keepalive_timeout - rekey_timeout) {
    sent_last_minute_handshake_ = true;
    initiate(ctx, now, false);
  }
  if (plain == 0) return out.first(0);  // keepalive

  auto len = ip_packet_length(out.first(plain));
  if (!len) {
    why = drop_reason::bad_inner_packet;
    return std::nullopt;
  }
  data_received(now);
  return out.first(*len);
}

// ---- timers -------------------------------------------------------------------------------------------

void peer::handle_timeout(peer_context& ctx, instant now) {
  if (timers_.take_due(timer::retransmit_handshake, now.mono)) {
    if (attempts_started_ && now.mono - *attempts_started_ >= rekey_attempt_time) {
      ctx.log.info("[peer {}] handshake did not complete after {} s of attempts; giving up",
                   id_, std::chrono::duration_cast<std::chrono::seconds>(rekey_attempt_time).count());
      staged_.clear();
      gave_up_ = true;
      if (handshake_) ctx.indices.release(handshake_->local_index);
      handshake_.reset();
      attempts_started_.reset();
      timers_.disarm(timer::send_keepalive);
      timers_.arm_if_idle(timer::zero_key_material, now.mono + wipe_after_time);
    } else {
      initiate(ctx, now, true);
    }
  }
  if (timers_.take_due(timer::send_keepalive, now.mono)) {
    send_keepalive(ctx, now);
    if (need_another_keepalive_) {
      need_another_keepalive_ = false;
      timers_.arm(timer::send_keepalive, now.mono + keepalive_timeout);
    }
  }
  if (timers_.take_due(timer::new_handshake, now.mono)) {
    ++unanswered_;
    ctx.log.debug("[peer {}] no reply {} s after sending data; new handshake", id_,
                  std::chrono::duration_cast<std::chrono::seconds>(keepalive_timeout + rekey_timeout).count());
    initiate(ctx, now, false);
  }
  if (timers_.take_due(timer::zero_key_material, now.mono)) {
    ctx.log.debug("[peer {}] no new session for {} s: keys wiped", id_,
                  std::chrono::duration_cast<std::chrono::seconds>(wipe_after_time).count());
    wipe(ctx);
  }
  if (timers_.take_due(timer::persistent_keepalive, now.mono)) send_keepalive(ctx, now);
}

peer_status peer::status() const {
  peer_status s;
  s.remote_endpoint = endpoint_;
  s.last_handshake_wall = last_handshake_wall_;
  s.tx_bytes = tx_bytes_;
  s.rx_bytes = rx_bytes_;
  s.handshakes = handshakes_;
  s.has_session = current_ != nullptr;
  s.unanswered = unanswered_;
  s.gave_up = gave_up_;
  return s;
}

}  // namespace firebreak::wireguard
