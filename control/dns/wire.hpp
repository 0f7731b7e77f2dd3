// DNS wire format (RFC 1035 §4, EDNS0 RFC 6891): a bounded reader for the
// parts of a query podgate looks at, and a writer that builds an answer in a
// caller-provided buffer with name compression and whole-record truncation.
//
// Every byte of a query is hostile: the reader never reads past the message,
// follows compression pointers iteratively and only backwards (so a loop is
// impossible, and a hop limit bounds the walk anyway), and enforces the
// RFC 1035 §2.3.4 limits (labels <= 63 octets, names <= 255 octets in wire
// form).  Nothing here allocates; the responder runs it per query.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace podgate::ctl::dns {

// RR types (RFC 1035 §3.2.2, RFC 3596, RFC 2782, RFC 6891, RFC 1995).
namespace rrtype {
inline constexpr uint16_t kA = 1;
inline constexpr uint16_t kNs = 2;
inline constexpr uint16_t kCname = 5;
inline constexpr uint16_t kSoa = 6;
inline constexpr uint16_t kPtr = 12;
inline constexpr uint16_t kTxt = 16;
inline constexpr uint16_t kAaaa = 28;
inline constexpr uint16_t kSrv = 33;
inline constexpr uint16_t kOpt = 41;
inline constexpr uint16_t kIxfr = 251;
inline constexpr uint16_t kAxfr = 252;
inline constexpr uint16_t kAny = 255;
}  // namespace rrtype

// Classes (RFC 1035 §3.2.4).
inline constexpr uint16_t kClassIn = 1;
inline constexpr uint16_t kClassCh = 3;

// RCODEs (RFC 1035 §4.1.1; BADVERS is extended, RFC 6891 §9).
enum class Rcode : uint16_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNxDomain = 3,
  kNotImp = 4,
  kRefused = 5,
  kBadVers = 16,
};

// Header flag bits (RFC 1035 §4.1.1, RFC 4035 §3.2 for AD/CD).
inline constexpr uint16_t kFlagQr = 0x8000;
inline constexpr uint16_t kOpcodeMask = 0x7800;
inline constexpr uint16_t kFlagAa = 0x0400;
inline constexpr uint16_t kFlagTc = 0x0200;
inline constexpr uint16_t kFlagRd = 0x0100;
inline constexpr uint16_t kFlagRa = 0x0080;
inline constexpr uint16_t kFlagAd = 0x0020;
inline constexpr uint16_t kFlagCd = 0x0010;
inline constexpr uint16_t kRcodeMask = 0x000f;

inline constexpr uint8_t kOpcodeQuery = 0;

inline constexpr size_t kHeaderSize = 12;
inline constexpr size_t kMaxName = 255;   // wire form, root octet included
inline constexpr size_t kMaxLabel = 63;
inline constexpr size_t kMinUdpPayload = 512;  // RFC 1035 §4.2.1, RFC 6891 §6.2.5
inline constexpr size_t kOptRecordSize = 11;   // root name + type..rdlength, no options
// A name's compression pointers are followed at most this often.  Pointers
// must go strictly backwards, which alone bounds a walk by the message
// length; this cap bounds it by the label count of the longest legal name.
inline constexpr int kMaxPointerHops = 128;

struct Header {
  uint16_t id = 0;
  uint16_t flags = 0;
  uint16_t qdcount = 0;
  uint16_t ancount = 0;
  uint16_t nscount = 0;
  uint16_t arcount = 0;

  uint8_t opcode() const noexcept { return static_cast<uint8_t>((flags & kOpcodeMask) >> 11); }
};

// A domain name in uncompressed wire form: length-prefixed labels and the
// root's zero octet, at most kMaxName octets.
struct Name {
  std::array<uint8_t, kMaxName> bytes{};
  uint16_t size = 0;  // octets used, root included; 0 = no name

  std::span<const uint8_t> wire() const noexcept { return {bytes.data(), size}; }
};

// ASCII-only case folding (RFC 4343 §3: DNS compares names case-insensitively
// in ASCII only; other octets compare exactly).
constexpr uint8_t fold(uint8_t c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<uint8_t>(c + ('a' - 'A')) : c;
}

// `out` = `in` with every label octet folded to lowercase.
void lowercase(const Name& in, Name& out) noexcept;

// Reads the (possibly compressed) name at `pos` into `out` and moves `pos`
// past it: past its root octet or its first compression pointer.  False on
// any malformation: truncation, a label type other than 00/11 (RFC 6891
// §5 retired the others), a pointer that does not go strictly backwards of
// the labels it interrupts, too many hops, or more than kMaxName octets.
bool read_name(std::span<const uint8_t> msg, size_t& pos, Name& out) noexcept;

// The 12-octet header; false when the message is shorter.
bool read_header(std::span<const uint8_t> msg, Header& out) noexcept;

struct Question {
  Name name;  // as received: its case is echoed in the answer (DNS 0x20)
  uint16_t qtype = 0;
  uint16_t qclass = 0;
};

// Reads one question at `pos` (just after the header); moves `pos` past it.
bool read_question(std::span<const uint8_t> msg, size_t& pos, Question& out) noexcept;

