// Whole-message decoding and query building.  See message.hpp.
#include "control/dns/message.hpp"

#include "dataplane/net.hpp"

#include <algorithm>
#include <cstdio>

namespace podgate::ctl::dns {
namespace {

uint16_t get16(std::span<const uint8_t> m, size_t at) {
  return static_cast<uint16_t>((m[at] << 8) | m[at + 1]);
}

uint32_t get32(std::span<const uint8_t> m, size_t at) {
  return (uint32_t{get16(m, at)} << 16) | get16(m, at + 2);
}

void put16(std::vector<uint8_t>& v, uint16_t x) {
  v.push_back(static_cast<uint8_t>(x >> 8));
  v.push_back(static_cast<uint8_t>(x));
}

Error bad(std::string what) {
  return make_error(ErrorCode::kInvalidRequest, std::move(what));
}

// Presentation form of the rdata at [at, at + length).  Names inside it
// may be compressed against the whole message.
Result<std::string> rdata_text(std::span<const uint8_t> msg, size_t at, size_t length,
                               uint16_t type) {
  const size_t end = at + length;
  auto name_at = [&](size_t& p) -> std::optional<std::string> {
    Name n;
    if (!read_name(msg, p, n) || p > end) return std::nullopt;
    return to_text(n);
  };
  size_t p = at;
  std::string out;
  switch (type) {
    case rrtype::kA:
      if (length != 4) return bad("A rdata of " + std::to_string(length) + " octets");
      return std::to_string(msg[at]) + "." + std::to_string(msg[at + 1]) + "." +
             std::to_string(msg[at + 2]) + "." + std::to_string(msg[at + 3]);
    case rrtype::kAaaa: {
      if (length != 16) return bad("AAAA rdata of " + std::to_string(length) + " octets");
      dp::Ip6 ip;
      std::copy(msg.begin() + static_cast<std::ptrdiff_t>(at), msg.begin() + static_cast<std::ptrdiff_t>(at + 16),
                ip.bytes.begin());
      return dp::to_string(ip);
    }
    case rrtype::kCname:
    case rrtype::kPtr:
    case rrtype::kNs: {
      auto n = name_at(p);
      if (!n || p != end) return bad("malformed name in rdata");
      return *n;
    }
    case rrtype::kSrv: {
      if (length < 7) return bad("SRV rdata too short");
      out = std::to_string(get16(msg, at)) + " " + std::to_string(get16(msg, at + 2)) + " " +
            std::to_string(get16(msg, at + 4)) + " ";
      p += 6;
      auto n = name_at(p);
      if (!n || p != end) return bad("malformed SRV target");
      return out + *n;
    }
    case rrtype::kSoa: {
      auto m = name_at(p);
      auto r = m ? name_at(p) : std::nullopt;
      if (!r || end - p != 20) return bad("malformed SOA rdata");
      out = *m + " " + *r;
      for (int i = 0; i < 5; ++i) {
        out += ' ';
        out += std::to_string(get32(msg, p + 4 * i));
      }
      return out;
    }
    case rrtype::kTxt:
      while (p < end) {
        const size_t len = msg[p];
        if (p + 1 + len > end) return bad("malformed TXT rdata");
        if (!out.empty()) out += " ";
        out += '"';
        out.append(reinterpret_cast<const char*>(msg.data() + p + 1), len);
        out += '"';
        p += 1 + len;
      }
      return out;
    default:
      return "\\# " + std::to_string(length);
  }
}

}  // namespace

std::string to_text(const Name& name) {
  std::string out;
  size_t i = 0;
  while (i < name.size && name.bytes[i] != 0) {
    const size_t len = name.bytes[i];
    for (size_t k = 1; k <= len && i + k < name.size; ++k) {
      const uint8_t c = name.bytes[i + k];
      if (c <= ' ' || c >= 0x7f || c == '.' || c == '\\') {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\%03u", unsigned{c});
        out += buf;
      } else {
        out += static_cast<char>(c);
      }
    }
    out += '.';
    i += 1 + len;
  }
  return out.empty() ? "." : out;
}

Rcode Message::rcode() const noexcept {
  uint16_t r = header.flags & kRcodeMask;
  if (const Record* o = opt()) r = static_cast<uint16_t>(r | ((o->ttl >> 24) << 4));
  return static_cast<Rcode>(r);
}

const Record* Message::opt() const noexcept {
  for (const Record& r : additional) {
    if (r.type == rrtype::kOpt) return &r;
  }
  return nullptr;
}

Result<Message> decode_message(std::span<const uint8_t> msg) {
  Message m;
  if (!read_header(msg, m.header)) return bad("shorter than a header");
  size_t pos = kHeaderSize;
  for (uint16_t i = 0; i < m.header.qdcount; ++i) {
    Question q;
    if (!read_question(msg, pos, q)) return bad("malformed question " + std::to_string(i));
    m.questions.push_back(DecodedQuestion{to_text(q.name), q.qtype, q.qclass});
  }
  const uint16_t counts[3] = {m.header.ancount, m.header.nscount, m.header.arcount};
  std::vector<Record>* sections[3] = {&m.answer, &m.authority, &m.additional};
  for (int s = 0; s < 3; ++s) {
    for (uint16_t i = 0; i < counts[s]; ++i) {
      Name owner;
      const std::string where = "section " + std::to_string(s) + " record " + std::to_string(i);
      if (!read_name(msg, pos, owner) || pos + 10 > msg.size()) return bad(where + ": truncated");
      Record r;
      r.owner = to_text(owner);
      r.type = get16(msg, pos);
      r.klass = get16(msg, pos + 2);
      r.ttl = get32(msg, pos + 4);
      const size_t length = get16(msg, pos + 8);
      pos += 10;
      if (pos + length > msg.size()) return bad(where + ": rdata past the end");
      if (r.type == rrtype::kOpt) {
        r.data = "udp=" + std::to_string(r.klass) + " version=" +
                 std::to_string((r.ttl >> 16) & 0xff) + " do=" +
                 std::to_string((r.ttl >> 15) & 1) + " ercode=" + std::to_string(r.ttl >> 24);
      } else {
        auto text = rdata_text(msg, pos, length, r.type);
        if (!text) return bad(where + ": " + text.error().message);
        r.data = *text;
      }
      pos += length;
      sections[s]->push_back(std::move(r));
    }
  }
  if (pos != msg.size()) return bad(std::to_string(msg.size() - pos) + " octets after the records");
  return m;
}

std::vector<uint8_t> make_query(std::string_view name, uint16_t qtype, const QueryOptions& opt) {
  std::vector<uint8_t> q;
  put16(q, opt.id);
  put16(q, opt.flags);
  put16(q, 1);
  put16(q, 0);
  put16(q, 0);
  put16(q, opt.edns_payload ? 1 : 0);
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  while (!name.empty()) {
    const size_t dot = name.find('.');
    const std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > kMaxLabel) return {};
    q.push_back(static_cast<uint8_t>(label.size()));
    q.insert(q.end(), label.begin(), label.end());
    name = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
  }
  q.push_back(0);
  if (q.size() - kHeaderSize > kMaxName) return {};
  put16(q, qtype);
  put16(q, opt.qclass);
  if (opt.edns_payload) {  // RFC 6891 §6.1.2
    q.push_back(0);
    put16(q, rrtype::kOpt);
    put16(q, *opt.edns_payload);
    q.push_back(0);  // extended RCODE
    q.push_back(opt.edns_version);
    put16(q, opt.dnssec_ok ? 0x8000 : 0);
    put16(q, 0);
  }
  return q;
}

}  // namespace podgate::ctl::dns
