// StreamServer: real Unix-socket clients against a small line protocol
// (echo, big replies, a closing "bye", a "wait" that makes the session
// busy), pumped by an EventLoop on a fake clock in the test thread.
#include "control/loop/stream_server.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace podgate::ctl {
namespace {

constexpr int kMaxRounds = 500;     // hang guard for loops that pump the server
constexpr size_t kLineLimit = 32;   // the test protocol's longest line

// "echo X" -> "X\n"; "big N" -> N bytes of 'x'; "bye" -> "bye\n" then
// close; "wait" -> nothing until the test answers (the session is busy);
// "reply" -> a reply that goes on (mid_reply) while other lines are answered.
// Lines wait while hold_at_ bytes of replies are unsent (as DNS over TCP
// holds queries behind its backlog).
class LineSession final : public StreamSession {
 public:
  Input on_input(StreamConn& c) override {
    std::string& in = c.input();
    for (size_t nl; !busy_ && !c.closing() && c.pending_output() < hold_at_ &&
                    (nl = in.find('\n')) != std::string::npos;) {
      const std::string line = in.substr(0, nl);
      in.erase(0, nl + 1);
      if (line.rfind("big ", 0) == 0) {
        c.write(std::string(std::stoul(line.substr(4)), 'x'));
      } else if (line == "bye") {
        c.write("bye\n");
        c.close_after_output();
      } else if (line == "wait") {
        busy_ = true;
      } else if (line == "reply") {
        replying_ = true;
      } else {
        c.write(line + "\n");
      }
    }
    if (in.find('\n') == std::string::npos && in.size() > kLineLimit) {
      c.write("line too long\n");
      return Input::kTooLong;
    }
    return Input::kOk;
  }
  bool busy() const override { return busy_; }
  bool mid_reply(const StreamConn& /*c*/) const override { return replying_; }
  bool busy_ = false;
  bool replying_ = false;
  size_t hold_at_ = SIZE_MAX;
};

class StreamServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/stream_server_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/s.sock";
    auto loop = EventLoop::create([this] { return clock_; });
    ASSERT_TRUE(loop) << loop.error().message;
    loop_ = std::move(*loop);
  }

  void TearDown() override {
    for (int fd : clients_) close(fd);
    server_.reset();
    loop_.reset();
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }

  void start(StreamServer::Options options) {
    server_ = std::make_unique<StreamServer>(*loop_, std::move(options), [this](StreamConn& c) {
      auto s = std::make_unique<LineSession>();
      s->hold_at_ = hold_at_;
      sessions_[c.id()] = s.get();
      return s;
    });
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un sa = address();
    ASSERT_EQ(bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa), 0);
    ASSERT_EQ(listen(fd, 16), 0);
    ASSERT_TRUE(server_->add_listener(fd));
  }

  sockaddr_un address() const {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path_.c_str(), sizeof sa.sun_path - 1);
    return sa;
  }

  void pump(int timeout_ms = 5) { loop_->run_once(timeout_ms); }
  // Runs the timers due at `ms`.
  void tick(uint64_t ms) {
    clock_ = ms;
    loop_->run_once(0);
  }

  // A connected, non-blocking client (a Unix connect completes before accept).
  int connect_client(int rcvbuf = 0) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    if (rcvbuf != 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_un sa = address();
    EXPECT_EQ(connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa), 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    clients_.push_back(fd);
    return fd;
  }

  void accept_until(size_t n) {
    for (int round = 0; round < kMaxRounds && accepted() < n; ++round) pump();
    ASSERT_EQ(accepted(), n);
  }
  size_t accepted() const {
    const StreamCounters& c = server_->counters();
    return c.accepted + c.refused;
  }

  void send_text(int fd, const std::string& text) {
    size_t off = 0;
    for (int round = 0; off < text.size() && round < kMaxRounds; ++round) {
      const ssize_t r = send(fd, text.data() + off, text.size() - off, MSG_NOSIGNAL);
      if (r > 0) off += static_cast<size_t>(r);
      pump(0);
    }
    ASSERT_EQ(off, text.size());
  }

  // Reads what the socket holds now; false once the peer closed or reset.
  bool drain(int fd) {
    char buf[65536];
    while (true) {
      const ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r > 0) {
        received_[fd].append(buf, static_cast<size_t>(r));
        continue;
      }
      if (r == 0) return false;
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
  }

  // Pumps until `n` bytes arrived on fd (or it closed); returns and consumes them.
  std::string read_bytes(int fd, size_t n) {
    for (int round = 0; round < kMaxRounds && received_[fd].size() < n; ++round) {
      pump();
      if (!drain(fd)) break;
    }
    std::string got = received_[fd].substr(0, n);
    received_[fd].erase(0, got.size());
    return got;
  }

  bool closed_by_server(int fd) {
    for (int round = 0; round < kMaxRounds / 5; ++round) {
      pump();
      if (!drain(fd)) return true;
    }
    return false;
  }

  std::string dir_, path_;
  uint64_t clock_ = 1000;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<StreamServer> server_;
  size_t hold_at_ = SIZE_MAX;  // given to each new session
  std::map<StreamConn::Id, LineSession*> sessions_;  // valid while the connection lives
  std::vector<int> clients_;
  std::map<int, std::string> received_;
};

