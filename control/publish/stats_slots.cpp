#include "control/publish/stats_slots.hpp"

#include <algorithm>
#include <utility>

namespace podgate::ctl {

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

StatsSlots::StatsSlots(Reader read, uint64_t quarantine_ms, uint32_t capacity)
    : read_(std::move(read)), quarantine_ms_(quarantine_ms) {
  // Handed out from the low end (free_ is used as a stack).
  for (uint32_t i = capacity; i-- > 1;) free_.push_back(static_cast<uint16_t>(i));
}

TrafficTotals StatsSlots::totals(const Slot& s) const {
  TrafficTotals t = read_(s.index);
  t -= s.base;
  return t;
}

uint16_t StatsSlots::slot_for(const SlotKey& key) {
  // One descent of the map for both the lookup and the insertion.
  auto it = by_key_.lower_bound(key);
  if (it != by_key_.end() && it->first == key) {
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
  by_key_.emplace_hint(it, key, s);
  since_commit_.push_back(Taken{key, std::nullopt});
  return s.index;
}

void StatsSlots::claim(ServicePortId port, std::vector<SlotService> vips) {
  claims_.emplace_back(std::move(port), std::move(vips));
}

void StatsSlots::unclaim(ServicePortId port) { unclaims_.push_back(std::move(port)); }

void StatsSlots::commit_taken() {
  since_commit_.clear();
  // Taken first, so memory running out below leaves no claim for the next
  // build (whose caller then builds whole: claims_complete() mends all).
  auto claims = std::exchange(claims_, {});
  const auto unclaims = std::exchange(unclaims_, {});
  const bool complete = std::exchange(claims_complete_, false);
  std::sort(claims.begin(), claims.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  const auto claimed = [&claims](const ServicePortId& port) {
    auto it = std::lower_bound(claims.begin(), claims.end(), port,
                               [](const auto& c, const ServicePortId& p) { return c.first < p; });
    return it != claims.end() && it->first == port;
  };
  // Service ports not in the published snapshot: forgotten.
  if (complete) {
    std::erase_if(ports_, [&](const auto& p) { return !claimed(p.first); });
  } else {
    for (const ServicePortId& port : unclaims) {
      if (!claimed(port)) ports_.erase(port);
    }
  }
  for (const auto& [port, vips] : claims) count_vips(ports_[port], vips);
}

void StatsSlots::count_vips(PortCount& count, const std::vector<SlotService>& vips) {
  // Live connections (created - ended) are a gauge, the connections to
  // the VIP ports the service port has now; everything else, counters.
  //
  // A VIP port that left: what it counted here stays this service port's,
  // but not its open connections, whose ends are counted in its own
  // totals only: carried as ended.
  std::erase_if(count.vips, [&](const auto& had) {
    if (std::find(vips.begin(), vips.end(), had.first) != vips.end()) return false;
    TrafficTotals t = service(had.first);
    t -= had.second;
    t.flows_ended = t.flows_created;
    count.carried += t;
    return true;
  });
  // A VIP port that joined: from its totals now, but with the connections
  // open on it (as if created from here on), so that their ends take
  // nothing from the ones made since.
  for (const SlotService& vip : vips) {
    const bool had = std::any_of(count.vips.begin(), count.vips.end(),
                                 [&](const auto& v) { return v.first == vip; });
    if (had) continue;
    rebase(vip);
    TrafficTotals base = service(vip);
    base.flows_ended = base.flows_created;
    count.vips.emplace_back(vip, base);
  }
}

void StatsSlots::rebase(const SlotService& service) {
  auto it = by_key_.lower_bound(SlotKey{service, dp::IpAddr{}, 0});
  for (; it != by_key_.end() && it->first.service == service; ++it) {
    Slot& s = it->second;
    const TrafficTotals now = read_(s.index);
    TrafficTotals counted = now;
    counted -= s.base;
    retired_[service] += counted;
    s.base = now;
  }
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
  claims_.clear();
  unclaims_.clear();
  claims_complete_ = false;
}

void StatsSlots::retain(const dp::Snapshot& snap, uint64_t now_ms) {
  // The keys `snap` uses, sorted, walked beside by_key_ (sorted too): no
  // tree of 200k keys built and searched at 10k services.
  std::vector<SlotKey> used;
  auto use = [&used](const auto& services) {
    for (const auto& svc : services) {
      const SlotService service = SlotService::of(*svc);
      for (const auto& b : svc->alive) used.push_back(SlotKey::of(service, b));
    }
  };
  use(snap.owned_services);
  use(snap.owned_services6);
  std::sort(used.begin(), used.end());
  auto u = used.begin();
  for (auto& [key, slot] : by_key_) {
    while (u != used.end() && *u < key) ++u;
    if (!slot.released_ms && (u == used.end() || !(*u == key))) {
      slot.released_ms = now_ms;
      ++quarantined_count_;
    }
  }
  reclaim(now_ms);
}

template <class A>
void StatsSlots::release(const std::vector<std::shared_ptr<const dp::BasicServiceData<A>>>& dropped,
                         const dp::Snapshot& snap, uint64_t now_ms) {
  for (const auto& svc : dropped) {
    const SlotService service = SlotService::of(*svc);
    const dp::BasicServiceData<A>* now = snap.find_service(svc->vip, svc->port, svc->proto);
    for (const auto& b : svc->alive) {
      if (now != nullptr && now->keeps(b)) continue;
      auto it = by_key_.find(SlotKey::of(service, b));
      if (it == by_key_.end() || it->second.released_ms) continue;
      it->second.released_ms = now_ms;
      ++quarantined_count_;
    }
  }
}
template void StatsSlots::release(const std::vector<std::shared_ptr<const dp::ServiceData>>&,
                                  const dp::Snapshot&, uint64_t);
template void StatsSlots::release(const std::vector<std::shared_ptr<const dp::ServiceData6>>&,
                                  const dp::Snapshot&, uint64_t);

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

std::optional<TrafficTotals> StatsSlots::endpoint(const SlotKey& key) const {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  return totals(it->second);
}

TrafficTotals StatsSlots::service(const SlotService& service) const {
  TrafficTotals t;
  if (auto r = retired_.find(service); r != retired_.end()) t = r->second;
  auto it = by_key_.lower_bound(SlotKey{service, dp::IpAddr{}, 0});
  for (; it != by_key_.end() && it->first.service == service; ++it) t += totals(it->second);
  return t;
}

TrafficTotals StatsSlots::service_port(const ServicePortId& port) const {
  auto it = ports_.find(port);
  if (it == ports_.end()) return {};
  TrafficTotals t = it->second.carried;
  for (const auto& [vip, joined] : it->second.vips) {
    t += service(vip);
    t -= joined;
  }
  return t;
}

}  // namespace podgate::ctl
