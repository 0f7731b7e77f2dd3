// The snapshot builder, whole and incremental; see snapshot_builder.hpp.
#include "control/publish/snapshot_builder.hpp"

#include <algorithm>
#include <cstring>
#include <optional>
#include <type_traits>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "control/config/memory_plan.hpp"
#include "control/publish/service_port_build.hpp"
#include "control/publish/service_traffic.hpp"
#include "dataplane/maglev.hpp"

namespace podgate::ctl {

std::string maglev_key(const dp::Backend& b) {
  std::string key = dp::to_string(b.ip);
  key.reserve(key.size() + 6);  // one allocation: "172.17.0.10:8080" is past the inline 15
  return key.append(1, ':').append(std::to_string(dp::from_be16(b.port)));
}

std::string maglev_key(const dp::Backend6& b) {
  std::string key = "[";
  key.append(dp::to_string(b.ip)).append("]:").append(std::to_string(dp::from_be16(b.port)));
  return key;
}

namespace {

using namespace build_detail;
using DataPtr = std::shared_ptr<const dp::ServiceData>;

// One service of a built snapshot: the per-service data of its ports.
struct BuiltService {
  std::shared_ptr<const ServiceConfig> config;  // held: its address stays its identity
  uint32_t id = 0;
  std::vector<DataPtr> ports;
};

// The service ports that have an endpoint key among their alive backends;
// one in the common case, without a heap allocation.
struct Owners {
  const dp::ServiceData* first = nullptr;
  std::vector<const dp::ServiceData*> more;

