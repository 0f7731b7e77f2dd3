// The `flows` command's question to one worker: list the connections in its
// flow table that match a filter (docs/control-protocol.md).
//
// The flow table belongs to its worker alone (architecture decision 3), so
// the control thread never reads it: it posts a query here and the worker
// answers it a slice of flow records per poll, so that even a table of millions
// of entries is listed without holding the packet path for more than a few
// microseconds at a time.  The list is not an atomic snapshot of the table
// (conntrack -L is not either): a flow that starts or ends during the scan
// may or may not be in it.
//
// Two kinds of question:
// - ask(): the whole table is scanned; the first `limit` matches are kept
//   and every match is counted (`matched`).
// - ask_page(): the scan starts at a position and stops once `limit`
//   matches are kept (or at the end); each record says where it was found,
//   and position() says where the scan stopped.  The `flows` command's
//   pages (`after`/`next`) are made of these, so listing every flow costs
//   one pass over the table however many pages it takes.  A position
//   counts records: the IPv4 table's [0, capacity), then the IPv6 table's
//   after it.  Records never move (flow_table.hpp), so a flow is at one
//   position for its whole life: a scan that only moves forward finds it
//   once or, if it starts or ends behind the scan, not at all; never twice.
//
// Hand-over: the control thread writes the question and stores kAsked
// (release); the worker sees it (acquire), answers, and stores kAnswered
// (release); the control thread reads the answer (acquire) and stores kIdle.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>

#include "dataplane/dp_memory.hpp"
#include "dataplane/flow_table.hpp"

namespace podgate::dp {

// Absent and zero fields match anything.  Both families (issue 11): a
// service's flows are those to either of its VIPs (vip4, vip6); a client
// or endpoint of one family matches only that family's flows.
struct FlowFilter {
  std::optional<Ip4> vip4;
  std::optional<Ip6> vip6;
  bool by_vip = false;  // vip4/vip6 filter (a service); else any VIP
  rte_be16_t vip_port = 0;
  std::optional<IpAddr> client;
  std::optional<IpAddr> endpoint;
  Proto proto{};  // 0: either

  template <class F>
  bool matches(const F& f) const noexcept {
    constexpr bool kV6 = std::is_same_v<F, Flow6>;
    if (by_vip) {
      if constexpr (kV6) {
        if (!vip6 || !(f.vip == *vip6)) return false;
      } else {
        if (!vip4 || !(f.vip == *vip4)) return false;
      }
    }
    return (vip_port == 0 || f.vip_port == vip_port) && is(client, f.client) && is(endpoint, f.pod) &&
           (proto == Proto{} || f.proto == proto);
  }

 private:
  static bool is(const std::optional<IpAddr>& want, const Ip4& a) noexcept {
    return !want || (want->is_v4() && want->as_v4() == a);
  }
  static bool is(const std::optional<IpAddr>& want, const Ip6& a) noexcept {
    return !want || (want->is_v6() && want->as_v6() == a);
  }
};

// One connection, of either family.
struct FlowRecord {
  Proto proto = Proto::kTcp;
  IpAddr client;
  rte_be16_t client_port = 0;
  IpAddr vip;
  rte_be16_t vip_port = 0;
  IpAddr endpoint;  // the Pod it is pinned to
  rte_be16_t endpoint_port = 0;
  FlowState state = FlowState::kFree;
  uint32_t expires_in_ms = 0;
  uint64_t position = 0;  // where the worker's scan found it (FlowQuery)

  static FlowRecord of(const Flow& f, uint32_t now) noexcept {
    return FlowRecord{f.proto, IpAddr::v4(f.client), f.client_port, IpAddr::v4(f.vip), f.vip_port,
                      IpAddr::v4(f.pod),  f.pod_port,    f.state,     f.expires - now, 0};
  }
  static FlowRecord of(const Flow6& f, uint32_t now) noexcept {
    return FlowRecord{f.proto, IpAddr::v6(f.client), f.client_port, IpAddr::v6(f.vip), f.vip_port,
                      IpAddr::v6(f.pod),  f.pod_port,    f.state,     f.expires - now, 0};
  }
};

class FlowQuery {
 public:
  static constexpr uint32_t kMaxRecords = 10000;
  static constexpr uint32_t kFlowsPerPoll = 4096;  // 128 KiB of flow records per poll

