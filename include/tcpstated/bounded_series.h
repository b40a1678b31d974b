// Bounding a traffic-dependent label set: keep the largest groups, sum the
// rest into one group labelled "other", so that sums over the series stay
// exact however many groups there are (tracking.max_series_per_metric).
// Used by the FIN_WAIT2 and peer-liveness detectors.
//
// Thread-safety: pure functions. What throws: std::bad_alloc only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <map>
#include <utility>
#include <vector>

namespace tcpstated {

// Label value of the folded series. Never a real value of the labels it
// replaces (netns, ports, endpoints are numbers; comm "other" is possible
// but then it simply shares the row, as in the CLOSE_WAIT families).
inline constexpr const char kOtherLabel[] = "other";

// One output row: `key` is null for the folded "other" group.
template <typename Key, typename Group>
struct BoundedRow {
  const Key* key = nullptr;
  Group group;
};

// Keeps the `max_kept` groups that rank first by `before(a, b)` (a strict
// weak order over map entries; ties broken by key), in key order, followed
// by one row summing the others with `merge(&into, group)` if any were left
// out.
template <typename Key, typename Group, typename Before, typename Merge>
std::vector<BoundedRow<Key, Group>> KeepTopFoldOther(
    const std::map<Key, Group>& groups, size_t max_kept, Before before,
    Merge merge) {
  using Entry = typename std::map<Key, Group>::value_type;
  std::vector<const Entry*> order;
  order.reserve(groups.size());
  for (const Entry& e : groups) order.push_back(&e);
  auto ranks_first = [&before](const Entry* a, const Entry* b) {
    if (before(a->second, b->second)) return true;
    if (before(b->second, a->second)) return false;
    return a->first < b->first;
  };
  std::vector<const Entry*> folded;
  if (order.size() > max_kept) {
    auto nth = order.begin() + static_cast<std::ptrdiff_t>(max_kept);
    std::nth_element(order.begin(), nth, order.end(), ranks_first);
    folded.assign(nth, order.end());
    order.erase(nth, order.end());
    std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
      return a->first < b->first;
    });
  }
  std::vector<BoundedRow<Key, Group>> rows;
  rows.reserve(order.size() + 1);
  for (const Entry* e : order) rows.push_back({&e->first, e->second});
  if (!folded.empty()) {
    BoundedRow<Key, Group> other;
    for (const Entry* e : folded) merge(&other.group, e->second);
    rows.push_back(std::move(other));
  }
  return rows;
}

}  // namespace tcpstated
