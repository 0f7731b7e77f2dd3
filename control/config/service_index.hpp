// What validate() checks across services, kept between changes: how many
// services have each name, who serves each VIP:port/protocol, which
// services have each cluster IP, and how many have each endpoint address.  The
// Registry keeps one for its desired state, so a runtime change is checked
// against it for the services it touches only (validate_change() in
// validate.hpp), not by validating every service again (issue 14, "Scale").
// Control thread only.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "control/config/service_list.hpp"

namespace podgate::ctl {

class ServiceIndex {
 public:
  ServiceIndex() = default;
  explicit ServiceIndex(const ServiceList& services);

  // VIP, port and protocol packed as validate() packs them.
  static uint64_t vip_port_key(uint32_t vip_host, uint16_t port, dp::Proto protocol) noexcept {
    return uint64_t{vip_host} << 24 | uint64_t{port} << 8 | static_cast<uint8_t>(protocol);
  }
  // The VIP:port/protocol keys a service forwards (none for headless,
  // ExternalName and IPv6 services).
  static std::vector<uint64_t> keys_of(const ServiceConfig& s);

  uint32_t name_count(const std::string& ns_name) const;
  // The services serving `key` (several only in an invalid config).
  const std::vector<const ServiceConfig*>* owners(uint64_t key) const;
  // The forwarding services whose cluster IP is `vip_host` (IPv4).
  const std::vector<const ServiceConfig*>* with_vip(uint32_t vip_host) const;
  // How many services list `ip_host` (IPv4) among their endpoints.
  uint32_t endpoint_count(uint32_t ip_host) const;

  // `after` is the list `diff` was computed to (its added indices).
  void apply(const ServiceDiff& diff, const ServiceList& after);

 private:
  void add(const ServiceConfig& s);
  void remove(const ServiceConfig& s);

  std::unordered_map<std::string, uint32_t> names_;  // "ns/name" -> services with it
  std::unordered_map<uint64_t, std::vector<const ServiceConfig*>> vip_ports_;
  std::unordered_map<uint32_t, std::vector<const ServiceConfig*>> vips_;
  std::unordered_map<uint32_t, uint32_t> endpoints_;  // address -> services listing it
};

}  // namespace podgate::ctl