  size_t size() const noexcept { return (first != nullptr ? 1 : 0) + more.size(); }
  void add(const dp::ServiceData* d) {
    if (first == nullptr) {
      first = d;
    } else {
      more.push_back(d);
    }
  }
  void remove(const dp::ServiceData* d) {
    if (first == d) {
      first = more.empty() ? nullptr : more.back();
      if (!more.empty()) more.pop_back();
    } else if (auto it = std::find(more.begin(), more.end(), d); it != more.end()) {
      more.erase(it);
    }
  }
};

// What the builder knows of the snapshot it built last on a chain: which
// service built what, the ids in use, and who backs each endpoint key (the
// backends map maps a key only while exactly one service port has it).
// Shared along an incremental chain and changed in place, one delta at a
// time (see usable_index).
struct BuildIndex {
  uint64_t generation = 0;
  uint32_t max_table_size = 0;  // [dataplane] maglev_table_size it was built with
  std::unordered_map<const ServiceConfig*, BuiltService> services;  // by identity
  std::vector<uint32_t> free_ids;
  uint32_t next_id = 0;
  std::unordered_map<uint64_t, Owners> backend_owners;
  std::unordered_map<uint32_t, uint32_t> vip_refs;  // VIP (host order) -> services with it
};

// How one snapshot's index differs from its predecessor's.
struct BuildDelta {
  uint64_t base_generation = 0;
  uint64_t generation = 0;
  std::vector<const ServiceConfig*> removed;
  std::vector<BuiltService> added;
  size_t ids_taken = 0;            // popped from the back of free_ids
  std::vector<uint32_t> ids_freed;  // then pushed
  uint32_t next_id = 0;
  std::vector<std::pair<uint64_t, const dp::ServiceData*>> owners_removed;
  std::vector<std::pair<uint64_t, const dp::ServiceData*>> owners_added;
  std::vector<std::pair<uint32_t, int>> vip_changes;
};

struct BuilderState {
  std::shared_ptr<BuildIndex> index;
  std::shared_ptr<const BuildDelta> delta;  // null: `index` is this snapshot's already
};

// No snapshot's generation: an index being changed.
constexpr uint64_t kHalfApplied = ~uint64_t{0};

void apply(BuildIndex& index, const BuildDelta& d) {
  // Memory running out half-way (the build then fails, and nothing is
  // published) must leave the index unusable, so that the next build starts
  // over (usable_index), not apply the delta a second time on top.
  index.generation = kHalfApplied;
  for (const ServiceConfig* r : d.removed) index.services.erase(r);
  for (const BuiltService& a : d.added) index.services.emplace(a.config.get(), a);
  index.free_ids.resize(index.free_ids.size() - d.ids_taken);
  index.free_ids.insert(index.free_ids.end(), d.ids_freed.begin(), d.ids_freed.end());
  index.next_id = d.next_id;
  for (const auto& [key, data] : d.owners_removed) {
    auto it = index.backend_owners.find(key);
    if (it == index.backend_owners.end()) continue;
    it->second.remove(data);
    if (it->second.size() == 0) index.backend_owners.erase(it);
  }
  for (const auto& [key, data] : d.owners_added) index.backend_owners[key].add(data);
  for (const auto& [vip, change] : d.vip_changes) {
    uint32_t& n = index.vip_refs[vip];
    n = static_cast<uint32_t>(static_cast<int64_t>(n) + change);
    if (n == 0) index.vip_refs.erase(vip);
  }
  index.generation = d.generation;
}

// The index describing `previous`, or null.  An incremental snapshot's
// delta is applied here, when the snapshot is built on: it was published
// then (a snapshot never published is never built on), and a build that
// is thrown away leaves the index as it was.
std::shared_ptr<BuildIndex> usable_index(const dp::Snapshot* previous) {
  if (previous == nullptr || !previous->builder_state) return nullptr;
  const auto& state = *static_cast<const BuilderState*>(previous->builder_state.get());
  BuildIndex& index = *state.index;
  if (index.generation == previous->generation) return state.index;
  if (state.delta && state.delta->base_generation == index.generation) {
    apply(index, *state.delta);
    return state.index;
  }
  return nullptr;  // built on from elsewhere: start over
}

uint64_t pack(const dp::ServiceKey& k) {
  uint64_t v;
  std::memcpy(&v, &k, sizeof v);
  return v;
}
dp::ServiceKey unpack(uint64_t v) {
  dp::ServiceKey k;
  std::memcpy(static_cast<void*>(&k), &v, sizeof k);
  return k;
}

using Candidate = BasicCandidate<dp::Ip4>;

// Whether the service has an IPv4 VIP the incremental builder below keeps
// (IPv6 VIPs: build_services6()).
bool forwards(const ServiceConfig& s) { return vip_of<dp::Ip4>(s).has_value(); }

class Builder {
 public:
  Builder(const SnapshotInputs& in, BuildStats& stats) : in_(in), cfg_(*in.config), stats_(stats) {}

  std::unique_ptr<dp::Snapshot> run() {
    snap_ = std::make_unique<dp::Snapshot>();
    snap_->generation = in_.generation;
    // Workers punt UDP to dns_vip:53 to the control thread, and answer ARP
    // and ping for it like a VIP.
    if (cfg_.dns.service_ip) snap_->dns_vip = *cfg_.dns.service_ip;
    snap_->dns_rate_limit = cfg_.dns.rate_limit;
    build_ports_and_routes(cfg_, in_.port_macs, *snap_);
    const dp::Snapshot* prev = in_.previous;
    snap_->routed_by_16 = prev != nullptr && prev->routed_by_16 && prev->routes == snap_->routes
                              ? prev->routed_by_16
                              : dp::RoutedBy16::make(snap_->routes);
    snap_->routed_trie6 = prev != nullptr && prev->routed_trie6 && prev->routes6 == snap_->routes6
                              ? prev->routed_trie6
                              : dp::RoutedTrie6::make(snap_->routes6);

    index_ = usable_index(in_.previous);
    if (!(index_ && in_.changes && index_->max_table_size == cfg_.dataplane.maglev_table_size &&
          take_changes())) {
      take_everything();
    }
    build_services();
    finish();
    build_services6(cfg_, in_.previous, in_.slots, *snap_, stats_);
    snap_->index_own_addresses();
    return std::move(snap_);
  }

