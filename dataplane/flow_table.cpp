#include "dataplane/flow_table.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace podgate::dp {

namespace {

constexpr uint8_t kTcpFin = 0x01;
constexpr uint8_t kTcpSyn = 0x02;
constexpr uint8_t kTcpRst = 0x04;
constexpr uint8_t kTcpAck = 0x10;

uint32_t buckets_for(uint32_t capacity) noexcept {
  constexpr uint32_t k = FlowTable::kConnectionsPerBucket;
  return std::max<uint32_t>(2, (capacity + k - 1) / k);
}

}  // namespace

FlowTable::FlowTable(uint32_t capacity, FlowTimeouts timeouts) : timeouts_(timeouts) {
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
  capacity_ = capacity;
  n_buckets_ = buckets_for(capacity);
  // Value-initialised: every record kFree, every slot empty.  The only
  // allocations.
  flows_ = DpVector<Flow>(capacity_);
  buckets_ = DpVector<Bucket>(n_buckets_);
  for (uint32_t i = capacity_; i-- > 0;) {
    flows_[i].expires = free_head_;
    free_head_ = i;
  }
}

uint64_t FlowTable::memory_bytes(uint32_t capacity) noexcept {
  return uint64_t{capacity} * sizeof(Flow) + uint64_t{buckets_for(capacity)} * sizeof(Bucket);
}

bool FlowTable::place(const FlowKey4& key, uint32_t hash, uint32_t ref, uint32_t now) noexcept {
  const uint32_t b1 = first_bucket(hash);
  const uint32_t b[2] = {b1, second_bucket(hash, b1)};
  const uint16_t t = tag(hash);
  // A flow already holding the key ends: keys stay unique.
  for (const uint32_t bi : b) {
    const Bucket& bucket = buckets_[bi];
    for (uint32_t m = match(bucket, t); m != 0; m &= m - 1) {
      const uint32_t other = bucket.refs[lane(m)];
      if ((other >> 1) != (ref >> 1) && has_key(flows_[other >> 1], (other & 1) != 0, key)) {
        free_flow(other >> 1);
        break;
      }
    }
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    const uint32_t free0 = static_cast<uint32_t>(std::popcount(match(buckets_[b[0]], 0)));
    const uint32_t free1 = static_cast<uint32_t>(std::popcount(match(buckets_[b[1]], 0)));
    if (free0 != 0 || free1 != 0) {
      // Balanced allocation: the emptier bucket, ties to the first.
      Bucket& bucket = buckets_[free1 > free0 ? b[1] : b[0]];
      const uint32_t i = lane(match(bucket, 0));
      bucket.tags[i] = t;
      bucket.refs[i] = ref;
      return true;
    }
    if (attempt != 0) break;
    // Both full (rare: flow_table_test fills tables to the last record).
    // Free the expired flows they reference, or else move one key to its
    // other bucket (one cuckoo step, as rte_hash does), then look again.
    bool room = false;
    for (const uint32_t bi : b) {
      for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
        const uint32_t other = buckets_[bi].refs[i];
        if (buckets_[bi].tags[i] != 0 && is_expired(flows_[other >> 1].expires, now)) {
          free_flow(other >> 1);
          room = true;
        }
      }
    }
    for (uint32_t k = 0; k < 2 && !room; ++k) room = move_one_away(b[k]);
  }
  return false;
}

// Moves one key of bucket `from` to the other bucket of its two, if that
// one has a free slot.  The key's hash comes from its record.
bool FlowTable::move_one_away(uint32_t from) noexcept {
  Bucket& src = buckets_[from];
  for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
    const uint32_t ref = src.refs[i];
    const Flow& f = flows_[ref >> 1];
    const uint32_t h = hash((ref & 1) != 0 ? f.reverse_key() : f.forward_key());
    const uint32_t b1 = first_bucket(h);
    const uint32_t alt = b1 != from ? b1 : second_bucket(h, b1);
    Bucket& dst = buckets_[alt];
    const uint32_t empty = match(dst, 0);
    if (empty == 0) continue;
    const uint32_t j = lane(empty);
    dst.tags[j] = src.tags[i];
    dst.refs[j] = ref;
    src.tags[i] = 0;
    return true;
  }
  return false;
}