// EDNS0 as the query's OPT pseudo-record states it (RFC 6891 §6.1.2-3).
struct Edns {
  bool present = false;
  uint16_t udp_payload = 0;  // the requestor's UDP payload size
  uint8_t version = 0;
  bool dnssec_ok = false;    // DO bit (RFC 3225), copied into the answer
  bool repeated = false;     // a second OPT was found: FORMERR (RFC 6891 §6.1.1)
};

// Walks the answer, authority and additional sections after the question
// (their counts from `header`), checking each record is whole, and picks up
// the OPT record.  False (FORMERR) on a truncated or malformed record, more
// than one OPT, an OPT whose owner is not the root, or OPT options whose
// lengths do not add up to its RDLENGTH (RFC 6891 §6.1.1-2).
bool read_records(std::span<const uint8_t> msg, size_t pos, const Header& header,
                  Edns& edns) noexcept;

enum class Section : uint8_t { kAnswer = 0, kAuthority = 1, kAdditional = 2 };

// Builds one DNS message in `out`.  Records are written whole or not at
// all: begin_record() .. put_*() .. end_record() either commits the record
// or, when any octet would pass the limit, rolls the message back to where
// the record began (compression entries included) and returns false, so a
// truncated answer always ends on a record boundary (RFC 2181 §9).
//
// Name compression (RFC 1035 §4.1.4) uses a fixed-size table of the
// offsets where name suffixes were written; a candidate is verified against
// the bytes already written (ASCII case folded), so an entry can never
// produce a wrong pointer.
class Writer {
 public:
  explicit Writer(std::span<uint8_t> out) noexcept;

  // Bytes the writer may use: at most out.size().  Octets kept in reserve
  // (for the OPT record, written last) are subtracted from the limit until
  // release_reserve().
  void set_limit(size_t limit) noexcept;
  void reserve(size_t octets) noexcept { reserve_ = octets; }
  void release_reserve() noexcept { reserve_ = 0; }

  // Header first (counts are filled in by finish()), then the question.
  bool header(uint16_t id) noexcept;
  bool question(const Question& q) noexcept;

  void begin_record(std::span<const uint8_t> owner, uint16_t type, uint16_t klass,
                    uint32_t ttl) noexcept;
  void put_u16(uint16_t v) noexcept {
    if (!fits(2)) return;
    out_[pos_] = static_cast<uint8_t>(v >> 8);
    out_[pos_ + 1] = static_cast<uint8_t>(v);
    pos_ += 2;
  }
  void put_u32(uint32_t v) noexcept {
    put_u16(static_cast<uint16_t>(v >> 16));
    put_u16(static_cast<uint16_t>(v));
  }
  void put_bytes(std::span<const uint8_t> bytes) noexcept {
    if (!fits(bytes.size())) return;
    std::memcpy(out_.data() + pos_, bytes.data(), bytes.size());
    pos_ += bytes.size();
  }
  // A domain name; `compress` = false writes it whole (SRV targets, RFC 2782)
  // but still lets later names point into it.
  void put_name(std::span<const uint8_t> wire, bool compress) noexcept;
  bool end_record(Section section) noexcept;
  void abort_record() noexcept;  // rolls back the record begun last

  uint16_t count(Section s) const noexcept { return counts_[static_cast<size_t>(s)]; }
  size_t size() const noexcept { return pos_; }

  // Writes flags and section counts into the header; returns the length.
  size_t finish(uint16_t flags) noexcept;

 private:
  // Suffixes remembered for compression.  A linear scan filtered by the
  // suffix's length is cheaper than hashing every name for the handful of
  // names a typical answer holds; large TCP answers stop remembering at
  // the cap and compress against what is already there.
  static constexpr size_t kMaxEntries = 384;
  struct Entry {
    uint16_t offset;  // where the suffix starts in the message (< 0x4000)
    uint16_t length;  // its uncompressed wire length
  };

  size_t room() const noexcept {
    const size_t limit = limit_ > reserve_ ? limit_ - reserve_ : 0;
    return limit > pos_ ? limit - pos_ : 0;
  }
  // Whether `n` more octets fit; once one write did not, none does until
  // the record is rolled back.
  bool fits(size_t n) noexcept {
    if (overflow_ || n > room()) {
      overflow_ = true;
      return false;
    }
    return true;
  }
  void write_name(std::span<const uint8_t> wire, bool compress) noexcept;
  int find_suffix(std::span<const uint8_t> suffix) const noexcept;
  bool suffix_at(size_t offset, std::span<const uint8_t> suffix) const noexcept;
  void remember(size_t offset, size_t length) noexcept;

  std::span<uint8_t> out_;
  size_t limit_;
  size_t reserve_ = 0;
  size_t pos_ = 0;
  size_t record_start_ = 0;
  size_t record_entries_ = 0;
  size_t rdlength_at_ = 0;
  bool overflow_ = false;
  uint16_t qdcount_ = 0;
  std::array<uint16_t, 3> counts_{};
  size_t entries_used_ = 0;
  std::array<Entry, kMaxEntries> entries_;
};

}  // namespace podgate::ctl::dns
