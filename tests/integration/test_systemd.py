"""The shipped systemd units (SPEC §7): they verify clean, their exposure is
2.0 or lower, they carry the settings the spec names, and the sysusers.d
and tmpfiles.d files create what the units expect.

systemd-analyze works offline on unit files, with no running systemd; its
`verify` does need the ExecStart= binary to exist and `man` to find the
Documentation= pages, so the tests verify copies of the templates with
@sbindir@ pointing at the binary under test and MANPATH at the source tree's
doc/.
"""

import os
import re
import shutil
import subprocess

from harness import real_clock, IS_ROOT, RETENTIOND, SRCDIR, IntegrationTest, clean_env, main

SYSTEMD_DIR = os.path.join(SRCDIR, "systemd")
TEMPLATES = ["retentiond.service.in", "retentiond@.service.in",
             "retentiond-run.service.in"]
SERVICES = [t[:-3] for t in TEMPLATES]
ALL_UNITS = SERVICES + ["retentiond-run.timer"]
MAX_EXPOSURE = 2.0


def unit_settings(path):
    """{(section, key): [values]} of a unit file, comments skipped."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, _, value = line.partition("=")
            out.setdefault((section, key.strip()), []).append(value.strip())
    return out


class SystemdUnitTest(IntegrationTest):
    USE_CLUSTER = False

    def setUp(self):
        super().setUp()
        self.analyze = shutil.which("systemd-analyze")
        if not self.analyze:
            self.skipTest("systemd-analyze not installed (package systemd)")
        # units as `make install` would write them, naming the binary
        # under test so that verify finds an executable ExecStart=
        self.units = os.path.join(self.tmp, "units")
        os.mkdir(self.units)
        sbindir = os.path.dirname(os.path.abspath(RETENTIOND))
        for t in TEMPLATES:
            with open(os.path.join(SYSTEMD_DIR, t)) as f:
                text = f.read()
            text = text.replace("@sbindir@", sbindir).replace("@sysconfdir@", "/etc")
            self.assertNotRegex(text, r"@[a-z_]+@", f"{t}: unsubstituted variable")
            with open(os.path.join(self.units, t[:-3]), "w") as f:
                f.write(text)
        shutil.copy(os.path.join(SYSTEMD_DIR, "retentiond-run.timer"), self.units)
        # the Documentation= man pages, where man looks for them
        man = os.path.join(self.tmp, "man")
        for section, page in (("8", "retentiond.8"), ("5", "retentiond.conf.5")):
            os.makedirs(os.path.join(man, "man" + section))
            shutil.copy(os.path.join(SRCDIR, "doc", page),
                        os.path.join(man, "man" + section))
        self.env = clean_env({"MANPATH": man, "SYSTEMD_LOG_COLOR": "0",
                              "SYSTEMD_PAGER": "", "NO_COLOR": "1"})

    def analyze_run(self, *args):
        return subprocess.run([self.analyze, *args], cwd=self.units, env=self.env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=120)

    @real_clock("systemd-analyze verify's man(1) fails under libfaketime")
    def test_units_verify_clean(self):
        extra = [] if shutil.which("man") else ["--man=no"]
        for unit in ALL_UNITS:
            with self.subTest(unit=unit):
                proc = self.analyze_run("verify", *extra, os.path.join(self.units, unit))
                # verify exits 0 on mere warnings (an unknown key, a typo
                # in a section): clean means silent as well
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertEqual(proc.stdout + proc.stderr, "",
                                 f"{unit} is not clean")

    def test_verify_catches_a_missing_binary(self):
        # the check above would be worthless if verify ignored ExecStart=
        path = os.path.join(self.units, "retentiond.service")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(re.sub(r"ExecStart=\S+", "ExecStart=/nonexistent/retentiond", text))
        proc = self.analyze_run("verify", "--man=no", path)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("/nonexistent/retentiond", proc.stderr)

    def test_security_exposure_is_at_most_2(self):
        for unit in SERVICES:
            with self.subTest(unit=unit):
                proc = self.analyze_run("security", "--offline=true", "--no-pager",
                                        os.path.join(self.units, unit))
                m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)",
                              proc.stdout)
                self.assertIsNotNone(m, proc.stdout + proc.stderr)
                exposure = float(m.group(1))
                self.assertLessEqual(exposure, MAX_EXPOSURE, proc.stdout)

    def test_units_carry_the_settings_the_spec_names(self):
        for unit in SERVICES:
            with self.subTest(unit=unit):
                s = unit_settings(os.path.join(self.units, unit))
                svc = lambda k: s.get(("Service", k), [])  # noqa: E731
                self.assertEqual(svc("User"), ["retentiond"])
                self.assertEqual(svc("ProtectSystem"), ["strict"])
                self.assertEqual(svc("NoNewPrivileges"), ["yes"])
                self.assertEqual(svc("CapabilityBoundingSet"), [""])
                self.assertEqual(svc("RestrictAddressFamilies"),
                                 ["AF_UNIX AF_INET AF_INET6"])
                self.assertIn("@system-service", svc("SystemCallFilter"))
                self.assertEqual(svc("StateDirectory"), ["retentiond"])
                self.assertEqual(svc("ConfigurationDirectory"), ["retentiond"])
                self.assertEqual(svc("UMask"), ["0077"])
                creds = sorted(v.split(":")[0] for v in svc("LoadCredential"))
                self.assertEqual(creds, ["db-password", "pseudonym-key",
                                         "smtp-password"])
                # a name, not a path: systemd skips a missing one instead
                # of failing the unit (see the comment in the unit)
                for v in svc("LoadCredential"):
                    self.assertNotIn("/", v.split(":", 1)[1])
                with open(os.path.join(SYSTEMD_DIR, unit + ".in")) as f:
                    text = f.read()
                for left_out in ("PrivateNetwork", "IPAddressDeny", "DynamicUser"):
                    self.assertRegex(text, rf"#\s*{left_out}=", "left out, with a why")

    def test_daemon_units_speak_notify_and_reload(self):
        for unit in ("retentiond.service", "retentiond@.service"):
            with self.subTest(unit=unit):
                s = unit_settings(os.path.join(self.units, unit))
                self.assertEqual(s[("Service", "Type")], ["notify"])
                self.assertEqual(s[("Service", "ExecReload")], ["/bin/kill -HUP $MAINPID"])
                self.assertEqual(s[("Service", "Restart")], ["on-failure"])
                exec_start = s[("Service", "ExecStart")][0].split()
                self.assertEqual(exec_start[0], os.path.abspath(RETENTIOND))
                self.assertEqual(exec_start[-1], "daemon")
                # the watchdog leaves room for a statement that runs up
                # to the default statement_timeout (30 s) twice over
                m = re.fullmatch(r"(\d+)(min|s)", s[("Service", "WatchdogSec")][0])
                secs = int(m.group(1)) * (60 if m.group(2) == "min" else 1)
                self.assertGreater(secs, 2 * 30)
        s = unit_settings(os.path.join(self.units, "retentiond@.service"))
        self.assertIn("-c /etc/retentiond/%i.conf", s[("Service", "ExecStart")][0])

    def test_timer_runs_the_oneshot_service(self):
        svc = unit_settings(os.path.join(self.units, "retentiond-run.service"))
        self.assertEqual(svc[("Service", "Type")], ["oneshot"])
        self.assertEqual(svc[("Service", "ExecStart")][0].split()[-1], "run")
        timer = unit_settings(os.path.join(self.units, "retentiond-run.timer"))
        self.assertTrue(timer[("Timer", "OnCalendar")][0])
        self.assertEqual(timer[("Timer", "Persistent")], ["true"])
        self.assertTrue(timer[("Timer", "RandomizedDelaySec")][0])
        self.assertEqual(timer[("Install", "WantedBy")], ["timers.target"])
        proc = self.analyze_run("calendar", timer[("Timer", "OnCalendar")][0])
        self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_sysusers_and_tmpfiles_create_user_and_directories(self):
        if not IS_ROOT:
            self.skipTest("systemd-tmpfiles needs root to chown")
        for tool in ("systemd-sysusers", "systemd-tmpfiles"):
            if not shutil.which(tool):
                self.skipTest(f"{tool} not installed")
        root = os.path.join(self.tmp, "root")
        os.makedirs(os.path.join(root, "etc"))
        proc = subprocess.run(["systemd-sysusers", f"--root={root}",
                               os.path.join(SYSTEMD_DIR, "retentiond.sysusers")],
                              env=self.env, capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(os.path.join(root, "etc", "passwd")) as f:
            entry = [line.split(":") for line in f if line.startswith("retentiond:")]
        self.assertEqual(len(entry), 1)
        uid, home, shell = int(entry[0][2]), entry[0][5], entry[0][6].strip()
        self.assertEqual(home, "/var/lib/retentiond")
        self.assertTrue(shell.endswith("nologin"), shell)
        self.assertLess(uid, 1000, "a system user")
        proc = subprocess.run(["systemd-tmpfiles", f"--root={root}", "--create",
                               os.path.join(SYSTEMD_DIR, "retentiond.tmpfiles")],
                              env=self.env, capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for d in ("var/lib/retentiond", "var/lib/retentiond/reports"):
            st = os.stat(os.path.join(root, d))
            self.assertEqual(st.st_uid, uid, d)
            self.assertEqual(st.st_mode & 0o777, 0o750, d)

    def test_built_units_are_fully_substituted(self):
        # `make` writes them next to the binary's build tree
        built = os.path.join(os.path.dirname(os.path.dirname(
            os.path.abspath(RETENTIOND))), "systemd")
        if not os.path.isdir(built):
            self.skipTest(f"no built units in {built}")
        for unit in SERVICES:
            with self.subTest(unit=unit):
                with open(os.path.join(built, unit)) as f:
                    text = f.read()
                self.assertNotRegex(text, r"@[a-z_]+@")
                self.assertRegex(text, r"(?m)^ExecStart=/\S+/retentiond ")


if __name__ == "__main__":
    main()
