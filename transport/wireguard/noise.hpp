// The Noise IK and IKpsk2 patterns over 25519, ChaChaPoly and BLAKE2s: the symmetric state and the two
// handshake messages, as the Noise specification defines them. WireGuard's handshake (handshake.hpp)
// puts its own header and MACs around these bytes; the cacophony test vectors check this layer alone.
//
//   IK:  <- s
//        ...
//        -> e, es, s, ss          (IKpsk2: e also MixKey(e))
//        <- e, ee, se             (IKpsk2: then psk)
#pragma once

#include <optional>

#include "transport/wireguard/crypto.hpp"

namespace firebreak::wireguard::noise {

/// ck, h and the current cipher key k with its nonce n (Noise section 5.2).
class symmetric_state {
 public:
  explicit symmetric_state(std::string_view protocol_name);

  void mix_hash(bytes_view data);
  void mix_key(bytes_view input);
  void mix_key_and_hash(bytes_view input);
  /// out holds plaintext.size() + 16 (or plaintext.size() before any key).
  bool encrypt_and_hash(bytes_view plaintext, bytes_out out);
  bool decrypt_and_hash(bytes_view ciphertext, bytes_out out);
  /// (initiator→responder key, responder→initiator key).
  std::pair<symmetric_key, symmetric_key> split() const;

  const hash32& handshake_hash() const { return h_; }
  std::size_t overhead() const { return has_key_ ? tag_size : 0; }

 private:
  secret<32> ck_;
  hash32 h_{};
  symmetric_key k_;
  bool has_key_ = false;
  std::uint64_t n_ = 0;
};

struct keypair_25519 {
  private_key priv;
  public_key pub{};
  static keypair_25519 from_private(const private_key& priv);
};

/// One IK or IKpsk2 handshake, from either side. Messages carry an arbitrary payload.
class ik_handshake {
 public:
  /// Initiator: knows the responder's static key up front.
  static ik_handshake initiator(std::string_view protocol_name, bytes_view prologue, const keypair_25519& s,
                                const public_key& rs, std::optional<symmetric_key> psk);
  /// Responder: learns the initiator's static key from message 1.
  static ik_handshake responder(std::string_view protocol_name, bytes_view prologue, const keypair_25519& s,
                                std::optional<symmetric_key> psk);

  static constexpr std::size_t message1_overhead = 32 + 32 + 16 + 16;  // e, enc(s), tag of payload
  static constexpr std::size_t message2_overhead = 32 + 16;            // e, tag of payload

  /// -> e, es, s, ss, payload. `out` holds payload.size() + message1_overhead.
  bool write_message1(const keypair_25519& e, bytes_view payload, bytes_out out);
  /// Returns false on any failure; `payload` receives message.size() - message1_overhead bytes.
  bool read_message1(bytes_view message, bytes_out payload);
  /// <- e, ee, se, (psk), payload.
  bool write_message2(const keypair_25519& e, bytes_view payload, bytes_out out);
  bool read_message2(bytes_view message, bytes_out payload);

  /// The initiator's static key, known to the responder after read_message1.
  const public_key& remote_static() const { return rs_; }
  /// The responder may only learn which psk to use after seeing who the initiator is.
  void set_psk(const symmetric_key& psk) { psk_ = psk; }
  const hash32& handshake_hash() const { return ss_.handshake_hash(); }
  /// (initiator→responder, responder→initiator).
  std::pair<symmetric_key, symmetric_key> split() const { return ss_.split(); }

 private:
  ik_handshake(std::string_view protocol_name, bytes_view prologue, const keypair_25519& s,
               std::optional<symmetric_key> psk);
  bool mix_dh(const private_key& priv, const public_key& pub);

  symmetric_state ss_;
  keypair_25519 s_;
  public_key rs_{};
  public_key re_{};
  keypair_25519 e_;
  std::optional<symmetric_key> psk_;
};

}  // namespace firebreak::wireguard::noise
