// Long control-socket replies written a piece per loop turn (issue 14):
// the streamed text is byte for byte the whole reply's dump(), one turn
// gives one connection a bounded piece, and the other clients (and any
// other descriptor on the loop, as DNS is) are served between the pieces.
// Structure only: pieces, bytes and turns are counted, never time.
#include "control/admin/reply_stream.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "control/admin/config_views.hpp"
#include "control/admin/control_socket.hpp"
#include "control/config/config_writer.hpp"
#include "control/loop/event_loop.hpp"
#include "tests/unit/config_fixture.hpp"

namespace podgate::ctl {
namespace {

using dp::Ip4;
using nlohmann::json;

// ---- the text ----

TEST(SplitAt, PrefixValueSuffixIsTheWholeDump) {
  const json object = {{"ok", true},
                       {"id", {{"a", "x\"y"}, {"\xff key", {1, 2}}}},
                       {"config", {{"a", 1}, {"services", {1, 2, 3}}, {"z", "\xc3\xa9\x80"}}},
                       {"zz", nullptr}};
  for (const std::vector<std::string>& path :
       {std::vector<std::string>{"config", "services"}, {"config"}, {"zz"}, {"id", "\xff key"}}) {
    auto [before, after] = split_at(object, path);
    const json* v = &object;
    for (const auto& k : path) v = &(*v)[k];
    EXPECT_EQ(before + dump_json(*v) + after, dump_json(object)) << path.back();
  }
  EXPECT_THROW(split_at(object, std::vector<std::string>{"nope"}), std::logic_error);
}

// n elements; element i has i % 5 inner items (so some have none).
LongArray nested(size_t n) {
  LongArray a;
  a.count = n;
  a.element = [](size_t i) {
    return json{{"a", i}, {"items", nullptr}, {"z", std::string(i % 7, 'z')}};
  };
  a.inner_key = "items";
  a.inner_count = [](size_t i) { return i % 5; };
  a.inner_item = [](size_t i, size_t j) { return json{{"i", i}, {"j", j}, {"s", "\xe2\x82"}}; };
  return a;
}

TEST(ReplyStream, PiecesMakeTheWholeReplysText) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{2}, size_t{97}}) {
    const LongReply reply(json{{"ok", true}, {"list", json::array()}, {"version", 1}}, {"list"},
                          nested(n));
    const std::string want = dump_json(whole(reply));
    for (size_t budget : {size_t{1}, size_t{50}, size_t{1000}, SIZE_MAX}) {
      ReplyStream stream(reply);
      std::string got;
      size_t pieces = 0;
      for (bool more = true; more; ++pieces) {
        std::string piece;
        more = stream.next(piece, budget);
        got += piece;
        ASSERT_LT(pieces, 100000u);
      }
      EXPECT_EQ(got, want) << n << " elements, budget " << budget;
      EXPECT_TRUE(stream.done());
    }
  }
}

TEST(ReplyStream, EachPieceIsTheBudgetPlusAtMostOneElement) {
  const LongReply reply(json{{"list", json::array()}}, {"list"}, nested(500));
  size_t largest_element = 0;
  for (size_t i = 0; i < 500; ++i) {
    json e = reply.items.element(i);
    for (size_t j = 0; j < reply.items.inner_count(i); ++j) {
      largest_element = std::max(largest_element, dump_json(reply.items.inner_item(i, j)).size());
    }
    e["items"] = json::array();
    largest_element = std::max(largest_element, dump_json(e).size());
  }
  constexpr size_t kBudget = 256;
  ReplyStream stream(reply);
  std::string piece;
  size_t pieces = 0;
  while (stream.next(piece, kBudget)) {
    EXPECT_LE(piece.size(), kBudget + largest_element + 2) << "piece " << pieces;
    ++pieces;
    piece.clear();
  }
  EXPECT_GT(pieces, dump_json(whole(reply)).size() / (kBudget + largest_element + 2));
}

// A long text: one JSON string written piece by piece, each piece's
// characters escaped as the whole string's would be.
TEST(ReplyStream, ALongTextIsOneStringWhateverItsPieces) {
  const std::vector<std::string> pieces = {"head\n", "", "\"quoted\" \\ tab\t", "\xc3\xbcnicode \xe2\x9c\x93\n",
                                           "ctl\x01\x7f", "\xff"};
  LongArray text;
  text.as_text = true;
  text.count = pieces.size();
  text.element = [&pieces](size_t i) { return json(pieces[i]); };
  const LongReply reply(json{{"ok", true}, {"toml", ""}, {"version", 1}}, {"toml"}, text);
  std::string all;
  for (const std::string& p : pieces) all += p;
  EXPECT_EQ(whole(reply)["toml"], all);
  const std::string want = dump_json(json{{"ok", true}, {"toml", all}, {"version", 1}});
  for (size_t budget : {size_t{1}, size_t{8}, SIZE_MAX}) {
    ReplyStream stream(reply);
    std::string got;
    size_t turns = 0;
    while (stream.next(got, budget)) ++turns;
    EXPECT_EQ(got, want) << "budget " << budget;
    if (budget == 1) {
      EXPECT_GE(turns, pieces.size()) << "a piece per turn";
    }
  }
}

