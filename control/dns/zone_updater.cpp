// Zone versions made whole or from a change to a few services.  See
// zone_updater.hpp for how, and zone.hpp for what is served and why.
#include "control/dns/zone_updater.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <deque>
#include <unordered_set>

namespace podgate::ctl::dns {

namespace {

// "172.17.1.10" -> "10.1.17.172.in-addr.arpa" (RFC 1035 §3.5).
std::string reverse_name(dp::Ip4 ip) {
  const uint32_t h = ip.host();
  std::string s;
  for (int shift = 0; shift < 32; shift += 8) s.append(std::to_string((h >> shift) & 0xff)).append(".");
  return s.append("in-addr.arpa");
}

// "fd00:10:96::20" -> "0.2.0.0.0.0 ... 0.0.d.f.ip6.arpa": the 32 nibbles,
// least significant first (RFC 3596 section 2.5).
std::string reverse_name(const dp::Ip6& ip) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(72);
  for (int i = 15; i >= 0; --i) {
    s += kHex[ip.bytes[i] & 15];
    s += '.';
    s += kHex[ip.bytes[i] >> 4];
    s += '.';
  }
  return s.append("ip6.arpa");
}

std::string reverse_name(const dp::IpAddr& ip) {
  return ip.is_v4() ? reverse_name(ip.as_v4()) : reverse_name(ip.as_v6());
}

// "172.17.1.10" -> "172-17-1-10", "fd00:10::5" -> "fd00-10--5": the name of
// an endpoint without a hostname (CoreDNS's endpointHostname).
std::string dashed(const dp::IpAddr& ip) {
  std::string s = dp::to_string(ip);
  for (char& c : s) c = c == '.' || c == ':' ? '-' : c;
  return s;
}

// SRV weight as CoreDNS's plugin/backend_lookup.go computes it: every
// record weighs 100, the weight is its percentage of the total, floored.
uint16_t srv_weight(size_t records) {
  const double total = 100.0 * static_cast<double>(records);
  return static_cast<uint16_t>(std::floor(100.0 / total * 100.0));
}

std::string srv_name(const ServicePortConfig& p, const std::string& service) {
  return std::string("_").append(p.name).append(p.protocol == dp::Proto::kTcp ? "._tcp." : "._udp.")
      .append(service);
}

bool has_records(const Zone::Node& n) noexcept {
  return n.soa_ns || n.version_txt || !n.a.empty() || !n.aaaa.empty() || !n.srv.empty() ||
         !n.ptr.empty() || !n.cname.empty();
}

}  // namespace

// One fragment's nodes (their ancestors are counted by the updater).
class FragmentBuilder {
 public:
  // The node for `dotted`; nullptr when the name cannot be encoded.
  Zone::Node* node(const std::string& dotted, Zone::Apex apex) {
    auto wire = encode_name(dotted);
    if (!wire) return nullptr;
    if (auto it = index_.find(*wire); it != index_.end()) return it->second;
    Zone::Node& n = nodes_.emplace_back();
    n.owner = std::move(*wire);
    n.apex = apex;
    index_.emplace(n.owner, &n);
    return &n;
  }

  void add_apex(const std::string& zone, const std::optional<dp::Ip4>& service_ip) {
    node(zone, Zone::Apex::kCluster)->soa_ns = true;
    node("in-addr.arpa", Zone::Apex::kReverse)->soa_ns = true;
    node("ip6.arpa", Zone::Apex::kReverse6)->soa_ns = true;
    node("dns-version." + zone, Zone::Apex::kCluster)->version_txt = true;
    if (service_ip) node("ns.dns." + zone, Zone::Apex::kCluster)->a.push_back(*service_ip);
  }