TEST_F(StreamServerTest, AnswersWholeMessagesAndKeepsPartialOnesForLater) {
  start({});
  const int fd = connect_client();
  send_text(fd, "one\ntw");
  EXPECT_EQ(read_bytes(fd, 4), "one\n");
  send_text(fd, "o\n");
  EXPECT_EQ(read_bytes(fd, 4), "two\n");
  EXPECT_EQ(server_->connections(), 1u);
}

TEST_F(StreamServerTest, RefusesConnectionsOverTheCapWithTheProtocolsMessage) {
  StreamServer::Options o;
  o.max_connections = 2;
  o.refusal = "busy\n";
  start(o);
  const int a = connect_client();
  const int b = connect_client();
  const int c = connect_client();
  accept_until(3);
  EXPECT_EQ(server_->counters().refused, 1u);
  EXPECT_EQ(server_->connections(), 2u);
  EXPECT_EQ(read_bytes(c, 5), "busy\n");
  EXPECT_TRUE(closed_by_server(c));
  for (int fd : {a, b}) {
    send_text(fd, "still here\n");
    EXPECT_EQ(read_bytes(fd, 11), "still here\n");
  }
}

TEST_F(StreamServerTest, EvictsTheLeastRecentlyActiveConnectionAtTheCap) {
  StreamServer::Options o;
  o.max_connections = 2;
  o.at_cap = StreamServer::AtCap::kEvictStalest;
  start(o);
  const int old = connect_client();
  const int active = connect_client();
  accept_until(2);
  clock_ += 100;
  send_text(active, "hi\n");
  EXPECT_EQ(read_bytes(active, 3), "hi\n");
  const int newcomer = connect_client();
  accept_until(3);
  EXPECT_EQ(server_->counters().evicted, 1u);
  EXPECT_TRUE(closed_by_server(old));
  send_text(newcomer, "new\n");
  EXPECT_EQ(read_bytes(newcomer, 4), "new\n");
  send_text(active, "on\n");
  EXPECT_EQ(read_bytes(active, 3), "on\n");
}

// Issue 15: clients trickling a byte a second kept their connections (each
// byte refreshed the idle timer) and, at the cap, locked everyone out.
TEST_F(StreamServerTest, AMessageNotWholeWithinTheRequestTimeoutClosesTheConnection) {
  StreamServer::Options o;
  o.idle_timeout_ms = 1000;
  o.request_timeout_ms = 3000;
  start(o);
  const int slow = connect_client();
  const int quick = connect_client();
  accept_until(2);
  for (uint64_t t = 1000; t <= 3900; t += 300) {  // a byte every 300 ms: never idle
    tick(t);
    send_text(slow, "x");
    send_text(quick, "ok\n");
    ASSERT_EQ(read_bytes(quick, 3), "ok\n");
  }
  EXPECT_EQ(server_->counters().closed_slow, 0u);
  tick(4000);  // 3000 ms after the first byte at 1000
  EXPECT_EQ(server_->counters().closed_slow, 1u);
  EXPECT_TRUE(closed_by_server(slow));
  EXPECT_EQ(server_->counters().closed_idle, 0u);
  send_text(quick, "still\n");
  EXPECT_EQ(read_bytes(quick, 6), "still\n");
}

