#include "tcpstated/yaml_fields.h"

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>
#include <sstream>
#include <system_error>

#include "tcpstated/config.h"

namespace tcpstated {
namespace {

// yaml-cpp's tags: "?" for a plain scalar (type left to the reader), "!" for
// a quoted or block scalar (always a string), full URIs for `!!type`.
constexpr std::string_view kPlainTag = "?";
constexpr std::string_view kNonPlainTag = "!";
constexpr std::string_view kStrTag = "tag:yaml.org,2002:str";
constexpr std::string_view kIntTag = "tag:yaml.org,2002:int";
constexpr std::string_view kFloatTag = "tag:yaml.org,2002:float";
constexpr std::string_view kBoolTag = "tag:yaml.org,2002:bool";

using Kind = YamlKind;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string_view WithoutSign(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  return s;
}

// YAML 1.2 core booleans; yaml-cpp also takes YAML 1.1's yes/no/on/off/y/n,
// which YAML 1.2 reads as strings.
bool IsCoreBool(std::string_view s) {
  return s == "true" || s == "True" || s == "TRUE" || s == "false" ||
         s == "False" || s == "FALSE";
}

bool IsOctal(std::string_view s) {
  return s.size() > 2 && s[0] == '0' && s[1] == 'o' &&
         std::all_of(s.begin() + 2, s.end(),
                     [](char c) { return c >= '0' && c <= '7'; });
}

// The shapes YAML 1.2 reads as integers: decimal with an optional sign,
// 0x hexadecimal, 0o octal. Which value they have is yaml-cpp's answer
// (except 0o, which it does not know).
bool IsIntShaped(std::string_view s) {
  if (IsOctal(s)) return true;
  if (s.size() > 2 && s[0] == '0' && s[1] == 'x') {
    return std::all_of(s.begin() + 2, s.end(), [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c)) != 0;
    });
  }
  s = WithoutSign(s);
  return !s.empty() && std::all_of(s.begin(), s.end(), IsDigit);
}

// YAML 1.2's float syntax, [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?:
// what yaml-cpp cannot convert although it has this shape (1e400) is a
// float out of range, not a string.
bool HasFloatSyntax(std::string_view s) {
  s = WithoutSign(s);
  size_t pos = 0;
  size_t digits = 0;
  while (pos < s.size() && IsDigit(s[pos])) ++pos, ++digits;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    while (pos < s.size() && IsDigit(s[pos])) ++pos, ++digits;
  }
  if (digits == 0) return false;
  if (pos < s.size() && (s[pos] == 'e' || s[pos] == 'E')) {
    ++pos;
    if (pos < s.size() && (s[pos] == '-' || s[pos] == '+')) ++pos;
    const size_t exponent = pos;
    while (pos < s.size() && IsDigit(s[pos])) ++pos;
    if (pos == exponent) return false;
  }
  return pos == s.size();
}

// Anything yaml-cpp reads as a double (.inf and .nan included), or text of
// YAML 1.2's float syntax.
bool IsFloatShaped(const YAML::Node& node) {
  double unused = 0;
  return YAML::convert<double>::decode(node, unused) ||
         HasFloatSyntax(node.Scalar());
}

}  // namespace

YamlKind ClassifyYaml(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return Kind::kNull;
  if (!node.IsScalar()) return Kind::kNotScalar;
  const std::string& tag = node.Tag();
  const std::string& text = node.Scalar();
  if (tag == kNonPlainTag || tag == kStrTag) return Kind::kString;
  const bool plain = tag == kPlainTag || tag.empty();
  if ((plain || tag == kBoolTag) && IsCoreBool(text)) return Kind::kBool;
  if ((plain || tag == kIntTag) && IsIntShaped(text)) return Kind::kInt;
  if ((plain || tag == kFloatTag) && IsFloatShaped(node)) return Kind::kFloat;
  if (tag == kFloatTag && IsIntShaped(text)) return Kind::kInt;
  return plain ? Kind::kString : Kind::kBadTag;
}

