#include "control/metrics_http.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

#include "control/stream_output.hpp"

namespace podgate::ctl {

namespace {

constexpr size_t kReadChunk = 16384;
constexpr size_t kCompactAfter = 64 * 1024;
constexpr int kListenBacklog = 64;
constexpr unsigned kAcceptsPerEvent = 16;
constexpr std::string_view kMetricsPath = "/metrics";
// The exposition format's media type (text format 0.0.4).
constexpr std::string_view kMetricsType = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kTextType = "text/plain; charset=utf-8";

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

// RFC 9110 §5.6.2: token = 1*tchar.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether a comma-separated header value lists `token` (case-insensitive).
bool lists_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

// One parsed request head (RFC 9112 §2-§5).
struct Request {
  std::string_view method;
  std::string_view target;
  int minor = 1;  // HTTP/1.minor
  bool has_host = false;
  bool has_body = false;
  bool conn_close = false;
  bool conn_keep_alive = false;
};

// Parses a request head (up to and including its empty line): "" when
// valid, else why not.
std::string parse_head(std::string_view head, Request& r) {
  bool first = true;
  while (!head.empty()) {
    const size_t nl = head.find('\n');
    std::string_view line = head.substr(0, nl);
    head.remove_prefix(nl == std::string_view::npos ? head.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() && !first) break;  // the empty line that ends the head
    if (first) {
      first = false;
      // request-line = method SP request-target SP HTTP-version (§3)
      const size_t sp1 = line.find(' ');
      const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
      if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
        return "malformed request line";
      }
      r.method = line.substr(0, sp1);
      r.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
      const std::string_view version = line.substr(sp2 + 1);
      if (!is_token(r.method)) return "malformed method";
      if (r.target.empty()) return "empty request target";
      for (char c : r.target) {
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return "malformed request target";
      }
      if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." || version[7] < '0' ||
          version[7] > '9') {
        return "unsupported HTTP version";
      }
      r.minor = version[7] - '0';
      continue;
    }
    // field-line = field-name ":" OWS field-value OWS (§5); no obs-fold (§5.2).
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
      return "malformed header field";
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "host")) {
      r.has_host = true;
    } else if (iequals(name, "content-length")) {
      r.has_body = r.has_body || value.find_first_not_of('0') != std::string_view::npos;
    } else if (iequals(name, "transfer-encoding")) {
      r.has_body = true;
    } else if (iequals(name, "connection")) {
      r.conn_close = r.conn_close || lists_token(value, "close");
      r.conn_keep_alive = r.conn_keep_alive || lists_token(value, "keep-alive");
    }
  }
  // §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host.
  if (r.minor >= 1 && !r.has_host) return "HTTP/1.1 request without Host";
  return "";
}

// The path of an origin-form or absolute-form target, without the query.
std::string_view path_of(std::string_view target) {
  if (target.substr(0, 7) == "http://" || target.substr(0, 8) == "https://") {
    const size_t slash = target.find('/', target.find("//") + 2);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  return target.substr(0, target.find('?'));
}

}  // namespace

