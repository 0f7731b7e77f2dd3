#include "control/dns/server.hpp"
#include "control/stream_output.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
constexpr uint64_t kTickEveryMs = 250;
constexpr int kTcpListenBacklog = 1024;
constexpr int kUdpReceiveBuffer = 4 << 20;  // absorbs bursts; capped by net.core.rmem_max
constexpr unsigned kAcceptsPerEvent = 64;

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

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

DnsServer::DnsServer(const DnsConfig& config, Options options)
    : config_(config), options_(options), scratch_(kMaxMessage),
      udp_(std::make_unique<UdpBatch>()) {}

DnsServer::~DnsServer() {
  for (auto& [id, c] : conns_) close(c.fd);
  for (const Listener& l : listeners_) close(l.fd);
}

Result<std::unique_ptr<DnsServer>> DnsServer::open(const DnsConfig& config, Options options) {
  std::unique_ptr<DnsServer> s(new DnsServer(config, options));
  if (auto r = s->bind_all(); !r) return std::move(r).error();
  return s;
}

Result<void> DnsServer::bind_all() {
  for (const DnsListen& l : config_.listen) {
    for (bool tcp : {false, true}) {
      const char* what = tcp ? "TCP" : "UDP";
      int fd = socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        return make_error(ErrorCode::kIo, std::string("dns.listen: cannot open a ") + what +
                                              " socket for " + endpoint_text(l) + ": " +
                                              errno_text(errno));
      }
      listeners_.push_back(Listener{fd, tcp, l.ip.is_zero()});
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
        if (err == EADDRINUSE) hint = " (another DNS server, e.g. a local resolver, holds it?)";
        if (err == EADDRNOTAVAIL) hint = " (no interface of this host has that address)";
        if (err == EACCES) hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE)";
        return make_error(ErrorCode::kIo, std::string("dns.listen: cannot bind ") + what + " " +
                                              endpoint_text(l) + ": " + errno_text(err) + hint);
      }
      if (tcp && listen(fd, kTcpListenBacklog) != 0) {
        return make_error(ErrorCode::kIo, "dns.listen: cannot listen on TCP " + endpoint_text(l) +
                                              ": " + errno_text(errno));
      }
    }
  }
  return {};
}

Result<void> DnsServer::attach(int epoll_fd) {
  epoll_fd_ = epoll_fd;
  for (size_t i = 0; i < listeners_.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kTag | kListenerBit | i;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listeners_[i].fd, &ev) != 0) {
      return make_error(ErrorCode::kIo, "dns: cannot watch a listening socket: " + errno_text(errno));
    }
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

void DnsServer::on_event(const epoll_event& ev, uint64_t now_ms) {
  const uint64_t id = ev.data.u64 & ~kTag;
  if ((id & kListenerBit) != 0) {
    const size_t i = id & ~kListenerBit;
    if (i >= listeners_.size()) return;
    if (listeners_[i].tcp) {
      on_accept(listeners_[i].fd, now_ms);
    } else {
      on_udp(listeners_[i]);
    }
    return;
  }
  on_conn(id, ev.events, now_ms);
}

// ---- UDP ----

void DnsServer::on_udp(const Listener& l) {
  const int fd = l.fd;
  UdpBatch& b = *udp_;
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

void DnsServer::on_accept(int lfd, uint64_t now_ms) {
  for (unsigned k = 0; k < kAcceptsPerEvent; ++k) {
    int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) ++counters_.tcp_errors;  // EMFILE and kin
      return;
    }
    if (conns_.size() >= options_.max_tcp_connections) evict_oldest();
    int one = 1;
    // Pipelined answers go out as soon as they are written.
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const uint64_t id = next_id_++;
    Conn& c = conns_[id];
    c.fd = fd;
    c.last_active_ms = now_ms;
    c.events = EPOLLIN;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kTag | id;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ++counters_.tcp_errors;
      close_conn(id);
      continue;
    }
    ++counters_.tcp_accepted;
  }
}

void DnsServer::evict_oldest() {
  auto oldest = std::min_element(conns_.begin(), conns_.end(), [](const auto& a, const auto& b) {
    return a.second.last_active_ms < b.second.last_active_ms;
  });
  if (oldest == conns_.end()) return;
  ++counters_.tcp_evicted;
  close_conn(oldest->first);
}

