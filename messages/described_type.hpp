// How an error message names the JSON type of what a peer sent: "a string", "an array", "null".
// Shared by the frame parser and the event decoders, whose messages tests and peers read as they are.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace firebreak::messages {

/// How finely numbers are named. The frame parser never asks for a number, so it says only "a number";
/// event fields ask for integers or fractions, so the decoders tell the two apart.
enum class number_naming {
  one_kind,             // "a number"
  integer_or_fraction,  // "an integer", "a fractional number"
};

/// "a string", "an array", "null", ...: the type of `j` as a person names it.
std::string described_type(const nlohmann::json& j, number_naming numbers);

}  // namespace firebreak::messages
