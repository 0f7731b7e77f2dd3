#include "control/publish/fallback_watch.hpp"

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

}  // namespace

std::vector<std::string> FallbackWatch::follow(const Config& config, const ServiceDiff* changes) {
  std::vector<std::string> lines;
  if (changes == nullptr) {
    auto before = std::exchange(falling_back_, {});
    for (const ServiceConfig& svc : config.services) {
      const auto it = before.find(svc.ns + "/" + svc.name);
      visit(svc, it != before.end() ? it->second : Families{}, lines);
    }
    return lines;
  }
  // A changed service is one removed and one added (by identity): what the
  // removed one had is where the added one starts from.  One removed and
  // not added again leaves quietly, with its service.
  std::unordered_map<std::string, Families> before;
  for (const auto& gone : changes->removed) {
    const auto it = falling_back_.find(gone->ns + "/" + gone->name);
    if (it == falling_back_.end()) continue;
    before.insert(*it);
    falling_back_.erase(it);
  }
  for (size_t i : changes->added) {
    const ServiceConfig& svc = config.services[i];
    const auto it = before.find(svc.ns + "/" + svc.name);
    visit(svc, it != before.end() ? it->second : Families{}, lines);
  }
  return lines;
}

void FallbackWatch::visit(const ServiceConfig& svc, const Families& before, std::vector<std::string>& lines) {
  const NewFlowRule rule = new_flow_rule(svc);
  const Families now{rule.fallback4, rule.fallback6};
  if (now.ipv4 || now.ipv6) falling_back_.emplace(svc.ns + "/" + svc.name, now);
  for (const dp::Family family : {dp::Family::kIpv4, dp::Family::kIpv6}) {
    const bool was = family == dp::Family::kIpv4 ? before.ipv4 : before.ipv6;
    const bool is = rule.falls_back(family);
    if (was == is) continue;
    size_t ready = 0, fallback = 0;
    for (const EndpointConfig& e : svc.endpoints) {
      if (e.ip.family != family) continue;
      ready += e.takes_new_flows() ? 1 : 0;
      fallback += rule.is_fallback(e) ? 1 : 0;
    }
    const std::string head = "service " + svc.ns + "/" + svc.name + ": ";
    const char* fam = family == dp::Family::kIpv4 ? "IPv4" : "IPv6";
    if (is) {
      lines.push_back(head + "no " + fam + " endpoint is ready; new connections go to its " +
                      plural(fallback, "serving, terminating endpoint", "serving, terminating endpoints") +
                      " (terminating fallback)");
    } else if (!has_cluster_ip(svc, family)) {
      lines.push_back(head + "the " + fam + " terminating fallback ends: the service forwards no " + fam +
                      " any more");
    } else if (ready != 0) {
      lines.push_back(head + plural(ready, fam + std::string(" endpoint is"), fam + std::string(" endpoints are")) +
                      " ready; the terminating fallback ends, and terminating endpoints drain");
    } else {
      lines.push_back(head + "the " + fam +
                      " terminating fallback ends with no endpoint ready or serving: new connections are dropped");
    }
  }
}

}  // namespace podgate::ctl
