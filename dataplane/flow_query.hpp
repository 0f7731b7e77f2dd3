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
// Hand-over: the control thread writes the question and stores kAsked
// (release); the worker sees it (acquire), answers, and stores kAnswered
// (release); the control thread reads the answer (acquire) and stores kIdle.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>

#include "dataplane/dp_memory.hpp"
#include "dataplane/flow_table.hpp"

namespace podgate::dp {

// Zero fields match anything.
struct FlowFilter {
  Ip4 vip;
  rte_be16_t vip_port = 0;
  Ip4 client;
  Ip4 endpoint;
  Proto proto{};  // 0: either

  bool matches(const Flow& f) const noexcept {
    return (vip.is_zero() || f.vip == vip) && (vip_port == 0 || f.vip_port == vip_port) &&
           (client.is_zero() || f.client == client) &&
           (endpoint.is_zero() || f.pod == endpoint) &&
           (proto == Proto{} || f.proto == proto);
  }
};

// One connection.
struct FlowRecord {
  FlowKey4 key;                // client -> VIP
  Ip4 endpoint;                // the Pod it is pinned to
  rte_be16_t endpoint_port = 0;
  FlowState state = FlowState::kFree;
  uint32_t expires_in_ms = 0;
};

class FlowQuery {
 public:
  static constexpr uint32_t kMaxRecords = 10000;
  static constexpr uint32_t kFlowsPerPoll = 4096;  // 128 KiB of flow records per poll

  FlowQuery() : records_(kMaxRecords) {}

  // ---- control thread ----
  // Posts a question; false while the previous one is not collected.
  bool ask(const FlowFilter& filter, uint32_t limit) noexcept {
    if (state_.load(std::memory_order_acquire) != kIdle) return false;
    filter_ = filter;
    limit_ = limit < kMaxRecords ? limit : kMaxRecords;
    state_.store(kAsked, std::memory_order_release);
    return true;
  }
  bool answered() const noexcept { return state_.load(std::memory_order_acquire) == kAnswered; }
  std::span<const FlowRecord> records() const noexcept { return {records_.data(), count_}; }
  uint64_t matched() const noexcept { return matched_; }  // also beyond the limit
  void collect() noexcept { state_.store(kIdle, std::memory_order_release); }

  // ---- worker ----
  bool asked() const noexcept { return state_.load(std::memory_order_acquire) == kAsked; }
  // Scans the next slice of `table`; answers when the whole table is done.
  void step(const FlowTable& table, uint32_t now) noexcept {
    if (scanned_ == 0) {
      count_ = 0;
      matched_ = 0;
      cursor_ = 0;
    }
    const uint32_t left = table.capacity() - scanned_;
    const uint32_t n = left < kFlowsPerPoll ? left : kFlowsPerPoll;
    cursor_ = table.for_each_live_in(cursor_, n, now, [&](const Flow& f) {
      if (!filter_.matches(f)) return;
      ++matched_;
      if (count_ < limit_) {
        records_[count_++] = FlowRecord{f.forward_key(), f.pod, f.pod_port, f.state, f.expires - now};
      }
    });
    scanned_ += n;
    if (scanned_ == table.capacity()) {
      scanned_ = 0;
      state_.store(kAnswered, std::memory_order_release);
    }
  }

 private:
  enum : uint32_t { kIdle, kAsked, kAnswered };

  alignas(64) std::atomic<uint32_t> state_{kIdle};
  FlowFilter filter_;
  uint32_t limit_ = 0;
  uint32_t count_ = 0;
  uint64_t matched_ = 0;
  uint32_t cursor_ = 0;
  uint32_t scanned_ = 0;
  DpVector<FlowRecord> records_;
};

}  // namespace podgate::dp
