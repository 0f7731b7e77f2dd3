// What validate() checks across services, kept between changes: how many
// services have each name, who serves each VIP:port/protocol, which
// services have each cluster IP, and how many have each endpoint address.  The
// Registry keeps one for its desired state, so a runtime change is checked
// against it for the services it touches only (validate_change() in
// validate.hpp), not by validating every service again (issue 14, "Scale").
// Addresses of both families (issue 11).  Control thread only.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "control/config/ip_key.hpp"
#include "control/config/service_list.hpp"

namespace podgate::ctl {

class ServiceIndex {
 public:
  ServiceIndex() = default;
  explicit ServiceIndex(const ServiceList& services);

  // The VIP:port/protocol keys a service forwards, for each of its cluster
  // IPs (none for headless and ExternalName services).
  static std::vector<VipPort> keys_of(const ServiceConfig& s);

  uint32_t name_count(const std::string& ns_name) const;
  // The services serving `key` (several only in an invalid config).
  const std::vector<const ServiceConfig*>* owners(const VipPort& key) const;
  // The forwarding services with cluster IP `vip` (either of their two).
  const std::vector<const ServiceConfig*>* with_vip(const dp::IpAddr& vip) const;
  // How many services list `ip` among their endpoints.
  uint32_t endpoint_count(const dp::IpAddr& ip) const;

  // `after` is the list `diff` was computed to (its added indices).
  void apply(const ServiceDiff& diff, const ServiceList& after);

 private:
  void add(const ServiceConfig& s);
  void remove(const ServiceConfig& s);

  using Owners = std::vector<const ServiceConfig*>;
  std::unordered_map<std::string, uint32_t> names_;  // "ns/name" -> services with it
  std::unordered_map<VipPort, Owners, VipPortHash> vip_ports_;
  std::unordered_map<dp::IpAddr, Owners, IpAddrHash> vips_;
  std::unordered_map<dp::IpAddr, uint32_t, IpAddrHash> endpoints_;  // address -> services listing it
};

}  // namespace podgate::ctl
