// JSON input that says one thing (control/config/json_input.hpp): a key
// twice in one object is refused, wherever the object is (issue 15).
#include "control/config/json_input.hpp"

#include <gtest/gtest.h>

#include "control/config/k8s_objects.hpp"

namespace podgate::ctl {
namespace {

TEST(JsonInput, DistinctKeysParseAsUsual) {
  JsonInput in = parse_json_input(R"({"a": 1, "b": {"a": 2}, "c": [{"a": 3}, {"a": 4}]})");
  ASSERT_FALSE(in.syntax);
  EXPECT_FALSE(in.duplicate);
  EXPECT_EQ(in.value["c"][1]["a"], 4);
}

TEST(JsonInput, ADuplicateTopLevelKeyIsNamed) {
  JsonInput in = parse_json_input(R"({"command": "status", "command": "reload"})");
  EXPECT_FALSE(in.syntax);
  ASSERT_TRUE(in.duplicate);
  EXPECT_EQ(*in.duplicate, "command");
}

TEST(JsonInput, ADuplicateKeyDeepInsideIsNamedByItsPath) {
  JsonInput in = parse_json_input(
      R"({"items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b", "name": "c"}}]})");
  ASSERT_TRUE(in.duplicate);
  EXPECT_EQ(*in.duplicate, "items[1].metadata.name");
}

TEST(JsonInput, ArrayIndexesCountPrimitivesAndContainers) {
  JsonInput in = parse_json_input(R"({"x": [1, [2], {"k": 1}, {"k": 1, "k": 2}]})");
  ASSERT_TRUE(in.duplicate);
  EXPECT_EQ(*in.duplicate, "x[3].k");
}

// A key is input: in a path, one with a control byte (or a quote) is
// written quoted and escaped, as metadata.annotations["podgate.io/..."] is.
TEST(JsonInput, ADuplicateKeyWithAControlByteIsNamedEscaped) {
  JsonInput in = parse_json_input("{\"a\": {\"\\u001b[2J\": 1, \"\\u001b[2J\": 2}}");
  ASSERT_TRUE(in.duplicate);
  EXPECT_EQ(*in.duplicate, "a[\"\\x1b[2J\"]");
}

TEST(JsonInput, SyntaxErrorsKeepTheParsersWords) {
  JsonInput in = parse_json_input("{\"a\": ");
  ASSERT_TRUE(in.syntax);
  EXPECT_NE(in.syntax->find("parse error at line 1"), std::string::npos) << *in.syntax;
}

// Found by k8s_fuzz: nlohmann reports a number too large for a double as
// out_of_range, which escaped as an exception.
TEST(JsonInput, ANumberBeyondADoubleIsASyntaxErrorNotAnException) {
  JsonInput in = parse_json_input(R"({"weight": 1e999})");
  ASSERT_TRUE(in.syntax);
  EXPECT_NE(in.syntax->find("number overflow"), std::string::npos) << *in.syntax;
  auto r = import_k8s_objects(R"({"apiVersion": "v1", "kind": "Service", "x": 1e999})", "in.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("number overflow"), std::string::npos) << r.error().message;
}

TEST(JsonInput, KubernetesInputWithADuplicateKeyIsRefused) {
  auto r = import_k8s_objects(R"({"apiVersion": "v1", "kind": "Service",
      "metadata": {"name": "web", "namespace": "default", "namespace": "kube-system"},
      "spec": {"clusterIP": "10.96.0.5", "ports": [{"port": 80}]}})",
                              "in.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "in.json: metadata.namespace: the key appears twice in one object; which one counts "
            "is not defined (RFC 8259 §4), so neither does");
}

}  // namespace
}  // namespace podgate::ctl
