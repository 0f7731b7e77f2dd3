#include "dataplane/flow_table.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "dataplane/checksum.hpp"

namespace podgate::dp {

namespace {

uint32_t buckets_for(uint32_t capacity) noexcept {
  constexpr uint32_t k = FlowTable::kConnectionsPerBucket;  // the same for every family
  return std::max<uint32_t>(2, (capacity + k - 1) / k);
}

}  // namespace

template <class F>
BasicFlowTable<F>::BasicFlowTable(uint32_t capacity, FlowTimeouts timeouts) {
  if (capacity == 0 || capacity > kMaxCapacity) {
    throw std::invalid_argument("flow table capacity " + std::to_string(capacity) +
                                " is not in 1.." + std::to_string(kMaxCapacity));
  }
  for (uint32_t t : {timeouts.tcp_syn_ms, timeouts.tcp_established_ms,
                     timeouts.tcp_fin_ms, timeouts.tcp_closing_ms, timeouts.udp_ms}) {
    if (t == 0 || t > kMaxTimeoutMs) {
      throw std::invalid_argument("flow timeout " + std::to_string(t) +
                                  " ms is not in 1.." + std::to_string(kMaxTimeoutMs));
    }
  }
  auto timeout_of = [&](FlowState s) -> uint32_t& { return timeout_of_state_[static_cast<uint8_t>(s)]; };
  timeout_of(FlowState::kTcpSynSent) = timeouts.tcp_syn_ms;
  timeout_of(FlowState::kTcpSynReceived) = timeouts.tcp_syn_ms;
  timeout_of(FlowState::kTcpEstablished) = timeouts.tcp_established_ms;
  timeout_of(FlowState::kTcpClientFin) = timeouts.tcp_fin_ms;
  timeout_of(FlowState::kTcpPodFin) = timeouts.tcp_fin_ms;
  timeout_of(FlowState::kTcpClosing) = timeouts.tcp_closing_ms;
  timeout_of(FlowState::kUdp) = timeouts.udp_ms;
  capacity_ = capacity;
  n_buckets_ = buckets_for(capacity);
  n_other_buckets_ = n_buckets_ - 1;
  // Value-initialised: every record kFree, every slot empty.  The only
  // allocations.
  flows_ = DpVector<F>(capacity_);
  buckets_ = DpVector<Bucket>(n_buckets_);
  half_open_ = DpVector<HalfOpen>(capacity_);
  for (uint32_t i = capacity_; i-- > 0;) {
    flows_[i].expires = free_head_;
    free_head_ = i;
  }
}

template <class F>
uint64_t BasicFlowTable<F>::memory_bytes(uint32_t capacity) noexcept {
  return uint64_t{capacity} * sizeof(F) + uint64_t{buckets_for(capacity)} * sizeof(Bucket) +
         uint64_t{capacity} * sizeof(HalfOpen);
}

// insert()'s general placement, when put() could not: a tag of the key in
// its buckets (maybe a flow holding the key), or both buckets full.
template <class F>
bool BasicFlowTable<F>::place(const Key& key, const Probe& where, uint32_t ref, uint32_t now,
                      bool absent) noexcept {
  const uint32_t b[2] = {where.first, second_of(where)};
  const uint16_t t = where.tag();
  // A flow already holding the key ends: keys stay unique.
  for (uint32_t k = 0; k < 2 && !absent; ++k) {
    const Bucket& bucket = buckets_[b[k]];
    for (uint32_t m = match(bucket, t); m != 0; m &= m - 1) {
      const uint32_t other = ref_at(bucket, m);
      if ((other >> 1) != (ref >> 1) && has_key(flows_[other >> 1], (other & 1) != 0, key)) {
        free_flow(other >> 1);
        break;
      }
    }
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (put(where, ref, false)) return true;  // as insert()'s common case
    if (attempt != 0) break;
    // Both full (rare: flow_table_test fills tables to the last record).
    // Free the expired flows they reference, or else move one key to its
    // other bucket (one cuckoo step, as rte_hash does), then look again.
    bool room = false;
    for (uint32_t k = 0; k < 2; ++k) {
      const Bucket& bucket = buckets_[b[k]];
      for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
        const uint32_t other = bucket.refs[i];
        if (bucket.tags[i] != 0 && is_expired(flows_[other >> 1].expires, now)) {
          expire_flow(other >> 1);
          room = true;
        }
      }
    }
    for (uint32_t k = 0; k < 2 && !room; ++k) room = move_one_away(b[k]);
  }
  return false;
}

