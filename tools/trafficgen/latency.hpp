// A fixed-size log-linear latency histogram (the HdrHistogram idea): exact
// below 64 cycles, then 32 sub-buckets per power of two, so any value is
// kept within 1/32 (~3%) of itself.  Recording is a few instructions and
// never allocates; one histogram per lcore, merged after the run.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace podgate::gen {

class LatencyHistogram {
 public:
  static constexpr uint32_t kLinear = 64;  // values below: one bucket each
  static constexpr uint32_t kSubBits = 5;  // 32 sub-buckets per octave
  static constexpr uint32_t kBuckets = kLinear + (64 - 6) * (1u << kSubBits);

  void record(uint64_t cycles) noexcept {
    ++buckets_[bucket_of(cycles)];
    ++count_;
    max_ = std::max(max_, cycles);
  }

  void merge(const LatencyHistogram& other) noexcept {
    for (uint32_t i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
    count_ += other.count_;
    max_ = std::max(max_, other.max_);
  }

  uint64_t count() const noexcept { return count_; }
  uint64_t max() const noexcept { return max_; }

  // The smallest recorded bucket's upper bound below which at least
  // `fraction` of the values lie (0 when empty); never above max().  The
  // nearest-rank percentile: the value of rank ceil(fraction * count), so
  // p99.9 of 1600 values is the 1599th, not the 1598th that rounding to
  // the nearest rank gives.
  uint64_t percentile(double fraction) const noexcept {
    if (count_ == 0) return 0;
    // fraction * count can land a few ulps above a whole rank (0.07 * 100
    // is 7.000000000000001), which ceil would make the next rank: a
    // product within that error of an integer is that integer.
    const double exact = fraction * static_cast<double>(count_);
    const auto rank = static_cast<uint64_t>(std::ceil(exact - exact * kRankError));
    uint64_t seen = 0;
    for (uint32_t i = 0; i < kBuckets; ++i) {
      seen += buckets_[i];
      if (seen >= std::max<uint64_t>(rank, 1)) return std::min(upper_bound(i), max_);
    }
    return max_;
  }

 private:
  // A few ulps, relative: the rounding of the fraction and of its product.
  static constexpr double kRankError = 8 * std::numeric_limits<double>::epsilon();

  static constexpr uint32_t bucket_of(uint64_t v) noexcept {
    if (v < kLinear) return static_cast<uint32_t>(v);
    const uint32_t octave = 63 - static_cast<uint32_t>(std::countl_zero(v));  // >= 6
    const uint32_t sub = static_cast<uint32_t>(v >> (octave - kSubBits)) & ((1u << kSubBits) - 1);
    return kLinear + (octave - 6) * (1u << kSubBits) + sub;
  }
  static constexpr uint64_t upper_bound(uint32_t b) noexcept {
    if (b < kLinear) return b;
    const uint32_t octave = (b - kLinear) / (1u << kSubBits) + 6;
    const uint64_t sub = (b - kLinear) % (1u << kSubBits);
    const uint64_t base = (uint64_t{1} << octave) | (sub << (octave - kSubBits));
    return base + (uint64_t{1} << (octave - kSubBits)) - 1;
  }

  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t max_ = 0;
};

}  // namespace podgate::gen
