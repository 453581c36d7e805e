// libFuzzer target for the status socket's request line: any local program that may open the socket
// may write any bytes. Beyond "no crash, no sanitizer report":
//   * the line holds no CR or LF, is at most 64 bytes and is a prefix of what was written;
//   * a line is one of the four known requests exactly when it parses as one, and reading it again
//     from its own bytes gives the same line (the parse is total and stable).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "apps/status_request.hpp"

namespace apps = firebreak::apps;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const auto line = apps::status_request_line(bytes);
  if (line.size() > apps::max_status_request_bytes) std::abort();
  if (line.find_first_of("\r\n") != std::string::npos) std::abort();
  if (bytes.substr(0, line.size()) != line) std::abort();
  if (apps::status_request_line(line) != line) std::abort();
  const auto asked = apps::parse_status_request(line);
  const bool known = line == "status" || line == "trace on" || line == "trace off" || line == "sign-out";
  if (known != (asked != apps::status_request::unknown)) std::abort();
  return 0;
}
