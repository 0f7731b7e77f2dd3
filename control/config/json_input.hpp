// JSON input that says one thing: an object with a key twice is refused.
//
// RFC 8259 §4: "The names within an object SHOULD be unique", and parsers
// differ on which of two equal keys wins (nlohmann keeps the last, others
// the first).  `{"command":"status","command":"reload"}` ran a reload while
// a filter or a log reading the first key saw a status (issue 15), so
// control requests and Kubernetes input refuse duplicates outright.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace podgate::ctl {

struct JsonInput {
  nlohmann::json value;                 // discarded when the text is not JSON
  std::optional<std::string> syntax;    // the parser's message when not JSON
  std::optional<std::string> duplicate; // "KEY.PATH": the first key found twice
};

// Parses `text` without exceptions.  A duplicate key is reported with the
// path of the object holding it (`items[2].metadata.name`, or `name` at
// the top level).
JsonInput parse_json_input(std::string_view text);

}  // namespace podgate::ctl
