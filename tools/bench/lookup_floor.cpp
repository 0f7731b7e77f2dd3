// What the lines of a flow lookup cost on this machine, without podgate
// around them (docs/benchmarks.md, "Where the 1M established packet waits"
// and "The 1M established packet, corrected").  Three modes:
//
// FLOWS WORK: replays the worker's three passes over bursts of 32 on
// several layouts, TSC cycles a packet.  Podgate's:
//   pass 1: hash the key, prefetch its bucket (then WORK rounds of dummy
//           work, as the worker parses the packet);
//   pass 2: compare the bucket's 16-bit tags (SSE2), prefetch the record;
//           a share of keys (DISPLACED=N percent) first needs its second
//           bucket, read in a pass 2b;
//   pass 3: read the record (WRITE=1: and write it), then dummy work.
// Against it:
//   - one line a lookup: records placed by hash, two to a line, every
//     lookup reading just its line (the best case: with random hashes
//     not every record fits its line, see `fill`);
//   - a bucket and its records in two adjacent lines, both prefetched in
//     pass 1 (OVERFLOW=N: N percent of records elsewhere, through the
//     bucket);
//   - a bucket and an unrelated record line, prefetched at once.
//
// chase MB: K independent random pointer chases at once over MB MiB, TSC
// cycles a miss.  K = 1 gives the latency of one miss; larger K, how many
// misses overlap (the cycles a miss at the best K bound a burst whose
// every lookup misses).
//
// fill KICKS: what the one-line layout could hold.  Lines of two keys,
// each key in one of two lines; an insert into two full lines moves
// residents to their other line (a cuckoo walk of at most KICKS moves,
// undone when it fails).  It fills a table once, then churns it at fixed
// loads (erase one, insert one), and counts the inserts refused.
//
// Memory is 2 MiB hugepages where free (echo 1024 > /proc/sys/vm/nr_hugepages),
// else 4 KiB pages.  x86-64 only; not built by meson:
//
//   g++ -O2 -march=native -std=c++20 -o /tmp/lookup_floor tools/bench/lookup_floor.cpp
//   taskset -c 1 /tmp/lookup_floor 1000000 10      # flows, dummy work a pass
//   taskset -c 1 /tmp/lookup_floor chase 64         # MiB
//   /tmp/lookup_floor fill 16                       # cuckoo moves at most
#include <emmintrin.h>
#include <sys/mman.h>
#include <x86intrin.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

namespace {

// MurmurHash3's 64-bit finaliser.  Both multiplies matter: one alone
// spreads consecutive keys too evenly (a Weyl sequence), which flatters
// any placement by hash beyond what random hashes allow.
uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51'afd7'ed55'8ccdULL;
  x ^= x >> 33;
  x *= 0xc4ce'b9fe'1a85'ec53ULL;
  return x ^ (x >> 33);
}

// podgate's bucket: 8 16-bit tags, 8 32-bit record references.
struct alignas(64) Bucket {
  uint16_t tags[8];
  uint32_t refs[8];
  uint32_t displaced;
  uint8_t unused[12];
};
static_assert(sizeof(Bucket) == 64);
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

// K random pointer chases at once over `mb` MiB: TSC cycles a miss.
int chase(uint64_t mb) {
  const uint64_t lines = (mb << 20) / 64;
  uint64_t* m = table<uint64_t>(lines * 8);
  // One cycle through every line, in a random order.
  std::vector<uint32_t> order(lines);
  for (uint64_t i = 0; i < lines; ++i) order[i] = static_cast<uint32_t>(i);
  for (uint64_t i = lines - 1; i > 0; --i) std::swap(order[i], order[mix(i) % (i + 1)]);
  for (uint64_t i = 0; i < lines; ++i) m[order[i] * 8] = order[(i + 1) % lines] * 8;
  for (const int k : {1, 2, 4, 8, 16, 24, 32}) {
    uint64_t at[32];
    for (int j = 0; j < k; ++j) at[j] = order[static_cast<uint64_t>(j) * (lines / k)] * 8;
    const uint64_t steps = 2'000'000 / k;
    const uint64_t t0 = __rdtsc();
    for (uint64_t s = 0; s < steps; ++s) {
      for (int j = 0; j < k; ++j) at[j] = m[at[j]];
    }
    const uint64_t t1 = __rdtsc();
    uint64_t sum = 0;
    for (int j = 0; j < k; ++j) sum += at[j];
    std::printf("%llu MiB, %2d chases at once: %6.1f TSC cycles a miss%s\n", static_cast<unsigned long long>(mb), k,
                static_cast<double>(t1 - t0) / static_cast<double>(steps * k), sum == 1 ? " " : "");
  }
  return 0;
}

