#include "control/dns/server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <system_error>

namespace podgate::ctl::dns {

namespace {

constexpr size_t kUdpBatch = 32;
// The largest UDP message podgate reads or writes: [dns] max_udp_payload
// is at most 4096, and a query larger than that is not a query we answer.
constexpr size_t kUdpBuffer = 4096;
constexpr size_t kTcpReadChunk = 16384;
constexpr size_t kLengthPrefix = 2;  // RFC 7766 §8 (RFC 1035 §4.2.2)
constexpr int kTcpListenBacklog = 1024;
constexpr int kUdpReceiveBuffer = 4 << 20;  // absorbs bursts; capped by net.core.rmem_max
constexpr unsigned kAcceptsPerEvent = 64;

std::string endpoint_text(const DnsListen& l) {
  return dp::to_string(l.ip) + ":" + std::to_string(l.port);
}

}  // namespace

// One batch of datagrams in flight on a UDP socket: recvmmsg fills the
// queries (with the destination address from IP_PKTINFO, so an answer from
// a 0.0.0.0 listener leaves from the address the client asked), sendmmsg
// sends the answers in one system call.
struct DnsServer::UdpBatch {
  static constexpr size_t kControl = CMSG_SPACE(sizeof(in_pktinfo));
  std::array<std::array<uint8_t, kUdpBuffer>, kUdpBatch> in;
  std::array<std::array<uint8_t, kUdpBuffer>, kUdpBatch> out;
  std::array<sockaddr_in, kUdpBatch> peer;
  std::array<iovec, kUdpBatch> in_iov;
  std::array<iovec, kUdpBatch> out_iov;
  std::array<mmsghdr, kUdpBatch> in_msg;
  std::array<mmsghdr, kUdpBatch> out_msg;
  alignas(cmsghdr) std::array<std::array<uint8_t, kControl>, kUdpBatch> in_control;
  alignas(cmsghdr) std::array<std::array<uint8_t, kControl>, kUdpBatch> out_control;
};

// Answers pipelined queries as they complete (RFC 7766 §6.2.1.1); while
// unsent answers fill the backlog, reading pauses (StreamServer's
// OutputFull::kPauseReading) and the queries already read wait.
class DnsServer::TcpSession final : public StreamSession {
 public:
  explicit TcpSession(DnsServer& server) : server_(server) {}
  Input on_input(StreamConn& conn) override {
    server_.answer_tcp(conn);
    return Input::kOk;  // a length prefix cannot announce more than a message may hold
  }

