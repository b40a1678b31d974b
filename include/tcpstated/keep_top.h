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
#include <unordered_map>
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

namespace keep_top_detail {

// KeepTop over any container of (key, group) pairs; `in_key_order` says
// whether it iterates in key order already (std::map).
template <typename Key, typename Group, typename Groups, typename Before,
          typename Fold>
TopGroups<Key, Group> Keep(const Groups& groups, bool in_key_order,
                           size_t max_kept, Before before, Fold fold) {
  TopGroups<Key, Group> out;
  out.kept.reserve(groups.size());
  for (const auto& g : groups) out.kept.push_back(&g);
  auto by_key = [](const auto* a, const auto* b) {
    return a->first < b->first;
  };
  if (out.kept.size() <= max_kept) {
    if (!in_key_order) std::sort(out.kept.begin(), out.kept.end(), by_key);
    return out;
  }
  auto nth = out.kept.begin() + static_cast<std::ptrdiff_t>(max_kept);
  std::nth_element(out.kept.begin(), nth, out.kept.end(), before);
  Group other{};
  for (auto it = nth; it != out.kept.end(); ++it) fold(other, (*it)->second);
  out.other = std::move(other);
  out.kept.erase(nth, out.kept.end());
  std::sort(out.kept.begin(), out.kept.end(), by_key);
  return out;
}

}  // namespace keep_top_detail

// Keeps the `max_kept` groups that rank first by `before` (a strict total
// order on entry pointers) and returns them in key order; the others are
// folded into one group, starting from Group{}, by `fold(acc, group)`.
// Linear on average (nth_element), plus sorting what is kept.
template <typename Key, typename Group, typename Before, typename Fold>
TopGroups<Key, Group> KeepTop(const std::map<Key, Group>& groups,
                              size_t max_kept, Before before, Fold fold) {
  return keep_top_detail::Keep<Key, Group>(groups, /*in_key_order=*/true,
                                           max_kept, before, fold);
}

// The same for groups in a hash map (a detector that groups many keys every
// cycle, where ordered inserts cost more than the rest of its work): what is
// kept comes back in key order all the same, so the output does not depend
// on the container.
template <typename Key, typename Group, typename Hash, typename Before,
          typename Fold>
TopGroups<Key, Group> KeepTop(
    const std::unordered_map<Key, Group, Hash>& groups, size_t max_kept,
    Before before, Fold fold) {
  return keep_top_detail::Keep<Key, Group>(groups, /*in_key_order=*/false,
                                           max_kept, before, fold);
}

}  // namespace tcpstated
