// Why a blocking client call (wss_client, https_request) did not do what was asked.
#pragma once

#include <cstdint>
#include <string>

namespace firebreak::websocket {

struct client_error {
  enum class kind {
    setup,      // the CA file cannot be read, bad arguments
    resolve,    // the host name does not resolve
    connect,    // no TCP connection
    tls,        // TLS handshake failed: the certificate is not trusted or not for this host
    refused,    // the server answered the upgrade with an HTTP error status (see http_status)
    closed,     // the WebSocket was closed: close_code and close_reason say how
    timeout,    // the call's deadline passed; a WebSocket is unusable afterwards (except receive_text)
    io,         // the connection broke
  };
  kind what = kind::io;
  std::string message;        // for a person
  unsigned http_status = 0;   // kind::refused
  std::uint16_t close_code = 0;  // kind::closed: the code in the close frame, 1005 if none, 1006 if no frame
  std::string close_reason;   // kind::closed
};

}  // namespace firebreak::websocket
