// config save (issue 4): config_to_toml() writes a Config that parse_config()
// reads back to the same Config, byte-identically on a second save, and
// write_file_atomically() replaces a file whole or not at all.
#include "control/config/config_writer.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#ifndef PODGATE_SOURCE_DIR
#error "PODGATE_SOURCE_DIR must name the source tree (set in tests/meson.build)"
#endif

namespace podgate::ctl {
namespace {

namespace fs = std::filesystem;
using dp::Proto;

dp::Ip4 ip(const char* s) { return *dp::parse_ip4(s); }
dp::IpAddr ipa(const char* s) { return dp::IpAddr::v4(ip(s)); }
dp::Prefix4 pfx(const char* s) { return *dp::parse_prefix4(s); }
dp::MacAddr mac(const char* s) { return *dp::parse_mac(s); }

EndpointConfig endpoint(const char* addr, std::string pod = {}) {
  EndpointConfig e;
  e.ip = ipa(addr);
  e.pod = std::move(pod);
  return e;
}

// Every optional field set, every shape of service, values off their
// defaults, and strings that need escaping in TOML.
Config rich_config() {
  Config c;
  c.eal.args = {"--no-huge", "-l", "0-3",           "a \"quoted\" \\ arg",
                "tab\there\nnewline\r", "ctl\x01\x1f\x7f", "\xc3\xbcnicode \xe2\x9c\x93"};

  DataplaneConfig& d = c.dataplane;
  d.workers = 3;
  d.flow_table_size = 2048;
  d.ipv6_flow_table_size = 4096;
  d.maglev_table_size = 251;
  d.mbufs = 4095;
  d.rx_ring_size = 512;
  d.tx_ring_size = 2048;
  d.tcp_syn_timeout = 5;
  d.tcp_established_timeout = 604800;
  d.tcp_fin_timeout = 7;
  d.tcp_closing_timeout = 1;
  d.udp_timeout = 77;
  d.idle_sleep_us = 100;
  d.rx_interrupts = true;

  c.ports = {
      {"uplink", "0000:01:00.0", pfx("192.0.2.1/24"), mac("02:00:00:00:00:01"), 9000,
       dp::ClientAddress::kSource, "", PortConfig::kDefaultKernelRate, std::nullopt},
      {"pods", "net_tap1,iface=\"pg pods\"\\x", pfx("172.17.0.1/16"), std::nullopt, 68,
       dp::ClientAddress::kDestination, "pg-kpods", 5000, std::nullopt},
      {"mgmt_0", "net_tap2,iface=pg-mgmt", pfx("198.51.100.7/31"), mac("0a:bc:de:f0:12:34"),
       std::nullopt, std::nullopt, "kernel.mgmt_0", PortConfig::kDefaultKernelRate, std::nullopt},
  };
  c.ports[0].steered_by_peer = true;
  c.routes = {{pfx("10.244.0.0/16"), ip("172.17.0.254")},
              {pfx("0.0.0.0/0"), ip("192.0.2.254")},
              {pfx("203.0.113.128/25"), ip("198.51.100.6")}};
  c.neighbors = {{ip("172.17.0.254"), mac("02:00:00:00:00:fe")},
                 {ip("192.0.2.254"), mac("02:00:00:00:01:fe")}};

  ServiceConfig web;  // ClientIP affinity, Maglev override, several ports
  web.ns = "shop";
  web.name = "cart";
  web.cluster_ip = ipa("10.96.0.40");
  web.session_affinity = SessionAffinity::kClientIp;
  web.affinity_timeout = 3600;
  web.publish_not_ready_addresses = true;
  web.maglev_table_size = 1021;
  web.ports = {{"http", 80, 8080, Proto::kTcp}, {"dns", 53, 5353, Proto::kUdp}};
  web.endpoints = {endpoint("172.17.2.10", "cart-0.shop"), endpoint("172.17.2.11")};
  web.endpoints[0].weight = 256;
  web.endpoints[1].weight = 7;
  EndpointConfig draining = endpoint("172.17.2.12", "cart-2");
  draining.ready = false;
  draining.serving = true;
  draining.terminating = true;
  EndpointConfig down = endpoint("172.17.2.13", "cart-3");
  down.ready = false;
  down.serving = false;
  down.terminating = false;
  web.endpoints.push_back(draining);
  web.endpoints.push_back(down);

  ServiceConfig headless;  // StatefulSet: no VIP, named Pods, an unnamed port
  headless.ns = "default";
  headless.name = "mongodb";
  headless.publish_not_ready_addresses = true;
  headless.ports = {{"", 27017, 27018, Proto::kTcp}};
  for (int i = 0; i < 3; ++i) {
    std::string n = "mongodb-" + std::to_string(i);
    EndpointConfig e = endpoint(("172.17.1.1" + std::to_string(i)).c_str(), n);
    e.hostname = n;
    e.subdomain = "mongodb";
    e.ready = i != 2;
    e.serving = i != 2;
    headless.endpoints.push_back(e);
  }

  ServiceConfig alias;  // ExternalName, with a port for its SRV record
  alias.ns = "billing";
  alias.name = "db";
  alias.type = ServiceType::kExternalName;
  alias.external_name = "db.billing.example.com";
  alias.ports = {{"pg", 5432, 5432, Proto::kTcp}};

  ServiceConfig bare;  // ExternalName with nothing else
  bare.ns = "billing";
  bare.name = "mail";
  bare.type = ServiceType::kExternalName;
  bare.external_name = "mail.example.com.";

  ServiceConfig empty;  // a VIP with no endpoints yet, one unnamed UDP port
  empty.ns = "default";
  empty.name = "pending";
  empty.cluster_ip = ipa("10.96.0.50");
  empty.ports = {{"", 9999, 9999, Proto::kUdp}};

  c.services = {web, headless, alias, bare, empty};

  c.dns.zone = "k8s.example.test";
  c.dns.ttl = 86400;
  c.dns.listen = {};
  c.dns.service_ip = ip("10.96.0.10");
  c.dns.max_udp_payload = 4096;
  c.control.socket = "/run/pod gate/\"ctl\"\\.sock";
  c.control.mode = 0600;
  c.control.group = "podgate-admin";
  c.control.idle_timeout = 0;
  c.metrics.listen.reset();
  c.announce.port = "mgmt_0";  // has a kernel twin
  c.announce.table = 4243;
  c.announce.stop_grace_ms = 2500;
  return c;
}

Config parse_or_fail(const std::string& text) {
  auto r = parse_config(text, "saved.toml");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message) << "\n--- text ---\n" << text;
  return r.ok() ? std::move(r).value() : Config{};
}

// Config has no operator== (source differs by design): every member.
void expect_same_config(const Config& got, const Config& want) {
  EXPECT_EQ(got.eal, want.eal);
  EXPECT_EQ(got.dataplane, want.dataplane);
  EXPECT_EQ(got.ports, want.ports);
  EXPECT_EQ(got.routes, want.routes);
  EXPECT_EQ(got.neighbors, want.neighbors);
  EXPECT_EQ(got.services, want.services);
  EXPECT_EQ(got.dns, want.dns);
  EXPECT_EQ(got.control, want.control);
  EXPECT_EQ(got.metrics, want.metrics);
  EXPECT_EQ(got.announce, want.announce);
}

Config shipped_config() {
  auto r = load_config(PODGATE_SOURCE_DIR "/conf/podgate.toml");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : Config{};
}

// ---- config_to_toml ----

TEST(ConfigToToml, ShippedConfigReadsBackToTheSameConfig) {
  Config c = shipped_config();
  ASSERT_EQ(c.services.size(), 3u);  // the file loaded and has something to compare
  expect_same_config(parse_or_fail(config_to_toml(c)), c);
}

TEST(ConfigToToml, EveryOptionalFieldAndEdgeValueReadsBackToTheSameConfig) {
  Config c = rich_config();
  expect_same_config(parse_or_fail(config_to_toml(c)), c);
}

TEST(ConfigToToml, SeveralDnsListenersReadBackInOrder) {
  Config c = rich_config();
  c.dns.listen = {{ip("127.0.0.1"), 5300}, {ip("198.51.100.7"), 53}, {ip("0.0.0.0"), 65535}};
  c.dns.service_ip.reset();
  Config back = parse_or_fail(config_to_toml(c));
  EXPECT_EQ(back.dns, c.dns);
}

TEST(ConfigToToml, DefaultConfigWithOnePortReadsBackToTheSameConfig) {
  Config c;
  c.ports = {{"p0", "net_null0", pfx("192.0.2.1/24"), std::nullopt, std::nullopt, std::nullopt, "",
              PortConfig::kDefaultKernelRate, std::nullopt}};
  expect_same_config(parse_or_fail(config_to_toml(c)), c);
}

TEST(ConfigToToml, SavingWhatWasReadBackIsByteIdentical) {
  for (const Config& c : {shipped_config(), rich_config()}) {
    std::string first = config_to_toml(c);
    EXPECT_EQ(config_to_toml(parse_or_fail(first)), first);
    EXPECT_EQ(config_to_toml(c), first);  // no timestamps or other varying text
  }
}

TEST(ConfigToToml, StartsWithAHeaderCommentNamingPodgate) {
  std::string text = config_to_toml(rich_config());
  std::string first_line = text.substr(0, text.find('\n'));
  EXPECT_EQ(first_line.rfind("# ", 0), 0u) << first_line;
  EXPECT_NE(first_line.find("written by podgate"), std::string::npos) << first_line;
}

TEST(ConfigToToml, SectionsFollowTheReferenceFileOrder) {
  std::string text = config_to_toml(rich_config());
  size_t at = 0;
  for (const char* header : {"\n[eal]\n", "\n[dataplane]\n", "\n[[ports]]\n", "\n[[routes]]\n",
                             "\n[[neighbors]]\n", "\n[dns]\n", "\n[control]\n",
                             "\n[metrics]\n", "\n[announce]\n", "\n[[services]]\n"}) {
    size_t found = text.find(header, at);
    ASSERT_NE(found, std::string::npos) << header << " missing or out of order in\n" << text;
    at = found + 1;
  }
  // Services are the last section: every header after [announce] is theirs.
  const std::string tail = text.substr(text.find("\n[announce]\n") + 1);
  for (size_t h = tail.find("\n["); h != std::string::npos; h = tail.find("\n[", h + 1)) {
    EXPECT_EQ(tail.compare(h, 14, "\n[[services]]\n"), 0) << tail.substr(h, 20);
  }
}

TEST(ConfigToToml, WritesDefaultsExplicitly) {
  Config c;
  c.ports = {{"p0", "net_null0", pfx("192.0.2.1/24"), std::nullopt, std::nullopt, std::nullopt, "",
              PortConfig::kDefaultKernelRate, std::nullopt}};
  ServiceConfig s;
  s.ns = "default";
  s.name = "web";
  s.cluster_ip = ipa("10.96.0.20");
  s.ports = {{"", 80, 80, Proto::kTcp}};
  s.endpoints = {endpoint("192.0.2.10")};
  c.services = {s};
  std::string text = config_to_toml(c);
  for (const char* line :
       {"workers = 1\n", "flow_table_size = 1048576\n", "maglev_table_size = 65537\n",
        "udp_timeout = 300\n", "zone = \"cluster.local\"\n", "listen = [\"127.0.0.1:53\"]\n",
        "max_udp_payload = 1232\n", "socket = \"/run/podgate/podgate.sock\"\n",
        "type = \"ClusterIP\"\n", "session_affinity = \"None\"\n",
        "publish_not_ready_addresses = false\n",
        "  { port = 80, target_port = 80, protocol = \"TCP\" },\n",
        "  { ip = \"192.0.2.10\", ready = true, serving = true, terminating = false, weight = 1 },\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "not in\n" << text;
  }
  EXPECT_EQ(text.find("service_ip"), std::string::npos) << "absent service_ip is not written";
  EXPECT_EQ(text.find("timeout_seconds"), std::string::npos) << "only with ClientIP";
}

TEST(ConfigToToml, EscapesQuotesBackslashesAndControlCharacters) {
  Config c;
  c.eal.args = {"a\"b\\c", "\t\n\x01\x7f"};
  std::string text = config_to_toml(c);
  EXPECT_NE(text.find(R"(args = ["a\"b\\c", "\t\n\u0001\u007F"])"), std::string::npos) << text;
}

TEST(ConfigToToml, HeadlessServiceIsWrittenAsClusterIpNone) {
  Config c = rich_config();
  std::string text = config_to_toml(c);
  EXPECT_NE(text.find("name = \"mongodb\"\ntype = \"ClusterIP\"\ncluster_ip = \"None\"\n"),
            std::string::npos)
      << text;
}

TEST(ConfigToToml, KeysMeaninglessForTheServiceShapeAreNotWritten) {
  Config c = rich_config();
  ServiceConfig& alias = c.services[2];   // ExternalName
  alias.cluster_ip = ipa("10.96.0.99");  // ignored by an ExternalName service
  alias.endpoints = {endpoint("172.17.9.9")};
  alias.maglev_table_size = 251;
  ServiceConfig& headless = c.services[1];
  headless.maglev_table_size = 251;      // a headless service does not forward
  headless.external_name = "ignored.example.com";
  Config back = parse_or_fail(config_to_toml(c));
  ASSERT_EQ(back.services.size(), c.services.size());
  EXPECT_FALSE(back.services[2].cluster_ip);
  EXPECT_TRUE(back.services[2].endpoints.empty());
  EXPECT_FALSE(back.services[2].maglev_table_size);
  EXPECT_FALSE(back.services[1].maglev_table_size);
  EXPECT_EQ(back.services[1].external_name, "");
}

// ---- write_file_atomically ----

class WriteFileAtomically : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "config_writer_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  static void write(const fs::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
  }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }
  static mode_t mode_of(const fs::path& p) {
    struct stat st{};
    EXPECT_EQ(::stat(p.c_str(), &st), 0);
    return st.st_mode & 07777;
  }
  std::string tmp_name(const std::string& file) const {
    return file + ".tmp." + std::to_string(::getpid());
  }

  fs::path dir_;
};

