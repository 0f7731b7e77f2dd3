// The Registry's layers and versions; see registry.hpp.
#include "control/publish/registry.hpp"

#include <algorithm>
#include <new>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "control/config/validate.hpp"
#include "control/config/service_index.hpp"

namespace podgate::ctl {

namespace {

// `s`, service i of `out` as desired, with `learnt` applied (apply_learnt()):
// out's service i is copied only when its endpoints change.  Reads only the
// learnt entries of `s`, found in O(log learnt).
void apply_learnt_to(const ServiceConfig& s, const LearntState& learnt, ServiceList& out, size_t i) {
  // The learnt entries of this service: a range of the ordered map.
  auto first = learnt.lower_bound(EndpointRef{s.ns, s.name, dp::IpAddr{}});
  if (first == learnt.end() || first->first.ns != s.ns || first->first.name != s.name) return;
  const HealthCheckConfig* check = s.health_check ? &*s.health_check : nullptr;
  // Endpoint index -> what was learnt, for the endpoints it changes.  A
  // service with many learnt endpoints (a rack of Pods failing their
  // check) finds them by hash, not by a scan each: O(endpoints + learnt).
  auto last = first;
  size_t count = 0;
  while (last != learnt.end() && last->first.ns == s.ns && last->first.name == s.name) ++last, ++count;
  std::unordered_map<uint32_t, size_t> by_ip;
  if (count > 8) {
    by_ip.reserve(s.endpoints.size());
    for (size_t k = 0; k < s.endpoints.size(); ++k) {
      if (s.endpoints[k].ip.family == dp::Family::kIpv4) by_ip.emplace(s.endpoints[k].ip.as_v4().host(), k);
    }
  }
  std::vector<std::pair<size_t, const LearntEndpoint*>> hits;
  for (auto it = first; it != last; ++it) {
    auto e = s.endpoints.end();
    if (!by_ip.empty() && it->first.ip.family == dp::Family::kIpv4) {
      auto found = by_ip.find(it->first.ip.as_v4().host());
      if (found != by_ip.end()) e = s.endpoints.begin() + static_cast<std::ptrdiff_t>(found->second);
    } else {
      e = std::find_if(s.endpoints.begin(), s.endpoints.end(),
                       [&](const EndpointConfig& x) { return x.ip == it->first.ip; });
    }
    if (e == s.endpoints.end()) continue;
    const bool unhealthy = check != nullptr && !it->second.unhealthy.empty();
    if (!unhealthy && !(it->second.drained && e->ready)) continue;
    hits.emplace_back(static_cast<size_t>(e - s.endpoints.begin()), &it->second);
  }
  if (hits.empty()) return;
  // Headless: fail open when every ready endpoint is unhealthy.
  bool hide_unhealthy = true;
  if (s.headless() && check != nullptr && check->all_unhealthy == AllUnhealthy::kFailOpen) {
    size_t ready = 0, unhealthy_ready = 0;
    for (const EndpointConfig& e : s.endpoints) ready += e.ready;
    for (const auto& [idx, l] : hits) unhealthy_ready += s.endpoints[idx].ready && !l->unhealthy.empty();
    hide_unhealthy = unhealthy_ready < ready;
  }
  // Only a service whose endpoints change is copied.
  ServiceConfig& mine = out[i];
  for (const auto& [idx, l] : hits) {
    EndpointConfig& e = mine.endpoints[idx];
    if (l->drained) e.ready = false;
    if (check == nullptr || l->unhealthy.empty()) continue;
    for (const PortRef& p : l->unhealthy) {
      const bool exists = std::any_of(s.ports.begin(), s.ports.end(), [&](const ServicePortConfig& sp) {
        return sp.port == p.port && sp.protocol == p.protocol && check->covers(p);
      });
      if (exists) e.unhealthy_ports.push_back(p);
    }
    if (s.headless() && hide_unhealthy) e.ready = false;
  }
}

}  // namespace

Config apply_learnt(const Config& desired, const LearntState& learnt) {
  Config out = desired;  // shares every service (service_list.hpp)
  if (learnt.empty()) return out;
  for (size_t i = 0; i < desired.services.size(); ++i) {
    apply_learnt_to(desired.services[i], learnt, out.services, i);
  }
  return out;
}

bool same_but_services(const Config& a, const Config& b) {
  return a.eal == b.eal && a.dataplane == b.dataplane && a.ports == b.ports &&
         a.routes == b.routes && a.neighbors == b.neighbors && a.dns == b.dns &&
         a.control == b.control && a.metrics == b.metrics;
}

Registry::Registry(Config file)
    : file_(std::make_shared<const Config>(std::move(file))),
      desired_(file_),
      view_(file_),
      index_(file_->services) {}

Registry::Proposal Registry::make(Layer layer, bool changed, std::shared_ptr<const Config> desired,
                                  LearntState learnt, const std::vector<EndpointRef>& relearnt) const {
  Proposal p;
  p.layer = layer;
  p.changed = changed;
  ServiceDiff desired_changes = diff_services(desired_->services, desired->services);
  p.view = learnt.empty() ? desired : next_view(*desired, desired_changes, learnt, relearnt);
  p.services_only = same_but_services(*p.view, *view_) && same_but_services(*desired, *desired_);
  if (p.services_only) {
    p.desired_changes = std::move(desired_changes);
    p.view_changes = diff_services(view_->services, p.view->services);
  }
  p.desired = std::move(desired);
  p.learnt = std::move(learnt);
  return p;
}

std::shared_ptr<const Config> Registry::next_view(const Config& desired, const ServiceDiff& desired_changes,
                                                  const LearntState& learnt,
                                                  const std::vector<EndpointRef>& relearnt) const {
  // A service's view depends on its desired version and its own learnt
  // entries only.  So one whose desired version is the object view_ was made
  // from (same identity) and whose entries are not in `relearnt` keeps its
  // view_ copy, identity and all: listeners redo what changed only.
  // Deciding that costs a pointer compare per service (as the copy of the
  // list does) and a lookup among `relearnt`, never a pass over `learnt`;
  // only the services that changed are made again, O(log learnt) each.
  std::vector<std::pair<std::string_view, std::string_view>> relearnt_services;
  relearnt_services.reserve(relearnt.size());
  for (const EndpointRef& e : relearnt) relearnt_services.emplace_back(e.ns, e.name);
  std::sort(relearnt_services.begin(), relearnt_services.end());

  auto view = std::make_shared<Config>(desired);  // shares desired's services
  const ServiceList& now = desired.services;
  const ServiceList& before = desired_->services;
  const ServiceList& was = view_->services;  // before's, index for index
  auto added = desired_changes.added.begin();
  size_t j = 0;  // into before: the services `now` kept, in order (diff_services)
  for (size_t i = 0; i < now.size(); ++i) {
    bool kept = false;
    if (added != desired_changes.added.end() && *added == i) {
      ++added;
    } else {
      while (j < before.size() && before.identity(j) != now.identity(i)) ++j;
      kept = j < before.size();
    }
    const ServiceConfig& s = now[i];
    if (kept && !std::binary_search(relearnt_services.begin(), relearnt_services.end(),
                                    std::pair<std::string_view, std::string_view>(s.ns, s.name))) {
      if (was.identity(j) != before.identity(j)) view->services.share(i, was, j);
      ++j;
      continue;
    }
    if (kept) ++j;
    apply_learnt_to(s, learnt, view->services, i);
  }
  return view;
}

Registry::Proposal Registry::stage_current() const {
  Proposal p;
  p.layer = Layer::kFile;
  p.changed = true;
  p.desired = desired_;
  p.learnt = learnt_;
  p.view = view_;
  return p;
}

Result<Registry::Proposal> Registry::stage_file(Config file) const {
  if (auto valid = validate(file); !valid) return std::move(valid).error();
  auto desired = std::make_shared<const Config>(std::move(file));
  return make(Layer::kFile, true, std::move(desired), learnt_, {});
}

Result<Registry::Proposal> Registry::stage_edit(
    const std::function<Result<bool>(Config&)>& edit) const {
  auto next = std::make_shared<Config>(*desired_);
  auto changed = edit(*next);
  if (!changed) return std::move(changed).error();
  if (!*changed) {
    Proposal p = stage_current();
    p.layer = Layer::kEdit;
    p.changed = false;
    return p;
  }
  if (same_but_services(*next, *desired_)) {
    // Only services changed (every runtime edit): check those against the
    // index of the rest, O(what changed).
    if (index_current_) {
      if (auto valid = validate_change(*next, diff_services(desired_->services, next->services), index_);
          !valid) {
        return std::move(valid).error();
      }
    } else if (auto valid = validate(*next); !valid) {
      return std::move(valid).error();
    }
  } else if (auto valid = validate(*next); !valid) {
    return std::move(valid).error();
  }
  return make(Layer::kEdit, true, std::move(next), learnt_, {});
}

// A learnt-layer proposal that changes nothing (committing it publishes nothing new).
Registry::Proposal Registry::unchanged_learnt() const {
  Proposal p = stage_current();
  p.layer = Layer::kLearnt;
  p.changed = false;
  return p;
}

Registry::Proposal Registry::stage_learnt(const EndpointRef& endpoint,
                                          const LearntEndpoint& state) const {
  LearntState next = learnt_;
  bool changed;
  if (state == LearntEndpoint{}) {
    changed = next.erase(endpoint) != 0;
  } else {
    auto [it, inserted] = next.try_emplace(endpoint, state);
    changed = inserted || !(it->second == state);
    it->second = state;
  }
  if (!changed) return unchanged_learnt();
  return make(Layer::kLearnt, true, desired_, std::move(next), {endpoint});
}

Registry::Proposal Registry::stage_health(
    const std::vector<std::pair<EndpointRef, std::vector<PortRef>>>& changes) const {
  LearntState next = learnt_;
  std::vector<EndpointRef> relearnt;
  for (const auto& [endpoint, ports] : changes) {
    auto it = next.find(endpoint);
    if (it == next.end()) {
      if (ports.empty()) continue;
      it = next.emplace(endpoint, LearntEndpoint{}).first;
    }
    if (it->second.unhealthy == ports) continue;
    relearnt.push_back(endpoint);
    it->second.unhealthy = ports;
    if (it->second == LearntEndpoint{}) next.erase(it);
  }
  if (relearnt.empty()) return unchanged_learnt();
  return make(Layer::kLearnt, true, desired_, std::move(next), relearnt);
}

// The proposal's snapshot runs already: the Registry takes its version
// whatever memory is left.  What needs memory here (the index, the copy of
// the listeners) falls behind when it runs out, and catches up later.
bool Registry::commit(Proposal p, const dp::Snapshot* snapshot) {
  if (p.desired != desired_ || !index_current_) {
    try {
      if (p.services_only && index_current_) {
        index_.apply(p.desired_changes, p.desired->services);
      } else {
        index_ = ServiceIndex(p.desired->services);
      }
      index_current_ = true;
    } catch (const std::bad_alloc&) {
      index_current_ = false;  // perhaps half updated: stage_edit() validates whole until rebuilt
    }
  }
  switch (p.layer) {
    case Layer::kFile:
      file_ = p.desired;
      unsaved_ = 0;
      break;
    case Layer::kEdit:
      ++unsaved_;
      break;
    case Layer::kLearnt:
      break;
  }
  desired_ = std::move(p.desired);
  view_ = std::move(p.view);
  learnt_ = std::move(p.learnt);
  ++version_;
  // A listener may subscribe or unsubscribe others: iterate over a copy.
  std::vector<std::pair<ListenerId, Listener>> listeners;
  try {
    listeners = listeners_;
  } catch (const std::bad_alloc&) {
    listener_behind_ = true;  // none was told: the next version tells them all to start over
    return false;
  }
  const Publication pub{version_, p.layer, *view_, snapshot,
                        p.services_only && !listener_behind_ ? &p.view_changes : nullptr};
  listener_behind_ = false;
  for (const auto& [id, listener] : listeners) {
    try {
      listener(pub);
    } catch (const std::bad_alloc&) {
      listener_behind_ = true;
    }
  }
  return !listener_behind_;
}

void Registry::saved_to_file() {
  file_ = desired_;
  unsaved_ = 0;
}

Registry::ListenerId Registry::subscribe(Listener listener) {
  const ListenerId id = next_listener_++;
  listeners_.emplace_back(id, std::move(listener));
  return id;
}

void Registry::unsubscribe(ListenerId id) {
  listeners_.erase(std::remove_if(listeners_.begin(), listeners_.end(),
                                  [id](const auto& l) { return l.first == id; }),
                   listeners_.end());
}

}  // namespace podgate::ctl
