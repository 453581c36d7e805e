// The engine's behaviour on a virtual clock: handshakes, keypair rotation, every timer rule, cookies
// under load, rate limiting, and bad input that must be dropped and counted without disturbing anyone.
#include <doctest/doctest.h>

#include "tests/unit/wireguard_harness.hpp"
#include "transport/wireguard/keypair.hpp"
#include "transport/wireguard/rate_limiter.hpp"
#include "transport/wireguard/replay_window.hpp"

using namespace firebreak::test;

namespace {

/// A and B with a completed handshake, A the initiator.
struct established {
  network net;
  established(std::chrono::seconds keepalive_a = 0s) {
    net.add({192, 168, 1, 1});
    net.add({192, 168, 1, 2});
    net.connect(0, 1, true, false, keepalive_a);
    auto r = net.send(0, ipv4_packet(net.tunnel_addr(0), net.tunnel_addr(1)));
    REQUIRE(r.what == verdict::staged);
    net.pump();
    REQUIRE(net.nodes[1]->delivered.size() == 1);
    net.nodes[1]->delivered.clear();
  }
  device& a() { return *net.nodes[0]->dev; }
  device& b() { return *net.nodes[1]->dev; }
  std::vector<std::uint8_t> a_to_b(std::size_t size = 60) { return ipv4_packet(net.tunnel_addr(0), net.tunnel_addr(1), size); }
  std::vector<std::uint8_t> b_to_a(std::size_t size = 60) { return ipv4_packet(net.tunnel_addr(1), net.tunnel_addr(0), size); }
};

int count_type(const std::vector<wire_datagram>& log, message_type t) {
  int n = 0;
  for (auto& d : log) n += is_type(d, t);
  return n;
}

/// Records every datagram that crosses the wire.
struct wiretap {
  std::vector<wire_datagram> seen;
  explicit wiretap(network& net, std::function<bool(const wire_datagram&)> pass = {}) {
    net.filter = [this, pass](const wire_datagram& d) {
      seen.push_back(d);
      return pass ? pass(d) : true;
    };
  }
};

}  // namespace

TEST_CASE("a packet for a peer without a session starts a handshake and arrives once it completes") {
  established s;
  auto r = s.net.send(0, s.a_to_b());
  CHECK(r.what == verdict::to_network);
  s.net.pump();
  REQUIRE(s.net.nodes[1]->delivered.size() == 1);
  CHECK(s.net.nodes[1]->delivered[0] == s.a_to_b());
  // The responder may send only after the initiator confirmed the keys: it now has a session.
  CHECK(s.b().status(1)->has_session);
  CHECK(s.net.send(1, s.b_to_a()).what == verdict::to_network);
  s.net.pump();
  CHECK(s.net.nodes[0]->delivered.size() == 1);
}

TEST_CASE("transport data is padded to 16 bytes and never beyond the MTU") {
  established s;
  auto r = s.net.send(0, s.a_to_b(21));
  REQUIRE(r.what == verdict::to_network);
  CHECK(r.bytes.size() == 16 + 32 + 16);
  r = s.net.send(0, s.a_to_b(1419));  // MTU 1420: rounding up to 1424 would exceed it
  CHECK(r.bytes.size() == 16 + 1420 + 16);
  r = s.net.send(0, s.a_to_b(1420));
  CHECK(r.bytes.size() == 16 + 1420 + 16);
  s.net.pump();
  REQUIRE(s.net.nodes[1]->delivered.size() == 3);
  CHECK(s.net.nodes[1]->delivered[0].size() == 21);  // padding trimmed by the IP length
}

TEST_CASE("the initiator rekeys after 120 s and packets in flight under the old keys still open") {
  established s;
  wiretap tap(s.net);
  s.net.advance(119s);
  s.net.send(0, s.a_to_b());
  s.net.pump();
  CHECK(count_type(tap.seen, message_type::handshake_initiation) == 0);
  s.net.advance(2s);
  // Seal a packet with the old keys, but hold it back while the new handshake completes.
  std::vector<std::uint8_t> out(200);
  auto old = s.a().encapsulate(s.a_to_b(), s.net.now, out);
  REQUIRE(old.what == verdict::to_network);
  std::vector<std::uint8_t> held(old.bytes.begin(), old.bytes.end());
  s.net.in_flight.clear();
  s.net.collect();
  CHECK(std::any_of(s.net.in_flight.begin(), s.net.in_flight.end(),
                    [](auto& d) { return is_type(d, message_type::handshake_initiation); }));
  s.net.pump();
  CHECK(s.a().status(1)->handshakes == 2);
  s.net.nodes[1]->delivered.clear();
  // The late packet under the previous keypair is still accepted.
  auto late = s.net.deliver({0, s.net.nodes[0]->addr, s.net.nodes[1]->addr, held});
  CHECK(late.what == verdict::to_tunnel);
}

