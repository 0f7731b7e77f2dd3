#include "tools/trafficgen/options.hpp"

#include <getopt.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <sstream>

#include <toml++/toml.h>

#include "tools/trafficgen/frame.hpp"

namespace podgate::gen {
namespace {

template <typename T>
std::optional<T> parse_number(std::string_view text) {
  T v{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::optional<double> parse_double(std::string_view text) {
  std::string s(text);
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<uint16_t> parse_port(std::string_view text) {
  auto v = parse_number<uint32_t>(text);
  if (!v || *v == 0 || *v > 65535) return std::nullopt;
  return static_cast<uint16_t>(*v);
}

// "172.17.0.10:8080" or "[fd00:17::10]:8080" -> Endpoint.
std::optional<Endpoint> parse_endpoint(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  std::optional<dp::IpAddr> ip;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    if (auto v6 = dp::parse_ip6(host.substr(1, host.size() - 2))) ip = dp::IpAddr::v6(*v6);
  } else if (auto v4 = dp::parse_ip4(host)) {
    ip = dp::IpAddr::v4(*v4);
  }
  auto port = parse_port(text.substr(colon + 1));
  if (!ip || !port) return std::nullopt;
  return Endpoint{*ip, dp::to_be16(*port)};
}

// The offset of the 32 bits a range varies in: all of an IPv4 address, the
// last word of an IPv6 one.
size_t low_word_offset(const dp::IpAddr& ip) noexcept { return ip.is_v4() ? 0 : 12; }

uint32_t low_word(const dp::IpAddr& ip) noexcept {
  uint32_t be;
  std::memcpy(&be, ip.bytes.data() + low_word_offset(ip), 4);
  return dp::bswap32(be);
}

dp::IpAddr default_address(dp::Family family, const char* v4, const char* v6) {
  return family == dp::Family::kIpv4 ? dp::IpAddr::v4(*dp::parse_ip4(v4))
                                     : dp::IpAddr::v6(*dp::parse_ip6(v6));
}

std::optional<dp::Proto> parse_proto(std::string_view text) {
  if (text == "tcp" || text == "TCP") return dp::Proto::kTcp;
  if (text == "udp" || text == "UDP") return dp::Proto::kUdp;
  return std::nullopt;
}

// "A.B.C.D", "A.B.C.D-E.F.G.H", "2001:db8::1" or "2001:db8::1-2001:db8::ff".
bool parse_ip_range(std::string_view text, dp::IpAddr& first, dp::IpAddr& last) {
  size_t dash = text.find('-');
  auto a = dp::parse_ip(text.substr(0, dash));
  auto b = dash == std::string_view::npos ? a : dp::parse_ip(text.substr(dash + 1));
  if (!a || !b || address_count(*a, *b) == 0) return false;
  first = *a;
  last = *b;
  return true;
}

bool parse_port_range(std::string_view text, uint16_t& first, uint16_t& last) {
  size_t dash = text.find('-');
  auto a = parse_port(text.substr(0, dash));
  auto b = dash == std::string_view::npos ? a : parse_port(text.substr(dash + 1));
  if (!a || !b || *b < *a) return false;
  first = *a;
  last = *b;
  return true;
}

enum OptId : int {
  kOptService = 1000, kOptServices, kOptClients, kOptClientPorts, kOptFlows, kOptSize,
  kOptRate, kOptDuration, kOptCount, kOptDrain, kOptReply, kOptClientPort, kOptPodPort,
  kOptTxQueues, kOptRxQueues, kOptGateway, kOptGatewayMac, kOptClientGw, kOptClientMac, kOptPodMac,
  kOptTxLcores, kOptRxLcores, kOptLinkTimeout, kOptJson, kOptCsv, kOptMaxLoss, kOptQuiet,
  kOptNewFlows, kOptNoCheck, kOptSteerWorkers, kOptIpv6, kOptHelp,
};

const option kLongOptions[] = {
    {"service", required_argument, nullptr, kOptService},
    {"services", required_argument, nullptr, kOptServices},
    {"clients", required_argument, nullptr, kOptClients},
    {"client-ports", required_argument, nullptr, kOptClientPorts},
    {"flows", required_argument, nullptr, kOptFlows},
    {"size", required_argument, nullptr, kOptSize},
    {"rate", required_argument, nullptr, kOptRate},
    {"duration", required_argument, nullptr, kOptDuration},
    {"count", required_argument, nullptr, kOptCount},
    {"drain-ms", required_argument, nullptr, kOptDrain},
    {"reply", no_argument, nullptr, kOptReply},
    {"client-port", required_argument, nullptr, kOptClientPort},
    {"pod-port", required_argument, nullptr, kOptPodPort},
    {"tx-queues", required_argument, nullptr, kOptTxQueues},
    {"rx-queues", required_argument, nullptr, kOptRxQueues},
    {"gateway", required_argument, nullptr, kOptGateway},
    {"gateway-mac", required_argument, nullptr, kOptGatewayMac},
    {"client-gw", required_argument, nullptr, kOptClientGw},
    {"client-mac", required_argument, nullptr, kOptClientMac},
    {"pod-mac", required_argument, nullptr, kOptPodMac},
    {"tx-lcores", required_argument, nullptr, kOptTxLcores},
    {"rx-lcores", required_argument, nullptr, kOptRxLcores},
    {"link-timeout", required_argument, nullptr, kOptLinkTimeout},
    {"json", required_argument, nullptr, kOptJson},
    {"csv", required_argument, nullptr, kOptCsv},
    {"max-loss", required_argument, nullptr, kOptMaxLoss},
    {"quiet", no_argument, nullptr, kOptQuiet},
    {"new-flows", no_argument, nullptr, kOptNewFlows},
    {"no-check", no_argument, nullptr, kOptNoCheck},
    {"steer-workers", required_argument, nullptr, kOptSteerWorkers},
    {"ipv6", no_argument, nullptr, kOptIpv6},
    {"help", no_argument, nullptr, kOptHelp},
    {nullptr, 0, nullptr, 0},
};

UsageError bad_value(const char* option, std::string_view value, std::string_view allowed) {
  std::string m = "--";
  m += option;
  m += ": '";
  m += value;
  m += "' is not ";
  m += allowed;
  return UsageError{std::move(m)};
}

}  // namespace

namespace {

std::string host_port(const dp::IpAddr& ip, rte_be16_t port) {
  std::string text;
  if (ip.is_v6()) text.push_back('[');
  text.append(dp::to_string(ip));
  if (ip.is_v6()) text.push_back(']');
  text.push_back(':');
  text.append(std::to_string(dp::from_be16(port)));
  return text;
}

}  // namespace

std::string to_string(const Endpoint& e) { return host_port(e.ip, e.port); }

std::string to_string(const Service& s) {
  return host_port(s.vip, s.port) + "/" + std::string(dp::proto_name(s.proto));
}

uint64_t address_count(const dp::IpAddr& first, const dp::IpAddr& last) noexcept {
  if (first.family != last.family) return 0;
  if (first.is_v6() && std::memcmp(first.bytes.data(), last.bytes.data(), 12) != 0) return 0;
  if (low_word(last) < low_word(first)) return 0;
  return uint64_t{low_word(last)} - low_word(first) + 1;
}

dp::IpAddr nth_address(const dp::IpAddr& first, uint32_t n) noexcept {
  dp::IpAddr ip = first;
  const rte_be32_t be = dp::to_be32(low_word(first) + n);
  std::memcpy(ip.bytes.data() + low_word_offset(ip), &be, 4);
  return ip;
}

std::variant<Service, UsageError> parse_service(std::string_view text) {
  const UsageError error{"--service: '" + std::string(text) +
                         "' is not VIP:PORT/PROTO=IP:PORT[,IP:PORT...] "
                         "(e.g. 10.96.0.20:80/tcp=172.17.0.10:8080,172.17.0.11:8080)"};
  size_t eq = text.find('=');
  size_t slash = text.find('/');
  if (eq == std::string_view::npos || slash == std::string_view::npos || slash > eq) return error;
  auto vip = parse_endpoint(text.substr(0, slash));
  auto proto = parse_proto(text.substr(slash + 1, eq - slash - 1));
  if (!vip || !proto) return error;
  Service s{vip->ip, vip->port, *proto, {}};
  std::string_view rest = text.substr(eq + 1);
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    auto ep = parse_endpoint(rest.substr(0, comma));
    if (!ep) return error;
    s.endpoints.push_back(*ep);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
  }
  if (s.endpoints.empty()) return error;
  return s;
}

std::variant<std::vector<Service>, UsageError> load_services(const std::string& path,
                                                             dp::Family family) {
  toml::table doc;
  try {
    doc = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::ostringstream m;
    m << path << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
      << e.description();
    return UsageError{m.str()};
  }
  std::vector<Service> out;
  const toml::array* services = doc["services"].as_array();
  if (services == nullptr) return UsageError{path + ": no [[services]] table"};
  for (size_t i = 0; i < services->size(); ++i) {
    const toml::table* svc = services->get(i)->as_table();
    const std::string where = path + ": services[" + std::to_string(i) + "]";
    if (svc == nullptr) return UsageError{where + ": not a table"};
    // Headless ("None") and ExternalName services have no VIP to send to;
    // a dual-stack service lists one VIP per family in cluster_ips.
    std::vector<std::string> cluster_ips;
    if (const toml::array* ips = (*svc)["cluster_ips"].as_array()) {
      for (const toml::node& node : *ips) cluster_ips.push_back(node.value_or(std::string{}));
    } else if (auto cluster_ip = (*svc)["cluster_ip"].value<std::string>()) {
      cluster_ips.push_back(*cluster_ip);
    }
    std::optional<dp::IpAddr> vip;
    for (const std::string& text : cluster_ips) {
      if (text == "None") continue;
      auto ip = dp::parse_ip(text);
      if (!ip) return UsageError{where + ".cluster_ip: '" + text + "' is not an IP address"};
      if (ip->family == family) vip = *ip;
    }
    if (!vip) continue;
    std::vector<dp::IpAddr> ready_ips;
    if (const toml::array* eps = (*svc)["endpoints"].as_array()) {
      for (const toml::node& node : *eps) {
        const toml::table* ep = node.as_table();
        if (ep == nullptr) return UsageError{where + ".endpoints: not a table"};
        // As podgate: only ready endpoints take new flows (EndpointSlice).
        if (!(*ep)["ready"].value_or(true) || (*ep)["terminating"].value_or(false)) continue;
        auto ip = dp::parse_ip((*ep)["ip"].value_or(std::string{}));
        if (!ip) return UsageError{where + ".endpoints: an ip is not an IP address"};
        if (ip->family == family) ready_ips.push_back(*ip);  // each VIP to its own family's Pods
      }
    }
    const toml::array* ports = (*svc)["ports"].as_array();
    if (ports == nullptr) continue;
    for (const toml::node& node : *ports) {
      const toml::table* p = node.as_table();
      if (p == nullptr) return UsageError{where + ".ports: not a table"};
      int64_t port = (*p)["port"].value_or(int64_t{0});
      int64_t target = (*p)["target_port"].value_or(port);
      auto proto = parse_proto((*p)["protocol"].value_or(std::string{"TCP"}));
      if (port < 1 || port > 65535 || target < 1 || target > 65535 || !proto) {
        return UsageError{where + ".ports: port, target_port or protocol out of range"};
      }
      Service s{*vip, dp::to_be16(static_cast<uint16_t>(port)), *proto, {}};
      for (const dp::IpAddr& ip : ready_ips) {
        s.endpoints.push_back(Endpoint{ip, dp::to_be16(static_cast<uint16_t>(target))});
      }
      if (!s.endpoints.empty()) out.push_back(std::move(s));
    }
  }
  if (out.empty()) {
    return UsageError{path + ": no service with an " + std::string(dp::family_name(family)) +
                      " VIP and a ready endpoint"};
  }
  return out;
}

ParseResult parse_options(int argc, char** argv) {
  Options o;
  bool flows_set = false;
  bool ipv6 = false;
  bool clients_set = false, gateway_set = false, client_gw_set = false;
  std::vector<std::string> service_files;  // read once the family is known
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "h", kLongOptions, nullptr)) != -1) {
    const std::string_view v = optarg != nullptr ? optarg : "";
    const char* name = "";
    for (const option& lo : kLongOptions) {
      if (lo.val == c && lo.name != nullptr) name = lo.name;
    }
    switch (c) {
      case 'h':
      case kOptHelp:
        return HelpRequested{};
      case kOptService: {
        auto s = parse_service(v);
        if (auto* e = std::get_if<UsageError>(&s)) return *e;
        o.services.push_back(std::get<Service>(std::move(s)));
        break;
      }
      case kOptServices:
        service_files.emplace_back(v);
        break;
      case kOptIpv6:
        ipv6 = true;
        break;
      case kOptClients:
        if (!parse_ip_range(v, o.client_first, o.client_last)) {
          return bad_value(name, v,
                           "A.B.C.D or A.B.C.D-E.F.G.H, or IPv6 X::Y or X::Y-X::Z differing in "
                           "the last 32 bits only (first <= last)");
        }
        clients_set = true;
        break;
      case kOptClientPorts:
        if (!parse_port_range(v, o.client_port_first, o.client_port_last)) {
          return bad_value(name, v, "PORT or LO-HI within 1..65535");
        }
        break;
      case kOptFlows: {
        auto n = parse_number<uint32_t>(v);
        if (!n || *n == 0 || *n > (1u << 26)) return bad_value(name, v, "in 1..67108864");
        o.flows = *n;
        flows_set = true;
        break;
      }
      case kOptSize: {
        auto n = parse_number<uint16_t>(v);
        // One mbuf segment per frame (the checks read one segment): no jumbo.
        if (!n || *n < 60 || *n > 1514) return bad_value(name, v, "in 60..1514");
        o.frame_size = *n;
        break;
      }
      case kOptRate: {
        auto n = parse_number<uint64_t>(v);
        if (!n) return bad_value(name, v, "a packet rate (0 = as fast as possible)");
        o.rate_pps = *n;
        break;
      }
      case kOptDuration: {
        auto d = parse_double(v);
        if (!d || *d <= 0 || *d > 86400) return bad_value(name, v, "seconds in (0, 86400]");
        o.duration_s = *d;
        break;
      }
      case kOptCount: {
        auto n = parse_number<uint64_t>(v);
        if (!n || *n == 0) return bad_value(name, v, "a positive packet count");
        o.count = *n;
        break;
      }
      case kOptDrain: {
        auto n = parse_number<uint32_t>(v);
        if (!n || *n > 60000) return bad_value(name, v, "milliseconds in 0..60000");
        o.drain_ms = *n;
        break;
      }
      case kOptReply:
        o.reply = true;
        break;
      case kOptClientPort:
      case kOptPodPort: {
        auto n = parse_number<uint16_t>(v);
        if (!n || *n >= RTE_MAX_ETHPORTS) return bad_value(name, v, "a DPDK port id");
        (c == kOptClientPort ? o.client_port : o.pod_port) = *n;
        break;
      }
      case kOptTxQueues:
      case kOptRxQueues: {
        auto n = parse_number<uint16_t>(v);
        if (!n || *n == 0 || *n > 64) return bad_value(name, v, "in 1..64");
        (c == kOptTxQueues ? o.tx_queues : o.rx_queues) = *n;
        break;
      }
      case kOptGateway:
      case kOptClientGw: {
        auto ip = dp::parse_ip(v);
        if (!ip) return bad_value(name, v, "an IPv4 or IPv6 address");
        (c == kOptGateway ? o.gateway : o.client_gw) = *ip;
        (c == kOptGateway ? gateway_set : client_gw_set) = true;
        break;
      }
      case kOptGatewayMac:
      case kOptClientMac:
      case kOptPodMac: {
        auto mac = dp::parse_mac(v);
        if (!mac || (mac->bytes[0] & 1) != 0) return bad_value(name, v, "a unicast MAC");
        (c == kOptGatewayMac ? o.gateway_mac : c == kOptClientMac ? o.client_mac : o.pod_mac) = *mac;
        break;
      }
      case kOptTxLcores:
      case kOptRxLcores: {
        auto n = parse_number<uint32_t>(v);
        if (!n || *n > 32) return bad_value(name, v, "in 0..32");
        (c == kOptTxLcores ? o.tx_lcores : o.rx_lcores) = *n;
        break;
      }
      case kOptLinkTimeout: {
        auto n = parse_number<uint32_t>(v);
        if (!n || *n == 0 || *n > 600) return bad_value(name, v, "seconds in 1..600");
        o.link_timeout_s = *n;
        break;
      }
      case kOptJson:
        o.json_path = v;
        break;
      case kOptCsv:
        o.csv_path = v;
        break;
      case kOptMaxLoss: {
        auto d = parse_double(v);
        if (!d || *d < 0 || *d > 100) return bad_value(name, v, "a percentage in 0..100");
        o.max_loss_pct = *d;
        break;
      }
      case kOptQuiet:
        o.quiet = true;
        break;
      case kOptNewFlows:
        o.new_flows = true;
        break;
      case kOptNoCheck:
        o.no_check = true;
        break;
      case kOptSteerWorkers: {
        auto n = parse_number<uint32_t>(v);
        if (!n || *n == 0 || *n > 64) return bad_value(name, v, "a worker count in 1..64");
        o.steer_workers = *n;
        break;
      }
      default:
        return UsageError{std::string("unknown option or missing value: ") + argv[optind - 1] +
                          " (see --help)"};
    }
  }
  if (optind != argc) return UsageError{std::string("unexpected argument: ") + argv[optind]};
  // The family: --ipv6, or the addresses of the first --service.
  if (ipv6 || (!o.services.empty() && o.services[0].vip.is_v6())) o.family = dp::Family::kIpv6;
  const std::string family(dp::family_name(o.family));
  for (const std::string& path : service_files) {
    auto s = load_services(path, o.family);
    if (auto* e = std::get_if<UsageError>(&s)) return *e;
    for (Service& svc : std::get<std::vector<Service>>(s)) o.services.push_back(std::move(svc));
  }
  if (o.services.empty()) return UsageError{"no service to send to: give --service or --services"};
  for (const Service& s : o.services) {
    bool same = s.vip.family == o.family;
    for (const Endpoint& e : s.endpoints) same = same && e.ip.family == o.family;
    if (!same) {
      return UsageError{"--service " + to_string(s) + ": every address of a run is " + family +
                        " (one family per run" + (ipv6 ? ", --ipv6" : "") + ")"};
    }
  }
  if (!clients_set) {
    o.client_first = o.client_last = default_address(o.family, "198.51.100.1", "2001:db8:100::1");
  }
  if (!gateway_set) o.gateway = default_address(o.family, "192.0.2.1", "fd00:2::1");
  if (!client_gw_set) o.client_gw = default_address(o.family, "192.0.2.2", "fd00:2::2");
  if (o.client_first.family != o.family || o.gateway.family != o.family ||
      o.client_gw.family != o.family) {
    return UsageError{"--clients, --gateway and --client-gw must be " + family +
                      " addresses, as the services are"};
  }
  if (o.client_port == o.pod_port) return UsageError{"--client-port and --pod-port must differ"};
  if (o.tx_lcores + o.rx_lcores > o.tx_queues) {
    return UsageError{"--tx-lcores + --rx-lcores (" + std::to_string(o.tx_lcores + o.rx_lcores) +
                      ") exceed --tx-queues (" + std::to_string(o.tx_queues) +
                      "): each lcore needs its own TX queue"};
  }
  if ((o.tx_lcores == 0) != (o.rx_lcores == 0)) {
    return UsageError{"--tx-lcores and --rx-lcores go together (both 0: the main lcore does all)"};
  }
  if (o.new_flows && o.reply) return UsageError{"--new-flows and --reply do not go together"};
  if (o.steer_workers != 0 && o.tx_lcores != 0) {
    return UsageError{"--steer-workers sends on every queue from the main lcore: it does not go "
                      "with --tx-lcores"};
  }
  if (o.steer_workers > o.tx_queues) {
    return UsageError{"--steer-workers " + std::to_string(o.steer_workers) + " needs --tx-queues " +
                      std::to_string(o.steer_workers) + " or more (one per worker), not " +
                      std::to_string(o.tx_queues)};
  }
  if (o.new_flows) {
    for (const Service& s : o.services) {
      if (s.proto != dp::Proto::kTcp) {
        return UsageError{"--new-flows sends TCP SYNs: " + to_string(s) + " is not a TCP service"};
      }
    }
  }
  for (const Service& s : o.services) {
    const uint16_t min = std::max<uint16_t>(60, min_frame(o.family, s.proto));
    if (o.frame_size < min) {
      return UsageError{"--size " + std::to_string(o.frame_size) + " is too small for " +
                        to_string(s) + ": a stamped frame needs at least " + std::to_string(min) +
                        " bytes"};
    }
  }
  const uint64_t tuples = address_count(o.client_first, o.client_last) *
                          (uint64_t{o.client_port_last} - o.client_port_first + 1) *
                          o.services.size();
  if (!flows_set && tuples < o.flows) o.flows = static_cast<uint32_t>(tuples);
  if (o.flows > tuples) {
    return UsageError{"--flows " + std::to_string(o.flows) + " exceeds the " +
                      std::to_string(tuples) +
                      " distinct client address x port x service tuples; widen --clients or "
                      "--client-ports"};
  }
  return o;
}

