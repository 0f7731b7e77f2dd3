// MetricsServer: real loopback clients against the server driven by an
// EventLoop in the test thread.  Clients are non-blocking and the loop is
// pumped between their steps, so nothing waits on wall-clock time; the
// idle timeout runs on the loop's fake clock, moved by tick().
#include "control/observe/metrics_http.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <ctime>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "control/observe/prometheus.hpp"

namespace podgate::ctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kMaxRounds = 500;  // hang guard for loops that pump the server

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  bool closed = false;  // the server closed the connection
};

class MetricsHttpTest : public ::testing::Test {
 protected:
  void SetUp() override { open_server(MetricsServer::Options{}); }

  void TearDown() override {
    for (int fd : clients_) close(fd);
    server_.reset();
    loop_.reset();
  }

  void open_server(MetricsServer::Options options) {
    auto loop = EventLoop::create([this] { return clock_; });
    ASSERT_TRUE(loop) << loop.error().message;
    loop_ = std::move(*loop);
    auto s = MetricsServer::open(*loop_, *dp::parse_ip4("127.0.0.1"), 0, options);
    ASSERT_TRUE(s) << s.error().message;
    server_ = std::move(*s);
    server_->set_body_provider([this] {
      ++provided_;
      return body_;
    });
  }
  // The test's server replaced by one of at most `max_connections`.
  void reopen_with_cap(size_t max_connections) {
    TearDown();
    clients_.clear();
    MetricsServer::Options options;
    options.max_connections = max_connections;
    open_server(options);
  }

  // Handles the events that are ready (waiting at most timeout_ms), at now_.
  void pump(int timeout_ms = 5) {
    clock_ = now_;
    loop_->run_once(timeout_ms);
  }

  // Runs the timers due at `at` (the clock goes back to now_ on the next pump).
  void tick(uint64_t at) {
    clock_ = at;
    loop_->run_once(0);
  }

  // A client connected to the server (loopback connect completes in the
  // kernel, before accept), non-blocking from then on.
  int connect_client() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(server_->port());
    EXPECT_EQ(connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa), 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    clients_.push_back(fd);
    return fd;
  }

  void send_text(int fd, const std::string& text) {
    size_t off = 0;
    for (int round = 0; off < text.size() && round < kMaxRounds; ++round) {
      ssize_t r = send(fd, text.data() + off, text.size() - off, MSG_NOSIGNAL);
      if (r > 0) off += static_cast<size_t>(r);
      pump(0);
    }
    ASSERT_EQ(off, text.size());
  }

  // Reads what the socket holds now; false once the peer closed or reset.
  bool drain(int fd) {
    char buf[65536];
    while (true) {
      ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r > 0) {
        received_[fd].append(buf, static_cast<size_t>(r));
        continue;
      }
      if (r == 0) return false;
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
  }

  // Pumps the server until one whole response arrived on fd (framed by
  // Content-Length), or the server closed it.
  Response read_response(int fd, bool head_request = false) {
    Response resp;
    for (int round = 0; round < kMaxRounds; ++round) {
      pump();
      const bool open = drain(fd);
      std::string& in = received_[fd];
      const size_t end = in.find("\r\n\r\n");
      if (end != std::string::npos) {
        const std::string head = in.substr(0, end);
        size_t line_end = head.find("\r\n");
        const std::string status_line = head.substr(0, line_end);
        resp.status = std::stoi(status_line.substr(9, 3));
        while (line_end != std::string::npos) {
          const size_t next = head.find("\r\n", line_end + 2);
          const std::string line = head.substr(line_end + 2, next - line_end - 2);
          const size_t colon = line.find(':');
          std::string name = line.substr(0, colon);
          for (char& c : name) c = static_cast<char>(std::tolower(c));
          resp.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
          line_end = next;
        }
        const size_t length =
            head_request ? 0 : std::stoul(resp.headers.count("content-length") != 0
                                              ? resp.headers["content-length"]
                                              : "0");
        if (in.size() >= end + 4 + length) {
          resp.body = in.substr(end + 4, length);
          in.erase(0, end + 4 + length);
          resp.closed = !open;
          return resp;
        }
      }
      if (!open) {
        resp.closed = true;
        return resp;
      }
    }
    ADD_FAILURE() << "no whole response after " << kMaxRounds << " rounds";
    return resp;
  }

  // Whether the server closes fd (EOF or reset) within the pump guard.
  bool closed_by_server(int fd) {
    for (int round = 0; round < kMaxRounds / 5; ++round) {
      pump();
      if (!drain(fd)) return true;
    }
    return false;
  }

  // Pumps until the head of a reply arrived on fd (its request was consumed).
  bool reply_head_arrived(int fd) {
    for (int round = 0; round < kMaxRounds; ++round) {
      pump(0);
      if (!drain(fd)) return false;
      if (received_[fd].find("\r\n\r\n") != std::string::npos) return true;
    }
    return false;
  }

  // Pumps until the server has accepted `n` connections in all.
  void accept_until(uint64_t n) {
    for (int round = 0; round < kMaxRounds && server_->counters().accepted +
                                                      server_->counters().refused < n;
         ++round) {
      pump();
    }
    ASSERT_EQ(server_->counters().accepted + server_->counters().refused, n);
  }

  static std::string get(const std::string& path, const std::string& extra = "") {
    return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + "\r\n";
  }

  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<MetricsServer> server_;
  std::vector<int> clients_;
  std::map<int, std::string> received_;
  std::string body_ = "# HELP podgate_up up\n# TYPE podgate_up gauge\npodgate_up 1\n";
  int provided_ = 0;
  uint64_t now_ = 1000;
  uint64_t clock_ = 1000;  // what the loop reads
};