void FailExpected(const std::string& key, const char* expected,
                  const YAML::Node& node) {
  if (ClassifyYaml(node) == Kind::kBadTag) {
    FailKey(key, "value " + QuoteForMessage(node.Scalar()) +
                     " does not match its YAML tag " +
                     QuoteForMessage(node.Tag()));
  }
  FailKey(key,
          std::string("expected ") + expected + ", got " + DescribeYaml(node));
}

namespace {

struct Integer {
  bool negative = false;
  uint64_t magnitude = 0;
};

// The value of an int-shaped scalar. yaml-cpp reads "017" as C octal (15)
// where YAML 1.2 reads 17: refused rather than guessed.
Integer ReadInteger(const std::string& key, const YAML::Node& node) {
  const std::string& text = node.Scalar();
  Integer out;
  if (IsOctal(text)) {
    const auto result = std::from_chars(
        text.data() + 2, text.data() + text.size(), out.magnitude, 8);
    if (result.ec != std::errc()) {
      FailKey(key, "integer " + QuoteForMessage(text) + " is too large");
    }
    return out;
  }
  out.negative = !text.empty() && text[0] == '-';
  const std::string_view digits = WithoutSign(text);
  if (digits.size() > 1 && digits[0] == '0' && IsDigit(digits[1])) {
    FailKey(key, "integer " + QuoteForMessage(text) +
                     " has a leading zero, which YAML 1.1 reads as octal and "
                     "YAML 1.2 as decimal (write it without the zero, or "
                     "with 0o for octal)");
  }
  if (out.negative) {
    // yaml-cpp refuses a sign on an unsigned type: convert the magnitude.
    const YAML::Node magnitude{std::string(digits)};
    if (!YAML::convert<uint64_t>::decode(magnitude, out.magnitude)) {
      FailKey(key, "integer " + QuoteForMessage(text) + " is too large");
    }
    return out;
  }
  if (!YAML::convert<uint64_t>::decode(node, out.magnitude)) {
    FailKey(key, "integer " + QuoteForMessage(text) + " is too large");
  }
  return out;
}

// Walks the YAML event stream without building nodes. yaml-cpp 0.7 can
// report empty documents forever on some inputs (a lone ","), so LoadAll
// would never return; every real document consumes input, so more documents
// than bytes means the parser is stuck.
class DocumentCounter : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

void CheckParserTerminates(const std::string& text,
                           const std::string& document) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentCounter counter;
  const size_t limit = text.size() + 2;
  for (size_t n = 0; parser.HandleNextDocument(counter);) {
    if (++n > limit) {
      FailKey(document,
              "not a YAML document (the YAML parser makes no progress)");
    }
  }
}

}  // namespace

void FailKey(const std::string& key, const std::string& problem) {
  throw ConfigError(key.empty() ? problem : key + ": " + problem);
}

YAML::Node LoadSingleDocument(const std::string& text,
                              const std::string& document) {
  try {
    CheckParserTerminates(text, document);
    std::vector<YAML::Node> documents = YAML::LoadAll(text);
    // An empty trailing document ("---" at the end) is harmless; two real
    // ones would leave it unclear which one applies.
    documents.erase(
        std::remove_if(documents.begin(), documents.end(),
                       [](const YAML::Node& doc) { return doc.IsNull(); }),
        documents.end());
    if (documents.size() > 1) {
      FailKey(document, "expected one YAML document, found " +
                            std::to_string(documents.size()));
    }
    return documents.empty() ? YAML::Node() : documents.front();
  } catch (const YAML::ParserException& e) {
    std::string where;
    if (e.mark.line >= 0 && e.mark.column >= 0) {
      where = " at line " + std::to_string(e.mark.line + 1) + ", column " +
              std::to_string(e.mark.column + 1);
    }
    FailKey(document, "YAML syntax error" + where + ": " + OneLine(e.msg));
  } catch (const YAML::Exception& e) {
    FailKey(document, "YAML error: " + OneLine(e.what()));
  }
}

