// One endpoint's health as its probes found it (issue 13): the rise/fall
// state machine of HAProxy and keepalived, pure so tests drive it result by
// result.  Control thread only.
//
// An endpoint starts healthy (a check added to a running service, or a
// restart, must not take a working service down while the first probes are
// out); `fall` failures in a row make it unhealthy, `rise` successes in a
// row healthy again.  A result that changes nothing in between (a success
// while healthy, a failure while unhealthy) resets the opposite run, so a
// flapping endpoint stays where it is until one side wins `rise` or `fall`
// times running.
#pragma once

#include <cstdint>
#include <string>

namespace podgate::ctl::health {

// What one probe found.
enum class Outcome : uint8_t {
  kOk,
  kTimeout,      // no answer within the check's timeout
  kRefused,      // TCP RST, or ICMP port unreachable for UDP
  kUnreachable,  // no route, host unreachable, network down
  kHttpStatus,   // an HTTP status outside expect_status
  kBadReply,     // not HTTP, not the DNS answer to our query, cut short
  kDnsRcode,     // the DNS answer's RCODE is not NOERROR
  kDnsAnswer,    // NOERROR without the record (or address) expected
  kError,        // a local error (no sockets left, ...)
};

const char* outcome_name(Outcome o) noexcept;

struct ProbeResult {
  Outcome outcome = Outcome::kOk;
  uint32_t detail = 0;  // the HTTP status (kHttpStatus), the RCODE (kDnsRcode), errno (kError)
  bool ok() const noexcept { return outcome == Outcome::kOk; }
};

// "ok", "timeout", "refused", "http 503", "dns NXDOMAIN", "error: ..." for
// people and for podgatectl.
std::string reason_text(const ProbeResult& r);

// Whether a reply at `now_ms` to a probe sent at `started_ms` came too late:
// a probe has `timeout_ms` exactly, so one answered at the deadline has
// timed out (the expiry may fire first in that same turn of the loop).
constexpr bool timed_out(uint64_t started_ms, uint64_t now_ms, uint32_t timeout_ms) noexcept {
  return now_ms >= started_ms + timeout_ms;
}

class HealthState {
 public:
  bool healthy() const noexcept { return healthy_; }
  uint32_t successes() const noexcept { return successes_; }  // in a row
  uint32_t failures() const noexcept { return failures_; }    // in a row

  // Counts one result; true when the endpoint turned healthy or unhealthy.
  bool record(bool ok, uint32_t rise, uint32_t fall) noexcept {
    if (ok) {
      failures_ = 0;
      if (successes_ < UINT32_MAX) ++successes_;
      if (!healthy_ && successes_ >= rise) {
        healthy_ = true;
        return true;
      }
    } else {
      successes_ = 0;
      if (failures_ < UINT32_MAX) ++failures_;
      if (healthy_ && failures_ >= fall) {
        healthy_ = false;
        return true;
      }
    }
    return false;
  }

 private:
  bool healthy_ = true;
  uint32_t successes_ = 0;
  uint32_t failures_ = 0;
};

}  // namespace podgate::ctl::health
