// Per-worker counters (style habit 5): one writer (the worker), cache-line
// aligned so workers never share a line, read by the control thread with
// relaxed loads to aggregate statistics.  The writer increments with a
// relaxed load+store, which compiles to a load, an add and a store: no
// locked instruction.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "dataplane/drop_reason.hpp"

namespace podgate::dp {

class Counter {
 public:
  void add(uint64_t n = 1) noexcept {  // owner only
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void set(uint64_t v) noexcept { v_.store(v, std::memory_order_relaxed); }  // gauges
  uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

#define PODGATE_WORKER_COUNTERS(X)                                     \
  X(rx_packets, "packets received from ports")                        \
  X(tx_packets, "packets handed to ports for transmission")           \
  X(handoff_out, "packets passed to the worker that owns their flow") \
  X(handoff_in, "packets received from other workers")                \
  X(punted, "packets passed to the control thread")                   \
  X(to_kernel, "packets passed up to a port's kernel twin (exception path)") \
  X(adjacency_misses, "packets whose next hop was not in the adjacency caches (route or router entry looked up)") \
  X(flows_created, "new connections pinned in the flow table")        \
  X(flows_table_full, "new flows forwarded by Maglev alone (table full)") \
  X(flows_picked_up, "TCP flows first seen mid-stream (moved here by ECMP, or a restart): pinned as established") \
  X(replies_stateless, "replies without a flow entry, reverse-NATed by backend") \
  X(flows_revalidated, "flows rechecked after a snapshot change")     \
  X(flows_endpoint_gone, "flows dropped because their endpoint left") \
  X(flows_reopened, "TCP flows a client's SYN reopened after FIN or RST (its port reused): placed anew") \
  X(flows_expired, "flow entries freed by expiry")                    \
  X(flow_entries, "connections in the flow table (gauge)")            \
  X(arp_replies, "ARP requests answered")                             \
  X(neighbors_forgotten, "neighbours forgotten: no answer to unicast ARP probes (control thread)") \
  X(icmp_echo_replies, "ICMP echo requests answered")                 \
  X(icmp_errors_translated, "ICMP errors about a connection translated and forwarded") \
  X(icmp_errors_sent, "ICMP errors podgate sent (time exceeded, fragmentation needed)") \
  X(icmp_errors_rate_limited, "ICMP errors not sent: over the per-worker rate, or no mbuf") \
  X(snapshots_adopted, "snapshots taken from the control thread")     \
  X(idle_waits, "sleeps of an idle worker until an RX interrupt, its doorbell or 10 ms ([dataplane] rx_interrupts)") \
  X(rx_interrupt_wakes, "sleeps a port's RX interrupt ended")         \
  X(doorbell_wakes, "sleeps another worker's handoff or the control thread ended")

struct alignas(64) WorkerCounters {
#define PODGATE_X(name, help) Counter name;
  PODGATE_WORKER_COUNTERS(PODGATE_X)
#undef PODGATE_X
  std::array<Counter, kDropReasonCount> drops;

  void drop(DropReason r) noexcept { drops[static_cast<size_t>(r)].add(); }
  uint64_t dropped() const noexcept {
    uint64_t n = 0;
    for (const Counter& c : drops) n += c.get();
    return n;
  }
};

// Traffic of one endpoint of one service port ("stats slot"), per worker:
// what the `stats` command and /metrics report per service and endpoint.
// Flow entries carry their slot (FlowEntry::stats_slot), so counting costs
// the packet path two adds on one line.  A flow is created and ended on the
// same worker (its owner), so per slot, active flows = created - ended summed
// over workers; no gauge has to be kept exact across workers.
struct alignas(64) TrafficCounters {
  Counter packets_in;   // client -> Pod packets NATed (frame bytes below)
  Counter bytes_in;
  Counter packets_out;  // Pod -> client packets reverse-NATed
  Counter bytes_out;
  Counter flows_created;
  Counter flows_ended;  // freed: expired, closed, or endpoint gone
};
static_assert(sizeof(TrafficCounters) == 64);

// Slots are numbered 1..kStatsSlots-1; slot 0 is the sink of everything not
// tracked (slots exhausted, flows refused by a full table) and never reported.
inline constexpr uint32_t kStatsSlots = 65536;
inline constexpr uint16_t kUntrackedSlot = 0;

}  // namespace podgate::dp
