#include "transport/websocket/target.hpp"

namespace firebreak::websocket {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percent_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                            c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      int hi = hex_value(text[i + 1]);
      int lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') return std::nullopt;
    out.push_back(c);
  }
  return out;
}

target_result parse_target(std::string_view target) {
  if (target.empty() || target.front() != '/') {
    return {std::nullopt, "the request target must be a path starting with '/'"};
  }
  parsed_target out;
  auto question = target.find('?');
  out.path = std::string(target.substr(0, question));
  if (question == std::string_view::npos) return {std::move(out), std::nullopt};

  std::string_view query = target.substr(question + 1);
  if (auto hash = query.find('#'); hash != std::string_view::npos) query = query.substr(0, hash);
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view piece = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (piece.empty()) continue;
    auto eq = piece.find('=');
    auto name = percent_decode(piece.substr(0, eq), true);
    if (!name) return {std::nullopt, "a query parameter name has a malformed percent escape"};
    std::optional<std::string> value = std::string{};
    if (eq != std::string_view::npos) value = percent_decode(piece.substr(eq + 1), true);
    if (!value) return {std::nullopt, "query parameter '" + *name + "' has a malformed percent escape"};
    if (out.query.contains(*name)) return {std::nullopt, "query parameter '" + *name + "' is given twice"};
    out.query.emplace(std::move(*name), std::move(*value));
  }
  return {std::move(out), std::nullopt};
}

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

std::string loggable_path(std::string_view target) {
  constexpr std::size_t max_segment = 40, max_total = 200;
  static constexpr char hex[] = "0123456789abcdef";
  const auto path = path_of(target);
  std::string out;
  std::size_t at = 0;
  while (at <= path.size() && out.size() < max_total) {
    const auto slash = path.find('/', at);
    const auto segment = path.substr(at, slash == std::string_view::npos ? std::string_view::npos : slash - at);
    const bool secret_like = segment.size() > max_segment ||
                             (segment.size() >= 4 && segment[0] == 'f' && segment[1] == 'b' && segment[3] == '_');
    if (secret_like) {
      out += "(" + std::to_string(segment.size()) + " characters)";
    } else {
      for (const char c : segment) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f && c != '\\') {
          out += c;
        } else {
          out += "\\x";
          out += hex[u >> 4];
          out += hex[u & 0xf];
        }
      }
    }
    if (slash == std::string_view::npos) break;
    out += '/';
    at = slash + 1;
  }
  if (out.size() > max_total) out.resize(max_total);
  return out;
}

}  // namespace firebreak::websocket
