// Per-worker connection tracking (architecture decision 3).
//
// A connection pins its client to the Pod Maglev chose when it started, for
// the connection's life, also across endpoint changes (Maglev, NSDI'16
// §3.3).  Each connection is one 32-byte Flow record, found by either of its
// two keys: the forward key of the client's packets (client, VIP, client
// port, VIP port, proto) and the reverse key of the Pod's replies (Pod,
// client, target port, client port, proto).
//
// Ownership: one table per worker, touched only by that worker (no locks, no
// atomics).  The control thread never reads it directly; the control socket
// asks the worker, which calls for_each_live_in().
//
// Layout (the idea of VPP lb's sticky table and of cuckoo-style hash
// indexes such as DPDK's rte_hash): records live in one array; an index of
// 64-byte buckets maps keys to records.  A bucket is one cache line of 8
// slots: 8 16-bit tags (taken from the key's hash; 0 = empty) compared at
// once with one SIMD compare, and 8 record references (record index << 1 |
// reverse).  A key may live in one of two distinct buckets, both taken from
// its hash (the second through a multiply, see second_bucket()).  An
// insert takes the first while it has a free slot, else the second; when
// both are full, one key moves to its other bucket (one cuckoo step, as in
// DPDK's rte_hash).  Each bucket counts the keys that chose it first but
// live in their second ("displaced"), so a lookup that finds no tag of its
// key in the first bucket reads the second only when that count is
// nonzero.  Most keys live in their first bucket (94% of a table filled
// once; 80% after long churn at full load, by simulation), so a lookup of
// an established flow reads one index line and one record line (two for
// an IPv6 record, 68 bytes; prefetch_record()), and a new key's lookup
// one index line where no key of its first bucket was displaced.  Records
// never move, so a Flow* stays valid until the flow is erased or expires.
//
// Memory: the index has one bucket per 3 connections (2 keys per connection
// at 75% slot occupancy with the table full), so a connection costs its
// 32-byte record plus 21.3 bytes of index, and 8 bytes of the half-open
// queue (below): 61.3 bytes.  Everything is allocated by the
// constructor, never again.  Free records form a list
// threaded through their `expires` field.
//
// Expiry is lazy: a lookup that meets an expired flow frees it, an insert
// that finds a bucket full frees the expired flows referenced there, and
// expire_some(), which the worker calls once per loop with a small budget,
// sweeps the records; nothing on the packet path scans the table.
// Half-open connections are the exception, because a SYN flood makes them
// fast: every flow pinned by a SYN is also queued, in order, with its
// deadline (all SYNs share one timeout, so the queue is in deadline order),
// and expire_half_open() frees them when they are due, wherever the sweep
// is.  Without it a table mostly full of long-lived connections gives its
// expired half-open records back only as fast as the sweep passes them:
// with 1M established flows and 64k spare records, a flood of SYNs with a
// 1 ms timeout found no free record for 29% of them (worker_bench).  The
// queue has an entry (8 bytes) for every record, so a flood whose
// half-open flows take every record is still freed on time.  (With
// entries for half the records, a 3.5 M/s flood with a 1 s SYN timeout
// outgrew the queue, and 7% of its SYNs found the table full.)  A record
// freed and taken again while its old entry waits is queued twice, so the
// queue can still fill; then its oldest entry is dropped, and that flow is
// left to the sweep.
//
// Time is a uint32 count of milliseconds that wraps after ~49.7 days; every
// comparison is wrap-safe (RFC 1982 serial arithmetic), so timeouts must be
// below 2^31 ms (~24.8 days).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <rte_byteorder.h>
#include <rte_prefetch.h>

#include "dataplane/checksum.hpp"
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
  kFree,            // record unused
  kTcpSynSent,      // handshake in progress: short timeout
  kTcpSynReceived,  // the Pod answered SYN+ACK, the client's ACK not yet seen: short timeout
  kTcpEstablished,  // long timeout
  kTcpClientFin,    // the client's FIN seen, the Pod's direction still open: FIN timeout
  kTcpPodFin,       // the Pod's FIN seen, the client's direction still open: FIN timeout
  kTcpClosing,      // both FINs, or a RST, seen: short timeout
  kUdp,
};

struct FlowTimeouts {
  uint32_t tcp_syn_ms = 30'000;
  uint32_t tcp_established_ms = 900'000;
  uint32_t tcp_closing_ms = 10'000;
  uint32_t udp_ms = 300'000;
  uint32_t tcp_fin_ms = 120'000;  // half-closed: one side's FIN seen (IPVS tcpfin, conntrack FIN_WAIT)
};

// Wrap-safe "deadline has passed": true from `expires` on (RFC 1982).
constexpr bool is_expired(uint32_t expires, uint32_t now) noexcept {
  return static_cast<int32_t>(expires - now) <= 0;
}

// One connection.  Its first 13 bytes are its forward key's significant
// bytes, laid out as in a FlowKey4, so a forward lookup compares two words.
struct Flow {
  Ip4 client;
  Ip4 vip;
  rte_be16_t client_port = 0;
  rte_be16_t vip_port = 0;
  Proto proto = Proto::kTcp;
  FlowState state = FlowState::kFree;
  uint16_t stats_slot = 0;     // TrafficCounters of its endpoint (worker_counters.hpp)
  Ip4 pod;                     // the endpoint it is pinned to
  rte_be16_t pod_port = 0;     // its target port
  uint16_t csum_addr = 0;      // the NAT's checksum term of vip -> pod (csum_term32(); insert() sets it)
  uint32_t expires = 0;        // ms ticks, wrap-safe, see is_expired(); free: next free record
  uint32_t gen = 0;            // snapshot generation last validated against

