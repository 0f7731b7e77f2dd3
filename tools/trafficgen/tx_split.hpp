// How a run's flows, --rate and --count are split among the TX lcores.
// Pure, so that tests can call it.
//
// TX engine i of n sends flows i, i + n, i + 2n, ... and its share of
// --rate and --count.  An engine's share of 0 would mean "as fast as
// possible" or "until the deadline", and an engine without a flow sends
// nothing at all, so a run uses no more engines than it has flows, packets
// per second (--rate) and packets (--count): every engine then owns a flow
// and a share of at least 1, and the shares add up to exactly what was
// asked.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace podgate::gen {

struct TxShare {
  uint32_t first_flow = 0;  // this engine sends flows first_flow + k * stride
  uint32_t stride = 1;      // the number of engines
  uint64_t rate_pps = 0;    // 0: the run has no --rate
  uint64_t count = 0;       // 0: the run has no --count
};

// lcores and flows at least 1; rate_pps and count 0 when not given.
inline std::vector<TxShare> split_tx(uint32_t lcores, uint32_t flows, uint64_t rate_pps,
                                     uint64_t count) {
  uint64_t engines = std::min(lcores, flows);
  if (rate_pps != 0) engines = std::min(engines, rate_pps);
  if (count != 0) engines = std::min(engines, count);
  const auto n = static_cast<uint32_t>(engines);
  std::vector<TxShare> shares(n);
  for (uint32_t i = 0; i < n; ++i) {
    shares[i].first_flow = i;
    shares[i].stride = n;
    shares[i].rate_pps = rate_pps / n + (i < rate_pps % n ? 1 : 0);
    shares[i].count = count / n + (i < count % n ? 1 : 0);
  }
  return shares;
}

}  // namespace podgate::gen
