"""The entry point of every end-to-end suite (tests/e2e/test_*.py).

Python's unittest exits 0 when every test was skipped, so meson would report
a suite that checked nothing as passed.  meson's convention for "skipped" is
exit status 77: a suite whose every test was skipped exits 77 (meson reports
SKIP, and tools/test.sh counts it under "skipped"); a suite where only some
tests were skipped passes, and names them on stderr.
"""
import os
import sys
import unittest

SKIP_EXIT = 77  # meson: the test was skipped


def main(verbosity=2, need_root=True):
    if need_root and os.geteuid() != 0:
        print("SKIP: end-to-end tests need root (network namespaces, TAP devices)",
              file=sys.stderr)
        sys.exit(SKIP_EXIT)
    program = unittest.main(verbosity=verbosity, exit=False)
    result = program.result
    if not result.wasSuccessful():
        sys.exit(1)
    for test, reason in result.skipped:
        print(f"SKIP: {test.id()}: {reason}", file=sys.stderr)
    # A skipped class (skipUnless on a TestCase) runs no test at all: its
    # skip is recorded without a test being counted as run.
    if result.skipped and len(result.skipped) >= result.testsRun:
        print(f"SKIP: all {len(result.skipped)} test(s) of this suite were skipped",
              file=sys.stderr)
        sys.exit(SKIP_EXIT)
    if result.testsRun == 0:
        print("no test ran", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)
