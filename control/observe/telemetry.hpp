// podgate's DPDK telemetry commands (/podgate/status, /podgate/stats,
// /podgate/services), so `dpdk-telemetry.py` and telemetry collectors
// (e.g. telegraf's dpdk input) show the appliance next to /ethdev/stats.
//
// Telemetry callbacks run on DPDK's telemetry threads (one per client
// connection), never on the control thread, so they must not touch the
// Appliance.  The control thread publishes each command's JSON into a
// TelemetryCache (e.g. once a second and after every change); a callback
// takes a reference to the latest value under a mutex and converts it
// outside the lock.
//
// What DPDK 22.11's rte_tel_data can carry (checked against the library):
//  * one level of nesting: the reply is a dict whose values are scalars
//    or containers, and a container holds scalars only (a container inside
//    a container is accepted by the API but left out of the output);
//  * dict names of [A-Za-z0-9_/] only (a '.' or '-' is rejected, -EINVAL),
//    at most RTE_TEL_MAX_STRING_LEN - 1 = 127 bytes, as are string values;
//  * at most RTE_TEL_MAX_DICT_ENTRIES = 256 entries per dict;
//  * at most 16 KiB of JSON per reply: entries past it are silently left out.
// So the JSON is flattened: a top-level scalar stays a scalar; a top-level
// object becomes one container whose keys are the paths of its leaves
// joined by '/' ("counters/rx_packets"); a top-level array of objects
// becomes one container per element named "KEY/INDEX" ("workers/0");
// other characters in names become '_'.  Leaves: non-negative integers ->
// u64, negative ones -> int (or text beyond 32 bits), bools -> u64 1/0,
// floats -> text, strings cut to 127 bytes, nulls left out.  A container
// or reply that would pass 256 entries or the 16 KiB budget is cut and
// says so in a "truncated" entry; the command's parameter selects one
// section ("/podgate/stats,workers/1", "/podgate/stats,dns") to see it whole.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/result.hpp"

struct rte_tel_data;

namespace podgate::ctl {

// ---- the flattening step (pure) ----

using TelScalar = std::variant<uint64_t, int, std::string>;
struct TelEntry {
  std::string name;
  TelScalar value;
};
// A top-level entry: a scalar, or a container of scalars.
struct TelItem {
  std::string name;
  std::variant<TelScalar, std::vector<TelEntry>> value;
};

inline constexpr size_t kTelMaxName = 127;       // RTE_TEL_MAX_STRING_LEN - 1
inline constexpr size_t kTelMaxEntries = 256;    // RTE_TEL_MAX_DICT_ENTRIES
inline constexpr size_t kTelMaxOutput = 16384;   // telemetry.c MAX_OUTPUT_LEN (22.11)

// `value` (the JSON a command publishes) as telemetry items, within the
// limits above for a reply to `command`.  `section` (the command's
// parameter, may be empty) keeps only the item of that name and those
// under it ("workers" keeps "workers/0", "workers/1", ...); naming none is
// an error listing the sections there are.
Result<std::vector<TelItem>> flatten_for_telemetry(const nlohmann::json& value,
                                                   std::string_view command,
                                                   std::string_view section);

// Writes `items` into `d` as a dict (containers with keep = 0: DPDK frees
// them).  Returns how many additions DPDK refused (0 when the limits above
// hold).
int fill_tel_data(const std::vector<TelItem>& items, rte_tel_data* d);

// ---- the cache between the control thread and the telemetry threads ----

class TelemetryCache {
 public:
  // Control thread: replaces what `command` ("/podgate/stats") replies.
  void publish(std::string_view command, const nlohmann::json& value);
  // Any thread: the latest value published for `command`, or null.
  std::shared_ptr<const nlohmann::json> get(std::string_view command) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const nlohmann::json>, std::less<>> values_;
};

// The commands podgate registers, with their help texts.
inline constexpr std::string_view kTelemetryStatus = "/podgate/status";
inline constexpr std::string_view kTelemetryStats = "/podgate/stats";
inline constexpr std::string_view kTelemetryServices = "/podgate/services";

// Registers the three commands with DPDK telemetry (after rte_eal_init) on
// the first call, and makes them answer from `cache`.  The commands live as
// long as the process (DPDK has no unregistration), so the cache pointer is
// process-wide: call again with nullptr before destroying the cache; that
// call waits for callbacks still reading it.  Until a value is published
// the commands reply with a string saying so.
Result<void> register_telemetry_commands(TelemetryCache* cache);

}  // namespace podgate::ctl
