#!/usr/bin/env python3
"""An independent reference of podgate's Maglev table (issue 16, item 6).

Written from the paper (Eisenbud et al., "Maglev: A Fast and Reliable
Software Network Load Balancer", NSDI'16, section 3.4, Pseudocode 1) and the
contract documented in dataplane/maglev.hpp, not from maglev.cpp: it keeps
the paper's shape (a permutation function per backend and a `next` index per
backend) where the C++ builder keeps an incremental cursor and a bitmap.

The contract (dataplane/maglev.hpp):
  h(key, seed) = fmix64(FNV-1a-64(key) started from 0xcbf29ce484222325 ^ seed)
  offset = h(key, "maglev01") mod M;  skip = h(key, "maglev02") mod (M-1) + 1
  permutation[i][j] = (offset + j * skip) mod M
  backends take turns in ascending byte order of their keys; weight w takes
  a turn whenever its credit (+w per round) reaches the largest weight W, and
  pays W; weight 0 never takes a turn.  Table entries are indices into the
  input as given.

Usage:
  maglev_ref.py --write FILE   write the reference vectors (tests/fixtures/maglev/vectors.txt)
  maglev_ref.py --check FILE   recompute every case and compare with FILE (exit 1 on a difference)
  maglev_ref.py --table M KEY:WEIGHT...   print one table, one owner index per line

The vector file is read by tests/unit/maglev_reference_test.cpp, which builds
the same cases with the C++ builder and compares them slot by slot (every
slot for small M; per-block digests that cover every slot for M = 65537).
"""
import argparse
import sys

MASK64 = (1 << 64) - 1
FNV_OFFSET_BASIS = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
OFFSET_SEED = int.from_bytes(b"maglev01", "big")  # 0x6d61676c65763031
SKIP_SEED = int.from_bytes(b"maglev02", "big")
NO_BACKEND = 0xFFFF
BLOCK = 1024  # slots per block digest in the vector file


def fmix64(k):
    """MurmurHash3's 64-bit finaliser."""
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & MASK64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & MASK64
    k ^= k >> 33
    return k


def fnv1a64(data, basis=FNV_OFFSET_BASIS):
    h = basis
    for byte in data:
        h = ((h ^ byte) * FNV_PRIME) & MASK64
    return h


def key_hash(key, seed):
    return fmix64(fnv1a64(key.encode(), FNV_OFFSET_BASIS ^ seed))


def populate(backends, m):
    """backends: [(key, weight)] in input order.  Returns the table: slot ->
    index into `backends` (NO_BACKEND everywhere when no backend has weight)."""
    entry = [NO_BACKEND] * m
    # Turn order: by key bytes, whatever the input order.
    order = sorted(range(len(backends)), key=lambda i: backends[i][0].encode())
    order = [i for i in order if backends[i][1] > 0]
    if not order:
        return entry
    offset = {i: key_hash(backends[i][0], OFFSET_SEED) % m for i in order}
    skip = {i: key_hash(backends[i][0], SKIP_SEED) % (m - 1) + 1 for i in order}

    def permutation(i, j):  # Pseudocode 1's permutation[i][j], computed on demand
        return (offset[i] + j * skip[i]) % m

    top = max(backends[i][1] for i in order)
    next_ = {i: 0 for i in order}
    credit = {i: 0 for i in order}
    n = 0
    while True:
        for i in order:
            credit[i] += backends[i][1]
            if credit[i] < top:
                continue
            credit[i] -= top
            c = permutation(i, next_[i])
            while entry[c] != NO_BACKEND:
                next_[i] += 1
                c = permutation(i, next_[i])
            entry[c] = i
            next_[i] += 1
            n += 1
            if n == m:
                return entry


def table_digest(slots):
    """FNV-1a-64 over the slot owners as little-endian uint16 (no fmix)."""
    return fnv1a64(b"".join(s.to_bytes(2, "little") for s in slots))


def pod_keys(n, first=10, port=8080):
    return [f"172.{16 + (first + i) // 65536 % 16}.{(first + i) // 256 % 256}.{(first + i) % 256}:{port}"
            for i in range(n)]


def cases():
    """Realistic sizes: M = 65537 (the default), a few endpoint sets and
    weights, keys as podgate makes them ("ip:target_port"); plus small
    tables written out in full."""
    out = []
    out.append(("three_equal_pods", 65537, [(k, 1) for k in pod_keys(3)]))
    ten = pod_keys(10)
    out.append(("ten_pods_weights_1_to_5", 65537,
                [(k, 1 + i % 5) for i, k in enumerate(ten)]))
    # Input not in key order: indices are the input's.
    out.append(("ten_pods_reversed_input", 65537,
                [(k, 1 + i % 5) for i, k in reversed(list(enumerate(ten)))]))
    hundred = pod_keys(100, first=2)
    out.append(("hundred_pods_with_weight_0_and_256", 65537,
                [(k, 0 if i % 17 == 3 else 256 if i % 23 == 5 else 1 + i % 7)
                 for i, k in enumerate(hundred)]))
    out.append(("one_pod", 65537, [("10.244.1.7:80", 1)]))
    out.append(("mixed_ports_m_4099", 4099,
                [(f"10.244.{i // 3}.{i}:{(80, 443, 8443)[i % 3]}", (1, 2, 3, 4)[i % 4])
                 for i in range(12)]))
    out.append(("small_m_251_full", 251, [("b:1", 1), ("a:1", 3), ("c:1", 2), ("d:1", 0)]))
    return out


def write(path):
    lines = ["# Maglev reference vectors: generated by tests/maglev_reference/maglev_ref.py --write",
             "# (do not edit by hand).  Per case: m, one 'endpoint KEY WEIGHT' per input entry,",
             "# counts (slots per input index), digest (FNV-1a-64 of the table as little-endian",
             f"# uint16 owners), blocks (the same digest per {BLOCK} slots, covering every slot),",
             "# and for M < 1000 the full table as 'slots'."]
    for name, m, backends in cases():
        table = populate(backends, m)
        lines.append(f"case {name}")
        lines.append(f"m {m}")
        for key, weight in backends:
            lines.append(f"endpoint {key} {weight}")
        counts = [table.count(i) for i in range(len(backends))]
        lines.append("counts " + " ".join(map(str, counts)))
        lines.append(f"digest {table_digest(table):016x}")
        lines.append("blocks " + " ".join(f"{table_digest(table[b:b + BLOCK]):016x}"
                                          for b in range(0, m, BLOCK)))
        if m < 1000:
            lines.append("slots " + " ".join(map(str, table)))
        lines.append("end")
    text = "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(text)


def check(path):
    import tempfile
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as computed:
        write(computed.name)
        with open(path) as committed:
            same = committed.read() == computed.read()
    if not same:
        print(f"{path} differs from what maglev_ref.py computes; regenerate with --write",
              file=sys.stderr)
        return 1
    print(f"{path}: every case matches the reference")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--write")
    p.add_argument("--check")
    p.add_argument("--table", nargs="+", metavar="ARG")
    args = p.parse_args()
    if args.write:
        write(args.write)
        return 0
    if args.check:
        return check(args.check)
    if args.table:
        m = int(args.table[0])
        backends = [(kw.rsplit(":", 1)[0], int(kw.rsplit(":", 1)[1])) for kw in args.table[1:]]
        print("\n".join(map(str, populate(backends, m))))
        return 0
    p.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
