#include "control/observe/metrics_http.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>
#include <vector>

#include "control/log.hpp"

namespace podgate::ctl {

namespace {

constexpr int kListenBacklog = 64;
constexpr unsigned kAcceptsPerEvent = 16;
constexpr std::string_view kMetricsPath = "/metrics";
// The exposition format's media type (text format 0.0.4).
constexpr std::string_view kMetricsType = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kTextType = "text/plain; charset=utf-8";

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

// "Date: <now>\r\n": the origin server has a clock (RFC 9110 §6.6.1).
std::string date_field() {
  return "Date: " + http_date(std::time(nullptr)) + "\r\n";
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

std::string http_date(std::time_t t) {
  // Names written out: strftime's %a and %b follow the locale.
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

nlohmann::json metrics_counters_json(const MetricsCounters& c, size_t connections) {
  return {{"connections", connections}, {"accepted", c.accepted}, {"requests", c.requests},
          {"errors", c.errors},         {"refused", c.refused},   {"closed_idle", c.closed_idle},
          {"evicted", c.evicted},       {"closed_slow", c.closed_slow}};
}

// While a reply is unsent the connection is not read: a client that stops
// reading is held back by TCP and closed by the idle timeout.
class MetricsServer::Session final : public StreamSession {
 public:
  explicit Session(MetricsServer& server) : server_(server) {}
  Input on_input(StreamConn& conn) override { return server_.handle_request(conn); }
  bool wants_input(const StreamConn& conn) const override {
    return conn.pending_output() == 0 && !body;
  }
  bool has_more_output() const override { return static_cast<bool>(body); }
  // A scrape being written (streamed, or queued whole and not all sent)
  // is never evicted for a newcomer: at the cap, 503 only while every
  // connection is being answered.
  bool mid_reply(const StreamConn& conn) const override {
    return conn.pending_output() != 0 || static_cast<bool>(body);
  }

  BodyPieces body;      // a streamed body being written: the next request waits
  bool chunked = false;  // its pieces as HTTP/1.1 chunks; else close-delimited
  bool close = false;    // close once it is written

 private:
  MetricsServer& server_;
};

Result<std::unique_ptr<MetricsServer>> MetricsServer::open(EventLoop& loop, dp::Ip4 ip,
                                                           uint16_t port, Options options) {
  std::unique_ptr<MetricsServer> s(new MetricsServer(options));
  s->address_ = dp::to_string(ip) + ":" + std::to_string(port);
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return make_error(ErrorCode::kIo, "metrics.listen: cannot open a TCP socket: " +
                                          errno_text(errno));
  }
  const auto fail = [fd](std::string message) {
    close(fd);
    return make_error(ErrorCode::kIo, std::move(message));
  };
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = ip.be;
  sa.sin_port = htons(port);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    const int err = errno;
    return fail("metrics.listen: cannot bind " + s->address_ + ": " + errno_text(err) +
                (err == EADDRINUSE ? " (another server, or a second podgate, holds it; [metrics] "
                                     "listen chooses the address, default \"127.0.0.1:9470\", "
                                     "and \"\" turns /metrics off)"
                                   : ""));
  }
  if (listen(fd, kListenBacklog) != 0) {
    return fail("metrics.listen: cannot listen on " + s->address_ + ": " + errno_text(errno));
  }
  socklen_t len = sizeof sa;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0) {
    s->port_ = ntohs(sa.sin_port);
    s->address_ = dp::to_string(ip) + ":" + std::to_string(s->port_);
  }
  StreamServer::Options o;
  o.max_connections = options.max_connections;
  o.at_cap = StreamServer::AtCap::kEvictStalest;  // refused only when none can go
  o.request_timeout_ms = options.request_timeout_ms;
  o.make_refusal = [] {
    return "HTTP/1.1 503 Service Unavailable\r\n" + date_field() +
           "Content-Type: text/plain; charset=utf-8\r\n"
           "Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n";
  };
  o.idle_timeout_ms = options.idle_timeout_ms;
  o.linger = true;
  o.accepts_per_event = kAcceptsPerEvent;
  MetricsServer* self = s.get();
  s->server_ = std::make_unique<StreamServer>(
      loop, std::move(o), [self](StreamConn&) { return std::make_unique<Session>(*self); });
  if (auto r = s->server_->add_listener(fd); !r) {  // fd is the server's now
    return make_error(ErrorCode::kIo,
                      "metrics.listen: cannot watch " + s->address_ + ": " + r.error().message);
  }
  return s;
}

MetricsServer::~MetricsServer() = default;

MetricsCounters MetricsServer::counters() const noexcept {
  MetricsCounters c = counters_;
  const StreamCounters& sc = server_->counters();
  c.accepted = sc.accepted;
  c.refused = sc.refused;
  c.closed_idle = sc.closed_idle;
  c.evicted = sc.evicted;
  c.closed_slow = sc.closed_slow;
  return c;
}

StreamSession::Input MetricsServer::handle_request(StreamConn& c) {
  auto& session = static_cast<Session&>(c.session());
  if (session.body && !pump(c, session)) return StreamSession::Input::kOk;
  // One request at a time: pipelined ones wait until this reply is out.
  if (c.pending_output() != 0) return StreamSession::Input::kOk;
  std::string& in = c.input();
  // RFC 9112 §2.2: ignore empty lines before the request line.
  const size_t start = in.find_first_not_of("\r\n");
  in.erase(0, start == std::string::npos ? in.size() : start);
  // The head ends at the first empty line.
  size_t head_end = std::string::npos;
  for (size_t pos = 0;;) {
    const size_t nl = in.find('\n', pos);
    if (nl == std::string::npos || nl > kMaxHeaderBytes) break;
    const size_t len = nl - pos - (nl > pos && in[nl - 1] == '\r' ? 1 : 0);
    if (len == 0 && pos > 0) {
      head_end = nl + 1;
      break;
    }
    pos = nl + 1;
  }
  if (head_end == std::string::npos) {
    if (in.size() <= kMaxHeaderBytes) return StreamSession::Input::kOk;  // wait for the rest
    reply(c, 431, "Request Header Fields Too Large", kTextType,
          "request head longer than " + std::to_string(kMaxHeaderBytes) + " bytes\n", false,
          /*close=*/true);
    return StreamSession::Input::kTooLong;
  }
  Request r;
  const std::string head = in.substr(0, head_end);
  in.erase(0, head_end);
  if (std::string why = parse_head(head, r); !why.empty()) {
    reply(c, 400, "Bad Request", kTextType, why + "\n", false, /*close=*/true);
    c.close_after_output();
    return StreamSession::Input::kOk;
  }
  // §9.3: HTTP/1.1 persists unless told to close; HTTP/1.0 only when asked.
  const bool close = r.has_body || r.conn_close || (r.minor == 0 && !r.conn_keep_alive);
  const bool head_only = r.method == "HEAD";
  if (r.method != "GET" && !head_only) {
    reply(c, 405, "Method Not Allowed", kTextType, "only GET and HEAD\n", false, close,
          "Allow: GET, HEAD\r\n");
  } else if (path_of(r.target) != kMetricsPath) {
    reply(c, 404, "Not Found", kTextType, "not found; metrics are at /metrics\n", head_only,
          close);
  } else if (stream_provider_) {
    // Without a length, an HTTP/1.0 body ends where the connection does.
    start_stream(c, session, head_only, /*chunked=*/r.minor >= 1, close || r.minor == 0);
    return StreamSession::Input::kOk;
  } else if (!provider_) {
    reply(c, 503, "Service Unavailable", kTextType, "metrics are not available yet\n", head_only,
          close);
  } else {
    reply(c, 200, "OK", kMetricsType, provider_(), head_only, close);
  }
  if (close) c.close_after_output();
  return StreamSession::Input::kOk;
}

void MetricsServer::reply(StreamConn& c, int status, std::string_view reason,
                          std::string_view content_type, const std::string& body, bool head,
                          bool close, std::string_view extra_headers) {
  ++counters_.requests;
  if (status >= 400) ++counters_.errors;
  std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
  out += reason;
  out += "\r\n";
  out += date_field();
  out += "Content-Type: ";
  out += content_type;
  out += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  out += extra_headers;
  out += close ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n";
  c.write(out);
  if (!head) c.write(body);
}

void MetricsServer::start_stream(StreamConn& c, Session& s, bool head, bool chunked, bool close) {
  ++counters_.requests;
  std::string out = "HTTP/1.1 200 OK\r\n" + date_field() + "Content-Type: ";
  out.append(kMetricsType).append("\r\n");
  if (chunked) out.append("Transfer-Encoding: chunked\r\n");
  out.append(close ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n");
  c.write(out);
  if (!head) {
    s.body = stream_provider_();
    s.chunked = chunked;
    s.close = close;
  } else if (close) {
    c.close_after_output();
  }
}

bool MetricsServer::pump(StreamConn& c, Session& s) {
  if (c.pending_output() >= kBodyPiece) return false;  // the client has not read the last one
  std::string piece;
  bool more = false;
  try {
    more = s.body(piece, kBodyPiece);
  } catch (const std::exception& e) {
    // Part of the body is sent: no error reply can follow it.  A bug (or
    // memory running out) costs this scrape, never the loop.
    log_error(std::string("metrics: a scrape failed midway, closing the connection: ") + e.what());
    ++counters_.errors;
    s.body = nullptr;
    c.close_after_output();
    return false;
  }
  if (s.chunked && !piece.empty()) {
    char size[20];
    const int n = std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
    c.write(std::string_view(size, static_cast<size_t>(n)));
    piece.append("\r\n");
  }
  if (!more && s.chunked) piece.append("0\r\n\r\n");  // the last chunk, no trailer
  c.write(piece);
  if (more) return false;
  s.body = nullptr;
  if (s.close) c.close_after_output();
  return true;
}

}  // namespace podgate::ctl
