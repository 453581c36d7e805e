// p2p control packets: the goodbye's exact bytes (Firezone's layout), and what classify() makes of
// well-formed, malformed, unknown and ordinary packets.
#include <doctest/doctest.h>

#include <vector>

#include "messages/p2p_control.hpp"

namespace p2p = firebreak::messages::p2p;

namespace {

std::vector<std::uint8_t> bytes_of(const std::array<std::uint8_t, p2p::goodbye_size>& a) { return {a.begin(), a.end()}; }

}  // namespace

TEST_CASE("a goodbye is 48 bytes: IPv6 :: to ::, next header 0xFF, hop limit 0, event 2") {
  const std::vector<std::uint8_t> expected = {
      0x60, 0, 0, 0,  0, 8, 0xff, 0,                   // version 6; payload length 8; next header; hop limit
      0,    0, 0, 0,  0, 0, 0,    0, 0, 0, 0, 0, 0, 0, 0, 0,  // source ::
      0,    0, 0, 0,  0, 0, 0,    0, 0, 0, 0, 0, 0, 0, 0, 0,  // destination ::
      2,    0, 0, 0,  0, 0, 0,    0};                  // event GOODBYE, seven zero bytes
  CHECK(bytes_of(p2p::goodbye()) == expected);
  const auto c = p2p::classify(expected);
  CHECK(c.what == p2p::kind::goodbye);
  CHECK(c.event == 2);
  CHECK(c.payload.empty());
}

TEST_CASE("classify: any field off makes a control packet malformed, never delivered") {
  auto base = bytes_of(p2p::goodbye());
  auto with = [&](std::size_t i, std::uint8_t v) {
    auto p = base;
    p[i] = v;
    return p2p::classify(p).what;
  };
  CHECK(with(7, 1) == p2p::kind::malformed);   // hop limit
  CHECK(with(1, 0x10) == p2p::kind::malformed);  // traffic class / flow label
  CHECK(with(0, 0x61) == p2p::kind::malformed);
  CHECK(with(41, 1) == p2p::kind::malformed);  // control header bytes 1-7
  CHECK(with(47, 1) == p2p::kind::malformed);
  CHECK(with(5, 9) == p2p::kind::malformed);  // payload length disagrees with the size
  auto longer = base;
  longer.push_back(0);
  CHECK(p2p::classify(longer).what == p2p::kind::malformed);  // a goodbye has no payload
  longer[5] = 9;
  CHECK(p2p::classify(longer).what == p2p::kind::malformed);  // ... even when the length says so
  auto shorter = base;
  shorter.pop_back();
  CHECK(p2p::classify(shorter).what == p2p::kind::malformed);
}

TEST_CASE("classify: an event this build does not know is reported, with its payload") {
  auto p = bytes_of(p2p::goodbye());
  p[40] = 7;
  p.insert(p.end(), {1, 2, 3});
  p[5] = 11;
  const auto c = p2p::classify(p);
  CHECK(c.what == p2p::kind::unknown_event);
  CHECK(c.event == 7);
  CHECK(c.payload.size() == 3);
  CHECK(c.payload[2] == 3);
}

TEST_CASE("classify: ordinary packets are not control packets") {
  auto p = bytes_of(p2p::goodbye());
  p[23] = 1;  // source ::1
  CHECK(p2p::classify(p).what == p2p::kind::not_control);
  p = bytes_of(p2p::goodbye());
  p[39] = 1;  // destination ::1
  CHECK(p2p::classify(p).what == p2p::kind::not_control);
  p = bytes_of(p2p::goodbye());
  p[6] = 17;  // UDP
  CHECK(p2p::classify(p).what == p2p::kind::not_control);
  std::vector<std::uint8_t> v4(48, 0);
  v4[0] = 0x45;
  CHECK(p2p::classify(v4).what == p2p::kind::not_control);
  CHECK(p2p::classify({}).what == p2p::kind::not_control);
  CHECK(p2p::classify(std::vector<std::uint8_t>(39, 0)).what == p2p::kind::not_control);
}