nlohmann::json metrics_counters_json(const MetricsCounters& c, size_t connections) {
  return {{"connections", connections}, {"accepted", c.accepted}, {"requests", c.requests},
          {"errors", c.errors},         {"refused", c.refused},   {"closed_idle", c.closed_idle}};
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::open(dp::Ip4 ip, uint16_t port,
                                                           Options options) {
  std::unique_ptr<MetricsServer> s(new MetricsServer(options));
  s->address_ = dp::to_string(ip) + ":" + std::to_string(port);
  s->listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->listen_fd_ < 0) {
    return make_error(ErrorCode::kIo, "metrics.listen: cannot open a TCP socket: " +
                                          errno_text(errno));
  }
  const int one = 1;
  setsockopt(s->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = ip.be;
  sa.sin_port = htons(port);
  if (bind(s->listen_fd_, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    return make_error(ErrorCode::kIo,
                      "metrics.listen: cannot bind " + s->address_ + ": " + errno_text(errno));
  }
  if (listen(s->listen_fd_, kListenBacklog) != 0) {
    return make_error(ErrorCode::kIo,
                      "metrics.listen: cannot listen on " + s->address_ + ": " + errno_text(errno));
  }
  socklen_t len = sizeof sa;
  if (getsockname(s->listen_fd_, reinterpret_cast<sockaddr*>(&sa), &len) == 0) {
    s->port_ = ntohs(sa.sin_port);
    s->address_ = dp::to_string(ip) + ":" + std::to_string(s->port_);
  }
  return s;
}

MetricsServer::~MetricsServer() {
  for (auto& [id, c] : conns_) close(c.fd);
  if (listen_fd_ >= 0) close(listen_fd_);
}

Result<void> MetricsServer::attach(int epoll_fd) {
  epoll_fd_ = epoll_fd;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kTag | kListenerId;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) {
    return make_error(ErrorCode::kIo,
                      "metrics.listen: cannot watch " + address_ + ": " + errno_text(errno));
  }
  return {};
}

void MetricsServer::on_event(const epoll_event& ev, uint64_t now_ms) {
  const uint64_t id = ev.data.u64 & ~kTagMask;
  if (id == kListenerId) return on_accept(now_ms);
  on_conn(id, ev.events, now_ms);
}

void MetricsServer::on_accept(uint64_t now_ms) {
  for (unsigned k = 0; k < kAcceptsPerEvent; ++k) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or EMFILE and kin: try again on the next event
    if (conns_.size() >= options_.max_connections) {
      ++counters_.refused;
      static constexpr std::string_view kBusy =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
          "Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n";
      (void)!send(fd, kBusy.data(), kBusy.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      close(fd);
      continue;
    }
    const uint64_t id = next_id_++;
    Conn& c = conns_[id];
    c.fd = fd;
    c.events = EPOLLIN;
    c.last_active_ms = now_ms;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kTag | id;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close_conn(id);
      continue;
    }
    ++counters_.accepted;
  }
}

void MetricsServer::on_conn(uint64_t id, uint32_t events, uint64_t now_ms) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;  // closed earlier in this epoll batch
  Conn& c = it->second;
  if ((events & EPOLLERR) != 0) return close_conn(id);
  char buf[kReadChunk];
  if (c.lingering) {
    // After a closing reply: read and discard until the client closes, so
    // unread input does not turn our close into a reset that could destroy
    // the reply before the client reads it (RFC 9112 §9.6).  Bounded by
    // the idle timeout counted from the reply, not refreshed by input.
    ssize_t r = recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      close_conn(id);
    }
    return;
  }
  const bool idle = c.out_pos == c.out.size();
  if ((events & (EPOLLIN | EPOLLHUP)) != 0 && idle) {
    // One read per event (level-triggered): no client keeps the loop to itself.
    ssize_t r = recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (r == 0) return close_conn(id);  // requests are answered as they come: none pending
    if (r < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return close_conn(id);
    } else {
      c.in.append(buf, static_cast<size_t>(r));
      c.last_active_ms = now_ms;
    }
  }
  // Answer, write, and answer the next pipelined request while the socket
  // takes the replies whole.
  while (true) {
    if (c.out_pos == c.out.size() && !c.close_after_reply && !handle_request(c)) break;
    const size_t before = c.out.size() - c.out_pos;
    if (!send_pending(c.fd, c.out, c.out_pos, kCompactAfter)) return close_conn(id);
    if (c.out.size() - c.out_pos != before) c.last_active_ms = now_ms;
    if (c.out_pos != c.out.size()) break;  // the socket is full: EPOLLOUT
    if (c.close_after_reply) {
      shutdown(c.fd, SHUT_WR);
      c.lingering = true;
      c.in.clear();
      c.last_active_ms = now_ms;
      break;
    }
  }
  watch(id, c);
}

