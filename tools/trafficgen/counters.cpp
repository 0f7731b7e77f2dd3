#include "tools/trafficgen/counters.hpp"

namespace podgate::gen {

void Counters::merge(const Counters& o) {
  tx_packets += o.tx_packets;
  tx_bytes += o.tx_bytes;
  tx_syn += o.tx_syn;
  rx_pod_packets += o.rx_pod_packets;
  rx_pod_bytes += o.rx_pod_bytes;
  replies_sent += o.replies_sent;
  replies_tx_failed += o.replies_tx_failed;
  rx_replies += o.rx_replies;
  arp_answered += o.arp_answered;
  arp_tx_failed += o.arp_tx_failed;
  arp_ignored += o.arp_ignored;
  ndp_answered += o.ndp_answered;
  ndp_tx_failed += o.ndp_tx_failed;
  ndp_ignored += o.ndp_ignored;
  for (size_t i = 0; i < kViolationCount; ++i) {
    violations[i] += o.violations[i];
    if (first_example[i][0] == '\0') first_example[i] = o.first_example[i];
  }
  if (endpoint_packets.size() < o.endpoint_packets.size()) {
    endpoint_packets.resize(o.endpoint_packets.size());
  }
  for (size_t i = 0; i < o.endpoint_packets.size(); ++i) endpoint_packets[i] += o.endpoint_packets[i];
  one_way.merge(o.one_way);
  round_trip.merge(o.round_trip);
}

}  // namespace podgate::gen
