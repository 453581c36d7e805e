// One blocking HTTPS request with a deadline, verifying the server against a CA file and the host
// name: what `firebreak admin` and the tests use to reach the admin API.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "transport/websocket/client_error.hpp"

namespace firebreak::websocket {

struct https_result {
  unsigned status = 0;  // the HTTP status, when error is not set
  std::string body;
  std::map<std::string, std::string> headers;  // names in lower case
  std::optional<client_error> error;
};

/// `headers` are sent as given (Host, Content-Length and User-Agent are set here). The response body
/// may be up to 16 MiB. `timeout` bounds the whole exchange.
https_result https_request(const std::string& host, std::uint16_t port, const std::string& method,
                           const std::string& target, const std::map<std::string, std::string>& headers,
                           const std::string& body, const std::filesystem::path& ca_file,
                           std::chrono::milliseconds timeout);

}  // namespace firebreak::websocket
