#include "dataplane/punt.hpp"

namespace podgate::dp {

int g_punt_field_offset = -1;

bool register_punt_field() noexcept {
  if (g_punt_field_offset >= 0) return true;
  static const rte_mbuf_dynfield desc = {
      "podgate_punt_meta", sizeof(PuntMeta), alignof(PuntMeta), 0};
  g_punt_field_offset = rte_mbuf_dynfield_register(&desc);
  return g_punt_field_offset >= 0;
}

}  // namespace podgate::dp
