#include "messages/described_type.hpp"

namespace firebreak::messages {

using nlohmann::json;

std::string described_type(const json& j, number_naming numbers) {
  const bool integer_or_fraction = numbers == number_naming::integer_or_fraction;
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return integer_or_fraction ? "an integer" : "a number";
    case json::value_t::number_float: return integer_or_fraction ? "a fractional number" : "a number";
    default: return "a value of another kind";
  }
}

}  // namespace firebreak::messages