std::string DescribeYaml(const YAML::Node& node) {
  if (node.IsSequence()) return "a sequence";
  if (node.IsMap()) return "a map";
  const std::string text = node.IsScalar() ? node.Scalar() : "";
  switch (ClassifyYaml(node)) {
    case Kind::kNull:
      return "null";
    case Kind::kBool:
      return "boolean " + text;
    case Kind::kInt:
      return "integer " + EscapeForMessage(text);
    case Kind::kFloat:
      return "float " + EscapeForMessage(text);
    case Kind::kString:
      return "string " + QuoteForMessage(text);
    case Kind::kBadTag:
    case Kind::kNotScalar:
      break;
  }
  return "value " + QuoteForMessage(text) + " tagged " +
         QuoteForMessage(node.Tag());
}

std::string GetString(const std::string& key, const YAML::Node& node) {
  if (ClassifyYaml(node) != Kind::kString) FailExpected(key, "a string", node);
  return node.as<std::string>();
}

bool GetBool(const std::string& key, const YAML::Node& node) {
  if (ClassifyYaml(node) != Kind::kBool)
    FailExpected(key, "true or false", node);
  return node.as<bool>();
}

uint64_t GetUint(const std::string& key, const YAML::Node& node) {
  if (ClassifyYaml(node) != Kind::kInt) {
    FailExpected(key, "a non-negative integer", node);
  }
  const Integer value = ReadInteger(key, node);
  if (value.negative && value.magnitude != 0) {
    FailKey(key, "expected a non-negative integer, got " +
                     QuoteForMessage(node.Scalar()));
  }
  return value.magnitude;
}

double GetNumber(const std::string& key, const YAML::Node& node) {
  const Kind kind = ClassifyYaml(node);
  if (kind == Kind::kInt) {
    const Integer value = ReadInteger(key, node);
    const auto magnitude = static_cast<double>(value.magnitude);
    return value.negative ? -magnitude : magnitude;
  }
  if (kind != Kind::kFloat) FailExpected(key, "a number", node);
  double value = 0;
  if (!YAML::convert<double>::decode(node, value)) {
    FailKey(key,
            "number " + QuoteForMessage(node.Scalar()) + " is out of range");
  }
  return value;
}

std::vector<std::string> GetStringList(const std::string& key,
                                       const YAML::Node& node) {
  if (ClassifyYaml(node) == Kind::kNull) return {};
  if (!node.IsSequence()) FailExpected(key, "a list of strings", node);
  std::vector<std::string> out;
  for (const YAML::Node& item : node) out.push_back(GetString(key, item));
  return out;
}

void WalkYamlMap(const std::string& document, const std::string& path,
                 const YAML::Node& node, const std::vector<YamlField>& fields) {
  const std::string& where = path.empty() ? document : path;
  // "web:" with everything below it commented out is an empty section.
  if (ClassifyYaml(node) == Kind::kNull) return;
  if (!node.IsMap()) {
    FailKey(where, std::string("expected a map") +
                       (path.empty() ? " at the top level" : "") + ", got " +
                       DescribeYaml(node));
  }
  std::set<std::string> seen;
  for (const auto& entry : node) {
    // Copies: yaml-cpp's iterator hands out a temporary proxy, and a
    // reference into it dangles at the end of the statement.
    const YAML::Node key_node = entry.first;
    const YAML::Node value = entry.second;
    if (!key_node.IsScalar()) {
      FailKey(where, "keys must be strings, got " + DescribeYaml(key_node));
    }
    const std::string& name = key_node.Scalar();
    const std::string key = path.empty() ? name : path + "." + name;
    if (!seen.insert(name).second) {
      FailKey(document, "duplicate key " + QuoteForMessage(key));
    }
    const auto field =
        std::find_if(fields.begin(), fields.end(),
                     [&name](const YamlField& f) { return name == f.name; });
    if (field == fields.end()) {
      FailKey(document, "unknown key " + QuoteForMessage(key));
    }
    field->set(key, value);
  }
}

}  // namespace tcpstated
