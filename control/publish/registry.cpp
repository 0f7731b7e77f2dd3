// The Registry's layers and versions; see registry.hpp.
#include "control/publish/registry.hpp"

#include <algorithm>
#include <utility>

#include "control/config/validate.hpp"

namespace podgate::ctl {

Config apply_learnt(const Config& desired, const LearntState& learnt) {
  Config out = desired;
  if (learnt.empty()) return out;
  for (ServiceConfig& s : out.services) {
    // The learnt entries of this service: a range of the ordered map.
    auto it = learnt.lower_bound(EndpointRef{s.ns, s.name, dp::IpAddr{}});
    for (; it != learnt.end() && it->first.ns == s.ns && it->first.name == s.name; ++it) {
      auto e = std::find_if(s.endpoints.begin(), s.endpoints.end(),
                            [&](const EndpointConfig& x) { return x.ip == it->first.ip; });
      if (e == s.endpoints.end()) continue;
      if (it->second.unhealthy) e->serving = false;
      if (it->second.unhealthy || it->second.drained) e->ready = false;
    }
  }
  return out;
}

Registry::Registry(Config file)
    : file_(std::make_shared<const Config>(std::move(file))), desired_(file_), view_(file_) {}

Registry::Proposal Registry::make(Layer layer, bool changed, std::shared_ptr<const Config> desired,
                                  LearntState learnt) const {
  Proposal p;
  p.layer = layer;
  p.changed = changed;
  p.view = learnt.empty() ? desired : std::make_shared<const Config>(apply_learnt(*desired, learnt));
  p.desired = std::move(desired);
  p.learnt = std::move(learnt);
  return p;
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
  return make(Layer::kFile, true, std::move(desired), learnt_);
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
  if (auto valid = validate(*next); !valid) return std::move(valid).error();
  return make(Layer::kEdit, true, std::move(next), learnt_);
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
  if (!changed) {
    Proposal p = stage_current();
    p.layer = Layer::kLearnt;
    p.changed = false;
    return p;
  }
  return make(Layer::kLearnt, true, desired_, std::move(next));
}

void Registry::commit(Proposal p, const dp::Snapshot* snapshot) {
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
  const auto listeners = listeners_;
  const Publication pub{version_, p.layer, *view_, snapshot};
  for (const auto& [id, listener] : listeners) listener(pub);
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
