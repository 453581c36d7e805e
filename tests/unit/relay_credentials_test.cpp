// TURN credentials in coturn's REST-API form: checked against an independent HMAC-SHA1 (Python's hmac).
#include <doctest/doctest.h>

#include "actors/portal/relay_credentials.hpp"

using namespace firebreak::portal;

TEST_CASE("TURN credentials follow coturn's use-auth-secret scheme") {
  auto c = mint_turn_credentials("north-pole", "client-1", 1700000000, std::chrono::seconds(600));
  CHECK(c.username == "1700000600:client-1");
  CHECK(c.expires_at == 1700000600);
  CHECK(c.password == "B8gfgokfO4g50B8/aF1noYTbiiI=");
  auto other = mint_turn_credentials("south-pole", "client-1", 1700000000, std::chrono::seconds(600));
  CHECK(other.password != c.password);
}
