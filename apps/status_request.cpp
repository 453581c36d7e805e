#include "apps/status_request.hpp"

namespace firebreak::apps {

std::string status_request_line(std::string_view bytes) {
  bytes = bytes.substr(0, max_status_request_bytes);
  return std::string(bytes.substr(0, bytes.find_first_of("\r\n")));
}

status_request parse_status_request(std::string_view line) {
  if (line == "status") return status_request::status;
  if (line == "trace on") return status_request::trace_on;
  if (line == "trace off") return status_request::trace_off;
  if (line == "sign-out") return status_request::sign_out;
  return status_request::unknown;
}

}  // namespace firebreak::apps
