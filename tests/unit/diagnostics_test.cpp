// Diagnostics: the one message style of TOML and Kubernetes input.
#include "control/config/diagnostics.hpp"

#include <gtest/gtest.h>

namespace podgate::ctl {
namespace {

TEST(Diagnostics, FileErrorsAreReportedByPositionWhateverTheOrderRecorded) {
  Diagnostics d("conf/podgate.toml");
  d.error(d.at_position(14, 9), "services[2].ports[0].port", "70000 is not in 1..65535");
  d.error(d.at_position(3, 1), "dataplane.workers", "0 is not in 1..64");
  d.error(d.at_position(14, 2), "services[2].ports[0]", "missing required key 'port'");
  EXPECT_EQ(d.error_count(), 3u);
  EXPECT_EQ(d.error_report(),
            "conf/podgate.toml:3:1: dataplane.workers: 0 is not in 1..64\n"
            "conf/podgate.toml:14:2: services[2].ports[0]: missing required key 'port'\n"
            "conf/podgate.toml:14:9: services[2].ports[0].port: 70000 is not in 1..65535");
}

TEST(Diagnostics, EqualPositionsKeepTheOrderRecorded) {
  Diagnostics d("a.toml");
  d.error(d.at_position(2, 5), "x", "second");
  d.error(d.at_position(1, 1), "y", "first");
  d.error(d.at_position(2, 5), "x", "third");
  EXPECT_EQ(d.error_report(), "a.toml:1:1: y: first\na.toml:2:5: x: second\na.toml:2:5: x: third");
}

TEST(Diagnostics, ANodeWithoutAPositionBlamesTheFileStartAndSortsFirst) {
  Diagnostics d("a.toml");
  d.error(d.at_position(1, 1), "b", "positioned");
  d.error(d.at_position(0, 0), "a", "made by the parser");
  EXPECT_EQ(d.error_report(), "a.toml:1:1: a: made by the parser\na.toml:1:1: b: positioned");
}

TEST(Diagnostics, InputWithoutASourceHasNoPositionPrefix) {
  Diagnostics d("");
  d.error(d.at_position(0, 0), "health_check.kind", "\"ftp\" is not allowed");
  EXPECT_EQ(d.error_report(), "health_check.kind: \"ftp\" is not allowed");
}

// validate() of a Config built by a runtime change: the object names it.
TEST(Diagnostics, ObjectsOfInputWithoutASourceAreNamedWithoutAPrefix) {
  Diagnostics d("");
  d.error(d.at_object("service default/web, endpoint 10.0.0.7"), "", "weight 0 is not in 1..256");
  d.error(d.at_object("dns"), "", "ttl 0 is not in 1..86400");
  EXPECT_EQ(d.error_report(),
            "service default/web, endpoint 10.0.0.7: weight 0 is not in 1..256\n"
            "dns: ttl 0 is not in 1..86400");
}

TEST(Diagnostics, JsonObjectsArePrefixedBySourceAndObjectInTheOrderRecorded) {
  Diagnostics d("k8s.json");
  d.error(d.at_object("items[3] Service default/web"), "spec.ports[0].port",
          "0 is not in 1..65535");
  d.error(d.at_object("items[1] EndpointSlice default/web-1"), "", "is already defined");
  d.error(d.at_object(""), "", "expected a Kubernetes object or List, found an array");
  EXPECT_EQ(d.error_report(),
            "k8s.json: items[3] Service default/web: spec.ports[0].port: 0 is not in 1..65535\n"
            "k8s.json: items[1] EndpointSlice default/web-1: is already defined\n"
            "k8s.json: expected a Kubernetes object or List, found an array");
}

TEST(Diagnostics, WarningsAreKeptApartFromErrors) {
  Diagnostics d("k8s.json");
  d.warning(d.at_object("Service default/web"), "spec.type", "\"NodePort\": forwarded on its "
                                                             "cluster IP only");
  EXPECT_FALSE(d.has_errors());
  EXPECT_EQ(d.error_report(), "");
  d.error(d.at_object("Service default/db"), "spec", "missing required key \"clusterIP\"");
  EXPECT_EQ(d.error_count(), 1u);
  EXPECT_EQ(d.error_report(), "k8s.json: Service default/db: spec: missing required key \"clusterIP\"");
  EXPECT_EQ(d.warning_lines(), std::vector<std::string>{
                                   "k8s.json: Service default/web: spec.type: \"NodePort\": "
                                   "forwarded on its cluster IP only"});
}

TEST(Diagnostics, AnotherChecksReportBecomesOneErrorALine) {
  Diagnostics d("k8s.json");
  d.error_lines(d.at_object("Service default/web"), "metadata.annotations",
                "health_check.kind: missing\nhealth_check.port: 0 is not in 1..65535");
  EXPECT_EQ(d.error_count(), 2u);
  EXPECT_EQ(d.error_report(),
            "k8s.json: Service default/web: metadata.annotations: health_check.kind: missing\n"
            "k8s.json: Service default/web: metadata.annotations: health_check.port: 0 is not in "
            "1..65535");
}

TEST(Diagnostics, PathsNameKeysAndElements) {
  EXPECT_EQ(key_path("", "services"), "services");
  EXPECT_EQ(key_path(element_path("services", 2), "ports"), "services[2].ports");
  EXPECT_EQ(quote("a\"b\\\x1b"), "\"a\\\"b\\\\\\x1b\"");
}

TEST(Diagnostics, NamesAndKeysFromTheInputAreQuotedOnlyWhenNotPlain) {
  EXPECT_EQ(plain_or_quoted("default/web"), "default/web");
  EXPECT_EQ(plain_or_quoted("default/\x1b[2J"), "\"default/\\x1b[2J\"");
  EXPECT_EQ(input_key_path("metadata", "name"), "metadata.name");
  EXPECT_EQ(input_key_path("metadata", "a\"b"), "metadata[\"a\\\"b\"]");
  EXPECT_EQ(input_key_path("", "\x07"), "[\"\\x07\"]");
}

}  // namespace
}  // namespace podgate::ctl
