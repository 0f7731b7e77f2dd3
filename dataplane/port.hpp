// Opening a DPDK port from a device string: a PCI address probed by EAL
// ("0000:01:00.0") or a virtual device ("net_tap0,iface=pg-up",
// "net_memif0,role=server,socket=/run/pg.sock", "net_ring0", "net_null0").
//
// Queue layout (architecture decision 4): up to one RX queue per worker
// (fewer if the device has fewer; workers then hand packets to the owner of
// their flow through rings), and one TX queue per worker plus one for the
// control thread (ARP requests, DNS answers, packets that waited for ARP).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <rte_mempool.h>

#include "dataplane/net.hpp"

namespace podgate::dp {

struct PortRequest {
  std::string name;    // for messages: "uplink"
  std::string device;  // DPDK device string
  std::optional<MacAddr> mac;
  std::optional<uint16_t> mtu;
  uint16_t rx_queues = 1;   // wanted; capped by the device
  uint16_t tx_queues = 2;   // required: workers + 1
  uint16_t rx_desc = 1024;
  uint16_t tx_desc = 1024;
  rte_mempool* pool = nullptr;
};

struct PortInfo {
  uint16_t port_id = 0;
  uint16_t rx_queues = 0;  // as configured
  MacAddr mac;
  std::string driver;
  std::vector<std::string> notes;  // optional operations the device lacks
};

// Probes (if needed), configures and starts the port.  On failure returns
// a message naming the port, the device and what DPDK said.
std::optional<std::string> open_port(const PortRequest& req, PortInfo& out);

// Stops and closes the port (and detaches a virtual device).
void close_port(uint16_t port_id);

// rte_strerror of a negative DPDK return value.
std::string dpdk_error(int rc);

}  // namespace podgate::dp