TEST_F(StreamServerTest, TheRequestTimeoutCountsFromEachMessagesFirstByte) {
  StreamServer::Options o;
  o.request_timeout_ms = 1000;
  start(o);
  const int fd = connect_client();
  accept_until(1);
  send_text(fd, "one\ntw");  // "tw" starts at 1000
  EXPECT_EQ(read_bytes(fd, 4), "one\n");
  tick(1900);
  send_text(fd, "o\nth");    // "th" starts at 1900
  EXPECT_EQ(read_bytes(fd, 4), "two\n");
  tick(2800);
  EXPECT_EQ(server_->counters().closed_slow, 0u);
  send_text(fd, "ree\n");
  EXPECT_EQ(read_bytes(fd, 6), "three\n");
  tick(10000);  // nothing pending: no deadline
  EXPECT_EQ(server_->counters().closed_slow, 0u);
  EXPECT_EQ(server_->connections(), 1u);
}

TEST_F(StreamServerTest, ABusySessionsWaitingInputIsNotSlow) {
  StreamServer::Options o;
  o.request_timeout_ms = 1000;
  start(o);
  const int fd = connect_client();
  accept_until(1);
  send_text(fd, "wait\necho");  // "echo" waits behind the busy answer
  tick(5000);
  EXPECT_EQ(server_->counters().closed_slow, 0u);
  EXPECT_EQ(server_->connections(), 1u);
}

TEST_F(StreamServerTest, AtTheCapTheTricklerGoesBeforeTheClientThatCompletesRequests) {
  StreamServer::Options o;
  o.max_connections = 3;
  o.at_cap = StreamServer::AtCap::kEvictStalest;
  start(o);
  const int admin = connect_client();  // accepted first, but completes requests
  accept_until(1);
  clock_ += 10;
  const int trickler = connect_client();
  const int busy = connect_client();
  accept_until(3);
  send_text(busy, "wait\n");  // busy: never evicted
  for (int i = 0; i < 3; ++i) {
    clock_ += 100;
    send_text(trickler, "x");  // recently active, but no message
    send_text(admin, "hi\n");
    ASSERT_EQ(read_bytes(admin, 3), "hi\n");
  }
  const int fresh = connect_client();
  accept_until(4);
  EXPECT_EQ(server_->counters().evicted, 1u);
  EXPECT_TRUE(closed_by_server(trickler));
  send_text(fresh, "new\n");
  EXPECT_EQ(read_bytes(fresh, 4), "new\n");
  send_text(admin, "on\n");
  EXPECT_EQ(read_bytes(admin, 3), "on\n");
  EXPECT_EQ(server_->connections(), 3u);
}

TEST_F(StreamServerTest, AtTheCapWithEveryConnectionBusyTheNewcomerIsRefused) {
  StreamServer::Options o;
  o.max_connections = 1;
  o.at_cap = StreamServer::AtCap::kEvictStalest;
  o.refusal = "busy\n";
  start(o);
  const int a = connect_client();
  accept_until(1);
  send_text(a, "wait\n");
  const int b = connect_client();
  accept_until(2);
  EXPECT_EQ(server_->counters().refused, 1u);
  EXPECT_EQ(read_bytes(b, 5), "busy\n");
  EXPECT_EQ(server_->connections(), 1u);
}

