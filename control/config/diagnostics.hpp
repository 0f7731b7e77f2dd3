// How every config input reports what is wrong with it: the TOML config
// (control/config/config_reader.hpp), Kubernetes JSON
// (control/config/k8s_read.hpp) and validate() of a whole Config
// (control/config/validate_config.cpp) record through one Diagnostics.
//
// A message is "LOCATION: KEY.PATH: what", one a line, collected rather than
// returned at the first problem so one pass reports every error of an input
// (architecture decision 6, style habit 7).  Only the location differs by
// input, and Diagnostics makes both kinds:
//   conf/podgate.toml:14:9: services[2].ports[0].port: 70000 is not in 1..65535
//   k8s.json: items[3] Service default/web: spec.ports[0].port: 0 is not in 1..65535
//   service default/web, endpoint 10.0.0.7: weight 0 is not in 1..256
// The readers keep their typed accessors (toml++ nodes and nlohmann::json
// differ); what a message says, where it points and how a report reads
// live here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace podgate::ctl {

// Where a message points: the text written before its key path, separator
// included, and the position the report sorts it by.
struct Location {
  std::string prefix;  // "conf/podgate.toml:14:9: ", "k8s.json: items[3] Service default/web: ", ""
  uint32_t line = 0;   // 0: no position; kept in the order recorded, before positioned ones
  uint32_t column = 0;
};

class Diagnostics {
 public:
  // `source` names the input: a file name, "-", or empty for input that is
  // not a file (a Kubernetes annotation read as a TOML table).
  explicit Diagnostics(std::string_view source) : source_(source) {}

  const std::string& source() const { return source_; }

  // "SOURCE:LINE:COL: ", a TOML node's position; a node without one (line
  // 0) blames the file's start.  No source: no prefix, since a position in
  // text the user never wrote would mean nothing.
  Location at_position(uint32_t line, uint32_t column) const;
  // "SOURCE: OBJECT: " ("SOURCE: " for an empty `object`), an object of a
  // JSON document such as "items[3] Service default/web", or of a Config
  // (validate(): "service default/web, endpoint 10.0.0.7").  No source:
  // "OBJECT: " only.
  Location at_object(std::string_view object) const;

  // Records "PATH: what" ("what" for an empty path) at `at`.
  void error(const Location& at, std::string_view path, std::string_view what);
  void warning(const Location& at, std::string_view path, std::string_view what);
  // Each line of `report` (another check's errors, one a line) as an error.
  void error_lines(const Location& at, std::string_view path, std::string_view report);

  bool has_errors() const { return !errors_.empty(); }
  size_t error_count() const { return errors_.size(); }

  // Every error, one a line, sorted by position (recorded order among equals).
  std::string error_report() const;
  // Every warning, one line each, in the same order.
  std::vector<std::string> warning_lines() const;

 private:
  struct Message {
    Location at;
    std::string text;  // "PATH: what"
  };

  static std::vector<std::string> sorted_lines(const std::vector<Message>& messages);

  std::string source_;
  std::vector<Message> errors_;
  std::vector<Message> warnings_;
};

// ---- how a message names a value and a place ----

// `s` in double quotes, with '"' and '\' escaped and control bytes as \xNN.
std::string quote(std::string_view s);
// Whether quote() leaves `s` as it is between the quotes: no control byte,
// '"' or '\'.
bool is_plain(std::string_view s);
// `s` as it is when plain, else quote(s): for a name from the input that
// messages write bare ("items[0] Service default/web").
std::string plain_or_quoted(std::string_view s);
// "path.key", or "key" at the top level.
std::string key_path(std::string_view path, std::string_view key);
// key_path() for a key from the input: "path[\"key\"]", quoted, when the
// key is not plain (a control byte in a JSON key).
std::string input_key_path(std::string_view path, std::string_view key);
// "path[i]".
std::string element_path(std::string_view path, size_t i);
// "expected an integer, found a string": a value of the wrong type, worded
// the same for TOML and Kubernetes input (each reader names its types).
std::string expected_found(std::string_view expected, std::string_view found);

}  // namespace podgate::ctl
