// Internet checksum helpers: full computation (RFC 1071) and incremental
// update (RFC 1624), header-only so the per-packet rewrite code inlines them.
//
// Byte order, once and for all.  Every checksum and every field value passed
// to the incremental helpers is the 16/32-bit value *as it sits in the packet*
// (network order, loaded as-is into an rte_be16_t / rte_be32_t), and the
// result is returned the same way, ready to be stored back unchanged.  This
// is correct without any swapping because the one's complement sum is
// byte-order independent (RFC 1071 §2(B)): summing byte-swapped 16-bit words
// gives the byte-swapped sum, and folding the end-around carry works the same
// in either order.  A 32-bit field is treated as its two 16-bit words as they
// lie in memory; on any CPU, the low and high halves of the loaded rte_be32_t
// are exactly those two words (in some order, which addition does not care
// about).  Never mix a host-order operand (e.g. a port from to_be16's input)
// with network-order ones.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include <rte_byteorder.h>

#include "dataplane/net.hpp"

namespace podgate::dp {

// Folds a 32-bit accumulator of 16-bit words into 16 bits with end-around
// carry (RFC 1071 §4.1).  Two folds suffice for any sum below 2^32 - 2^16.
constexpr uint16_t csum_fold(uint32_t sum) noexcept {
  sum = (sum & 0xffffu) + (sum >> 16);
  sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for one 16-bit word m -> m'.
// Eqn. 3 (not eqn. 2) so that the result equals a full recomputation, also
// when the sum lands on one's complement zero (RFC 1624 §3).
constexpr rte_be16_t csum_update16(rte_be16_t check, rte_be16_t old_value,
                                   rte_be16_t new_value) noexcept {
  uint32_t sum = static_cast<uint16_t>(~check);
  sum += static_cast<uint16_t>(~old_value);
  sum += new_value;
  return static_cast<rte_be16_t>(~csum_fold(sum));
}

// Eqn. 3 for a 32-bit field (an IPv4 address): its two 16-bit words change.
constexpr rte_be16_t csum_update32(rte_be16_t check, rte_be32_t old_value,
                                   rte_be32_t new_value) noexcept {
  const uint32_t old_inv = ~old_value;
  uint32_t sum = static_cast<uint16_t>(~check);
  sum += (old_inv & 0xffffu) + (old_inv >> 16);
  sum += (new_value & 0xffffu) + (new_value >> 16);
  return static_cast<rte_be16_t>(~csum_fold(sum));
}

// Eqn. 3 for an address and a port changing together (NAT of a TCP/UDP
// checksum: the address through the pseudo-header, the port in the header);
// one fold instead of two.
constexpr rte_be16_t csum_update32_16(rte_be16_t check, rte_be32_t old32,
                                      rte_be32_t new32, rte_be16_t old16,
                                      rte_be16_t new16) noexcept {
  const uint32_t old_inv = ~old32;
  uint32_t sum = static_cast<uint16_t>(~check);
  sum += (old_inv & 0xffffu) + (old_inv >> 16);
  sum += (new32 & 0xffffu) + (new32 >> 16);
  sum += static_cast<uint16_t>(~old16);
  sum += new16;
  return static_cast<rte_be16_t>(~csum_fold(sum));
}

// One's complement addition of two 16-bit words (RFC 1071 §2(A)): the sum
// with its carry added back, an add and an add-with-carry.  Adding words
// one by one this way gives what folding their 32-bit sum gives: zero only
// when every word is zero, otherwise the value in [1, 0xffff] congruent to
// the sum modulo 0xffff.
constexpr uint16_t csum_add16(uint16_t a, uint16_t b) noexcept {
  uint16_t sum = 0;
  const bool carry = __builtin_add_overflow(a, b, &sum);
  return static_cast<uint16_t>(sum + carry);
}

// The middle term of eqn. 3, ~m + m', for a 32-bit field (an IPv4
// address) changing: the same for every packet of a connection in one
// direction, so an IPv4 flow record keeps its addresses' (Flow::csum_addr).
// The opposite change's term is its complement.  Its four 16-bit words
// added with csum_add16(): no fold.
constexpr uint16_t csum_term32(rte_be32_t old_value, rte_be32_t new_value) noexcept {
  const uint32_t old_inv = ~old_value;
  return csum_add16(csum_add16(static_cast<uint16_t>(old_inv), static_cast<uint16_t>(old_inv >> 16)),
                    csum_add16(static_cast<uint16_t>(new_value), static_cast<uint16_t>(new_value >> 16)));
}

// The middle term of eqn. 3, ~m + m', folded, for a 16-byte address and a
// port changing together (IPv6 NAT): the same for every packet of a
// connection in one direction, so a flow record keeps it.  The opposite
// change's term is its complement.
inline uint16_t csum_delta_ip6_port(const uint8_t* old_ip, const uint8_t* new_ip, rte_be16_t old_port,
                                    rte_be16_t new_port) noexcept {
  uint64_t sum = 0;
  for (int i = 0; i < 16; i += 4) {
    uint32_t o, n;
    std::memcpy(&o, old_ip + i, 4);
    std::memcpy(&n, new_ip + i, 4);
    o = ~o;
    sum += (o & 0xffffu) + (o >> 16) + (n & 0xffffu) + (n >> 16);
  }
  sum += static_cast<uint16_t>(~old_port);
  sum += new_port;
  sum = (sum & 0xffff'ffffu) + (sum >> 32);
  return csum_fold(static_cast<uint32_t>(sum));
}

// Eqn. 3 with its middle term given in 16-bit pieces (a kept address term,
// the TTL's constant, a port's ~m and m'), each added with csum_add16():
// no fold at the end.
template <class... Terms>
constexpr rte_be16_t csum_apply_terms(rte_be16_t check, Terms... terms) noexcept {
  uint16_t sum = static_cast<uint16_t>(~check);
  ((sum = csum_add16(sum, static_cast<uint16_t>(terms))), ...);
  return static_cast<rte_be16_t>(~sum);
}

// Eqn. 3 with its middle term given (csum_delta_ip6_port()).
constexpr rte_be16_t csum_apply_delta(rte_be16_t check, uint16_t delta) noexcept {
  return csum_apply_terms(check, delta);
}

// RFC 1071 §4.1: the one's complement sum of `bytes` taken as big-endian
// 16-bit words (an odd last byte is padded with a zero octet), added to
// `sum` and left unfolded.  Host order: bytes {0x45, 0x00} add 0x4500.
// Chain calls to cover non-contiguous data such as a pseudo-header; every
// chained piece but the last must have even length.
constexpr uint32_t ones_sum(std::span<const uint8_t> bytes,
                            uint32_t sum = 0) noexcept {
  size_t i = 0;
  for (; i + 1 < bytes.size(); i += 2) {
    sum += static_cast<uint32_t>(bytes[i]) << 8 | bytes[i + 1];
    // Fold early so that any length fits the 32-bit accumulator.
    if (sum >= 0x80000000u) sum = (sum & 0xffffu) + (sum >> 16);
  }
  if (i < bytes.size()) sum += static_cast<uint32_t>(bytes[i]) << 8;
  return sum;
}

// The Internet checksum of `bytes` (with its checksum field zeroed), in
// network order, ready to store in the header: the complement of the folded
// one's complement sum (RFC 1071 §1).  Not fast; for ICMP and for tests.
constexpr rte_be16_t internet_checksum(std::span<const uint8_t> bytes,
                                       uint32_t sum = 0) noexcept {
  return to_be16(static_cast<uint16_t>(~csum_fold(ones_sum(bytes, sum))));
}

// RFC 1071 §1: "To check a checksum, the 1's complement sum is computed over
// the same set of octets, including the checksum field. If the result is all
// 1 bits (-0 in 1's complement arithmetic), the check succeeds."
constexpr bool internet_checksum_ok(std::span<const uint8_t> bytes) noexcept {
  return csum_fold(ones_sum(bytes)) == 0xffffu;
}

}  // namespace podgate::dp
