// Builds the dataplane's Snapshot from a Config: data in, data out, no I/O
// (style habit 9), so tests call it directly.
//
// Incremental (issue 14, "Scale"): each snapshot carries the builder's
// record of which service built which per-service data (builder_state).
// Given the previous snapshot and what changed in the services since the
// Config it was built from (`changes`, from the Registry), only the services
// changed are built: the rest keep their ServiceData, Maglev table included,
// and their stable ids; the flat maps are copied from the previous snapshot
// and patched.  Cost O(services changed) plus copying those maps.  Without
// `changes` (start, reload, a change outside [[services]]) every service is
// built, still sharing the per-service data of every service port that
// forwards exactly as before (VIP, port, protocol, affinity, Maglev size,
// ready and draining endpoints): one endpoint change rebuilds one Maglev
// table (architecture decision 1).
//
// Service ids are stable: a service keeps its id while it exists (by name
// across a reload), and a deleted service's id is reused later, so deleting
// one renumbers nothing.
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
  // config->services compared with the services `previous` was built from,
  // when nothing else changed; null: build every service (sharing what
  // forwards as before).  `previous` must be the last snapshot built on
  // from its predecessor (the published one).
  const ServiceDiff* changes = nullptr;
};

struct BuildStats {
  uint32_t services_built = 0;   // Maglev tables computed
  uint32_t services_shared = 0;  // taken from the previous snapshot
  bool incremental = false;      // only the changed services were looked at
  // Per-service data of the previous snapshot that the new one no longer
  // has (for StatsSlots::release()), of each family.
  std::vector<std::shared_ptr<const dp::ServiceData>> dropped;
  std::vector<std::shared_ptr<const dp::ServiceData6>> dropped6;
};

// Throws std::bad_alloc when memory runs out (the caller's change boundary
// turns it into an error; nothing of `previous` is changed).
std::unique_ptr<dp::Snapshot> build_snapshot(const SnapshotInputs& in, BuildStats* stats = nullptr);

// The stable Maglev key of an endpoint of a service port: "ip:target_port".
std::string maglev_key(const dp::Backend& b);
// The same for an IPv6 endpoint: "[ip]:target_port".
std::string maglev_key(const dp::Backend6& b);

}  // namespace podgate::ctl
