// The cluster used by the DNS responder tests: the services of
// ../shared/design/dns.md's example plus edge cases, built into a Zone from
// TOML through parse_config(), and helpers that ask it questions and decode
// the answers with decode_message().
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "control/config/config.hpp"
#include "control/dns/dns.hpp"
#include "control/dns/message.hpp"
#include "control/dns/wire.hpp"
#include "control/dns/zone.hpp"

namespace podgate::ctl::dns::test {

using Bytes = std::vector<uint8_t>;
using Strings = std::vector<std::string>;

inline constexpr uint32_t kSerial = 42;

inline std::string big_endpoints() {
  std::string s;
  for (int i = 0; i < 300; ++i) {
    s += "{ ip = \"10.244." + std::to_string(1 + i / 200) + "." + std::to_string(1 + i % 200) +
         "\" },\n";
  }
  return s;
}

inline std::string cluster_toml() {
  return R"(
[[ports]]
name = "uplink"
device = "net_null0"
address = "192.0.2.1/24"
[[ports]]
name = "pods"
device = "net_null1"
address = "172.17.0.1/16"

[[services]]
namespace = "default"
name = "my-app"
cluster_ip = "10.96.0.20"
ports = [ { name = "http", port = 80, target_port = 8080 } ]
endpoints = [ { ip = "172.17.0.10" }, { ip = "172.17.0.11" }, { ip = "172.17.0.12" } ]

[[services]]
namespace = "default"
name = "idle"
cluster_ip = "10.96.0.21"
ports = [ { name = "http", port = 80 } ]
endpoints = [ { ip = "172.17.0.20", ready = false } ]

[[services]]
namespace = "default"
name = "mongodb-service"
cluster_ip = "None"
ports = [ { name = "mongo", port = 27017 } ]
endpoints = [
  { ip = "172.17.1.10", pod = "mongodb-0", hostname = "mongodb-0", subdomain = "mongodb-service" },
  { ip = "172.17.1.11", pod = "mongodb-1", hostname = "mongodb-1", subdomain = "mongodb-service" },
  { ip = "172.17.1.12", pod = "mongodb-2", hostname = "mongodb-2", subdomain = "mongodb-service", ready = false },
]

[[services]]
namespace = "default"
name = "peers"
cluster_ip = "None"
publish_not_ready_addresses = true
ports = [ { name = "gossip", port = 7000, protocol = "UDP" } ]
endpoints = [
  { ip = "172.17.2.10", hostname = "peers-0", subdomain = "peers" },
  { ip = "172.17.2.11", hostname = "peers-1", subdomain = "peers" },
  { ip = "172.17.2.12", hostname = "peers-2", subdomain = "peers", ready = false },
]

[[services]]
namespace = "default"
name = "empty"
cluster_ip = "None"
ports = [ { name = "http", port = 80 } ]
endpoints = [ { ip = "172.17.3.10", ready = false } ]

[[services]]
namespace = "default"
name = "web"
cluster_ip = "None"
ports = [ { name = "http", port = 80, target_port = 8080 } ]
endpoints = [ { ip = "172.17.4.10" }, { ip = "172.17.4.11", hostname = "web-1", subdomain = "other" } ]

[[services]]
namespace = "default"
name = "dup"
cluster_ip = "None"
endpoints = [ { ip = "172.17.5.10", hostname = "db", subdomain = "dup" } ]

[[services]]
namespace = "default"
name = "ext"
type = "ExternalName"
external_name = "www.example.com"

[[services]]
namespace = "kube-system"
name = "kube-dns"
cluster_ip = "10.96.0.10"
ports = [ { name = "dns", port = 53, protocol = "UDP" }, { name = "dns-tcp", port = 53 } ]

[[services]]
namespace = "default"
name = "dual"
cluster_ips = ["10.96.0.30", "fd00:10:96::30"]
ports = [ { name = "http", port = 80 } ]
endpoints = [ { ip = "172.17.7.10" }, { ip = "fd00:10:244:7::10" } ]
[[services]]
namespace = "default"
name = "v6app"
cluster_ip = "fd00:10:96::31"
ports = [ { name = "http", port = 80 } ]
[[services]]
namespace = "default"
name = "cache6"
cluster_ip = "None"
ports = [ { name = "redis", port = 6379 } ]
endpoints = [
  { ip = "fd00:10:244:6::a", pod = "cache-0", hostname = "cache-0", subdomain = "cache6" },
  { ip = "172.17.6.10", pod = "cache-0", hostname = "cache-0", subdomain = "cache6" },
  { ip = "fd00:10:244:6::b" },
]
[[services]]
namespace = "default"
name = "big"
cluster_ip = "None"
ports = [ { name = "http", port = 80 } ]
endpoints = [
)" + big_endpoints() + "]\n";
}