// A reply written for seconds (a /metrics scrape at 10k services) made no
// progress since its request was consumed, so at the cap it looked the
// stalest and a newcomer cut it.
TEST_F(StreamServerTest, AtTheCapAConnectionMidReplyIsNotEvicted) {
  StreamServer::Options o;
  o.max_connections = 2;
  o.at_cap = StreamServer::AtCap::kEvictStalest;
  o.refusal = "busy\n";
  start(o);
  const int replying = connect_client();
  accept_until(1);
  send_text(replying, "reply\n");
  clock_ += 100;
  const int idle = connect_client();  // newer, but not in a reply
  accept_until(2);
  const int newcomer = connect_client();
  accept_until(3);
  EXPECT_EQ(server_->counters().evicted, 1u);
  EXPECT_TRUE(closed_by_server(idle));
  send_text(replying, "on\n");
  EXPECT_EQ(read_bytes(replying, 3), "on\n");
  // Both mid-reply now: the next newcomer is refused.
  send_text(newcomer, "reply\n");
  const int late = connect_client();
  accept_until(4);
  EXPECT_EQ(server_->counters().evicted, 1u);
  EXPECT_EQ(server_->counters().refused, 1u);
  EXPECT_EQ(read_bytes(late, 5), "busy\n");
  EXPECT_EQ(server_->connections(), 2u);
}

TEST_F(StreamServerTest, AConnectionMidReplyIsStillClosedWhenIdle) {
  StreamServer::Options o;
  o.idle_timeout_ms = 1000;
  start(o);
  const int fd = connect_client();
  accept_until(1);
  send_text(fd, "reply\n");
  tick(clock_ + 1000);
  EXPECT_EQ(server_->counters().closed_idle, 1u);
  EXPECT_TRUE(closed_by_server(fd));
}

TEST_F(StreamServerTest, ClosesAConnectionSilentForTheIdleTimeout) {
  StreamServer::Options o;
  o.idle_timeout_ms = 1000;
  start(o);
  const int fd = connect_client();
  accept_until(1);
  tick(1999);
  EXPECT_EQ(server_->connections(), 1u);
  tick(2000);
  EXPECT_EQ(server_->connections(), 0u);
  EXPECT_EQ(server_->counters().closed_idle, 1u);
  EXPECT_TRUE(closed_by_server(fd));
}

TEST_F(StreamServerTest, TrafficPostponesTheIdleTimeout) {
  StreamServer::Options o;
  o.idle_timeout_ms = 1000;
  start(o);
  const int fd = connect_client();
  accept_until(1);
  clock_ = 1900;
  send_text(fd, "ping\n");
  EXPECT_EQ(read_bytes(fd, 5), "ping\n");
  tick(2899);
  EXPECT_EQ(server_->connections(), 1u);
  tick(2900);
  EXPECT_EQ(server_->connections(), 0u);
}

// A client reads a long reply slowly past the idle timeout without
// sending anything: whether the server closes it as idle depends on
// whether its writing counts as activity.
class SlowReaderTest : public StreamServerTest {
 protected:
  void read_slowly_past_the_idle_timeout(bool output_is_activity) {
    StreamServer::Options o;
    o.idle_timeout_ms = 1000;
    o.output_is_activity = output_is_activity;
    start(o);
    const int fd = connect_client(4096);
    send_text(fd, "big 1048576\n");
    for (int i = 0; i < 10 && accepted() == 0; ++i) pump();
    pump();  // read at 1000
    ASSERT_EQ(sessions_.size(), 1u);
    ASSERT_GT(server_->find(sessions_.begin()->first)->pending_output(), 0u);
    clock_ = 1500;
    for (int i = 0; i < 10; ++i) {
      pump();
      drain(fd);
    }
    tick(2000);
  }
};

TEST_F(SlowReaderTest, WrittenBytesPostponeTheIdleTimeout) {
  read_slowly_past_the_idle_timeout(true);
  EXPECT_EQ(server_->connections(), 1u);
  EXPECT_EQ(server_->counters().closed_idle, 0u);
}

