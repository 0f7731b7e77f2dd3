// Maglev table sizes and the memory plan; see memory_plan.hpp.
#include "control/config/memory_plan.hpp"

#include <cstdlib>
#include <string_view>

#include "dataplane/flow_table.hpp"
#include "dataplane/snapshot.hpp"

namespace podgate::ctl {

namespace {

constexpr uint64_t kMiB = 1 << 20;
// DPDK's memory with --no-huge and no -m (MEMSIZE_IF_NO_HUGE_PAGE).
constexpr uint64_t kNoHugeDefault = 64 * kMiB;
// An mbuf of the pool: data room (RTE_MBUF_DEFAULT_BUF_SIZE), the rte_mbuf
// header and the mempool's own header, rounded up.
constexpr uint64_t kMbufBytes = 2176 + 128 + 64;
// Rings, ports, telemetry and DPDK's own allocations.
constexpr uint64_t kOtherBytes = 32 * kMiB;

// A ServiceMap of `items` (at most half full) of slots of `slot_bytes`.
uint64_t map_bytes(uint64_t items, uint64_t slot_bytes) {
  uint64_t cap = 8;
  while (cap < items * 2) cap <<= 1;
  return cap * slot_bytes;
}

std::string mib(uint64_t bytes) { return std::to_string((bytes + kMiB - 1) / kMiB) + " MiB"; }

// What eal.args give DPDK, when they say: -m MB, --socket-mem=A,B (MB per
// socket); --no-huge alone gives 64 MiB.  Hugepages without a limit: unknown.
std::optional<uint64_t> eal_memory(const EalConfig& eal) {
  bool no_huge = false;
  std::optional<uint64_t> mb;
  for (size_t i = 0; i < eal.args.size(); ++i) {
    std::string_view a = eal.args[i];
    std::string_view value;
    if (a == "--no-huge") no_huge = true;
    if ((a == "-m" || a == "--socket-mem") && i + 1 < eal.args.size()) {
      value = eal.args[i + 1];
    } else if (a.starts_with("-m") && a.size() > 2 && a[2] != '-') {
      value = a.substr(2);
    } else if (a.starts_with("--socket-mem=")) {
      value = a.substr(13);
    } else {
      continue;
    }
    uint64_t sum = 0;
    while (!value.empty()) {
      const size_t comma = value.find(',');
      sum += std::strtoull(std::string(value.substr(0, comma)).c_str(), nullptr, 10);
      value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
    }
    mb = sum;
  }
  if (mb) return *mb * kMiB;
  if (no_huge) return kNoHugeDefault;
  return std::nullopt;
}

}  // namespace

uint32_t maglev_table_size_for(size_t endpoints, uint32_t max) noexcept {
  const uint64_t want = uint64_t{100} * endpoints;
  for (uint32_t m : kMaglevTableSizes) {
    if (m > want) return m < max ? m : max;
  }
  return max;
}

MemoryPlan plan_memory(const Config& config) {
  MemoryPlan p;
  const DataplaneConfig& d = config.dataplane;
  uint64_t per_port = 0;
  uint64_t service_ports6 = 0, backends6 = 0;  // of p.service_ports, p.backends: IPv6 keys
  for (const ServiceConfig& s : config.services) {
    if (s.type != ServiceType::kClusterIp || !s.cluster_ip) continue;  // DNS only
    const uint64_t m = maglev_table_size_of(s, d);
    // A dual-stack service forwards each port on each of its cluster IPs,
    // to the endpoints of that VIP's family (issue 11): a service port and
    // a Maglev table per family.  IPv6 backends are counted at IPv4's size
    // plus their 12 more address bytes.
    for (const dp::IpAddr& vip : s.cluster_ips()) {
      size_t endpoints = 0;
      for (const EndpointConfig& e : s.endpoints) endpoints += e.ip.family == vip.family;
      const uint64_t per_backend = vip.is_v4() ? 20 : 32;
      for (size_t i = 0; i < s.ports.size(); ++i) {
        ++p.service_ports;
        p.backends += endpoints;
        if (!vip.is_v4()) {
          ++service_ports6;
          backends6 += endpoints;
        }
        p.maglev += 2 * m;
        // ServiceData with its vectors: ready and alive backends (8 bytes),
        // their stats slots (2 bytes), each vector rounded to a cache line.
        per_port += sizeof(dp::ServiceData) + 64 * 5 + endpoints * per_backend;
      }
    }
  }
  // Each family's maps (services, backends), with its own slot size.
  constexpr uint64_t kSlot4 = dp::ServiceMap::kSlotBytes, kSlot6 = dp::ServiceMap6::kSlotBytes;
  const uint64_t maps = map_bytes(p.service_ports - service_ports6, kSlot4) +
                        map_bytes(p.backends - backends6, kSlot4) + map_bytes(service_ports6, kSlot6) +
                        map_bytes(backends6, kSlot6);
  p.services = per_port + maps;
  // While a change is published the old snapshot lives on until every
  // worker has left it: its maps twice; Maglev tables are shared.
  p.snapshot = p.maglev + p.services + maps;
  p.flow_tables = uint64_t{d.workers} * (dp::FlowTable::memory_bytes(d.flow_table_size) +
                                         dp::FlowTable6::memory_bytes(d.ipv6_flows()));
  p.packet_pool = uint64_t{d.mbufs} * kMbufBytes;
  p.other = kOtherBytes;
  p.total = p.snapshot + p.flow_tables + p.packet_pool + p.other;
  p.available = eal_memory(config.eal);
  return p;
}

std::string MemoryPlan::report() const {
  std::string s = "needs " + mib(total) + " of DPDK memory: Maglev tables " + mib(maglev) + " (" +
                  std::to_string(service_ports) + " service ports), other snapshot data " +
                  mib(snapshot - maglev) + " (" + std::to_string(backends) +
                  " endpoints), flow tables " + mib(flow_tables) + ", packet pool " +
                  mib(packet_pool) + ", rings and DPDK " + mib(other);
  s += available ? "; eal.args give " + mib(*available) : "; eal.args set no limit (hugepages)";
  return s;
}

std::string memory_refusal(const MemoryPlan& plan, const std::string& source) {
  return source + ": does not fit in DPDK memory: " + plan.report() +
         ". Give EAL more memory (eal.args -m, hugepages), lower [dataplane] flow_table_size or "
         "mbufs, or lower [dataplane] maglev_table_size (the largest Maglev table a service port "
         "gets; smaller ones are chosen from endpoint counts) or a service's maglev_table_size";
}

}  // namespace podgate::ctl
