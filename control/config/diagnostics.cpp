// One message style for every config input; see diagnostics.hpp.
#include "control/config/diagnostics.hpp"

#include <algorithm>
#include <charconv>
#include <tuple>

namespace podgate::ctl {

Location Diagnostics::at_position(uint32_t line, uint32_t column) const {
  Location at{{}, line, column};
  if (source_.empty()) return at;
  if (line == 0) line = column = 1;  // a node without a position: blame the file's start
  at.prefix.append(source_).append(":").append(std::to_string(line));
  at.prefix.append(":").append(std::to_string(column)).append(": ");
  return at;
}

Location Diagnostics::at_object(std::string_view object) const {
  Location at;
  if (!source_.empty()) at.prefix.append(source_).append(": ");
  if (!object.empty()) at.prefix.append(object).append(": ");
  return at;
}

void Diagnostics::error(const Location& at, std::string_view path, std::string_view what) {
  std::string text;
  if (!path.empty()) text.append(path).append(": ");
  errors_.push_back({at, text.append(what)});
}

void Diagnostics::warning(const Location& at, std::string_view path, std::string_view what) {
  std::string text;
  if (!path.empty()) text.append(path).append(": ");
  warnings_.push_back({at, text.append(what)});
}

void Diagnostics::error_lines(const Location& at, std::string_view path, std::string_view report) {
  while (!report.empty()) {
    const size_t nl = report.find('\n');
    error(at, path, report.substr(0, nl));
    report.remove_prefix(nl == std::string_view::npos ? report.size() : nl + 1);
  }
}

std::vector<std::string> Diagnostics::sorted_lines(const std::vector<Message>& messages) {
  std::vector<const Message*> sorted;
  sorted.reserve(messages.size());
  for (const Message& m : messages) sorted.push_back(&m);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Message* a, const Message* b) {
    return std::tie(a->at.line, a->at.column) < std::tie(b->at.line, b->at.column);
  });
  std::vector<std::string> lines;
  lines.reserve(sorted.size());
  for (const Message* m : sorted) lines.push_back(m->at.prefix + m->text);
  return lines;
}

std::string Diagnostics::error_report() const {
  std::string report;
  for (const std::string& line : sorted_lines(errors_)) {
    if (!report.empty()) report += '\n';
    report += line;
  }
  return report;
}

std::vector<std::string> Diagnostics::warning_lines() const { return sorted_lines(warnings_); }

std::string quote(std::string_view s) {
  // Control bytes (ESC, NUL, ...) are written as \xNN: a message quoting
  // input goes to logs and terminals (issue 15: a pod name cleared the
  // screen of whoever listed it).
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out + '"';
}

bool is_plain(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return c == '"' || c == '\\' || u < 0x20 || u == 0x7f;
  });
}

std::string plain_or_quoted(std::string_view s) { return is_plain(s) ? std::string(s) : quote(s); }

std::string input_key_path(std::string_view path, std::string_view key) {
  if (is_plain(key)) return key_path(path, key);
  return std::string(path).append(1, '[').append(quote(key)).append(1, ']');
}

// Both are made for every table and array element a config has (~100k
// at 10k services): one allocation each, of the right size.
std::string key_path(std::string_view path, std::string_view key) {
  std::string out;
  out.reserve(path.size() + 1 + key.size());
  out.append(path);
  if (!out.empty()) out += '.';
  return out.append(key);
}

std::string element_path(std::string_view path, size_t i) {
  char digits[20];
  const size_t n = static_cast<size_t>(std::to_chars(digits, digits + sizeof digits, i).ptr - digits);
  std::string out;
  out.reserve(path.size() + n + 2);
  return out.append(path).append(1, '[').append(digits, n).append(1, ']');
}

std::string expected_found(std::string_view expected, std::string_view found) {
  std::string out = "expected ";
  return out.append(expected).append(", found ").append(found);
}

}  // namespace podgate::ctl
