#include "transport/wireguard/cookie.hpp"

#include <cstring>

#include "transport/wireguard/constants.hpp"

namespace firebreak::wireguard {
namespace {

bytes_view label(const char* text) { return {reinterpret_cast<const std::uint8_t*>(text), 8}; }

}  // namespace

cookie_checker::cookie_checker(const public_key& local_static)
    : mac1_key_(hash(label(label_mac1), local_static)) {
  cookie_key_.bytes = hash(label(label_cookie), local_static);
}

bool cookie_checker::mac1_valid(const handshake_view& msg) const {
  return equal(mac(mac1_key_, msg.before_mac1()), msg.mac1());
}

mac16 cookie_checker::cookie_for(const endpoint& from, mono_time now, random_source& rng) {
  if (!secret_born_ || now - *secret_born_ >= cookie_refresh_time) {
    rng.fill(secret_.bytes);
    secret_born_ = now;
  }
  std::uint8_t input[18];
  auto n = from.cookie_input(input);
  return mac(secret_.bytes, {input, n});
}

bool cookie_checker::mac2_valid(const handshake_view& msg, const endpoint& from, mono_time now,
                                random_source& rng) {
  auto cookie = cookie_for(from, now, rng);
  return equal(mac(cookie, msg.before_mac2()), msg.mac2());
}

std::array<std::uint8_t, cookie_reply_size> cookie_checker::make_reply(const handshake_view& msg,
                                                                       const endpoint& from, mono_time now,
                                                                       random_source& rng) {
  std::array<std::uint8_t, cookie_reply_size> out{};
  out[0] = static_cast<std::uint8_t>(message_type::cookie_reply);
  store_le32(out.data() + 4, msg.sender());
  rng.fill(std::span(out).subspan(8, xnonce_size));
  auto cookie = cookie_for(from, now, rng);
  xaead_seal(cookie_key_, std::span<const std::uint8_t, xnonce_size>(out.data() + 8, xnonce_size), cookie,
             msg.mac1(), std::span(out).subspan(32, 32));
  return out;
}

cookie_generator::cookie_generator(const public_key& remote_static)
    : mac1_key_(hash(label(label_mac1), remote_static)) {
  cookie_key_.bytes = hash(label(label_cookie), remote_static);
}

void cookie_generator::add_macs(bytes_out msg, mono_time now) {
  handshake_view view{msg};
  auto m1 = mac(mac1_key_, view.before_mac1());
  std::memcpy(msg.data() + msg.size() - 32, m1.data(), 16);
  last_mac1_ = m1;
  // A cookie is good for COOKIE_REFRESH_TIME; an older one would only fail mac2 anyway.
  if (cookie_received_ && now - *cookie_received_ < cookie_refresh_time) {
    auto m2 = mac(cookie_.bytes, view.before_mac2());
    std::memcpy(msg.data() + msg.size() - 16, m2.data(), 16);
  } else {
    std::memset(msg.data() + msg.size() - 16, 0, 16);
  }
}

bool cookie_generator::consume_reply(const cookie_reply& reply, mono_time now) {
  if (!last_mac1_) return false;
  secret<16> cookie;
  if (!xaead_open(cookie_key_, reply.nonce(), reply.encrypted_cookie(), *last_mac1_, cookie.bytes)) return false;
  cookie_ = cookie;
  cookie_received_ = now;
  return true;
}

}  // namespace firebreak::wireguard
