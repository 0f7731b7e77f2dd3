// ZoneUpdater: the DNS zone listener's state (issue 14).  It makes each
// Zone version from a Registry version: whole at first and after a change
// that is not only to services (a reload, the [dns] section), and from a
// change to a few services by rebuilding only their names.
//
// Every service's names are kept as a fragment (the Nodes it would add to
// a zone built whole, ancestors included as empty non-terminals), and every
// owner name knows how many fragments hold it and which give it records.
// A change takes the changed services' fragments out, puts the new ones
// in, and remakes the nodes of the names they touch: a name whose records
// changed, or that came or went.  The new Zone shares every other node, and
// every shard of the index that holds none of those names, with the last
// version (zone.hpp).  Control thread only; the Zones it returns are
// immutable.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "control/config/config.hpp"
#include "control/dns/zone.hpp"

namespace podgate::ctl::dns {

class FragmentBuilder;

class ZoneUpdater {
 public:
  // The zone of `config` for Registry version `serial`: the last one when
  // `changes` (what changed in config.services since the last call, null
  // when more than services changed) are not visible in DNS (dns.hpp
  // zone_unchanged; its serial stays), updated for the changed services,
  // or built whole when there is no last one or `changes` is null.
  ZoneUpdater();
  ~ZoneUpdater();
  ZoneUpdater(const ZoneUpdater&) = delete;
  ZoneUpdater& operator=(const ZoneUpdater&) = delete;

  std::shared_ptr<const Zone> follow(const Config& config, const ServiceDiff* changes,
                                     uint32_t serial);

  // Built whole (what build_zone() returns).
  std::shared_ptr<const Zone> rebuild(const Config& config, uint32_t serial);
  // The last zone after `changes`, whatever they are; rebuild() first.
  std::shared_ptr<const Zone> update(const ServiceDiff& changes, const ServiceList& after,
                                     uint32_t serial);

  const std::shared_ptr<const Zone>& zone() const noexcept { return zone_; }

 private:
  // One service's names (or the apexes' when `service` is null).
  struct Fragment {
    std::shared_ptr<const ServiceConfig> service;
    std::vector<std::shared_ptr<const Zone::Node>> names;
  };
  // A record-bearing node of a fragment.
  struct Part {
    const Fragment* fragment;
    const std::shared_ptr<const Zone::Node>* node;  // one of fragment->names
  };
  struct Owner {
    Zone::Apex apex = Zone::Apex::kCluster;
    // Fragment names at or below this one: the node exists while > 0.
    uint32_t refs = 0;
    std::vector<Part> parts;  // the fragments giving it records, in config order
    // A node whose name holds this one (as a suffix): the map's key views it.
    std::shared_ptr<const Zone::Node> keeper;
  };

  Fragment make_fragment(std::shared_ptr<const ServiceConfig> service) const;
  // Adds or takes out a fragment's names and their ancestors; `touched`
  // records what each name was before.
  struct Touch {
    uint32_t refs_before = 0;
    bool records_changed = false;
  };
  using Touches = std::unordered_map<std::string_view, Touch>;
  void add(const Fragment& f, Touches* touched, bool* unsorted);
  void remove(const Fragment& f, Touches& touched);
  size_t apex_size(Zone::Apex a) const noexcept;
  static std::shared_ptr<const Zone::Node> merge(std::string_view owner, const Owner& o);

  std::shared_ptr<const Zone> zone_;
  // The served apexes (wire) and the zone's dotted name, from the last
  // rebuild(): empty cluster_ = nothing served.
  std::string zone_text_;
  std::string cluster_;
  std::string reverse_;
  std::string reverse6_;
  std::unique_ptr<Fragment> base_;  // the apexes, dns-version, ns.dns
  std::unordered_map<const ServiceConfig*, std::unique_ptr<Fragment>> fragments_;
  std::unordered_map<std::string_view, Owner> owners_;
  std::unique_ptr<FragmentBuilder> builder_;  // reused: its containers keep their room
};

}  // namespace podgate::ctl::dns