  using Key = FlowKey4;
  using Addr = Ip4;
  FlowKey4 forward_key() const noexcept { return FlowKey4{client, vip, client_port, vip_port, proto}; }
  FlowKey4 reverse_key() const noexcept { return FlowKey4{pod, client, pod_port, client_port, proto}; }
  bool is_free() const noexcept { return state == FlowState::kFree; }
  bool is_live(uint32_t now) const noexcept { return !is_free() && !is_expired(expires, now); }
  // Whether its forward (or reverse) key is `k`.
  static bool has_key(const Flow& f, bool reverse, const FlowKey4& k) noexcept;
};
static_assert(sizeof(Flow) == 32, "two flows per cache line");
static_assert(offsetof(Flow, proto) == offsetof(FlowKey4, proto) &&
                  offsetof(Flow, state) == offsetof(FlowKey4, pad),
              "a flow starts with its forward key's 13 significant bytes");
static_assert(std::endian::native == std::endian::little, "has_key's mask assumes little endian");

// The forward key compares two words: a flow starts with its forward key's
// 13 significant bytes.
inline bool Flow::has_key(const Flow& f, bool reverse, const FlowKey4& k) noexcept {
  if (!reverse) {
    // Bytes 13..15 of a flow are its state, a key's zero pad: masked off.
    constexpr uint64_t kHiMask = (uint64_t{1} << 40) - 1;
    uint64_t flo, fhi, klo, khi;
    std::memcpy(&flo, &f, 8);
    std::memcpy(&fhi, reinterpret_cast<const unsigned char*>(&f) + 8, 8);
    std::memcpy(&klo, &k, 8);
    std::memcpy(&khi, reinterpret_cast<const unsigned char*>(&k) + 8, 8);
    return ((flo ^ klo) | ((fhi ^ khi) & kHiMask)) == 0;
  }
  return f.pod == k.src && f.client == k.dst && f.pod_port == k.sport &&
         f.client_port == k.dport && f.proto == k.proto;
}


// The IPv6 5-tuple (issue 11), as FlowKey4: network order, pad zero.
struct FlowKey6 {
  Ip6 src;
  Ip6 dst;
  rte_be16_t sport = 0;
  rte_be16_t dport = 0;
  Proto proto = Proto::kTcp;
  uint8_t pad[3] = {};

  friend bool operator==(const FlowKey6& a, const FlowKey6& b) noexcept {
    return std::memcmp(&a, &b, sizeof(FlowKey6)) == 0;
  }
};
static_assert(sizeof(FlowKey6) == 40, "FlowKey6 is hashed as five uint64");
static_assert(std::has_unique_object_representations_v<FlowKey6>);

// One IPv6 connection: Flow's fields with 16-byte addresses (68 bytes).
struct Flow6 {
  Ip6 client;
  Ip6 vip;
  rte_be16_t client_port = 0;
  rte_be16_t vip_port = 0;
  Proto proto = Proto::kTcp;
  FlowState state = FlowState::kFree;
  uint16_t stats_slot = 0;
  Ip6 pod;
  rte_be16_t pod_port = 0;
  // The TCP/UDP checksum term of the client's packets' NAT, VIP:port ->
  // pod:pod_port (csum_delta_ip6_port(), set by the worker that pins the
  // connection); replies add its complement.
  uint16_t csum_delta = 0;
  uint32_t expires = 0;
  uint32_t gen = 0;

  using Key = FlowKey6;
  using Addr = Ip6;
  FlowKey6 forward_key() const noexcept { return FlowKey6{client, vip, client_port, vip_port, proto}; }
  FlowKey6 reverse_key() const noexcept { return FlowKey6{pod, client, pod_port, client_port, proto}; }
  bool is_free() const noexcept { return state == FlowState::kFree; }
  bool is_live(uint32_t now) const noexcept { return !is_free() && !is_expired(expires, now); }
  // Whether its forward (or reverse) key is `k`.
  static bool has_key(const Flow6& f, bool reverse, const FlowKey6& k) noexcept {
    if (!reverse) {
      return f.client == k.src && f.vip == k.dst && f.client_port == k.sport && f.vip_port == k.dport &&
             f.proto == k.proto;
    }
    return f.pod == k.src && f.client == k.dst && f.pod_port == k.sport && f.client_port == k.dport &&
           f.proto == k.proto;
  }
};

// The flow table's hash of a key: CRC32-C (seed 0x9e3779b9) over its 16
// (IPv4) or 40 (IPv6) bytes, the zero pad included.
//
// CRC32-C runs over bytes, so a key may be fed in pieces, in order, and is
// fed in the pieces it was written in, never as wider words: a worker
// writes a packet's key field by field just before hashing it, and a load
// wider than the stores it reads waits for them to retire (no store
// forwarding; reading the 40-byte IPv6 key as five words cost a new IPv6
// flow about a third of its cycles).  The same pieces hash a key from a
// flow's record, or from fields: freeing a flow hashes both of its keys,
// and pinning one hashes its reverse key.  The proto byte and the 3 zero
// pad bytes are one 32-bit piece.  flow_table_test holds every form to
// the bytes' CRC.
inline constexpr uint32_t kFlowHashSeed = 0x9e37'79b9;

// IPv4: both addresses as one word where they were written as one.
inline uint32_t key4_hash(uint64_t addrs, uint32_t ports, Proto proto) noexcept {
  return crc32c_u32(crc32c_u32(crc32c_u64(kFlowHashSeed, addrs), ports), static_cast<uint8_t>(proto));
}
inline uint32_t flow_key_hash(const FlowKey4& key) noexcept {
  uint64_t addrs;
  uint32_t ports;
  std::memcpy(&addrs, &key, 8);
  std::memcpy(&ports, &key.sport, 4);
  return key4_hash(addrs, ports, key.proto);
}
// FlowKey4{pod, client, pod_port, client_port, proto}.
inline uint32_t reverse_key_hash(Ip4 pod, Ip4 client, rte_be16_t pod_port, rte_be16_t client_port,
                                 Proto proto) noexcept {
  uint32_t h = crc32c_u32(kFlowHashSeed, pod.be);
  h = crc32c_u32(h, client.be);
  h = crc32c_u16(h, pod_port);
  h = crc32c_u16(h, client_port);
  return crc32c_u32(h, static_cast<uint8_t>(proto));
}
inline uint32_t key_hash_of(const Flow& f, bool reverse) noexcept {
  if (reverse) return reverse_key_hash(f.pod, f.client, f.pod_port, f.client_port, f.proto);
  // FlowKey4{client, vip, client_port, vip_port, proto}: the record's first
  // 13 bytes.
  uint64_t addrs;
  uint32_t ports;
  std::memcpy(&addrs, &f, 8);
  std::memcpy(&ports, &f.client_port, 4);
  return key4_hash(addrs, ports, f.proto);
}

