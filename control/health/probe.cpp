// Health probes on kernel sockets; see probe.hpp.
#include "control/health/probe.hpp"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "control/dns/wire.hpp"

namespace podgate::ctl::health {

const char* outcome_name(Outcome o) noexcept {
  switch (o) {
    case Outcome::kOk: return "ok";
    case Outcome::kTimeout: return "timeout";
    case Outcome::kRefused: return "refused";
    case Outcome::kUnreachable: return "unreachable";
    case Outcome::kHttpStatus: return "http_status";
    case Outcome::kBadReply: return "bad_reply";
    case Outcome::kDnsRcode: return "dns_rcode";
    case Outcome::kDnsAnswer: return "dns_answer";
    case Outcome::kError: return "error";
  }
  return "error";
}

std::string reason_text(const ProbeResult& r) {
  switch (r.outcome) {
    case Outcome::kHttpStatus: return "http " + std::to_string(r.detail);
    case Outcome::kDnsRcode: {
      static const char* const kNames[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"};
      return std::string("dns ") + (r.detail < 6 ? kNames[r.detail] : ("rcode " + std::to_string(r.detail)).c_str());
    }
    case Outcome::kDnsAnswer: return "dns: no matching answer";
    case Outcome::kBadReply: return "bad reply";
    case Outcome::kError: return std::string("error: ") + std::strerror(static_cast<int>(r.detail));
    default: return outcome_name(r.outcome);
  }
}

namespace {

// A DNS query for `name` (dot-separated, no trailing dot needed), id 0.
std::string dns_query(const std::string& name, uint16_t type) {
  std::string q;
  const uint8_t header[12] = {0, 0, 0x01, 0x00 /* RD */, 0, 1, 0, 0, 0, 0, 0, 0};
  q.append(reinterpret_cast<const char*>(header), sizeof header);
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q += static_cast<char>(dot - start);  // is_dns_name() checked 1..63
    q.append(name, start, dot - start);
    start = dot + 1;
  }
  q += '\0';
  q += static_cast<char>(type >> 8);
  q += static_cast<char>(type & 0xff);
  q += '\0';
  q += '\1';  // class IN
  return q;
}

ProbeResult errno_result(int err) {
  switch (err) {
    case ECONNREFUSED: return {Outcome::kRefused, 0};
    case ECONNRESET: return {Outcome::kRefused, 0};
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENETDOWN:
    case EHOSTDOWN: return {Outcome::kUnreachable, 0};
    case ETIMEDOUT: return {Outcome::kTimeout, 0};
    default: return {Outcome::kError, static_cast<uint32_t>(err)};
  }
}

uint16_t read_u16(std::span<const uint8_t> m, size_t at) noexcept {
  return static_cast<uint16_t>(m[at] << 8 | m[at + 1]);
}

}  // namespace

ProbePlan make_plan(const HealthCheckConfig& check, const dp::IpAddr& ip, uint16_t port) {
  ProbePlan p;
  p.kind = check.kind;
  p.ip = ip;
  p.port = port;
  if (check.kind == HealthKind::kHttp) {
    // Appended, not "[" + text: g++ 12 at -O3 warns falsely (-Wrestrict).
    std::string host = check.host;
    if (host.empty()) {
      if (ip.is_v6()) host.append("[");
      host.append(dp::to_string(ip));
      if (ip.is_v6()) host.append("]");
      host.append(":").append(std::to_string(port));
    }
    p.request = check.method + " " + check.path + " HTTP/1.1\r\nHost: " + host +
                "\r\nUser-Agent: podgate-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n";
    p.expect_status = check.expect_status;
  } else if (check.kind == HealthKind::kDns) {
    p.request = dns_query(check.query, check.query_type);
    p.query_type = check.query_type;
    p.expect_address = check.expect_address;
  }
  return p;
}

namespace {

// The status of one status line at the start of `head`, as http_status().
std::optional<uint16_t> status_line(std::span<const uint8_t> head) noexcept {
  // RFC 9112 section 4: HTTP-version SP 3DIGIT SP reason-phrase CRLF.
  size_t eol = 0;
  while (eol < head.size() && head[eol] != '\n') ++eol;
  if (eol == head.size()) {
    // Not whole yet; a line that cannot be a status line is refused early.
    static constexpr char kPrefix[] = "HTTP/";
    for (size_t i = 0; i < head.size() && i < 5; ++i) {
      if (head[i] != static_cast<uint8_t>(kPrefix[i])) return 0;
    }
    return head.size() > 256 ? std::optional<uint16_t>(0) : std::nullopt;
  }
  if (eol < 12 || std::memcmp(head.data(), "HTTP/1.", 7) != 0 || head[8] != ' ') return 0;
  uint16_t status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (head[i] < '0' || head[i] > '9') return 0;
    status = static_cast<uint16_t>(status * 10 + (head[i] - '0'));
  }
  if (status < 100 || status > 599) return 0;
  return status;
}

// The length of the header section at the start of `head`, its empty line
// included (RFC 9112 section 2.2: a recipient may take a bare LF as a line
// end); 0 while it is not whole.
size_t header_section_length(std::span<const uint8_t> head) noexcept {
  for (size_t i = 0; i + 1 < head.size(); ++i) {
    if (head[i] != '\n') continue;
    if (head[i + 1] == '\n') return i + 2;
    if (head[i + 1] == '\r' && i + 2 < head.size() && head[i + 2] == '\n') return i + 3;
  }
  return 0;
}

}  // namespace

