"""Failover on pg_auto_failover (SPEC §10), an HA engine people use.

A monitor and two nodes of pg_auto_failover (Debian's
postgresql-15-auto-failover) on loopback, private directories and free
ports; retentiond's conninfo is the URI `pg_autoctl show uri --formation
default` prints; `pg_autoctl perform failover` in the middle of a daemon's
cycle. Promise: nothing is lost (every row removed has its audit row on the
new primary, verify passes), the run cut off is `interrupted` and the
cycle completes on the new primary. Every wait is bounded in time.
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

from harness import (IS_ROOT, PG_OS_USER, HarnessError, IntegrationTest,
                     _pg_bindir, clean_env, free_port, main, remove_tree, run,
                     spawn, write_config)

ROOT_ARGS = ["--allow-root"] if IS_ROOT else []
PG_AUTOCTL = shutil.which("pg_autoctl") or "/usr/bin/pg_autoctl"


def wait_for(predicate, timeout, what, interval=0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


class AutoFailover:
    """pg_autoctl processes (a monitor, then nodes), run as the postgres OS
    user when root, each with --run in its own process group."""

    def __init__(self):
        base = "/tmp"
        self.dir = tempfile.mkdtemp(prefix="rtd-paf-", dir=base)
        if IS_ROOT:
            pw = pwd.getpwnam(PG_OS_USER)
            os.chmod(self.dir, 0o755)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.env = clean_env({
            "PATH": _pg_bindir() + ":" + os.environ.get("PATH", ""),
            # pg_autoctl keeps its config and state under XDG: private
            "XDG_CONFIG_HOME": os.path.join(self.dir, "xdg", "config"),
            "XDG_DATA_HOME": os.path.join(self.dir, "xdg", "data"),
            "XDG_RUNTIME_DIR": os.path.join(self.dir, "xdg", "run"),
            "HOME": self.dir,
        })
        self.procs = []
        self.pgdatas = []
        self.monitor_port = None

    def _cmd(self, argv):
        return (["runuser", "-u", PG_OS_USER, "--"] if IS_ROOT else []) + argv

    def autoctl(self, *args, timeout=120, check=True):
        proc = subprocess.run(self._cmd([PG_AUTOCTL] + list(args)), env=self.env,
                              cwd=self.dir, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise HarnessError(f"pg_autoctl {' '.join(args)} failed "
                               f"({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        return proc

    def _start(self, name, args):
        pgdata = os.path.join(self.dir, name)
        log = open(os.path.join(self.dir, name + ".log"), "w")
        if IS_ROOT:
            pw = pwd.getpwnam(PG_OS_USER)
            for sub in ("config", "data", "run"):
                path = os.path.join(self.dir, "xdg", sub)
                os.makedirs(path, exist_ok=True)
                os.chown(path, pw.pw_uid, pw.pw_gid)
                os.chown(os.path.dirname(path), pw.pw_uid, pw.pw_gid)
        port = free_port()
        proc = subprocess.Popen(self._cmd([PG_AUTOCTL] + args + [
            "--pgdata", pgdata, "--pgport", str(port),
            "--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl", "--run"]),
            env=self.env, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs.append(proc)
        self.pgdatas.append(pgdata)
        return port, pgdata

    @property
    def monitor_uri(self):
        return (f"postgres://autoctl_node@127.0.0.1:{self.monitor_port}"
                "/pg_auto_failover?sslmode=disable")

    def monitor_sql(self, sql):
        proc = subprocess.run(
            [os.path.join(_pg_bindir(), "psql"), "-X", "-A", "-t", "-q",
             "-d", self.monitor_uri, "-c", sql], env=clean_env(),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, timeout=30)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def start_monitor(self):
        self.monitor_port, _ = self._start("monitor", ["create", "monitor"])
        wait_for(lambda: self.monitor_sql("SELECT 1") == "1", 180,
                 f"the monitor:\n{self.log('monitor')}")

    def states(self):
        """[(port, reported state, goal state)] of the nodes."""
        out = self.monitor_sql("SELECT nodeport, reportedstate, goalstate"
                               " FROM pgautofailover.node ORDER BY nodeid")
        return [tuple(line.split("|")) for line in (out or "").splitlines()]

    def add_node(self, name):
        port, _ = self._start(name, ["create", "postgres",
                                     "--monitor", self.monitor_uri])
        return port

    def log(self, name):
        return read(os.path.join(self.dir, name + ".log"))[-3000:]

    def stop(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # anything pg_autoctl left behind
        for pgdata in self.pgdatas:
            if os.path.exists(os.path.join(pgdata, "postmaster.pid")):
                subprocess.run(self._cmd([os.path.join(_pg_bindir(), "pg_ctl"),
                                          "stop", "-D", pgdata, "-m", "immediate"]),
                               env=self.env, cwd=self.dir,
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=60)
        self.procs = []
        remove_tree(self.dir)


class AutoFailoverTest(IntegrationTest):

    USE_CLUSTER = False

    def setUp(self):
        super().setUp()
        if not os.access(PG_AUTOCTL, os.X_OK):
            raise HarnessError("pg_autoctl not found: install "
                               "postgresql-15-auto-failover (scripts/deps)")
        self.paf = AutoFailover()
        self.addCleanup(self.paf.stop)
        self.paf.start_monitor()
        self.paf.add_node("node1")
        wait_for(lambda: [s[1] for s in self.paf.states()] == ["single"], 180,
                 f"node1 to be the single primary: {self.paf.states()}\n"
                 f"{self.paf.log('node1')}")
        self.paf.add_node("node2")
        wait_for(lambda: sorted(s[1] for s in self.paf.states()) ==
                 ["primary", "secondary"], 240,
                 f"a primary and a secondary: {self.paf.states()}\n"
                 f"{self.paf.log('node2')}")
        self.uri = self.paf.autoctl("show", "uri", "--formation", "default",
                                    "--pgdata", os.path.join(self.paf.dir,
                                                             "monitor")
                                    ).stdout.strip()
        # the URI names no user: libpq's PGUSER gives it
        self.env = {"PGUSER": "postgres"}

    def sql(self, text):
        proc = subprocess.run(
            [os.path.join(_pg_bindir(), "psql"), "-X", "-A", "-t", "-q",
             "-v", "ON_ERROR_STOP=1", "-d", self.uri, "-c", text],
            env=clean_env(self.env), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        if proc.returncode != 0:
            raise HarnessError(f"psql: {proc.stderr}")
        return proc.stdout.strip()

    def test_perform_failover_in_the_middle_of_a_daemon_cycle(self):
        self.assertIn("target_session_attrs=read-write", self.uri)
        expired = 1500
        self.sql(f"""