// IPv6: FlowKey6{src, dst, sport, dport, proto}.
inline uint32_t key6_hash(const Ip6& src, const Ip6& dst, rte_be16_t sport, rte_be16_t dport,
                          Proto proto) noexcept {
  uint32_t h = crc32c_u64(kFlowHashSeed, src.word(0));
  h = crc32c_u64(h, src.word(1));
  h = crc32c_u64(h, dst.word(0));
  h = crc32c_u64(h, dst.word(1));
  h = crc32c_u16(h, sport);
  h = crc32c_u16(h, dport);
  return crc32c_u32(h, static_cast<uint8_t>(proto));
}
inline uint32_t flow_key_hash(const FlowKey6& key) noexcept {
  return key6_hash(key.src, key.dst, key.sport, key.dport, key.proto);
}
inline uint32_t reverse_key_hash(const Ip6& pod, const Ip6& client, rte_be16_t pod_port,
                                 rte_be16_t client_port, Proto proto) noexcept {
  return key6_hash(pod, client, pod_port, client_port, proto);
}
inline uint32_t key_hash_of(const Flow6& f, bool reverse) noexcept {
  if (reverse) return key6_hash(f.pod, f.client, f.pod_port, f.client_port, f.proto);
  return key6_hash(f.client, f.vip, f.client_port, f.vip_port, f.proto);
}

// A lookup's answer: the connection, and which of its keys matched.
template <class F>
struct BasicFlowHit {
  F* flow = nullptr;
  bool reverse = false;  // matched by the reverse key: a Pod's reply
  explicit operator bool() const noexcept { return flow != nullptr; }
};
using FlowHit = BasicFlowHit<Flow>;
using FlowHit6 = BasicFlowHit<Flow6>;

// Where a key with some hash may be in a flow table: its first bucket and
// its hash, computed once per packet and used by every pass over a burst.
// The tag comes from the hash; so does the second bucket
// (BasicFlowTable::second_of()), computed only where it is read: most
// keys live in their first bucket, and a lookup that finds its key there
// never needs the second.
struct FlowProbe {
  uint32_t first;
  uint32_t hash;
  // Nonzero: 0 marks an empty slot.
  uint16_t tag() const noexcept { return static_cast<uint16_t>(hash | 1); }
};

// One table per family (issue 11): Flow for IPv4, Flow6 for IPv6, with the
// same index, placement and expiry.
template <class F>
class BasicFlowTable {
 public:
  using Key = typename F::Key;
  using Addr = typename F::Addr;
  using Hit = BasicFlowHit<F>;
  static constexpr uint32_t kSlotsPerBucket = 8;
  // Index buckets per connection: 2 keys per connection, at most 6 of a
  // bucket's 8 slots used on average with every record in use.  Offered
  // that load, 2-choice placement practically never finds both buckets full
  // (flow_table_test fills the table to the last record).
  static constexpr uint32_t kConnectionsPerBucket = 3;
  // Longest timeout the wrap-safe comparison can represent.
  static constexpr uint32_t kMaxTimeoutMs = 0x7fff'ffff;
  // Most connections one table holds (the reference keeps one bit).
  static constexpr uint32_t kMaxCapacity = 1u << 30;

  // `capacity` counts connections (at least 8).  Throws
  // std::invalid_argument when capacity is 0 or above kMaxCapacity, or a
  // timeout is 0 or above kMaxTimeoutMs (config validation reports these
  // first), std::bad_alloc when memory is short.
  BasicFlowTable(uint32_t capacity, FlowTimeouts timeouts);

  BasicFlowTable(const BasicFlowTable&) = delete;
  BasicFlowTable& operator=(const BasicFlowTable&) = delete;

  // Bytes the table takes for `capacity` connections (records, index and
  // the half-open queue).
  static uint64_t memory_bytes(uint32_t capacity) noexcept;

  // The key's hash (CRC32-C, flow_key_hash()); lets a worker hash a burst
  // once, prefetch, then look up.
  static uint32_t hash(const Key& key) noexcept { return flow_key_hash(key); }

  using Probe = FlowProbe;
  Probe probe(uint32_t hash) const noexcept { return Probe{first_bucket(hash), hash}; }
  // The key's second bucket.
  uint32_t second_of(const Probe& p) const noexcept { return second_bucket(p.hash, p.first); }

