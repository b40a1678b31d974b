// The strict YAML walk (yaml_fields.h): what yaml-cpp 0.7's tags and
// conversions make of each scalar, and where they are narrowed to YAML 1.2.
#include "tcpstated/yaml_fields.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "config_test_support.h"

namespace tcpstated {
namespace {

YAML::Node Value(const std::string& text) {
  return LoadSingleDocument("k: " + text + "\n", "test")["k"];
}

struct KindCase {
  const char* text;
  YamlKind kind;
};

void PrintTo(const KindCase& c, std::ostream* os) { *os << c.text; }

class ClassifyTest : public testing::TestWithParam<KindCase> {};

TEST_P(ClassifyTest, ReadsAsYaml12) {
  EXPECT_EQ(ClassifyYaml(Value(GetParam().text)), GetParam().kind);
}

INSTANTIATE_TEST_SUITE_P(
    Scalars, ClassifyTest,
    testing::Values(
        KindCase{"30", YamlKind::kInt}, KindCase{"-5", YamlKind::kInt},
        KindCase{"+5", YamlKind::kInt}, KindCase{"0x1F", YamlKind::kInt},
        KindCase{"0o17", YamlKind::kInt}, KindCase{"0.5", YamlKind::kFloat},
        KindCase{"1e3", YamlKind::kFloat}, KindCase{".inf", YamlKind::kFloat},
        KindCase{".nan", YamlKind::kFloat}, KindCase{"1e400", YamlKind::kFloat},
        KindCase{"true", YamlKind::kBool}, KindCase{"FALSE", YamlKind::kBool},
        // YAML 1.1 booleans, which yaml-cpp's as<bool> would take.
        KindCase{"yes", YamlKind::kString}, KindCase{"on", YamlKind::kString},
        KindCase{"y", YamlKind::kString}, KindCase{"tRUE", YamlKind::kString},
        KindCase{"\"30\"", YamlKind::kString},
        KindCase{"'true'", YamlKind::kString},
        KindCase{"!!str 30", YamlKind::kString},
        KindCase{"!!int \"30\"", YamlKind::kInt},
        KindCase{"!!float 1", YamlKind::kFloat},
        KindCase{"!!int info", YamlKind::kBadTag},
        KindCase{"!custom info", YamlKind::kBadTag},
        KindCase{"nan", YamlKind::kString}, KindCase{"0x", YamlKind::kString},
        KindCase{"1_000", YamlKind::kString},
        KindCase{"127.0.0.1", YamlKind::kString},
        KindCase{"1e", YamlKind::kString}, KindCase{"~", YamlKind::kNull},
        KindCase{"null", YamlKind::kNull}, KindCase{"", YamlKind::kNull},
        KindCase{"[1]", YamlKind::kNotScalar},
        KindCase{"{a: 1}", YamlKind::kNotScalar}),
    [](const testing::TestParamInfo<KindCase>& info) {
      return "Case" + std::to_string(info.index);
    });

TEST(GetUintTest, ConvertsThroughYamlCpp) {
  EXPECT_EQ(GetUint("k", Value("30")), 30u);
  EXPECT_EQ(GetUint("k", Value("+5")), 5u);
  EXPECT_EQ(GetUint("k", Value("0x1F")), 31u);
  EXPECT_EQ(GetUint("k", Value("0o17")), 15u);
  EXPECT_EQ(GetUint("k", Value("-0")), 0u);
  EXPECT_EQ(GetUint("k", Value("!!int \"7\"")), 7u);
  EXPECT_EQ(GetUint("k", Value("18446744073709551615")), 18446744073709551615u);
}

TEST(GetUintTest, ErrorsNameTheKeyAndTheValue) {
  auto error = [](const std::string& text) {
    return ErrorOf([&] { GetUint("a.b", Value(text)); });
  };
  EXPECT_EQ(error("\"30\""),
            "a.b: expected a non-negative integer, got string \"30\"");
  EXPECT_EQ(error("-3"), "a.b: expected a non-negative integer, got \"-3\"");
  EXPECT_EQ(error("2.5"),
            "a.b: expected a non-negative integer, got float 2.5");
  EXPECT_EQ(error("18446744073709551616"),
            "a.b: integer \"18446744073709551616\" is too large");
  EXPECT_EQ(error("0o7777777777777777777777777"),
            "a.b: integer \"0o7777777777777777777777777\" is too large");
  EXPECT_NE(error("017").find("a.b: integer \"017\" has a leading zero"),
            std::string::npos);
  EXPECT_EQ(error("!!int x"),
            "a.b: value \"x\" does not match its YAML tag "
            "\"tag:yaml.org,2002:int\"");
  EXPECT_EQ(error("[1]"),
            "a.b: expected a non-negative integer, got a sequence");
  EXPECT_EQ(error("~"), "a.b: expected a non-negative integer, got null");
}

TEST(GetNumberTest, IntegersAndFloats) {
  EXPECT_EQ(GetNumber("k", Value("5")), 5.0);
  EXPECT_EQ(GetNumber("k", Value("-5")), -5.0);
  EXPECT_EQ(GetNumber("k", Value("0x10")), 16.0);
  EXPECT_EQ(GetNumber("k", Value("0.25")), 0.25);
  EXPECT_EQ(GetNumber("k", Value("1e-3")), 0.001);
  EXPECT_EQ(GetNumber("k", Value("!!float 1")), 1.0);
  EXPECT_TRUE(std::isinf(GetNumber("k", Value("-.inf"))));
  EXPECT_TRUE(std::isnan(GetNumber("k", Value(".nan"))));
  EXPECT_EQ(ErrorOf([] { GetNumber("k", Value("1e400")); }),
            "k: number \"1e400\" is out of range");
  EXPECT_EQ(ErrorOf([] { GetNumber("k", Value("\"0.5\"")); }),
            "k: expected a number, got string \"0.5\"");
  EXPECT_EQ(ErrorOf([] { GetNumber("k", Value("true")); }),
            "k: expected a number, got boolean true");
}

TEST(GetBoolTest, OnlyYaml12Booleans) {
  EXPECT_TRUE(GetBool("k", Value("true")));
  EXPECT_TRUE(GetBool("k", Value("True")));
  EXPECT_FALSE(GetBool("k", Value("FALSE")));
  EXPECT_TRUE(GetBool("k", Value("!!bool true")));
  EXPECT_EQ(ErrorOf([] { GetBool("k", Value("yes")); }),
            "k: expected true or false, got string \"yes\"");
  EXPECT_EQ(ErrorOf([] { GetBool("k", Value("\"true\"")); }),
            "k: expected true or false, got string \"true\"");
  EXPECT_EQ(ErrorOf([] { GetBool("k", Value("1")); }),
            "k: expected true or false, got integer 1");
}

TEST(GetStringTest, QuotedOrPlainNonNumbers) {
  EXPECT_EQ(GetString("k", Value("abc")), "abc");
  EXPECT_EQ(GetString("k", Value("\"30\"")), "30");
  EXPECT_EQ(GetString("k", Value("!!str 30")), "30");
  EXPECT_EQ(GetString("k", Value("yes")), "yes");
  EXPECT_EQ(ErrorOf([] { GetString("k", Value("30")); }),
            "k: expected a string, got integer 30");
  EXPECT_EQ(ErrorOf([] { GetString("k", Value("{a: 1}")); }),
            "k: expected a string, got a map");
  // Untrusted text stays on one line, escaped.
  EXPECT_EQ(ErrorOf([] { GetUint("k", Value("\"a\\nb\"")); }),
            "k: expected a non-negative integer, got string \"a\\nb\"");
}

TEST(GetStringListTest, NullIsEmptyAndItemsAreStrings) {
  EXPECT_TRUE(GetStringList("k", Value("~")).empty());
  EXPECT_EQ(GetStringList("k", Value("[a, \"1\"]")),
            (std::vector<std::string>{"a", "1"}));
  EXPECT_EQ(ErrorOf([] { GetStringList("k", Value("a")); }),
            "k: expected a list of strings, got string \"a\"");
  EXPECT_EQ(ErrorOf([] { GetStringList("k", Value("[a, 1]")); }),
            "k: expected a string, got integer 1");
}

TEST(WalkYamlMapTest, AppliesFieldsAndRefusesTheRest) {
  std::vector<std::string> seen;
  const std::vector<YamlField> fields = {
      {"a", [&](const std::string& key, const YAML::Node&) {
         seen.push_back(key);
       }}};
  WalkYamlMap("doc", "sec", LoadSingleDocument("a: 1\n", "doc"), fields);
  EXPECT_EQ(seen, std::vector<std::string>{"sec.a"});
  WalkYamlMap("doc", "sec", LoadSingleDocument("", "doc"), fields);
  EXPECT_EQ(seen.size(), 1u);

  auto error = [&](const std::string& text) {
    return ErrorOf([&] {
      WalkYamlMap("doc", "", LoadSingleDocument(text, "doc"), fields);
    });
  };
  EXPECT_EQ(error("b: 1\n"), "doc: unknown key \"b\"");
  EXPECT_EQ(error("{a: 1, a: 2}"), "doc: duplicate key \"a\"");
  EXPECT_EQ(error("[a]"),
            "doc: expected a map at the top level, got a sequence");
  EXPECT_EQ(error("? [a]\n: 1\n"), "doc: keys must be strings, got a sequence");
  EXPECT_EQ(error("a: 1\n---\na: 2\n"),
            "doc: expected one YAML document, found 2");
  EXPECT_NE(error("a: [\n").find("doc: YAML syntax error at line 2, column"),
            std::string::npos);
  // yaml-cpp 0.7 would report empty documents forever on this input.
  EXPECT_EQ(error(","),
            "doc: not a YAML document (the YAML parser makes no progress)");
  // An empty document name: the message is the problem alone.
  EXPECT_EQ(ErrorOf([&] {
              WalkYamlMap("", "", LoadSingleDocument("b: 1", ""), fields);
            }),
            "unknown key \"b\"");
}

}  // namespace
}  // namespace tcpstated
