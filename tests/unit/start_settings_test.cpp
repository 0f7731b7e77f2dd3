// start_settings(): what a reload compares of [eal], [dataplane], [[ports]]
// and [announce], defaults resolved (control/config/start_settings.hpp).
#include "control/config/start_settings.hpp"

#include <string>

#include <gtest/gtest.h>

namespace podgate::ctl {
namespace {

// Two ports; the Pod 172.17.0.10 is on the pods port's subnet.
constexpr const char* kConfig = R"(
[dataplane]
flow_table_size = 16384
%DATAPLANE%
[[ports]]
name = "uplink"
device = "net_null0"
address = "192.0.2.1/24"
%UPLINK%
[[ports]]
name = "pods"
device = "net_null1"
address = "172.17.0.1/16"
%PODS%
[[services]]
namespace = "default"
name = "web"
cluster_ip = "10.96.0.20"
ports = [{ name = "http", port = 80, target_port = 8080 }]
endpoints = [{ ip = "172.17.0.10" }]
%ANNOUNCE%
)";

// kConfig with each %KEY% replaced by its lines ("" = none).
Config config(const std::string& dataplane = "", const std::string& uplink = "",
              const std::string& pods = "", const std::string& announce = "") {
  std::string text = kConfig;
  for (const auto& [key, lines] : {std::pair<std::string, std::string>{"%DATAPLANE%", dataplane},
                                   {"%UPLINK%", uplink}, {"%PODS%", pods}, {"%ANNOUNCE%", announce}}) {
    text.replace(text.find(key), key.size(), lines);
  }
  auto c = parse_config(text, "t.toml");
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return c.ok() ? *c : Config{};
}

// What start chooses for each port of `c`.
std::vector<dp::ClientAddress> chosen(const Config& c) {
  std::vector<dp::ClientAddress> out;
  for (size_t i = 0; i < c.ports.size(); ++i) out.push_back(choose_client_address(c, i));
  return out;
}

TEST(StartSettings, PortsChooseTheDestinationWhereThePodsAre) {
  const Config c = config();
  EXPECT_EQ(chosen(c), (std::vector{dp::ClientAddress::kSource, dp::ClientAddress::kDestination}));
  EXPECT_EQ(chosen(config("", "", "client_address = \"source\"\n"))[1], dp::ClientAddress::kSource);
}

// ipv6_flow_table_size absent is a quarter of flow_table_size (at least 1024).
TEST(StartSettings, SpellingOutTheIpv6FlowTableDefaultChangesNothing) {
  const Config running = config();
  const Config spelled = config("ipv6_flow_table_size = 4096\n");
  EXPECT_FALSE(running.dataplane == spelled.dataplane) << "the fields differ; the settings do not";
  EXPECT_EQ(start_settings(spelled, chosen(running)), start_settings(running, chosen(running)));
  EXPECT_FALSE(start_settings(config("ipv6_flow_table_size = 8192\n"), chosen(running)) ==
               start_settings(running, chosen(running)));
}

TEST(StartSettings, SpellingOutTheChosenClientAddressChangesNothing) {
  const Config running = config();
  const Config spelled = config("", "client_address = \"source\"\n", "client_address = \"destination\"\n");
  EXPECT_FALSE(running.ports == spelled.ports) << "the fields differ; the settings do not";
  EXPECT_EQ(start_settings(spelled, chosen(running)), start_settings(running, chosen(running)));
  EXPECT_FALSE(start_settings(config("", "", "client_address = \"source\"\n"), chosen(running)) ==
               start_settings(running, chosen(running)));
}

// [announce] is set up at start (the announcer's twin and table), so a
// reload that adds it, or changes its table, is refused.
TEST(StartSettings, AnAnnounceChangeIsAStartSettingsChange) {
  const std::string twin = "kernel = \"pgk\"\n";
  const Config running = config("", twin);
  const Config announcing = config("", twin, "", "[announce]\nport = \"uplink\"\n");
  const Config other_table = config("", twin, "", "[announce]\nport = \"uplink\"\ntable = 4243\n");
  ASSERT_EQ(announcing.announce.port, "uplink");
  EXPECT_FALSE(start_settings(announcing, chosen(running)) == start_settings(running, chosen(running)));
  EXPECT_FALSE(start_settings(other_table, chosen(running)) == start_settings(announcing, chosen(running)));
}

// The ports are not set up again on a reload: an absent client_address
// keeps what start chose, even where the file's endpoints would choose
// otherwise now.
TEST(StartSettings, AnAbsentClientAddressKeepsWhatStartChose) {
  const Config started = config("", "", "client_address = \"source\"\n");
  EXPECT_EQ(start_settings(config(), chosen(started)), start_settings(started, chosen(started)));
}

}  // namespace
}  // namespace podgate::ctl
