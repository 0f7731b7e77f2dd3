#include "control/publish/stats_slots.hpp"

#include <cstring>
#include <set>

namespace podgate::ctl {

namespace {

uint64_t word(const dp::ServiceKey& k) noexcept {
  uint64_t w;
  std::memcpy(&w, &k, sizeof w);
  return w;
}

bool service_less(const dp::ServiceKey& a, const dp::ServiceKey& b) { return word(a) < word(b); }

}  // namespace

TrafficTotals& TrafficTotals::operator+=(const TrafficTotals& o) noexcept {
  packets_in += o.packets_in;
  bytes_in += o.bytes_in;
  packets_out += o.packets_out;
  bytes_out += o.bytes_out;
  flows_created += o.flows_created;
  flows_ended += o.flows_ended;
  return *this;
}

TrafficTotals& TrafficTotals::operator-=(const TrafficTotals& o) noexcept {
  packets_in -= o.packets_in;
  bytes_in -= o.bytes_in;
  packets_out -= o.packets_out;
  bytes_out -= o.bytes_out;
  flows_created -= o.flows_created;
  flows_ended -= o.flows_ended;
  return *this;
}

bool operator<(const SlotKey& a, const SlotKey& b) noexcept {
  if (word(a.service) != word(b.service)) return word(a.service) < word(b.service);
  return a.backend < b.backend;
}

StatsSlots::StatsSlots(Reader read, uint64_t quarantine_ms, uint32_t capacity)
    : read_(std::move(read)), quarantine_ms_(quarantine_ms), retired_(service_less) {
  // Handed out from the low end (free_ is used as a stack).
  for (uint32_t i = capacity; i-- > 1;) free_.push_back(static_cast<uint16_t>(i));
}

TrafficTotals StatsSlots::totals(const Slot& s) const {
  TrafficTotals t = read_(s.index);
  t -= s.base;
  return t;
}

uint16_t StatsSlots::slot_for(const dp::ServiceKey& service, const dp::Backend& backend) {
  const SlotKey key{service, backend};
  if (auto it = by_key_.find(key); it != by_key_.end()) {
    if (it->second.released_ms) {
      since_commit_.push_back(Taken{key, it->second.released_ms});
      it->second.released_ms.reset();  // back before its quarantine ended
      --quarantined_count_;
    }
    return it->second.index;
  }
  if (free_.empty()) {
    ++exhausted_;
    return dp::kUntrackedSlot;
  }
  Slot s;
  s.index = free_.back();
  free_.pop_back();
  s.base = read_(s.index);
  by_key_.emplace(key, s);
  since_commit_.push_back(Taken{key, std::nullopt});
  return s.index;
}

void StatsSlots::abandon() {
  // Newest first, so a slot index goes back onto the free stack where it
  // came from.
  for (auto t = since_commit_.rbegin(); t != since_commit_.rend(); ++t) {
    auto it = by_key_.find(t->key);
    if (it == by_key_.end()) continue;
    if (t->was_released_ms) {
      it->second.released_ms = t->was_released_ms;
      ++quarantined_count_;
    } else {
      free_.push_back(it->second.index);
      by_key_.erase(it);
    }
  }
  since_commit_.clear();
}

void StatsSlots::retain(const dp::Snapshot& snap, uint64_t now_ms) {
  std::set<SlotKey> used;
  for (const auto& svc : snap.owned_services) {
    const dp::ServiceKey sk{svc->vip, svc->port, svc->proto, 0};
    for (const dp::Backend& b : svc->alive) used.insert(SlotKey{sk, b});
  }
  for (auto& [key, slot] : by_key_) {
    if (!slot.released_ms && used.count(key) == 0) {
      slot.released_ms = now_ms;
      ++quarantined_count_;
    }
  }
  reclaim(now_ms);
}

void StatsSlots::release(const std::vector<std::shared_ptr<const dp::ServiceData>>& dropped,
                         const dp::Snapshot& snap, uint64_t now_ms) {
  for (const auto& svc : dropped) {
    const dp::ServiceKey sk{svc->vip, svc->port, svc->proto, 0};
    const dp::ServiceData* now = snap.find_service(svc->vip, svc->port, svc->proto);
    for (const dp::Backend& b : svc->alive) {
      if (now != nullptr && now->keeps(b)) continue;
      auto it = by_key_.find(SlotKey{sk, b});
      if (it == by_key_.end() || it->second.released_ms) continue;
      it->second.released_ms = now_ms;
      ++quarantined_count_;
    }
  }
}

void StatsSlots::reclaim(uint64_t now_ms) {
  for (auto it = by_key_.begin(); it != by_key_.end();) {
    const Slot& s = it->second;
    if (!s.released_ms || now_ms - *s.released_ms < quarantine_ms_) {
      ++it;
      continue;
    }
    retired_[it->first.service] += totals(s);
    free_.push_back(s.index);
    --quarantined_count_;
    it = by_key_.erase(it);
  }
}

std::optional<TrafficTotals> StatsSlots::endpoint(const dp::ServiceKey& service,
                                                  const dp::Backend& backend) const {
  auto it = by_key_.find(SlotKey{service, backend});
  if (it == by_key_.end()) return std::nullopt;
  return totals(it->second);
}

TrafficTotals StatsSlots::service(const dp::ServiceKey& service) const {
  TrafficTotals t;
  if (auto r = retired_.find(service); r != retired_.end()) t = r->second;
  auto it = by_key_.lower_bound(SlotKey{service, dp::Backend{}});
  for (; it != by_key_.end() && it->first.service == service; ++it) t += totals(it->second);
  return t;
}

}  // namespace podgate::ctl