TEST_CASE("an unanswered handshake is retried every 5 s and given up after 90 s") {
  network net;
  net.add({192, 168, 1, 1});
  net.add({192, 168, 1, 2});
  net.connect(0, 1, true, false);
  wiretap tap(net, [](const wire_datagram&) { return false; });  // the peer is unreachable
  const auto start = net.now.mono;
  CHECK(net.send(0, ipv4_packet(net.tunnel_addr(0), net.tunnel_addr(1))).what == verdict::staged);
  net.advance(60s);
  const int by_60 = count_type(tap.seen, message_type::handshake_initiation);
  CHECK(by_60 >= 11);  // one at 0 s, then one per 5..5.333 s
  CHECK(by_60 <= 13);
  net.advance(40s);
  const int by_100 = count_type(tap.seen, message_type::handshake_initiation);
  CHECK(by_100 >= 17);
  CHECK(by_100 <= 19);
  // Nothing more, ever, until a new packet asks for a session.
  net.advance(200s);
  CHECK(count_type(tap.seen, message_type::handshake_initiation) == by_100);
  // The last attempt went out before 90 s had passed since the first.
  CHECK(net.now.mono - start > 90s);
}

TEST_CASE("a keepalive follows 10 s after received data when there is nothing to send back") {
  established s;
  wiretap tap(s.net);
  s.net.send(0, s.a_to_b());
  s.net.pump();
  tap.seen.clear();
  s.net.advance(9s);
  CHECK(tap.seen.empty());
  s.net.advance(2s);
  REQUIRE(tap.seen.size() == 1);
  CHECK(tap.seen[0].from == 1);
  CHECK(tap.seen[0].bytes.size() == 32);  // an empty transport message
}

TEST_CASE("data with no authenticated reply for 15 s starts a new handshake") {
  established s;
  wiretap tap(s.net, [](const wire_datagram& d) { return d.from == 0; });  // B's replies are lost
  s.net.send(0, s.a_to_b());
  s.net.pump();
  s.net.advance(14s);
  CHECK(count_type(tap.seen, message_type::handshake_initiation) == 0);
  s.net.advance(2s);
  CHECK(count_type(tap.seen, message_type::handshake_initiation) == 1);
}

TEST_CASE("the status counts data left unanswered for 15 s, until an authenticated packet arrives") {
  established s;
  auto& a = *s.net.nodes[0];
  const auto b_id = a.dev->peers().front();
  CHECK(a.dev->status(b_id)->unanswered == 0);
  {
    wiretap tap(s.net, [](const wire_datagram& d) { return d.from == 0; });  // B's replies are lost
    s.net.send(0, s.a_to_b());
    s.net.pump();
    s.net.advance(14s);
    CHECK(a.dev->status(b_id)->unanswered == 0);
    s.net.advance(2s);
    CHECK(a.dev->status(b_id)->unanswered == 1);
    CHECK_FALSE(a.dev->status(b_id)->gave_up);
    s.net.filter = {};  // the tap goes out of scope here
  }
  // B is heard again: the handshake in progress completes and the count clears.
  s.net.advance(6s);
  s.net.pump();
  CHECK(a.dev->status(b_id)->unanswered == 0);
}

TEST_CASE("the status says when handshake attempts ran out") {
  network net;
  net.add({192, 168, 1, 1});
  net.add({192, 168, 1, 2});
  net.connect(0, 1, true, false);
  wiretap tap(net, [](const wire_datagram&) { return false; });  // the peer is unreachable
  const auto b_id = net.nodes[0]->dev->peers().front();
  net.send(0, ipv4_packet(net.tunnel_addr(0), net.tunnel_addr(1)));
  net.advance(60s);
  CHECK_FALSE(net.nodes[0]->dev->status(b_id)->gave_up);
  net.advance(40s);
  CHECK(net.nodes[0]->dev->status(b_id)->gave_up);
}