TEST_F(SlowReaderTest, OnlyInputPostponesTheIdleTimeoutWhenOutputIsNotActivity) {
  read_slowly_past_the_idle_timeout(false);
  EXPECT_EQ(server_->connections(), 0u);
  EXPECT_EQ(server_->counters().closed_idle, 1u);
}

TEST_F(StreamServerTest, ABusySessionIsNotIdle) {
  StreamServer::Options o;
  o.idle_timeout_ms = 1000;
  start(o);
  const int fd = connect_client();
  send_text(fd, "wait\n");
  accept_until(1);
  for (int i = 0; i < 10 && !(sessions_.size() == 1 && sessions_.begin()->second->busy_); ++i) {
    pump();
  }
  ASSERT_TRUE(sessions_.begin()->second->busy_);  // read at 1000: idle since then
  tick(5000);
  EXPECT_EQ(server_->connections(), 1u);
  sessions_.begin()->second->busy_ = false;
  tick(6000);
  tick(7000);
  EXPECT_EQ(server_->connections(), 0u);
  EXPECT_TRUE(closed_by_server(fd));
}

TEST_F(StreamServerTest, AnOverlongMessageGetsTheProtocolsErrorThenTheConnectionCloses) {
  start({});
  const int fd = connect_client();
  send_text(fd, "ok\n" + std::string(kLineLimit + 1, 'a'));
  EXPECT_EQ(read_bytes(fd, 3), "ok\n");
  EXPECT_EQ(read_bytes(fd, 14), "line too long\n");
  EXPECT_TRUE(closed_by_server(fd));
  EXPECT_EQ(server_->counters().closed_oversize, 1u);
  EXPECT_EQ(server_->connections(), 0u);
}

TEST_F(StreamServerTest, InputBeyondMaxInputWaitsInTheSocketInsteadOfTheBuffer) {
  StreamServer::Options o;
  o.max_input = 1024;
  start(o);
  const int fd = connect_client();
  send_text(fd, "wait\n");  // the session holds later lines while busy
  for (int i = 0; i < 5 && sessions_.empty(); ++i) pump();
  ASSERT_EQ(sessions_.size(), 1u);
  const StreamConn::Id id = sessions_.begin()->first;
  std::string lines;
  for (int i = 0; i < 25000; ++i) lines += "zzz\n";
  send_text(fd, lines);
  for (int i = 0; i < 20; ++i) pump(0);
  StreamConn* c = server_->find(id);
  ASSERT_NE(c, nullptr);
  EXPECT_GE(c->input().size(), o.max_input);  // read up to the limit...
  EXPECT_LT(c->input().size(), lines.size());  // ...and no further
  int unread = 0;
  ASSERT_EQ(ioctl(c->fd(), FIONREAD, &unread), 0);
  EXPECT_EQ(c->input().size() + static_cast<size_t>(unread), lines.size());
  sessions_[id]->busy_ = false;
  server_->resume(id);
  EXPECT_EQ(read_bytes(fd, lines.size()), lines);  // nothing lost
}

TEST_F(StreamServerTest, APartiallyWrittenReplyIsQueuedAndSentWhole) {
  start({});
  constexpr size_t kBig = 2 * 1024 * 1024;  // far more than the socket buffers hold
  const int fd = connect_client(4096);
  send_text(fd, "big " + std::to_string(kBig) + "\necho after\n");
  pump();
  ASSERT_EQ(sessions_.size(), 1u);
  StreamConn* c = server_->find(sessions_.begin()->first);
  ASSERT_NE(c, nullptr);
  EXPECT_GT(c->pending_output(), 0u);  // the socket took part of it
  std::string got;
  for (int round = 0; round < 20 * kMaxRounds && got.size() < kBig + 11; ++round) {
    pump(0);
    drain(fd);
    got += received_[fd];
    received_[fd].clear();
  }
  ASSERT_EQ(got.size(), kBig + 11);
  EXPECT_EQ(got.find_first_not_of('x'), kBig);
  EXPECT_EQ(got.substr(kBig), "echo after\n");
}

