// Announcing the VIPs to the network (issue 10, docs/scale-out.md).
//
// podgate does not speak BGP.  It keeps, in a kernel routing table of its
// own ([announce] table), one /32 route per IPv4 VIP that has an endpoint
// taking new flows, and one for the DNS service IP, on the kernel twin of [announce] port; BIRD's `kernel`
// protocol learns that table and its `bgp` protocol announces it
// (conf/bird/podgate-bird.conf).  So:
//   - a VIP whose last endpoint goes, or whose service is deleted, is
//     withdrawn with the next published change;
//   - `drain` withdraws every route (the router moves new and established
//     connections to the other appliances, which carry them on by Maglev);
//     `undrain` puts them back;
//   - when podgate stops, the routes go: removed on a clean stop, and by
//     the kernel with the twin on a crash or SIGKILL;
//   - every kCheckMs, check_table() reads the table back and puts right
//     what differs from what podgate wants there: a route the kernel took
//     away (the twin's link went down and up) or someone deleted, one the
//     kernel refused before, one left behind.  So what `podgatectl status`
//     shows as announced is what the table held at the last check.
// Control thread only.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "control/config/config.hpp"
#include "control/result.hpp"

namespace podgate::ctl {

class VipAnnouncer {
 public:
  static constexpr uint64_t kCheckMs = 2000;  // how often the control loop calls check_table()

  VipAnnouncer(std::string iface, uint32_t table) : iface_(std::move(iface)), table_(table) {}
  ~VipAnnouncer();  // withdraws what it announced
  VipAnnouncer(const VipAnnouncer&) = delete;
  VipAnnouncer& operator=(const VipAnnouncer&) = delete;

  // The VIPs `config` (the Registry's view, health included) has to
  // announce, network order: the DNS service IP, answered by every
  // appliance; and the IPv4 cluster IPs (first or second of a dual-stack
  // service) of services with a port that some IPv4 endpoint takes new
  // flows on (port_takes_new_flows).  An IPv6 endpoint does not count: the
  // IPv4 VIP never forwards to it.
  static std::set<uint32_t> wanted(const Config& config);

  // Makes the table hold what `config` wants (nothing while drained).  A
  // route the kernel refuses is named in the error; the others are done.
  Result<void> sync(const Config& config);
  Result<void> set_drained(bool drained, const Config& config);
  // A clean stop begins: every route is withdrawn, for good (set_drained
  // is refused from then on).  Whether there was a route to withdraw.
  bool withdraw_for_stop();
  // Reads the table's routes on the twin back from the kernel, takes them
  // as what is announced, and adds or deletes what differs from what is
  // wanted.  Logs what it puts right, and a failure when it is not the
  // one the last check logged (a twin that stays down is logged once).
  void check_table();

  bool drained() const noexcept { return drained_; }
  bool stopping() const noexcept { return stopping_; }
  const std::set<uint32_t>& announced() const noexcept { return announced_; }
  const std::string& iface() const noexcept { return iface_; }
  uint32_t table() const noexcept { return table_; }

 private:
  // Makes the table hold `want` and nothing else.
  Result<void> hold(const std::set<uint32_t>& want);
  // check_table() but the logging of its failure.
  Result<void> reconcile();

  std::string iface_;
  uint32_t table_;
  bool drained_ = false;
  bool stopping_ = false;
  std::set<uint32_t> wanted_;     // what the last sync, drain or stop asked for
  std::set<uint32_t> announced_;  // what the table holds, as far as podgate knows
  std::string check_failure_;     // what the last check could not put right; "": nothing
};

}  // namespace podgate::ctl
