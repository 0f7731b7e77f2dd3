// Per-worker connection tracking (architecture decision 3).
//
// A flow entry pins a connection to the Pod Maglev chose when it started, for
// the connection's life, also across endpoint changes (Maglev, NSDI'16 §3.3).
// Each connection has two entries in the same table: a forward entry keyed by
// the client's packet (client, VIP, client port, VIP port, proto) holding the
// Pod to rewrite the destination to, and a reverse entry keyed by the Pod's
// reply (Pod, client, target port, client port, proto) holding the VIP to
// rewrite the source back to.
//
// Ownership: one table per worker, touched only by that worker (no locks, no
// atomics).  The control thread never reads it directly; the control socket
// asks the worker, which calls for_each_live().
//
// Layout (the VPP lb sticky table's idea, with full keys): buckets of
// kSlotsPerBucket 32-byte entries, 64-byte aligned, and 2-choice hashing
// without displacement: a key may live in one of two buckets chosen by two
// hashes, and an insert goes to the one holding fewer live entries
// (Azar, Broder, Karlin, Upfal, "Balanced Allocations", 1994).  A lookup
// reads at most two buckets; nothing is ever moved, so a FlowEntry* stays
// valid until the entry is erased, expires or is overwritten.  Memory is one
// DpVector allocated by the constructor, never again.  Expired entries are
// freed lazily: when a lookup meets one, when an insert reuses its slot, and
// by expire_some(), which the worker calls once per loop with a small budget;
// nothing on the packet path scans the table.
//
// Time is a uint32 count of milliseconds that wraps after ~49.7 days; every
// comparison is wrap-safe (RFC 1982 serial arithmetic), so timeouts must be
// below 2^31 ms (~24.8 days).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <rte_byteorder.h>

#include "dataplane/dp_memory.hpp"
#include "dataplane/net.hpp"
#include "dataplane/worker_counters.hpp"

namespace podgate::dp {

// The 5-tuple of a packet as seen on the wire, in network byte order.
// Exactly 16 bytes so that equality is two 64-bit compares; pad must stay
// zero (it takes part in the compare and the hash).
struct FlowKey4 {
  Ip4 src;
  Ip4 dst;
  rte_be16_t sport = 0;
  rte_be16_t dport = 0;
  Proto proto = Proto::kTcp;
  uint8_t pad[3] = {};

  friend bool operator==(const FlowKey4& a, const FlowKey4& b) noexcept {
    return std::memcmp(&a, &b, sizeof(FlowKey4)) == 0;
  }
};
static_assert(sizeof(FlowKey4) == 16, "FlowKey4 is compared as two uint64");
static_assert(std::has_unique_object_representations_v<FlowKey4>,
              "FlowKey4 must have no implicit padding: it is hashed bytewise");

enum class FlowState : uint8_t {
  kFree,            // slot unused
  kTcpSynSent,      // handshake in progress: short timeout
  kTcpEstablished,  // long timeout
  kTcpClosing,      // FIN or RST seen: short timeout
  kUdp,
};

struct FlowTimeouts {
  uint32_t tcp_syn_ms = 30'000;
  uint32_t tcp_established_ms = 900'000;
  uint32_t tcp_closing_ms = 10'000;
  uint32_t udp_ms = 300'000;
};

// Wrap-safe "deadline has passed": true from `expires` on (RFC 1982).
constexpr bool is_expired(uint32_t expires, uint32_t now) noexcept {
  return static_cast<int32_t>(expires - now) <= 0;
}

// The first 13 bytes of an entry are its key's significant bytes, laid out
// as in FlowKey4; bytes 13..15, where a FlowKey4 has its zero pad, hold the
// entry's state and flags instead.  Lookups compare the first 13 bytes only
// (one mask on the second word), which leaves room in 32 bytes for the
// entry's stats slot.
struct FlowEntry {
  static constexpr uint8_t kReverse = 0x01;  // flags: keyed by the Pod's reply

  Ip4 src;                     // the key: as in FlowKey4
  Ip4 dst;
  rte_be16_t sport = 0;
  rte_be16_t dport = 0;
  Proto proto = Proto::kTcp;
  FlowState state = FlowState::kFree;  // in FlowKey4's pad
  uint8_t flags = 0;
  uint8_t reserved = 0;
  Ip4 nat_ip;                  // forward: Pod address; reverse: VIP
  rte_be16_t nat_port = 0;     // forward: target port; reverse: VIP port
  uint16_t stats_slot = 0;     // TrafficCounters of its endpoint (worker_counters.hpp)
  uint32_t expires = 0;        // ms ticks, wrap-safe, see is_expired()
  uint32_t gen = 0;            // snapshot generation last validated against

  FlowKey4 key() const noexcept { return FlowKey4{src, dst, sport, dport, proto}; }
  bool is_reverse() const noexcept { return (flags & kReverse) != 0; }
  bool is_free() const noexcept { return state == FlowState::kFree; }
  bool is_live(uint32_t now) const noexcept {
    return !is_free() && !is_expired(expires, now);
  }
};
static_assert(sizeof(FlowEntry) == 32, "two entries per cache line");
static_assert(offsetof(FlowEntry, proto) == offsetof(FlowKey4, proto) &&
                  offsetof(FlowEntry, state) == offsetof(FlowKey4, pad),
              "an entry starts with its key's 13 significant bytes");

class FlowTable {
 public:
  // 4 entries = 128 bytes = two cache lines per bucket.  Offered as many keys
  // as slots, 2 choices of 4-entry buckets accept 92% of them, 2 choices of
  // 2-entry buckets (one line each) only 85.5%, one 4-entry bucket 80.6%
  // (balls-into-bins simulation; flow_table_test measures this table).
  // Under churn (flows ending while others start) refusals start earlier:
  // simulated at a steady live load of 0.4 / 0.5 / 0.6 / 0.7, 0.007% / 0.2% /
  // 1.7% / 7% of inserts are refused.  Size the table at about twice the
  // entries expected live (four per concurrent connection): 128 bytes per
  // connection.
  static constexpr uint32_t kSlotsPerBucket = 4;
  // Longest timeout the wrap-safe comparison can represent.
  static constexpr uint32_t kMaxTimeoutMs = 0x7fff'ffff;

