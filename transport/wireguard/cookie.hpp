// The cookie mechanism (whitepaper 5.4.7): mac1 proves the sender knows our public key; under load,
// mac2 proves it can receive at its source address, using a cookie we sent it encrypted.
#pragma once

#include <optional>

#include "transport/wireguard/crypto.hpp"
#include "transport/wireguard/endpoint.hpp"
#include "transport/wireguard/messages.hpp"
#include "transport/wireguard/random.hpp"
#include "transport/wireguard/time.hpp"

namespace firebreak::wireguard {

/// The responder's side, one per device: checks mac1/mac2 and makes cookie replies.
class cookie_checker {
 public:
  explicit cookie_checker(const public_key& local_static);

  bool mac1_valid(const handshake_view& msg) const;
  bool mac2_valid(const handshake_view& msg, const endpoint& from, mono_time now, random_source& rng);
  /// A cookie reply for `msg` (which passed mac1) sent from `from`.
  std::array<std::uint8_t, cookie_reply_size> make_reply(const handshake_view& msg, const endpoint& from,
                                                         mono_time now, random_source& rng);

 private:
  mac16 cookie_for(const endpoint& from, mono_time now, random_source& rng);

  hash32 mac1_key_;
  symmetric_key cookie_key_;
  secret<32> secret_;  // R_changing, rotated every COOKIE_REFRESH_TIME
  std::optional<mono_time> secret_born_;
};

/// The initiator's side, one per peer: adds mac1/mac2 to outgoing handshakes, keeps the latest cookie.
class cookie_generator {
 public:
  explicit cookie_generator(const public_key& remote_static);

  /// Fills mac1 and mac2 of a complete handshake message.
  void add_macs(bytes_out msg, mono_time now);
  /// Decrypts a cookie reply for the last message we sent; false when it does not authenticate.
  bool consume_reply(const cookie_reply& reply, mono_time now);

 private:
  hash32 mac1_key_;
  symmetric_key cookie_key_;
  std::optional<mac16> last_mac1_;
  secret<16> cookie_;
  std::optional<mono_time> cookie_received_;
};

}  // namespace firebreak::wireguard
