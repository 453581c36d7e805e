#include "actors/portal/relay_credentials.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdexcept>

namespace firebreak::portal {

turn_credentials mint_turn_credentials(const std::string& secret, const std::string& peer_id, std::int64_t now_unix,
                                       std::chrono::seconds lifetime) {
  turn_credentials c;
  c.expires_at = now_unix + lifetime.count();
  c.username = std::to_string(c.expires_at) + ":" + peer_id;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(c.username.data()), c.username.size(), mac, &len))
    throw std::runtime_error("HMAC-SHA1 failed");
  std::string b64(4 * ((len + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), mac, static_cast<int>(len));
  b64.resize(static_cast<std::size_t>(n));
  c.password = std::move(b64);
  return c;
}

}  // namespace firebreak::portal
