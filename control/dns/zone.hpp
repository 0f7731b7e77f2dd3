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
#pragma once

#include <cstdint>
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

  // A name stored in the zone (lowercase wire form).
  struct NameRef {
    uint32_t offset = 0;
    uint16_t size = 0;  // 0 = none
  };
  struct Range {
    uint32_t begin = 0;
    uint32_t count = 0;
  };
  struct Srv {
    uint16_t priority = 0;
    uint16_t weight = 0;
    uint16_t port = 0;
    NameRef target;
    // The target's node (its A and AAAA records go in the additional
    // section); kNoNode when the target is not in the zone.
    uint32_t target_node = kNoNode;
  };
  static constexpr uint32_t kNoNode = UINT32_MAX;
  struct Node {
    Apex apex = Apex::kCluster;
    bool soa_ns = false;       // a zone apex: SOA and NS
    bool version_txt = false;  // dns-version.<zone> TXT "1.1.0"
    Range a;
    Range aaaa;
    Range srv;
    Range ptr;
    NameRef cname;
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

  std::span<const uint8_t> name(NameRef ref) const noexcept {
    return {reinterpret_cast<const uint8_t*>(names_.data()) + ref.offset, ref.size};
  }
  std::span<const dp::Ip4> a(const Node& n) const noexcept {
    return std::span<const dp::Ip4>(addrs_).subspan(n.a.begin, n.a.count);
  }
  std::span<const dp::Ip6> aaaa(const Node& n) const noexcept {
    return std::span<const dp::Ip6>(addrs6_).subspan(n.aaaa.begin, n.aaaa.count);
  }
  const Node* node_at(uint32_t i) const noexcept { return i < nodes_.size() ? &nodes_[i] : nullptr; }
  std::span<const Srv> srv(const Node& n) const noexcept {
    return std::span<const Srv>(srvs_).subspan(n.srv.begin, n.srv.count);
  }
  std::span<const NameRef> ptr(const Node& n) const noexcept {
    return std::span<const NameRef>(ptrs_).subspan(n.ptr.begin, n.ptr.count);
  }

  std::span<const uint8_t> apex_name(Apex a) const noexcept { return name(apex_[index(a)]); }
  // SOA rdata (RFC 1035 §3.3.13): ns.dns.<zone>. hostmaster.<zone>. serial
  // 7200 1800 86400 ttl (refresh, retry, expire as CoreDNS; minimum = the
  // negative TTL, RFC 2308 §4).
  std::span<const uint8_t> soa_mname() const noexcept { return name(mname_); }
  std::span<const uint8_t> soa_rname() const noexcept { return name(rname_); }
  static constexpr uint32_t kRefresh = 7200;
  static constexpr uint32_t kRetry = 1800;
  static constexpr uint32_t kExpire = 86400;
  // The address of ns.dns.<zone> (the DNS service IP), glue for NS answers.
  std::optional<dp::Ip4> ns_address() const noexcept { return ns_address_; }

  uint32_t serial() const noexcept { return serial_; }
  uint32_t ttl() const noexcept { return ttl_; }
  uint16_t max_udp_payload() const noexcept { return max_udp_payload_; }
  size_t node_count() const noexcept { return nodes_.size(); }

 private:
  friend std::shared_ptr<const Zone> build_zone(const Config& config, uint32_t serial);
  friend class ZoneBuilder;
  Zone() = default;

  static size_t index(Apex a) noexcept { return static_cast<size_t>(a); }
  bool under(std::span<const uint8_t> name, Apex a) const noexcept;

  std::string names_;  // every wire name, back to back; views below point here
  std::vector<Node> nodes_;
  std::vector<dp::Ip4> addrs_;
  std::vector<dp::Ip6> addrs6_;
  std::vector<Srv> srvs_;
  std::vector<NameRef> ptrs_;
  std::unordered_map<std::string_view, uint32_t> index_;  // owner -> nodes_ index
  NameRef apex_[kApexes];
  NameRef mname_;
  NameRef rname_;
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
