// Memory planned, not discovered (issue 14, "Scale"): the Maglev table size
// each service port gets, and what a Config needs of DPDK memory, so
// `podgate --check` can report it and refuse what does not fit.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "control/config/config.hpp"

namespace podgate::ctl {

// The Maglev table sizes chosen from (primes, about doubling).  The paper's
// M >= 100 N keeps each endpoint's share within ~1% of its weight (Maglev,
// NSDI'16 section 5.3).  A service port whose endpoint count crosses a step
// gets a new M, and a new M moves flows of every endpoint, not only of the
// one added or removed (Maglev's minimal disruption, section 3.4, holds for
// one M); so the smallest size is 1021, and services of up to 10 endpoints
// (most) never change size as Pods come and go.
inline constexpr std::array<uint32_t, 15> kMaglevTableSizes = {
    1021,   2039,   4093,    8191,    16381,   32749,   65537,   131071,
    262139, 524287, 1048573, 2097143, 4194301, 8388593, 16777213};

// The smallest listed size above 100 x `endpoints`, at most `max` (the
// [dataplane] maglev_table_size, itself a prime).
uint32_t maglev_table_size_for(size_t endpoints, uint32_t max) noexcept;

// The table size of a service's ports: its maglev_table_size when set, else
// chosen from its endpoint count (all of them, not only the ready ones, so
// a readiness change never resizes the table).
inline uint32_t maglev_table_size_of(const ServiceConfig& s, const DataplaneConfig& d) noexcept {
  return s.maglev_table_size ? *s.maglev_table_size
                             : maglev_table_size_for(s.endpoints.size(), d.maglev_table_size);
}

struct MemoryPlan {
  uint64_t maglev = 0;       // every Maglev table (2 bytes a slot)
  uint64_t services = 0;     // the rest of the per-service-port data and the maps
  uint64_t snapshot = 0;     // maglev + services, plus a second copy of the maps while a change is published
  uint64_t flow_tables = 0;  // all workers
  uint64_t packet_pool = 0;  // mbufs
  uint64_t other = 0;        // rings, ports, DPDK's own: an allowance
  uint64_t total = 0;
  std::optional<uint64_t> available;  // what eal.args give DPDK (-m, --socket-mem; --no-huge: 64 MiB)
  uint32_t service_ports = 0;
  uint64_t backends = 0;

  // One paragraph: "needs N MiB of DPDK memory: ...".
  std::string report() const;
  bool fits() const noexcept { return !available || total <= *available; }
};

MemoryPlan plan_memory(const Config& config);

// The refusal `podgate --check` gives for a plan that does not fit.
std::string memory_refusal(const MemoryPlan& plan, const std::string& source);

}  // namespace podgate::ctl
