#include "dataplane/dp_memory.hpp"

#include <atomic>
#include <cstdlib>

#include <rte_malloc.h>

namespace podgate::dp {

namespace {
std::atomic<bool> g_dpdk_heap{false};
thread_local int t_socket = SOCKET_ID_ANY;
}  // namespace

DpSocketScope::DpSocketScope(int socket) noexcept : previous_(t_socket) { t_socket = socket; }
DpSocketScope::~DpSocketScope() { t_socket = previous_; }

void use_dpdk_heap() noexcept { g_dpdk_heap.store(true); }
bool using_dpdk_heap() noexcept { return g_dpdk_heap.load(std::memory_order_relaxed); }

void* dp_alloc(size_t bytes, size_t align) {
  if (bytes == 0) bytes = 1;
  void* p = nullptr;
  if (using_dpdk_heap()) {
    p = rte_malloc_socket(nullptr, bytes, static_cast<unsigned>(align), t_socket);
    if (p == nullptr && t_socket != SOCKET_ID_ANY) {
      p = rte_malloc_socket(nullptr, bytes, static_cast<unsigned>(align), SOCKET_ID_ANY);
    }
  } else {
    size_t rounded = (bytes + align - 1) / align * align;
    p = std::aligned_alloc(align, rounded);
  }
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void dp_free(void* p) noexcept {
  if (p == nullptr) return;
  if (using_dpdk_heap()) {
    rte_free(p);
  } else {
    std::free(p);
  }
}

}  // namespace podgate::dp