// Moves one key of bucket `from` (full) to the other bucket of its two, if
// that one has a free slot, and counts the move in its first bucket's
// displaced keys.  The key's hash comes from its record.
template <class F>
bool BasicFlowTable<F>::move_one_away(uint32_t from) noexcept {
  Bucket& src = buckets_[from];
  for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
    const uint32_t ref = src.refs[i];
    const F& f = flows_[ref >> 1];
    const uint32_t h = key_hash_of(f, (ref & 1) != 0);
    const uint32_t b1 = first_bucket(h);
    const bool to_second = b1 == from;
    Bucket& dst = buckets_[to_second ? second_bucket(h, b1) : b1];
    const uint32_t empty = match(dst, 0);
    if (empty == 0) continue;
    set_slot(dst, empty, src.tags[i], ref);
    src.tags[i] = 0;
    if (to_second) {
      ++src.displaced;
    } else {
      --dst.displaced;
    }
    return true;
  }
  return false;
}

template <class F>
void BasicFlowTable<F>::free_flow(uint32_t index) noexcept {
  F& f = flows_[index];
  const Probe keys[2] = {probe(key_hash_of(f, false)), probe(key_hash_of(f, true))};
  FreeList list{free_head_};
  release(buckets_.data(), f, index, keys, list);
  commit(list);
}

// Every record taken: free a few expired ones before giving up, the
// half-open ones due first.
template <class F>
bool BasicFlowTable<F>::reclaim(uint32_t now) noexcept {
  expire_half_open(now, 4 * kSlotsPerBucket);
  if (free_head_ == kNoFlow) expire_some(now, 4 * kSlotsPerBucket);
  return free_head_ != kNoFlow;
}

template <class F>
bool BasicFlowTable<F>::place_reverse(uint32_t index, const Probe& where, uint32_t now) noexcept {
  return place(flows_[index].reverse_key(), where, index << 1 | 1, now, false);
}

// A new flow that could not be indexed gives its record back.
template <class F>
F* BasicFlowTable<F>::drop(uint32_t index) noexcept {
  to_free_list(flows_[index], index);
  return nullptr;
}

template <class F>
F* BasicFlowTable<F>::unplace_and_drop(const Probe& forward, uint32_t index) noexcept {
  unplace(forward, index << 1);
  return drop(index);
}

// Runs of records up to the end of the array, so that a record costs a
// state test and, for a flow in use, an expiry test: no wrap test per
// record.  A record's address advances by pointer; records never move, so
// freeing one leaves the pointers valid.
template <class F>
uint32_t BasicFlowTable<F>::expire_some(uint32_t now, uint32_t budget) noexcept {
  budget = std::min(budget, capacity_);
  F* const base = flows_.data();
  uint32_t freed = 0;
  uint32_t at = cursor_;
  while (budget != 0) {
    const uint32_t run = std::min(budget, capacity_ - at);
    budget -= run;
    F* const end = base + at + run;
    for (F* f = base + at; f != end; ++f) {
      if (!f->is_free() && is_expired(f->expires, now)) [[unlikely]] {
        free_flow(static_cast<uint32_t>(f - base));
        ++freed;
      }
    }
    at += run;
    if (at == capacity_) at = 0;
  }
  cursor_ = at;
  expired_ += freed;
  return freed;
}

template <class F>
bool BasicFlowTable<F>::index_is_consistent() const {
  std::vector<uint32_t> displaced(n_buckets_);
  uint64_t slots = 0;
  for (uint32_t b = 0; b < n_buckets_; ++b) {
    const Bucket& bucket = buckets_[b];
    for (uint32_t i = 0; i < kSlotsPerBucket; ++i) {
      if (bucket.tags[i] == 0) continue;
      ++slots;
      const uint32_t ref = bucket.refs[i];
      if ((ref >> 1) >= capacity_ || flows_[ref >> 1].is_free()) return false;
      const Probe p = probe(key_hash_of(flows_[ref >> 1], (ref & 1) != 0));
      if (p.tag() != bucket.tags[i] || (p.first != b && second_of(p) != b)) return false;
      if (p.first != b) ++displaced[p.first];
    }
  }
  if (slots != 2 * uint64_t{size_}) return false;
  for (uint32_t b = 0; b < n_buckets_; ++b) {
    if (displaced[b] != buckets_[b].displaced) return false;
  }
  return true;
}

template class BasicFlowTable<Flow>;
template class BasicFlowTable<Flow6>;

}  // namespace podgate::dp
