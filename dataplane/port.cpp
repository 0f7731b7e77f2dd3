#include "dataplane/port.hpp"

#include <algorithm>
#include <cstring>

#include <rte_bus.h>
#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>

namespace podgate::dp {

std::string dpdk_error(int rc) {
  return rte_strerror(rc < 0 ? -rc : rc);
}

namespace {

// The name a device string registers its port under: the part before the
// first ',' ("net_tap0,iface=x" -> "net_tap0").
std::string device_name(const std::string& device) {
  return device.substr(0, device.find(','));
}

std::optional<uint16_t> find_or_probe(const std::string& device, std::string& error) {
  uint16_t port_id;
  std::string name = device_name(device);
  if (rte_eth_dev_get_port_by_name(name.c_str(), &port_id) == 0) return port_id;
  int rc = rte_dev_probe(device.c_str());
  if (rc < 0) {
    error = "cannot probe device '" + device + "': " + dpdk_error(rc);
    return std::nullopt;
  }
  if (rte_eth_dev_get_port_by_name(name.c_str(), &port_id) != 0) {
    error = "device '" + device + "' was probed but is not an Ethernet port";
    return std::nullopt;
  }
  return port_id;
}

}  // namespace

std::optional<std::string> open_port(const PortRequest& req, PortInfo& out) {
  std::string prefix = "port '" + req.name + "' (" + req.device + "): ";
  std::string error;
  auto port_id = find_or_probe(req.device, error);
  if (!port_id) return prefix + error;
  out.port_id = *port_id;
  out.client = req.client;

  rte_eth_dev_info info{};
  int rc = rte_eth_dev_info_get(out.port_id, &info);
  if (rc != 0) return prefix + "cannot read device info: " + dpdk_error(rc);
  out.driver = info.driver_name ? info.driver_name : "?";
  if (info.max_tx_queues < req.tx_queues) {
    return prefix + "needs " + std::to_string(req.tx_queues) +
           " TX queues (one per worker + one for the control thread), device has " +
           std::to_string(info.max_tx_queues);
  }
  out.rx_queues = std::min<uint16_t>(req.rx_queues, info.max_rx_queues);
  if (out.rx_queues == 0) return prefix + "device has no RX queue";

  rte_eth_conf conf{};
  // Spread flows over RX queues.  Best: RSS on the client's address and
  // port alone, with Ownership's key, one queue per worker: every packet
  // then arrives at the worker that owns its connection.  Else any
  // spreading the device does is correct: workers hand packets on.
  const bool source = req.client == ClientAddress::kSource;
  const uint64_t client_fields =
      RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV4_UDP |
      (source ? RTE_ETH_RSS_L3_SRC_ONLY | RTE_ETH_RSS_L4_SRC_ONLY
              : RTE_ETH_RSS_L3_DST_ONLY | RTE_ETH_RSS_L4_DST_ONLY);
  // IPv6 TCP/UDP too, hashed on the same fields, where the device can.
  const uint64_t ipv6_types = RTE_ETH_RSS_NONFRAG_IPV6_TCP | RTE_ETH_RSS_NONFRAG_IPV6_UDP;
  const bool pow2_reta = info.reta_size >= 64 && (info.reta_size & (info.reta_size - 1)) == 0;
  std::vector<uint8_t> key(info.hash_key_size, 0);
  std::copy_n(Ownership::kKey.begin(), std::min<size_t>(key.size(), Ownership::kKey.size()), key.begin());
  const char* side = source ? "source" : "destination";
  uint64_t rss = info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP);
  if (req.rx_queues > 1 && out.rx_queues == req.rx_queues &&
      (info.flow_type_rss_offloads & client_fields) == client_fields && pow2_reta &&
      info.hash_key_size >= 10) {
    out.client_rss6 = (info.flow_type_rss_offloads & ipv6_types) == ipv6_types;
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = client_fields | (out.client_rss6 ? ipv6_types : 0);
    conf.rx_adv_conf.rss_conf.rss_key = key.data();
    conf.rx_adv_conf.rss_conf.rss_key_len = static_cast<uint8_t>(key.size());
    out.client_rss = true;
    out.own_rss = true;
    out.reta_size = info.reta_size;
    if (!out.client_rss6) {
      out.notes.push_back(std::string("RSS on the ") + side +
                          " for IPv4 only (the device cannot hash IPv6 TCP/UDP): IPv6 packets are "
                          "handed to their owner");
    }
  } else if (out.rx_queues > 1 && rss != 0) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = rss;
    out.own_rss = true;
    out.notes.push_back(std::string("RSS on the whole 5-tuple (the device cannot hash the ") + side +
                        " alone)");
  } else if (out.rx_queues > 1) {
    out.notes.push_back("no RSS: queues are filled by the device's own spreading");
  }
  if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) {
    conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
  }
  conf.intr_conf.rxq = req.rx_interrupts ? 1 : 0;
  rc = rte_eth_dev_configure(out.port_id, out.rx_queues, req.tx_queues, &conf);
  if (rc != 0 && out.rx_queues < req.tx_queues && req.tx_queues <= info.max_rx_queues) {
    // Some devices (net_tap) need as many RX queues as TX queues; the
    // extra RX queues are polled by workers like the others.
    rc = rte_eth_dev_configure(out.port_id, req.tx_queues, req.tx_queues, &conf);
    if (rc == 0) {
      out.notes.push_back("device needs equal RX and TX queue counts: " +
                          std::to_string(req.tx_queues) + " RX queues shared by the workers");
      out.rx_queues = req.tx_queues;
    }
  }
  if (rc != 0) return prefix + "configure failed: " + dpdk_error(rc);

  uint16_t rx_desc = req.rx_desc, tx_desc = req.tx_desc;
  rc = rte_eth_dev_adjust_nb_rx_tx_desc(out.port_id, &rx_desc, &tx_desc);
  if (rc != 0) return prefix + "descriptor counts refused: " + dpdk_error(rc);
  int socket = rte_eth_dev_socket_id(out.port_id);
  if (socket < 0) socket = 0;
  for (uint16_t q = 0; q < out.rx_queues; ++q) {
    rc = rte_eth_rx_queue_setup(out.port_id, q, rx_desc, static_cast<unsigned>(socket), nullptr, req.pool);
    if (rc != 0) return prefix + "RX queue " + std::to_string(q) + " setup failed: " + dpdk_error(rc);
  }
  for (uint16_t q = 0; q < req.tx_queues; ++q) {
    rc = rte_eth_tx_queue_setup(out.port_id, q, tx_desc, static_cast<unsigned>(socket), nullptr);
    if (rc != 0) return prefix + "TX queue " + std::to_string(q) + " setup failed: " + dpdk_error(rc);
  }

  // Optional operations: a device without them is used as it is, with a note.
  if (req.mtu) {
    rc = rte_eth_dev_set_mtu(out.port_id, *req.mtu);
    if (rc == -ENOTSUP) {
      out.notes.push_back("device has no MTU setting; mtu " + std::to_string(*req.mtu) + " ignored");
    } else if (rc != 0) {
      return prefix + "mtu " + std::to_string(*req.mtu) + " refused: " + dpdk_error(rc);
    }
  }
  if (req.mac) {
    rte_ether_addr addr;
    std::memcpy(addr.addr_bytes, req.mac->bytes.data(), 6);
    rc = rte_eth_dev_default_mac_addr_set(out.port_id, &addr);
    if (rc == -ENOTSUP) {
      out.notes.push_back("device cannot change its MAC; using its own");
    } else if (rc != 0) {
      return prefix + "mac " + to_string(*req.mac) + " refused: " + dpdk_error(rc);
    }
  }

  rc = rte_eth_dev_start(out.port_id);
  if (rc != 0) return prefix + "start failed: " + dpdk_error(rc);
  rc = rte_eth_dev_set_link_up(out.port_id);
  if (rc == -ENOTSUP) out.notes.push_back("device has no link-up operation");
  if (req.rx_interrupts) {
    for (uint16_t q = 0; q < out.rx_queues; ++q) {
      const int fd = rte_eth_dev_rx_intr_ctl_q_get_fd(out.port_id, q);
      if (fd < 0) {
        out.rx_wake_fds.clear();
        out.notes.push_back("device has no RX interrupts: its queues are polled");
        break;
      }
      out.rx_wake_fds.push_back(fd);
    }
  }

  rte_ether_addr addr;
  rc = rte_eth_macaddr_get(out.port_id, &addr);
  if (rc != 0) return prefix + "cannot read MAC: " + dpdk_error(rc);
  std::memcpy(out.mac.bytes.data(), addr.addr_bytes, 6);
  if (out.mac.is_zero()) {
    // Some virtual devices (net_ring) have no address and take none: use
    // the configured one, or a locally administered one, and receive every
    // frame so that frames sent to it arrive.
    out.mac = req.mac ? *req.mac
                      : MacAddr{{0x02, 0x70, 0x67, 0x00, static_cast<uint8_t>(out.port_id >> 8),
                                 static_cast<uint8_t>(out.port_id)}};
    rte_eth_promiscuous_enable(out.port_id);
    out.notes.push_back("device has no MAC address; using " + to_string(out.mac) +
                        " in promiscuous mode");
  }
  return std::nullopt;
}

