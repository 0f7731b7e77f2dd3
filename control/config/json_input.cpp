#include "control/config/json_input.hpp"

#include <set>
#include <vector>

#include "control/config/diagnostics.hpp"

namespace podgate::ctl {

namespace {

using json = nlohmann::json;

// The containers being parsed, innermost last: an object's keys so far, or
// an array's next index, and how to name it in a path.
struct Open {
  bool is_object = false;
  std::set<std::string> keys;
  std::string last_key;  // the key whose value is being parsed
  size_t next_index = 0; // arrays: the index of the next element
};

std::string path_of(const std::vector<Open>& stack, size_t upto) {
  std::string path;
  for (size_t i = 0; i < upto; ++i) {
    const Open& o = stack[i];
    path = o.is_object ? input_key_path(path, o.last_key) : element_path(path, o.next_index);
  }
  return path;
}

}  // namespace

JsonInput parse_json_input(std::string_view text) {
  JsonInput in;
  std::vector<Open> stack;
  // A value inside an array advances the array's index when it ends.
  auto value_done = [&stack] {
    if (!stack.empty() && !stack.back().is_object) ++stack.back().next_index;
  };
  json::parser_callback_t cb = [&](int, json::parse_event_t ev, json& parsed) {
    switch (ev) {
      case json::parse_event_t::object_start:
        stack.push_back(Open{true, {}, {}, 0});
        break;
      case json::parse_event_t::array_start:
        stack.push_back(Open{false, {}, {}, 0});
        break;
      case json::parse_event_t::key: {
        Open& o = stack.back();
        o.last_key = parsed.get<std::string>();
        if (!o.keys.insert(o.last_key).second && !in.duplicate) {
          in.duplicate = path_of(stack, stack.size());
        }
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        stack.pop_back();
        value_done();
        break;
      case json::parse_event_t::value:
        value_done();
        break;
    }
    return true;
  };
  in.value = json::parse(text, cb, /*allow_exceptions=*/false);
  if (in.value.is_discarded()) {
    // Again with exceptions, for the parser's own words (line, column).
    // Every json::exception: a number beyond a double (1e999) is an
    // out_of_range, not a parse_error (it escaped; k8s_fuzz).
    try {
      const json again = json::parse(text);
      in.syntax = "not valid JSON";  // unreachable: the same text failed above
    } catch (const json::exception& e) {
      std::string what = e.what();  // "[json.exception.parse_error.101] parse error at ..."
      if (auto pos = what.find("] "); pos != std::string::npos) what.erase(0, pos + 2);
      in.syntax = what;
    }
  }
  return in;
}

}  // namespace podgate::ctl