TEST_CASE("a keypair is not used after 180 s: sending starts a handshake, old packets are refused") {
  established s;
  // B (the responder) never rekeys on its own; its keys reach REJECT_AFTER_TIME.
  std::vector<std::uint8_t> out(200);
  auto old = s.b().encapsulate(s.b_to_a(), s.net.now, out);
  REQUIRE(old.what == verdict::to_network);
  std::vector<std::uint8_t> held(old.bytes.begin(), old.bytes.end());
  s.net.in_flight.clear();
  wiretap tap(s.net, [](const wire_datagram&) { return false; });
  s.net.advance(181s);
  tap.seen.clear();
  CHECK(s.net.send(1, s.b_to_a()).what == verdict::staged);
  s.net.collect();
  CHECK(count_type(s.net.in_flight, message_type::handshake_initiation) == 1);
  s.net.in_flight.clear();
  auto late = s.net.deliver({1, s.net.nodes[1]->addr, s.net.nodes[0]->addr, held});
  CHECK(late.what == verdict::dropped);
  CHECK(late.why == drop_reason::keypair_expired);
}

TEST_CASE("keys are wiped 540 s after the last session") {
  established s;
  wiretap tap(s.net, [](const wire_datagram&) { return false; });
  s.net.advance(539s);
  CHECK(s.b().status(1)->has_session);
  s.net.advance(2s);
  CHECK_FALSE(s.b().status(1)->has_session);
  CHECK_FALSE(s.a().status(1)->has_session);
}

TEST_CASE("persistent keepalive brings the session up and keeps it alive") {
  network net;
  net.add({192, 168, 1, 1});
  net.add({192, 168, 1, 2});
  wiretap tap(net);
  net.connect(0, 1, true, false, 25s);
  net.pump();
  CHECK(net.nodes[1]->dev->status(1)->has_session);  // the first keepalive confirmed the keys
  tap.seen.clear();
  net.advance(24s);
  CHECK(tap.seen.empty());
  net.advance(2s);
  REQUIRE(tap.seen.size() == 1);
  CHECK(tap.seen[0].bytes.size() == 32);
}

TEST_CASE("the responder roams to the initiator's latest authenticated address") {
  established s;
  s.net.send(0, s.a_to_b());
  s.net.collect();
  REQUIRE(s.net.in_flight.size() == 1);
  auto moved = s.net.in_flight[0];
  s.net.in_flight.clear();
  moved.src = endpoint::ipv4({172, 16, 0, 9}, 4000);
  CHECK(s.net.deliver(moved).what == verdict::to_tunnel);
  auto reply = s.net.send(1, s.b_to_a());
  CHECK(reply.to == moved.src);
  // A forged datagram from elsewhere does not move it.
  auto forged = moved;
  forged.src = endpoint::ipv4({172, 16, 0, 66}, 5000);
  forged.bytes[20] ^= 1;
  CHECK(s.net.deliver(forged).what == verdict::dropped);
  CHECK(s.net.send(1, s.b_to_a()).to == moved.src);
}

TEST_CASE("under load, a handshake without mac2 gets a cookie reply and the retry with mac2 succeeds") {
  network net;
  net.add({192, 168, 1, 1});
  net.add({192, 168, 1, 2});
  net.connect(0, 1, true, false);
  net.nodes[1]->dev->force_under_load(true);
  wiretap tap(net);
  net.send(0, ipv4_packet(net.tunnel_addr(0), net.tunnel_addr(1)));
  net.pump();
  CHECK(count_type(tap.seen, message_type::cookie_reply) == 1);
  CHECK(net.nodes[1]->dev->dropped(drop_reason::cookie_required) == 1);
  CHECK(net.nodes[1]->delivered.empty());
  net.advance(6s);  // the retransmission carries mac2
  CHECK(count_type(tap.seen, message_type::cookie_reply) == 1);
  CHECK(count_type(tap.seen, message_type::handshake_response) == 1);
  CHECK(net.nodes[1]->delivered.size() == 1);
}