  void add_service(const ServiceConfig& svc, const std::string& zone) {
    const std::string name = svc.name + "." + svc.ns + ".svc." + zone;
    if (svc.type == ServiceType::kExternalName) {
      auto target = encode_name(svc.external_name);
      Zone::Node* n = target ? node(name, Zone::Apex::kCluster) : nullptr;
      if (n != nullptr) n->cname = *target;
      return;
    }
    if (!svc.headless()) {
      Zone::Node* n = node(name, Zone::Apex::kCluster);
      if (n == nullptr) return;
      const std::vector<dp::IpAddr> vips = svc.cluster_ips();
      for (const dp::IpAddr& vip : vips) add_address(*n, vip);
      auto target = encode_name(name);
      for (const ServicePortConfig& p : svc.ports) {
        if (p.name.empty()) continue;
        if (Zone::Node* s = node(srv_name(p, name), Zone::Apex::kCluster)) {
          s->srv.push_back(Zone::Srv{0, srv_weight(1), p.port, *target});
        }
      }
      for (const dp::IpAddr& vip : vips) add_ptr(vip, name);
      return;
    }
    add_headless(svc, name);
  }

  // The nodes made, each to be shared by the zones that hold it unmerged;
  // the builder is empty again.
  std::vector<std::shared_ptr<const Zone::Node>> take() {
    std::vector<std::shared_ptr<const Zone::Node>> out;
    out.reserve(nodes_.size());
    for (Zone::Node& n : nodes_) out.push_back(std::make_shared<const Zone::Node>(std::move(n)));
    index_.clear();
    nodes_.clear();
    return out;
  }

 private:
  void add_ptr(const dp::IpAddr& ip, const std::string& target) {
    if (auto wire = encode_name(target)) {
      const Zone::Apex apex = ip.is_v4() ? Zone::Apex::kReverse : Zone::Apex::kReverse6;
      if (Zone::Node* n = node(reverse_name(ip), apex)) n->ptr.push_back(*wire);
    }
  }

  static void add_address(Zone::Node& n, const dp::IpAddr& ip) {
    if (ip.is_v4()) {
      n.a.push_back(ip.as_v4());
    } else {
      n.aaaa.push_back(ip.as_v6());
    }
  }

  // One SRV per target and port (CoreDNS's isDuplicate): a dual-stack
  // Pod's two endpoint addresses share one name.  The records a node has
  // are scanned while they are a few; past that a set of them is kept, as
  // a headless service of n Pods would scan up to n for each (O(n²)).
  class SrvAdder {
   public:
    void add(Zone::Node& n, uint16_t weight, uint16_t port, const std::string& target) {
      if (n.srv.size() <= kScanAtMost) {
        for (const Zone::Srv& s : n.srv) {
          if (s.port == port && s.target == target) return;
        }
      } else {
        for (; indexed_ < n.srv.size(); ++indexed_) {
          seen_.insert(key(n.srv[indexed_].port, n.srv[indexed_].target));
        }
        if (!seen_.insert(key(port, target)).second) return;
        ++indexed_;  // the record pushed below
      }
      n.srv.push_back(Zone::Srv{0, weight, port, target});
    }

   private:
    static constexpr size_t kScanAtMost = 32;
    static std::string key(uint16_t port, const std::string& target) {
      std::string k{static_cast<char>(port >> 8), static_cast<char>(port & 0xff)};
      return k.append(target);
    }
    std::unordered_set<std::string> seen_;  // port (2 bytes) + target of n.srv[0, indexed_)
    size_t indexed_ = 0;
  };