TEST_F(MetricsHttpTest, BindsAnEphemeralPortWhenAskedForZero) {
  EXPECT_NE(server_->port(), 0);
}

TEST_F(MetricsHttpTest, GetMetricsReturnsTheProvidersBodyWithContentLength) {
  int fd = connect_client();
  send_text(fd, get("/metrics"));
  Response r = read_response(fd);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, body_);
  EXPECT_EQ(r.headers["content-length"], std::to_string(body_.size()));
  EXPECT_EQ(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_FALSE(r.closed);
  EXPECT_EQ(provided_, 1);
  EXPECT_EQ(server_->counters().requests, 1u);
  EXPECT_EQ(server_->counters().errors, 0u);
}

TEST_F(MetricsHttpTest, KeepsAnHttp11ConnectionOpenForTheNextRequest) {
  int fd = connect_client();
  send_text(fd, get("/metrics"));
  EXPECT_EQ(read_response(fd).status, 200);
  body_ = "second\n";
  send_text(fd, get("/metrics?ignored=1"));
  Response r = read_response(fd);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "second\n");
  EXPECT_EQ(server_->counters().accepted, 1u);
}

TEST_F(MetricsHttpTest, AnswersPipelinedRequestsInOrder) {
  int fd = connect_client();
  send_text(fd, get("/metrics") + get("/other") + get("/metrics"));
  EXPECT_EQ(read_response(fd).status, 200);
  EXPECT_EQ(read_response(fd).status, 404);
  EXPECT_EQ(read_response(fd).status, 200);
}

TEST_F(MetricsHttpTest, HeadSendsTheHeadersWithoutTheBody) {
  int fd = connect_client();
  send_text(fd, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  Response r = read_response(fd, /*head_request=*/true);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-length"], std::to_string(body_.size()));
  EXPECT_EQ(r.body, "");
  // No body bytes followed the head: the next reply starts right away.
  send_text(fd, get("/nope"));
  EXPECT_EQ(read_response(fd).status, 404);
}

TEST_F(MetricsHttpTest, ClosesAfterTheReplyWhenTheClientAsks) {
  int fd = connect_client();
  send_text(fd, get("/metrics", "Connection: close\r\n"));
  Response r = read_response(fd);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["connection"], "close");
  EXPECT_TRUE(closed_by_server(fd));
}

