#include "dataplane/flow_table.hpp"

#include <algorithm>
#include <bit>
#include <stdexcept>
#include <string>

#include <rte_hash_crc.h>

namespace podgate::dp {

namespace {

constexpr uint8_t kTcpFin = 0x01;
constexpr uint8_t kTcpSyn = 0x02;
constexpr uint8_t kTcpRst = 0x04;
constexpr uint8_t kTcpAck = 0x10;

constexpr uint32_t kHashSeed = 0x9e37'79b9;
// 2^31 entries (64 GiB) keeps capacity() within uint32.
constexpr uint32_t kMaxCapacity = 1u << 31;

struct KeyWords {
  uint64_t lo;
  uint64_t hi;
};

inline KeyWords words(const FlowKey4& k) noexcept {
  KeyWords w;
  std::memcpy(&w.lo, reinterpret_cast<const unsigned char*>(&k), 8);
  std::memcpy(&w.hi, reinterpret_cast<const unsigned char*>(&k) + 8, 8);
  return w;
}

// Bytes 8..12 of the second word are key (ports, protocol); 13..15 are the
// entry's state and flags (FlowEntry's layout), zero in a FlowKey4.
constexpr uint64_t kKeyHiMask = (uint64_t{1} << 40) - 1;
static_assert(std::endian::native == std::endian::little, "kKeyHiMask assumes little endian");

inline bool same_key(const FlowEntry& e, KeyWords k) noexcept {
  uint64_t lo;
  uint64_t hi;
  std::memcpy(&lo, reinterpret_cast<const unsigned char*>(&e), 8);
  std::memcpy(&hi, reinterpret_cast<const unsigned char*>(&e) + 8, 8);
  return ((lo ^ k.lo) | ((hi ^ k.hi) & kKeyHiMask)) == 0;
}

// MurmurHash3's 32-bit finaliser: a non-linear bijection.  The second bucket
// must not be a fixed function of the first: CRC is linear over GF(2), so a
// second CRC with another seed would only XOR the first hash with a constant
// and pair buckets for good, which is one 8-entry bucket, not two choices.
inline uint32_t fmix32(uint32_t h) noexcept {
  h ^= h >> 16;
  h *= 0x85eb'ca6bu;
  h ^= h >> 13;
  h *= 0xc2b2'ae35u;
  h ^= h >> 16;
  return h;
}

// Maps a 32-bit hash onto [0, n) with a multiply (Lemire, "Fast Random
// Integer Generation in an Interval", 2019), so the bucket count need not be
// a power of two and the configured capacity is not doubled by rounding.
inline uint32_t reduce(uint32_t h, uint32_t n) noexcept {
  return static_cast<uint32_t>((static_cast<uint64_t>(h) * n) >> 32);
}

}  // namespace

FlowTable::FlowTable(uint32_t capacity, FlowTimeouts timeouts)
    : timeouts_(timeouts) {
  if (capacity == 0 || capacity > kMaxCapacity) {
    throw std::invalid_argument("flow table capacity " + std::to_string(capacity) +
                                " is not in 1.." + std::to_string(kMaxCapacity));
  }
  for (uint32_t t : {timeouts.tcp_syn_ms, timeouts.tcp_established_ms,
                     timeouts.tcp_closing_ms, timeouts.udp_ms}) {
    if (t == 0 || t > kMaxTimeoutMs) {
      throw std::invalid_argument("flow timeout " + std::to_string(t) +
                                  " ms is not in 1.." + std::to_string(kMaxTimeoutMs));
    }
  }
  n_buckets_ = std::max<uint32_t>(2, (capacity + kSlotsPerBucket - 1) / kSlotsPerBucket);
  // Value-initialised: every slot starts kFree.  The only allocation.
  buckets_ = DpVector<Bucket>(n_buckets_);
}

uint32_t FlowTable::hash(const FlowKey4& key) noexcept {
  KeyWords w = words(key);
  return rte_hash_crc_8byte(w.hi, rte_hash_crc_8byte(w.lo, kHashSeed));
}

// Private helpers are defined `inline` here, their only user: under -fPIC a
// plain member function is a call the compiler may not inline.
inline uint32_t FlowTable::first_bucket(uint32_t hash) const noexcept {
  return reduce(hash, n_buckets_);
}

inline uint32_t FlowTable::second_bucket(uint32_t hash, uint32_t first) const noexcept {
  uint32_t b = reduce(fmix32(hash), n_buckets_);
  // Two distinct buckets always (n_buckets_ >= 2), so lookups need no
  // special case when both hashes land together.
  if (b == first) b = (first + 1 == n_buckets_) ? 0 : first + 1;
  return b;
}

inline void FlowTable::count_end(const FlowEntry& e) noexcept {
  if (ended_ != nullptr && !e.is_reverse()) ended_[e.stats_slot].flows_ended.add();
}

inline void FlowTable::free_slot(FlowEntry& e) noexcept {
  count_end(e);
  e.state = FlowState::kFree;
  --size_;
}

void FlowTable::prefetch(uint32_t hash) const noexcept {
  uint32_t b1 = first_bucket(hash);
  uint32_t b2 = second_bucket(hash, b1);
  const char* p1 = reinterpret_cast<const char*>(&buckets_[b1]);
  const char* p2 = reinterpret_cast<const char*>(&buckets_[b2]);
  for (size_t off = 0; off < sizeof(Bucket); off += 64) {
    __builtin_prefetch(p1 + off);
    __builtin_prefetch(p2 + off);
  }
}

FlowEntry* FlowTable::find(const FlowKey4& key, uint32_t hash, uint32_t now) noexcept {
  const KeyWords k = words(key);
  const uint32_t b1 = first_bucket(hash);
  const uint32_t b[2] = {b1, second_bucket(hash, b1)};
  for (uint32_t bi : b) {
    for (FlowEntry& e : buckets_[bi].slots) {
      if (!same_key(e, k) || e.is_free()) continue;
      // Keys are unique in the table (insert overwrites), so the first match
      // is the only one.
      if (is_expired(e.expires, now)) {
        free_slot(e);
        return nullptr;
      }
      return &e;
    }
  }
  return nullptr;
}

FlowEntry* FlowTable::insert(const FlowKey4& key, uint32_t hash, Ip4 nat_ip,
                             rte_be16_t nat_port, FlowState state, bool reverse,
                             uint32_t gen, uint32_t now, uint16_t stats_slot) noexcept {
  const KeyWords k = words(key);
  const uint32_t b1 = first_bucket(hash);
  const uint32_t b[2] = {b1, second_bucket(hash, b1)};
  FlowEntry* target = nullptr;
  FlowEntry* spare[2] = {nullptr, nullptr};  // first free-or-expired slot
  uint32_t live[2] = {0, 0};
  for (int i = 0; i < 2 && target == nullptr; ++i) {
    for (FlowEntry& e : buckets_[b[i]].slots) {
      if (!e.is_free() && same_key(e, k)) {
        target = &e;  // overwrite in place, live or expired
        break;
      }
      if (e.is_live(now)) {
        ++live[i];
      } else if (spare[i] == nullptr) {
        spare[i] = &e;
      }
    }
  }
  if (target == nullptr) {
    // Balanced allocation: the less loaded of the two buckets (ties to the
    // first); a full bucket has no spare, so this is nullptr only when both
    // are full of live entries.
    target = live[1] < live[0] ? spare[1] : spare[0];
    if (target == nullptr) return nullptr;
    if (target->is_free()) ++size_;  // an expired slot was already counted
  }
  if (!target->is_free()) count_end(*target);  // overwritten: live or expired
  target->src = key.src;
  target->dst = key.dst;
  target->sport = key.sport;
  target->dport = key.dport;
  target->proto = key.proto;
  target->stats_slot = stats_slot;
  target->nat_ip = nat_ip;
  target->nat_port = nat_port;
  target->state = state;
  target->flags = reverse ? FlowEntry::kReverse : 0;
  target->expires = now + timeout_ms(state);
  target->gen = gen;
  return target;
}

// A deliberately small tracker, not a validating firewall (no sequence-number
// windows as in Linux conntrack): its only job is to choose a timeout so that
// half-open and closed connections give their slots back soon, while live
// ones keep their Pod (Maglev §3.3).  Each direction's entry is advanced by
// its own packets.
//   FIN or RST                 -> Closing (RFC 9293 §3.6 / §3.5.2); every
//                                 later packet refreshes the short timeout,
//                                 so a half-close keeps working while data
//                                 still flows.
//   SYN+ACK on a reverse entry -> Established.  The Pod accepted the
//                                 connection; the reverse entry may see no
//                                 other packet for a long time (client talks,
//                                 server is idle), and expiring it early
//                                 would break reverse NAT of a live flow.
//                                 Cost: a spoofed-SYN flood to a listening
//                                 Pod leaves long-lived reverse entries.
//   SYN (no ACK, or a forward
//   entry's SYN+ACK)           -> SynSent, from SynSent or Closing (port
//                                 reuse, RFC 9293 §3.10.7.4 TIME-WAIT); on an
//                                 Established entry a SYN restarts nothing
//                                 (the Pod answers it with a challenge ACK,
//                                 RFC 5961 §4), so the state stays.
//   ACK without SYN on SynSent -> Established (the client's handshake ACK).
//   anything else              -> same state, timeout refreshed.
void FlowTable::touch(FlowEntry& e, uint8_t tcp_flags, uint32_t now) noexcept {
  FlowState s = e.state;
  switch (s) {
    case FlowState::kFree:
      return;  // nothing to refresh; the caller holds a stale pointer
    case FlowState::kUdp:
      break;
    case FlowState::kTcpSynSent:
    case FlowState::kTcpEstablished:
    case FlowState::kTcpClosing:
      if ((tcp_flags & (kTcpFin | kTcpRst)) != 0) {
        s = FlowState::kTcpClosing;
      } else if ((tcp_flags & kTcpSyn) != 0) {
        if ((tcp_flags & kTcpAck) != 0 && e.is_reverse()) {
          s = FlowState::kTcpEstablished;
        } else if (s != FlowState::kTcpEstablished) {
          s = FlowState::kTcpSynSent;
        }
      } else if ((tcp_flags & kTcpAck) != 0 && s == FlowState::kTcpSynSent) {
        s = FlowState::kTcpEstablished;
      }
      break;
  }
  e.state = s;
  e.expires = now + timeout_ms(s);
}

void FlowTable::erase(FlowEntry& e) noexcept {
  if (!e.is_free()) free_slot(e);
}

uint32_t FlowTable::expire_some(uint32_t now, uint32_t budget) noexcept {
  budget = std::min(budget, n_buckets_);
  uint32_t freed = 0;
  for (uint32_t i = 0; i < budget; ++i) {
    for (FlowEntry& e : buckets_[cursor_].slots) {
      if (!e.is_free() && is_expired(e.expires, now)) {
        free_slot(e);
        ++freed;
      }
    }
    cursor_ = (cursor_ + 1 == n_buckets_) ? 0 : cursor_ + 1;
  }
  return freed;
}

}  // namespace podgate::dp
