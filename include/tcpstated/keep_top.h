// Bounding a label set that depends on traffic: the largest groups keep
// their own series, and the rest are summed into one series whose
// traffic-dependent labels are "other", so sums over the family stay exact.
// Every detector that reports per-group series goes through KeepTop.
//
// Thread-safety: pure functions. What throws: std::bad_alloc only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tcpstated {

// Label value of the series that sums everything beyond the bound. Never a
// real value: namespaces and ports are decimal.
inline constexpr const char kOther[] = "other";

// Labels of the "other" series: every name given set to kOther.
inline std::map<std::string, std::string> OtherLabels(
    std::initializer_list<const char*> names) {
  std::map<std::string, std::string> labels;
  for (const char* name : names) labels[name] = kOther;
  return labels;
}

template <typename Key, typename Group>
struct TopGroups {
  using Entry = typename std::map<Key, Group>::value_type;
  std::vector<const Entry*> kept;  // in key order
  std::optional<Group> other;      // the rest folded, if there was any
};

// Keeps the `max_kept` groups that rank first by `before` (a strict total
// order on entry pointers) and returns them in key order; the others are
// folded into one group, starting from Group{}, by `fold(acc, group)`.
// Linear on average (nth_element), plus sorting what is kept.
template <typename Key, typename Group, typename Before, typename Fold>
TopGroups<Key, Group> KeepTop(const std::map<Key, Group>& groups,
                              size_t max_kept, Before before, Fold fold) {
  TopGroups<Key, Group> out;
  out.kept.reserve(groups.size());
  for (const auto& g : groups) out.kept.push_back(&g);
  if (out.kept.size() <= max_kept) return out;
  auto nth = out.kept.begin() + static_cast<std::ptrdiff_t>(max_kept);
  std::nth_element(out.kept.begin(), nth, out.kept.end(), before);
  Group other{};
  for (auto it = nth; it != out.kept.end(); ++it) fold(other, (*it)->second);
  out.other = std::move(other);
  out.kept.erase(nth, out.kept.end());
  std::sort(out.kept.begin(), out.kept.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });
  return out;
}

}  // namespace tcpstated
