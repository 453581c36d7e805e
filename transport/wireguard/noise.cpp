#include "transport/wireguard/noise.hpp"

#include <cstring>

namespace firebreak::wireguard::noise {

symmetric_state::symmetric_state(std::string_view protocol_name) {
  if (protocol_name.size() <= hash_size) {
    std::memcpy(h_.data(), protocol_name.data(), protocol_name.size());
  } else {
    h_ = hash({reinterpret_cast<const std::uint8_t*>(protocol_name.data()), protocol_name.size()});
  }
  ck_.bytes = h_;
}

void symmetric_state::mix_hash(bytes_view data) { h_ = hash(h_, data); }

void symmetric_state::mix_key(bytes_view input) {
  kdf(ck_.bytes, input, &ck_, &k_);
  has_key_ = true;
  n_ = 0;
}

void symmetric_state::mix_key_and_hash(bytes_view input) {
  secret<32> temp_h;
  kdf(ck_.bytes, input, &ck_, &temp_h, &k_);
  mix_hash(temp_h.bytes);
  has_key_ = true;
  n_ = 0;
}

bool symmetric_state::encrypt_and_hash(bytes_view plaintext, bytes_out out) {
  if (!has_key_) {
    if (out.size() < plaintext.size()) return false;
    std::memcpy(out.data(), plaintext.data(), plaintext.size());
    mix_hash(plaintext);
    return true;
  }
  auto ct = out.first(plaintext.size() + tag_size);
  if (!aead_seal(k_, n_, plaintext, h_, ct)) return false;
  ++n_;
  mix_hash(ct);
  return true;
}

bool symmetric_state::decrypt_and_hash(bytes_view ciphertext, bytes_out out) {
  if (!has_key_) {
    std::memcpy(out.data(), ciphertext.data(), ciphertext.size());
    mix_hash(ciphertext);
    return true;
  }
  if (ciphertext.size() < tag_size || !aead_open(k_, n_, ciphertext, h_, out)) return false;
  ++n_;
  mix_hash(ciphertext);
  return true;
}

std::pair<symmetric_key, symmetric_key> symmetric_state::split() const {
  std::pair<symmetric_key, symmetric_key> keys;
  kdf(ck_.bytes, {}, &keys.first, &keys.second);
  return keys;
}

keypair_25519 keypair_25519::from_private(const private_key& priv) {
  keypair_25519 kp;
  kp.priv = priv;
  kp.pub = x25519_public(priv);
  return kp;
}

ik_handshake::ik_handshake(std::string_view protocol_name, bytes_view prologue, const keypair_25519& s,
                           std::optional<symmetric_key> psk)
    : ss_(protocol_name), s_(s), psk_(std::move(psk)) {
  ss_.mix_hash(prologue);
}

ik_handshake ik_handshake::initiator(std::string_view protocol_name, bytes_view prologue,
                                     const keypair_25519& s, const public_key& rs,
                                     std::optional<symmetric_key> psk) {
  ik_handshake hs(protocol_name, prologue, s, std::move(psk));
  hs.rs_ = rs;
  hs.ss_.mix_hash(rs);  // pre-message: <- s
  return hs;
}

ik_handshake ik_handshake::responder(std::string_view protocol_name, bytes_view prologue,
                                     const keypair_25519& s, std::optional<symmetric_key> psk) {
  ik_handshake hs(protocol_name, prologue, s, std::move(psk));
  hs.ss_.mix_hash(s.pub);  // pre-message: <- s
  return hs;
}

bool ik_handshake::mix_dh(const private_key& priv, const public_key& pub) {
  auto shared = x25519(priv, pub);
  if (!shared) return false;
  ss_.mix_key(shared->bytes);
  return true;
}

bool ik_handshake::write_message1(const keypair_25519& e, bytes_view payload, bytes_out out) {
  if (out.size() < payload.size() + message1_overhead) return false;
  e_ = e;
  std::memcpy(out.data(), e.pub.data(), 32);
  ss_.mix_hash(e.pub);
  if (psk_) ss_.mix_key(e.pub);
  if (!mix_dh(e_.priv, rs_)) return false;
  if (!ss_.encrypt_and_hash(s_.pub, out.subspan(32, 48))) return false;
  if (!mix_dh(s_.priv, rs_)) return false;
  return ss_.encrypt_and_hash(payload, out.subspan(80, payload.size() + tag_size));
}

bool ik_handshake::read_message1(bytes_view message, bytes_out payload) {
  if (message.size() < message1_overhead || payload.size() < message.size() - message1_overhead) return false;
  std::memcpy(re_.data(), message.data(), 32);
  ss_.mix_hash(re_);
  if (psk_) ss_.mix_key(re_);
  if (!mix_dh(s_.priv, re_)) return false;
  if (!ss_.decrypt_and_hash(message.subspan(32, 48), rs_)) return false;
  if (!mix_dh(s_.priv, rs_)) return false;
  return ss_.decrypt_and_hash(message.subspan(80), payload);
}

bool ik_handshake::write_message2(const keypair_25519& e, bytes_view payload, bytes_out out) {
  if (out.size() < payload.size() + message2_overhead) return false;
  e_ = e;
  std::memcpy(out.data(), e.pub.data(), 32);
  ss_.mix_hash(e.pub);
  if (psk_) ss_.mix_key(e.pub);
  if (!mix_dh(e_.priv, re_)) return false;  // ee
  if (!mix_dh(e_.priv, rs_)) return false;  // se
  if (psk_) ss_.mix_key_and_hash(psk_->bytes);
  return ss_.encrypt_and_hash(payload, out.subspan(32, payload.size() + tag_size));
}

bool ik_handshake::read_message2(bytes_view message, bytes_out payload) {
  if (message.size() < message2_overhead || payload.size() < message.size() - message2_overhead) return false;
  std::memcpy(re_.data(), message.data(), 32);
  ss_.mix_hash(re_);
  if (psk_) ss_.mix_key(re_);
  if (!mix_dh(e_.priv, re_)) return false;  // ee
  if (!mix_dh(s_.priv, re_)) return false;  // se
  if (psk_) ss_.mix_key_and_hash(psk_->bytes);
  return ss_.decrypt_and_hash(message.subspan(32), payload);
}

}  // namespace firebreak::wireguard::noise
