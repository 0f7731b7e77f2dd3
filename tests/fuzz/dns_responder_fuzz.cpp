// libFuzzer target over the DNS responder (tools/fuzz.sh builds and runs
// it with AddressSanitizer, LeakSanitizer and UBSan).  Every input is
// answered over UDP and TCP, into a full buffer and into a small one, and
// the answer must keep the responder's promises:
//   - the length fits the buffer, and a UDP answer fits the negotiated
//     payload (at most our EDNS0 limit);
//   - silence exactly when there is no header or the message is a response;
//   - otherwise a well-formed message (every record whole) with the query's
//     ID, QR set, RA clear and at most one question.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "control/config/config.hpp"
#include "control/dns/dns.hpp"
#include "control/dns/message.hpp"
#include "control/dns/wire.hpp"
#include "control/dns/zone.hpp"

namespace {

using namespace podgate::ctl;
using namespace podgate::ctl::dns;

constexpr uint16_t kOurPayload = 1232;

std::shared_ptr<const Zone> make_zone() {
  std::string toml = R"(
[[ports]]
name = "pods"
device = "net_null0"
address = "172.17.0.1/16"
[[services]]
namespace = "default"
name = "my-app"
cluster_ip = "10.96.0.20"
ports = [ { name = "http", port = 80 } ]
endpoints = [ { ip = "172.17.0.10" }, { ip = "172.17.0.11" } ]
[[services]]
namespace = "default"
name = "mongodb-service"
cluster_ip = "None"
ports = [ { name = "mongo", port = 27017 } ]
endpoints = [
  { ip = "172.17.1.10", hostname = "mongodb-0", subdomain = "mongodb-service" },
  { ip = "172.17.1.11", hostname = "mongodb-1", subdomain = "mongodb-service" },
  { ip = "172.17.1.12", hostname = "mongodb-2", subdomain = "mongodb-service", ready = false },
]
[[services]]
namespace = "default"
name = "ext"
type = "ExternalName"
external_name = "www.example.com"
[[services]]
namespace = "default"
name = "dual"
cluster_ips = ["10.96.0.30", "fd00:10:96::30"]
ports = [ { name = "http", port = 80 } ]
[[services]]
namespace = "default"
name = "v6app"
cluster_ip = "fd00:10:96::31"
ports = [ { name = "http", port = 80 } ]
[[services]]
namespace = "default"
name = "cache6"
cluster_ip = "None"
ports = [ { name = "redis", port = 6379 } ]
endpoints = [
  { ip = "fd00:10:244:6::a", hostname = "cache-0", subdomain = "cache6" },
  { ip = "172.17.6.10", hostname = "cache-0", subdomain = "cache6" },
  { ip = "fd00:10:244:6::b" },
]
[[services]]
namespace = "default"
name = "big"
cluster_ip = "None"
ports = [ { name = "http", port = 80 } ]
endpoints = [
)";
  for (int i = 0; i < 300; ++i) {
    toml += "{ ip = \"10.244." + std::to_string(i / 200) + "." + std::to_string(1 + i % 200) + "\" },\n";
  }
  toml += "]\n";
  auto cfg = parse_config(toml, "fuzz.toml");
  if (!cfg.ok()) {
    std::fprintf(stderr, "fuzz zone config: %s\n", cfg.error().message.c_str());
    std::abort();
  }
  cfg->dns.zone = "cluster.local";
  cfg->dns.ttl = 5;
  cfg->dns.service_ip = podgate::dp::parse_ip4("10.96.0.10");
  cfg->dns.max_udp_payload = kOurPayload;
  return build_zone(*cfg, 1);
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

void answer_once(std::span<const uint8_t> query, const Zone& zone, Transport t, uint32_t rotation,
                 std::span<uint8_t> out) {
  const size_t n = respond(query, zone, QueryContext{t, rotation}, out);
  check(n <= out.size(), "length within the buffer");
  Header h;
  const bool answerable = read_header(query, h) && (h.flags & kFlagQr) == 0;
  if (!answerable || out.size() < kHeaderSize) {
    check(n == 0, "silence without a header, for a response, or without room");
    return;
  }
  check(n >= kHeaderSize, "an answer has a header");
  if (t == Transport::kUdp) check(n <= kOurPayload, "UDP answer within our payload");
  auto m = decode_message(out.first(n));
  check(m.ok(), "answer decodes: whole records, sane counts");
  check(m->header.id == h.id, "ID echoed");
  check((m->header.flags & kFlagQr) != 0, "QR set");
  check((m->header.flags & kFlagRa) == 0, "RA clear");
  check(m->questions.size() <= 1, "at most one question");
  if ((m->header.flags & kFlagTc) == 0 && m->rcode() == Rcode::kNoError && m->answer.empty()) {
    // NODATA names its zone: exactly one SOA in authority.
    check(m->authority.size() == 1 && m->authority[0].type == rrtype::kSoa, "NODATA has an SOA");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::shared_ptr<const Zone> zone = make_zone();
  static std::vector<uint8_t> big(kMaxMessage);
  const std::span<const uint8_t> query(data, size);
  const uint32_t rotation = size > 0 ? data[size - 1] : 0;
  answer_once(query, *zone, Transport::kUdp, rotation, big);
  answer_once(query, *zone, Transport::kTcp, rotation, big);
  // A small caller buffer: sizes around a header and a question.
  std::vector<uint8_t> small(size > 0 ? data[0] % 96 : 0);
  answer_once(query, *zone, Transport::kTcp, rotation, small);
  return 0;
}