  // Prefetches both index buckets: where an insert of the key may go.
  void prefetch(const Probe& p) const noexcept {
    prefetch_line(&buckets_[p.first]);
    prefetch_line(&buckets_[second_of(p)]);
  }
  // Prefetches the key's first bucket: a lookup's first pass over a burst.
  void prefetch_first(const Probe& p) const noexcept { prefetch_line(&buckets_[p.first]); }
  // Record references (index << 1 | reverse) that no record has:
  // prefetch_flow()'s answers when it names no record.
  static constexpr uint32_t kNoCandidate = 0xffff'ffff;    // no bucket has the key's tag
  static constexpr uint32_t kInSecondBucket = 0xffff'fffe;  // maybe in the second: ask prefetch_second()
  // Prefetches the record the first bucket's first matching tag names
  // (second pass, once the first bucket has arrived), and returns its
  // reference for find() to try first.  With no match there: kNoCandidate
  // when no key of this bucket was displaced (the key is in no bucket),
  // else kInSecondBucket, with the second bucket prefetched for
  // prefetch_second().  A false match (a 16-bit tag's collision) before the
  // right one leaves that record unprefetched, and find() looks the key up
  // in full.
  uint32_t prefetch_flow(const Probe& p) const noexcept {
    const Bucket& first = buckets_[p.first];
    const uint32_t m = match(first, p.tag());
    if (m == 0) {
      if (first.displaced == 0) return kNoCandidate;
      prefetch_line(&buckets_[second_of(p)]);
      return kInSecondBucket;
    }
    const uint32_t ref = ref_at(first, m);
    prefetch_record(ref >> 1);
    return ref;
  }
  // prefetch_flow() continued for kInSecondBucket, once the second bucket
  // has arrived: its first matching tag's record, or kNoCandidate.
  uint32_t prefetch_second(const Probe& p) const noexcept {
    const Bucket& second = buckets_[second_of(p)];
    const uint32_t m = match(second, p.tag());
    if (m == 0) return kNoCandidate;
    const uint32_t ref = ref_at(second, m);
    prefetch_record(ref >> 1);
    return ref;
  }

  // The live flow for `key` (in either direction), or none.  An expired
  // flow met on the way is freed on the spot.
  Hit find(const Key& key, uint32_t now) noexcept { return find(key, probe(hash(key)), now); }
  // With prefetch_flow()'s `candidate`: the record it names is checked
  // first, with no second look at the buckets.  Whatever changed in the
  // table since, the check is exact: a record in use is indexed under both
  // its keys, and keys are unique, so a live record holding `key` is the
  // flow.  A candidate freed or reused for another connection since fails
  // it, and the buckets are searched.
  Hit find(const Key& key, const Probe& p, uint32_t candidate, uint32_t now) noexcept {
    if (candidate < kInSecondBucket) {
      F& f = flows_[candidate >> 1];
      const bool reverse = (candidate & 1) != 0;
      if (!f.is_free() && has_key(f, reverse, key)) [[likely]] {
        if (is_expired(f.expires, now)) [[unlikely]] {
          expire_flow(candidate >> 1);
          return {};
        }
        return Hit{&f, reverse};
      }
    }
    return find(key, p, now);
  }
  Hit find(const Key& key, const Probe& p, uint32_t now) noexcept {
    // The second bucket only when the first does not hold the key and
    // some key of the first lives in its second.
    const Bucket& first = buckets_[p.first];
    uint32_t ref = ref_of(first, p.tag(), key);
    if (ref == kNoCandidate) {
      if (first.displaced == 0) return {};
      ref = ref_of(buckets_[second_of(p)], p.tag(), key);
      if (ref == kNoCandidate) return {};
    }
    F& f = flows_[ref >> 1];
    if (is_expired(f.expires, now)) [[unlikely]] {
      expire_flow(ref >> 1);
      return {};
    }
    return Hit{&f, (ref & 1) != 0};
  }

  // Pins a new connection: its forward key `key` (hash `hash`), the Pod it
  // goes to, its first state (expires = now + timeout(state)).  A flow
  // already holding either of the new flow's keys is replaced (it ends).
  // nullptr when every record is in use by a live flow, or (practically
  // never) both buckets of a key are full of live flows: the caller then
  // forwards by Maglev alone and counts it.  `stats_slot` names the
  // endpoint's TrafficCounters.
  // `known_absent`: the caller's find() of `key` just missed, so no flow
  // holds it (the worker's new-flow path); skips looking for one.
  // `reverse_probe`: the reverse key's probe, when the caller has it
  // already (the worker's second pass prefetched its buckets).
  //
  // Inline: the common case (a free record, no tag of either key already
  // in its buckets, a free slot in each key's buckets) costs no call; the
  // rest goes to out-of-line code.
  F* insert(const Key& key, const Probe& forward, Addr pod, rte_be16_t pod_port,
            FlowState state, uint32_t gen, uint32_t now,
            uint16_t stats_slot = kUntrackedSlot, bool known_absent = false,
            const Probe* reverse_probe = nullptr) noexcept {
    if (free_head_ == kNoFlow) [[unlikely]] {
      if (!reclaim(now)) return nullptr;
    }
    const uint32_t index = free_head_;
    F& f = flows_[index];
    free_head_ = f.expires;
    f.client = key.src;
    f.vip = key.dst;
    f.client_port = key.sport;
    f.vip_port = key.dport;
    f.proto = key.proto;
    f.state = state;
    f.stats_slot = stats_slot;
    f.pod = pod;
    f.pod_port = pod_port;
    if constexpr (std::is_same_v<F, Flow6>) {
      f.csum_delta = 0;  // the worker that pins it sets its NAT's checksum term
    } else {
      f.csum_addr = csum_term32(key.dst.be, pod.be);
    }
    f.expires = now + timeout_ms(state);
    f.gen = gen;
    ++size_;
    // Index it under both keys, or not at all.  The new flow is live, so
    // place() never frees it while making room.
    if (!put(forward, index << 1, !known_absent)) [[unlikely]] {
      if (!place(key, forward, index << 1, now, known_absent)) return drop(index);
    }
    // Else the reverse key's hash from the record: no key built in memory.
    const Probe reverse = reverse_probe != nullptr ? *reverse_probe : probe(key_hash_of(f, true));
    if (!put(reverse, index << 1 | 1, true)) [[unlikely]] {
      if (!place_reverse(index, reverse, now)) return unplace_and_drop(forward, index);
    }
    if (state == FlowState::kTcpSynSent) queue_half_open(index, f.expires);
    return &f;
  }
  F* insert(const Key& key, Addr pod, rte_be16_t pod_port, FlowState state, uint32_t gen,
               uint32_t now, uint16_t stats_slot = kUntrackedSlot) noexcept {
    return insert(key, probe(hash(key)), pod, pod_port, state, gen, now, stats_slot);
  }