 private:
  DnsServer& server_;
};

DnsServer::DnsServer(EventLoop& loop, const DnsConfig& config, Options options)
    : loop_(loop), config_(config), options_(options), scratch_(kMaxMessage),
      udp_batch_(std::make_unique<UdpBatch>()) {
  StreamServer::Options o;
  o.max_connections = options_.max_tcp_connections;
  o.at_cap = StreamServer::AtCap::kEvictStalest;
  o.request_timeout_ms = options_.tcp_request_ms;
  // A whole message (2-byte length + up to 65535 bytes) plus a read: a
  // partial message never stops reading.
  o.max_input = kLengthPrefix + 65535 + kTcpReadChunk;
  o.max_output = options_.max_tcp_backlog;
  o.output_full = StreamServer::OutputFull::kPauseReading;
  o.idle_timeout_ms = options_.tcp_idle_ms;
  o.accepts_per_event = kAcceptsPerEvent;
  tcp_ = std::make_unique<StreamServer>(loop_, std::move(o), [this](StreamConn& c) {
    int one = 1;
    // Pipelined answers go out as soon as they are written.
    setsockopt(c.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return std::make_unique<TcpSession>(*this);
  });
}

DnsServer::~DnsServer() {
  tcp_.reset();
  for (const Listener& l : udp_) {
    loop_.remove(l.watch);
    close(l.fd);
  }
}

Result<std::unique_ptr<DnsServer>> DnsServer::open(EventLoop& loop, const DnsConfig& config,
                                                   Options options) {
  std::unique_ptr<DnsServer> s(new DnsServer(loop, config, options));
  if (auto r = s->bind_all(); !r) return std::move(r).error();
  return s;
}

DnsCounters DnsServer::counters() const noexcept {
  DnsCounters c = counters_;
  const StreamCounters& tcp = tcp_->counters();
  c.tcp_accepted = tcp.accepted;
  c.tcp_idle_closed = tcp.closed_idle;
  c.tcp_evicted = tcp.evicted;
  c.tcp_slow_closed = tcp.closed_slow;
  c.tcp_errors = tcp.errors;
  return c;
}

Result<void> DnsServer::bind_all() {
  for (const DnsListen& l : config_.listen) {
    for (bool tcp : {false, true}) {
      if (auto r = bind_one(l, tcp); !r) return r;
    }
  }
  return {};
}

Result<void> DnsServer::listen_tcp(const DnsListen& l) { return bind_one(l, true); }

Result<void> DnsServer::bind_one(const DnsListen& l, bool tcp) {
  const char* what = tcp ? "TCP" : "UDP";
  int fd = socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return make_error(ErrorCode::kIo, std::string("dns.listen: cannot open a ") + what +
                                          " socket for " + endpoint_text(l) + ": " +
                                          errno_text(errno));
  }
  // Ours to close from here: UDP sockets in udp_, a TCP one below until
  // the StreamServer takes it.
  if (!tcp) udp_.push_back(Listener{fd, l.ip.is_zero(), EventLoop::WatchId::kNone});
  const auto fail = [fd, tcp](std::string message) {
    if (tcp) close(fd);
    return make_error(ErrorCode::kIo, std::move(message));
  };
  int one = 1;
  // SO_REUSEADDR on TCP only: it lets a restarted podgate bind while old
  // connections sit in TIME_WAIT.  On a UDP socket Linux would let two
  // servers share the port silently, splitting the queries between them.
  if (tcp) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (!tcp) {
    if (l.ip.is_zero()) setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
    int size = kUdpReceiveBuffer;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);  // best effort
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(l.port);
  sa.sin_addr.s_addr = l.ip.be;
  if (bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    int err = errno;
    std::string hint;
    if (err == EADDRINUSE) {
      hint = " (another DNS server, a local resolver or a second podgate, holds it; "
             "[dns] listen chooses the address, default [\"127.0.0.1:53\"], and [] "
             "turns the kernel listener off)";
    }
    if (err == EADDRNOTAVAIL) hint = " (no interface of this host has that address)";
    if (err == EACCES) hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE)";
    return fail(std::string("dns.listen: cannot bind ") + what + " " + endpoint_text(l) +
                ": " + errno_text(err) + hint);
  }
  if (tcp && listen(fd, kTcpListenBacklog) != 0) {
    return fail("dns.listen: cannot listen on TCP " + endpoint_text(l) + ": " +
                errno_text(errno));
  }
  Result<void> watched;
  if (tcp) {
    watched = tcp_->add_listener(fd);
  } else {
    const size_t i = udp_.size() - 1;
    auto w = loop_.add(fd, EPOLLIN, [this, i](uint32_t) { on_udp(udp_[i]); });
    if (w) udp_[i].watch = *w;
    if (!w) watched = std::move(w).error();
  }
  if (!watched) {
    return make_error(ErrorCode::kIo, std::string("dns.listen: cannot watch ") + what + " " +
                                          endpoint_text(l) + ": " + watched.error().message);
  }
  return {};
}

size_t DnsServer::answer(std::span<const uint8_t> query, Source source,
                         std::span<uint8_t> out) noexcept {
  ++counters_.queries[static_cast<size_t>(source)];
  if (!zone_) {
    ++counters_.dropped;  // only before the first snapshot: never in a running appliance
    return 0;
  }
  QueryContext ctx;
  ctx.transport = source == Source::kTcp ? Transport::kTcp : Transport::kUdp;
  ctx.rotation = rotation_++;
  size_t n = respond(query, *zone_, ctx, out);
  if (n == 0) {
    ++counters_.silent;
    return 0;
  }
  // Header (RFC 1035 §4.1.1): TC is bit 1 of octet 2, RCODE the low 4 bits of octet 3.
  ++counters_.rcodes[out[3] & 0x0f];
  if ((out[2] & 0x02) != 0) ++counters_.truncated;
  return n;
}

// ---- UDP ----