  // `capacity` counts entries (a connection takes two); it is rounded up to a
  // whole number of buckets (at least two).  Throws std::invalid_argument
  // when capacity is 0 or a timeout is 0 or above kMaxTimeoutMs (config
  // validation reports these first), std::bad_alloc when memory is short.
  FlowTable(uint32_t capacity, FlowTimeouts timeouts);

  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  // The key's hash; lets a worker hash a burst once, prefetch, then look up.
  static uint32_t hash(const FlowKey4& key) noexcept;
  void prefetch(uint32_t hash) const noexcept;

  // The live entry for key, or nullptr.  An expired entry met on the way is
  // freed on the spot.
  FlowEntry* find(const FlowKey4& key, uint32_t now) noexcept {
    return find(key, hash(key), now);
  }
  FlowEntry* find(const FlowKey4& key, uint32_t hash, uint32_t now) noexcept;

  // Inserts the entry for key, or overwrites it when the key is present (live
  // or expired).  expires = now + timeout(state).  nullptr when both of the
  // key's buckets are full of live entries: the caller then forwards by
  // Maglev alone and counts it.
  // `stats_slot` names the endpoint's TrafficCounters.
  FlowEntry* insert(const FlowKey4& key, Ip4 nat_ip, rte_be16_t nat_port,
                    FlowState state, bool reverse, uint32_t gen, uint32_t now,
                    uint16_t stats_slot = kUntrackedSlot) noexcept {
    return insert(key, hash(key), nat_ip, nat_port, state, reverse, gen, now, stats_slot);
  }
  FlowEntry* insert(const FlowKey4& key, uint32_t hash, Ip4 nat_ip,
                    rte_be16_t nat_port, FlowState state, bool reverse,
                    uint32_t gen, uint32_t now,
                    uint16_t stats_slot = kUntrackedSlot) noexcept;

  // Where the end of each forward entry (a connection) is counted:
  // slots[e.stats_slot].flows_ended, whatever ends it (erase, expiry,
  // reuse of an expired slot).  Null (the default): not counted.
  void count_ends_in(TrafficCounters* slots) noexcept { ended_ = slots; }

  // Advances the entry's state with one packet of its direction and sets
  // expires = now + timeout(new state).  tcp_flags is the TCP header's flag
  // byte (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10); ignored for UDP.
  void touch(FlowEntry& e, uint8_t tcp_flags, uint32_t now) noexcept;

  void erase(FlowEntry& e) noexcept;

  // Examines at most `budget` buckets (and never one twice in a call) from a
  // rotating cursor, freeing the expired entries there; returns how many.
  uint32_t expire_some(uint32_t now, uint32_t budget) noexcept;

  // Occupied slots, including expired entries not yet freed.
  uint32_t size() const noexcept { return size_; }
  uint32_t capacity() const noexcept { return n_buckets_ * kSlotsPerBucket; }
  uint32_t bucket_count() const noexcept { return n_buckets_; }
  uint32_t timeout_ms(FlowState s) const noexcept {
    switch (s) {
      case FlowState::kTcpSynSent: return timeouts_.tcp_syn_ms;
      case FlowState::kTcpEstablished: return timeouts_.tcp_established_ms;
      case FlowState::kTcpClosing: return timeouts_.tcp_closing_ms;
      case FlowState::kUdp: return timeouts_.udp_ms;
      case FlowState::kFree: break;
    }
    return 0;
  }

  // Calls fn(const FlowEntry&) for every live entry of `count` buckets from
  // `first` (wrapping at the end); returns the bucket after the last one.
  // A slice of a scan spread over many polls (the `flows` command).
  template <typename Fn>
  uint32_t for_each_live_in(uint32_t first, uint32_t count, uint32_t now, Fn&& fn) const {
    uint32_t b = first;
    for (uint32_t i = 0; i < count; ++i) {
      for (const FlowEntry& e : buckets_[b].slots) {
        if (e.is_live(now)) fn(e);
      }
      b = (b + 1 == n_buckets_) ? 0 : b + 1;
    }
    return b;
  }

  // Calls fn(const FlowEntry&) for every live entry.  A full scan: control
  // requests only, never on the packet path.
  template <typename Fn>
  void for_each_live(uint32_t now, Fn&& fn) const {
    for (const Bucket& b : buckets_) {
      for (const FlowEntry& e : b.slots) {
        if (e.is_live(now)) fn(e);
      }
    }
  }

 private:
  struct alignas(64) Bucket {
    FlowEntry slots[kSlotsPerBucket];
  };

  uint32_t first_bucket(uint32_t hash) const noexcept;
  uint32_t second_bucket(uint32_t hash, uint32_t first) const noexcept;
  void free_slot(FlowEntry& e) noexcept;
  void count_end(const FlowEntry& e) noexcept;

  DpVector<Bucket> buckets_;
  uint32_t n_buckets_ = 0;
  uint32_t size_ = 0;
  uint32_t cursor_ = 0;  // next bucket expire_some() examines
  FlowTimeouts timeouts_;
  TrafficCounters* ended_ = nullptr;
};

}  // namespace podgate::dp
