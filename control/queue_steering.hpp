// Which worker's queue a connection's packets arrive on, port by port: the
// start-up decision behind RxQueue::client_rss / client_rss6 and the line
// the log prints for each port.
//
// A worker takes a TCP/UDP packet from a steered queue as its own without
// computing its owner (dataplane/ownership.hpp).  A queue is steered where
// the port has a queue per worker and either its own RSS was programmed on
// the client's fields (program_client_rss), or the port says its peer
// steers (PortConfig::steered_by_peer) and the device has no RSS of its own
// that would decide the queue instead.  A packet that arrives elsewhere
// anyway is handed on by classification, so this decides speed only.
#pragma once

#include <cstdint>
#include <string>

#include "control/config/config.hpp"
#include "dataplane/port.hpp"

namespace podgate::ctl {

struct QueueSteering {
  bool ipv4 = false;  // IPv4 TCP/UDP packets arrive at their owner
  bool ipv6 = false;  // IPv6 TCP/UDP packets do
};

QueueSteering queue_steering(const dp::PortInfo& port, const PortConfig& config, uint32_t workers);

// The log's words for the mode of a port: "one worker owns them all",
// "RSS-steered: ...", "steered by its peer ...", or why packets are
// handed to their owner.
std::string describe_steering(const dp::PortInfo& port, const PortConfig& config, uint32_t workers);

}  // namespace podgate::ctl