TEST_F(MetricsHttpTest, ClosesAnHttp10ConnectionUnlessKeepAliveIsAsked) {
  int a = connect_client();
  send_text(a, "GET /metrics HTTP/1.0\r\n\r\n");
  EXPECT_EQ(read_response(a).status, 200);
  EXPECT_TRUE(closed_by_server(a));
  int b = connect_client();
  send_text(b, "GET /metrics HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
  Response r = read_response(b);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["connection"], "keep-alive");
  EXPECT_FALSE(closed_by_server(b));
}

TEST_F(MetricsHttpTest, OtherPathsAre404) {
  int fd = connect_client();
  send_text(fd, get("/"));
  EXPECT_EQ(read_response(fd).status, 404);
  send_text(fd, get("/metricsx"));
  EXPECT_EQ(read_response(fd).status, 404);
  EXPECT_EQ(provided_, 0);
  EXPECT_EQ(server_->counters().errors, 2u);
}

TEST_F(MetricsHttpTest, OtherMethodsAre405WithAllow) {
  int fd = connect_client();
  send_text(fd, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  Response r = read_response(fd);
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers["allow"], "GET, HEAD");
  // It carried a body the server does not read: closed after the reply.
  EXPECT_TRUE(closed_by_server(fd));
  int b = connect_client();
  send_text(b, "DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(read_response(b).status, 405);
  EXPECT_EQ(provided_, 0);
}

TEST_F(MetricsHttpTest, MalformedRequestsAre400AndClosed) {
  for (const std::string& bad : {
           std::string("garbage\r\n\r\n"),
           std::string("GET /metrics\r\n\r\n"),                       // no version
           std::string("GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),  // two spaces
           std::string("GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n"),
           std::string("GET /metrics HTTP/1.1\r\nHost x\r\n\r\n"),     // no colon
           std::string("GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n"),   // space before colon
           std::string("GET /metrics HTTP/1.1\r\n\r\n"),               // HTTP/1.1 needs Host
           std::string("G\x01T /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
       }) {
    int fd = connect_client();
    send_text(fd, bad);
    Response r = read_response(fd);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.headers["connection"], "close") << bad;
    EXPECT_TRUE(closed_by_server(fd)) << bad;
  }
  EXPECT_EQ(provided_, 0);
}

TEST_F(MetricsHttpTest, HeaderBlockOver8KiBIs431AndClosed) {
  int a = connect_client();  // never ends its head
  send_text(a, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " +
                   std::string(MetricsServer::kMaxHeaderBytes, 'a'));
  Response r = read_response(a);
  EXPECT_EQ(r.status, 431);
  EXPECT_TRUE(closed_by_server(a));
  int b = connect_client();  // ends it, too late
  send_text(b, get("/metrics", "X-Big: " + std::string(MetricsServer::kMaxHeaderBytes, 'b') +
                                   "\r\n"));
  EXPECT_EQ(read_response(b).status, 431);
  EXPECT_TRUE(closed_by_server(b));
  EXPECT_EQ(provided_, 0);
}

TEST_F(MetricsHttpTest, ClosesASilentClientAfterTheIdleTimeout) {
  int fd = connect_client();
  accept_until(1);
  ASSERT_EQ(server_->connections(), 1u);
  tick(now_ + 4999);
  EXPECT_EQ(server_->connections(), 1u);
  tick(now_ + 5000);
  EXPECT_EQ(server_->connections(), 0u);
  EXPECT_EQ(server_->counters().closed_idle, 1u);
  EXPECT_TRUE(closed_by_server(fd));
}

TEST_F(MetricsHttpTest, ActivityPostponesTheIdleTimeout) {
  int fd = connect_client();
  accept_until(1);
  now_ += 4000;
  send_text(fd, get("/metrics"));
  EXPECT_EQ(read_response(fd).status, 200);
  tick(now_ + 4999);
  EXPECT_EQ(server_->connections(), 1u);
  tick(now_ + 5000);
  EXPECT_EQ(server_->connections(), 0u);
}

TEST_F(MetricsHttpTest, ServesOthersWhileOneClientStallsMidRequest) {
  int stalled = connect_client();
  send_text(stalled, "GET /metr");
  accept_until(1);
  for (int i = 0; i < 3; ++i) {
    int other = connect_client();
    send_text(other, get("/metrics"));
    Response r = read_response(other);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, body_);
  }
  send_text(stalled, "ics HTTP/1.1\r\nHost: x\r\n\r\n");
  Response r = read_response(stalled);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, body_);
}