 private:
  // Incremental: the services the Registry says changed.  False when the
  // index does not know one it says was removed (not this chain's config).
  bool take_changes() {
    for (const auto& r : in_.changes->removed) {
      auto it = index_->services.find(r.get());
      if (it == index_->services.end()) return false;
      removed_.push_back(&it->second);
    }
    added_ = in_.changes->added;
    incremental_ = true;
    return true;
  }

  // Whole: every service of the config; the previous index (if any) gives
  // ids by name and data to share, else the previous snapshot's data.
  void take_everything() {
    removed_.clear();
    added_.clear();
    incremental_ = false;
    if (index_) {
      for (const auto& [identity, built] : index_->services) removed_.push_back(&built);
    } else if (in_.previous != nullptr) {
      for (const DataPtr& d : in_.previous->owned_services) {
        old_ports_.emplace(pack(dp::ServiceKey{d->vip, d->port, d->proto, 0}), d);
      }
    }
    for (size_t i = 0; i < cfg_.services.size(); ++i) added_.push_back(i);
    if (in_.slots != nullptr) in_.slots->claims_complete();
  }

  uint32_t take_id(const std::string& name) {
    if (auto it = removed_ids_.find(name); it != removed_ids_.end()) {
      const uint32_t id = it->second;
      removed_ids_.erase(it);
      return id;
    }
    if (index_ && delta_->ids_taken < index_->free_ids.size()) {
      return index_->free_ids[index_->free_ids.size() - 1 - delta_->ids_taken++];
    }
    return delta_->next_id++;
  }

  void build_services() {
    delta_ = std::make_shared<BuildDelta>();
    delta_->base_generation = index_ ? index_->generation : 0;
    delta_->generation = in_.generation;
    delta_->next_id = index_ ? index_->next_id : 0;
    for (const BuiltService* r : removed_) {
      removed_ids_.emplace(r->config->ns + "/" + r->config->name, r->id);
      for (const DataPtr& d : r->ports) old_ports_.emplace(pack(dp::ServiceKey{d->vip, d->port, d->proto, 0}), d);
      delta_->removed.push_back(r->config.get());
      if (in_.slots != nullptr) unclaim_ports(*in_.slots, *r->config);
      if (forwards(*r->config)) delta_->vip_changes.emplace_back(vip_of<dp::Ip4>(*r->config)->host(), -1);
    }
    for (size_t si : added_) {
      const ServiceConfig& svc = cfg_.services[si];
      BuiltService b;
      b.config = cfg_.services.shared(si);
      b.id = take_id(svc.ns + "/" + svc.name);
      if (in_.slots != nullptr) claim_ports(*in_.slots, svc);
      if (forwards(svc)) {
        delta_->vip_changes.emplace_back(vip_of<dp::Ip4>(svc)->host(), +1);
        build_ports(svc, b);
      }
      delta_->added.push_back(std::move(b));
    }
    for (const auto& [name, id] : removed_ids_) delta_->ids_freed.push_back(id);
    // What is no longer used: dropped from the maps and the owners.
    std::unordered_set<const dp::ServiceData*> kept;
    for (const BuiltService& a : delta_->added) {
      for (const DataPtr& d : a.ports) kept.insert(d.get());
    }
    for (const BuiltService* r : removed_) {
      for (const DataPtr& d : r->ports) {
        if (kept.count(d.get()) != 0) continue;
        dropped_.insert(d.get());
        stats_.dropped.push_back(d);
        for (const dp::Backend& be : d->alive) {
          delta_->owners_removed.emplace_back(pack(dp::ServiceKey{be.ip, be.port, d->proto, 0}), d.get());
        }
      }
    }
  }