void DnsServer::on_conn(uint64_t id, uint32_t events, uint64_t now_ms) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;  // closed earlier in this epoll batch
  Conn& c = it->second;
  if ((events & EPOLLERR) != 0) {
    ++counters_.tcp_errors;
    return close_conn(id);
  }
  const size_t before_out = c.out_pos;
  if ((events & (EPOLLIN | EPOLLHUP)) != 0 && !c.peer_closed &&
      c.out.size() - c.out_pos < options_.max_tcp_backlog) {
    // One read per event (the socket is level-triggered): a connection that
    // sends without pause cannot keep the loop to itself.
    const size_t old = c.in.size();
    c.in.resize(old + kTcpReadChunk);
    ssize_t r = recv(c.fd, c.in.data() + old, kTcpReadChunk, MSG_DONTWAIT);
    if (r > 0) {
      c.in.resize(old + static_cast<size_t>(r));
      c.last_active_ms = now_ms;
    } else {
      c.in.resize(old);
      if (r == 0) {
        c.peer_closed = true;  // the client may half-close after its queries (RFC 7766 §6.2.4)
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        ++counters_.tcp_errors;
        return close_conn(id);
      }
    }
  }
  // Answer, write, and answer again whatever the backlog held back.
  while (true) {
    const size_t in_before = c.in.size();
    answer_tcp(c);
    if (!flush(c)) {
      ++counters_.tcp_errors;
      return close_conn(id);
    }
    if (c.in.size() == in_before) break;  // nothing more answerable now
  }
  if (c.out_pos != before_out) c.last_active_ms = now_ms;
  watch(id, c);
}

void DnsServer::answer_tcp(Conn& c) {
  size_t pos = 0;
  while (c.in.size() - pos >= kLengthPrefix &&
         c.out.size() - c.out_pos < options_.max_tcp_backlog) {
    const size_t len = static_cast<size_t>(c.in[pos]) << 8 | c.in[pos + 1];
    if (c.in.size() - pos - kLengthPrefix < len) break;  // the rest has not arrived
    size_t n = answer({c.in.data() + pos + kLengthPrefix, len}, Source::kTcp, scratch_);
    pos += kLengthPrefix + len;
    if (n == 0) continue;
    // Compact what was written before appending, so `out` stays small.
    if (c.out_pos == c.out.size()) {
      c.out.clear();
      c.out_pos = 0;
    }
    c.out.push_back(static_cast<uint8_t>(n >> 8));
    c.out.push_back(static_cast<uint8_t>(n));
    c.out.insert(c.out.end(), scratch_.begin(), scratch_.begin() + static_cast<ptrdiff_t>(n));
  }
  c.in.erase(c.in.begin(), c.in.begin() + static_cast<ptrdiff_t>(pos));
}

bool DnsServer::flush(Conn& c) {
  return send_pending(c.fd, c.out, c.out_pos, kTcpReadChunk * 4);
}

void DnsServer::watch(uint64_t id, Conn& c) {
  const bool pending = c.out_pos < c.out.size();
  if (c.peer_closed && !pending) return close_conn(id);  // all answered
  uint32_t want = 0;
  if (!c.peer_closed && c.out.size() - c.out_pos < options_.max_tcp_backlog) want |= EPOLLIN;
  if (pending) want |= EPOLLOUT;
  if (want == c.events) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = kTag | id;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev) != 0) {
    ++counters_.tcp_errors;
    return close_conn(id);
  }
  c.events = want;
}

void DnsServer::close_conn(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  close(it->second.fd);  // also leaves the epoll set
  conns_.erase(it);
}

void DnsServer::tick(uint64_t now_ms) {
  if (now_ms - last_tick_ms_ < kTickEveryMs) return;
  last_tick_ms_ = now_ms;
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (now_ms - it->second.last_active_ms >= options_.tcp_idle_ms) {
      ++counters_.tcp_idle_closed;
      close(it->second.fd);
      it = conns_.erase(it);
    } else {
      ++it;
    }
  }
}

std::string DnsServer::format_counters() const {
  static constexpr const char* kRcodeNames[] = {"noerror", "formerr", "servfail", "nxdomain",
                                                "notimp",  "refused"};
  const DnsCounters& c = counters_;
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
      << " tcp_open=" << conns_.size() << " tcp_accepted=" << c.tcp_accepted
      << " tcp_idle_closed=" << c.tcp_idle_closed << " tcp_evicted=" << c.tcp_evicted
      << " tcp_errors=" << c.tcp_errors;
  return out.str();
}

}  // namespace podgate::ctl::dns