// The one-line layout's placement: lines of two keys (0: empty), each key
// in its first or second line.
class TwoWayLines {
 public:
  explicit TwoWayLines(uint32_t lines) : lines_(lines), keys_(2 * size_t{lines}, 0) {}
  bool insert(uint64_t key, int kicks, std::mt19937& rng) {
    if (put(first(key), key) || put(second(key), key)) return true;
    // A random walk: take a slot of a full line, move its key to that
    // key's other line; repeat from there while that one is full too.
    std::vector<std::pair<size_t, uint64_t>> undo;
    uint32_t line = (rng() & 1) != 0 ? first(key) : second(key);
    uint64_t moving = key;
    for (int k = 0; k < kicks; ++k) {
      ++moves_;
      const size_t at = 2 * size_t{line} + (rng() & 1);
      undo.emplace_back(at, keys_[at]);
      std::swap(moving, keys_[at]);
      line = first(moving) == line ? second(moving) : first(moving);
      if (put(line, moving)) return true;
    }
    for (auto it = undo.rbegin(); it != undo.rend(); ++it) keys_[it->first] = it->second;
    return false;
  }
  // Moves tried by every insert so far, refused ones' included.
  uint64_t moves() const { return moves_; }
  void erase(uint64_t key) {
    for (const uint32_t line : {first(key), second(key)}) {
      for (size_t at = 2 * size_t{line}; at < 2 * size_t{line} + 2; ++at) {
        if (keys_[at] == key) {
          keys_[at] = 0;
          return;
        }
      }
    }
  }

