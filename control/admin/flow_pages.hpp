// The `flows` command's pages (docs/control-protocol.md, "flows"): a
// listing of every matching flow, however many, a bounded page per request.
//
// Each worker scans its own tables forward from a position
// (dataplane/flow_query.hpp), so where a listing stands is one position per
// worker.  The reply carries them as an opaque cursor (`next`); the request
// after it sends the cursor back (`after`) and every worker goes on from its
// own position.  The server keeps nothing between pages: a client that
// stops following the cursors costs nothing, and other clients' requests
// are answered between its pages.
//
// A page holds at most `limit` flows in all: each worker is asked for up to
// `limit`, and cut_flow_page() takes them from the workers in turn (one
// each, round and round), so every worker with flows moves on.  A worker's
// next position is that of its first flow not shown (it is scanned again on
// the next page), or where its scan stopped when all were shown.  Positions
// only move forward and a flow never changes position, so a flow is shown
// once or, if it started or ended while the listing went on, possibly not
// at all: never twice.  Pure functions, control thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "control/result.hpp"
#include "dataplane/flow_query.hpp"

namespace podgate::ctl {

// One scan position per worker; kDone for a worker listed to its end.
struct FlowCursor {
  static constexpr uint64_t kDone = UINT64_MAX;
  std::vector<uint64_t> positions;

  // A first page: every worker from its start.
  static FlowCursor start(size_t workers) { return FlowCursor{std::vector<uint64_t>(workers, 0)}; }
  bool done() const noexcept;
  friend bool operator==(const FlowCursor&, const FlowCursor&) = default;
};

// The cursor as `next` carries it: "1:" then each worker's position in hex,
// '-' for one done, joined by '.' (e.g. "1:1f40.-.0").
std::string cursor_text(const FlowCursor& cursor);

// `after` as a request sends it: "" for the first page, or a `next`.  An
// error names what is wrong: not a cursor, or one for another worker count
// (from a podgate started with other workers).
Result<FlowCursor> parse_cursor(std::string_view text, size_t workers);

// The workers' answers to a page question as Appliance::FlowListing holds
// them: (worker, record), each worker's records in the order it found them
// (position order); and where each worker's scan stopped
// (dp::FlowQuery::position(), or FlowCursor::kDone at its end or for a
// worker not asked).
using WorkerFlow = std::pair<uint32_t, dp::FlowRecord>;

// The page: which answers it shows (indexes into them, worker by worker,
// each worker's first ones), and the cursor after it.
struct PageCut {
  std::vector<size_t> shown;
  FlowCursor next;
};
PageCut cut_flow_page(std::span<const WorkerFlow> answers, std::span<const uint64_t> stopped_at,
                      size_t limit);

}  // namespace podgate::ctl
