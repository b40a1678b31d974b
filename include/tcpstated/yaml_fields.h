// The strict YAML walk shared by the main configuration (config.h) and the
// web configuration (web_config.h): one document, a table of allowed keys
// per map, and typed leaves whose YAML type must be the one asked for.
//
// Types come from yaml-cpp: the tag it reports ("?" for a plain scalar, "!"
// for a quoted or block one, "tag:yaml.org,2002:int" for `!!int`, ...) and
// its `convert<T>` conversions. yaml-cpp 0.7 reads scalars the YAML 1.1
// way, so three of its answers are narrowed to YAML 1.2's: only
// true/True/TRUE and false/False/FALSE are booleans (not yes, on, y), an
// integer with a leading zero ("017", octal to yaml-cpp, decimal to YAML
// 1.2) is refused as ambiguous, and "0o17" is read as octal as YAML 1.2
// says (yaml-cpp has no 0o).
//
// Every error is a one-line ConfigError "key: problem" that names the key
// (dotted path from the root) and quotes the offending value, escaped and
// truncated.
//
// Thread-safety: pure functions.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "tcpstated/message_text.h"

namespace tcpstated {

// Throws ConfigError "key: problem" ("problem" alone for an empty key).
[[noreturn]] void FailKey(const std::string& key, const std::string& problem);

// The one YAML document of `text`, or a null node for an empty text (or
// only empty documents). Throws ConfigError prefixed with `document` for a
// syntax error (with line and column), two documents, or input on which
// yaml-cpp would never finish.
YAML::Node LoadSingleDocument(const std::string& text,
                              const std::string& document);

// What a node reads as under YAML 1.2's core schema (with the narrowing
// above); kBadTag: an explicit tag its text does not match, or one outside
// the core schema.
enum class YamlKind {
  kNull,
  kBool,
  kInt,
  kFloat,
  kString,
  kBadTag,
  kNotScalar
};
YamlKind ClassifyYaml(const YAML::Node& node);

// Throws ConfigError "key: expected <expected>, got <DescribeYaml(node)>"
// (or names the mismatched tag).
[[noreturn]] void FailExpected(const std::string& key, const char* expected,
                               const YAML::Node& node);

// "string \"abc\"", "integer 5", "a map", "null", ...: what a value is, for
// "expected X, got Y".
std::string DescribeYaml(const YAML::Node& node);

// Typed leaves; each throws ConfigError naming `key` when the node is not
// of the asked type or out of the type's range.
std::string GetString(const std::string& key, const YAML::Node& node);
bool GetBool(const std::string& key, const YAML::Node& node);
uint64_t GetUint(const std::string& key, const YAML::Node& node);
double GetNumber(const std::string& key, const YAML::Node& node);  // any
// A sequence of strings; null is the empty list.
std::vector<std::string> GetStringList(const std::string& key,
                                       const YAML::Node& node);

// One allowed key of a map and what to do with its value (`key` is the
// dotted path of the value).
struct YamlField {
  const char* name;
  std::function<void(const std::string& key, const YAML::Node& value)> set;
};

// Applies `fields` to the map `node` found at `path` ("" for the root). A
// null node is an empty map. Unknown and duplicate keys, non-scalar keys
// and a node that is not a map are errors: those of the map's own shape
// are reported under `path` (under `document` at the root), unknown and
// duplicate keys under `document`.
void WalkYamlMap(const std::string& document, const std::string& path,
                 const YAML::Node& node, const std::vector<YamlField>& fields);

}  // namespace tcpstated
