// The journal's record of the terminating fallback (KEP-1669, NewFlowRule
// in control/config/service_config.hpp): a line when a service's family
// starts sending new connections to its serving, terminating endpoints
// because none is ready, and one when that ends.  The views and the
// podgate_service_endpoints gauge show the state; this says when it
// changed, as the health checker's lines do for its targets.
//
// It follows the Registry's publications (their view(), so that draining
// the last ready endpoint starts a fallback too), reading only the services
// a publication changed when it says which.  Control thread only.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "control/config/config.hpp"
#include "control/config/service_list.hpp"

namespace podgate::ctl {

class FallbackWatch {
 public:
  // The lines the change from the last version to `config` calls for, in
  // the order of config.services.  `changes` says which services changed
  // (null: any may have, as after a reload that changed more).
  std::vector<std::string> follow(const Config& config, const ServiceDiff* changes);

  // Services with a family in the fallback now.
  size_t services_falling_back() const noexcept { return falling_back_.size(); }

 private:
  struct Families {
    bool ipv4 = false;
    bool ipv6 = false;
  };
  // By "namespace/name", the services with a family in the fallback.
  std::unordered_map<std::string, Families> falling_back_;

  void visit(const ServiceConfig& svc, const Families& before, std::vector<std::string>& lines);
};

}  // namespace podgate::ctl
