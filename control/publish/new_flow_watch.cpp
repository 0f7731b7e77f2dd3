#include "control/publish/new_flow_watch.hpp"

#include <algorithm>
#include <utility>

namespace podgate::ctl {
namespace {

std::string plural(size_t n, const std::string& one, const std::string& many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

bool has_cluster_ip(const ServiceConfig& svc, dp::Family family) {
  if (svc.type != ServiceType::kClusterIp) return false;
  for (const dp::IpAddr& vip : svc.cluster_ips()) {
    if (vip.family == family) return true;
  }
  return false;
}

const char* family_text(dp::Family family) { return family == dp::Family::kIpv4 ? "IPv4" : "IPv6"; }

// The terminating fallback of one family starting or ending.
void fallback_line(const ServiceConfig& svc, const NewFlowRule& rule, dp::Family family, bool is,
                   std::vector<std::string>& lines) {
  size_t ready = 0, fallback = 0;
  for (const EndpointConfig& e : svc.endpoints) {
    if (e.ip.family != family) continue;
    ready += e.takes_new_flows() ? 1 : 0;
    fallback += rule.is_fallback(e) ? 1 : 0;
  }
  const std::string head = "service " + svc.ns + "/" + svc.name + ": ";
  const std::string fam = family_text(family);
  if (is) {
    lines.push_back(head + "no " + fam + " endpoint is ready; new connections go to its " +
                    plural(fallback, "serving, terminating endpoint", "serving, terminating endpoints") +
                    " (terminating fallback)");
  } else if (!has_cluster_ip(svc, family)) {
    lines.push_back(head + "the " + fam + " terminating fallback ends: the service forwards no " + fam +
                    " any more");
  } else if (ready != 0) {
    lines.push_back(head + plural(ready, fam + " endpoint is", fam + " endpoints are") +
                    " ready; the terminating fallback ends, and terminating endpoints drain");
  } else {
    lines.push_back(head + "the " + fam +
                    " terminating fallback ends with no endpoint ready or serving: new connections are dropped");
  }
}

}  // namespace

std::vector<std::string> NewFlowWatch::follow(const Config& config, const ServiceDiff* changes) {
  std::vector<std::string> lines;
  if (changes == nullptr) {
    auto before = std::exchange(state_, {});
    for (const ServiceConfig& svc : config.services) {
      const auto it = before.find(svc.ns + "/" + svc.name);
      visit(svc, it != before.end() ? it->second : State{}, lines);
    }
    return lines;
  }
  // A changed service is one removed and one added (by identity): what the
  // removed one had is where the added one starts from.  One removed and
  // not added again leaves quietly, with its service.
  std::unordered_map<std::string, State> before;
  for (const auto& gone : changes->removed) {
    const auto it = state_.find(gone->ns + "/" + gone->name);
    if (it == state_.end()) continue;
    before.insert(*it);
    state_.erase(it);
  }
  for (size_t i : changes->added) {
    const ServiceConfig& svc = config.services[i];
    const auto it = before.find(svc.ns + "/" + svc.name);
    visit(svc, it != before.end() ? it->second : State{}, lines);
  }
  return lines;
}

void NewFlowWatch::visit(const ServiceConfig& svc, const State& before, std::vector<std::string>& lines) {
  const NewFlowRule rule = new_flow_rule(svc);
  State now{rule.fallback4, rule.fallback6, {}};
  for (const dp::Family family : {dp::Family::kIpv4, dp::Family::kIpv6}) {
    const bool was = family == dp::Family::kIpv4 ? before.fallback4 : before.fallback6;
    if (was != rule.falls_back(family)) fallback_line(svc, rule, family, !was, lines);
  }
  // Per port and family, as the snapshot builder decides
  // (choose_endpoints() in service_port_build.hpp): candidates that all
  // fail their check.
  const std::string head = "service " + svc.ns + "/" + svc.name + " port ";
  for (const ServicePortConfig& port : svc.ports) {
    const PortRef ref{port.port, port.protocol};
    for (const dp::Family family : {dp::Family::kIpv4, dp::Family::kIpv6}) {
      if (!has_cluster_ip(svc, family)) continue;
      size_t candidates = 0, healthy = 0;
      for (const EndpointConfig& e : svc.endpoints) {
        if (e.ip.family != family || !rule.candidate(e)) continue;
        ++candidates;
        healthy += !svc.health_check || e.healthy_on(ref) ? 1 : 0;
      }
      const std::string where = std::to_string(port.port) + "/" + std::string(dp::proto_name(port.protocol)) +
                                " " + family_text(family);
      const bool is = candidates != 0 && healthy == 0;
      // Kept with what all_unhealthy makes of it: a change of that is news.
      const bool fail_open = svc.health_check && svc.health_check->all_unhealthy == AllUnhealthy::kFailOpen;
      const std::string key = where + (fail_open ? "" : ", drop");
      const auto known = [&](const std::string& k) {
        return std::find(before.all_unhealthy.begin(), before.all_unhealthy.end(), k) != before.all_unhealthy.end();
      };
      if (is) now.all_unhealthy.push_back(key);
      if (is ? known(key) : !known(where) && !known(where + ", drop")) continue;
      if (is) {
        lines.push_back(head + where + ": " +
                        (candidates == 1 ? std::string("its endpoint") : "all " + std::to_string(candidates) + " endpoints") +
                        " taking new connections fail" + (candidates == 1 ? "s" : "") + " the health check; " +
                        (fail_open ? std::string("all_unhealthy = \"fail_open\" sends new connections to ") +
                                         (candidates == 1 ? "it" : "them") + " anyway"
                                   : std::string("all_unhealthy = \"drop\" refuses new connections (no_endpoint)")));
      } else if (!svc.health_check) {
        lines.push_back(head + where + ": the service has no health check any more");
      } else if (healthy != 0) {
        lines.push_back(head + where + ": " + plural(healthy, "endpoint passes", "endpoints pass") +
                        " the health check again");
      } else {
        lines.push_back(head + where + ": no endpoint takes new connections any more, healthy or not");
      }
    }
  }
  if (!now.empty()) state_.emplace(svc.ns + "/" + svc.name, std::move(now));
}

}  // namespace podgate::ctl