  // Where the end of each connection is counted:
  // slots[f.stats_slot].flows_ended, whatever ends it (erase, expiry,
  // replacement).  Null (the default): not counted.
  void count_ends_in(TrafficCounters* slots) noexcept { ended_ = slots; }

  // Advances the connection's state with one packet (`reverse`: a reply)
  // and sets expires = now + timeout(new state).  tcp_flags is the TCP
  // header's flag byte (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10); ignored for
  // UDP.  Returns true, changing nothing, for a client's SYN on a closed
  // connection (reopens()): the caller places that connection anew.  The
  // flags are tested as next_state() tests them, so that inlined, the two
  // tests are one and an established packet pays nothing for it.
  [[nodiscard]] bool touch(F& f, bool reverse, uint8_t tcp_flags, uint32_t now) noexcept {
    if ((tcp_flags & kFinSynRst) != 0 && reopens(f.state, reverse, tcp_flags)) [[unlikely]] return true;
    const FlowState s = next_state(f.state, reverse, tcp_flags);
    f.state = s;
    f.expires = now + timeout_ms(s);
    return false;
  }

  // A client's SYN (no ACK) on a connection that closed (FIN or RST seen)
  // is its port reused (RFC 9293 §3.10.7.4 allows it after TIME-WAIT): a
  // new connection, to be placed among the endpoints that take new ones,
  // as IPVS (conn_reuse_mode) and conntrack (a SYN ends a TIME_WAIT or
  // CLOSE entry) place it.  Pinned to the old Pod again, a draining one
  // would never stop taking connections from a client that reuses ports.
  static bool reopens(FlowState s, bool reverse, uint8_t tcp_flags) noexcept {
    constexpr uint8_t kSyn = 0x02, kAck = 0x10;
    return s == FlowState::kTcpClosing && !reverse && (tcp_flags & (kSyn | kAck)) == kSyn;
  }

  void erase(F& f) noexcept {
    if (!f.is_free()) free_flow(index_of(f));
  }

  // Examines at most `budget` records from a rotating cursor, freeing the
  // expired ones; returns how many it freed.
  uint32_t expire_some(uint32_t now, uint32_t budget) noexcept;
  // Frees the half-open connections whose deadline has passed, oldest
  // first, looking at most at `budget` queue entries; returns how many it
  // freed.  A queued flow that has moved on since (established, closed,
  // refreshed by a retransmitted SYN, or freed and its record reused) is
  // not expired at its queued deadline and is skipped.  One load and one
  // compare when nothing is due.
  //
  // Under a SYN flood every new flow is freed here a timeout later, when
  // its record and the four index buckets of its keys have left the
  // nearer caches.  So the due flows go in chunks, in three passes, as a
  // burst does: prefetch the records; hash both keys and prefetch their
  // buckets; free.
  uint32_t expire_half_open(uint32_t now, uint32_t budget) noexcept {
    // The queue's fields in locals: freeing a flow stores through pointers
    // the compiler cannot tell apart from them.
    const HalfOpen* const ring = half_open_.data();
    const uint32_t size = capacity_;
    uint32_t head = half_open_head_;
    uint32_t queued = half_open_count_;
    uint32_t left = budget < queued ? budget : queued;
    uint32_t freed = 0;
    while (left != 0) {
      // A chunk ends at the ring's end, so no entry needs a wrap test.
      uint32_t take = left < kHalfOpenChunk ? left : kHalfOpenChunk;
      if (take > size - head) take = size - head;
      uint32_t due[kHalfOpenChunk];
      uint32_t n = 0;
      for (; n < take; ++n) {
        const HalfOpen e = ring[head + n];
        if (!is_expired(e.deadline, now)) break;
        due[n] = e.index;
        prefetch_record(e.index);
      }
      Probe keys[kHalfOpenChunk][2];
      for (uint32_t i = 0; i < n; ++i) {
        const F& f = flows_[due[i]];
        if (f.is_free() || !is_expired(f.expires, now)) continue;
        keys[i][0] = probe(key_hash_of(f, false));
        keys[i][1] = probe(key_hash_of(f, true));
        prefetch(keys[i][0]);
        prefetch(keys[i][1]);
      }
      F* const flows = flows_.data();
      Bucket* const buckets = buckets_.data();
      FreeList list{free_head_};
      for (uint32_t i = 0; i < n; ++i) {
        // Checked again: a record freed and reused may be queued twice,
        // and the first entry has just freed it.
        F& f = flows[due[i]];
        if (f.is_free() || !is_expired(f.expires, now)) continue;
        release(buckets, f, due[i], keys[i], list);
      }
      commit(list);
      freed += list.added;
      head += n;
      if (head == size) head = 0;
      queued -= n;
      left -= n;
      if (n != take) break;
    }
    half_open_head_ = head;
    half_open_count_ = queued;
    expired_ += freed;
    return freed;
  }

  // Flows freed because they expired since the last call, wherever that
  // happened: the sweep, the half-open queue, a lookup that met one, an
  // insert that made room (erase() and replacement are not expiry).  The
  // worker adds it to its flows_expired counter once per loop.
  uint64_t take_expired() noexcept {
    const uint64_t n = expired_;
    expired_ = 0;
    return n;
  }

  // Connections held, including expired ones not yet freed.
  uint32_t size() const noexcept { return size_; }
  // Entries in the half-open queue, including those of flows gone since.
  uint32_t half_open_queued() const noexcept { return half_open_count_; }
  uint32_t capacity() const noexcept { return capacity_; }
  // One load: every packet of a connection refreshes its expiry.
  uint32_t timeout_ms(FlowState s) const noexcept { return timeout_of_state_[static_cast<uint8_t>(s)]; }