  void build_ports(const ServiceConfig& svc, BuiltService& b) {
    const dp::Ip4 vip = *vip_of<dp::Ip4>(svc);
    const uint32_t table_size = maglev_table_size_of(svc, cfg_.dataplane);
    for (const ServicePortConfig& port : svc.ports) {
      Candidate c{dp::ServiceKey{vip, dp::to_be16(port.port), port.protocol, 0},
                  svc.session_affinity == SessionAffinity::kClientIp, b.id, table_size, {}, {}};
      choose_endpoints(svc, port, c);
      DataPtr data;
      if (auto it = old_ports_.find(pack(c.key)); it != old_ports_.end() && same_forwarding(*it->second, c)) {
        data = it->second;
        ++stats_.services_shared;
      } else {
        data = build_service_port(c, in_.slots);
        ++stats_.services_built;
        for (const dp::Backend& be : data->alive) {
          delta_->owners_added.emplace_back(pack(dp::ServiceKey{be.ip, be.port, c.key.proto, 0}), data.get());
        }
      }
      b.ports.push_back(std::move(data));
    }
  }

  // The maps, the VIP list and the owned data: patched copies of the
  // previous snapshot's (incremental), or made from scratch.
  void finish() {
    dp::Snapshot& s = *snap_;
    if (incremental_) {
      const dp::Snapshot& prev = *in_.previous;
      s.services = prev.services;
      s.backends = prev.backends;
      s.vips = prev.vips;
      s.owned_services.reserve(prev.owned_services.size() + delta_->added.size());
      for (const DataPtr& d : prev.owned_services) {
        if (dropped_.count(d.get()) == 0) s.owned_services.push_back(d);
      }
      for (const BuiltService* r : removed_) {
        for (const DataPtr& d : r->ports) s.services.erase(dp::ServiceKey{d->vip, d->port, d->proto, 0});
      }
    }
    std::unordered_set<const dp::ServiceData*> owned;
    if (incremental_) {
      for (const BuiltService* r : removed_) {
        for (const DataPtr& d : r->ports) {
          if (dropped_.count(d.get()) == 0) owned.insert(d.get());  // shared: still in owned_services
        }
      }
    }
    for (const BuiltService& a : delta_->added) {
      for (const DataPtr& d : a.ports) {
        s.services.assign(dp::ServiceKey{d->vip, d->port, d->proto, 0}, d.get());
        if (owned.insert(d.get()).second) s.owned_services.push_back(d);
      }
    }
    patch_backends();
    patch_vips();

    auto state = std::make_shared<BuilderState>();
    if (incremental_) {
      state->index = index_;
      state->delta = delta_;
      stats_.incremental = true;
      // Service ports not looked at are shared too.
      stats_.services_shared = static_cast<uint32_t>(s.services.size()) - stats_.services_built;
    } else {
      // A fresh index: the old one (if any) stays the previous snapshot's.
      auto fresh = std::make_shared<BuildIndex>();
      fresh->max_table_size = cfg_.dataplane.maglev_table_size;
      if (index_) {
        fresh->free_ids = index_->free_ids;
        fresh->generation = index_->generation;
      }
      delta_->removed.clear();
      delta_->owners_removed.clear();
      delta_->vip_changes.erase(std::remove_if(delta_->vip_changes.begin(), delta_->vip_changes.end(),
                                               [](const auto& v) { return v.second < 0; }),
                                delta_->vip_changes.end());
      delta_->base_generation = fresh->generation;
      // Owners of every service port, shared ones included (patch_backends
      // sorted them).
      delta_->owners_added.clear();
      apply(*fresh, *delta_);
      fresh->backend_owners.reserve(all_owners_.size());
      for (const auto& [key, data] : all_owners_) fresh->backend_owners[key].add(data);
      state->index = std::move(fresh);
    }
    s.builder_state = std::move(state);
  }