TEST_F(MetricsHttpTest, AClientThatStopsReadingHoldsOnlyItsOwnBuffers) {
  body_ = std::string(8 * 1024 * 1024, 'x');  // far more than the socket buffers hold
  int reader = connect_client();
  send_text(reader, get("/metrics"));
  for (int i = 0; i < 20; ++i) pump();
  body_ = "small\n";
  int other = connect_client();
  send_text(other, get("/metrics"));
  Response r = read_response(other);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "small\n");
  EXPECT_EQ(server_->connections(), 2u);
  tick(now_ + 5000);
  EXPECT_EQ(server_->connections(), 0u);
}

// Issue 15: at the cap a newcomer was refused, so 16 clients trickling a
// byte a second stopped every scrape.  Now the stalest connection goes.
TEST_F(MetricsHttpTest, AtTheCapTheStalestConnectionMakesRoomForTheNewcomer) {
  reopen_with_cap(2);
  int trickler = connect_client();
  accept_until(1);
  send_text(trickler, "GET /met");  // never finishes its head
  now_ += 10;
  int scraper = connect_client();
  accept_until(2);
  send_text(scraper, get("/metrics"));
  EXPECT_EQ(read_response(scraper).status, 200);
  int c = connect_client();
  accept_until(3);
  EXPECT_EQ(server_->counters().evicted, 1u);
  EXPECT_EQ(server_->counters().refused, 0u);
  EXPECT_TRUE(closed_by_server(trickler));
  send_text(c, get("/metrics"));
  EXPECT_EQ(read_response(c).status, 200);
}

TEST_F(MetricsHttpTest, ARequestHeadNotWholeInTimeClosesTheConnection) {
  int trickler = connect_client();
  accept_until(1);
  const uint64_t first = now_;
  for (int i = 0; i < 4; ++i) {  // a byte a second: never idle for 5 s
    send_text(trickler, "G");
    now_ += 1000;
    pump(0);
  }
  EXPECT_EQ(server_->counters().closed_idle, 0u);
  tick(first + 4999);
  EXPECT_EQ(server_->counters().closed_slow, 0u);
  tick(first + 5000);  // 5 s after the first byte
  EXPECT_EQ(server_->counters().closed_slow, 1u);
  EXPECT_TRUE(closed_by_server(trickler));
}

TEST_F(MetricsHttpTest, AnswersServiceUnavailableWithoutABodyProvider) {
  server_->set_body_provider({});
  int fd = connect_client();
  send_text(fd, get("/metrics"));
  EXPECT_EQ(read_response(fd).status, 503);
}

// ---- a streamed body (issue 14: a scrape at 10k services is 184 MB) ----

// A body of `pieces` pieces of about `budget` bytes each, counting the
// pieces made.
MetricsServer::BodyPieces numbered_body(int pieces, int* made) {
  auto next = std::make_shared<int>(0);
  return [pieces, made, next](std::string& out, size_t budget) {
    ++*made;
    const std::string line = "podgate_piece{n=\"" + std::to_string(*next) + "\"} 1\n";
    while (out.size() < budget) out += line;
    return ++*next < pieces;
  };
}

std::string numbered_text(int pieces, size_t budget) {
  std::string text;
  int made = 0;
  auto body = numbered_body(pieces, &made);
  while (body(text, text.size() + budget) ) {
  }
  return text;
}