TEST_F(StreamServerTest, AClientThatStopsReadingIsClosedWhenTheQueueOverflowsUnderKClose) {
  StreamServer::Options o;
  o.max_output = 64 * 1024;
  o.output_full = StreamServer::OutputFull::kClose;
  start(o);
  const int reader = connect_client(4096);
  // The first long reply is queued whole; the second finds it unsent.
  send_text(reader, "big 1048576\nbig 1048576\n");
  EXPECT_TRUE(closed_by_server(reader));
  EXPECT_EQ(server_->counters().closed_backlog, 1u);
  const int other = connect_client();
  send_text(other, "fine\n");
  EXPECT_EQ(read_bytes(other, 5), "fine\n");
}

TEST_F(StreamServerTest, OneReplyLongerThanTheQueueLimitIsStreamedWholeUnderKClose) {
  StreamServer::Options o;
  o.max_output = 64 * 1024;
  o.output_full = StreamServer::OutputFull::kClose;
  start(o);
  const int fd = connect_client(4096);
  constexpr size_t kBig = 1 << 20;
  send_text(fd, "big 1048576\n");
  std::string got;
  for (int round = 0; round < 20 * kMaxRounds && got.size() < kBig; ++round) {
    pump(0);
    drain(fd);
    got += received_[fd];
    received_[fd].clear();
  }
  ASSERT_EQ(got.size(), kBig);
  EXPECT_EQ(got.find_first_not_of('x'), std::string::npos);
  EXPECT_EQ(server_->counters().closed_backlog, 0u);
  send_text(fd, "echo after\n");  // still connected
  EXPECT_EQ(read_bytes(fd, 11), "echo after\n");
}

TEST_F(StreamServerTest, AFullQueuePausesReadingUnderKPauseReading) {
  StreamServer::Options o;
  o.max_output = 64 * 1024;
  start(o);
  const int fd = connect_client(4096);
  send_text(fd, "big 1048576\n");
  for (int i = 0; i < 20; ++i) pump(0);
  ASSERT_EQ(sessions_.size(), 1u);
  StreamConn* c = server_->find(sessions_.begin()->first);
  ASSERT_NE(c, nullptr);
  EXPECT_GT(c->pending_output(), o.max_output);
  send_text(fd, "echo later\n");
  for (int i = 0; i < 20; ++i) pump(0);
  int unread = 0;
  ASSERT_EQ(ioctl(c->fd(), FIONREAD, &unread), 0);
  EXPECT_EQ(unread, 11);  // left in the socket while the queue is full
  EXPECT_EQ(server_->connections(), 1u);
  const std::string got = read_bytes(fd, 1048576 + 11);
  EXPECT_EQ(got.substr(1048576), "echo later\n");
}

// DNS over TCP stalled this way: queries held behind unsent answers were
// never offered to the session again once the client read those answers
// (epoll then waited only for input), and the connection was closed as slow.
TEST_F(StreamServerTest, InputHeldBehindUnsentRepliesIsAnsweredAsTheClientReadsThem) {
  StreamServer::Options o;
  o.request_timeout_ms = 1000;
  start(o);
  hold_at_ = 64 * 1024;
  constexpr size_t kReply = 100000;  // each one over the hold threshold
  constexpr size_t kReplies = 20;
  const int fd = connect_client(4096);
  std::string requests;
  for (size_t i = 0; i < kReplies; ++i) requests += "big " + std::to_string(kReply) + "\n";
  requests += "end\n";
  send_text(fd, requests);  // one write
  std::string got;
  for (int round = 0; round < 20 * kMaxRounds && got.size() < kReplies * kReply + 4; ++round) {
    tick(clock_ + 10);  // a steady reader: what the socket holds every 10 ms
    ASSERT_TRUE(drain(fd));
    got += received_[fd];
    received_[fd].clear();
  }
  ASSERT_EQ(got.size(), kReplies * kReply + 4);
  EXPECT_EQ(got.find_first_not_of('x'), kReplies * kReply);
  EXPECT_EQ(got.substr(kReplies * kReply), "end\n");
  EXPECT_EQ(server_->counters().closed_slow, 0u);
  EXPECT_EQ(server_->connections(), 1u);
}

