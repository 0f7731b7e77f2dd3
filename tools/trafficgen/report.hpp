// Results of a run: the merged counters turned into figures, printed for a
// person (stdout) and written for machines (--json, --csv).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tools/trafficgen/counters.hpp"
#include "tools/trafficgen/flows.hpp"
#include "tools/trafficgen/options.hpp"

namespace podgate::gen {

struct LatencySummary {
  uint64_t count = 0;
  double p50_ns = 0, p90_ns = 0, p99_ns = 0, p999_ns = 0, max_ns = 0;
};

struct Results {
  Counters total;
  double tx_seconds = 0;  // from the first send to the last
  uint32_t flows = 0;
  uint32_t flows_seen = 0;                 // reached some Pod
  std::vector<uint32_t> endpoint_flows;    // flows pinned, by global endpoint index
  LatencySummary one_way;
  LatencySummary round_trip;

  uint64_t violations() const noexcept;
  uint64_t lost() const noexcept;       // sent to a VIP, never seen at a Pod
  double loss_pct() const noexcept;
  // Taken by the pod port, never seen at the client port (a reply the
  // pod port refused is in total.replies_tx_failed, not here).
  uint64_t replies_lost() const noexcept;
  double tx_pps() const noexcept;
  double rx_pps() const noexcept;       // at the Pods, over the send time
};

Results summarise(const Counters& total, const FlowSet& flows, double tx_seconds,
                  uint64_t tsc_hz);

// 0: every check passed; 1: a violation, or loss above --max-loss.
int exit_code(const Options& o, const Results& r);

void print_summary(const Options& o, const FlowSet& flows, const Results& r);
// Both return an error message, or "" on success.
std::string write_json(const std::string& path, const Options& o, const FlowSet& flows,
                       const Results& r);
std::string append_csv(const std::string& path, const Options& o, const Results& r);

}  // namespace podgate::gen