 private:
  uint32_t first(uint64_t key) const { return static_cast<uint32_t>(((mix(key) >> 32) * lines_) >> 32); }
  uint32_t second(uint64_t key) const {  // another line than first()
    const auto b = static_cast<uint32_t>(((mix(key) & 0xffff'ffff) * (lines_ - 1)) >> 32);
    return b + (b >= first(key) ? 1 : 0);
  }
  bool put(uint32_t line, uint64_t key) {
    for (size_t at = 2 * size_t{line}; at < 2 * size_t{line} + 2; ++at) {
      if (keys_[at] == 0) {
        keys_[at] = key;
        return true;
      }
    }
    return false;
  }
  uint32_t lines_;
  std::vector<uint64_t> keys_;
  uint64_t moves_ = 0;
};

int fill(int kicks) {
  constexpr uint32_t kLines = 1u << 19;
  constexpr uint64_t kSlots = 2 * uint64_t{kLines};
  std::mt19937 rng(3);
  {
    TwoWayLines t(kLines);
    uint64_t held = 0, refused = 0, key = 1;
    while (refused < 1000) {
      if (t.insert(key++, kicks, rng)) {
        ++held;
      } else {
        ++refused;
      }
    }
    std::printf("at most %d moves: the 1000th refused insert at %.1f%% load\n", kicks, 100.0 * held / kSlots);
  }
  for (const double load : {0.70, 0.75, 0.80, 0.85}) {
    TwoWayLines t(kLines);
    std::vector<uint64_t> live;
    uint64_t key = 1;
    while (live.size() < load * kSlots && key < 4 * kSlots) {
      if (t.insert(key, kicks, rng)) live.push_back(key);
      ++key;
    }
    uint64_t refused = 0;
    const uint64_t moves_before = t.moves();
    const uint64_t churn = 4 * kSlots;
    for (uint64_t i = 0; i < churn; ++i) {
      uint64_t& victim = live[rng() % live.size()];
      t.erase(victim);
      victim = key++;
      // A refused key is a connection left unpinned; the next one is let in.
      while (!t.insert(victim, kicks, rng)) {
        ++refused;
        victim = key++;
      }
    }
    const auto inserts = static_cast<double>(churn + refused);
    std::printf("at most %d moves, churn at %.0f%% load: %.3f%% of inserts refused, %.2f moves an insert\n", kicks,
                100 * load, 100.0 * static_cast<double>(refused) / inserts,
                static_cast<double>(t.moves() - moves_before) / inserts);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 2 && std::strcmp(argv[1], "fill") == 0) return fill(std::atoi(argv[2]));
  if (argc > 2 && std::strcmp(argv[1], "chase") == 0) return chase(std::strtoull(argv[2], nullptr, 10));
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
    const unsigned k = used[h % buckets]++ & 7;  // the rare 9th key of a bucket overwrites the 1st
    bk.tags[k] = static_cast<uint16_t>(h >> 48) | 1;
    bk.refs[k] = slot[i];
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
  // The pair layout: a bucket, then a line of two records, in 128 bytes,
  // the records those of the bucket's keys (a third key's overwrites one:
  // only the lines matter).  OVERFLOW percent of keys have their record
  // elsewhere instead, found through the bucket as in podgate's layout.
  struct alignas(128) Pair {
    Bucket bucket;
    Record records[2];
  };
  Pair* pairs = table<Pair>(buckets);
  for (uint64_t i = 0; i < flows; ++i) {
    Record* two = pairs[mix(i + 7) % buckets].records;
    (two[0].key != 0 ? two[1] : two[0]).key = i;
  }
  const uint64_t overflow = std::getenv("OVERFLOW") ? std::strtoull(std::getenv("OVERFLOW"), nullptr, 10) : 0;
  enum Layout { kBucketThenRecord, kOneLine, kPair, kBucketAndRecordAtOnce };
  static const char* const kLayoutNames[] = {
      "bucket, then record", "record placed by hash", "bucket and its records in a 128-byte pair",
      "bucket and a random record prefetched at once"};
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
  // A record line unrelated to the key's bucket (kBucketAndRecordAtOnce,
  // and kPair's overflow), computed, not looked up.
  auto elsewhere = [&](uint64_t key) { return &r[mix(key ^ 0x5555) % flows]; };
  for (const Layout layout : {kBucketThenRecord, kOneLine, kPair, kBucketAndRecordAtOnce}) {
    for (int rep = 0; rep < 3; ++rep) {
      const uint64_t t0 = __rdtsc();
      for (uint64_t p = 0; p < kPackets; p += kBurst) {
        uint64_t key[kBurst], h[kBurst];
        uint32_t ref[kBurst];
        bool second[kBurst];
        // Pass 1: the key's hash, its lines prefetched.
        for (int i = 0; i < kBurst; ++i) {
          key[i] = mix(seed++) % flows;
          h[i] = mix(key[i] + 7);
          switch (layout) {
            case kBucketThenRecord:
              _mm_prefetch(reinterpret_cast<const char*>(&b[h[i] % buckets]), _MM_HINT_T0);
              break;
            case kOneLine:
              _mm_prefetch(reinterpret_cast<const char*>(t + 2 * (h[i] % lines)), _MM_HINT_T0);
              break;
            case kPair:
              _mm_prefetch(reinterpret_cast<const char*>(&pairs[h[i] % buckets].bucket), _MM_HINT_T0);
              _mm_prefetch(reinterpret_cast<const char*>(pairs[h[i] % buckets].records), _MM_HINT_T0);
              break;
            case kBucketAndRecordAtOnce:
              _mm_prefetch(reinterpret_cast<const char*>(&b[h[i] % buckets]), _MM_HINT_T0);
              _mm_prefetch(reinterpret_cast<const char*>(elsewhere(key[i])), _MM_HINT_T0);
              break;
          }
          acc += spin(h[i]) & 1;
        }
        // Pass 2: the bucket's tags, the record prefetched.
        if (layout == kBucketThenRecord) {
          for (int i = 0; i < kBurst; ++i) {
            const Bucket& bk = b[h[i] % buckets];
            const __m128i tag = _mm_set1_epi16(static_cast<short>((h[i] >> 48) | 1));
            const unsigned m = static_cast<unsigned>(
                _mm_movemask_epi8(_mm_cmpeq_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(bk.tags)), tag)));
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
        } else if (layout == kPair && overflow != 0) {
          for (int i = 0; i < kBurst; ++i) {
            if ((h[i] >> 8) % 100 >= overflow) continue;
            acc += pairs[h[i] % buckets].bucket.tags[0] & 1;  // the reference is in the bucket
            _mm_prefetch(reinterpret_cast<const char*>(elsewhere(key[i])), _MM_HINT_T0);
          }
        }
        // Pass 3: the record read (and written).
        for (int i = 0; i < kBurst; ++i) {
          Record* rec = nullptr;
          switch (layout) {
            case kBucketThenRecord:
              rec = &r[ref[i]];
              break;
            case kOneLine: {
              Record* two = t + 2 * (h[i] % lines);
              rec = &two[two[0].key != key[i] ? 1 : 0];
              break;
            }
            case kPair: {
              Pair& pair = pairs[h[i] % buckets];
              acc += pair.bucket.tags[0] & 1;
              rec = (h[i] >> 8) % 100 < overflow ? elsewhere(key[i])
                                                 : &pair.records[pair.records[0].key != key[i] ? 1 : 0];
              break;
            }
            case kBucketAndRecordAtOnce:
              acc += b[h[i] % buckets].tags[0] & 1;
              rec = elsewhere(key[i]);
              break;
          }
          acc += rec->data;
          if (write) rec->stamp = p;
          acc += spin(acc) & 1;
        }
      }
      const uint64_t t1 = __rdtsc();
      std::printf("%s flows=%llu work=%d displaced=%llu%% overflow=%llu%%: %.1f TSC cycles a packet\n",
                  kLayoutNames[layout], static_cast<unsigned long long>(flows), work,
                  static_cast<unsigned long long>(displaced), static_cast<unsigned long long>(overflow),
                  static_cast<double>(t1 - t0) / kPackets);
    }
  }
  return static_cast<int>(acc & 0);
}
