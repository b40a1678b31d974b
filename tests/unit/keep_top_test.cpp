#include "tcpstated/keep_top.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace tcpstated {
namespace {

using Groups = std::map<std::string, int>;
using Entry = Groups::value_type;

bool Larger(const Entry* a, const Entry* b) {
  if (a->second != b->second) return a->second > b->second;
  return a->first < b->first;
}

void Sum(int& acc, const int& g) { acc += g; }

std::vector<std::string> Keys(const TopGroups<std::string, int>& top) {
  std::vector<std::string> out;
  for (const Entry* e : top.kept) out.push_back(e->first);
  return out;
}

TEST(KeepTop, WithinTheBoundEverythingIsKeptInKeyOrder) {
  Groups groups = {{"b", 1}, {"a", 5}, {"c", 3}};
  auto top = KeepTop(groups, 3, Larger, Sum);
  EXPECT_EQ(Keys(top), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_FALSE(top.other.has_value());
}

TEST(KeepTop, TheLargestAreKeptAndTheRestFoldedExactly) {
  Groups groups = {{"a", 1}, {"b", 9}, {"c", 4}, {"d", 7}, {"e", 2}};
  auto top = KeepTop(groups, 2, Larger, Sum);
  EXPECT_EQ(Keys(top), (std::vector<std::string>{"b", "d"}));
  ASSERT_TRUE(top.other.has_value());
  EXPECT_EQ(*top.other, 1 + 4 + 2);
}

TEST(KeepTop, TiesAreBrokenByTheOrderGiven) {
  Groups groups = {{"x", 3}, {"y", 3}, {"z", 3}};
  auto top = KeepTop(groups, 1, Larger, Sum);
  EXPECT_EQ(Keys(top), (std::vector<std::string>{"x"}));
  EXPECT_EQ(*top.other, 6);
}

TEST(KeepTop, ABoundOfZeroFoldsEverything) {
  Groups groups = {{"a", 1}, {"b", 2}};
  auto top = KeepTop(groups, 0, Larger, Sum);
  EXPECT_TRUE(top.kept.empty());
  EXPECT_EQ(*top.other, 3);
}

TEST(KeepTop, OtherLabelsNameEveryLabelOther) {
  auto labels = OtherLabels({"netns", "port"});
  EXPECT_EQ(labels, (std::map<std::string, std::string>{{"netns", "other"},
                                                        {"port", "other"}}));
}

}  // namespace
}  // namespace tcpstated