// Decodes a chunked body (RFC 9112 §7.1) from `in`; false while incomplete.
// `end`, if given, is set to where the next response starts.
bool dechunk(const std::string& in, size_t pos, std::string& body, size_t* end = nullptr) {
  body.clear();
  while (true) {
    const size_t nl = in.find("\r\n", pos);
    if (nl == std::string::npos) return false;
    const size_t size = std::stoul(in.substr(pos, nl - pos), nullptr, 16);
    if (in.size() < nl + 2 + size + 2) return false;
    if (size == 0) {
      if (end != nullptr) *end = nl + 4;
      return in.compare(nl + 2, 2, "\r\n") == 0;
    }
    body.append(in, nl + 2, size);
    pos = nl + 2 + size + 2;
  }
}

TEST_F(MetricsHttpTest, AStreamedBodyIsChunkedAPiecePerTurnAndKeepsTheConnection) {
  int made = 0;
  server_->set_stream_provider([&made] { return numbered_body(40, &made); });
  int fd = connect_client();
  send_text(fd, get("/metrics"));
  std::string body;
  bool whole = false;
  for (int round = 0; round < kMaxRounds && !whole; ++round) {
    const int before = made;
    pump(0);
    EXPECT_LE(made - before, 1) << "at most one piece a turn";
    ASSERT_TRUE(drain(fd));
    const std::string& in = received_[fd];
    const size_t end = in.find("\r\n\r\n");
    whole = end != std::string::npos && dechunk(in, end + 4, body);
  }
  ASSERT_TRUE(whole);
  const std::string& in = received_[fd];
  EXPECT_EQ(in.substr(0, 17), "HTTP/1.1 200 OK\r\n");
  EXPECT_THAT(in.substr(0, in.find("\r\n\r\n")), HasSubstr("Transfer-Encoding: chunked"));
  EXPECT_THAT(in.substr(0, in.find("\r\n\r\n")), Not(HasSubstr("Content-Length")));
  EXPECT_EQ(body, numbered_text(40, MetricsServer::kBodyPiece));
  EXPECT_EQ(made, 40);
  received_[fd].clear();
  send_text(fd, get("/nope"));  // the connection serves the next request
  EXPECT_EQ(read_response(fd).status, 404);
}

// A pipelined request used to wait forever behind a streamed body: the
// last piece left output pending, so the request was held back, and once
// that piece was sent nothing offered the input to the session again.
TEST_F(MetricsHttpTest, RequestsPipelinedBehindAStreamedBodyAreAnsweredInOrder) {
  int made = 0;
  server_->set_stream_provider([&made] { return numbered_body(3, &made); });
  int fd = connect_client();
  send_text(fd, get("/metrics") + get("/metrics"));  // one write
  std::string first, second;
  size_t second_at = 0;
  bool both = false;
  for (int round = 0; round < kMaxRounds && !both; ++round) {
    pump(0);
    ASSERT_TRUE(drain(fd));
    const std::string& in = received_[fd];
    const size_t end = in.find("\r\n\r\n");
    if (end == std::string::npos || !dechunk(in, end + 4, first, &second_at)) continue;
    const size_t second_end = in.find("\r\n\r\n", second_at);
    both = second_end != std::string::npos && dechunk(in, second_end + 4, second);
  }
  ASSERT_TRUE(both) << "got " << received_[fd].size() << " bytes";
  EXPECT_EQ(received_[fd].compare(second_at, 17, "HTTP/1.1 200 OK\r\n"), 0);
  EXPECT_EQ(first, numbered_text(3, MetricsServer::kBodyPiece));
  EXPECT_EQ(second, first);
  EXPECT_EQ(made, 6);
  EXPECT_EQ(server_->counters().requests, 2u);
  EXPECT_EQ(server_->connections(), 1u);
}

