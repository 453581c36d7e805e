// TURN credentials in coturn's REST-API form (coturn's use-auth-secret): the portal and coturn share a
// secret; a credential is username = "<unix expiry>:<peer id>", password = base64(HMAC-SHA1(secret,
// username)). coturn checks them without asking the portal, and they stop working at the expiry.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace firebreak::portal {

struct relay_server {
  std::string id;    // stable, so relays_presence can name it
  std::string addr;  // "host:port" as clients reach it
  std::string secret;
};

struct turn_credentials {
  std::string username;
  std::string password;
  std::int64_t expires_at = 0;  // unix seconds
};

turn_credentials mint_turn_credentials(const std::string& secret, const std::string& peer_id, std::int64_t now_unix,
                                       std::chrono::seconds lifetime);

}  // namespace firebreak::portal
