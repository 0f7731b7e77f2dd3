// The journal's record of the two ways a forwarded service's new
// connections go elsewhere than to its ready, healthy endpoints:
//   - the terminating fallback (KEP-1669, NewFlowRule in
//     control/config/service_config.hpp): a family with no ready endpoint
//     sends them to its serving, terminating ones;
//   - every endpoint that would take them fails its health check (HAProxy's
//     "backend has no server available", Envoy's panic mode): the port's
//     all_unhealthy decides, fail_open sending them to those endpoints
//     anyway, drop refusing them.
// A line when either starts, and one when it ends.  The views, /metrics and
// `podgatectl health` show the state; this says when it changed, as the
// health checker's lines do for its targets.
//
// It follows the Registry's publications (their view(), where learnt
// drains and health apply), reading only the services a publication
// changed when it says which.  Control thread only.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "control/config/config.hpp"
#include "control/config/service_list.hpp"

namespace podgate::ctl {

class NewFlowWatch {
 public:
  // The lines the change from the last version to `config` calls for, in
  // the order of config.services.  `changes` says which services changed
  // (null: any may have, as after a reload that changed more).
  std::vector<std::string> follow(const Config& config, const ServiceDiff* changes);

  // Services with a family in the terminating fallback, or a port whose
  // candidates all fail their check, now.
  size_t services_watched() const noexcept { return state_.size(); }

 private:
  struct State {
    bool fallback4 = false;
    bool fallback6 = false;
    // "80/TCP IPv4" and the like (", drop" after it with all_unhealthy =
    // "drop"): the ports and families whose every candidate is unhealthy.
    std::vector<std::string> all_unhealthy;
    bool empty() const noexcept { return !fallback4 && !fallback6 && all_unhealthy.empty(); }
  };
  // By "namespace/name", the services in either state.
  std::unordered_map<std::string, State> state_;

  void visit(const ServiceConfig& svc, const State& before, std::vector<std::string>& lines);
};

}  // namespace podgate::ctl
