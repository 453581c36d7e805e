// What a status socket connection asks: its first line, read from at most the first 64 bytes a local
// program wrote (anything with access to the socket may write anything). Sans-IO, so the daemon and
// the fuzz target read it the same way.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace firebreak::apps {

enum class status_request { status, trace_on, trace_off, sign_out, unknown };

/// The most a request line may take; bytes after it are never read.
inline constexpr std::size_t max_status_request_bytes = 64;

/// The request line in `bytes` (what one read returned): up to the first CR or LF, at most
/// max_status_request_bytes long.
std::string status_request_line(std::string_view bytes);

/// The request a line names; `unknown` for anything else (the answer then lists the known ones).
status_request parse_status_request(std::string_view line);

/// The known requests, as the answer to an unknown one lists them.
inline constexpr const char* known_status_requests = R"("status", "trace on", "trace off" or "sign-out")";

}  // namespace firebreak::apps