void FlowTable::unplace(uint32_t hash, uint32_t ref) noexcept {
  const uint32_t b1 = first_bucket(hash);
  const uint16_t t = tag(hash);
  for (const uint32_t b : {b1, second_bucket(hash, b1)}) {
    Bucket& bucket = buckets_[b];
    for (uint32_t m = match(bucket, t); m != 0; m &= m - 1) {
      const uint32_t i = lane(m);
      if (bucket.refs[i] == ref) {
        bucket.tags[i] = 0;
        return;
      }
    }
  }
}

void FlowTable::free_flow(uint32_t index) noexcept {
  Flow& f = flows_[index];
  unplace(hash(f.forward_key()), index << 1);
  unplace(hash(f.reverse_key()), index << 1 | 1);
  if (ended_ != nullptr) ended_[f.stats_slot].flows_ended.add();
  f.state = FlowState::kFree;
  f.expires = free_head_;
  free_head_ = index;
  --size_;
}

Flow* FlowTable::insert(const FlowKey4& key, uint32_t hash, Ip4 pod, rte_be16_t pod_port,
                        FlowState state, uint32_t gen, uint32_t now, uint16_t stats_slot) noexcept {
  if (free_head_ == kNoFlow) {
    // Every record taken: free a few expired ones before giving up.
    expire_some(now, 4 * kSlotsPerBucket);
    if (free_head_ == kNoFlow) return nullptr;
  }
  const uint32_t index = free_head_;
  Flow& f = flows_[index];
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
  f.reserved = 0;
  f.expires = now + timeout_ms(state);
  f.gen = gen;
  ++size_;
  // Index it under both keys, or not at all.  The new flow is live, so
  // place() never frees it while making room.
  if (place(key, hash, index << 1, now)) {
    const FlowKey4 reverse = f.reverse_key();
    const uint32_t reverse_hash = FlowTable::hash(reverse);
    if (place(reverse, reverse_hash, index << 1 | 1, now)) return &f;
    unplace(hash, index << 1);
  }
  f.state = FlowState::kFree;
  f.expires = free_head_;
  free_head_ = index;
  --size_;
  return nullptr;
}

// A deliberately small tracker, not a validating firewall (no sequence-number
// windows as in Linux conntrack): its only job is to choose a timeout so that
// half-open and closed connections give their records back soon, while live
// ones keep their Pod (Maglev §3.3).  Packets of both directions advance the
// one state of their connection.
//   FIN or RST                 -> Closing (RFC 9293 §3.6 / §3.5.2); every
//                                 later packet refreshes the short timeout,
//                                 so a half-close keeps working while data
//                                 still flows.
//   SYN+ACK from the Pod       -> Established: the Pod accepted the
//                                 connection.  Cost: a spoofed-SYN flood to
//                                 a listening Pod leaves long-lived flows.
//   SYN (no ACK, or a SYN+ACK
//   from the client)           -> SynSent, from SynSent or Closing (port
//                                 reuse, RFC 9293 §3.10.7.4 TIME-WAIT); on an
//                                 Established flow a SYN restarts nothing
//                                 (the Pod answers it with a challenge ACK,
//                                 RFC 5961 §4), so the state stays.
//   ACK without SYN on SynSent -> Established (the handshake's last ACK).
//   anything else              -> same state, timeout refreshed.
FlowState FlowTable::next_state(FlowState s, bool reverse, uint8_t tcp_flags) noexcept {
  if (s != FlowState::kTcpSynSent && s != FlowState::kTcpEstablished &&
      s != FlowState::kTcpClosing) {
    return s;  // UDP (and kFree: nothing to advance)
  }
  if ((tcp_flags & (kTcpFin | kTcpRst)) != 0) return FlowState::kTcpClosing;
  if ((tcp_flags & kTcpSyn) != 0) {
    if ((tcp_flags & kTcpAck) != 0 && reverse) return FlowState::kTcpEstablished;
    return s == FlowState::kTcpEstablished ? s : FlowState::kTcpSynSent;
  }
  if ((tcp_flags & kTcpAck) != 0 && s == FlowState::kTcpSynSent) return FlowState::kTcpEstablished;
  return s;
}

uint32_t FlowTable::expire_some(uint32_t now, uint32_t budget) noexcept {
  budget = std::min(budget, capacity_);
  uint32_t freed = 0;
  for (uint32_t n = 0; n < budget; ++n) {
    const Flow& f = flows_[cursor_];
    if (!f.is_free() && is_expired(f.expires, now)) {
      free_flow(cursor_);
      ++freed;
    }
    cursor_ = (cursor_ + 1 == capacity_) ? 0 : cursor_ + 1;
  }
  return freed;
}

}  // namespace podgate::dp