  // A backend key maps to its service port only while exactly one has it.
  void patch_backends() {
    dp::Snapshot& s = *snap_;
    if (!incremental_) {
      // Every (key, service port), sorted by key: a key once maps.
      auto& all = all_owners_;
      for (const BuiltService& a : delta_->added) {
        for (const DataPtr& d : a.ports) {
          for (const dp::Backend& be : d->alive) {
            all.emplace_back(pack(dp::ServiceKey{be.ip, be.port, d->proto, 0}), d.get());
          }
        }
      }
      std::sort(all.begin(), all.end(),
                [](const auto& x, const auto& y) { return x.first < y.first; });
      std::vector<dp::ServiceMap::Item> items;
      items.reserve(all.size());
      for (size_t i = 0; i < all.size();) {
        size_t j = i + 1;
        while (j < all.size() && all[j].first == all[i].first) ++j;
        if (j == i + 1) items.emplace_back(unpack(all[i].first), all[i].second);
        i = j;
      }
      s.backends = dp::ServiceMap(items);
      return;
    }
    std::unordered_map<uint64_t, Owners> touched;
    auto owners_of = [&](uint64_t key) -> Owners& {
      auto [it, fresh] = touched.try_emplace(key);
      if (fresh) {
        if (auto o = index_->backend_owners.find(key); o != index_->backend_owners.end()) it->second = o->second;
      }
      return it->second;
    };
    for (const auto& [key, data] : delta_->owners_removed) owners_of(key).remove(data);
    for (const auto& [key, data] : delta_->owners_added) owners_of(key).add(data);
    for (const auto& [key, v] : touched) {
      if (v.size() == 1) {
        s.backends.assign(unpack(key), v.first);
      } else {
        s.backends.erase(unpack(key));
      }
    }
  }

  void patch_vips() {
    dp::Snapshot& s = *snap_;
    if (!incremental_) {
      for (const BuiltService& a : delta_->added) {
        if (forwards(*a.config)) s.vips.push_back(*vip_of<dp::Ip4>(*a.config));
      }
      std::sort(s.vips.begin(), s.vips.end());
      s.vips.erase(std::unique(s.vips.begin(), s.vips.end()), s.vips.end());
      return;
    }
    std::unordered_map<uint32_t, int64_t> refs;
    for (const auto& [vip, change] : delta_->vip_changes) {
      auto [it, fresh] = refs.try_emplace(vip, 0);
      if (fresh) {
        if (auto r = index_->vip_refs.find(vip); r != index_->vip_refs.end()) it->second = r->second;
      }
      it->second += change;
    }
    for (const auto& [host, n] : refs) {
      const dp::Ip4 vip = dp::Ip4::from_host(host);
      auto at = std::lower_bound(s.vips.begin(), s.vips.end(), vip);
      const bool present = at != s.vips.end() && *at == vip;
      if (n > 0 && !present) s.vips.insert(at, vip);
      if (n <= 0 && present) s.vips.erase(at);
    }
  }

  const SnapshotInputs& in_;
  const Config& cfg_;
  BuildStats& stats_;
  std::unique_ptr<dp::Snapshot> snap_;
  std::shared_ptr<BuildIndex> index_;
  bool incremental_ = false;
  std::vector<const BuiltService*> removed_;
  std::vector<size_t> added_;
  std::shared_ptr<BuildDelta> delta_;
  std::unordered_map<std::string, uint32_t> removed_ids_;  // "ns/name" -> id, until reused
  std::unordered_map<uint64_t, DataPtr> old_ports_;        // what may be shared, by key
  std::unordered_set<const dp::ServiceData*> dropped_;     // of removed_, not kept
  std::vector<std::pair<uint64_t, const dp::ServiceData*>> all_owners_;  // whole builds: sorted
};

}  // namespace

std::unique_ptr<dp::Snapshot> build_snapshot(const SnapshotInputs& in, BuildStats* stats) {
  BuildStats local;
  return Builder(in, stats != nullptr ? *stats : local).run();
}

}  // namespace podgate::ctl
