// Memory running out on demand, for tests of what must survive it: while
// allocations_before_failure is 0 or more, the allocation that finds it at 0
// throws std::bad_alloc (and disarms it).  Replaces the global operator new
// and delete of the test program: include it in one file of a test binary.
// A test arms it around the call it sweeps, one allocation after another:
//
//   for (long n = 0;; ++n) {
//     ...; allocations_before_failure = n; call();
//     const bool failed = allocations_before_failure.exchange(-1) < 0;
//     ...; if (!failed) break;
//   }
#pragma once

#include <atomic>
#include <cstdlib>
#include <new>

namespace podgate::test {
inline std::atomic<long> allocations_before_failure{-1};
}  // namespace podgate::test

void* operator new(std::size_t n) {
  auto& left = podgate::test::allocations_before_failure;
  if (left.load(std::memory_order_relaxed) >= 0 && left.fetch_sub(1, std::memory_order_relaxed) == 0) {
    throw std::bad_alloc();
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
// Out of line: inlined, g++ would see a `new` pointer reach free()
// (-Wmismatched-new-delete), though this operator new is malloc's.
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
