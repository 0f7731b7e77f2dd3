// diff_services(); see service_list.hpp.
#include "control/config/service_list.hpp"

namespace podgate::ctl {

ServiceDiff diff_services(const ServiceList& before, const ServiceList& after) {
  ServiceDiff d;
  size_t i = 0, j = 0;
  const size_t n = before.size(), m = after.size();
  while (i < n && j < m) {
    if (before.identity(i) == after.identity(j)) {
      ++i, ++j;
    } else if (j + 1 < m && before.identity(i) == after.identity(j + 1)) {
      d.added.push_back(j++);  // inserted before i
    } else if (i + 1 < n && before.identity(i + 1) == after.identity(j)) {
      d.removed.push_back(before.shared(i++));  // erased
    } else {
      d.removed.push_back(before.shared(i++));  // replaced (or changed)
      d.added.push_back(j++);
    }
  }
  for (; i < n; ++i) d.removed.push_back(before.shared(i));
  for (; j < m; ++j) d.added.push_back(j);
  return d;
}

}  // namespace podgate::ctl