bool MetricsServer::handle_request(Conn& c) {
  // RFC 9112 §2.2: ignore empty lines before the request line.
  const size_t start = c.in.find_first_not_of("\r\n");
  c.in.erase(0, start == std::string::npos ? c.in.size() : start);
  // The head ends at the first empty line.
  size_t head_end = std::string::npos;
  for (size_t pos = 0;;) {
    const size_t nl = c.in.find('\n', pos);
    if (nl == std::string::npos || nl > kMaxHeaderBytes) break;
    const size_t len = nl - pos - (nl > pos && c.in[nl - 1] == '\r' ? 1 : 0);
    if (len == 0 && pos > 0) {
      head_end = nl + 1;
      break;
    }
    pos = nl + 1;
  }
  if (head_end == std::string::npos) {
    if (c.in.size() <= kMaxHeaderBytes) return false;  // wait for the rest
    c.close_after_reply = true;
    reply(c, 431, "Request Header Fields Too Large", kTextType,
          "request head longer than " + std::to_string(kMaxHeaderBytes) + " bytes\n", false);
    return true;
  }
  Request r;
  const std::string head = c.in.substr(0, head_end);
  c.in.erase(0, head_end);
  if (std::string why = parse_head(head, r); !why.empty()) {
    c.close_after_reply = true;
    reply(c, 400, "Bad Request", kTextType, why + "\n", false);
    return true;
  }
  // §9.3: HTTP/1.1 persists unless told to close; HTTP/1.0 only when asked.
  c.close_after_reply = r.has_body || r.conn_close || (r.minor == 0 && !r.conn_keep_alive);
  const bool head_only = r.method == "HEAD";
  if (r.method != "GET" && !head_only) {
    reply(c, 405, "Method Not Allowed", kTextType, "only GET and HEAD\n", false,
          "Allow: GET, HEAD\r\n");
  } else if (path_of(r.target) != kMetricsPath) {
    reply(c, 404, "Not Found", kTextType, "not found; metrics are at /metrics\n", head_only);
  } else if (!provider_) {
    reply(c, 503, "Service Unavailable", kTextType, "metrics are not available yet\n", head_only);
  } else {
    reply(c, 200, "OK", kMetricsType, provider_(), head_only);
  }
  return true;
}

void MetricsServer::reply(Conn& c, int status, std::string_view reason,
                          std::string_view content_type, const std::string& body, bool head,
                          std::string_view extra_headers) {
  ++counters_.requests;
  if (status >= 400) ++counters_.errors;
  if (c.out_pos == c.out.size()) {
    c.out.clear();
    c.out_pos = 0;
  }
  c.out += "HTTP/1.1 " + std::to_string(status) + " ";
  c.out += reason;
  c.out += "\r\nContent-Type: ";
  c.out += content_type;
  c.out += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  c.out += extra_headers;
  c.out += c.close_after_reply ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n";
  if (!head) c.out += body;
}

void MetricsServer::watch(uint64_t id, Conn& c) {
  const uint32_t want = c.out_pos < c.out.size() ? uint32_t{EPOLLOUT} : uint32_t{EPOLLIN};
  if (want == c.events) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = kTag | id;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev) != 0) return close_conn(id);
  c.events = want;
}

void MetricsServer::tick(uint64_t now_ms) {
  std::vector<uint64_t> idle;
  for (const auto& [id, c] : conns_) {
    if (now_ms >= c.last_active_ms && now_ms - c.last_active_ms >= options_.idle_timeout_ms) {
      idle.push_back(id);
    }
  }
  for (uint64_t id : idle) {
    ++counters_.closed_idle;
    close_conn(id);
  }
}

void MetricsServer::close_conn(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  close(it->second.fd);  // also leaves the epoll set
  conns_.erase(it);
}

}  // namespace podgate::ctl
