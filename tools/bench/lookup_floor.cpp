// What two dependent cache lines a lookup cost on this machine, without
// podgate around them (docs/benchmarks.md, "Where the 1M established
// packet waits").  It replays the worker's three passes over bursts of 32:
//   pass 1: hash the key, prefetch its bucket (then some dummy work, as the
//           worker parses the packet);
//   pass 2: compare the bucket's 16-bit tags (SSE2), prefetch the record;
//           a share of keys (DISPLACED percent) first needs its second
//           bucket, read in a pass 2b;
//   pass 3: read the record (WRITE=1: and write it), then dummy work.
// against one line a lookup: records placed by hash, two to a line.
// Memory is 2 MiB hugepages where free (echo 1024 > /proc/sys/vm/nr_hugepages),
// else 4 KiB pages.  x86-64 only; not built by meson:
//
//   g++ -O2 -march=native -std=c++20 -o /tmp/lookup_floor tools/bench/lookup_floor.cpp
//   taskset -c 1 /tmp/lookup_floor 1000000 10      # flows, dummy work a pass
#include <emmintrin.h>
#include <sys/mman.h>
#include <x86intrin.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

namespace {

uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

struct alignas(64) Bucket {
  uint16_t tags[16];
  uint16_t refs[16];
};
struct alignas(32) Record {
  uint64_t key, pad, data, stamp;
};

// Zeroed memory, on hugepages where the kernel has them.
template <typename T>
T* table(uint64_t n) {
  const size_t bytes = (n * sizeof(T) + (2u << 20)) & ~size_t{(2u << 20) - 1};
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
  if (p == MAP_FAILED) p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    std::perror("mmap");
    std::exit(1);
  }
  std::memset(p, 0, bytes);
  return static_cast<T*>(p);
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t flows = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
  const int work = argc > 2 ? std::atoi(argv[2]) : 10;
  const uint64_t displaced = std::getenv("DISPLACED") ? std::strtoull(std::getenv("DISPLACED"), nullptr, 10) : 0;
  const bool write = std::getenv("WRITE") != nullptr;
  const uint64_t buckets = flows / 3 + 1;  // a bucket per 3 flows, as podgate's index
  Bucket* b = table<Bucket>(buckets);
  Record* r = table<Record>(flows + flows / 64);
  // Flow i's record at a random slot, referenced from bucket hash(i).
  std::vector<uint32_t> slot(flows);
  for (uint64_t i = 0; i < flows; ++i) slot[i] = static_cast<uint32_t>(i);
  for (uint64_t i = flows - 1; i > 0; --i) std::swap(slot[i], slot[mix(i) % (i + 1)]);
  std::vector<uint8_t> used(buckets);
  for (uint64_t i = 0; i < flows; ++i) {
    const uint64_t h = mix(i + 7);
    Bucket& bk = b[h % buckets];
    const unsigned k = used[h % buckets]++ & 15;
    bk.tags[k] = static_cast<uint16_t>(h >> 48) | 1;
    bk.refs[k] = static_cast<uint16_t>(slot[i]);  // the low bits do: only the line matters
    r[slot[i]].key = i;
    r[slot[i]].data = i * 3;
  }
  // The one-line layout: two records a line, at line hash % lines.
  const uint64_t lines = flows / 2 * 5 / 4;
  Record* t = table<Record>(2 * lines);
  for (uint64_t i = 0; i < flows; ++i) {
    Record* l = t + 2 * (mix(i + 7) % lines);
    (l[0].key != 0 ? l[1] : l[0]).key = i;
  }
  constexpr int kBurst = 32;
  constexpr uint64_t kPackets = 20'000'000;
  uint64_t seed = 1, acc = 0;
  auto spin = [&](uint64_t x) {
    for (int w = 0; w < work; ++w) {
      x = x * 31 + static_cast<uint64_t>(w);
      asm volatile("" : "+r"(x));
    }
    return x;
  };
  for (int layout = 0; layout < 2; ++layout) {
    for (int rep = 0; rep < 3; ++rep) {
      const uint64_t t0 = __rdtsc();
      for (uint64_t p = 0; p < kPackets; p += kBurst) {
        uint64_t key[kBurst], h[kBurst];
        uint32_t ref[kBurst];
        bool second[kBurst];
        for (int i = 0; i < kBurst; ++i) {
          key[i] = mix(seed++) % flows;
          h[i] = mix(key[i] + 7);
          _mm_prefetch(layout == 0 ? reinterpret_cast<const char*>(&b[h[i] % buckets])
                                   : reinterpret_cast<const char*>(t + 2 * (h[i] % lines)),
                       _MM_HINT_T0);
          acc += spin(h[i]) & 1;
        }
        if (layout == 0) {
          for (int i = 0; i < kBurst; ++i) {
            const Bucket& bk = b[h[i] % buckets];
            const __m128i tag = _mm_set1_epi16(static_cast<short>((h[i] >> 48) | 1));
            const unsigned m =
                static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(bk.tags)), tag))) |
                static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(bk.tags) + 1), tag))) << 16;
            ref[i] = m != 0 ? bk.refs[__builtin_ctz(m) >> 1] : 0;
            second[i] = (h[i] >> 8) % 100 < displaced;
            if (second[i]) {
              _mm_prefetch(reinterpret_cast<const char*>(&b[(h[i] >> 20) % buckets]), _MM_HINT_T0);
            } else {
              _mm_prefetch(reinterpret_cast<const char*>(&r[ref[i]]), _MM_HINT_T0);
            }
          }
          for (int i = 0; i < kBurst; ++i) {
            if (!second[i]) continue;
            acc += b[(h[i] >> 20) % buckets].tags[0] & 1;
            _mm_prefetch(reinterpret_cast<const char*>(&r[ref[i]]), _MM_HINT_T0);
          }
        }
        for (int i = 0; i < kBurst; ++i) {
          Record* rec;
          if (layout == 0) {
            rec = &r[ref[i]];
          } else {
            Record* l = t + 2 * (h[i] % lines);
            rec = &l[l[0].key != key[i] ? 1 : 0];
          }
          acc += rec->data;
          if (write) rec->stamp = p;
          acc += spin(acc) & 1;
        }
      }
      const uint64_t t1 = __rdtsc();
      std::printf("%s flows=%llu work=%d displaced=%llu%%: %.1f TSC cycles a packet\n",
                  layout == 0 ? "bucket, then record" : "record placed by hash",
                  static_cast<unsigned long long>(flows), work, static_cast<unsigned long long>(displaced),
                  static_cast<double>(t1 - t0) / kPackets);
    }
  }
  return static_cast<int>(acc & 0);
}
