// DNS wire reader and writer (RFC 1035 §4, RFC 6891).  See wire.hpp.
#include "control/dns/wire.hpp"

#include <algorithm>
#include <cstring>

namespace podgate::ctl::dns {
namespace {

uint16_t get16(std::span<const uint8_t> m, size_t at) noexcept {
  return static_cast<uint16_t>((m[at] << 8) | m[at + 1]);
}

uint32_t get32(std::span<const uint8_t> m, size_t at) noexcept {
  return (uint32_t{m[at]} << 24) | (uint32_t{m[at + 1]} << 16) | (uint32_t{m[at + 2]} << 8) |
         uint32_t{m[at + 3]};
}

constexpr uint8_t kPointerBits = 0xc0;
constexpr uint16_t kMaxPointerTarget = 0x3fff;  // 14-bit offsets

}  // namespace

void lowercase(const Name& in, Name& out) noexcept {
  // Length octets are <= 63, below 'A', so folding every octet is exact.
  for (size_t i = 0; i < in.size; ++i) out.bytes[i] = fold(in.bytes[i]);
  out.size = in.size;
}

bool read_name(std::span<const uint8_t> msg, size_t& pos, Name& out) noexcept {
  size_t p = pos;
  // A pointer must land strictly before the run of labels it interrupts
  // (RFC 1035 §4.1.4 "prior occurrence"): each jump then moves to a lower
  // offset than the last, so loops are impossible.
  size_t run_start = pos;
  size_t resume = 0;
  bool jumped = false;
  int hops = 0;
  size_t n = 0;
  for (;;) {
    if (p >= msg.size()) return false;
    const uint8_t len = msg[p];
    if ((len & kPointerBits) == kPointerBits) {
      if (p + 1 >= msg.size()) return false;
      const size_t target = (size_t{len & 0x3fu} << 8) | msg[p + 1];
      if (target >= run_start || ++hops > kMaxPointerHops) return false;
      if (!jumped) resume = p + 2;
      jumped = true;
      p = target;
      run_start = target;
      continue;
    }
    if ((len & kPointerBits) != 0) return false;  // 01/10: extended label types
    if (len == 0) break;
    // The label, its length octet and the root that must still follow.
    if (p + 1 + len > msg.size() || n + 1 + len + 1 > kMaxName) return false;
    std::memcpy(out.bytes.data() + n, msg.data() + p, size_t{1} + len);
    n += size_t{1} + len;
    p += size_t{1} + len;
  }
  out.bytes[n++] = 0;
  out.size = static_cast<uint16_t>(n);
  pos = jumped ? resume : p + 1;
  return true;
}

bool read_header(std::span<const uint8_t> msg, Header& out) noexcept {
  if (msg.size() < kHeaderSize) return false;
  out.id = get16(msg, 0);
  out.flags = get16(msg, 2);
  out.qdcount = get16(msg, 4);
  out.ancount = get16(msg, 6);
  out.nscount = get16(msg, 8);
  out.arcount = get16(msg, 10);
  return true;
}

bool read_question(std::span<const uint8_t> msg, size_t& pos, Question& out) noexcept {
  size_t p = pos;
  if (!read_name(msg, p, out.name)) return false;
  if (p + 4 > msg.size()) return false;
  out.qtype = get16(msg, p);
  out.qclass = get16(msg, p + 2);
  pos = p + 4;
  return true;
}

bool read_records(std::span<const uint8_t> msg, size_t pos, const Header& header,
                  Edns& edns) noexcept {
  const size_t before_additional = size_t{header.ancount} + header.nscount;
  const size_t total = before_additional + header.arcount;
  Name owner;
  for (size_t i = 0; i < total; ++i) {
    if (!read_name(msg, pos, owner)) return false;
    if (pos + 10 > msg.size()) return false;
    const uint16_t type = get16(msg, pos);
    const uint16_t klass = get16(msg, pos + 2);
    const uint32_t ttl = get32(msg, pos + 4);
    const size_t rdlength = get16(msg, pos + 8);
    pos += 10;
    if (pos + rdlength > msg.size()) return false;
    if (type == rrtype::kOpt) {
      // RFC 6891 §6.1.1: one OPT, owned by the root, in the additional section.
      if (edns.present) {
        edns.repeated = true;
        return false;
      }
      if (i < before_additional || owner.size != 1) return false;
      size_t q = pos;
      while (q < pos + rdlength) {  // {code, length, data} options
        if (q + 4 > pos + rdlength) return false;
        q += 4 + size_t{get16(msg, q + 2)};
      }
      if (q != pos + rdlength) return false;
      edns.present = true;
      edns.udp_payload = klass;
      edns.version = static_cast<uint8_t>(ttl >> 16);
      edns.dnssec_ok = (ttl & 0x8000u) != 0;
    }
    pos += rdlength;
  }
  return true;
}

Writer::Writer(std::span<uint8_t> out) noexcept : out_(out), limit_(out.size()) {}

void Writer::set_limit(size_t limit) noexcept { limit_ = std::min(limit, out_.size()); }

bool Writer::header(uint16_t id) noexcept {
  if (!fits(kHeaderSize)) return false;
  std::memset(out_.data(), 0, kHeaderSize);
  out_[0] = static_cast<uint8_t>(id >> 8);
  out_[1] = static_cast<uint8_t>(id);
  pos_ = kHeaderSize;
  return true;
}

bool Writer::question(const Question& q) noexcept {
  record_start_ = pos_;
  record_entries_ = entries_used_;
  overflow_ = false;
  // Echoed exactly as received (case included) but uncompressed: a pointer
  // in the query would point into the query's bytes, not ours.
  write_name(q.name.wire(), false);
  put_u16(q.qtype);
  put_u16(q.qclass);
  if (overflow_) {
    abort_record();
    return false;
  }
  qdcount_ = 1;
  return true;
}

void Writer::begin_record(std::span<const uint8_t> owner, uint16_t type, uint16_t klass,
                          uint32_t ttl) noexcept {
  record_start_ = pos_;
  record_entries_ = entries_used_;
  overflow_ = false;
  write_name(owner, true);
  put_u16(type);
  put_u16(klass);
  put_u32(ttl);
  rdlength_at_ = pos_;
  put_u16(0);  // patched by end_record()
}

void Writer::put_name(std::span<const uint8_t> wire, bool compress) noexcept {
  write_name(wire, compress);
}

void Writer::abort_record() noexcept {
  pos_ = record_start_;
  entries_used_ = record_entries_;  // entries are in write order
  overflow_ = false;
}

bool Writer::end_record(Section section) noexcept {
  if (overflow_) {
    abort_record();
    return false;
  }
  const size_t rdlength = pos_ - rdlength_at_ - 2;
  out_[rdlength_at_] = static_cast<uint8_t>(rdlength >> 8);
  out_[rdlength_at_ + 1] = static_cast<uint8_t>(rdlength);
  ++counts_[static_cast<size_t>(section)];
  return true;
}

size_t Writer::finish(uint16_t flags) noexcept {
  if (pos_ < kHeaderSize) return 0;
  const uint16_t words[5] = {flags, qdcount_, counts_[0], counts_[1], counts_[2]};
  for (size_t i = 0; i < 5; ++i) {
    out_[2 + 2 * i] = static_cast<uint8_t>(words[i] >> 8);
    out_[3 + 2 * i] = static_cast<uint8_t>(words[i]);
  }
  return pos_;
}

void Writer::write_name(std::span<const uint8_t> wire, bool compress) noexcept {
  std::array<uint8_t, kMaxName / 2 + 1> starts;  // label offsets in `wire`
  size_t labels = 0;
  size_t i = 0;
  while (i < wire.size() && wire[i] != 0 && labels < starts.size()) {
    starts[labels++] = static_cast<uint8_t>(i);
    i += size_t{1} + wire[i];
  }
  if (i >= wire.size() || wire[i] != 0) {  // not a well-formed name: refuse it
    overflow_ = true;
    return;
  }
  // The longest suffix already in the message.  Looked up for uncompressed
  // names too, so only their new suffixes are remembered.
  size_t match = labels;
  int entry = -1;
  for (size_t k = 0; k < labels; ++k) {
    entry = find_suffix(wire.subspan(starts[k], i + 1 - starts[k]));
    if (entry >= 0) {
      match = k;
      break;
    }
  }
  const bool point = compress && entry >= 0;
  const size_t head = point ? starts[match] : i;  // octets written as labels
  if (!fits(head + (point ? 2 : 1))) return;
  for (size_t k = 0; k < match; ++k) remember(pos_ + starts[k], i + 1 - starts[k]);
  std::memcpy(out_.data() + pos_, wire.data(), head);
  pos_ += head;
  if (point) {
    const uint16_t target = entries_[static_cast<size_t>(entry)].offset;
    out_[pos_] = static_cast<uint8_t>(kPointerBits | (target >> 8));
    out_[pos_ + 1] = static_cast<uint8_t>(target);
    pos_ += 2;
  } else {
    out_[pos_++] = 0;
  }
}

int Writer::find_suffix(std::span<const uint8_t> suffix) const noexcept {
  for (size_t e = 0; e < entries_used_; ++e) {
    if (entries_[e].length == suffix.size() && suffix_at(entries_[e].offset, suffix)) {
      return static_cast<int>(e);
    }
  }
  return -1;
}

// Whether the name written at `offset` (following our own pointers) equals
// `suffix`, ignoring ASCII case.  Reads only octets already written.
bool Writer::suffix_at(size_t offset, std::span<const uint8_t> suffix) const noexcept {
  size_t p = offset;
  size_t i = 0;
  int hops = 0;
  for (;;) {
    if (p >= pos_ || i >= suffix.size()) return false;
    const uint8_t len = out_[p];
    if ((len & kPointerBits) == kPointerBits) {
      if (p + 1 >= pos_) return false;
      const size_t target = (size_t{len & 0x3fu} << 8) | out_[p + 1];
      if (target >= p || ++hops > kMaxPointerHops) return false;
      p = target;
      continue;
    }
    if (len != suffix[i]) return false;
    if (len == 0) return true;
    if (p + 1 + len > pos_ || i + 1 + len > suffix.size()) return false;
    // Exact bytes first (zone names are lowercase, most queries too).
    if (std::memcmp(out_.data() + p + 1, suffix.data() + i + 1, len) != 0) {
      for (size_t k = 1; k <= len; ++k) {
        if (fold(out_[p + k]) != fold(suffix[i + k])) return false;
      }
    }
    p += size_t{1} + len;
    i += size_t{1} + len;
  }
}

void Writer::remember(size_t offset, size_t length) noexcept {
  if (entries_used_ >= kMaxEntries || offset > kMaxPointerTarget) return;
  entries_[entries_used_++] = Entry{static_cast<uint16_t>(offset), static_cast<uint16_t>(length)};
}

}  // namespace podgate::ctl::dns