CREATE TABLE events (id serial PRIMARY KEY, created_at timestamptz NOT NULL,
                     payload text);
CREATE INDEX ON events (created_at);
INSERT INTO events (created_at, payload)
SELECT now() - interval '10 days' - g * interval '1 second', 'old'
FROM generate_series(1, {expired}) g;
INSERT INTO events (created_at, payload)
SELECT now() - interval '1 hour', 'new' FROM generate_series(1, 100) g;
""")
        conf = write_config(os.path.join(self.tmp, "retentiond.conf"), f"""
database: {{ conninfo = "{self.uri}"; statement_timeout = "60s";
             connect_timeout = "5s"; }};
schedule: {{ interval = "1h"; }};
rules = ( {{
  name = "events"; policy = "events are kept 2 days";
  table = "public.events"; age_column = "created_at"; retain = "2 days";
  max_fraction = 1; batch_size = 5; batch_target = "1ms"; pause = "20ms";
}} );
""")
        self.assertExit(run(["init-db"], config=conf, env=self.env), 0)
        logpath = os.path.join(self.tmp, "daemon.log")
        log = open(logpath, "w")
        self.addCleanup(log.close)
        proc = spawn(["daemon"] + ROOT_ARGS, config=conf, env=self.env,
                     stdout=log, stderr=log)

        def stop_daemon():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.addCleanup(stop_daemon)

        def audited():
            return int(self.sql("SELECT coalesce(sum(rows), 0) "
                                "FROM retention.actions"))
        wait_for(lambda: audited() >= 50, 60, f"some batches:\n{read(logpath)}")
        self.assertLess(audited(), expired, "the cycle ended too soon")
        before = self.paf.states()

        self.paf.autoctl("perform", "failover", "--formation", "default",
                         "--pgdata", os.path.join(self.paf.dir, "monitor"),
                         timeout=180)
        after = self.paf.states()
        primary = lambda states: [s[0] for s in states if s[1] == "primary"]
        self.assertNotEqual(primary(before), primary(after), after)

        def runs():
            return self.sql("SELECT string_agg(status, ',' ORDER BY id) FROM "
                            "retention.runs WHERE command = 'daemon'")
        wait_for(lambda: runs() == "interrupted,ok", 180,
                 f"runs interrupted, ok on the new primary: {runs()}\n"
                 f"{read(logpath)}")
        self.assertIsNone(proc.poll(), read(logpath))
        self.assertIn("lost the connection to the database", read(logpath))
        self.assertEqual(self.sql("SELECT count(*) FROM events "
                                  "WHERE payload = 'old'"), "0")
        self.assertEqual(self.sql("SELECT count(*) FROM events "
                                  "WHERE payload = 'new'"), "100")
        self.assertEqual(audited(), expired)
        v = run(["verify"], config=conf, env=self.env)
        self.assertExit(v, 0)
        self.assertOutput(v, "^audit chain intact", stream="stdout")
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(timeout=30), 0)


if __name__ == "__main__":
    main()
