// Builds the dataplane's Snapshot from a Config: a pure function (style
// habit 9) — data in, data out, no I/O — so tests call it directly.
//
// Per-service data is reused from the previous snapshot when nothing that
// forwarding depends on changed (VIP, port, protocol, affinity, Maglev size,
// ready and draining endpoints), so one endpoint change rebuilds one Maglev
// table and the rest are shared (architecture decision 1).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "control/config/config.hpp"
#include "control/publish/stats_slots.hpp"
#include "dataplane/snapshot.hpp"

namespace podgate::ctl {

struct SnapshotInputs {
  const Config* config = nullptr;
  std::vector<dp::MacAddr> port_macs;  // by PortIdx: the MAC each port has
  const dp::Snapshot* previous = nullptr;
  uint64_t generation = 1;
  StatsSlots* slots = nullptr;  // assigns endpoints their stats slots; null: untracked
};

struct BuildStats {
  uint32_t services_built = 0;   // Maglev tables computed
  uint32_t services_shared = 0;  // taken from the previous snapshot
};

std::unique_ptr<dp::Snapshot> build_snapshot(const SnapshotInputs& in, BuildStats* stats = nullptr);

// The stable Maglev key of an endpoint of a service port: "ip:target_port".
std::string maglev_key(const dp::Backend& b);

}  // namespace podgate::ctl
