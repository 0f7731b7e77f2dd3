#include "control/exception/vip_announcer.hpp"

#include <algorithm>

#include "control/exception/netdev.hpp"
#include "control/log.hpp"

namespace podgate::ctl {

VipAnnouncer::~VipAnnouncer() {
  for (uint32_t vip : announced_) {
    (void)netdev::delete_route(iface_, dp::Prefix4{dp::Ip4{vip}, 32}, table_);
  }
}

std::set<uint32_t> VipAnnouncer::wanted(const Config& config) {
  std::set<uint32_t> out;
  if (config.dns.service_ip) out.insert(config.dns.service_ip->be);
  for (const ServiceConfig& s : config.services) {
    if (s.type != ServiceType::kClusterIp) continue;
    // The IPv4 cluster IP is clusterIPs[0] or, in a dual-stack service
    // listed IPv6 first, clusterIPs[1]; the dataplane forwards either
    // (vip_of<dp::Ip4> in the snapshot builder), to IPv4 endpoints only.
    for (const dp::IpAddr& ip : s.cluster_ips()) {
      if (!ip.is_v4()) continue;
      if (std::any_of(s.ports.begin(), s.ports.end(), [&](const ServicePortConfig& p) {
            return port_takes_new_flows(s, p, dp::Family::kIpv4);
          })) {
        out.insert(ip.as_v4().be);
      }
      break;  // a service has at most one cluster IP of a family
    }
  }
  return out;
}

Result<void> VipAnnouncer::sync(const Config& config) {
  return hold(drained_ ? std::set<uint32_t>{} : wanted(config));
}

Result<void> VipAnnouncer::hold(const std::set<uint32_t>& want) {
  wanted_ = want;
  std::string failures;
  for (auto it = announced_.begin(); it != announced_.end();) {
    if (want.count(*it) != 0) {
      ++it;
      continue;
    }
    if (auto r = netdev::delete_route(iface_, dp::Prefix4{dp::Ip4{*it}, 32}, table_); !r) {
      failures += "\n" + r.error().message;
      ++it;
      continue;
    }
    log_info("announce: withdrew " + dp::to_string(dp::Ip4{*it}) + "/32");
    it = announced_.erase(it);
  }
  for (uint32_t vip : want) {
    if (announced_.count(vip) != 0) continue;
    if (auto r = netdev::add_route(iface_, dp::Prefix4{dp::Ip4{vip}, 32}, dp::Ip4{}, table_); !r) {
      failures += "\n" + r.error().message;
      continue;
    }
    log_info("announce: " + dp::to_string(dp::Ip4{vip}) + "/32 in table " + std::to_string(table_));
    announced_.insert(vip);
  }
  if (!failures.empty()) return make_error(ErrorCode::kIo, "announce:" + failures);
  return {};
}

Result<void> VipAnnouncer::set_drained(bool drained, const Config& config) {
  if (stopping_) {
    return make_error(ErrorCode::kInvalidRequest,
                      "podgate is stopping: its routes are withdrawn and stay withdrawn");
  }
  drained_ = drained;
  log_info(drained ? "announce: drained, withdrawing every VIP" : "announce: undrained");
  return sync(config);
}

bool VipAnnouncer::withdraw_for_stop() {
  stopping_ = true;
  drained_ = true;
  const bool had_routes = !announced_.empty();
  if (auto r = hold({}); !r) log_error(r.error().message);
  return had_routes;
}

void VipAnnouncer::check_table() {
  const Result<void> r = reconcile();
  if (r && !check_failure_.empty()) {
    log_info("announce: table " + std::to_string(table_) + " on " + iface_ + " holds what is announced again");
    check_failure_.clear();
  } else if (!r && r.error().message != check_failure_) {
    check_failure_ = r.error().message;
    log_error(check_failure_ + "\n(tried again every " + std::to_string(kCheckMs / 1000) + " s)");
  }
}

Result<void> VipAnnouncer::reconcile() {
  auto held = netdev::host_routes(iface_, table_);
  if (!held) return std::move(held).error();
  std::set<uint32_t> in_table;
  for (dp::Ip4 ip : *held) in_table.insert(ip.be);
  for (uint32_t vip : announced_) {
    if (in_table.count(vip) != 0) continue;
    log_warn("announce: " + dp::to_string(dp::Ip4{vip}) + "/32 had gone from table " + std::to_string(table_) +
             " (the link of " + iface_ + " went down, or someone deleted it)" +
             (wanted_.count(vip) != 0 ? "; adding it again" : ""));
  }
  for (uint32_t vip : in_table) {
    if (announced_.count(vip) != 0 || wanted_.count(vip) != 0) continue;
    log_warn("announce: " + dp::to_string(dp::Ip4{vip}) + "/32 is in table " + std::to_string(table_) +
             " on " + iface_ + " but not announced; deleting it");
  }
  announced_ = std::move(in_table);
  return hold(wanted_);
}

}  // namespace podgate::ctl