  // The connection tracking of one packet.  A deliberately small tracker,
  // not a validating firewall (no sequence-number windows as in Linux
  // conntrack): its only job is to choose a timeout so that half-open and
  // closed connections give their records back soon, while live ones keep
  // their Pod (Maglev §3.3).  Packets of both directions advance the one
  // state of their connection.
  //   RST                        -> Closing (RFC 9293 §3.5.2): short timeout.
  //   FIN on Established         -> ClientFin or PodFin, by its sender: a
  //                                 half-close (RFC 9293 §3.6), the other
  //                                 direction still open, on the FIN timeout
  //                                 that every later packet refreshes.
  //   the other side's FIN       -> Closing: both directions closed.
  //   FIN on SynSent, SynReceived
  //   or Closing                 -> Closing: only an open connection
  //                                 half-closes, so SYN then FIN cannot hold
  //                                 a record for the FIN timeout.
  //   SYN+ACK from the Pod       -> SynReceived: the Pod accepted, and the
  //                                 timeout stays short until the client
  //                                 completes the handshake, so a spoofed-SYN
  //                                 flood to a listening Pod leaves only
  //                                 short-lived records (issue 12).
  //   SYN (no ACK, or a SYN+ACK
  //   from the client)           -> SynSent, from SynSent or Closing (port
  //                                 reuse, RFC 9293 §3.10.7.4 TIME-WAIT; a
  //                                 client's SYN on Closing is placed anew
  //                                 instead: touch(), reopens()); on an
  //                                 Established or half-closed flow a SYN
  //                                 restarts nothing (the Pod answers it with
  //                                 a challenge ACK, RFC 5961 §4), so the
  //                                 state stays.
  //   the client's ACK without SYN
  //   on SynSent or SynReceived  -> Established (the handshake's last ACK, or
  //                                 a connection picked up mid-stream).
  //   anything else              -> same state, timeout refreshed.
  static constexpr uint8_t kFinSynRst = 0x01 | 0x02 | 0x04;
  static FlowState next_state(FlowState s, bool reverse, uint8_t tcp_flags) noexcept {
    constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;
    if ((tcp_flags & (kFin | kSyn | kRst)) == 0) [[likely]] {
      const bool handshake = s == FlowState::kTcpSynSent || s == FlowState::kTcpSynReceived;
      // The handshake is the rare case: unmarked, g++ put an established
      // flow's packet in a side block (two taken branches more).
      if (handshake) [[unlikely]] return !reverse && (tcp_flags & kAck) != 0 ? FlowState::kTcpEstablished : s;
      return s;
    }
    if (s == FlowState::kUdp || s == FlowState::kFree) return s;  // nothing to advance
    if ((tcp_flags & kRst) != 0) return FlowState::kTcpClosing;
    const bool half_closed = s == FlowState::kTcpClientFin || s == FlowState::kTcpPodFin;
    if ((tcp_flags & kFin) != 0) {
      const FlowState half = reverse ? FlowState::kTcpPodFin : FlowState::kTcpClientFin;
      return s == FlowState::kTcpEstablished || s == half ? half : FlowState::kTcpClosing;
    }
    if (s == FlowState::kTcpEstablished || half_closed) return s;
    if ((tcp_flags & kAck) != 0 && reverse) return FlowState::kTcpSynReceived;  // SYN+ACK
    return s == FlowState::kTcpSynReceived ? s : FlowState::kTcpSynSent;
  }

  // Calls fn(const F&) for every live flow among the `count` records
  // from `first` (wrapping at the end); returns the record after the last
  // one.  A slice of a scan spread over many polls (the `flows` command).
  template <typename Fn>
  uint32_t for_each_live_in(uint32_t first, uint32_t count, uint32_t now, Fn&& fn) const {
    uint32_t i = first;
    for (uint32_t n = 0; n < count; ++n) {
      if (flows_[i].is_live(now)) fn(flows_[i]);
      i = (i + 1 == capacity_) ? 0 : i + 1;
    }
    return i;
  }

  // Whether the index matches the records: every slot names a record in
  // use whose key (in the slot's direction) has the slot's tag and this
  // bucket as its first or second; two slots per connection; each
  // bucket's displaced count is the keys of it in their second bucket.  A
  // full scan, for tests.
  bool index_is_consistent() const;
  // Keys living in their second bucket (the buckets' displaced counts
  // summed).  A full scan, for tests.
  uint64_t displaced_keys() const noexcept {
    uint64_t n = 0;
    for (const Bucket& b : buckets_) n += b.displaced;
    return n;
  }

  // Calls fn(const F&) for every live flow.  A full scan: control
  // requests and tests only, never on the packet path.
  template <typename Fn>
  void for_each_live(uint32_t now, Fn&& fn) const {
    for_each_live_in(0, capacity_, now, fn);
  }

 private:
  struct alignas(64) Bucket {
    uint16_t tags[kSlotsPerBucket];  // 0: empty slot
    uint32_t refs[kSlotsPerBucket];  // record index << 1 | 1 for the reverse key
    // Keys whose first bucket this is, indexed in their second bucket.
    uint32_t displaced;
    uint8_t unused[12];
  };
  static_assert(sizeof(Bucket) == 64, "one cache line per bucket");

  static constexpr uint32_t kNoFlow = 0xffff'ffff;

  // Due half-open flows freed together (expire_half_open()).  Each chunk
  // waits on memory three times (records, buckets, frees), so a larger
  // one spreads the waits over more flows: a burst's worth.  With 16, a
  // cold flow cost 7% more (flow_table_bench BM_ExpireHalfOpenCold, 1M).
  static constexpr uint32_t kHalfOpenChunk = 32;
  // A flow pinned by a SYN, and the deadline it had then.
  struct HalfOpen {
    uint32_t index;
    uint32_t deadline;
  };