TEST_F(StreamServerTest, AHalfClosedClientGetsItsAnswersThenTheConnectionCloses) {
  start({});
  const int fd = connect_client();
  send_text(fd, "a\nb\n");
  shutdown(fd, SHUT_WR);
  EXPECT_EQ(read_bytes(fd, 4), "a\nb\n");
  EXPECT_TRUE(closed_by_server(fd));
  EXPECT_EQ(server_->connections(), 0u);
}

TEST_F(StreamServerTest, AClosingReplyIsWrittenThenTheConnectionCloses) {
  start({});
  const int fd = connect_client();
  send_text(fd, "bye\nignored\n");
  EXPECT_EQ(read_bytes(fd, 4), "bye\n");
  EXPECT_TRUE(closed_by_server(fd));
  EXPECT_EQ(received_[fd], "");  // nothing after the closing reply
}

TEST_F(StreamServerTest, LingerShutsTheWriteSideAndWaitsForTheClientToClose) {
  StreamServer::Options o;
  o.linger = true;
  o.idle_timeout_ms = 1000;
  start(o);
  const int fd = connect_client();
  send_text(fd, "bye\n");
  EXPECT_EQ(read_bytes(fd, 4), "bye\n");
  EXPECT_TRUE(closed_by_server(fd));  // EOF: our write side is shut
  EXPECT_EQ(server_->connections(), 1u);  // still draining what the client sends
  send_text(fd, "more input is discarded\n");
  EXPECT_EQ(server_->connections(), 1u);
  shutdown(fd, SHUT_WR);
  for (int i = 0; i < 10 && server_->connections() != 0; ++i) pump();
  EXPECT_EQ(server_->connections(), 0u);
}

TEST_F(StreamServerTest, ResumeDeliversALaterAnswerAndTheRequestsThatWaitedBehindIt) {
  start({});
  const int fd = connect_client();
  send_text(fd, "wait\nafter\n");
  for (int i = 0; i < 5 && sessions_.empty(); ++i) pump();
  ASSERT_EQ(sessions_.size(), 1u);
  const StreamConn::Id id = sessions_.begin()->first;
  for (int i = 0; i < 5; ++i) pump(0);
  EXPECT_TRUE(drain(fd));
  EXPECT_EQ(received_[fd], "");  // "after" waits behind the busy request
  StreamConn* c = server_->find(id);
  ASSERT_NE(c, nullptr);
  c->write("answer\n");
  sessions_[id]->busy_ = false;
  server_->resume(id);
  EXPECT_EQ(read_bytes(fd, 13), "answer\nafter\n");
}

TEST_F(StreamServerTest, ABusyConnectionIsClosedAtEofOnlyOnceItIsDone) {
  start({});
  const int fd = connect_client();
  send_text(fd, "wait\n");
  shutdown(fd, SHUT_WR);
  for (int i = 0; i < 10; ++i) pump(0);
  ASSERT_EQ(sessions_.size(), 1u);
  const StreamConn::Id id = sessions_.begin()->first;
  ASSERT_NE(server_->find(id), nullptr);
  server_->find(id)->write("late\n");
  sessions_[id]->busy_ = false;
  server_->resume(id);
  EXPECT_EQ(read_bytes(fd, 5), "late\n");
  EXPECT_TRUE(closed_by_server(fd));
}

TEST_F(StreamServerTest, DestroyingTheServerClosesItsConnections) {
  start({});
  const int fd = connect_client();
  accept_until(1);
  server_.reset();
  EXPECT_EQ(loop_->watches(), 0u);
  EXPECT_EQ(loop_->timers(), 0u);
  char b;
  EXPECT_EQ(recv(fd, &b, 1, 0), 0);
}

}  // namespace
}  // namespace podgate::ctl