std::optional<uint16_t> http_status(std::span<const uint8_t> head) noexcept {
  // RFC 9110 section 15.2: a client parses the 1xx (interim) responses
  // before the final one, even unasked (103 Early Hints, 102 Processing),
  // and judges the final one.
  static constexpr size_t kMaxInterim = 8192;
  const size_t size = head.size();
  for (;;) {
    const auto status = status_line(head);
    if (!status || *status == 0 || *status >= 200) return status;
    const size_t length = header_section_length(head);
    if (length == 0) return size > kMaxInterim ? std::optional<uint16_t>(0) : std::nullopt;
    head = head.subspan(length);
  }
}

bool status_expected(uint16_t status, const std::vector<StatusRange>& expect) noexcept {
  for (const StatusRange& r : expect) {
    if (status >= r.lo && status <= r.hi) return true;
  }
  return false;
}

ProbeResult check_dns_reply(std::span<const uint8_t> reply, uint16_t id, const ProbePlan& plan) noexcept {
  dns::Header h;
  if (!dns::read_header(reply, h) || h.id != id || (h.flags & dns::kFlagQr) == 0 || h.qdcount != 1) {
    return {Outcome::kBadReply, 0};
  }
  const uint16_t rcode = h.flags & dns::kRcodeMask;
  if (rcode != 0) return {Outcome::kDnsRcode, rcode};
  size_t pos = dns::kHeaderSize;
  dns::Question q;
  if (!dns::read_question(reply, pos, q) || q.qtype != plan.query_type) return {Outcome::kBadReply, 0};
  for (uint16_t i = 0; i < h.ancount; ++i) {
    dns::Name owner;
    if (!dns::read_name(reply, pos, owner) || pos + 10 > reply.size()) return {Outcome::kBadReply, 0};
    const uint16_t type = read_u16(reply, pos);
    const uint16_t rdlength = read_u16(reply, pos + 8);
    pos += 10;
    if (pos + rdlength > reply.size()) return {Outcome::kBadReply, 0};
    if (type == plan.query_type) {
      if (!plan.expect_address) return {Outcome::kOk, 0};
      if (rdlength == 4 && std::memcmp(reply.data() + pos, &plan.expect_address->be, 4) == 0) {
        return {Outcome::kOk, 0};
      }
    }
    pos += rdlength;
  }
  return {Outcome::kDnsAnswer, 0};
}

