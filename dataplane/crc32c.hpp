// CRC32-C, the hash of the dataplane's tables (flows, services, Maglev's
// flow hash, neighbours, fragments), fed 1, 2, 4 or 8 bytes at a time.
//
// With SSE4.2 known at build time (-march), the crc32 instruction itself.
// Otherwise DPDK's rte_hash_crc_*(), which checks on every call which
// implementation this CPU has (a load and a branch per call on the packet
// path).  Same values either way: CRC32-C runs over bytes, so a key may be
// fed in any pieces, in order.
#pragma once

#include <cstdint>

#if defined(__SSE4_2__) && defined(__x86_64__)
#include <nmmintrin.h>
#else
#include <rte_hash_crc.h>
#endif

namespace podgate::dp {

#if defined(__SSE4_2__) && defined(__x86_64__)
inline uint32_t crc32c_u64(uint32_t h, uint64_t w) noexcept { return static_cast<uint32_t>(_mm_crc32_u64(h, w)); }
inline uint32_t crc32c_u32(uint32_t h, uint32_t w) noexcept { return _mm_crc32_u32(h, w); }
inline uint32_t crc32c_u16(uint32_t h, uint16_t w) noexcept { return _mm_crc32_u16(h, w); }
inline uint32_t crc32c_u8(uint32_t h, uint8_t w) noexcept { return _mm_crc32_u8(h, w); }
#else
inline uint32_t crc32c_u64(uint32_t h, uint64_t w) noexcept { return rte_hash_crc_8byte(w, h); }
inline uint32_t crc32c_u32(uint32_t h, uint32_t w) noexcept { return rte_hash_crc_4byte(w, h); }
inline uint32_t crc32c_u16(uint32_t h, uint16_t w) noexcept { return rte_hash_crc_2byte(w, h); }
inline uint32_t crc32c_u8(uint32_t h, uint8_t w) noexcept { return rte_hash_crc_1byte(w, h); }
#endif

}  // namespace podgate::dp
