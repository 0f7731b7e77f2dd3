// The responder: (query bytes, Zone) -> answer bytes, every rule of
// ../shared/design/dns.md "Always" and rows 1-16.  Pure and allocation-free:
// the kernel listeners and the dataplane punt path both call it, the unit
// tests and the fuzzer call it directly.
#include <algorithm>

#include "control/dns/dns.hpp"
#include "control/dns/wire.hpp"
#include "control/dns/zone.hpp"

namespace podgate::ctl::dns {
namespace {

constexpr uint8_t kRoot[] = {0};
// dns-version TXT (spec §2.2): one character-string, RFC 1035 §3.3.14.
constexpr uint8_t kVersionTxt[] = {5, '1', '.', '1', '.', '0'};
static_assert(sizeof kVersionTxt == Zone::kSchemaVersion.size() + 1);

uint16_t low_rcode(Rcode r) noexcept { return static_cast<uint16_t>(r) & kRcodeMask; }
uint8_t extended_rcode(Rcode r) noexcept { return static_cast<uint8_t>(static_cast<uint16_t>(r) >> 4); }

// Flags every answer shares: QR, the query's opcode, RD copied (RFC 1035
// §4.1.1), CD copied (RFC 4035 §3.1.6); RA clear: podgate does not recurse.
uint16_t base_flags(const Header& h) noexcept {
  return static_cast<uint16_t>(kFlagQr | (h.flags & (kOpcodeMask | kFlagRd | kFlagCd)));
}

// The OPT pseudo-record of an answer (RFC 6891 §6.1.2-3): our payload size,
// the upper 8 bits of the RCODE, version 0, DO copied (RFC 3225 §3).
bool write_opt(Writer& w, const Zone& zone, const Edns& edns, Rcode rcode) noexcept {
  w.release_reserve();
  const uint32_t ttl = (uint32_t{extended_rcode(rcode)} << 24) | (edns.dnssec_ok ? 0x8000u : 0u);
  w.begin_record(kRoot, rrtype::kOpt,
                 static_cast<uint16_t>(std::max<size_t>(kMinUdpPayload, zone.max_udp_payload())),
                 ttl);
  return w.end_record(Section::kAdditional);
}

// An answer without records: FORMERR, NOTIMP, REFUSED, BADVERS.  The
// question is echoed when it could be read; the OPT when the query's was.
size_t error_answer(Writer& w, const Zone& zone, const Header& h, const Question* q,
                    const Edns* edns, Rcode rcode) noexcept {
  if (edns != nullptr) w.reserve(kOptRecordSize);
  // Only a caller's buffer smaller than a question can cut these short;
  // then TC says so rather than an answer that looks whole.
  bool whole = q == nullptr || w.question(*q);
  if (edns != nullptr) whole = write_opt(w, zone, *edns, rcode) && whole;
  return w.finish(static_cast<uint16_t>(base_flags(h) | low_rcode(rcode) | (whole ? 0 : kFlagTc)));
}

class Answerer {
 public:
  Answerer(Writer& w, const Zone& zone, const Question& q, uint32_t rotation) noexcept
      : w_(w), zone_(zone), owner_(q.name.wire()), qtype_(q.qtype), rotation_(rotation) {}

  // Fills the answer for a name inside a served zone; returns its RCODE.
  Rcode run(const Zone::Lookup& found) noexcept {
    if (found.node == nullptr) {
      soa(Section::kAuthority, found.apex);  // NXDOMAIN: RFC 2308 §3
      return Rcode::kNxDomain;
    }
    const Zone::Node& n = *found.node;
    if (!n.cname.empty()) {
      // Whatever the type: the alias itself, not chased (row 16, RFC 1034
      // §3.6.2; the target is outside the cluster and podgate does not
      // recurse).
      record(owner_, rrtype::kCname);
      w_.put_name(Zone::wire(n.cname), true);
      emit(Section::kAnswer);
      return Rcode::kNoError;
    }
    const bool any = qtype_ == rrtype::kAny;
    if (any || qtype_ == rrtype::kA) addresses(n);
    if (any || qtype_ == rrtype::kAaaa) addresses6(n);
    if (any || qtype_ == rrtype::kSrv) services(n);
    if (any || qtype_ == rrtype::kPtr) pointers(n);
    if ((any || qtype_ == rrtype::kTxt) && n.version_txt) version();
    if ((any || qtype_ == rrtype::kSoa) && n.soa_ns) soa(Section::kAnswer, n.apex);
    if ((any || qtype_ == rrtype::kNs) && n.soa_ns) name_server(Section::kAnswer);
    // NODATA (RFC 2308 §2.2): the name exists without the type.
    if (w_.count(Section::kAnswer) == 0 && !truncated_) soa(Section::kAuthority, n.apex);
    if (truncated_) return Rcode::kNoError;  // the client retries over TCP
    if (any || qtype_ == rrtype::kSrv) service_addresses(n);
    if ((any || qtype_ == rrtype::kNs) && n.soa_ns) glue();
    return Rcode::kNoError;
  }