TEST_CASE("under load, handshakes from one source are rate limited") {
  network net;
  net.add({192, 168, 1, 1});
  net.add({192, 168, 1, 2});
  net.connect(0, 1, true, false);
  net.nodes[1]->dev->force_under_load(true);
  wiretap tap(net);
  net.send(0, ipv4_packet(net.tunnel_addr(0), net.tunnel_addr(1)));
  net.pump();       // cookie reply consumed by A
  net.advance(6s);  // handshake with mac2 succeeds
  std::optional<wire_datagram> with_mac2;
  for (auto& d : tap.seen)
    if (is_type(d, message_type::handshake_initiation)) with_mac2 = d;
  REQUIRE(with_mac2);
  auto& b = *net.nodes[1]->dev;
  const auto limited_before = b.dropped(drop_reason::rate_limited);
  for (int i = 0; i < 12; ++i) net.deliver(*with_mac2);  // a flood of valid-looking copies
  CHECK(b.dropped(drop_reason::rate_limited) - limited_before >= 6);
  CHECK(b.dropped(drop_reason::stale_timestamp) >= 1);
  // The flood did not disturb the live session.
  net.send(0, ipv4_packet(net.tunnel_addr(0), net.tunnel_addr(1)));
  net.pump();
  CHECK(net.nodes[1]->delivered.size() == 2);
}

TEST_CASE("a replayed initiation is refused by its timestamp and does not reset the session") {
  established s;
  network& net = s.net;
  wiretap tap(net);
  net.advance(121s);  // not yet: A rekeys only when it sends
  net.send(0, s.a_to_b());
  net.pump();
  std::optional<wire_datagram> initiation;
  for (auto& d : tap.seen)
    if (is_type(d, message_type::handshake_initiation)) initiation = d;
  REQUIRE(initiation);
  net.advance(1s);
  auto r = net.deliver(*initiation);
  CHECK(r.what == verdict::dropped);
  CHECK(r.why == drop_reason::stale_timestamp);
  net.send(1, s.b_to_a());
  net.pump();
  CHECK(net.nodes[0]->delivered.size() >= 1);
}

TEST_CASE("bad datagrams are dropped and counted and no other peer notices") {
  network net;
  net.add({192, 168, 1, 1});
  net.add({192, 168, 1, 2});
  net.add({192, 168, 1, 3});
  net.connect(0, 1, true, false);
  net.connect(0, 2, true, false);
  net.send(0, ipv4_packet(net.tunnel_addr(0), net.tunnel_addr(1)));
  net.send(0, ipv4_packet(net.tunnel_addr(0), net.tunnel_addr(2)));
  net.pump();
  REQUIRE(net.nodes[1]->delivered.size() == 1);
  REQUIRE(net.nodes[2]->delivered.size() == 1);
  auto& a = *net.nodes[0]->dev;
  const endpoint evil = endpoint::ipv4({203, 0, 113, 7}, 666);
  std::vector<std::uint8_t> out(70000);
  auto feed = [&](std::vector<std::uint8_t> bytes) { return a.decapsulate(bytes, evil, net.now, out); };

  CHECK(feed({1, 0}).why == drop_reason::too_short);
  CHECK(feed(std::vector<std::uint8_t>(70000, 4)).why == drop_reason::oversized);
  CHECK(feed({9, 0, 0, 0, 1, 2, 3, 4}).why == drop_reason::unknown_type);
  CHECK(feed({1, 1, 0, 0, 1, 2, 3, 4}).why == drop_reason::unknown_type);  // reserved bytes set
  CHECK(feed(std::vector<std::uint8_t>(147, 0)).why == drop_reason::unknown_type);
  std::vector<std::uint8_t> init(148, 0);
  init[0] = 1;
  CHECK(feed(init).why == drop_reason::bad_mac1);
  std::vector<std::uint8_t> resp(92, 0);
  resp[0] = 2;
  CHECK(feed(resp).why == drop_reason::bad_mac1);
  std::vector<std::uint8_t> cookie(64, 0);
  cookie[0] = 3;
  CHECK(feed(cookie).why == drop_reason::unknown_receiver);
  std::vector<std::uint8_t> data(48, 0);
  data[0] = 4;
  CHECK(feed(data).why == drop_reason::unknown_receiver);
  std::vector<std::uint8_t> short_data(31, 0);
  short_data[0] = 4;
  CHECK(feed(short_data).why == drop_reason::too_short);

  // A real datagram from C to A, replayed and tampered.
  net.send(2, ipv4_packet(net.tunnel_addr(2), net.tunnel_addr(0)));
  net.collect();
  auto from_c = net.in_flight.back();
  net.in_flight.clear();
  CHECK(net.deliver(from_c).what == verdict::to_tunnel);
  CHECK(net.deliver(from_c).why == drop_reason::replayed);
  auto tampered = from_c;
  tampered.bytes[8] += 1;  // a fresh counter, but the tag no longer verifies
  CHECK(net.deliver(tampered).why == drop_reason::decrypt_failed);

  CHECK(a.dropped(drop_reason::bad_mac1) == 2);
  CHECK(a.dropped(drop_reason::replayed) == 1);
  // Both sessions still carry traffic both ways.
  for (int peer = 1; peer <= 2; ++peer) {
    net.send(0, ipv4_packet(net.tunnel_addr(0), net.tunnel_addr(peer)));
    net.send(peer, ipv4_packet(net.tunnel_addr(peer), net.tunnel_addr(0)));
  }
  net.pump();
  CHECK(net.nodes[1]->delivered.size() == 2);
  CHECK(net.nodes[2]->delivered.size() == 2);
}

