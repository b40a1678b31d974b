#include "tcpstated/bounded_book.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>

namespace tcpstated {
namespace {

struct Tally {
  uint64_t n = 0;
  void Add(const Tally& o) { n += o.n; }
};
struct IntHash {
  size_t operator()(int v) const { return static_cast<size_t>(v); }
};
// Every key's hash has the same low 20 bits: what a power-of-two index
// would see from a hash made for prime-sized buckets.
struct ShiftedHash {
  size_t operator()(int v) const { return static_cast<size_t>(v) << 20; }
};
using Book = BoundedBook<int, Tally, IntHash>;

std::map<int, uint64_t> Contents(const Book& book) {
  std::map<int, uint64_t> out;
  book.ForEach([&](int k, const Tally& t) { out[k] = t.n; });
  return out;
}

// Against a model: a random stream of touches over more keys than the
// bound. After every touch the book holds the key with its exact tally,
// never more keys than the bound, and what it folded is exactly what left
// it, all of it older than (or as old as) every key it kept.
TEST(BoundedBookTest, MatchesAModelUnderChurn) {
  constexpr size_t kMax = 40;
  Book book(kMax);
  std::map<int, uint64_t> model;  // the keys the book holds
  std::map<int, uint64_t> touched;
  uint64_t other = 0;
  uint64_t folds = 0;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> keys(0, 199);
  for (uint64_t now = 1; now <= 20000; ++now) {
    const int k = keys(rng);
    book.At(k, now).n += 1;
    if (book.folded_keys() != folds) {
      folds = book.folded_keys();
      const std::map<int, uint64_t> held = Contents(book);
      uint64_t newest_folded = 0;
      for (auto it = model.begin(); it != model.end();) {
        if (held.count(it->first) != 0) {
          ++it;
          continue;
        }
        other += it->second;
        newest_folded = std::max(newest_folded, touched[it->first]);
        it = model.erase(it);
      }
      for (const auto& [key, n] : held) {
        if (key != k) {
          ASSERT_GE(touched[key], newest_folded) << key;
        }
      }
    }
    model[k] += 1;
    touched[k] = now;
    ASSERT_LE(book.size(), kMax);
    ASSERT_EQ(book.other().n, other);
    ASSERT_EQ(Contents(book), model) << "after touch " << now;
  }
  EXPECT_GT(folds, 100u);  // the stream did churn
}

TEST(BoundedBookTest, KeysWhoseHashesShareTheLowBitsAreAllKept) {
  BoundedBook<int, Tally, ShiftedHash> book(5000);
  for (int round = 1; round <= 3; ++round) {
    for (int k = 0; k < 2000; ++k) book.At(k, 1).n += 1;
  }
  EXPECT_EQ(book.size(), 2000u);
  EXPECT_EQ(book.folded_keys(), 0u);
  size_t seen = 0;
  book.ForEach([&](int, const Tally& t) {
    EXPECT_EQ(t.n, 3u);
    ++seen;
  });
  EXPECT_EQ(seen, 2000u);
}

TEST(BoundedBookTest, EraseIfKeepsTheRestFindable) {
  Book book(100);
  for (int k = 0; k < 50; ++k) book.At(k, 1).n = static_cast<uint64_t>(k);
  book.EraseIf([](int k) { return k % 2 == 0; });
  EXPECT_EQ(book.size(), 25u);
  EXPECT_EQ(book.other().n, 0u);  // erased, not folded
  for (int k = 1; k < 50; k += 2) {
    EXPECT_EQ(book.At(k, 2).n, static_cast<uint64_t>(k));
  }
  EXPECT_EQ(book.At(0, 2).n, 0u);  // gone: a fresh tally
  EXPECT_EQ(book.size(), 26u);
}

TEST(BoundedBookTest, ACopyIsIndependent) {
  Book book(8);
  book.At(1, 1).n = 5;
  Book copy = book;
  book.At(1, 2).n += 1;
  book.At(2, 3).n = 7;
  EXPECT_EQ(Contents(copy), (std::map<int, uint64_t>{{1, 5}}));
  EXPECT_EQ(copy.At(1, 4).n, 5u);
  EXPECT_EQ(Contents(book), (std::map<int, uint64_t>{{1, 6}, {2, 7}}));
}

}  // namespace
}  // namespace tcpstated
