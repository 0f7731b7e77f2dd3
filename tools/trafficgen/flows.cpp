#include "tools/trafficgen/flows.hpp"

namespace podgate::gen {

FlowSet::FlowSet(const Options& o)
    : services_(o.services),
      pins_(std::make_unique<std::atomic<uint32_t>[]>(o.flows)),
      client_first_(o.client_first),
      clients_(address_count(o.client_first, o.client_last)) {
  for (const Service& s : services_) {
    first_endpoint_.push_back(endpoint_count_);
    endpoint_count_ += static_cast<uint32_t>(s.endpoints.size());
  }
  const uint32_t nservices = static_cast<uint32_t>(services_.size());
  const uint32_t nports = uint32_t{o.client_port_last} - o.client_port_first + 1;
  flows_.reserve(o.flows);
  for (uint32_t i = 0; i < o.flows; ++i) {
    const uint32_t n = i / nservices;  // the n-th flow of its service
    Flow f;
    f.service = static_cast<uint16_t>(i % nservices);
    f.client_port = dp::to_be16(static_cast<uint16_t>(o.client_port_first + n % nports));
    f.client = nth_address(o.client_first, n / nports);
    flows_.push_back(f);
  }
  for (uint32_t i = 0; i < o.flows; ++i) pins_[i].store(kNoEndpoint, std::memory_order_relaxed);
}

uint32_t FlowSet::endpoint_of(uint16_t service, Endpoint ep) const noexcept {
  const std::vector<Endpoint>& eps = services_[service].endpoints;
  for (uint32_t i = 0; i < eps.size(); ++i) {
    if (eps[i] == ep) return first_endpoint_[service] + i + 1;
  }
  return kNoEndpoint;
}

bool FlowSet::is_endpoint_ip(const dp::IpAddr& ip) const noexcept {
  for (const Service& s : services_) {
    for (const Endpoint& e : s.endpoints) {
      if (e.ip == ip) return true;
    }
  }
  return false;
}

}  // namespace podgate::gen
