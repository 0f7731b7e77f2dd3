#include "dataplane/punt.hpp"

#include "dataplane/fragment_table.hpp"

namespace podgate::dp {

int g_punt_field_offset = -1;
int g_fragment_field_offset = -1;

bool register_mbuf_fields() noexcept {
  if (g_punt_field_offset >= 0 && g_fragment_field_offset >= 0) return true;
  static const rte_mbuf_dynfield punt = {
      "podgate_punt_meta", sizeof(PuntMeta), alignof(PuntMeta), 0};
  static const rte_mbuf_dynfield fragment = {
      "podgate_fragment_meta", sizeof(FragmentMeta), alignof(FragmentMeta), 0};
  g_punt_field_offset = rte_mbuf_dynfield_register(&punt);
  g_fragment_field_offset = rte_mbuf_dynfield_register(&fragment);
  return g_punt_field_offset >= 0 && g_fragment_field_offset >= 0;
}

}  // namespace podgate::dp
