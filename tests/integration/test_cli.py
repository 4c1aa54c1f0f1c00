"""The command line (SPEC §2): help, version, usage errors, config lookup."""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

# Every command of SPEC §2.
COMMANDS = ["check", "plan", "run", "daemon", "report", "verify", "hold",
            "erase", "erasure", "init-db", "grants", "version"]

VALID_CONFIG = """\
database: {
  conninfo = "host=%(sockdir)s port=1 dbname=shop user=retentiond connect_timeout=2";
};
rules = (
  {
    name = "api-request-logs";
    policy = "API request data is kept no longer than 24 hours";
    table = "public.api_requests";
    age_column = "requested_at";
    retain = "24 hours";
  }
);
"""

# A config that fails to load, with the error on a known line.
BROKEN_CONFIG = """\
database: {
  conninfo = "host=/nonexistent dbname=shop";
};
rules = (
  {
    name = "broken";
    policy = "p";
    table = "public.t";
    age_column = "created_at";
    retain = "%(retain)s";
  }
);
"""


class CliTest(harness.IntegrationTest):
    USE_CLUSTER = False

    def valid_config(self, name="valid.conf"):
        # The database is a directory with no socket in it: unreachable at
        # once, which `check` reports as a warning, not an error.
        return harness.write_config(os.path.join(self.tmp, name),
                                    VALID_CONFIG % {"sockdir": self.tmp})

    def broken_config(self, name):
        return harness.write_config(os.path.join(self.tmp, name),
                                    BROKEN_CONFIG % {"retain": "not a duration"})

    def test_help_lists_every_command(self):
        proc = harness.run(["--help"])
        self.assertExit(proc, 0)
        for cmd in COMMANDS:
            with self.subTest(command=cmd):
                self.assertOutput(proc, r"^\s+%s\b" % re.escape(cmd), "stdout")
        self.assertIn("-c", proc.stdout)

    def test_version_prints_name_and_version(self):
        proc = harness.run(["version"])
        self.assertExit(proc, 0)
        self.assertRegex(proc.stdout, r"\Aretentiond \d+\.\d+\.\d+\n\Z")

    def test_no_command_is_a_usage_error(self):
        proc = harness.run([])
        self.assertExit(proc, 2)
        self.assertNotEqual(proc.stderr.strip(), "")

    def test_unknown_command_exits_2_naming_it(self):
        proc = harness.run(["frobnicate"], config=self.valid_config())
        self.assertExit(proc, 2)
        self.assertIn("frobnicate", proc.stderr)

    def test_unknown_option_exits_2_naming_it(self):
        proc = harness.run(["--no-such-option", "check"])
        self.assertExit(proc, 2)
        self.assertIn("no-such-option", proc.stderr)

    def test_missing_config_file_exits_2_naming_it(self):
        missing = os.path.join(self.tmp, "does-not-exist.conf")
        proc = harness.run(["check"], config=missing)
        self.assertExit(proc, 2)
        self.assertIn(missing, proc.stderr)
        self.assertNotIn("configuration OK", proc.stdout)

    def test_c_option_wins_over_environment(self):
        from_option = self.broken_config("from-option.conf")
        from_env = self.broken_config("from-env.conf")
        proc = harness.run(["check"], config=from_option,
                           env={"RETENTIOND_CONFIG": from_env})
        self.assertExit(proc, 2)
        self.assertIn("from-option.conf", proc.stderr)
        self.assertNotIn("from-env.conf", proc.stderr)

        # and a good file given with -c is used even when the environment
        # names a broken one
        proc = harness.run(["check"], config=self.valid_config(),
                           env={"RETENTIOND_CONFIG": from_env})
        self.assertExit(proc, 0)
        self.assertIn("configuration OK", proc.stdout)

    def test_environment_names_the_config_without_c(self):
        from_env = self.broken_config("from-env.conf")
        proc = harness.run(["check"], env={"RETENTIOND_CONFIG": from_env})
        self.assertExit(proc, 2)
        self.assertIn("from-env.conf", proc.stderr)

        proc = harness.run(["check"],
                           env={"RETENTIOND_CONFIG": self.valid_config()})
        self.assertExit(proc, 0)
        self.assertIn("configuration OK", proc.stdout)

    def test_implemented_commands_are_not_stubs(self):
        config = self.valid_config()
        for cmd in COMMANDS:
            with self.subTest(command=cmd):
                try:
                    proc = harness.run([cmd], config=config, timeout=5)
                except subprocess.TimeoutExpired:
                    continue    # a daemon waiting for its database: real
                self.assertNotIn("not implemented", proc.stderr + proc.stdout)
                self.assertNotIn("unknown command", proc.stderr)


if __name__ == "__main__":
    harness.main()