  void add_headless(const ServiceConfig& svc, const std::string& name) {
    std::vector<const EndpointConfig*> published;
    for (const EndpointConfig& e : svc.endpoints) {
      if (e.ready || svc.publish_not_ready_addresses) published.push_back(&e);
    }
    if (published.empty()) return;  // row 12: the service name does not exist
    Zone::Node* n = node(name, Zone::Apex::kCluster);
    if (n == nullptr) return;
    const uint16_t weight = srv_weight(published.size());
    std::vector<SrvAdder> srv(svc.ports.size());  // one per port's SRV node
    for (const EndpointConfig* e : published) {
      const dp::IpAddr& ip = e->ip;
      add_address(*n, ip);  // std::deque elements are stable: `n` stays valid
      const bool per_pod = !e->hostname.empty() && e->subdomain == svc.name;
      const std::string pod = (per_pod ? e->hostname : dashed(ip)) + "." + name;
      Zone::Node* pn = node(pod, Zone::Apex::kCluster);
      if (pn == nullptr) continue;  // over 255 octets: nobody can ask for it
      add_address(*pn, ip);
      if (per_pod) add_ptr(ip, pod);
      auto target = encode_name(pod);
      for (size_t i = 0; i < svc.ports.size(); ++i) {
        const ServicePortConfig& p = svc.ports[i];
        if (p.name.empty()) continue;
        if (Zone::Node* s = node(srv_name(p, name), Zone::Apex::kCluster)) {
          // EndpointSlice ports are the Pods' ports: target_port.
          srv[i].add(*s, weight, p.target_port, *target);
        }
      }
    }
  }

  std::deque<Zone::Node> nodes_;  // stable: callers hold Node* across later node() calls
  std::unordered_map<std::string_view, Zone::Node*> index_;  // views of nodes_' owners
};

namespace {

// `owner` and its ancestors up to the apex of `apex_size` octets (the
// empty non-terminals a name brings), each a suffix of `owner`.
template <typename F>
void for_each_level(std::string_view owner, size_t apex_size, F&& each) {
  each(owner);
  while (owner.size() > apex_size) {
    owner.remove_prefix(size_t{1} + static_cast<uint8_t>(owner[0]));
    each(owner);
  }
}

std::string trimmed(const std::string& zone) {
  return !zone.empty() && zone.back() == '.' ? zone.substr(0, zone.size() - 1) : zone;
}

}  // namespace

ZoneUpdater::ZoneUpdater() : builder_(std::make_unique<FragmentBuilder>()) {}
ZoneUpdater::~ZoneUpdater() = default;

ZoneUpdater::Fragment ZoneUpdater::make_fragment(std::shared_ptr<const ServiceConfig> service) const {
  Fragment f;
  f.service = std::move(service);
  if (cluster_.empty() || f.service == nullptr) return f;
  builder_->add_service(*f.service, zone_text_);
  f.names = builder_->take();
  return f;
}

size_t ZoneUpdater::apex_size(Zone::Apex a) const noexcept {
  return (a == Zone::Apex::kCluster ? cluster_ : a == Zone::Apex::kReverse ? reverse_ : reverse6_).size();
}

void ZoneUpdater::add(const Fragment& f, Touches* touched, bool* unsorted) {
  for (const auto& shared : f.names) {
    const Zone::Node& n = *shared;
    for_each_level(n.owner, apex_size(n.apex), [&](std::string_view name) {
      auto it = owners_.find(name);
      if (it == owners_.end()) {
        // The key views the name in a node the owner keeps.
        it = owners_.emplace(name, Owner{n.apex, 0, {}, shared}).first;
      }
      Owner& o = it->second;
      if (touched != nullptr) touched->try_emplace(it->first, Touch{o.refs, false});
      ++o.refs;
    });
    if (!has_records(n)) continue;
    Owner& o = owners_.find(n.owner)->second;
    o.parts.push_back(Part{&f, &shared});
    if (touched != nullptr) touched->find(n.owner)->second.records_changed = true;
    if (o.parts.size() > 1 && unsorted != nullptr) *unsorted = true;
  }
}

