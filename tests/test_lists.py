#!/usr/bin/env python3
"""Every test file in tests/ runs: a test that no list names never runs,
and nobody notices (test_batches.py, the only test of the default delete
path, sat outside every list for a release).

Compares the test programs and scripts in the source tree with $(TESTS) of
Makefile.am (passed in as RETENTIOND_TESTS by AM_TESTS_ENVIRONMENT) and
fails naming each file that no list runs. A few run in a stage of their own
in scripts/check; they are named below, and the test checks that the stage
still runs them.
"""

import glob
import os
import sys
import unittest

SRCDIR = os.environ.get("RETENTIOND_SRCDIR") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))

# Run by scripts/check in a stage of its own, not by `make check`.
OWN_STAGE = {
    "tests/integration/test_valgrind.py": "valgrind",
}


def in_tree():
    names = []
    for pattern in ("tests/integration/test_*.py", "tests/test_*.py"):
        names += glob.glob(os.path.join(SRCDIR, pattern))
    # unit test programs: tests/unit/test_x.c builds tests/unit/test_x
    names += [c[:-2] for c in glob.glob(os.path.join(SRCDIR, "tests/unit/test_*.c"))]
    return sorted(os.path.relpath(n, SRCDIR) for n in names)


class TestLists(unittest.TestCase):
    def test_every_test_file_is_run(self):
        listed = set(os.environ.get("RETENTIOND_TESTS", "").split())
        self.assertTrue(listed, "RETENTIOND_TESTS is not set: run this from `make check`")
        missing = [t for t in in_tree() if t not in listed and t not in OWN_STAGE]
        self.assertEqual(missing, [], "in tests/ but in no test list of Makefile.am "
                         "(UNIT_TESTS or INTEGRATION_TESTS): they never run")
        # and every listed test exists (a renamed file is not silently lost)
        for t in listed:
            base = t[:-len(".py")] if t.endswith(".py") else t + ".c"
            self.assertTrue(os.path.exists(os.path.join(SRCDIR, t if t.endswith(".py")
                                                        else base)),
                            f"{t} is listed but its source is not in the tree")

    def test_own_stage_tests_are_run_by_scripts_check(self):
        path = os.path.join(SRCDIR, "scripts", "check")
        if not os.path.exists(path):
            # a release tarball (distcheck) has scripts/check too; say so
            self.fail(f"{path} is missing")
        with open(path) as f:
            text = f.read()
        for test, stage in OWN_STAGE.items():
            self.assertIn(f"TESTS={test}", text,
                          f"scripts/check's {stage} stage no longer runs {test}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