TEST_F(MetricsHttpTest, AStreamedBodyToHttp10EndsWithTheConnection) {
  int made = 0;
  server_->set_stream_provider([&made] { return numbered_body(5, &made); });
  int fd = connect_client();
  send_text(fd, "GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_TRUE(closed_by_server(fd));
  const std::string& in = received_[fd];
  const size_t end = in.find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos);
  EXPECT_THAT(in.substr(0, end), HasSubstr("Connection: close"));
  EXPECT_THAT(in.substr(0, end), Not(HasSubstr("chunked")));
  EXPECT_EQ(in.substr(end + 4), numbered_text(5, MetricsServer::kBodyPiece));
}

TEST_F(MetricsHttpTest, HeadOfAStreamedBodySendsTheHeadersOnly) {
  int made = 0;
  server_->set_stream_provider([&made] { return numbered_body(5, &made); });
  int fd = connect_client();
  send_text(fd, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  Response r = read_response(fd, /*head_request=*/true);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["transfer-encoding"], "chunked");
  EXPECT_EQ(made, 0);
  send_text(fd, get("/nope"));
  EXPECT_EQ(read_response(fd).status, 404);
}

TEST_F(MetricsHttpTest, AScraperThatStopsReadingGetsNoMorePiecesThanItsBuffersHold) {
  int made = 0;
  server_->set_stream_provider([&made] { return numbered_body(100000, &made); });  // 1.6 GB
  int slow = connect_client();
  send_text(slow, get("/metrics"));
  for (int i = 0; i < 200; ++i) pump(0);
  // The socket buffers hold a few MB at most: the rest is never made.
  EXPECT_LT(made, 600);
  const int held = made;
  int other = connect_client();
  server_->set_body_provider([] { return std::string("other\n"); });
  server_->set_stream_provider({});
  send_text(other, get("/metrics"));
  EXPECT_EQ(read_response(other).body, "other\n");
  EXPECT_EQ(made, held);
  tick(now_ + 5000);  // the stalled scraper is idle like any silent client
  EXPECT_EQ(server_->connections(), 0u);
}

// A scrape at 10k services streams for seconds, and its last progress was
// its request: at the cap it was the stalest connection, and a newcomer
// cut it mid-body.
TEST_F(MetricsHttpTest, AtTheCapAScrapeBeingStreamedIsNotEvicted) {
  reopen_with_cap(2);
  int made = 0;
  server_->set_stream_provider([&made] { return numbered_body(300, &made); });  // 4.8 MB
  int scraper = connect_client();
  send_text(scraper, get("/metrics"));
  ASSERT_TRUE(reply_head_arrived(scraper));
  now_ += 10;
  int idle = connect_client();  // newer, and not being answered
  accept_until(2);
  connect_client();
  accept_until(3);
  EXPECT_EQ(server_->counters().evicted, 1u);
  EXPECT_EQ(server_->counters().refused, 0u);
  EXPECT_TRUE(closed_by_server(idle));
  std::string body;
  bool whole = false;
  for (int round = 0; round < 20 * kMaxRounds && !whole; ++round) {
    pump(0);
    ASSERT_TRUE(drain(scraper)) << "the scrape was cut";
    const std::string& in = received_[scraper];
    whole = dechunk(in, in.find("\r\n\r\n") + 4, body);
  }
  ASSERT_TRUE(whole);
  EXPECT_EQ(body, numbered_text(300, MetricsServer::kBodyPiece));
}

// The 503 the docs promise "only while every connection is being answered".
TEST_F(MetricsHttpTest, AtTheCapWithEveryConnectionBeingAnsweredTheNewcomerGets503) {
  reopen_with_cap(2);
  int made = 0;
  server_->set_stream_provider([&made] { return numbered_body(100000, &made); });  // 1.6 GB
  int a = connect_client();
  send_text(a, get("/metrics"));
  ASSERT_TRUE(reply_head_arrived(a));
  int b = connect_client();
  send_text(b, get("/metrics"));
  ASSERT_TRUE(reply_head_arrived(b));
  int late = connect_client();
  accept_until(3);
  EXPECT_EQ(server_->counters().evicted, 0u);
  EXPECT_EQ(server_->counters().refused, 1u);
  Response r = read_response(late);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "too many connections\n");
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(server_->connections(), 2u);
  const std::string text = render_prometheus_tail(
      {{"metrics_http", metrics_counters_json(server_->counters(), server_->connections())}});
  EXPECT_THAT(text, HasSubstr("\npodgate_metrics_http_refused_total 1\n"));
  EXPECT_THAT(text, HasSubstr("\npodgate_metrics_http_evicted_total 0\n"));
  // Not shielded for ever: scrapers that stop reading are closed as idle.
  for (int i = 0; i < 200; ++i) pump(0);  // until their socket buffers are full
  tick(now_ + 5000);
  EXPECT_EQ(server_->connections(), 0u);
}