void ZoneUpdater::remove(const Fragment& f, Touches& touched) {
  for (const auto& shared : f.names) {
    const Zone::Node& n = *shared;
    for_each_level(n.owner, apex_size(n.apex), [&](std::string_view name) {
      auto it = owners_.find(name);
      touched.try_emplace(it->first, Touch{it->second.refs, false});
      --it->second.refs;
    });
    if (!has_records(n)) continue;
    std::erase_if(owners_.find(n.owner)->second.parts,
                  [&](const Part& p) { return p.node == &shared; });
    touched.find(n.owner)->second.records_changed = true;
  }
}

// The node of `owner`: its parts' records one after the other.  A name of
// one part (most) is that fragment's node itself, shared.
std::shared_ptr<const Zone::Node> ZoneUpdater::merge(std::string_view owner, const Owner& o) {
  if (o.parts.size() == 1) return *o.parts.front().node;
  auto n = std::make_shared<Zone::Node>();
  if (o.parts.empty()) {
    n->owner = owner;
    n->apex = o.apex;
  } else {
    *n = **o.parts.front().node;
  }
  for (size_t i = 1; i < o.parts.size(); ++i) {
    const Zone::Node& p = **o.parts[i].node;
    n->soa_ns = n->soa_ns || p.soa_ns;
    n->version_txt = n->version_txt || p.version_txt;
    n->a.insert(n->a.end(), p.a.begin(), p.a.end());
    n->aaaa.insert(n->aaaa.end(), p.aaaa.begin(), p.aaaa.end());
    n->srv.insert(n->srv.end(), p.srv.begin(), p.srv.end());
    n->ptr.insert(n->ptr.end(), p.ptr.begin(), p.ptr.end());
    if (!p.cname.empty()) n->cname = p.cname;
  }
  return n;
}

std::shared_ptr<const Zone> ZoneUpdater::rebuild(const Config& config, uint32_t serial) {
  fragments_.clear();
  owners_.clear();
  base_ = std::make_unique<Fragment>();
  cluster_.clear();
  zone_text_ = trimmed(config.dns.zone);
  auto apex = encode_name(zone_text_);
  auto mname = encode_name("ns.dns." + zone_text_);
  auto rname = encode_name("hostmaster." + zone_text_);
  std::shared_ptr<Zone> z(new Zone);
  z->serial_ = serial;
  z->ttl_ = config.dns.ttl;
  z->max_udp_payload_ = config.dns.max_udp_payload;
  z->ns_address_ = config.dns.service_ip;
  // An unusable zone (empty, or too long for its SOA names) serves
  // nothing: every query is REFUSED rather than answered for the root.
  if (apex && apex->size() > 1 && mname && rname) {
    cluster_ = *apex;
    reverse_ = *encode_name("in-addr.arpa");
    reverse6_ = *encode_name("ip6.arpa");
    z->apex_[Zone::index(Zone::Apex::kCluster)] = cluster_;
    z->apex_[Zone::index(Zone::Apex::kReverse)] = reverse_;
    z->apex_[Zone::index(Zone::Apex::kReverse6)] = reverse6_;
    z->mname_ = *mname;
    z->rname_ = *rname;
    builder_->add_apex(zone_text_, config.dns.service_ip);
    base_->names = builder_->take();
  }
  add(*base_, nullptr, nullptr);
  const ServiceList& list = config.services;
  fragments_.reserve(list.size());
  owners_.reserve(list.size() * 4);
  for (size_t i = 0; i < list.size(); ++i) {
    auto f = std::make_unique<Fragment>(make_fragment(list.shared(i)));
    add(*f, nullptr, nullptr);  // in config order: every owner's parts are in order
    fragments_.emplace(list.identity(i), std::move(f));
  }
  // About 16 names a shard: a change copies a few such shards.
  const size_t count = std::bit_ceil(std::clamp<size_t>(owners_.size() / 16, 16, Zone::kMaxShards));
  std::vector<Zone::Shard> shards(count);
  for (const auto& [owner, o] : owners_) {
    auto n = merge(owner, o);
    shards[Zone::shard_of(owner, count)].emplace(n->owner, std::move(n));
  }
  z->shards_.reserve(count);
  for (Zone::Shard& s : shards) z->shards_.push_back(std::make_shared<const Zone::Shard>(std::move(s)));
  z->node_count_ = owners_.size();
  zone_ = std::move(z);
  return zone_;
}

