// The `flows` command's pages: the workers' forward-only scans
// (dp::FlowQuery::ask_page) and the cursor that strings pages together
// (control/admin/flow_pages.hpp).  Real flow tables, no EAL: the scan is
// stepped by hand as a worker's loop steps it.
#include "control/admin/flow_pages.hpp"

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dataplane/flow_query.hpp"
#include "dataplane/flow_table.hpp"

namespace podgate::ctl {
namespace {

constexpr dp::FlowTimeouts kTimeouts{
    .tcp_syn_ms = 1'000, .tcp_established_ms = 100'000, .tcp_closing_ms = 2'000, .udp_ms = 30'000};
constexpr uint32_t kNow = 1'000;
const dp::Ip4 kVip = dp::Ip4::from_host(0x0a60'0014);  // 10.96.0.20
const dp::Ip4 kPod = dp::Ip4::from_host(0xac11'0005);  // 172.17.0.5

// Client 192.168.0.1:<port> -> VIP:80/TCP.
dp::FlowKey4 key_of(uint16_t port) {
  dp::FlowKey4 k;
  k.src = dp::Ip4::from_host(0xc0a8'0001);
  k.dst = kVip;
  k.sport = dp::to_be16(port);
  k.dport = dp::to_be16(80);
  k.proto = dp::Proto::kTcp;
  return k;
}

dp::FlowKey6 key6_of(uint16_t port) {
  dp::FlowKey6 k;
  k.src.bytes = {0xfd, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
  k.dst.bytes = {0xfd, 0, 0, 0x96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20};
  k.sport = dp::to_be16(port);
  k.dport = dp::to_be16(80);
  k.proto = dp::Proto::kTcp;
  return k;
}

dp::Flow* open4(dp::FlowTable& t, uint16_t port) {
  return t.insert(key_of(port), kPod, dp::to_be16(8080), dp::FlowState::kTcpEstablished, 1, kNow);
}

// One worker's tables and mailbox.
struct Worker {
  explicit Worker(uint32_t capacity = 4 * dp::FlowQuery::kFlowsPerPoll)
      : table(capacity, kTimeouts), table6(capacity, kTimeouts) {}
  dp::FlowTable table;
  dp::FlowTable6 table6;
  dp::FlowQuery query;
  std::vector<dp::FlowRecord> kept;  // the last answer's records

  // Polls until answered; returns how many polls it took.
  int answer() {
    int polls = 0;
    while (!query.answered()) {
      query.step(table, table6, kNow);
      ++polls;
    }
    kept.assign(query.records().begin(), query.records().end());
    return polls;
  }
};

// Lists every flow a page at a time as Appliance + flow_views do: ask each
// worker not done from its position, cut the page, follow the cursor.
// `between` runs after each page (flows start and end meanwhile).
std::vector<std::pair<size_t, uint16_t>> list_all(std::vector<Worker*> workers, uint32_t limit,
                                                  size_t* pages = nullptr,
                                                  const std::function<void(size_t page)>& between = {}) {
  std::vector<std::pair<size_t, uint16_t>> shown;  // (worker, client port)
  FlowCursor cursor = FlowCursor::start(workers.size());
  size_t n = 0;
  for (; !cursor.done(); ++n) {
    // As Appliance::list_flow_page collects them: worker by worker.
    std::vector<WorkerFlow> answers;
    std::vector<uint64_t> stopped_at(workers.size(), FlowCursor::kDone);
    for (size_t w = 0; w < workers.size(); ++w) {
      if (cursor.positions[w] == FlowCursor::kDone) continue;
      EXPECT_TRUE(workers[w]->query.ask_page(dp::FlowFilter{}, limit, cursor.positions[w]));
      workers[w]->answer();
      for (const dp::FlowRecord& r : workers[w]->kept) answers.emplace_back(static_cast<uint32_t>(w), r);
      if (!workers[w]->query.finished()) stopped_at[w] = workers[w]->query.position();
      workers[w]->query.collect();
    }
    const PageCut cut = cut_flow_page(answers, stopped_at, limit);
    for (size_t i : cut.shown) {
      shown.emplace_back(answers[i].first, dp::from_be16(answers[i].second.client_port));
    }
    const size_t on_page = cut.shown.size();
    EXPECT_LE(on_page, limit);
    // The cursor survives its text, as a client sends it back.
    auto again = parse_cursor(cursor_text(cut.next), workers.size());
    EXPECT_TRUE(again.ok());
    cursor = *again;
    if (between) between(n);
    if (n > 100'000) {
      ADD_FAILURE() << "the listing does not end";
      break;
    }
  }
  if (pages) *pages = n;
  return shown;
}

TEST(FlowQueryPage, StopsWhenThePageIsFullAndSaysWhereToGoOn) {
  Worker w;
  for (uint16_t p = 1; p <= 50; ++p) ASSERT_NE(open4(w.table, p), nullptr);
  ASSERT_TRUE(w.query.ask_page(dp::FlowFilter{}, 20, 0));
  w.answer();
  ASSERT_EQ(w.kept.size(), 20u);
  EXPECT_FALSE(w.query.finished());
  EXPECT_EQ(w.query.position(), w.kept.back().position + 1) << "right after the last one kept";
  for (size_t i = 1; i < w.kept.size(); ++i) EXPECT_LT(w.kept[i - 1].position, w.kept[i].position);
  const uint64_t next = w.query.position();
  w.query.collect();
  ASSERT_TRUE(w.query.ask_page(dp::FlowFilter{}, 100, next));
  w.answer();
  EXPECT_EQ(w.kept.size(), 30u) << "the rest, none again";
  EXPECT_TRUE(w.query.finished());
  EXPECT_EQ(w.query.position(), uint64_t{w.table.capacity()} + w.table6.capacity());
  w.query.collect();
}

TEST(FlowQueryPage, AListingInPagesCostsOnePassOverTheTables) {
  Worker w;  // 4 + 4 polls' worth of records
  for (uint32_t p = 1; p <= 10'000; ++p) ASSERT_NE(open4(w.table, static_cast<uint16_t>(p)), nullptr);
  int polls = 0, pages = 0;
  size_t listed = 0;
  for (uint64_t from = 0;; ++pages) {
    ASSERT_TRUE(w.query.ask_page(dp::FlowFilter{}, 300, from));
    polls += w.answer();
    listed += w.kept.size();
    from = w.query.position();
    const bool finished = w.query.finished();
    w.query.collect();
    if (finished) break;
  }
  EXPECT_EQ(listed, 10'000u);
  // Every poll scans kFlowsPerPoll records but the last of each page.
  EXPECT_LE(polls, 8 + pages + 1) << "pages go on where the last one stopped, never from the start";
}

TEST(FlowQueryPage, ScansABoundedSliceOfTheTablesPerPoll) {
  Worker w;  // 4 polls' worth of IPv4 records, as many IPv6 ones
  ASSERT_TRUE(w.query.ask_page(dp::FlowFilter{}, 10, 0));
  EXPECT_EQ(w.answer(), 8) << "an empty table is scanned kFlowsPerPoll records a poll";
  EXPECT_TRUE(w.query.finished());
  EXPECT_TRUE(w.kept.empty());
  w.query.collect();
}

TEST(FlowQueryPage, GoesOnFromTheIpv4TableIntoTheIpv6Table) {
  Worker w(64);
  for (uint16_t p = 1; p <= 3; ++p) ASSERT_NE(open4(w.table, p), nullptr);
  for (uint16_t p = 11; p <= 13; ++p) {
    dp::Ip6 pod;
    pod.bytes = {0xfd, 0, 0, 0x17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5};
    ASSERT_NE(w.table6.insert(key6_of(p), pod, dp::to_be16(8080), dp::FlowState::kTcpEstablished, 1, kNow),
              nullptr);
  }
  std::vector<dp::FlowRecord> all;
  uint64_t from = 0;
  while (true) {
    ASSERT_TRUE(w.query.ask_page(dp::FlowFilter{}, 2, from));
    w.answer();
    all.insert(all.end(), w.kept.begin(), w.kept.end());
    from = w.query.position();
    const bool finished = w.query.finished();
    w.query.collect();
    if (finished) break;
  }
  ASSERT_EQ(all.size(), 6u);
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(all[i].client.is_v4());
  for (size_t i = 3; i < 6; ++i) {
    EXPECT_TRUE(all[i].client.is_v6());
    EXPECT_GE(all[i].position, 64u) << "IPv6 positions follow the IPv4 table's";
  }
}

TEST(FlowQueryPage, ThePositionOfAStaleCursorBeyondTheTablesEndsTheListing) {
  Worker w(64);
  ASSERT_NE(open4(w.table, 1), nullptr);
  ASSERT_TRUE(w.query.ask_page(dp::FlowFilter{}, 10, 1'000'000));
  EXPECT_EQ(w.answer(), 1);
  EXPECT_TRUE(w.query.finished());
  EXPECT_TRUE(w.kept.empty());
  w.query.collect();
}

TEST(FlowQueryWhole, StillCountsEveryMatchBeyondTheLimit) {
  Worker w;
  for (uint16_t p = 1; p <= 50; ++p) ASSERT_NE(open4(w.table, p), nullptr);
  ASSERT_TRUE(w.query.ask(dp::FlowFilter{}, 10));
  w.answer();
  EXPECT_EQ(w.kept.size(), 10u);
  EXPECT_EQ(w.query.matched(), 50u);
  w.query.collect();
}

TEST(FlowPages, ListEveryFlowOfEveryWorkerOnceInPagesOfAtMostTheLimit) {
  Worker a, b, c;  // c has none
  for (uint16_t p = 1; p <= 250; ++p) ASSERT_NE(open4(a.table, p), nullptr);
  for (uint16_t p = 1001; p <= 1040; ++p) ASSERT_NE(open4(b.table, p), nullptr);
  size_t pages = 0;
  auto shown = list_all({&a, &b, &c}, 64, &pages);
  ASSERT_EQ(shown.size(), 290u);
  std::set<std::pair<size_t, uint16_t>> distinct(shown.begin(), shown.end());
  EXPECT_EQ(distinct.size(), shown.size()) << "none twice";
  EXPECT_EQ(pages, 5u) << "290 flows at 64 a page: every page but the last is full";
}

TEST(FlowPages, AFlowStartedOrEndedDuringTheListingIsShownOnceOrNotAtAll) {
  Worker w;
  std::vector<dp::Flow*> open;
  for (uint16_t p = 1; p <= 400; ++p) {
    open.push_back(open4(w.table, p));
    ASSERT_NE(open.back(), nullptr);
  }
  uint16_t next_port = 5000;
  std::set<uint16_t> ended, started;
  // Between pages: end 7 of the first flows, start 9 new ones (their
  // records may sit before or after the cursor).
  auto churn = [&](size_t page) {
    for (size_t i = 0; i < 7 && page * 7 + i < open.size(); ++i) {
      dp::Flow* f = open[page * 7 + i];
      ended.insert(dp::from_be16(f->client_port));
      w.table.erase(*f);
    }
    for (int i = 0; i < 9; ++i) {
      ASSERT_NE(open4(w.table, next_port), nullptr);
      started.insert(next_port++);
    }
  };
  auto shown = list_all({&w}, 50, nullptr, churn);
  std::multiset<uint16_t> ports;
  for (const auto& [worker, port] : shown) ports.insert(port);
  for (uint16_t p : ports) EXPECT_EQ(ports.count(p), 1u) << "port " << p << " shown twice";
  for (uint16_t p = 1; p <= 400; ++p) {
    if (!ended.contains(p)) {
      EXPECT_EQ(ports.count(p), 1u) << "port " << p << " lived throughout";
    }
  }
  EXPECT_FALSE(ended.empty());
  EXPECT_FALSE(started.empty());
}

TEST(FlowPageCut, TakesFromTheWorkersInTurnAndResumesAtTheFirstNotShown) {
  // Worker 0: 5 flows at 10..14 (scan stopped at 15); worker 1: one at 7,
  // done; worker 2: 4 at 100..103, stopped at 104; worker 3: none, done.
  std::vector<WorkerFlow> answers;
  auto add = [&](uint32_t w, uint64_t position) {
    dp::FlowRecord r;
    r.position = position;
    answers.emplace_back(w, r);
  };
  for (uint64_t p = 10; p < 15; ++p) add(0, p);
  add(1, 7);
  for (uint64_t p = 100; p < 104; ++p) add(2, p);
  const std::vector<uint64_t> stopped_at{15, FlowCursor::kDone, 104, FlowCursor::kDone};
  auto positions = [&](const PageCut& cut) {
    std::vector<uint64_t> p;
    for (size_t i : cut.shown) p.push_back(answers[i].second.position);
    return p;
  };
  const PageCut cut = cut_flow_page(answers, stopped_at, 6);
  EXPECT_EQ(positions(cut), (std::vector<uint64_t>{10, 11, 12, 7, 100, 101})) << "3, 1, 2, 0: in turn";
  EXPECT_EQ(cut.next.positions, (std::vector<uint64_t>{13, FlowCursor::kDone, 102, FlowCursor::kDone}));
  EXPECT_FALSE(cut.next.done());
  const PageCut all = cut_flow_page(answers, stopped_at, 100);
  EXPECT_EQ(all.shown.size(), answers.size());
  EXPECT_EQ(all.next.positions, stopped_at) << "all shown: on from where the scans stopped";
}

TEST(FlowPageCut, WorkersAnswersNeedNotComeWorkerByWorker) {
  std::vector<WorkerFlow> answers;
  for (uint64_t p : {1, 2, 3}) {
    for (uint32_t w : {1u, 0u}) {
      dp::FlowRecord r;
      r.position = p + 10 * w;
      answers.emplace_back(w, r);
    }
  }
  const PageCut cut = cut_flow_page(answers, std::vector<uint64_t>{50, 60}, 4);
  std::vector<std::pair<uint32_t, uint64_t>> shown;
  for (size_t i : cut.shown) shown.emplace_back(answers[i].first, answers[i].second.position);
  EXPECT_EQ(shown, (std::vector<std::pair<uint32_t, uint64_t>>{{0, 1}, {0, 2}, {1, 11}, {1, 12}}));
  EXPECT_EQ(cut.next.positions, (std::vector<uint64_t>{3, 13}));
}

TEST(FlowCursorText, RoundTripsAndStartsFromNothing) {
  const FlowCursor c{{0, 0x1f40, FlowCursor::kDone, 123456789012}};
  EXPECT_EQ(cursor_text(c), "1:0.1f40.-.1cbe991a14");
  auto back = parse_cursor(cursor_text(c), 4);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, c);
  auto first = parse_cursor("", 3);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, FlowCursor::start(3));
  EXPECT_TRUE((FlowCursor{{FlowCursor::kDone, FlowCursor::kDone}}.done()));
}

TEST(FlowCursorText, RefusesWhatIsNotACursorOfThisPodgate) {
  for (const char* bad : {"x", "1:", "1:g", "1:1..2", "2:0.0", "1:0.-1", "1:ffffffffffffffff.0", "0.0"}) {
    auto r = parse_cursor(bad, 2);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("is not a cursor"), std::string::npos) << r.error().message;
  }
  auto other = parse_cursor("1:0.0.0", 2);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().message,
            "\"after\": the cursor is for 3 worker(s), this podgate has 2 (a cursor is only good for the "
            "podgate that gave it)");
}

}  // namespace
}  // namespace podgate::ctl