// ---- Date (RFC 9110 §6.6.1) ----

TEST(HttpDate, IsAnImfFixdate) {
  EXPECT_EQ(http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");  // RFC 9110 §5.6.7
  EXPECT_EQ(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(http_date(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");
}

// Whether `date` is an IMF-fixdate within a few seconds of now.
::testing::AssertionResult is_now(const std::string& date) {
  static const std::regex kFixdate(
      "(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
      "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT");
  if (!std::regex_match(date, kFixdate)) {
    return ::testing::AssertionFailure() << "\"" << date << "\" is not an IMF-fixdate";
  }
  std::tm tm{};
  strptime(date.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  const std::time_t t = timegm(&tm);
  const std::time_t now = std::time(nullptr);
  if (t > now + 1 || t < now - 10) {
    return ::testing::AssertionFailure() << date << " is not now (" << http_date(now) << ")";
  }
  return ::testing::AssertionSuccess();
}

TEST_F(MetricsHttpTest, EveryReplyCarriesTheDate) {
  std::vector<std::pair<std::string, int>> requests = {
      {get("/metrics"), 200},
      {"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200},
      {get("/nope"), 404},
      {"DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 405},
      {"garbage\r\n\r\n", 400},
      {get("/metrics", "X-Big: " + std::string(MetricsServer::kMaxHeaderBytes, 'b') + "\r\n"),
       431},
  };
  for (const auto& [request, status] : requests) {
    int fd = connect_client();
    send_text(fd, request);
    Response r = read_response(fd, request.rfind("HEAD", 0) == 0);
    EXPECT_EQ(r.status, status) << request;
    EXPECT_TRUE(is_now(r.headers["date"])) << status;
  }
  server_->set_body_provider({});
  int fd = connect_client();
  send_text(fd, get("/metrics"));
  Response r = read_response(fd);
  EXPECT_EQ(r.status, 503);
  EXPECT_TRUE(is_now(r.headers["date"]));
}

TEST_F(MetricsHttpTest, AStreamedReplyAndTheRefusalAtTheCapCarryTheDate) {
  reopen_with_cap(1);
  int made = 0;
  server_->set_stream_provider([&made] { return numbered_body(100000, &made); });
  int scraper = connect_client();
  send_text(scraper, get("/metrics"));
  ASSERT_TRUE(reply_head_arrived(scraper));
  const std::string& in = received_[scraper];
  const std::string head = in.substr(0, in.find("\r\n\r\n") + 2);
  const size_t date = head.find("\r\nDate: ");
  ASSERT_NE(date, std::string::npos) << head;
  EXPECT_TRUE(is_now(head.substr(date + 8, head.find("\r\n", date + 2) - date - 8)));
  int late = connect_client();  // the scrape is being answered: refused
  accept_until(2);
  Response r = read_response(late);
  EXPECT_EQ(r.status, 503);
  EXPECT_TRUE(is_now(r.headers["date"]));
}

TEST_F(MetricsHttpTest, ABusyPortIsAnErrorNamingTheAddress) {
  auto again = MetricsServer::open(*loop_, *dp::parse_ip4("127.0.0.1"), server_->port());
  ASSERT_FALSE(again);
  EXPECT_THAT(again.error().message,
              HasSubstr("cannot bind 127.0.0.1:" + std::to_string(server_->port())));
}

}  // namespace
}  // namespace podgate::ctl
