#include "control/admin/reply_stream.hpp"

#include <stdexcept>

namespace podgate::ctl {

using nlohmann::json;

std::string dump_json(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// nlohmann writes an object as {"key":value,...} in its (sorted) member
// order, a key escaped as a string value is: so does this, up to the value
// at `path`.
std::pair<std::string, std::string> split_at(const json& object,
                                             std::span<const std::string> path) {
  if (path.empty() || !object.is_object() || !object.contains(path.front())) {
    throw std::logic_error("split_at: the reply has no \"" +
                           (path.empty() ? std::string() : path.front()) + "\" to stream");
  }
  std::string before = "{";
  std::string after;
  bool first = true;
  bool found = false;
  for (auto it = object.begin(); it != object.end(); ++it) {
    std::string& out = found ? after : before;
    if (!first) out += ',';
    first = false;
    out += dump_json(json(it.key()));
    out += ':';
    if (!found && it.key() == path.front()) {
      found = true;
      if (path.size() > 1) {
        auto [b, a] = split_at(it.value(), path.subspan(1));
        before += b;
        after += a;
      }
    } else {
      out += dump_json(it.value());
    }
  }
  after += '}';
  return {std::move(before), std::move(after)};
}

json whole(const LongReply& reply) {
  json out = reply.fields;
  if (reply.path.empty()) return out;
  const LongArray& a = reply.items;
  if (a.as_text) {
    std::string text;
    for (size_t i = 0; i < a.count; ++i) text += a.element(i).get_ref<const std::string&>();
    json* at = &out;
    for (const std::string& key : reply.path) at = &(*at)[key];
    *at = std::move(text);
    return out;
  }
  json list = json::array();
  for (size_t i = 0; i < a.count; ++i) {
    json e = a.element(i);
    if (!a.inner_key.empty()) {
      json inner = json::array();
      const size_t n = a.inner_count(i);
      for (size_t j = 0; j < n; ++j) inner.push_back(a.inner_item(i, j));
      e[a.inner_key] = std::move(inner);
    }
    list.push_back(std::move(e));
  }
  json* at = &out;
  for (const std::string& key : reply.path) at = &(*at)[key];
  *at = std::move(list);
  return out;
}

ReplyStream::ReplyStream(LongReply reply) : items_(std::move(reply.items)) {
  if (reply.path.empty()) {
    prefix_ = dump_json(reply.fields);
    items_ = LongArray{};
    return;
  }
  auto [before, after] = split_at(reply.fields, reply.path);
  const char open = items_.as_text ? '"' : '[';
  const char close = items_.as_text ? '"' : ']';
  prefix_ = std::move(before) + open;
  suffix_ = close + std::move(after);
}

bool ReplyStream::next(std::string& out, size_t budget) {
  const size_t start = out.size();
  auto full = [&] { return out.size() - start >= budget; };
  if (stage_ == Stage::kPrefix) {
    out += prefix_;
    prefix_ = std::string();
    stage_ = Stage::kElements;
  }
  while (stage_ == Stage::kElements && !full()) {
    if (in_element_) {
      for (; j_ < inner_count_ && !full(); ++j_) {
        if (j_ != 0) out += ',';
        out += dump_json(items_.inner_item(i_, j_));
      }
      if (j_ < inner_count_) break;
      out += ']';
      out += element_suffix_;
      in_element_ = false;
      ++i_;
      continue;
    }
    if (i_ == items_.count) {
      out += suffix_;
      stage_ = Stage::kDone;
      items_ = LongArray{};  // lets go of what the functions held
      break;
    }
    if (items_.as_text) {
      // The piece's characters as they stand inside the string's quotes.
      const std::string quoted = dump_json(items_.element(i_));
      out.append(quoted, 1, quoted.size() - 2);
      ++i_;
      continue;
    }
    if (i_ != 0) out += ',';
    const json e = items_.element(i_);
    if (items_.inner_key.empty()) {
      out += dump_json(e);
      ++i_;
      continue;
    }
    const std::string key[] = {items_.inner_key};
    auto [before, after] = split_at(e, key);
    out += before;
    out += '[';
    element_suffix_ = std::move(after);
    inner_count_ = items_.inner_count(i_);
    j_ = 0;
    in_element_ = true;
  }
  return stage_ != Stage::kDone;
}

std::string ReplyStream::rest() {
  std::string out;
  while (next(out, SIZE_MAX)) {
  }
  return out;
}

}  // namespace podgate::ctl