TEST_CASE("a decrypted packet whose source the peer may not use is dropped") {
  established s;
  auto spoofed = ipv4_packet({10, 0, 0, 99}, s.net.tunnel_addr(0));
  s.net.send(1, spoofed);
  s.net.collect();
  REQUIRE(s.net.in_flight.size() == 1);
  auto r = s.net.deliver(s.net.in_flight[0]);
  CHECK(r.what == verdict::dropped);
  CHECK(r.why == drop_reason::source_not_allowed);
}

TEST_CASE("a packet to an address no peer owns is dropped as no_route") {
  established s;
  std::vector<std::uint8_t> out(200);
  auto r = s.a().encapsulate(ipv4_packet(s.net.tunnel_addr(0), {10, 9, 9, 9}), s.net.now, out);
  CHECK(r.why == drop_reason::no_route);
}

TEST_CASE("the replay window accepts 8128 counters behind the newest and refuses the rest") {
  replay_window w;
  CHECK(w.accept(0));
  CHECK_FALSE(w.accept(0));
  CHECK(w.accept(10000));
  CHECK(w.would_accept(10000 - 8127));
  CHECK_FALSE(w.would_accept(10000 - 8128));
  CHECK(w.accept(10000 - 8127));
  CHECK_FALSE(w.accept(10000 - 8127));
  CHECK(w.accept(9999));
  // Out of order within the window, each once.
  for (std::uint64_t c = 9000; c < 9100; c += 2) CHECK(w.accept(c));
  for (std::uint64_t c = 9000; c < 9100; c += 2) CHECK_FALSE(w.accept(c));
  for (std::uint64_t c = 9001; c < 9100; c += 2) CHECK(w.accept(c));
  // A jump far ahead forgets everything behind the new window.
  CHECK(w.accept(1'000'000));
  CHECK_FALSE(w.would_accept(9999));
  CHECK(w.would_accept(1'000'000 - 1));
  CHECK_FALSE(w.would_accept(reject_after_messages));
}

TEST_CASE("the per-source rate limiter allows a burst of 5 then 20 per second") {
  rate_limiter limiter(20, 5);
  auto src = endpoint::ipv4({198, 51, 100, 1}, 1000);
  auto other = endpoint::ipv4({198, 51, 100, 2}, 1000);
  mono_time t{10s};
  int allowed = 0;
  for (int i = 0; i < 10; ++i) allowed += limiter.allow(src, t);
  CHECK(allowed == 5);
  CHECK(limiter.allow(other, t));  // sources do not share a bucket
  CHECK_FALSE(limiter.allow(src, t + 40ms));
  CHECK(limiter.allow(src, t + 51ms));
  // Idle sources are forgotten.
  limiter.allow(src, t + 5s);
  CHECK(limiter.tracked_sources() == 1);
}

TEST_CASE("a keypair stops sending at REJECT_AFTER_MESSAGES and at REJECT_AFTER_TIME") {
  symmetric_key k1, k2;
  k1.bytes.fill(1);
  k2.bytes.fill(2);
  keypair kp(k1, k2, 1, 2, mono_time{0}, true);
  CHECK(kp.can_send(mono_time{0}));
  kp.next_counter = reject_after_messages - 1;
  CHECK(kp.can_send(mono_time{0}));
  kp.next_counter = reject_after_messages;
  CHECK_FALSE(kp.can_send(mono_time{0}));
  kp.next_counter = 0;
  CHECK(kp.can_send(reject_after_time - 1ns));
  CHECK_FALSE(kp.can_send(reject_after_time));
  CHECK(kp.can_receive(reject_after_time - 1ns));
  CHECK_FALSE(kp.can_receive(reject_after_time));
  CHECK(rekey_after_messages < reject_after_messages);
}

