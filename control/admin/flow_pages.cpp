#include "control/admin/flow_pages.hpp"

#include <algorithm>
#include <charconv>

namespace podgate::ctl {

namespace {

constexpr std::string_view kCursorVersion = "1:";

Error not_a_cursor(std::string_view text) {
  return make_error(ErrorCode::kInvalidRequest,
                    "\"after\": \"" + std::string(text.substr(0, 64)) +
                        "\" is not a cursor (send \"\" for the first page, then the last reply's \"next\")");
}

}  // namespace

bool FlowCursor::done() const noexcept {
  return std::all_of(positions.begin(), positions.end(), [](uint64_t p) { return p == kDone; });
}

std::string cursor_text(const FlowCursor& cursor) {
  std::string text(kCursorVersion);
  for (size_t w = 0; w < cursor.positions.size(); ++w) {
    if (w != 0) text.push_back('.');
    const uint64_t p = cursor.positions[w];
    if (p == FlowCursor::kDone) {
      text.push_back('-');
      continue;
    }
    char buf[16];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, p, 16);
    text.append(buf, end);
  }
  return text;
}

Result<FlowCursor> parse_cursor(std::string_view text, size_t workers) {
  if (text.empty()) return FlowCursor::start(workers);
  if (!text.starts_with(kCursorVersion)) return not_a_cursor(text);
  FlowCursor c;
  std::string_view rest = text.substr(kCursorVersion.size());
  while (true) {
    const size_t dot = rest.find('.');
    const std::string_view part = rest.substr(0, dot);
    if (part == "-") {
      c.positions.push_back(FlowCursor::kDone);
    } else {
      uint64_t p = 0;
      auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), p, 16);
      if (part.empty() || ec != std::errc() || end != part.data() + part.size() || p == FlowCursor::kDone) {
        return not_a_cursor(text);
      }
      c.positions.push_back(p);
    }
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  if (c.positions.size() != workers) {
    return make_error(ErrorCode::kInvalidRequest,
                      "\"after\": the cursor is for " + std::to_string(c.positions.size()) +
                          " worker(s), this podgate has " + std::to_string(workers) +
                          " (a cursor is only good for the podgate that gave it)");
  }
  return c;
}

PageCut cut_flow_page(std::span<const WorkerFlow> answers, std::span<const uint64_t> stopped_at,
                      size_t limit) {
  const size_t workers = stopped_at.size();
  std::vector<std::vector<size_t>> of(workers);  // worker -> its answers, in order
  for (size_t i = 0; i < answers.size(); ++i) {
    if (answers[i].first < workers) of[answers[i].first].push_back(i);
  }
  // In turn, one flow from each worker that has one left, until the page is
  // full: a worker's share is min(its flows, what the others leave).
  std::vector<size_t> take(workers, 0);
  size_t room = limit;
  for (bool took = true; took && room != 0;) {
    took = false;
    for (size_t w = 0; w < workers && room != 0; ++w) {
      if (take[w] < of[w].size()) {
        ++take[w];
        --room;
        took = true;
      }
    }
  }
  PageCut cut;
  cut.next.positions.resize(workers);
  for (size_t w = 0; w < workers; ++w) {
    cut.shown.insert(cut.shown.end(), of[w].begin(), of[w].begin() + static_cast<ptrdiff_t>(take[w]));
    // From the first flow not shown, so that it is shown next time.
    cut.next.positions[w] = take[w] < of[w].size() ? answers[of[w][take[w]]].second.position : stopped_at[w];
  }
  return cut;
}

}  // namespace podgate::ctl
