// ICMP errors about NATed connections, both families (RFC 5508 §7 for
// IPv4; the same for ICMPv6, RFC 4443 §3): a router between podgate and a
// Pod (or the Pod itself) reporting on a packet podgate forwarded, sent to
// the client; or a router on the client's side reporting on a reply, sent
// to the VIP.  It is matched by the packet it quotes, translated both ways,
// and delivered by the connection's owner.  Path MTU discovery through the
// NAT depends on it (in IPv6, where routers never fragment, always).
// Written once, as a template on the family; off the established path.
#include "dataplane/nat.hpp"
#include "dataplane/nat6.hpp"
#include "dataplane/worker.hpp"

namespace podgate::dp {

template <Family F>
void Worker::handle_icmp_error(rte_mbuf* m, typename FamilyTypes<F>::Parsed& p) noexcept {
  using Addr = typename FamilyTypes<F>::Addr;
  using Key = typename FamilyTypes<F>::Key;
  using Table = typename FamilyTypes<F>::Table;
  std::conditional_t<F == Family::kIpv4, QuotedPacket, QuotedPacket6> q;
  if (const DropReason why = find_quoted_packet(p, q); why != DropReason::kCount) {
    drop(m, why);
    return;
  }
  const rte_udp_hdr* ports = q.ports();
  const Addr quoted_src = q.src();
  const Addr quoted_dst = q.dst();
  // A reply left podgate from a VIP; a forwarded packet went to a Pod.
  const bool about_reply = snapshot_->is_vip(quoted_src);
  const Addr client = about_reply ? quoted_dst : quoted_src;
  if (setup_.count > 1) {
    const uint32_t owner = owners_.owner(client, about_reply ? ports->dst_port : ports->src_port);
    if (owner != setup_.id) {
      hand_off(m, owner);
      return;
    }
  }
  // The quoted packet's reverse direction: a reply is answered by the
  // client's key, a forwarded packet by the Pod's reply key.
  auto& flows = table<F>();
  const Key key{quoted_dst, quoted_src, ports->dst_port, ports->src_port, q.proto};
  const auto hit = flows.find(key, flows.probe(Table::hash(key)), now_);
  if (!hit || hit.reverse == about_reply || !(p.dst() == (about_reply ? hit.flow->vip : client))) {
    // About a connection of the kernel's own (a refused health probe).
    if constexpr (F == Family::kIpv4) {
      if (const auto twin = kernel_twin_for(m, p.dst())) {
        to_kernel(m, *twin);
        return;
      }
    }
    drop(m, DropReason::kIcmpErrorNoFlow);
    return;
  }
  if (!ttl_allows_forwarding(p.ip)) {
    drop(m, DropReason::kTtlExceeded);
    return;
  }
  const auto& f = *hit.flow;
  if (about_reply) {
    // To the Pod: the quoted reply came from the Pod; the error, sent to
    // the VIP, goes to the Pod.
    translate_icmp_error(p, q, NatSide::kSource, f.pod, f.pod_port, OuterAddress::kDestination, f.pod);
  } else {
    // To the client: the quoted packet went to the VIP.  An error from the
    // Pod itself (port unreachable) comes from the VIP, the only address of
    // the connection the client knows.
    translate_icmp_error(p, q, NatSide::kDestination, f.vip, f.vip_port,
                         p.src() == f.pod ? OuterAddress::kSource : OuterAddress::kUnchanged, f.vip);
  }
  counters_.icmp_errors_translated.add();
  if constexpr (F == Family::kIpv4) {
    forward(m, p.eth, p.dst());
  } else {
    forward6(m, p.eth, p.dst());
  }
}

template void Worker::handle_icmp_error<Family::kIpv4>(rte_mbuf*, ParsedPacket&) noexcept;
template void Worker::handle_icmp_error<Family::kIpv6>(rte_mbuf*, ParsedPacket6&) noexcept;

}  // namespace podgate::dp
