// The generator's flows and what the checker expects of each.
//
// Built once before traffic starts (the only allocation), then read by every
// lcore.  A flow is a client ip:port sending to one service; its id travels
// in the packet stamp, so the checker finds the flow without hashing and
// compares the packet's addresses with what was sent.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "tools/trafficgen/options.hpp"

namespace podgate::gen {

struct Flow {
  dp::IpAddr client;
  rte_be16_t client_port = 0;
  uint16_t service = 0;  // index into FlowSet::services()
};

// Global endpoint numbering: service s's endpoint e is first_endpoint(s) + e.
inline constexpr uint32_t kNoEndpoint = 0;  // pin value before any packet

class FlowSet {
 public:
  // Flow i goes to service i mod S; consecutive flows of one service take
  // the next client port, then the next client address.
  FlowSet(const Options& o);

  uint32_t size() const noexcept { return static_cast<uint32_t>(flows_.size()); }
  const Flow& flow(uint32_t id) const noexcept { return flows_[id]; }
  const std::vector<Service>& services() const noexcept { return services_; }
  uint32_t endpoint_count() const noexcept { return endpoint_count_; }
  uint32_t first_endpoint(uint16_t service) const noexcept { return first_endpoint_[service]; }

  // The global index + 1 of `ep` among `service`'s endpoints, or
  // kNoEndpoint.  Linear: a service has a handful of Pods.
  uint32_t endpoint_of(uint16_t service, Endpoint ep) const noexcept;

  // Pins the flow to a Pod: the first call per flow records `endpoint`
  // (global index + 1); later calls report whether it is the same one.
  // Atomic so that RX lcores may share flows (podgate's control thread can
  // send a flow's packet on another queue than its worker).
  bool pin(uint32_t flow, uint32_t endpoint) noexcept {
    uint32_t expected = kNoEndpoint;
    if (pins_[flow].compare_exchange_strong(expected, endpoint, std::memory_order_relaxed)) {
      return true;
    }
    return expected == endpoint;
  }
  uint32_t pinned(uint32_t flow) const noexcept {
    return pins_[flow].load(std::memory_order_relaxed);
  }

  // Is `ip` a client address or an endpoint address (for ARP and NDP)?
  bool is_client(const dp::IpAddr& ip) const noexcept {
    const uint64_t n = address_count(client_first_, ip);
    return n != 0 && n <= clients_;
  }
  bool is_endpoint_ip(const dp::IpAddr& ip) const noexcept;

 private:
  std::vector<Service> services_;
  std::vector<Flow> flows_;
  std::vector<uint32_t> first_endpoint_;
  uint32_t endpoint_count_ = 0;
  std::unique_ptr<std::atomic<uint32_t>[]> pins_;
  dp::IpAddr client_first_;
  uint64_t clients_ = 1;  // addresses in the client range
};

}  // namespace podgate::gen