TEST(ReplyStream, AShortReplyIsItsFieldsWhole) {
  const LongReply reply(json{{"ok", true}, {"x", "\xff"}});
  ReplyStream stream(reply);
  EXPECT_EQ(stream.rest(), dump_json(reply.fields));
}

Config many_services(uint32_t n, uint32_t endpoints) {
  Config c;
  c.source = "t.toml";
  c.eal.args = {"--no-huge", "-m", "64"};
  c.ports.push_back(named_port("uplink", "net_null0", "192.0.2.1/24"));
  for (uint32_t i = 0; i < n; ++i) {
    ServiceConfig s;
    s.ns = "default";
    s.name = "svc-" + std::to_string(i);
    if (i % 3 == 1) {
      s.type = ServiceType::kExternalName;
      s.external_name = "example.org";
    } else {
      s.cluster_ip = dp::IpAddr::v4(Ip4::from_host(0x0a600000 + i + 1));
    }
    s.ports.push_back(ServicePortConfig{"http", 80, 8080, dp::Proto::kTcp});
    for (uint32_t j = 0; j < (i == 0 ? 3000 : endpoints); ++j) {
      EndpointConfig e;
      e.ip = dp::IpAddr::v4(Ip4::from_host(0xac110000 + i * 4096 + j + 2));
      e.pod = "pod-" + std::to_string(j);
      e.ready = j % 4 != 0;
      s.endpoints.push_back(e);
    }
    c.services.push_back(std::move(s));
  }
  return c;
}

TEST(ConfigDump, StreamedItIsTheWholeDumpByteForByte) {
  const Config c = many_services(50, 4);
  const LongReply reply = config_dump(c);
  const std::string want = dump_json(whole(reply));
  ReplyStream stream(reply);
  std::string got;
  while (stream.next(got, 4096)) {
  }
  EXPECT_EQ(got, want);
  const json back = json::parse(got);
  ASSERT_EQ(back["config"]["services"].size(), 50u);
  EXPECT_EQ(back["config"]["services"][0]["endpoints"].size(), 3000u);
  EXPECT_EQ(back["config"]["services"][1]["type"], "ExternalName");
  EXPECT_FALSE(back["config"]["services"][2]["endpoints"][0].contains("state"));
  EXPECT_EQ(back["config"]["source"], "t.toml");
}

TEST(ConfigToml, StreamedItIsWhatConfigSaveWrites) {
  const Config c = many_services(50, 4);
  const LongReply reply = config_toml(c, json{{"source", "t.toml"}, {"ok", true}});
  EXPECT_GT(reply.items.count, 50u) << "written service by service";
  ReplyStream stream(reply);
  std::string got;
  while (stream.next(got, 4096)) {
  }
  const json back = json::parse(got);
  EXPECT_EQ(back["toml"], config_to_toml(c));
  EXPECT_EQ(back["source"], "t.toml");
  EXPECT_EQ(got, dump_json(whole(reply)));
}

TEST(ConfigDump, IsTheConfigAsItWasAskedForWhateverChangesMeanwhile) {
  Config c = many_services(5, 2);
  ReplyStream stream(config_dump(c));
  const std::string want = dump_json(config_to_json(c));
  std::string got;
  stream.next(got, 10);
  c.services[2].endpoints.clear();  // a change while the reply is written
  c.services.pop_back();
  got += stream.rest();
  EXPECT_EQ(got, dump_json(json{{"config", json::parse(want)}}));
}

// ---- on the control socket ----

constexpr int kMaxTurns = 20000;  // hang guard

class LongReplySocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/reply_stream_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop) << loop.error().message;
    loop_ = std::move(*loop);
    auto socket = ControlSocket::open(*loop_, dir_ + "/c.sock");
    ASSERT_TRUE(socket) << socket.error().message;
    socket_ = std::move(*socket);
    // "big": n elements of ~200 bytes, each with 3 inner items.
    socket_->add_long_command("big", [](const json& req) -> Result<LongReply> {
      LongArray a;
      a.count = req.value("n", size_t{0});
      a.element = [](size_t i) { return json{{"i", i}, {"inner", nullptr}, {"pad", std::string(150, 'p')}}; };
      a.inner_key = "inner";
      a.inner_count = [](size_t) { return size_t{3}; };
      a.inner_item = [](size_t i, size_t j) { return json{{"ij", i * 3 + j}}; };
      return LongReply(json{{"list", nullptr}, {"n", a.count}}, {"list"}, std::move(a));
    });
    socket_->add_command("ping", [](const json&) -> Result<json> { return json{{"pong", true}}; });
    // "later": answered 20 ms on, as "flows" is once the workers answer.
    socket_->add_async_command("later", [this](const json&, ControlSocket::Reply reply) {
      loop_->after(20, [reply = std::move(reply)] { reply(LongReply(json{{"later", true}})); });
    });
    // "broken": its element 3000 throws, long after the first pieces went out.
    socket_->add_long_command("broken", [](const json&) -> Result<LongReply> {
      LongArray a;
      a.count = 5000;
      a.element = [](size_t i) {
        if (i == 3000) throw std::runtime_error("element 3000");
        return json{{"pad", std::string(100, 'p')}};
      };
      return LongReply(json{{"list", nullptr}}, {"list"}, std::move(a));
    });
    // A datagram socket on the same loop, as DNS is: answered every turn it is ready.
    int pair[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair), 0);
    dns_server_ = pair[0];
    dns_client_ = pair[1];
    ASSERT_TRUE(loop_->add(dns_server_, EPOLLIN, [this](uint32_t) {
      char b[64];
      const ssize_t r = recv(dns_server_, b, sizeof b, 0);
      if (r > 0) (void)!send(dns_server_, b, static_cast<size_t>(r), 0);
    }));
  }
  void TearDown() override {
    for (int fd : clients_) close(fd);
    socket_.reset();
    loop_.reset();
    close(dns_server_);
    close(dns_client_);
    rmdir(dir_.c_str());
  }

  int connect_client(int rcvbuf = 0) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    if (rcvbuf != 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, (dir_ + "/c.sock").c_str(), sizeof sa.sun_path - 1);
    EXPECT_EQ(connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa), 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    clients_.push_back(fd);
    return fd;
  }
  void send_all(int fd, const std::string& text) {
    ASSERT_EQ(send(fd, text.data(), text.size(), MSG_NOSIGNAL), static_cast<ssize_t>(text.size()));
  }
  // Appends what fd holds now; false once the peer closed.
  bool read_now(int fd, std::string& into) {
    char buf[65536];
    while (true) {
      const ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r > 0) {
        into.append(buf, static_cast<size_t>(r));
        continue;
      }
      return r != 0;
    }
  }
  static size_t lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

  std::string dir_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<ControlSocket> socket_;
  std::vector<int> clients_;
  int dns_server_ = -1;
  int dns_client_ = -1;
};

// One reply per request line, in order, even when the line after one
// answered later is too long: the later reply first, then the error, then
// the close.
TEST_F(LongReplySocketTest, AnOversizedLineBehindALaterReplyWaitsForIt) {
  const int fd = connect_client();
  send_all(fd, "{\"command\": \"later\", \"id\": 1}\n{\"command\": \"ping\", \"pad\": \"" +
                   std::string(70 * 1024, 'x') + "\"}\n");
  std::string got;
  bool open = true;
  for (int turn = 0; turn < kMaxTurns && open; ++turn) {
    loop_->run_once(5);
    open = read_now(fd, got);
  }
  EXPECT_FALSE(open) << "closed after the error";
  ASSERT_EQ(lines(got), 2u) << got.substr(0, 400);
  const json first = json::parse(got.substr(0, got.find('\n')));
  EXPECT_EQ(first.value("id", 0), 1) << first.dump();
  EXPECT_TRUE(first.value("later", false)) << first.dump();
  const json second = json::parse(got.substr(got.find('\n') + 1));
  EXPECT_EQ(second["error"]["code"], "bad_request") << second.dump();
}

TEST_F(LongReplySocketTest, TheStreamedReplyIsTheWholeOneAndPipelinedRequestsFollowInOrder) {
  const std::string request = R"({"command": "big", "n": 20000, "id": "x"})";
  const std::string want = socket_->handle_line(request) + "\n";
  ASSERT_GT(want.size(), 40 * ControlSocket::kReplyPiece);
  const int c = connect_client();
  send_all(c, request + "\n" + R"({"command": "ping"})" + "\n");
  std::string got;
  for (int turn = 0; turn < kMaxTurns && lines(got) < 2; ++turn) {
    loop_->run_once(5);
    ASSERT_TRUE(read_now(c, got));
  }
  ASSERT_EQ(lines(got), 2u);
  EXPECT_EQ(got.substr(0, want.size()), want);
  EXPECT_EQ(json::parse(got.substr(want.size()))["pong"], true);
  const auto& st = socket_->stream_stats();
  EXPECT_GE(st.pieces, want.size() / (ControlSocket::kReplyPiece + 1024));
}

