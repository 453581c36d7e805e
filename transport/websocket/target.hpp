// An HTTP request target ("/socket/websocket?token=...&vsn=2.0.0") split into its path and its query
// parameters, percent-decoded. Pure functions: no I/O, no logging (the query carries tokens).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace firebreak::websocket {

/// Decodes %XX escapes; with `plus_is_space`, '+' becomes ' ' (the form encoding used in queries).
/// nullopt when a '%' is not followed by two hexadecimal digits, or when the result would hold a NUL.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);
/// Encodes everything but unreserved characters (RFC 3986), for a query value: base64 keys carry
/// '+', '/' and '='.
std::string percent_encode(std::string_view text);

struct parsed_target {
  std::string path;                          // as sent, not decoded: routing compares raw paths
  std::map<std::string, std::string> query;  // names and values decoded
};

struct target_result {
  std::optional<parsed_target> target;  // set exactly when error is not
  std::optional<std::string> error;     // for a person; never repeats a parameter's value
};

/// The path of a request target: everything before its '?' (never the query, which may carry a
/// token), as sent. For logs and for routing that ignores the query.
std::string_view path_of(std::string_view target);

/// path_of(target) as an access log may show it: a segment that could be a secret (one with a token's
/// prefix, "fb?_", or longer than an id's 40 characters) becomes "(N characters)", anything outside
/// printable ASCII becomes \xNN, and the whole is cut at 200 characters. A token pasted into the
/// URL by mistake never reaches the log.
std::string loggable_path(std::string_view target);

/// Splits a request target in origin form. A path must start with '/'. A parameter without '=' has an
/// empty value; empty pieces ("a=1&&b=2") are skipped. A parameter given twice is an error: two tokens
/// in one request is ambiguous, and ambiguity is not something to resolve silently in front of a
/// policy decision.
target_result parse_target(std::string_view target);

}  // namespace firebreak::websocket