  FlowQuery() : records_(kMaxRecords) {}

  // ---- control thread ----
  // Posts a question; false while the previous one is not collected.
  // The whole table, the first `limit` matches kept, every match counted.
  bool ask(const FlowFilter& filter, uint32_t limit) noexcept { return post(filter, limit, 0, false); }
  // From position `from` until `limit` matches are kept or the tables end.
  bool ask_page(const FlowFilter& filter, uint32_t limit, uint64_t from) noexcept {
    return post(filter, limit, from, true);
  }
  bool answered() const noexcept { return state_.load(std::memory_order_acquire) == kAnswered; }
  std::span<const FlowRecord> records() const noexcept { return {records_.data(), count_}; }
  uint64_t matched() const noexcept { return matched_; }  // ask(): also beyond the limit
  // ask_page(): where the scan stopped (the position after the last record
  // kept), and whether that is the end of both tables.
  uint64_t position() const noexcept { return position_; }
  bool finished() const noexcept { return finished_; }
  void collect() noexcept { state_.store(kIdle, std::memory_order_release); }

  // ---- worker ----
  bool asked() const noexcept { return state_.load(std::memory_order_acquire) == kAsked; }
  // Scans at most kFlowsPerPoll records: the next slice of the IPv4 table,
  // then of the IPv6 table; answers at the end, or when a page is full.
  void step(const FlowTable& table, const FlowTable6& table6, uint32_t now) noexcept {
    const uint64_t cap4 = table.capacity();
    const uint64_t end = cap4 + table6.capacity();
    uint32_t budget = kFlowsPerPoll;
    while (budget != 0 && position_ < end && !page_full()) {
      if (position_ < cap4) {
        budget -= scan(table, static_cast<uint32_t>(position_), 0, budget, now);
      } else {
        budget -= scan(table6, static_cast<uint32_t>(position_ - cap4), cap4, budget, now);
      }
    }
    if (position_ >= end || page_full()) {
      finished_ = position_ >= end;
      state_.store(kAnswered, std::memory_order_release);
    }
  }

 private:
  enum : uint32_t { kIdle, kAsked, kAnswered };

  bool post(const FlowFilter& filter, uint32_t limit, uint64_t from, bool page) noexcept {
    if (state_.load(std::memory_order_acquire) != kIdle) return false;
    filter_ = filter;
    limit_ = limit < kMaxRecords ? limit : kMaxRecords;
    page_ = page;
    position_ = from;
    finished_ = false;
    count_ = 0;
    matched_ = 0;
    state_.store(kAsked, std::memory_order_release);
    return true;
  }

  bool page_full() const noexcept { return page_ && count_ >= limit_; }

  // Scans table records from `first` (at position base + first) until
  // `budget` records are scanned, the table ends or a page is full; moves
  // position_ past them and returns how many were scanned.
  template <class Table>
  uint32_t scan(const Table& t, uint32_t first, uint64_t base, uint32_t budget, uint32_t now) noexcept {
    uint32_t i = first;
    const uint32_t cap = t.capacity();
    while (i < cap && i - first < budget && !page_full()) {
      t.for_each_live_in(i, 1, now, [&](const auto& f) {
        if (!filter_.matches(f)) return;
        ++matched_;
        if (count_ < limit_) {
          FlowRecord& r = records_[count_++];
          r = FlowRecord::of(f, now);
          r.position = base + i;
        }
      });
      ++i;
    }
    position_ = base + i;
    return i - first;
  }

  alignas(64) std::atomic<uint32_t> state_{kIdle};
  FlowFilter filter_;
  uint32_t limit_ = 0;
  bool page_ = false;
  bool finished_ = false;
  uint32_t count_ = 0;
  uint64_t matched_ = 0;
  uint64_t position_ = 0;  // the next record to scan
  DpVector<FlowRecord> records_;
};

}  // namespace podgate::dp