Probe::Started Probe::start(const ProbePlan& plan, uint16_t id) {
  close();
  id_ = id;
  buf_.clear();
  const bool udp = plan.kind == HealthKind::kDns;
  const int family = plan.ip.is_v6() ? AF_INET6 : AF_INET;
  fd_ = ::socket(family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return Started{-1, 0, ProbeResult{Outcome::kError, static_cast<uint32_t>(errno)}};
  if (plan.kind == HealthKind::kTcp) {
    // A connect check sends nothing: it ends with a reset, so 10,000 probes
    // a second leave no TIME_WAIT behind.  An HTTP check reads until the
    // server closes (Connection: close): the server is the active closer
    // and keeps the TIME_WAIT, and sees no reset in its logs.
    const linger reset{1, 0};
    (void)::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  }
  settled_.reset();
  read_ = 0;
  sockaddr_storage to{};
  socklen_t to_size = 0;
  if (plan.ip.is_v6()) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&to);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(plan.port);
    std::memcpy(&in6->sin6_addr, plan.ip.bytes.data(), 16);
    to_size = sizeof(sockaddr_in6);
  } else {
    auto* in4 = reinterpret_cast<sockaddr_in*>(&to);
    in4->sin_family = AF_INET;
    in4->sin_port = htons(plan.port);
    in4->sin_addr.s_addr = plan.ip.as_v4().be;
    to_size = sizeof(sockaddr_in);
  }
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&to), to_size) != 0 && errno != EINPROGRESS) {
    const int err = errno;
    close();
    return Started{-1, 0, errno_result(err)};
  }
  if (udp) {
    std::string q = plan.request;
    q[0] = static_cast<char>(id >> 8);
    q[1] = static_cast<char>(id & 0xff);
    if (::send(fd_, q.data(), q.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(q.size())) {
      const int err = errno;
      close();
      return Started{-1, 0, errno_result(err)};
    }
    next_events_ = EPOLLIN;
  } else {
    connecting_ = true;
    next_events_ = EPOLLOUT;
  }
  return Started{fd_, next_events_, std::nullopt};
}

std::optional<ProbeResult> Probe::on_ready(const ProbePlan& plan, uint32_t events) {
  if (connecting_) {
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return std::nullopt;
    return connected(plan);
  }
  return readable(plan);
}

std::optional<ProbeResult> Probe::connected(const ProbePlan& plan) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) return errno_result(err);
  connecting_ = false;
  if (plan.kind == HealthKind::kTcp) return ProbeResult{Outcome::kOk, 0};
  // A request of a few hundred bytes fits a fresh socket's send buffer.
  const ssize_t n = ::send(fd_, plan.request.data(), plan.request.size(), MSG_NOSIGNAL);
  if (n < 0) return errno_result(errno);
  if (static_cast<size_t>(n) != plan.request.size()) return ProbeResult{Outcome::kError, EMSGSIZE};
  next_events_ = EPOLLIN;
  return std::nullopt;
}

std::optional<ProbeResult> Probe::readable(const ProbePlan& plan) {
  uint8_t buf[1500];
  const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return std::nullopt;
    // A reset after the status line (a server closing with SO_LINGER 0, or
    // with the request unread) ends a response already judged.
    if (settled_) return settled_;
    return errno_result(errno);
  }
  if (plan.kind == HealthKind::kDns) {
    ProbeResult r = check_dns_reply({buf, static_cast<size_t>(n)}, id_, plan);
    // A datagram that is not the answer to our query (a stray one with
    // another id) is ignored; the probe waits for its own until the timeout.
    if (r.outcome == Outcome::kBadReply) return std::nullopt;
    return r;
  }
  if (n == 0) {
    if (settled_) return settled_;  // the server closed after its response
    return ProbeResult{Outcome::kBadReply, 0};  // closed before a status line
  }
  if (settled_) {
    // The rest of the response is read and dropped, up to a limit; a server
    // that sends more is cut off with a reset.
    read_ += static_cast<size_t>(n);
    if (read_ > kMaxDrain) {
      const linger reset{1, 0};
      (void)::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
      return settled_;
    }
    return std::nullopt;
  }
  buf_.insert(buf_.end(), buf, buf + n);
  auto status = http_status(buf_);
  if (!status) return std::nullopt;
  if (*status == 0) return ProbeResult{Outcome::kBadReply, 0};
  settled_ = status_expected(*status, plan.expect_status) ? ProbeResult{Outcome::kOk, *status}
                                                          : ProbeResult{Outcome::kHttpStatus, *status};
  read_ = buf_.size();
  buf_.clear();
  return std::nullopt;
}

void Probe::close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  connecting_ = false;
  settled_.reset();
  next_events_ = 0;
}

}  // namespace podgate::ctl::health
