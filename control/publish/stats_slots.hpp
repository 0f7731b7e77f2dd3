// Stats slots: which TrafficCounters slot (dataplane/worker_counters.hpp)
// counts each endpoint of each service port, so per-service and per-endpoint
// statistics survive snapshot changes and never go backwards.
//
// A slot belongs to one (VIP port, endpoint) key for as long as the key is
// in the published snapshot; an endpoint that leaves and comes back keeps
// its slot.  A released slot is quarantined for `quarantine_ms` (the longest
// flow timeout plus a margin) before another key may take it, because flow
// entries of the old endpoint still carry it until they end; once nothing can
// count into it any more, its final totals fold into its VIP port's
// "retired" totals, so a VIP port's counters stay monotonic as its Pods come
// and go.  A slot taken again starts from a baseline (its totals at that
// moment): the workers' counters are never written by the control thread.
//
// What `stats` and /metrics report is a service port's (ServicePortId:
// {"namespace/name", port, protocol}), not a VIP port's: a service port
// counts the VIP ports of its cluster IPs, and those change (a dual-stack
// service made single-stack, a VIP of a deleted service given to another).
// So a service port keeps totals of its own: a VIP port that leaves it
// leaves what it counted there behind ("carried"), and a VIP port new to
// it joins from a baseline, its endpoints' slots too, so it brings
// nothing of a service it counted for before.  (What a VIP port counts
// after it left, from flows that outlive the change, is in its own totals
// only.)  A service port no longer in
// the snapshot (its service deleted, made headless, the port removed) is
// forgotten: created again, it starts from 0, after a gap in its series
// that Prometheus reads as the counter reset it is.  The snapshot builder
// says which service ports have which VIP ports (claim(), unclaim()); like
// slot_for(), that takes effect when the snapshot is published
// (commit_taken()) and is dropped if it is not (abandon()).
//
// Control thread only.  Pure bookkeeping: the counters are read through the
// `read` function given at construction, which sums a slot over workers.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/snapshot.hpp"
#include "dataplane/worker_counters.hpp"

namespace podgate::ctl {

// One slot's counters summed over workers (or a sum of slots).
struct TrafficTotals {
  uint64_t packets_in = 0;
  uint64_t bytes_in = 0;
  uint64_t packets_out = 0;
  uint64_t bytes_out = 0;
  uint64_t flows_created = 0;
  uint64_t flows_ended = 0;

  // One worker's counters of a slot, read with relaxed loads.
  static TrafficTotals of(const dp::TrafficCounters& c) noexcept {
    return TrafficTotals{c.packets_in.get(),    c.bytes_in.get(),      c.packets_out.get(),
                         c.bytes_out.get(),     c.flows_created.get(), c.flows_ended.get()};
  }
  // The difference taken modulo 2^64, as the sums are (a service port's
  // ended may run ahead of its created while connections that were open
  // when a VIP port joined it end): below zero reads 0.
  uint64_t flows_active() const noexcept {
    const uint64_t live = flows_created - flows_ended;
    return static_cast<int64_t>(live) > 0 ? live : 0;
  }
  TrafficTotals& operator+=(const TrafficTotals& o) noexcept;
  TrafficTotals& operator-=(const TrafficTotals& o) noexcept;
  friend bool operator==(const TrafficTotals&, const TrafficTotals&) = default;
};

// A service port of either family, as the slots key it.
struct SlotService {
  dp::IpAddr vip;
  rte_be16_t port = 0;  // network order, as the dataplane's keys
  dp::Proto proto = dp::Proto::kTcp;
  friend auto operator<=>(const SlotService&, const SlotService&) = default;

  template <class A>
  static SlotService of(const dp::BasicServiceKey<A>& k) noexcept {
    return SlotService{ip_addr(k.vip), k.port, k.proto};
  }
  template <class A>
  static SlotService of(const dp::BasicServiceData<A>& d) noexcept {
    return SlotService{ip_addr(d.vip), d.port, d.proto};
  }
  static dp::IpAddr ip_addr(dp::Ip4 ip) noexcept { return dp::IpAddr::v4(ip); }
  static dp::IpAddr ip_addr(const dp::Ip6& ip) noexcept { return dp::IpAddr::v6(ip); }
};

// (service port, endpoint): what a slot counts.  An endpoint is of its
// service port's family (there is no NAT46).
struct SlotKey {
  SlotService service;
  dp::IpAddr ip;
  rte_be16_t port = 0;  // the target port, network order
  friend auto operator<=>(const SlotKey&, const SlotKey&) = default;

  template <class A>
  static SlotKey of(const SlotService& service, const dp::BasicBackend<A>& b) noexcept {
    return SlotKey{service, SlotService::ip_addr(b.ip), b.port};
  }
};

// A service port as `stats` and /metrics name it, whatever its VIPs.
struct ServicePortId {
  std::string service;  // "namespace/name"
  uint16_t port = 0;    // the service port, host order
  dp::Proto proto = dp::Proto::kTcp;
  friend auto operator<=>(const ServicePortId&, const ServicePortId&) = default;
};

class StatsSlots {
 public:
  using Reader = std::function<TrafficTotals(uint16_t slot)>;

