#include "transport/websocket/tls_context.hpp"

#include <arpa/inet.h>

#include <openssl/err.h>

namespace firebreak::websocket::detail {

namespace ssl = boost::asio::ssl;

namespace {

void harden(ssl::context& ctx) {
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_compression | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
}

}  // namespace

std::unique_ptr<ssl::context> make_server_tls_context(const std::filesystem::path& cert_path,
                                                      const std::filesystem::path& key_path, std::string& why) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  harden(*ctx);
  // No stateless session tickets: they are sealed with one key for the life of the process, which
  // weakens forward secrecy in a long-lived portal; peers reconnect rarely, a full handshake is cheap.
  SSL_CTX_set_options(ctx->native_handle(), SSL_OP_NO_TICKET);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_path.string(), ec);
  if (ec) {
    why = "cannot load the TLS certificate " + cert_path.string() + ": " + ec.message();
    return nullptr;
  }
  ctx->use_private_key_file(key_path.string(), ssl::context::pem, ec);
  if (ec) {
    why = "cannot load the TLS key " + key_path.string() + ": " + ec.message();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    ERR_clear_error();
    why = "the TLS key " + key_path.string() + " does not belong to the certificate " + cert_path.string();
    return nullptr;
  }
  return ctx;
}

std::unique_ptr<ssl::context> make_client_tls_context(const std::filesystem::path& ca_file, std::string& why) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  harden(*ctx);
  boost::system::error_code ec;
  // No CA file: the system's trust store, for a portal with a publicly trusted certificate.
  if (ca_file.empty())
    ctx->set_default_verify_paths(ec);
  else
    ctx->load_verify_file(ca_file.string(), ec);
  if (ec) {
    why = ca_file.empty() ? "cannot load the system's CA certificates: " + ec.message()
                          : "cannot load the CA file " + ca_file.string() + ": " + ec.message();
    return nullptr;
  }
  ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  return ctx;
}

bool is_ip_literal(const std::string& host) {
  unsigned char bytes[16];
  return inet_pton(AF_INET, host.c_str(), bytes) == 1 || inet_pton(AF_INET6, host.c_str(), bytes) == 1;
}

}  // namespace firebreak::websocket::detail
