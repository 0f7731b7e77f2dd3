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

  static FlowRecord of(const Flow& f, uint32_t now) noexcept {
    return FlowRecord{f.proto, IpAddr::v4(f.client), f.client_port, IpAddr::v4(f.vip), f.vip_port,
                      IpAddr::v4(f.pod),  f.pod_port,    f.state,     f.expires - now};
  }
  static FlowRecord of(const Flow6& f, uint32_t now) noexcept {
    return FlowRecord{f.proto, IpAddr::v6(f.client), f.client_port, IpAddr::v6(f.vip), f.vip_port,
                      IpAddr::v6(f.pod),  f.pod_port,    f.state,     f.expires - now};
  }
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
  // Scans the next slice of the IPv4 table, then of the IPv6 table;
  // answers when both are done.
  void step(const FlowTable& table, const FlowTable6& table6, uint32_t now) noexcept {
    if (scanned_ == 0) {
      count_ = 0;
      matched_ = 0;
      cursor_ = 0;
    }
    auto take = [&](const auto& f) {
      if (!filter_.matches(f)) return;
      ++matched_;
      if (count_ < limit_) records_[count_++] = FlowRecord::of(f, now);
    };
    if (scanned_ < table.capacity()) {
      const uint32_t left = table.capacity() - scanned_;
      const uint32_t n = left < kFlowsPerPoll ? left : kFlowsPerPoll;
      cursor_ = table.for_each_live_in(cursor_, n, now, take);
      scanned_ += n;
      if (scanned_ == table.capacity()) cursor_ = 0;
      return;
    }
    const uint32_t done6 = scanned_ - table.capacity();
    const uint32_t left = table6.capacity() - done6;
    const uint32_t n = left < kFlowsPerPoll ? left : kFlowsPerPoll;
    cursor_ = table6.for_each_live_in(cursor_, n, now, take);
    scanned_ += n;
    if (done6 + n == table6.capacity()) {
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