TEST_F(LongReplySocketTest, EachTurnGivesTheLongReplyOnePieceAndServesEveryoneElse) {
  const int other = connect_client();
  send_all(other, R"({"command": "ping"})" "\n");
  std::string pong;
  for (int turn = 0; turn < 100 && lines(pong) == 0; ++turn) {
    loop_->run_once(5);
    ASSERT_TRUE(read_now(other, pong));
  }
  ASSERT_EQ(lines(pong), 1u);
  const int slow = connect_client();
  send_all(slow, R"({"command": "big", "n": 20000})" "\n");
  loop_->run_once(5);  // accepts
  std::string slow_got;
  size_t pings = 0;
  size_t dns = 0;
  size_t turns = 0;
  uint64_t pieces_before = socket_->stream_stats().pieces;
  // While the long reply is written, a ping and a datagram each turn: every
  // one is answered in the turn it is asked, and each turn adds at most
  // one piece of the long reply.
  for (; turns < kMaxTurns && lines(slow_got) == 0; ++turns) {
    send_all(other, R"({"command": "ping"})" "\n");
    ASSERT_EQ(send(dns_client_, "q", 1, 0), 1);
    loop_->run_once(5);
    pong.clear();
    ASSERT_TRUE(read_now(other, pong));
    pings += lines(pong);
    char b[8];
    while (recv(dns_client_, b, sizeof b, 0) == 1) ++dns;
    const uint64_t pieces = socket_->stream_stats().pieces;
    EXPECT_LE(pieces - pieces_before, 2u) << "turn " << turns;
    pieces_before = pieces;
    ASSERT_TRUE(read_now(slow, slow_got));
  }
  ASSERT_EQ(lines(slow_got), 1u);
  EXPECT_GT(turns, 40u);  // the reply took many turns ...
  EXPECT_EQ(pings, turns);  // ... and the other client and "DNS" were answered in each
  EXPECT_EQ(dns, turns);
  EXPECT_LE(socket_->stream_stats().largest_piece, ControlSocket::kReplyPiece + 1024);
  EXPECT_EQ(json::parse(slow_got)["list"].size(), 20000u);
}

TEST_F(LongReplySocketTest, AClientThatDoesNotReadGetsNoMorePiecesUntilItDoes) {
  const int c = connect_client(4096);
  send_all(c, R"({"command": "big", "n": 20000})" "\n");
  for (int turn = 0; turn < 50; ++turn) loop_->run_once(1);
  // Produced only while the queue holds less than a piece: the unread
  // reply is not built ahead of the client.
  // What the kernel's socket buffers take, and one piece: not the ~4.5 MB.
  EXPECT_LT(socket_->stream_stats().pieces * ControlSocket::kReplyPiece, size_t{1} << 20);
  std::string got;
  for (int turn = 0; turn < kMaxTurns && lines(got) == 0; ++turn) {
    loop_->run_once(5);
    ASSERT_TRUE(read_now(c, got));
  }
  EXPECT_EQ(json::parse(got)["list"].size(), 20000u);
}

TEST_F(LongReplySocketTest, AReplyThatFailsMidwayClosesItsConnectionOnly) {
  const int c = connect_client();
  send_all(c, R"({"command": "broken"})" "\n");
  std::string got;
  bool open = true;
  for (int turn = 0; turn < kMaxTurns && open; ++turn) {
    loop_->run_once(5);
    open = read_now(c, got);
  }
  EXPECT_FALSE(open);  // no error line can follow half a reply: closed
  EXPECT_EQ(lines(got), 0u);
  EXPECT_GT(got.size(), 1000 * 100u);  // pieces before element 3000 went out
  EXPECT_EQ(socket_->counters().errors, 1u);
  const int other = connect_client();
  send_all(other, R"({"command": "ping"})" "\n");
  std::string pong;
  for (int turn = 0; turn < 100 && lines(pong) == 0; ++turn) {
    loop_->run_once(5);
    ASSERT_TRUE(read_now(other, pong));
  }
  EXPECT_EQ(json::parse(pong)["pong"], true);
}

TEST_F(LongReplySocketTest, AHalfClosedClientGetsTheWholeLongReply) {
  const int c = connect_client();
  send_all(c, R"({"command": "big", "n": 5000})" "\n");
  shutdown(c, SHUT_WR);
  std::string got;
  bool open = true;
  for (int turn = 0; turn < kMaxTurns && open; ++turn) {
    loop_->run_once(5);
    open = read_now(c, got);
  }
  EXPECT_FALSE(open);  // closed once the reply was written
  ASSERT_EQ(lines(got), 1u);
  EXPECT_EQ(json::parse(got)["list"].size(), 5000u);
}

}  // namespace
}  // namespace podgate::ctl