  bool truncated() const noexcept { return truncated_; }

 private:
  void record(std::span<const uint8_t> owner, uint16_t type) noexcept {
    w_.begin_record(owner, type, kClassIn, zone_.ttl());
  }

  // Commits the record; a record of the answer or authority section that
  // does not fit ends the message there with TC (RFC 2181 §9), an
  // additional one is just left out.
  bool emit(Section s) noexcept {
    if (truncated_) {
      w_.abort_record();
      return false;
    }
    if (w_.end_record(s)) return true;
    if (s != Section::kAdditional) truncated_ = true;
    return false;
  }

  void address(Section s, std::span<const uint8_t> owner, dp::Ip4 ip) noexcept {
    if (truncated_) return;
    record(owner, rrtype::kA);
    const uint8_t* b = reinterpret_cast<const uint8_t*>(&ip.be);  // network order already
    w_.put_bytes({b, 4});
    emit(s);
  }

  void address6(Section s, std::span<const uint8_t> owner, const dp::Ip6& ip) noexcept {
    if (truncated_) return;
    record(owner, rrtype::kAaaa);
    w_.put_bytes(ip.bytes);  // network order (RFC 3596 section 2.2)
    emit(s);
  }

  // Rotating order: the records start at rotation mod N (dns.md "Always").
  template <typename T, typename F>
  void rotated(std::span<const T> items, F&& each) noexcept {
    const size_t n = items.size();
    if (n == 0) return;
    const size_t start = rotation_ % n;
    for (size_t i = 0; i < n && !truncated_; ++i) each(items[(start + i) % n]);
  }

  void addresses(const Zone::Node& n) noexcept {
    rotated(std::span<const dp::Ip4>(n.a), [&](dp::Ip4 ip) { address(Section::kAnswer, owner_, ip); });
  }

  void addresses6(const Zone::Node& n) noexcept {
    rotated(std::span<const dp::Ip6>(n.aaaa),
            [&](const dp::Ip6& ip) { address6(Section::kAnswer, owner_, ip); });
  }

  void services(const Zone::Node& n) noexcept {
    rotated(std::span<const Zone::Srv>(n.srv), [&](const Zone::Srv& s) {
      record(owner_, rrtype::kSrv);
      w_.put_u16(s.priority);
      w_.put_u16(s.weight);
      w_.put_u16(s.port);
      w_.put_name(Zone::wire(s.target), false);  // RFC 2782: target never compressed
      emit(Section::kAnswer);
    });
  }

  void service_addresses(const Zone::Node& n) noexcept {
    // The targets' A and AAAA records (RFC 2782 "Target"; CoreDNS adds both).
    rotated(std::span<const Zone::Srv>(n.srv), [&](const Zone::Srv& s) {
      const Zone::Node* t = zone_.node(s.target);  // the same version's node of that name
      if (t == nullptr) return;
      for (dp::Ip4 ip : t->a) address(Section::kAdditional, Zone::wire(s.target), ip);
      for (const dp::Ip6& ip : t->aaaa) address6(Section::kAdditional, Zone::wire(s.target), ip);
    });
  }

  void pointers(const Zone::Node& n) noexcept {
    for (const std::string& target : n.ptr) {
      record(owner_, rrtype::kPtr);
      w_.put_name(Zone::wire(target), true);
      if (!emit(Section::kAnswer)) return;
    }
  }

  void version() noexcept {
    record(owner_, rrtype::kTxt);
    w_.put_bytes(kVersionTxt);
    emit(Section::kAnswer);
  }

  // `<apex> T SOA ns.dns.<zone>. hostmaster.<zone>. serial 7200 1800 86400 T`
  void soa(Section s, Zone::Apex apex) noexcept {
    if (truncated_) return;
    record(zone_.apex_name(apex), rrtype::kSoa);
    w_.put_name(zone_.soa_mname(), true);
    w_.put_name(zone_.soa_rname(), true);
    w_.put_u32(zone_.serial());
    w_.put_u32(Zone::kRefresh);
    w_.put_u32(Zone::kRetry);
    w_.put_u32(Zone::kExpire);
    w_.put_u32(zone_.ttl());  // negative TTL (RFC 2308 §4)
    emit(s);
  }

  void name_server(Section s) noexcept {
    if (truncated_) return;
    record(owner_, rrtype::kNs);
    w_.put_name(zone_.soa_mname(), true);
    emit(s);
  }