uint32_t client_rss_reta_size(const std::vector<PortInfo>& ports) {
  uint32_t size = Ownership::kMaxRetaSize;
  bool any = false;
  for (const PortInfo& p : ports) {
    if (!p.client_rss) continue;
    any = true;
    size = std::min<uint32_t>(size, p.reta_size);
  }
  return any ? size : 128;
}

std::optional<std::string> program_client_rss(const PortInfo& port, const Ownership& owners) {
  if (port.reta_size % owners.reta_size() != 0) {
    return "RETA of " + std::to_string(port.reta_size) + " entries cannot repeat a table of " +
           std::to_string(owners.reta_size());
  }
  std::vector<rte_eth_rss_reta_entry64> reta(port.reta_size / RTE_ETH_RETA_GROUP_SIZE);
  for (uint32_t i = 0; i < port.reta_size; ++i) {
    rte_eth_rss_reta_entry64& group = reta[i / RTE_ETH_RETA_GROUP_SIZE];
    group.mask |= uint64_t{1} << (i % RTE_ETH_RETA_GROUP_SIZE);
    group.reta[i % RTE_ETH_RETA_GROUP_SIZE] = owners.reta_entry(i);
  }
  const int rc = rte_eth_dev_rss_reta_update(port.port_id, reta.data(), port.reta_size);
  if (rc != 0) return "RETA update refused: " + dpdk_error(rc);
  return std::nullopt;
}

void close_port(uint16_t port_id) {
  rte_eth_dev_stop(port_id);
  rte_eth_dev_info info{};
  bool have_info = rte_eth_dev_info_get(port_id, &info) == 0;
  rte_eth_dev_close(port_id);
  if (have_info && info.device != nullptr) rte_dev_remove(info.device);
}

}  // namespace podgate::dp