TEST_F(WriteFileAtomically, CreatesTheFileWithTheText) {
  fs::path p = dir_ / "podgate.toml";
  auto r = write_file_atomically(p, "x = 1\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(read(p), "x = 1\n");
  EXPECT_EQ(entries(), std::vector<std::string>{"podgate.toml"});  // no temporary left
}

TEST_F(WriteFileAtomically, WritesLargeTextCompletely) {
  fs::path p = dir_ / "big.toml";
  std::string text(8 << 20, 'a');
  for (size_t i = 0; i < text.size(); i += 4093) text[i] = static_cast<char>('0' + i % 10);
  ASSERT_TRUE(write_file_atomically(p, text).ok());
  EXPECT_EQ(read(p), text);
}

// A config linked from /etc into a checkout: the file it names takes the
// text, and the link stays a link (renamed over, it would become a file
// that later deploys to the target no longer reach).
TEST_F(WriteFileAtomically, ASymbolicLinkStaysALinkToTheNewText) {
  fs::create_directory(dir_ / "checkout");
  const fs::path target = dir_ / "checkout" / "podgate.toml";
  write(target, "old\n");
  const fs::path link = dir_ / "podgate.toml";
  fs::create_symlink("checkout/podgate.toml", link);
  auto r = write_file_atomically(link, "new\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(read(target), "new\n");
  EXPECT_EQ(entries(), (std::vector<std::string>{"checkout", "podgate.toml"}));
  // One that names nothing is refused, and left as it is.
  fs::remove(target);
  r = write_file_atomically(link, "newer\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("cannot follow the symbolic link"), std::string::npos) << r.error().message;
  EXPECT_TRUE(fs::is_symlink(link));
}

// A file root:podgate 0640 stays podgate's group's to read.
TEST_F(WriteFileAtomically, KeepsTheFilesOwner) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a file away";
  const fs::path p = dir_ / "podgate.toml";
  write(p, "old\n");
  ASSERT_EQ(::chown(p.c_str(), 1234, 5678), 0);
  ASSERT_EQ(::chmod(p.c_str(), 0640), 0);
  ASSERT_TRUE(write_file_atomically(p, "new\n").ok());
  struct stat st{};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
}

TEST_F(WriteFileAtomically, ReplacesAnExistingFileAndKeepsItsMode) {
  fs::path p = dir_ / "podgate.toml";
  write(p, "old contents that are longer than the new ones\n");
  // 0666 would be narrowed by the usual umask 022 if the mode were not kept.
  ASSERT_EQ(::chmod(p.c_str(), 0666), 0);
  auto r = write_file_atomically(p, "new\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(read(p), "new\n");
  EXPECT_EQ(mode_of(p), 0666u);
  ASSERT_EQ(::chmod(p.c_str(), 0600), 0);
  ASSERT_TRUE(write_file_atomically(p, "newer\n").ok());
  EXPECT_EQ(read(p), "newer\n");
  EXPECT_EQ(mode_of(p), 0600u);
  EXPECT_EQ(entries(), std::vector<std::string>{"podgate.toml"});
}

TEST_F(WriteFileAtomically, NewFileGetsMode0644LessTheUmask) {
  fs::path p = dir_ / "fresh.toml";
  mode_t old = ::umask(022);
  auto r = write_file_atomically(p, "x\n");
  ::umask(old);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(mode_of(p), 0644u);
}

TEST_F(WriteFileAtomically, MissingDirectoryIsAnIoErrorNamingThePath) {
  fs::path p = dir_ / "missing" / "podgate.toml";
  auto r = write_file_atomically(p, "x\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
  EXPECT_NE(r.error().message.find(p.string()), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("No such file or directory"), std::string::npos)
      << r.error().message;
  EXPECT_TRUE(entries().empty());
}

TEST_F(WriteFileAtomically, ParentThatIsARegularFileIsAnErrorAndStaysUnchanged) {
  fs::path parent = dir_ / "not-a-dir";
  write(parent, "keep me\n");
  auto r = write_file_atomically(parent / "podgate.toml", "x\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
  EXPECT_NE(r.error().message.find("Not a directory"), std::string::npos) << r.error().message;
  EXPECT_EQ(read(parent), "keep me\n");
  EXPECT_EQ(entries(), std::vector<std::string>{"not-a-dir"});
}

// A failure after the temporary file was written (the rename): it is removed.
TEST_F(WriteFileAtomically, FailedRenameRemovesTheTemporaryFile) {
  fs::path p = dir_ / "podgate.toml";
  fs::create_directory(p);  // rename(2) cannot replace a directory with a file
  write(p / "inside", "keep me\n");
  auto r = write_file_atomically(p, "x\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
  EXPECT_NE(r.error().message.find(p.string()), std::string::npos) << r.error().message;
  EXPECT_EQ(entries(), std::vector<std::string>{"podgate.toml"});
  EXPECT_EQ(read(p / "inside"), "keep me\n");
}

// O_EXCL: a temporary file that already exists is not ours, so it is neither
// overwritten nor removed, and the target keeps its contents.
TEST_F(WriteFileAtomically, ExistingTemporaryFileIsAnErrorAndBothFilesStayUnchanged) {
  fs::path p = dir_ / "podgate.toml";
  fs::path stranger = dir_ / tmp_name("podgate.toml");
  write(p, "old\n");
  write(stranger, "someone else's\n");
  auto r = write_file_atomically(p, "new\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kIo);
  EXPECT_NE(r.error().message.find(stranger.string()), std::string::npos) << r.error().message;
  EXPECT_EQ(read(p), "old\n");
  EXPECT_EQ(read(stranger), "someone else's\n");
}

TEST_F(WriteFileAtomically, SavedConfigLoadsBackWithLoadConfig) {
  fs::path p = dir_ / "saved.toml";
  Config c = rich_config();
  ASSERT_TRUE(write_file_atomically(p, config_to_toml(c)).ok());
  auto back = load_config(p);
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same_config(*back, c);
  EXPECT_EQ(back->source, p.string());
}

}  // namespace
}  // namespace podgate::ctl
