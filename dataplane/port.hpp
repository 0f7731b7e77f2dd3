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
#include "dataplane/ownership.hpp"

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
  // With several RX queues, RSS on this address and port alone, so that
  // both directions of a connection reach its owner (ownership.hpp).
  ClientAddress client = ClientAddress::kSource;
  // A descriptor per RX queue that is readable while packets wait
  // (intr_conf.rxq; PortInfo::rx_wake_fds), so that a thread polling the
  // port can sleep in epoll instead.
  bool rx_interrupts = false;
  rte_mempool* pool = nullptr;
};

struct PortInfo {
  uint16_t port_id = 0;
  uint16_t rx_queues = 0;  // as configured
  MacAddr mac;
  std::string driver;
  // RSS hashes the client's address and port alone with Ownership's key,
  // of IPv4 TCP/UDP packets, and of IPv6 ones too where `client_rss6`;
  // its redirection table (reta_size entries) is still to be written by
  // program_client_rss().
  ClientAddress client = ClientAddress::kSource;  // as requested
  bool client_rss = false;
  bool client_rss6 = false;
  uint16_t reta_size = 0;
  // The device spreads packets over its queues by an RSS hash of its own
  // (client_rss or the whole 5-tuple), so what queue a peer sent a packet
  // on does not decide where it arrives.
  bool own_rss = false;
  // With PortRequest::rx_interrupts, each RX queue's descriptor (level:
  // readable while packets wait), from rte_eth_dev_rx_intr_ctl_q_get_fd();
  // empty where the device has none.
  std::vector<int> rx_wake_fds;
  std::vector<std::string> notes;  // optional operations the device lacks
};

// Probes (if needed), configures and starts the port.  On failure returns
// a message naming the port, the device and what DPDK said.
std::optional<std::string> open_port(const PortRequest& req, PortInfo& out);

// Writes `owners`' redirection table into a client_rss port's RETA (the
// device's table repeats it: owners.reta_size() divides port.reta_size).
// After it each packet arrives on the queue of the worker that owns it.
std::optional<std::string> program_client_rss(const PortInfo& port, const Ownership& owners);

// The RETA size an Ownership must have to be programmed into every one of
// `ports` (the smallest client_rss RETA, at most Ownership::kMaxRetaSize).
uint32_t client_rss_reta_size(const std::vector<PortInfo>& ports);

// Stops and closes the port (and detaches a virtual device).
void close_port(uint16_t port_id);

// rte_strerror of a negative DPDK return value.
std::string dpdk_error(int rc);

}  // namespace podgate::dp