  // rte_prefetch0 (an asm volatile), not __builtin_prefetch: g++ 12 took
  // prefetch_flow(), a loop whose only effect was __builtin_prefetch, for a
  // pure function and dropped every call to it (process_burst's second
  // pass compiled to nothing at -O2 and -O3).
  static void prefetch_line(const void* p) noexcept { rte_prefetch0(p); }
  // Every line of a record: an IPv4 one (32 bytes, the array 64-byte
  // aligned) is in one, an IPv6 one (68 bytes) always straddles two, and
  // its key, NAT and expiry fields are on both.
  void prefetch_record(uint32_t index) const noexcept {
    const F* f = &flows_[index];
    prefetch_line(f);
    if constexpr (64 % sizeof(F) != 0) prefetch_line(reinterpret_cast<const unsigned char*>(f) + sizeof(F) - 1);
  }

  // Bit 2i set when slot i's tag is `t` (one bit per byte of a 16-bit lane
  // is kept: the even ones).
  static uint32_t match(const Bucket& b, uint16_t t) noexcept {
#if defined(__SSE2__)
    const __m128i tags = _mm_load_si128(reinterpret_cast<const __m128i*>(b.tags));
    const __m128i eq = _mm_cmpeq_epi16(tags, _mm_set1_epi16(static_cast<short>(t)));
    return static_cast<uint32_t>(_mm_movemask_epi8(eq)) & 0x5555u;
#else
    uint32_t m = 0;
    for (uint32_t i = 0; i < kSlotsPerBucket; ++i) m |= uint32_t{b.tags[i] == t} << (2 * i);
    return m;
#endif
  }
  // The slot of a match() mask's lowest bit, as the bit's number (twice
  // the slot): a tag's byte offset in the bucket, and half a ref's.  The
  // hot paths address a slot's tag and ref from it, with no shift.
  // On x86-64 a bsf into the 32-bit half of a 64-bit register, which zero
  // extends it: std::countr_zero's int costs a sign extension (movslq) to
  // become an address offset.  `mask` is never 0.
  static size_t low_bit(uint32_t mask) noexcept {
#if defined(__x86_64__)
    uint64_t bit;
    asm("bsfl %1, %k0" : "=r"(bit) : "rm"(mask) : "cc");
    return bit;
#else
    return static_cast<uint32_t>(std::countr_zero(mask));
#endif
  }
  // The reference of the record in `b` that holds `key` (tag `t`), or
  // kNoCandidate.  Keys are unique in the table (insert makes them so):
  // the first match is the only one.
  uint32_t ref_of(const Bucket& b, uint16_t t, const Key& key) const noexcept {
    for (uint32_t m = match(b, t); m != 0; m &= m - 1) {
      const uint32_t ref = ref_at(b, m);
      if (has_key(flows_[ref >> 1], (ref & 1) != 0, key)) return ref;
    }
    return kNoCandidate;
  }
  static uint32_t ref_at(const Bucket& b, uint32_t mask) noexcept {
    uint32_t ref;
    std::memcpy(&ref, reinterpret_cast<const unsigned char*>(b.refs) + 2 * low_bit(mask), sizeof ref);
    return ref;
  }
  static void set_slot(Bucket& b, uint32_t mask, uint16_t tag, uint32_t ref) noexcept {
    const size_t bit = low_bit(mask);
    std::memcpy(reinterpret_cast<unsigned char*>(b.tags) + bit, &tag, sizeof tag);
    std::memcpy(reinterpret_cast<unsigned char*>(b.refs) + 2 * bit, &ref, sizeof ref);
  }
  static void clear_tag(Bucket& b, uint32_t mask) noexcept {
    const uint16_t empty = 0;
    std::memcpy(reinterpret_cast<unsigned char*>(b.tags) + low_bit(mask), &empty, sizeof empty);
  }

  // Maps a 32-bit hash onto [0, n) with a multiply (Lemire, "Fast Random
  // Integer Generation in an Interval", 2019), so the bucket count need not
  // be a power of two.
  static uint32_t reduce(uint32_t h, uint32_t n) noexcept {
    return static_cast<uint32_t>((static_cast<uint64_t>(h) * n) >> 32);
  }
  // The second bucket must not be a fixed function of the first: CRC is
  // linear over GF(2), so a second CRC with another seed would only XOR the
  // first hash with a constant and pair buckets for good (one 16-slot
  // bucket, not two choices).  The first bucket comes from the hash's high
  // bits; the second from the high bits of the hash times an odd constant
  // (Knuth's multiplicative hashing), which the carries make depend on
  // every bit below them, non-linearly.  It is drawn from the n-1 other
  // buckets and skips the first: always another bucket (n_buckets_ >= 2),
  // with no fix-up branch.  flow_table_test checks the spread.
  static constexpr uint32_t kSecondMultiplier = 0x9e37'79b1;  // odd: a bijection
  uint32_t first_bucket(uint32_t hash) const noexcept { return reduce(hash, n_buckets_); }
  uint32_t second_bucket(uint32_t hash, uint32_t first) const noexcept {
    const uint32_t b = reduce(hash * kSecondMultiplier, n_other_buckets_);
    return b + (b >= first ? 1u : 0u);
  }

