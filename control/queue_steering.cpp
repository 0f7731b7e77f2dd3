#include "control/queue_steering.hpp"

namespace podgate::ctl {

QueueSteering queue_steering(const dp::PortInfo& port, const PortConfig& config, uint32_t workers) {
  if (port.rx_queues != workers) return {};
  if (port.client_rss) return {true, port.client_rss6};
  if (config.steered_by_peer && !port.own_rss) return {true, true};
  return {};
}

std::string describe_steering(const dp::PortInfo& port, const PortConfig& config, uint32_t workers) {
  if (workers == 1) return "one worker owns them all";
  const QueueSteering steered = queue_steering(port, config, workers);
  if (port.client_rss && steered.ipv4) {
    return steered.ipv6 ? "RSS-steered: each connection arrives at its owner"
                        : "RSS-steered for IPv4: each IPv4 connection arrives at its owner";
  }
  if (steered.ipv4) return "steered by its peer (steered_by_peer): each connection arrives at its owner";
  const std::string handed = "packets are handed to their owner";
  const std::string queues = "an RX queue per worker, the device has " + std::to_string(port.rx_queues);
  if (port.client_rss) return "RSS on the client's fields, but not " + queues + "; " + handed;
  if (config.steered_by_peer) {
    return "steered_by_peer ignored: " +
           (port.own_rss ? std::string("the device spreads packets by its own RSS")
                         : "it needs " + queues) +
           "; " + handed;
  }
  if (port.own_rss) return "RSS on the whole 5-tuple, not the client's fields: " + handed;
  return "no RSS on it: " + handed;
}

}  // namespace podgate::ctl
