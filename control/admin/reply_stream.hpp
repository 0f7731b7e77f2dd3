// Long control-socket replies written a piece at a time (issue 14).
//
// At 10,000 services `stats` is 36 MB of JSON, `config dump` 15 MB and
// `services` 3 MB.  Built whole on the control thread, one such reply held
// the thread (and with it DNS and the punt ring) for seconds.  A LongReply
// instead says what the reply is: its short fields, and one long array
// given as "how many elements, and element i".  A ReplyStream turns it into
// the reply's text a bounded piece at a time, and the control socket writes
// one piece per event-loop turn as the client reads (control_socket.hpp).
//
// The bytes are exactly those of the whole reply's dump(): the short fields
// are split around the array by the same serializer (split_at), and the
// elements are dumped one by one with the commas nlohmann puts between
// them.  Clients see no difference; tests compare the two (whole()).
//
// An element may hold a long array of its own (a `stats` service port and
// its endpoints, a `config dump` service and its endpoints): its items are
// then written one by one too, so one service of 65,534 endpoints is no
// longer a piece than any other.  Control thread only.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace podgate::ctl {

// A value's text as every reply is written: compact, invalid UTF-8
// replaced by U+FFFD.
std::string dump_json(const nlohmann::json& value);

// `object`'s text split where the value at `path` (keys from `object`
// down, each naming an object member, the last one the value) goes:
// prefix + dump_json(v) + suffix == dump_json(object) for that value v.
// Throws std::logic_error when a key on `path` is missing.
std::pair<std::string, std::string> split_at(const nlohmann::json& object,
                                             std::span<const std::string> path);

// The elements of a long array, made on demand.  The functions are called
// as the reply is written, over many loop turns: they must read data that
// stays as it was (a copy of the ServiceList, shared_ptrs), or figures that
// may move on (counters).
struct LongArray {
  size_t count = 0;
  // Element i.  With `inner_key` set, it must hold that key (any value:
  // the inner array goes there).
  std::function<nlohmann::json(size_t i)> element;
  std::string inner_key;  // "" = each element is written whole
  std::function<size_t(size_t i)> inner_count;
  std::function<nlohmann::json(size_t i, size_t j)> inner_item;
  // A long text instead of an array: each element is a string (whole
  // UTF-8 characters), and the value is one JSON string, their
  // concatenation (`config toml`, service by service).  No inner items.
  bool as_text = false;
};

// A reply (or a reply's fields) with one long array: `fields` holds the
// key at `path` (any value), `items` the array that goes there.  With an
// empty path it is a short reply: `fields` whole.
struct LongReply {
  LongReply() = default;
  LongReply(nlohmann::json f) : fields(std::move(f)) {}  // NOLINT: a short reply
  LongReply(nlohmann::json f, std::vector<std::string> p, LongArray a)
      : fields(std::move(f)), path(std::move(p)), items(std::move(a)) {}

  nlohmann::json fields = nlohmann::json::object();
  std::vector<std::string> path;
  LongArray items;
};

// The reply built whole, as one JSON value: what telemetry and /metrics
// use (with few elements), and what tests compare the stream with.
nlohmann::json whole(const LongReply& reply);

// `reply`'s text (no newline), produced piece by piece.
class ReplyStream {
 public:
  explicit ReplyStream(LongReply reply);

  // Appends the next part of the text to `out`: stops once it appended
  // `budget` bytes or more (at most one element or inner item past the
  // budget, plus an element's fields) or the text is complete.  False
  // once complete.
  bool next(std::string& out, size_t budget);
  bool done() const noexcept { return stage_ == Stage::kDone; }

  // Every remaining piece at once (tests, ControlSocket::handle_line()).
  std::string rest();

 private:
  enum class Stage : uint8_t { kPrefix, kElements, kDone };

  LongArray items_;
  std::string prefix_;  // the reply up to the long array
  std::string suffix_;  // after it
  Stage stage_ = Stage::kPrefix;
  size_t i_ = 0;              // the next element (or the one whose items are written)
  bool in_element_ = false;   // writing element i_'s inner items
  size_t j_ = 0;              // its next inner item
  size_t inner_count_ = 0;
  std::string element_suffix_;  // element i_'s text after its inner array
};

}  // namespace podgate::ctl