  void glue() noexcept {
    if (auto ip = zone_.ns_address()) address(Section::kAdditional, zone_.soa_mname(), *ip);
  }

  Writer& w_;
  const Zone& zone_;
  std::span<const uint8_t> owner_;  // the question's name, as received
  uint16_t qtype_;
  uint32_t rotation_;
  bool truncated_ = false;
};

}  // namespace

size_t respond(std::span<const uint8_t> query, const Zone& zone, const QueryContext& ctx,
               std::span<uint8_t> out) noexcept {
  Header h;
  // No header: nothing to answer to.  QR set: never answer an answer (a
  // reflection loop between two servers otherwise).
  if (!read_header(query, h) || (h.flags & kFlagQr) != 0) return 0;
  if (out.size() < kHeaderSize) return 0;
  const bool udp = ctx.transport == Transport::kUdp;
  Writer w(out.first(std::min(out.size(), kMaxMessage)));
  w.set_limit(udp ? kMinUdpPayload : kMaxMessage);
  w.header(h.id);

  // Every question is read, whatever QDCOUNT says, so that the records
  // after them can be: an answer carries an OPT whenever the query has one
  // (RFC 6891 §7), NOTIMP and a wrong question count's FORMERR included (a
  // DNS cookie probe is QDCOUNT 0 with only an OPT, RFC 7873 §5.4).
  size_t pos = kHeaderSize;
  Question q;
  bool readable = true;
  for (uint16_t i = 0; i < h.qdcount && readable; ++i) readable = read_question(query, pos, q);
  const bool have_q = h.qdcount == 1 && readable;
  Edns edns;
  readable = readable && read_records(query, pos, h, edns);
  const bool query_opcode = h.opcode() == kOpcodeQuery;
  if (!readable) {
    // No OPT: the query's could not be read (RFC 6891 §7 allows that for a
    // FORMERR).  More than one OPT is FORMERR whatever the opcode (RFC 6891
    // §6.1.1); any other opcode's message may follow other rules past the
    // header (RFC 8490's DSO does), so it stays NOTIMP.
    const Rcode rcode = query_opcode || edns.repeated ? Rcode::kFormErr : Rcode::kNotImp;
    return error_answer(w, zone, h, have_q ? &q : nullptr, nullptr, rcode);
  }
  if (udp && edns.present) {
    // RFC 6891 §6.2.3-5: below 512 counts as 512; never above our own.
    const size_t ours = std::max<size_t>(kMinUdpPayload, zone.max_udp_payload());
    const size_t theirs = std::max<size_t>(kMinUdpPayload, edns.udp_payload);
    w.set_limit(std::min(ours, theirs));
  }
  const Edns* opt = edns.present ? &edns : nullptr;
  const Question* echoed = have_q ? &q : nullptr;
  if (edns.present && edns.version != 0) {  // RFC 6891 §6.1.3
    return error_answer(w, zone, h, echoed, opt, Rcode::kBadVers);
  }
  // Any other opcode (IQUERY, STATUS, NOTIFY, UPDATE, ...): not ours.
  if (!query_opcode) return error_answer(w, zone, h, echoed, opt, Rcode::kNotImp);
  if (!have_q) return error_answer(w, zone, h, nullptr, opt, Rcode::kFormErr);
  // Only class IN is served (CHAOS "version.bind" included); no zone
  // transfers (dns.md: AXFR/IXFR -> REFUSED).
  if (q.qclass != kClassIn || q.qtype == rrtype::kAxfr || q.qtype == rrtype::kIxfr) {
    return error_answer(w, zone, h, &q, opt, Rcode::kRefused);
  }
  Name folded;
  lowercase(q.name, folded);
  const Zone::Lookup found = zone.find(folded.wire());
  if (!found.in_zone) return error_answer(w, zone, h, &q, opt, Rcode::kRefused);

  if (opt != nullptr) w.reserve(kOptRecordSize);
  if (!w.question(q)) {  // only when the caller's buffer is tiny
    return w.finish(static_cast<uint16_t>(base_flags(h) | kFlagTc));
  }
  Answerer answerer(w, zone, q, ctx.rotation);
  const Rcode rcode = answerer.run(found);
  const bool opt_fits = opt == nullptr || write_opt(w, zone, edns, rcode);
  // AA on every answer from a served zone, negatives included (RFC 1035
  // §4.1.1, dns.md "Always").
  uint16_t flags = static_cast<uint16_t>(base_flags(h) | kFlagAa | low_rcode(rcode));
  if (answerer.truncated() || !opt_fits) flags |= kFlagTc;
  return w.finish(flags);
}

}  // namespace podgate::ctl::dns
