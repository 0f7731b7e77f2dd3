// Whole DNS messages as values: a decoder that turns an answer into
// records with presentation-form rdata, and a query builder.  For tests,
// tools and the fuzzer's invariants; it allocates, so the answer path never
// uses it (that is wire.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "control/dns/wire.hpp"
#include "control/result.hpp"

namespace podgate::ctl::dns {

struct Record {
  std::string owner;  // presentation form with the message's case: "My-App.default.svc.cluster.local."
  uint16_t type = 0;
  uint16_t klass = 0;
  uint32_t ttl = 0;
  // rdata in presentation form (RFC 1035 §5.1), names fully qualified:
  //   A "10.96.0.20", SRV "0 50 27017 mongodb-0.mongodb-service...local.",
  //   SOA "mname rname serial refresh retry expire minimum", TXT "\"1.1.0\"",
  //   CNAME/PTR/NS "target.", OPT "udp=1232 version=0 do=0 ercode=0",
  //   anything else "\\# <length>" (RFC 3597 §5).
  std::string data;
};

struct DecodedQuestion {
  std::string name;  // presentation form, case as received
  uint16_t qtype = 0;
  uint16_t qclass = 0;
};

struct Message {
  Header header;
  std::vector<DecodedQuestion> questions;
  std::vector<Record> answer;
  std::vector<Record> authority;
  std::vector<Record> additional;

  Rcode rcode() const noexcept;  // with the OPT record's upper bits, if any
  const Record* opt() const noexcept;
};

// Decodes a whole message; an error names the first malformed part.
// Trailing octets after the last counted record are an error too.
Result<Message> decode_message(std::span<const uint8_t> msg);

// "a.B.c." for the wire name; "." for the root.  Octets outside printable
// ASCII, '.' and '\\' inside labels are written as \DDD (RFC 1035 §5.1).
std::string to_text(const Name& name);

struct QueryOptions {
  uint16_t id = 0x1234;
  uint16_t flags = kFlagRd;       // opcode and other bits as given
  uint16_t qclass = kClassIn;
  std::optional<uint16_t> edns_payload;  // adds an OPT record
  uint8_t edns_version = 0;
  bool dnssec_ok = false;
};

// A one-question query for `name` (dotted, case kept, trailing dot
// optional; "." is the root) — empty when the name cannot be encoded.
std::vector<uint8_t> make_query(std::string_view name, uint16_t qtype, const QueryOptions& opt = {});

}  // namespace podgate::ctl::dns
