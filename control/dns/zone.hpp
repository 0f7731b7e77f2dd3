// The Zone: every name podgate answers for, precomputed from a Config
// (../shared/design/dns.md, Kubernetes DNS specification schema 1.1.0).
//
// build_zone() (declared in dns.hpp) does all the work once per Registry
// version: it encodes every owner name in lowercase wire form, attaches its
// records, and adds every ancestor up to the zone apex as an empty
// non-terminal.  A query then costs one hash lookup of its folded name:
//   found          -> the name exists: its records of the asked type, or
//                     NODATA (empty non-terminals included);
//   not found      -> NXDOMAIN when the name lies under a served apex,
//                     REFUSED otherwise.
// A miss costs the same lookup plus a suffix check, so negative answers
// (most real queries: search lists with ndots:5) are as cheap as positive.
//
// Versions share what did not change (issue 14): each name's records are
// an immutable Node, and the index of names is split in shards by hash
// (about 16 names each), each an immutable map shared between versions.  A ZoneUpdater
// (zone_updater.hpp) makes the next version from a change to a few
// services: it rebuilds only those services' names and copies only the
// shards that hold them, so the responder only ever sees whole versions.
//
// Served zones:
//   <zone>          (cluster.local): services, SRV, dns-version, SOA/NS.
//   in-addr.arpa    PTR records for ClusterIPs and named Pod IPs, and
//   ip6.arpa        the same for IPv6 in nibble form (RFC 3596 section 2.5).  podgate
//                   is authoritative for the whole of both, as
//                   CoreDNS's kubernetes plugin is for the reverse zones it
//                   is given (without fallthrough: podgate does not
//                   recurse): an unknown address gets NXDOMAIN with the
//                   reverse zone's SOA, whose fields equal the cluster SOA's
//                   (mname ns.dns.<zone>., rname hostmaster.<zone>.).
//
// Records per service (spec §2.3-2.4 and dns.md rows 1-16; both families,
// issue 11: an IPv4 address is an A record, an IPv6 one AAAA, so a
// dual-stack name has both and a single-stack one answers the other type
// NODATA):
//   ClusterIP   <svc>.<ns>.svc.<zone> A <vip> / AAAA <vip6>; per named port
//               _<port>._<proto>.<svc>.<ns>.svc.<zone> SRV 0 100 <port>
//               <svc>.<ns>.svc.<zone> (+ additional A and AAAA); PTR for
//               each cluster IP.
//   Headless    (endpoints that are ready, or all with
//               publish_not_ready_addresses; none -> no names at all, so the
//               service is NXDOMAIN, row 12)
//               <svc>... A, one per endpoint; per endpoint a name
//               <hostname>.<svc>... when the endpoint has a hostname and its
//               subdomain is the service (StatefulSet), else <a-b-c-d>.<svc>...
//               (the dashed IP, so SRV targets always resolve; IPv6 dashed
//               as CoreDNS does: fd00::5 -> fd00--5); PTR only for
//               hostname names (spec §2.4.3); per named port SRV 0 W
//               <target_port> <endpoint name>, W = floor(100 / N) computed as
//               CoreDNS does (plugin/backend_lookup.go), N = endpoint
//               addresses, one SRV per target and port (a dual-stack Pod's
//               name holds A and AAAA), additional: the target's addresses.
//   ExternalName <svc>... CNAME <external_name> (never chased).
// Per-Pod names exist for headless services only (the spec defines them
// there; CoreDNS also answers them for ClusterIP services).
// Names that would exceed 255 octets cannot be asked for and are skipped.
// A name with records of several services (a PTR of an address two
// services share) lists them in the config's service order.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "control/dns/dns.hpp"
#include "dataplane/net.hpp"

namespace podgate::ctl::dns {

class Zone {
 public:
  enum class Apex : uint8_t { kCluster = 0, kReverse = 1, kReverse6 = 2 };
  static constexpr size_t kApexes = 3;
  static constexpr size_t kMaxShards = size_t{1} << 16;