std::shared_ptr<const Zone> ZoneUpdater::update(const ServiceDiff& changes, const ServiceList& after,
                                                uint32_t serial) {
  Touches touched;
  for (const auto& old : changes.removed) {
    auto it = fragments_.find(old.get());
    if (it == fragments_.end()) continue;
    remove(*it->second, touched);
    fragments_.erase(it);  // after its parts left every owner
  }
  bool unsorted = false;
  for (size_t i : changes.added) {
    auto f = std::make_unique<Fragment>(make_fragment(after.shared(i)));
    add(*f, &touched, &unsorted);
    fragments_[after.identity(i)] = std::move(f);
  }
  if (unsorted) {
    // A name with records of several services lists them in config order
    // (as a zone built whole): the services' places now, looked up once.
    std::unordered_map<const ServiceConfig*, size_t> place;
    place.reserve(after.size());
    for (size_t i = 0; i < after.size(); ++i) place.emplace(after.identity(i), i + 1);  // 0: the base
    const auto rank = [&](const Part& p) {
      return p.fragment->service == nullptr ? 0 : place.at(p.fragment->service.get());
    };
    for (const auto& [owner, t] : touched) {
      Owner& o = owners_.find(owner)->second;
      if (o.parts.size() > 1) {
        std::stable_sort(o.parts.begin(), o.parts.end(),
                         [&](const Part& a, const Part& b) { return rank(a) < rank(b); });
      }
    }
  }
  std::shared_ptr<Zone> z(new Zone(*zone_));  // shares every shard
  z->serial_ = serial;
  std::vector<Zone::Shard*> copied(z->shards_.size(), nullptr);
  const auto shard = [&](std::string_view owner) -> Zone::Shard& {
    const size_t i = Zone::shard_of(owner, z->shards_.size());
    if (copied[i] == nullptr) {
      auto copy = std::make_shared<Zone::Shard>(*z->shards_[i]);
      copied[i] = copy.get();
      z->shards_[i] = std::move(copy);
    }
    return *copied[i];
  };
  for (const auto& [owner, t] : touched) {
    auto it = owners_.find(owner);
    const bool existed = t.refs_before > 0;
    if (it->second.refs == 0) {
      if (existed) {
        shard(owner).erase(owner);
        --z->node_count_;
      }
      owners_.erase(it);  // `owner` views its key: not used after this
      continue;
    }
    if (existed && !t.records_changed) continue;  // an empty non-terminal still
    auto n = merge(owner, it->second);
    Zone::Shard& s = shard(owner);
    // The key views the node's own name: the old node leaves with the old version.
    if (s.erase(owner) == 0) ++z->node_count_;
    s.emplace(n->owner, std::move(n));
  }
  zone_ = std::move(z);
  return zone_;
}

std::shared_ptr<const Zone> ZoneUpdater::follow(const Config& config, const ServiceDiff* changes,
                                                uint32_t serial) {
  if (changes == nullptr || zone_ == nullptr) return rebuild(config, serial);
  if (!zone_unchanged(*changes, config.services)) return update(*changes, config.services, serial);
  // Not visible in DNS: the same names; the changed services' fragments
  // now belong to their new versions (the next change names those).
  for (size_t i = 0; i < changes->added.size(); ++i) {
    auto it = fragments_.find(changes->removed[i].get());
    if (it == fragments_.end()) continue;
    auto f = std::move(it->second);
    fragments_.erase(it);
    f->service = config.services.shared(changes->added[i]);
    fragments_[config.services.identity(changes->added[i])] = std::move(f);
  }
  return zone_;
}

}  // namespace podgate::ctl::dns