std::string usage_text(std::string_view program) {
  std::string p(program);
  return "Usage: " + p + R"( [EAL options] -- [options]

podgate-gen plays both sides of podgate: the clients (it sends TCP and UDP
to service VIPs on the client port) and the Pods (it receives what podgate
forwards on the pod port and checks every packet).  TCP flows start with a
SYN, then carry ACK+PSH data.  Every packet carries a stamp (flow id, TSC)
after its L4 header; the minimum --size is 70 for TCP and 60 for UDP over
IPv4, 90 for TCP and 78 for UDP over IPv6.  A run is IPv4 or IPv6 (--ipv6,
or IPv6 addresses in --service): VIPs, Pods, clients and gateways are all of
that family.

Checks on every packet received at the Pods (each failure is a violation):
  the destination is a ready endpoint (ip:target_port) of the flow's service,
  the IPv4 header and TCP/UDP checksums (over the IPv4 or IPv6
  pseudo-header) are valid, the TTL or hop limit is the sent 64 less one,
  the source is the client's own ip:port (podgate does DNAT only), a flow
  always lands on the Pod it first landed on, and nothing arrives that the
  generator did not send.
With --reply, the Pod side answers each packet (addresses and ports swapped)
and the client side checks that the answer comes from VIP:port, to the
client's ip:port, with valid checksums and the Pod's TTL or hop limit less
one.  Loss = sent - received at the Pods after a drain; replies lost = sent
by the pod port - received at the clients (a reply the pod port refused is
counted apart, as not taken).

Services (what to send to and what to expect; at least one):
  --service VIP:PORT/PROTO=IP:PORT[,IP:PORT...]
                        a service port and its ready endpoints, e.g.
                        10.96.0.20:80/tcp=172.17.0.10:8080,172.17.0.11:8080
                        or, IPv6 in brackets, [fd00:96::20]:80/tcp=
                        [fd00:17::10]:8080,[fd00:17::11]:8080
                        (repeatable; PROTO is tcp or udp)
  --services FILE       read [[services]] from a podgate config (cluster_ip
                        or cluster_ips, ports {port, target_port, protocol},
                        endpoints {ip, ready, terminating}); only ready
                        endpoints of the run's family count
  --ipv6                an IPv6 run: --services takes each service's IPv6
                        VIP and Pods, and the address defaults below are
                        the IPv6 ones (implied by an IPv6 --service)

Flows:
  --clients A[-B]       client source addresses (default 198.51.100.1;
                        IPv6 2001:db8:100::1, a range varies in the last
                        32 bits only)
  --client-ports LO[-HI]  client source ports (default 1024-65535)
  --flows N             distinct flows (default 1000): flow i goes to service
                        i mod S from the next address x port pair in order

Traffic:
  --size BYTES          frame size without FCS, 60..1514 (default 128)
  --rate PPS            packets per second in all (default 0: as fast as the
                        port takes them)
  --duration SEC        sending time (default 5; fractions allowed)
  --count N             send N packets in all instead of --duration
  --drain-ms MS         keep receiving after the last send (default 500),
                        then read what waits in the queues
  --reply               the Pods answer every packet; replies are checked
  --new-flows           a SYN flood: every packet is the SYN of a new
                        connection, from the next client address x port of
                        --clients x --client-ports (wrapping around only
                        when all are used); TCP services only.  The checker
                        still checks checksums and that the destination is a
                        ready endpoint; flows are not pinned (each is one
                        packet) and --flows only spreads them over services
  --steer-workers N     send each flow on the TX queue of the podgate worker
                        that owns it (queue w reaches worker w over
                        net_memif), as a NIC with RSS on the client's source
                        would deliver it to N workers: podgate then hands
                        nothing off.  Uses podgate's own ownership function
                        (dataplane/ownership.hpp, 128-entry table, as podgate
                        has on ports without client RSS).  Main lcore only;
                        --tx-queues N or more.  Replies (--reply) are not
                        steered.
  --no-check            count the stamped packets that arrive at the pod
                        port without checking them (no violations, no
                        pinning): the baseline through a plain forwarder
                        such as dpdk-testpmd --forward-mode=io, which does no
                        NAT

Ports and addresses:
  --client-port ID      DPDK port id of the client side (default 0)
  --pod-port ID         DPDK port id of the Pod side (default 1)
  --tx-queues N         TX queues per port (default 1)
  --rx-queues N         RX queues per port, all polled (default 2)
                        A net_memif peer must mirror podgate's queues: podgate
                        has one RX queue per worker and one TX queue per
                        worker + 1 (its control thread), so give
                        --tx-queues WORKERS --rx-queues WORKERS+1.
  --gateway IP          podgate's client-side address (default 192.0.2.1;
                        IPv6 fd00:2::1)
  --gateway-mac MAC     podgate's client-side MAC (default: learnt by ARP,
                        or by NDP over IPv6)
  --client-gw IP        the generator's client-side address, the next hop
                        podgate uses for the clients (default 192.0.2.2;
                        IPv6 fd00:2::2)
  --client-mac MAC      set the client port's MAC
  --pod-mac MAC         set the pod port's MAC (devices that cannot change
                        theirs, such as net_memif, take a mac= argument)
  The generator answers ARP (IPv6: neighbour solicitations, RFC 4861) for
  --client-gw and the client addresses on the client port, and for every
  endpoint address on the pod port.

Lcores:
  --tx-lcores N         TX lcores, --rx-lcores N RX lcores, taken from the
  --rx-lcores N         EAL lcores after the main one (default 0 and 0: the
                        main lcore sends and receives).  Each lcore needs its
                        own TX queue: TX lcore i sends on client-port queue i,
                        RX lcore j answers (ARP, --reply) on client-port queue
                        TX+j and pod-port queue j, so --tx-queues must be at
                        least TX+RX.  TX lcore i of N sends flows i, i+N,
                        ... and 1/N of --count and --rate; no more TX lcores
                        send than there are flows, packets and packets per
                        second.
  --link-timeout SEC    wait this long for links up and ARP (default 10)

Output:
  --json FILE           write the results as JSON
  --csv FILE            append one CSV row (header when the file is new)
  --max-loss PCT        fail when loss exceeds PCT percent
  --quiet               no summary on stdout
  -h, --help            this text

Exit status: 0 all checks passed; 1 a violation, or loss above --max-loss;
2 bad usage or setup failure.
)";
}

}  // namespace podgate::gen