  struct Srv {
    uint16_t priority = 0;
    uint16_t weight = 0;
    uint16_t port = 0;
    std::string target;  // lowercase wire form; its A and AAAA go in the additional section
    friend bool operator==(const Srv&, const Srv&) = default;
  };
  // One owner name and its records (none: an empty non-terminal).
  struct Node {
    std::string owner;  // lowercase wire form
    Apex apex = Apex::kCluster;
    bool soa_ns = false;       // a zone apex: SOA and NS
    bool version_txt = false;  // dns-version.<zone> TXT "1.1.0"
    std::vector<dp::Ip4> a;
    std::vector<dp::Ip6> aaaa;
    std::vector<Srv> srv;
    std::vector<std::string> ptr;  // wire names
    std::string cname;             // wire name; empty = none
    friend bool operator==(const Node&, const Node&) = default;
  };
  // find(): `node` when the name exists; else `in_zone` tells NXDOMAIN
  // (with `apex`'s SOA) from REFUSED.
  struct Lookup {
    const Node* node = nullptr;
    bool in_zone = false;
    Apex apex = Apex::kCluster;
  };

  static constexpr std::string_view kSchemaVersion = "1.1.0";

  // `name`: lowercase wire form (fold it first).
  Lookup find(std::span<const uint8_t> name) const noexcept;
  // The node of a wire name stored in the zone (an SRV target), or null.
  const Node* node(const std::string& wire) const noexcept;

  static std::span<const uint8_t> wire(const std::string& name) noexcept {
    return {reinterpret_cast<const uint8_t*>(name.data()), name.size()};
  }

  std::span<const uint8_t> apex_name(Apex a) const noexcept { return wire(apex_[index(a)]); }
  // SOA rdata (RFC 1035 §3.3.13): ns.dns.<zone>. hostmaster.<zone>. serial
  // 7200 1800 86400 ttl (refresh, retry, expire as CoreDNS; minimum = the
  // negative TTL, RFC 2308 §4).
  std::span<const uint8_t> soa_mname() const noexcept { return wire(mname_); }
  std::span<const uint8_t> soa_rname() const noexcept { return wire(rname_); }
  static constexpr uint32_t kRefresh = 7200;
  static constexpr uint32_t kRetry = 1800;
  static constexpr uint32_t kExpire = 86400;
  // The address of ns.dns.<zone> (the DNS service IP), glue for NS answers.
  std::optional<dp::Ip4> ns_address() const noexcept { return ns_address_; }

  uint32_t serial() const noexcept { return serial_; }
  uint32_t ttl() const noexcept { return ttl_; }
  uint16_t max_udp_payload() const noexcept { return max_udp_payload_; }
  size_t node_count() const noexcept { return node_count_; }

  // Every node, in no particular order (tests).
  std::vector<const Node*> nodes() const;

 private:
  friend class ZoneUpdater;
  Zone() = default;

  // Owner (a view of its node's `owner`) -> node.
  using Shard = std::unordered_map<std::string_view, std::shared_ptr<const Node>>;
  static size_t index(Apex a) noexcept { return static_cast<size_t>(a); }
  // `shards`: a power of two.
  static size_t shard_of(std::string_view owner, size_t shards) noexcept {
    return std::hash<std::string_view>{}(owner) & (shards - 1);
  }
  bool under(std::span<const uint8_t> name, Apex a) const noexcept;

  // A power of two of them (chosen when the zone is built whole), each
  // shared between versions until a change touches one of its names.
  std::vector<std::shared_ptr<const Shard>> shards_;
  size_t node_count_ = 0;
  std::string apex_[kApexes];  // wire names; empty = nothing served
  std::string mname_;
  std::string rname_;
  std::optional<dp::Ip4> ns_address_;
  uint32_t serial_ = 0;
  uint32_t ttl_ = 0;
  uint16_t max_udp_payload_ = 0;
};

// Encodes a dotted name ("My-App.default.svc.cluster.local", a trailing
// dot allowed) in lowercase wire form; nullopt when a label is empty or
// over 63 octets, or the name over 255 octets.  For the builder and tests.
std::optional<std::string> encode_name(std::string_view dotted);

}  // namespace podgate::ctl::dns