void DnsServer::on_udp(const Listener& l) {
  const int fd = l.fd;
  UdpBatch& b = *udp_batch_;
  unsigned handled = 0;
  while (handled < options_.udp_budget) {
    for (size_t i = 0; i < kUdpBatch; ++i) {
      b.in_iov[i] = iovec{b.in[i].data(), b.in[i].size()};
      msghdr& h = b.in_msg[i].msg_hdr;
      h = msghdr{};
      h.msg_name = &b.peer[i];
      h.msg_namelen = sizeof(sockaddr_in);
      h.msg_iov = &b.in_iov[i];
      h.msg_iovlen = 1;
      if (l.wildcard) {
        h.msg_control = b.in_control[i].data();
        h.msg_controllen = b.in_control[i].size();
      }
    }
    int n = recvmmsg(fd, b.in_msg.data(), kUdpBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;  // EAGAIN: drained (errors on a UDP socket are per datagram)
    handled += static_cast<unsigned>(n);

    size_t replies = 0;
    for (int i = 0; i < n; ++i) {
      const msghdr& h = b.in_msg[i].msg_hdr;
      if ((h.msg_flags & MSG_TRUNC) != 0) {
        ++counters_.queries[static_cast<size_t>(Source::kUdp)];
        ++counters_.dropped;  // larger than any query we answer
        continue;
      }
      size_t len = answer({b.in[i].data(), b.in_msg[i].msg_len}, Source::kUdp,
                          {b.out[replies].data(), b.out[replies].size()});
      if (len == 0) continue;
      msghdr& o = b.out_msg[replies].msg_hdr;
      o = msghdr{};
      b.peer[replies] = b.peer[i];  // replies <= i: the slot is free
      o.msg_name = &b.peer[replies];
      o.msg_namelen = sizeof(sockaddr_in);
      b.out_iov[replies] = iovec{b.out[replies].data(), len};
      o.msg_iov = &b.out_iov[replies];
      o.msg_iovlen = 1;
      // A wildcard listener answers from the address the query was sent to
      // (RFC 1123 §6.1.3.5, multihomed hosts); a bound one does so anyway.
      for (cmsghdr* c = l.wildcard ? CMSG_FIRSTHDR(const_cast<msghdr*>(&h)) : nullptr; c != nullptr;
           c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
        if (c->cmsg_level != IPPROTO_IP || c->cmsg_type != IP_PKTINFO) continue;
        in_pktinfo got;
        std::memcpy(&got, CMSG_DATA(c), sizeof got);
        in_pktinfo reply{};
        reply.ipi_spec_dst = got.ipi_addr;
        o.msg_control = b.out_control[replies].data();
        o.msg_controllen = UdpBatch::kControl;
        cmsghdr* rc = CMSG_FIRSTHDR(&o);
        rc->cmsg_level = IPPROTO_IP;
        rc->cmsg_type = IP_PKTINFO;
        rc->cmsg_len = CMSG_LEN(sizeof reply);
        std::memcpy(CMSG_DATA(rc), &reply, sizeof reply);
        break;
      }
      ++replies;
    }
    for (size_t sent = 0; sent < replies;) {
      int r = sendmmsg(fd, b.out_msg.data() + sent, static_cast<unsigned>(replies - sent),
                       MSG_DONTWAIT);
      if (r > 0) {
        sent += static_cast<size_t>(r);
      } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
        counters_.dropped += replies - sent;  // UDP: the client retries
        break;
      } else if (errno != EINTR) {
        ++counters_.dropped;  // this one failed (e.g. unreachable peer): skip it
        ++sent;
      }
    }
    if (static_cast<size_t>(n) < kUdpBatch) return;  // the socket is likely drained
  }
}

// ---- TCP (RFC 7766) ----

void DnsServer::answer_tcp(StreamConn& c) {
  const std::string& in = c.input();
  const auto* bytes = reinterpret_cast<const uint8_t*>(in.data());
  size_t pos = 0;
  while (in.size() - pos >= kLengthPrefix && c.pending_output() < options_.max_tcp_backlog) {
    const size_t len = static_cast<size_t>(bytes[pos]) << 8 | bytes[pos + 1];
    if (in.size() - pos - kLengthPrefix < len) break;  // the rest has not arrived
    size_t n = answer({bytes + pos + kLengthPrefix, len}, Source::kTcp, scratch_);
    pos += kLengthPrefix + len;
    if (n == 0) continue;
    const char prefix[kLengthPrefix] = {static_cast<char>(n >> 8), static_cast<char>(n & 0xff)};
    c.write({prefix, kLengthPrefix});
    c.write({reinterpret_cast<const char*>(scratch_.data()), n});
  }
  c.input().erase(0, pos);
}

std::string DnsServer::format_counters() const {
  static constexpr const char* kRcodeNames[] = {"noerror", "formerr", "servfail", "nxdomain",
                                                "notimp",  "refused"};
  const DnsCounters c = counters();
  std::ostringstream out;
  out << "dns: queries_udp=" << c.queries[0] << " queries_tcp=" << c.queries[1]
      << " queries_dataplane=" << c.queries[2];
  for (size_t r = 0; r < c.rcodes.size(); ++r) {
    if (r < std::size(kRcodeNames)) {
      out << " " << kRcodeNames[r] << "=" << c.rcodes[r];
    } else if (c.rcodes[r] != 0) {
      out << " rcode" << r << "=" << c.rcodes[r];
    }
  }
  out << " truncated=" << c.truncated << " silent=" << c.silent << " dropped=" << c.dropped
      << " tcp_open=" << tcp_connections() << " tcp_accepted=" << c.tcp_accepted
      << " tcp_idle_closed=" << c.tcp_idle_closed << " tcp_evicted=" << c.tcp_evicted
      << " tcp_slow_closed=" << c.tcp_slow_closed
      << " tcp_errors=" << c.tcp_errors;
  return out.str();
}

}  // namespace podgate::ctl::dns
