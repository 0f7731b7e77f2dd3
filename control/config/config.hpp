// The appliance's configuration: what conf/podgate.toml says, validated.
//
// load_config() parses TOML and checks everything before returning, so a
// Config that exists is a Config that can run: every error is reported with
// file:line:col, the key path, what was found and what is allowed, e.g.
//   conf/podgate.toml:14:9: services[2].ports[0].port: 70000 is not in 1..65535
// Unknown keys are errors.  Nothing falls back silently to a default.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/config/service_list.hpp"
#include "control/result.hpp"
#include "dataplane/flow_table.hpp"
#include "dataplane/net.hpp"
#include "dataplane/ownership.hpp"

namespace podgate::ctl {

struct EalConfig {
  std::vector<std::string> args;  // passed to rte_eal_init after argv[0]
  friend bool operator==(const EalConfig&, const EalConfig&) = default;
};

struct DataplaneConfig {
  uint32_t workers = 1;                    // worker lcores
  uint32_t flow_table_size = 1u << 20;     // connections tracked per worker
  // IPv6 connections per worker (issue 11): their own table beside the
  // IPv4 one; absent: a quarter of flow_table_size, at least 1024.
  std::optional<uint32_t> ipv6_flow_table_size;
  uint32_t ipv6_flows() const noexcept {
    return ipv6_flow_table_size.value_or(dp::ipv6_flow_capacity(flow_table_size));
  }
  uint32_t maglev_table_size = 65537;      // default M (prime)
  uint32_t mbufs = 16383;                  // mbufs in the packet pool
  uint32_t rx_ring_size = 1024;            // descriptors per RX queue
  uint32_t tx_ring_size = 1024;            // descriptors per TX queue
  uint32_t tcp_syn_timeout = 30;           // seconds, before establishment
  uint32_t tcp_established_timeout = 900;  // seconds
  uint32_t tcp_fin_timeout = 120;          // seconds, half-closed: one side's FIN seen
  uint32_t tcp_closing_timeout = 10;       // seconds, after both FINs or a RST
  uint32_t udp_timeout = 300;              // seconds
  // How long a released stats slot stays quarantined (stats_slots.hpp):
  // until the last flow entry that may carry it ends, the longest flow
  // timeout, plus the expiry scan's lag.
  uint64_t stats_slot_quarantine_s() const noexcept {
    return uint64_t{std::max({tcp_syn_timeout, tcp_established_timeout, tcp_fin_timeout,
                                     tcp_closing_timeout, udp_timeout})} + 60;
  }
  // An idle worker (1024 polls that received nothing) sleeps this long
  // before each next poll, as l3fwd-power backs off; 0 (the default):
  // it spins, for the lowest latency on a core of its own.
  uint32_t idle_sleep_us = 0;
  // Instead, an idle worker whose every port has RX interrupts sleeps
  // until one of them, another worker's handoff or the control thread
  // wakes it (dataplane/worker_sleep.cpp); idle_sleep_us is for the others.
  bool rx_interrupts = false;
  friend bool operator==(const DataplaneConfig&, const DataplaneConfig&) = default;
};

struct PortConfig {
  std::string name;        // "uplink", "pods": used in logs and stats
  std::string device;      // DPDK device string: PCI address or vdev args
  dp::Prefix4 address;     // the port's own address and connected subnet
  std::optional<dp::MacAddr> mac;  // overrides the device's MAC
  std::optional<uint16_t> mtu;     // left to the device when absent
  // Which address of a packet arriving here is the client's (RSS and flow
  // ownership, dataplane/ownership.hpp); absent: chosen at start from the
  // endpoints (choose_client_address(), control/config/start_settings.hpp).
  std::optional<dp::ClientAddress> client_address;
  // The exception path (control/exception/kernel_twins.hpp): the name of
  // the kernel interface that twins this port; empty: none.  It takes at
  // most kernel_rate packets a second each way.
  std::string kernel;
  uint32_t kernel_rate = kDefaultKernelRate;
  static constexpr uint32_t kDefaultKernelRate = 100000;
  // Its IPv6 address and on-link prefix (issue 11); absent: the port
  // takes no IPv6.
  std::optional<dp::Prefix6> address6;
  // The device on the other side already sends each connection on the RX
  // queue of the worker that owns it (dataplane/ownership.hpp: podgate-gen
  // --steer-workers, or a switch hashing the client's fields with
  // podgate's key and table), so the workers take such queues' TCP/UDP
  // packets as their own, as on a port whose own RSS podgate programmed.
  // A packet it puts elsewhere is still handed to its owner.
  bool steered_by_peer = false;
  friend bool operator==(const PortConfig&, const PortConfig&) = default;
};

struct RouteConfig {
  dp::Prefix4 prefix;
  dp::Ip4 via;
  friend bool operator==(const RouteConfig&, const RouteConfig&) = default;
};

struct NeighborConfig {
  dp::Ip4 ip;
  dp::MacAddr mac;
  friend bool operator==(const NeighborConfig&, const NeighborConfig&) = default;
};

// The IPv6 [[routes]] and [[neighbors]] (issue 11): the same tables, told
// apart by the family of their addresses.
struct Route6Config {
  dp::Prefix6 prefix;
  dp::Ip6 via;  // "::": connected
  friend bool operator==(const Route6Config&, const Route6Config&) = default;
};

struct Neighbor6Config {
  dp::Ip6 ip;
  dp::MacAddr mac;
  friend bool operator==(const Neighbor6Config&, const Neighbor6Config&) = default;
};

// Cluster DNS served by the control thread (../shared/design/dns.md).
struct DnsListen {
  dp::Ip4 ip;
  uint16_t port = 53;
  friend bool operator==(const DnsListen&, const DnsListen&) = default;
};

struct DnsConfig {
  std::string zone = "cluster.local";  // the cluster domain, no trailing dot
  uint32_t ttl = 30;                   // seconds, answers and negative TTL
  // Kernel UDP+TCP listeners, e.g. ["127.0.0.1:53"]; empty = none.
  std::vector<DnsListen> listen = {DnsListen{dp::Ip4::from_host(0x7f000001), 53}};
  // The DNS service VIP answered on the dataplane (kube-dns's 10.96.0.10);
  // also the address of ns.dns.<zone> in NS glue.  Absent = none.
  std::optional<dp::Ip4> service_ip;
  uint16_t max_udp_payload = 1232;     // our EDNS0 limit (DNS flag day 2020)
  // Queries per second each client address may send to service_ip (the
  // workers' per-source limit on punts, RRL-style); 0: no limit.
  uint32_t rate_limit = 1000;
  friend bool operator==(const DnsConfig&, const DnsConfig&) = default;
};

// The control socket podgatectl talks to (docs/control-protocol.md).
struct ControlConfig {
  std::string socket = "/run/podgate/podgate.sock";  // absolute path, at most 107 bytes
  uint32_t mode = 0660;         // the socket file's permission bits
  std::string group;            // its group ("" = podgate's own): who may administer
  uint32_t idle_timeout = 300;  // seconds a client may stay silent; 0 = no limit
  friend bool operator==(const ControlConfig&, const ControlConfig&) = default;
};

// The Prometheus text endpoint (GET /metrics).
struct MetricsConfig {
  // nullopt: off.  Loopback by default: the figures are for this host's
  // scraper, not for the network.
  std::optional<DnsListen> listen = DnsListen{dp::Ip4::from_host(0x7f000001), 9470};
  friend bool operator==(const MetricsConfig&, const MetricsConfig&) = default;
};

// Announcing the VIPs (issue 10, docs/scale-out.md): podgate keeps a /32
// route for each VIP that has an endpoint taking new flows in a kernel
// routing table, on the kernel twin of `port`, and BIRD announces what is
// there over BGP (conf/bird/podgate-bird.conf).  The routes go with the
// twin when podgate stops, however it stops.
struct AnnounceConfig {
  std::string port;  // the [[ports]] name whose twin carries the routes; empty: off
  uint32_t table = kDefaultTable;
  // On a clean stop, how long podgate goes on forwarding after withdrawing
  // its routes, while the router learns of the withdrawal (docs/scale-out.md).
  uint32_t stop_grace_ms = kDefaultStopGraceMs;
  static constexpr uint32_t kDefaultTable = 4242;
  static constexpr uint32_t kDefaultStopGraceMs = 1000;
  static constexpr uint32_t kMaxStopGraceMs = 60 * 1000;
  friend bool operator==(const AnnounceConfig&, const AnnounceConfig&) = default;
};

struct Config {
  std::string source;  // the file it came from, for logs and reloads
  // config_text_digest() of the file's bytes as load_config() read them
  // (0: not read from a file): `config save` refuses to overwrite a file
  // edited since.
  uint64_t source_digest = 0;
  EalConfig eal;
  DataplaneConfig dataplane;
  std::vector<PortConfig> ports;
  std::vector<RouteConfig> routes;
  std::vector<NeighborConfig> neighbors;
  std::vector<Route6Config> routes6;
  std::vector<Neighbor6Config> neighbors6;
  ServiceList services;  // shared per service between copies (service_list.hpp)
  DnsConfig dns;
  ControlConfig control;
  MetricsConfig metrics;
  AnnounceConfig announce;
};

// "IP:PORT" as in [dns] listen and [metrics] listen; nullopt when malformed.
std::optional<DnsListen> parse_listen(std::string_view s);

// The largest config file load_config() reads (64 MiB): a config of 10,000
// services is about 3 MiB.  Anything larger, or anything that is not a
// regular file (/dev/zero, a FIFO, a directory), is refused unread.
constexpr uint64_t kMaxConfigFileBytes = uint64_t{64} << 20;

// A digest of a config file's bytes (64-bit FNV-1a): whether the file
// changed since podgate read or wrote it, not a defence against anyone.
uint64_t config_text_digest(std::string_view text) noexcept;

// `path` made absolute against the working directory now, lexically
// normalised (symbolic links are left as they are).  podgate resolves -c
// once at start-up, so reloads and `config save` name the file it started
// with, however a client names it later and whatever the working directory
// is then.  An empty path, or one that cannot be resolved (no working
// directory), is returned as it is.
std::string absolute_config_path(const std::string& path);

// Reads and validates a config file (at most kMaxConfigFileBytes).
Result<Config> load_config(const std::string& path);

// The text of a config file, refused unread when it is not a regular file or
// is larger than `max_bytes`; errors name the path.
Result<std::string> read_config_file(const std::string& path,
                                     uint64_t max_bytes = kMaxConfigFileBytes);

// Parses and validates config text; `source` names it in error messages.
Result<Config> parse_config(std::string_view text, std::string_view source);

// Parses a fragment holding [[services]] tables only (podgatectl apply -f),
// each checked as in a config file; rules that span the whole config (a VIP
// another service already uses, ...) are the caller's to check on the result.
Result<std::vector<ServiceConfig>> parse_services(std::string_view text, std::string_view source);

}  // namespace podgate::ctl
