// Interop: the TURN credentials the portal hands out work on a real coturn (Debian's `turnserver` with
// use-auth-secret), and only while they should. The test starts coturn on a free UDP port on loopback,
// a portal of our own in this process sharing coturn's secret, and `turnutils_peer` as someone to relay
// to; coturn's own client (`turnutils_uclient`) allocates with what the portal sent and relays through.
// Everything started is stopped by PID at the end. Skips, with a message, when coturn is not installed.
#include <doctest/doctest.h>

#include "actors/portal/relay_credentials.hpp"
#include "tests/e2e/portal_harness.hpp"
#include "tests/interop/coturn.hpp"

namespace {

using namespace firebreak;
using namespace firebreak::portal_test;
namespace coturn = firebreak::test::coturn;
namespace netns = firebreak::test::netns;

/// A secret as an operator would put in coturn's static-auth-secret: random, never logged.
std::string new_secret() {
  wireguard::system_random rng;
  std::array<std::uint8_t, 24> bytes{};
  rng.fill(bytes);
  return wireguard::to_base64(bytes);
}

/// The relays block of an init or relays_presence payload, decoded; the one relay it must name.
messages::relay only_relay(const json& relays, const std::string& id) {
  REQUIRE_MESSAGE(relays.is_array(), "relays is not an array: " << relays.dump());
  REQUIRE(relays.size() == 1);
  // A relay decodes as part of an event: relays_presence carries the same list.
  auto r = messages::from_json<messages::relays_presence>(json{{"connected", relays}, {"disconnected_ids", json::array()}});
  REQUIRE_MESSAGE(r, "the relays do not decode: " << r.error->message);
  CHECK(r->connected.at(0).id == id);
  return r->connected.at(0);
}

/// coturn relayed every datagram to the echo peer and back.
void check_relayed(const netns::command_result& r, int messages) {
  INFO(r.output);
  CHECK(r.ok());
  CHECK(r.output.find("tot_recv_msgs=" + std::to_string(messages)) != std::string::npos);
  CHECK(r.output.find("Total lost packets 0") != std::string::npos);
}

void check_refused(const netns::command_result& r) {
  INFO(r.output);
  CHECK_FALSE(r.ok());
  CHECK(r.output.find("Cannot complete Allocation") != std::string::npos);
}

}  // namespace

TEST_CASE("coturn accepts the portal's TURN credentials from init and relays_presence, and nothing else") {
  if (auto missing = coturn::missing_tools(); !missing.empty()) {
    MESSAGE("skipped: " << missing);
    return;
  }
  test::temp_directory dir;
  const std::string secret = new_secret();
  coturn::relay relay(dir, {.secret = secret});
  coturn::echo_peer peer(dir, "127.0.0.1");
  std::string why;
  REQUIRE_MESSAGE(relay.wait_ready(peer.ip(), peer.port(), why), why);

  portal_harness p([&](portal::portal_config& c) {
    c.relays = {{"coturn-1", relay.address(), secret}};
    // Short-lived credentials, so a refresh arrives while the test watches.
    // (Long enough that init's credentials are still good when the first allocation runs on a busy
    // machine: expiry is in whole seconds, so they may have a second less than this.)
    c.relay_credential_lifetime = std::chrono::seconds(10);
  });
  world w(p.admin());
  auto client = join_client(p, w);
  auto gateway = join_gateway(p, w);

  const auto from_init = only_relay(client.init.at("relays"), "coturn-1");
  CHECK(from_init.addr == relay.address());
  CHECK(from_init.type == "turn");
  REQUIRE(from_init.expires_at);
  CHECK(*from_init.expires_at > unix_now());
  CHECK(*from_init.expires_at <= unix_now() + 11);
  // coturn's REST-API form: "<expiry>:<peer id>".
  CHECK(from_init.username == std::to_string(*from_init.expires_at) + ":" + w.client.id);

  SUBCASE("the client's and the gateway's credentials allocate and relay") {
    check_relayed(relay.allocate_and_echo(from_init.username, from_init.password, peer.ip(), peer.port()), 3);
    const auto gw = only_relay(gateway.init.at("relays"), "coturn-1");
    CHECK(gw.username.ends_with(":" + w.gateway.id));
    check_relayed(relay.allocate_and_echo(gw.username, gw.password, peer.ip(), peer.port()), 3);
  }
  SUBCASE("a wrong password, or a username changed to live longer, is refused") {
    check_refused(relay.allocate_and_echo(from_init.username, from_init.password + "x", peer.ip(), peer.port()));
    const auto longer = std::to_string(*from_init.expires_at + 3600) + ":" + w.client.id;
    check_refused(relay.allocate_and_echo(longer, from_init.password, peer.ip(), peer.port()));
  }
  SUBCASE("credentials past their expiry are refused; relays_presence brings fresh ones that work") {
    // Minted with the same secret an hour ago for ten minutes: correct, but over.
    const auto stale = portal::mint_turn_credentials(secret, w.client.id, unix_now() - 3600, std::chrono::minutes(10));
    check_refused(relay.allocate_and_echo(stale.username, stale.password, peer.ip(), peer.port()));

    // At half the 10 s lifetime the portal sends every joined peer fresh credentials.
    auto pushed = client->next_push("relays_presence", 10s);
    auto presence = messages::from_json<messages::relays_presence>(pushed.payload);
    REQUIRE_MESSAGE(presence, "relays_presence does not decode: " << presence.error->message);
    CHECK(presence->disconnected_ids.empty());
    REQUIRE(presence->connected.size() == 1);
    const auto fresh = presence->connected[0];
    CHECK(fresh.id == "coturn-1");
    REQUIRE(fresh.expires_at);
    CHECK(*fresh.expires_at > *from_init.expires_at);
    check_relayed(relay.allocate_and_echo(fresh.username, fresh.password, peer.ip(), peer.port()), 3);
    CHECK(gateway->next_push("relays_presence", 10s).payload.at("connected").size() == 1);
  }
}
