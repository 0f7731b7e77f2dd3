// A token bucket on a millisecond clock: `rate` a second on average, in
// bursts of at most a tenth of a second's worth (and never fewer than
// kMinBurst, so a low rate still passes a burst's packets).  Tokens are
// earned in whole units: time is credited only when it earned one, so a
// low rate loses nothing to rounding.  Used by the workers' per-source DNS
// limit and the kernel twins' limits.  Not thread-safe: one owner.
#pragma once

#include <algorithm>
#include <cstdint>

namespace podgate::dp {

struct TokenBucket {
  static constexpr uint32_t kMinBurst = 16;

  uint32_t tokens = 0;
  uint32_t at_ms = 0;  // when tokens were last earned (wraps: only differences count)

  // Takes one token at `now_ms`; false when there is none.
  bool take(uint32_t now_ms, uint32_t rate) noexcept {
    const uint32_t cap = std::max(kMinBurst, rate / 10);
    const uint64_t earned = uint64_t{now_ms - at_ms} * rate / 1000;
    if (earned > 0) {
      tokens = static_cast<uint32_t>(std::min<uint64_t>(cap, tokens + earned));
      at_ms = now_ms;
    }
    if (tokens == 0) return false;
    --tokens;
    return true;
  }
};

}  // namespace podgate::dp
