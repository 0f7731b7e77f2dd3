// podgate-gen's command line and the expected service mapping it checks
// against.  Parsing is pure (no EAL), so it runs before rte_eal_init's
// arguments are even looked at by anything else.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "dataplane/net.hpp"

namespace podgate::gen {

// One Pod address and target port, as the generator expects it in a NATed
// packet's destination.  Network order, like the packet fields.  A run is of
// one family (Options::family): every address below is of it.
struct Endpoint {
  dp::IpAddr ip;
  rte_be16_t port = 0;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// VIP:port/proto and the Pods podgate may choose for a NEW flow to it: the
// service's ready endpoints.
struct Service {
  dp::IpAddr vip;
  rte_be16_t port = 0;
  dp::Proto proto = dp::Proto::kTcp;
  std::vector<Endpoint> endpoints;
};

struct Options {
  // Ports, by DPDK port id (probe order of the --vdev/-a arguments).
  uint16_t client_port = 0;  // sends to the VIPs, receives replies
  uint16_t pod_port = 1;     // receives what podgate sends to the Pods
  // Queues per port.  A net_memif peer must mirror podgate's: podgate has
  // one RX queue per worker and one TX queue per worker + 1, so the
  // generator TXes on `workers` queues and RXes on `workers + 1`.
  uint16_t tx_queues = 1;
  uint16_t rx_queues = 2;

  std::vector<Service> services;
  // IPv4, or IPv6 (--ipv6, or IPv6 addresses in --service): the VIPs, Pods,
  // clients and both gateways are all of this family.
  dp::Family family = dp::Family::kIpv4;

  // Flows: client addresses x client ports x services, enumerated in order.
  // IPv4 default 198.51.100.1 (RFC 5737), IPv6 2001:db8:100::1 (RFC 3849).
  // An IPv6 range varies in its last 32 bits only.
  dp::IpAddr client_first;
  dp::IpAddr client_last;
  uint16_t client_port_first = 1024;
  uint16_t client_port_last = 65535;
  uint32_t flows = 1000;

  uint16_t frame_size = 128;  // bytes, Ethernet header to payload end, no FCS (60..1514)
  uint64_t rate_pps = 0;      // 0: as fast as the ports take them
  double duration_s = 5.0;    // TX time, unless `count` is set
  uint64_t count = 0;         // packets to send in all; 0: use duration_s
  uint32_t drain_ms = 500;    // RX time after the last TX
  bool reply = false;         // the Pod side answers every packet
  // Every TCP packet is the SYN of a client ip:port never used before in
  // the run (a SYN flood of new connections), instead of --flows flows.
  bool new_flows = false;
  // Count stamped packets at the Pods without judging them: for a plain
  // forwarder (testpmd io/macswap) that does no NAT, the I/O baseline.
  bool no_check = false;
  // Send each flow on the queue of the podgate worker (of this many) that
  // owns it, as client-field RSS would; 0: no steering.
  uint32_t steer_workers = 0;

  // Addressing on the client side.
  dp::IpAddr gateway;    // podgate: 192.0.2.1, IPv6 fd00:2::1
  std::optional<dp::MacAddr> gateway_mac;  // else learnt by ARP / NDP
  dp::IpAddr client_gw;  // us: 192.0.2.2, IPv6 fd00:2::2
  std::optional<dp::MacAddr> client_mac;                // port MAC overrides
  std::optional<dp::MacAddr> pod_mac;

  uint32_t tx_lcores = 0;  // 0: the main lcore does everything
  uint32_t rx_lcores = 0;
  uint32_t link_timeout_s = 10;

  std::string json_path;
  std::string csv_path;
  std::optional<double> max_loss_pct;
  bool quiet = false;
};

struct UsageError {
  std::string message;
};
struct HelpRequested {};

using ParseResult = std::variant<Options, UsageError, HelpRequested>;

// Parses the arguments after EAL's (argv[0] is the program name).
ParseResult parse_options(int argc, char** argv);

// The text of --help.
std::string usage_text(std::string_view program);

// "10.96.0.20:80/tcp=172.17.0.10:8080,172.17.0.11:8080" -> Service; IPv6
// addresses in brackets: "[fd00:96::20]:80/tcp=[fd00:17::10]:8080".
std::variant<Service, UsageError> parse_service(std::string_view text);

// Reads the [[services]] of a podgate config (or a file holding only those
// tables): every ClusterIP service port with a VIP of `family`
// (cluster_ip, or its entry in cluster_ips), and its ready endpoints of
// that family.
std::variant<std::vector<Service>, UsageError> load_services(const std::string& path,
                                                             dp::Family family);

// "10.96.0.20:80/TCP", "[fd00:96::20]:80/TCP".
std::string to_string(const Service& s);
std::string to_string(const Endpoint& e);

// How many addresses first..last holds (0: not a range: another family,
// last before first, or an IPv6 pair that differs above its last 32 bits).
uint64_t address_count(const dp::IpAddr& first, const dp::IpAddr& last) noexcept;
// The address `n` after `first` (n < address_count(first, last)).
dp::IpAddr nth_address(const dp::IpAddr& first, uint32_t n) noexcept;

}  // namespace podgate::gen