TEST_CASE("the cookie secret rotates every 120 s, so a cookie from before the rotation earns a new one") {
  network net;
  net.add({192, 168, 1, 1});  // A
  net.add({192, 168, 1, 2});  // B, under load
  net.add({192, 168, 1, 3});  // C, whose handshake makes B draw its first cookie secret at t=0
  net.connect(0, 1, true, false);
  net.connect(2, 1, true, false);
  auto& b = *net.nodes[1]->dev;
  b.force_under_load(true);
  // Responses to A are lost, so A keeps retrying with its cookie.
  wiretap tap(net, [](const wire_datagram& d) { return !(is_type(d, message_type::handshake_response) && d.dst == endpoint::ipv4({192, 168, 1, 1}, 51820)); });
  net.send(2, ipv4_packet(net.tunnel_addr(2), net.tunnel_addr(1)));
  net.pump();
  CHECK(b.dropped(drop_reason::cookie_required) == 1);
  net.advance(100s);
  net.send(0, ipv4_packet(net.tunnel_addr(0), net.tunnel_addr(1)));
  net.pump();
  CHECK(b.dropped(drop_reason::cookie_required) == 2);  // A's first try, no cookie yet
  net.advance(12s);  // A's retries carry mac2 from a cookie of the current secret: accepted
  CHECK(b.dropped(drop_reason::cookie_required) == 2);
  net.advance(10s);  // B's secret rotated at 120 s: A's cookie is 12 s old but from the old secret
  CHECK(b.dropped(drop_reason::cookie_required) >= 3);
}

TEST_CASE("handshakes that cross (both sides initiate at once) still give a working session") {
  network net;
  net.add({192, 168, 1, 1});
  net.add({192, 168, 1, 2});
  net.connect(0, 1, true, true);
  // Both send before either hears the other: two initiations cross on the wire.
  CHECK(net.send(0, ipv4_packet(net.tunnel_addr(0), net.tunnel_addr(1))).what == verdict::staged);
  CHECK(net.send(1, ipv4_packet(net.tunnel_addr(1), net.tunnel_addr(0))).what == verdict::staged);
  net.pump();
  for (int i = 0; i < 20; ++i) {
    net.send(0, ipv4_packet(net.tunnel_addr(0), net.tunnel_addr(1)));
    net.send(1, ipv4_packet(net.tunnel_addr(1), net.tunnel_addr(0)));
    net.pump();
    net.advance(1s);
  }
  CHECK(net.nodes[0]->delivered.size() >= 20);
  CHECK(net.nodes[1]->delivered.size() >= 20);
  CHECK(net.nodes[0]->dev->dropped(drop_reason::unknown_receiver) == 0);
}

TEST_CASE("a forged handshake response does not spoil the handshake in progress") {
  network net;
  net.add({192, 168, 1, 1});
  net.add({192, 168, 1, 2});
  net.connect(0, 1, true, false);
  net.send(0, ipv4_packet(net.tunnel_addr(0), net.tunnel_addr(1)));
  net.collect();
  REQUIRE(net.in_flight.size() == 1);
  auto initiation = net.in_flight[0];
  net.in_flight.clear();
  // The attacker saw the initiation: it knows A's index, and mac1 needs only A's public key.
  std::vector<std::uint8_t> forged(handshake_response_size, 0x5a);
  forged[0] = 2, forged[1] = forged[2] = forged[3] = 0;
  std::copy(initiation.bytes.begin() + 4, initiation.bytes.begin() + 8, forged.begin() + 8);
  auto key = hash({reinterpret_cast<const std::uint8_t*>(label_mac1), 8}, net.nodes[0]->dev->local_public_key());
  auto m1 = mac(key, std::span(forged).first(forged.size() - 32));
  std::copy(m1.begin(), m1.end(), forged.end() - 32);
  auto r = net.deliver({1, net.nodes[1]->addr, net.nodes[0]->addr, forged});
  CHECK(r.why == drop_reason::handshake_failed);
  // The genuine exchange still completes.
  net.in_flight.push_back(initiation);
  net.pump();
  CHECK(net.nodes[1]->delivered.size() == 1);
}