  // Slots 1..capacity-1 are handed out (0 is the untracked sink).
  StatsSlots(Reader read, uint64_t quarantine_ms, uint32_t capacity = dp::kStatsSlots);

  // The slot of an endpoint of a service port (either family): its own, a
  // quarantined one revived, or a free one; kUntrackedSlot when all are
  // taken (counted in exhausted()).
  template <class A>
  uint16_t slot_for(const dp::BasicServiceKey<A>& service, const dp::BasicBackend<A>& backend) {
    return slot_for(SlotKey::of(SlotService::of(service), backend));
  }
  uint16_t slot_for(const SlotKey& key);

  // After `snap` is published: every key it does not use is released into
  // quarantine (from now_ms), and quarantines that are over are reclaimed.
  void retain(const dp::Snapshot& snap, uint64_t now_ms);

  // retain() for an incremental snapshot build: only the keys of `dropped`
  // (per-service data the previous snapshot had and `snap` has not) are
  // looked at, O(what changed).
  template <class A>
  void release(const std::vector<std::shared_ptr<const dp::BasicServiceData<A>>>& dropped,
               const dp::Snapshot& snap, uint64_t now_ms);
  // While a snapshot is built: service port `port` has the VIP ports
  // `vips` (one per cluster IP) in it.
  void claim(ServicePortId port, std::vector<SlotService> vips);
  // While a snapshot is built: service port `port` of a service the
  // previous snapshot had is not in this one, unless claimed again.
  void unclaim(ServicePortId port);
  // While a snapshot is built whole: every service port it has is claimed;
  // the others are not in it.
  void claims_complete() noexcept { claims_complete_ = true; }

  // After a snapshot is published: what slot_for() took for it stays taken
  // (abandon() no longer undoes it), and its service ports count the VIP
  // ports claimed for them from now on.  Throws std::bad_alloc with the
  // slots kept and the claims dropped: build the next snapshot whole.
  void commit_taken();

  // A snapshot built but not published (refused, out of memory): every
  // slot_for() since the last commit_taken() is undone.  Keys it took go back to
  // the free list at once (no flow entry ever carried them) and keys it
  // revived from quarantine go back there with their old release time, so
  // a failed change leaves in_use() and quarantined() as they were.  Its
  // claims are dropped.
  void abandon();

  // Reclaims slots whose quarantine is over; call now and then.
  void reclaim(uint64_t now_ms);

  // The totals of an endpoint since its slot was taken; nullopt when the
  // key has no slot (not published, or slots exhausted).
  std::optional<TrafficTotals> endpoint(const SlotKey& key) const;
  template <class A>
  std::optional<TrafficTotals> endpoint(const dp::BasicServiceKey<A>& service,
                                        const dp::BasicBackend<A>& backend) const {
    return endpoint(SlotKey::of(SlotService::of(service), backend));
  }

  // The totals of a VIP port: its endpoints now and before, whichever
  // service port it counted for.
  TrafficTotals service(const SlotService& service) const;
  template <class A>
  TrafficTotals service(const dp::BasicServiceKey<A>& service) const {
    return this->service(SlotService::of(service));
  }

  // The totals of a service port since it was first published: its VIP
  // ports now and before; zeros for one not published.
  TrafficTotals service_port(const ServicePortId& port) const;

  size_t in_use() const noexcept { return by_key_.size() - quarantined_count_; }
  size_t quarantined() const noexcept { return quarantined_count_; }
  uint64_t exhausted() const noexcept { return exhausted_; }

 private:
  struct Slot {
    uint16_t index = 0;
    TrafficTotals base;                  // totals when the slot was taken
    std::optional<uint64_t> released_ms; // quarantined since
  };
  TrafficTotals totals(const Slot& s) const;

  // A service port's totals: carried + what each of its VIP ports counted
  // since it joined.
  struct PortCount {
    TrafficTotals carried;  // of VIP ports it had before
    std::vector<std::pair<SlotService, TrafficTotals>> vips;  // with their totals when they joined
  };
  // `count` has the VIP ports `vips` from now on.
  void count_vips(PortCount& count, const std::vector<SlotService>& vips);
  // The endpoints' slots of a VIP port joining a service port start from a
  // baseline; what they counted so far stays the VIP port's (retired).
  void rebase(const SlotService& service);

  Reader read_;
  uint64_t quarantine_ms_;
  std::map<SlotKey, Slot> by_key_;      // in use and quarantined
  std::vector<uint16_t> free_;          // never used, or reclaimed
  std::map<SlotService, TrafficTotals> retired_;
  std::map<ServicePortId, PortCount> ports_;
  size_t quarantined_count_ = 0;
  uint64_t exhausted_ = 0;
  // What slot_for() changed since the last commit_taken(), for abandon().
  struct Taken {
    SlotKey key;
    std::optional<uint64_t> was_released_ms;  // revived from quarantine; nullopt: newly taken
  };
  std::vector<Taken> since_commit_;
  // What claim(), unclaim() and claims_complete() said since then.
  std::vector<std::pair<ServicePortId, std::vector<SlotService>>> claims_;
  std::vector<ServicePortId> unclaims_;
  bool claims_complete_ = false;
};

}  // namespace podgate::ctl
