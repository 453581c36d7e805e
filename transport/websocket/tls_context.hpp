// OpenSSL contexts for this folder's servers and clients (internal: includes Asio).
// TLS 1.2 is the floor; OpenSSL's default cipher lists and groups otherwise.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <openssl/ssl.h>

namespace firebreak::websocket::detail {

/// A server context presenting `cert_path` (PEM, leaf first, chain after) with `key_path` (PEM).
/// nullptr with `why` set when a file is missing, unreadable, or the key does not fit the certificate.
std::unique_ptr<boost::asio::ssl::context> make_server_tls_context(const std::filesystem::path& cert_path,
                                                                    const std::filesystem::path& key_path,
                                                                    std::string& why);

/// A client context that trusts the CA certificates in `ca_file` (the system store when empty) and verifies the peer.
/// Host name checking is per connection: see prepare_client_stream.
std::unique_ptr<boost::asio::ssl::context> make_client_tls_context(const std::filesystem::path& ca_file,
                                                                    std::string& why);

bool is_ip_literal(const std::string& host);

/// On one client connection: SNI for a DNS name (RFC 6066 allows no IP literal there), and the check
/// of `host` against the certificate's subject alternative names (an IP literal against IP entries).
template <class SslStream>
bool prepare_client_stream(SslStream& stream, const std::string& host, std::string& why) {
  if (!is_ip_literal(host) && SSL_set_tlsext_host_name(stream.native_handle(), host.c_str()) != 1) {
    why = "cannot set the TLS server name '" + host + "'";
    return false;
  }
  boost::system::error_code ec;
  stream.set_verify_callback(boost::asio::ssl::host_name_verification(host), ec);
  if (ec) {
    why = "cannot set host name verification: " + ec.message();
    return false;
  }
  return true;
}

}  // namespace firebreak::websocket::detail
