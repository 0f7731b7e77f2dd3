// Memory the workers touch lives in DPDK memory (architecture decision 7):
// hugepages where present, on the worker's NUMA node (DpSocketScope),
// never handed back to the kernel behind the fast path's back.  Before rte_eal_init() (pure unit tests,
// config checking) the same allocator falls back to the C heap.  The switch
// is made once, by main() right after EAL init, before anything is allocated.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <vector>

namespace podgate::dp {

// Route allocations to rte_malloc from now on; called once after EAL init.
void use_dpdk_heap() noexcept;
bool using_dpdk_heap() noexcept;

void* dp_alloc(size_t bytes, size_t align);  // throws std::bad_alloc
void dp_free(void* p) noexcept;

// DPDK memory of NUMA node `socket` for what this thread allocates while
// the scope lives (else any node's, the thread's own first): the control
// thread builds each worker, flow tables and all, for the worker's lcore.
// Where `socket` has no memory, any node's.
class DpSocketScope {
 public:
  explicit DpSocketScope(int socket) noexcept;
  ~DpSocketScope();
  DpSocketScope(const DpSocketScope&) = delete;
  DpSocketScope& operator=(const DpSocketScope&) = delete;

 private:
  int previous_;
};

template <typename T>
struct DpAllocator {
  using value_type = T;
  DpAllocator() noexcept = default;
  template <typename U>
  DpAllocator(const DpAllocator<U>&) noexcept {}  // NOLINT: rebinding
  T* allocate(size_t n) {
    return static_cast<T*>(dp_alloc(n * sizeof(T), alignof(T) < 64 ? 64 : alignof(T)));
  }
  void deallocate(T* p, size_t) noexcept { dp_free(p); }
  template <typename U>
  friend bool operator==(DpAllocator, DpAllocator<U>) noexcept { return true; }
};

template <typename T>
using DpVector = std::vector<T, DpAllocator<T>>;

// Base for objects allocated with `new` that workers read.
struct DpObject {
  static void* operator new(size_t bytes) { return dp_alloc(bytes, 64); }
  static void operator delete(void* p) noexcept { dp_free(p); }
};

}  // namespace podgate::dp