inline Config cluster_config() {
  // No [dns] table: its parser lands separately; the fields are set here.
  auto cfg = parse_config(cluster_toml(), "dns_test.toml");
  EXPECT_TRUE(cfg.ok()) << (cfg.ok() ? "" : cfg.error().message);
  if (!cfg.ok()) return Config{};
  cfg->dns.zone = "cluster.local";
  cfg->dns.ttl = 5;
  cfg->dns.service_ip = dp::parse_ip4("10.96.0.10");
  // Duplicate hostnames (the config refuses them within one service; a
  // Registry fed by EndpointSlices can still see them): every address.
  for (ServiceConfig& s : cfg->services) {
    if (s.name == "dup") {
      EndpointConfig e = s.endpoints[0];
      e.ip = dp::IpAddr::v4(*dp::parse_ip4("172.17.5.11"));
      s.endpoints.push_back(e);
    }
  }
  return *cfg;
}

inline const Zone& zone() {
  static const std::shared_ptr<const Zone> z = build_zone(cluster_config(), kSerial);
  return *z;
}

inline std::string type_name(uint16_t t) {
  switch (t) {
    case rrtype::kA: return "A";
    case rrtype::kNs: return "NS";
    case rrtype::kCname: return "CNAME";
    case rrtype::kSoa: return "SOA";
    case rrtype::kPtr: return "PTR";
    case rrtype::kTxt: return "TXT";
    case rrtype::kAaaa: return "AAAA";
    case rrtype::kSrv: return "SRV";
    default: return "TYPE" + std::to_string(t);
  }
}

// "owner TTL TYPE data" for every record but OPT, sorted: sets compare
// whatever the rotation.
inline Strings texts(const std::vector<Record>& rs, bool sorted = true) {
  Strings out;
  for (const Record& r : rs) {
    if (r.type == rrtype::kOpt) continue;
    out.push_back(r.owner + " " + std::to_string(r.ttl) + " " + type_name(r.type) + " " + r.data);
  }
  if (sorted) std::sort(out.begin(), out.end());
  return out;
}

inline Bytes respond_to(const Bytes& q, Transport t = Transport::kUdp, uint32_t rotation = 0,
                 size_t out_size = kMaxMessage) {
  Bytes out(out_size);
  const size_t n = respond(q, zone(), QueryContext{t, rotation}, out);
  EXPECT_LE(n, out_size);
  out.resize(n);
  return out;
}

inline Message decoded(const Bytes& answer) {
  auto m = decode_message(answer);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  return m.ok() ? *m : Message{};
}

inline Message ask(std::string_view name, uint16_t qtype, const QueryOptions& o = {},
            Transport t = Transport::kUdp, uint32_t rotation = 0) {
  return decoded(respond_to(make_query(name, qtype, o), t, rotation));
}

inline bool has(const Message& m, uint16_t flag) { return (m.header.flags & flag) != 0; }

inline const std::string kSoa =
    "cluster.local. 5 SOA ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 5";
inline const std::string kReverseSoa =
    "in-addr.arpa. 5 SOA ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 5";

inline const std::string kReverse6Soa =
    "ip6.arpa. 5 SOA ns.dns.cluster.local. hostmaster.cluster.local. 42 7200 1800 86400 5";

inline const std::string kApp = "my-app.default.svc.cluster.local.";
inline const std::string kMongo = "mongodb-service.default.svc.cluster.local.";
inline const std::string kBig = "big.default.svc.cluster.local.";  // 300 endpoints

}  // namespace podgate::ctl::dns::test