  uint32_t index_of(const F& f) const noexcept { return static_cast<uint32_t>(&f - flows_.data()); }
  // Puts `ref` in one of its buckets, as put() does, first replacing any
  // flow that holds `key` (unless the caller knows it `absent`) and making
  // room if both buckets are full.
  bool place(const Key& key, const Probe& where, uint32_t ref, uint32_t now,
             bool absent) noexcept;
  bool move_one_away(uint32_t from) noexcept;
  // Clears the slot of `ref`, indexed under a key probed at `where`.
  // `buckets` is buckets_.data(), held by a caller that frees many flows.
  void unplace(const Probe& where, uint32_t ref) noexcept { unplace(buckets_.data(), where, ref); }
  void unplace(Bucket* buckets, const Probe& where, uint32_t ref) noexcept {
    Bucket& first = buckets[where.first];
    if (clear_ref(first, where.tag(), ref)) return;
    if (clear_ref(buckets[second_of(where)], where.tag(), ref)) --first.displaced;
  }
  // insert()'s fast placement: `ref` into its first bucket while that has
  // a free slot, else into its second (displaced).  False, touching
  // nothing, when both are full, or when `check` and a slot the key may be
  // in has its tag (it may hold the key: place() decides); the second
  // bucket may hold the key only when the first counts a displaced key.
  bool put(const Probe& where, uint32_t ref, bool check) noexcept {
    Bucket& b0 = buckets_[where.first];
    const uint16_t tag = where.tag();
    if (check && match(b0, tag) != 0) return false;
    if (check && b0.displaced != 0 && match(buckets_[second_of(where)], tag) != 0) return false;
    if (const uint32_t e0 = match(b0, 0); e0 != 0) [[likely]] {
      set_slot(b0, e0, tag, ref);
      return true;
    }
    Bucket& b1 = buckets_[second_of(where)];
    const uint32_t e1 = match(b1, 0);
    if (e1 == 0) return false;
    set_slot(b1, e1, tag, ref);
    ++b0.displaced;
    return true;
  }
  // insert()'s slow paths, out of line.
  bool reclaim(uint32_t now) noexcept;  // frees expired records: whether one is free
  bool place_reverse(uint32_t index, const Probe& where, uint32_t now) noexcept;
  F* drop(uint32_t index) noexcept;
  F* unplace_and_drop(const Probe& forward, uint32_t index) noexcept;
  // Clears the slot of `bucket` that holds `ref` under tag `t`; false
  // when none does.
  static bool clear_ref(Bucket& bucket, uint16_t t, uint32_t ref) noexcept {
    for (uint32_t m = match(bucket, t); m != 0; m &= m - 1) {
      if (ref_at(bucket, m) == ref) [[likely]] {
        clear_tag(bucket, m);
        return true;
      }
    }
    return false;
  }
  // The free list's head, and how many records it gained, held in a
  // local while expire_half_open() frees a chunk of flows: as members,
  // every flow's stores through record and bucket pointers would make the
  // compiler load and store them again (~6 instructions a flow).
  // commit() writes them back.
  struct FreeList {
    uint32_t head;
    uint32_t added = 0;
  };
  // Puts a record no key refers to any more on the free list.
  static void push(FreeList& list, F& f, uint32_t index) noexcept {
    f.state = FlowState::kFree;
    f.expires = list.head;
    list.head = index;
    ++list.added;
  }
  void commit(const FreeList& list) noexcept {
    free_head_ = list.head;
    size_ -= list.added;
  }
  void to_free_list(F& f, uint32_t index) noexcept {
    FreeList list{free_head_};
    push(list, f, index);
    commit(list);
  }
  // Frees the flow `f` in use, record `index`: unindexes both keys (where
  // `keys`, the forward and the reverse key's probes, say), counts its
  // end, puts the record on `list`.  Inline in expire_half_open();
  // free_flow() for everything else.
  void release(Bucket* buckets, F& f, uint32_t index, const Probe (&keys)[2], FreeList& list) noexcept {
    unplace(buckets, keys[0], index << 1);
    unplace(buckets, keys[1], index << 1 | 1);
    if (ended_ != nullptr) ended_[f.stats_slot].flows_ended.add();
    push(list, f, index);
  }
  void free_flow(uint32_t index) noexcept;
  // free_flow() of a flow found expired, counted (take_expired()).
  void expire_flow(uint32_t index) noexcept {
    ++expired_;
    free_flow(index);
  }
  // Queues a flow just pinned by a SYN; a full queue forgets its oldest
  // entry (that flow is left to the sweep).
  void queue_half_open(uint32_t index, uint32_t deadline) noexcept {
    const uint32_t size = capacity_;
    uint32_t at = half_open_head_ + half_open_count_;
    if (at >= size) at -= size;
    half_open_[at] = HalfOpen{index, deadline};
    if (half_open_count_ == size) [[unlikely]] {
      half_open_head_ = at + 1 == size ? 0 : at + 1;  // the oldest entry, just overwritten, is gone
    } else {
      ++half_open_count_;
    }
  }

  static bool has_key(const F& f, bool reverse, const Key& k) noexcept { return F::has_key(f, reverse, k); }

  DpVector<F> flows_;
  DpVector<Bucket> buckets_;
  uint32_t capacity_ = 0;
  uint32_t n_buckets_ = 0;
  uint32_t n_other_buckets_ = 0;  // n_buckets_ - 1: second_bucket()'s range
  uint32_t size_ = 0;
  uint32_t free_head_ = kNoFlow;  // first free record
  uint32_t cursor_ = 0;           // next record expire_some() examines
  // The half-open queue: a ring of one entry per record (capacity_).
  DpVector<HalfOpen> half_open_;
  uint32_t half_open_head_ = 0;   // position of the oldest entry
  uint32_t half_open_count_ = 0;  // entries queued
  // Each FlowState's timeout (kFree: 0), from the FlowTimeouts given.
  static constexpr size_t kFlowStates = static_cast<size_t>(FlowState::kUdp) + 1;
  uint32_t timeout_of_state_[kFlowStates] = {};
  TrafficCounters* ended_ = nullptr;
  uint64_t expired_ = 0;  // flows freed by expiry since take_expired()
};

using FlowTable = BasicFlowTable<Flow>;
using FlowTable6 = BasicFlowTable<Flow6>;

// IPv6 connections each worker tracks: a quarter of its IPv4 table's, at
// least 1024 (issue 11; the IPv4 figure is [dataplane] flow_table_size).
constexpr uint32_t ipv6_flow_capacity(uint32_t ipv4_capacity) noexcept {
  return ipv4_capacity / 4 > 1024 ? ipv4_capacity / 4 : 1024;
}
extern template class BasicFlowTable<Flow>;
extern template class BasicFlowTable<Flow6>;

}  // namespace podgate::dp
