// Telemetry: the flattening of published JSON into what DPDK 22.11's
// rte_tel_data can carry, and that the real library accepts every
// addition (rte_tel_data_* work without EAL).  The public API cannot read
// an rte_tel_data back, so the output itself is checked on the flattened
// items; the end-to-end view through dpdk-telemetry.py is in the report.
#include "control/observe/telemetry.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <rte_telemetry.h>

#include <map>
#include <string>

namespace podgate::ctl {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

json stats_fixture(size_t workers) {
  json j = json::object();
  j["workers"] = json::array();
  for (size_t w = 0; w < workers; ++w) {
    json counters = json::object();
    for (int c = 0; c < 15; ++c) counters["counter_" + std::to_string(c)] = 1000 + c;
    json drops = json::object();
    for (int r = 0; r < 26; ++r) drops["reason_" + std::to_string(r)] = r;
    j["workers"].push_back({{"worker", w}, {"counters", counters}, {"drops", drops}});
  }
  j["dns"] = {{"queries", {{"udp", 7}, {"tcp", 1}}}, {"truncated", 0}};
  j["snapshot"] = {{"generation", 3}};
  return j;
}

const TelItem* find(const std::vector<TelItem>& items, const std::string& name) {
  for (const TelItem& i : items) {
    if (i.name == name) return &i;
  }
  return nullptr;
}

std::map<std::string, TelScalar> entries_of(const TelItem& item) {
  std::map<std::string, TelScalar> out;
  for (const TelEntry& e : std::get<std::vector<TelEntry>>(item.value)) out[e.name] = e.value;
  return out;
}

size_t reply_bytes(const std::vector<TelItem>& items) {
  // Upper bound of the JSON DPDK writes for these items.
  size_t n = 0;
  auto scalar = [](const std::string& name, const TelScalar& v) {
    size_t s = name.size() + 4;
    if (auto* str = std::get_if<std::string>(&v)) return s + str->size() + 2;
    if (auto* u = std::get_if<uint64_t>(&v)) return s + std::to_string(*u).size();
    return s + std::to_string(std::get<int>(v)).size();
  };
  for (const TelItem& i : items) {
    if (auto* s = std::get_if<TelScalar>(&i.value)) {
      n += scalar(i.name, *s);
    } else {
      n += i.name.size() + 6;
      for (const TelEntry& e : std::get<std::vector<TelEntry>>(i.value)) n += scalar(e.name, e.value);
    }
  }
  return n;
}

TEST(TelemetryFlatten, TopLevelObjectsBecomeContainersOfSlashPaths) {
  auto items = flatten_for_telemetry(stats_fixture(1), "/podgate/stats", "");
  ASSERT_TRUE(items);
  const TelItem* dns = find(*items, "dns");
  ASSERT_NE(dns, nullptr);
  auto e = entries_of(*dns);
  EXPECT_EQ(std::get<uint64_t>(e.at("queries/udp")), 7u);
  EXPECT_EQ(std::get<uint64_t>(e.at("truncated")), 0u);
}

TEST(TelemetryFlatten, ArraysOfObjectsBecomeOneContainerPerElement) {
  auto items = flatten_for_telemetry(stats_fixture(2), "/podgate/stats", "");
  ASSERT_TRUE(items);
  ASSERT_NE(find(*items, "workers/0"), nullptr);
  const TelItem* w1 = find(*items, "workers/1");
  ASSERT_NE(w1, nullptr);
  auto e = entries_of(*w1);
  EXPECT_EQ(std::get<uint64_t>(e.at("worker")), 1u);
  EXPECT_EQ(std::get<uint64_t>(e.at("counters/counter_3")), 1003u);
  EXPECT_EQ(std::get<uint64_t>(e.at("drops/reason_25")), 25u);
  EXPECT_EQ(find(*items, "workers"), nullptr);
}

TEST(TelemetryFlatten, ConvertsScalarsToTheTypesDpdkHas) {
  json v = {{"u", 5},          {"neg", -3},        {"big_neg", -5000000000LL},
            {"yes", true},     {"f", 33.5},        {"s", "text"},
            {"nothing", nullptr}, {"list", {"a", "b"}}, {"empty", json::object()}};
  auto items = flatten_for_telemetry(v, "/podgate/status", "");
  ASSERT_TRUE(items);
  EXPECT_EQ(std::get<uint64_t>(std::get<TelScalar>(find(*items, "u")->value)), 5u);
  EXPECT_EQ(std::get<int>(std::get<TelScalar>(find(*items, "neg")->value)), -3);
  EXPECT_EQ(std::get<std::string>(std::get<TelScalar>(find(*items, "big_neg")->value)),
            "-5000000000");
  EXPECT_EQ(std::get<uint64_t>(std::get<TelScalar>(find(*items, "yes")->value)), 1u);
  EXPECT_EQ(std::get<std::string>(std::get<TelScalar>(find(*items, "f")->value)), "33.5");
  EXPECT_EQ(std::get<std::string>(std::get<TelScalar>(find(*items, "s")->value)), "text");
  EXPECT_EQ(find(*items, "nothing"), nullptr);
  auto list = entries_of(*find(*items, "list"));
  EXPECT_EQ(std::get<std::string>(list.at("1")), "b");
  EXPECT_TRUE(entries_of(*find(*items, "empty")).empty());
}

TEST(TelemetryFlatten, NamesKeepOnlyCharactersDpdkAccepts) {
  json v = {{"services", {{{"name", "default/my-app"}, {"vip.addr", "10.96.0.20"}}}},
            {"x-y.z", 1}};
  auto items = flatten_for_telemetry(v, "/podgate/services", "");
  ASSERT_TRUE(items);
  ASSERT_NE(find(*items, "x_y_z"), nullptr);
  auto e = entries_of(*find(*items, "services/0"));
  EXPECT_EQ(std::get<std::string>(e.at("vip_addr")), "10.96.0.20");
  EXPECT_EQ(std::get<std::string>(e.at("name")), "default/my-app");  // values keep theirs
}

TEST(TelemetryFlatten, CutsStringsAndNamesTo127BytesOnACharacterBoundary) {
  std::string long_text(126, 'a');
  long_text += "\xc3\xa9";  // 'é' straddles byte 127
  long_text += "tail";
  json v = {{"s", long_text}, {std::string(300, 'k'), 1}};
  auto items = flatten_for_telemetry(v, "/podgate/status", "");
  ASSERT_TRUE(items);
  EXPECT_EQ(std::get<std::string>(std::get<TelScalar>(find(*items, "s")->value)),
            std::string(126, 'a'));
  EXPECT_NE(find(*items, std::string(kTelMaxName, 'k')), nullptr);
}

TEST(TelemetryFlatten, ABigReplyStaysWithinTheLimitsAndSaysWhatItLeftOut) {
  auto items = flatten_for_telemetry(stats_fixture(24), "/podgate/stats", "");
  ASSERT_TRUE(items);
  EXPECT_LT(reply_bytes(*items) + std::string("{\"/podgate/stats\":}").size(), kTelMaxOutput);
  EXPECT_LE(items->size(), kTelMaxEntries);
  const TelItem* note = find(*items, "truncated");
  ASSERT_NE(note, nullptr);
  EXPECT_THAT(std::get<std::string>(std::get<TelScalar>(note->value)),
              HasSubstr("ask for one: /podgate/stats,SECTION"));
  EXPECT_EQ(find(*items, "workers/23"), nullptr);
  EXPECT_NE(find(*items, "workers/0"), nullptr);
}

TEST(TelemetryFlatten, AContainerOver256EntriesIsCutWithACount) {
  json big = json::object();
  for (int i = 0; i < 300; ++i) {
    std::string key = "k";  // appended: "k" + to_string() trips g++ 12's -Wrestrict at -O3
    key += std::to_string(i);
    big[key] = i;
  }
  auto items = flatten_for_telemetry(json{{"big", big}}, "/podgate/stats", "");
  ASSERT_TRUE(items);
  const auto& entries = std::get<std::vector<TelEntry>>(find(*items, "big")->value);
  EXPECT_EQ(entries.size(), kTelMaxEntries);
  EXPECT_EQ(entries.back().name, "truncated");
  EXPECT_EQ(std::get<uint64_t>(entries.back().value), 300u - (kTelMaxEntries - 1));
}

TEST(TelemetryFlatten, ASectionParameterSelectsItemsByNameOrPrefix) {
  auto items = flatten_for_telemetry(stats_fixture(16), "/podgate/stats", "workers/15");
  ASSERT_TRUE(items);
  ASSERT_EQ(items->size(), 1u);
  EXPECT_EQ((*items)[0].name, "workers/15");
  auto all_workers = flatten_for_telemetry(stats_fixture(3), "/podgate/stats", "workers");
  ASSERT_TRUE(all_workers);
  EXPECT_EQ(all_workers->size(), 3u);
  auto none = flatten_for_telemetry(stats_fixture(1), "/podgate/stats", "nope");
  ASSERT_FALSE(none);
  EXPECT_THAT(none.error().message,
              HasSubstr("no section \"nope\"; sections: dns, snapshot, workers/0"));
}

TEST(TelemetryFill, DpdkAcceptsEveryAdditionOfAFlattenedReply) {
  json v = stats_fixture(4);
  v["odd name.with-dots"] = {{"a.b", "x\"y"}, {"neg", -1}};
  v["text"] = std::string(500, 'z');
  auto items = flatten_for_telemetry(v, "/podgate/stats", "");
  ASSERT_TRUE(items);
  rte_tel_data* d = rte_tel_data_alloc();
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(fill_tel_data(*items, d), 0);
  rte_tel_data_free(d);
}

TEST(TelemetryFill, DpdkRefusesTheRawNamesThatFlatteningRewrites) {
  // Why names are rewritten: the library's own check (22.11).
  rte_tel_data* d = rte_tel_data_alloc();
  rte_tel_data_start_dict(d);
  EXPECT_NE(rte_tel_data_add_dict_u64(d, "a.b", 1), 0);
  EXPECT_NE(rte_tel_data_add_dict_u64(d, "a-b", 1), 0);
  EXPECT_EQ(rte_tel_data_add_dict_u64(d, "a/b_c", 1), 0);
  rte_tel_data_free(d);
}

TEST(TelemetryCacheTest, GetReturnsTheLatestPublishedValue) {
  TelemetryCache cache;
  EXPECT_EQ(cache.get(kTelemetryStats), nullptr);
  cache.publish(kTelemetryStats, {{"generation", 1}});
  auto first = cache.get(kTelemetryStats);
  cache.publish(kTelemetryStats, {{"generation", 2}});
  EXPECT_EQ((*cache.get(kTelemetryStats))["generation"], 2);
  EXPECT_EQ((*first)["generation"], 1);  // a reader's copy outlives the next publish
  EXPECT_EQ(cache.get(kTelemetryStatus), nullptr);
}

}  // namespace
}  // namespace podgate::ctl
