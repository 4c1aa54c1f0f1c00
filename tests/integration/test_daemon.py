"""`retentiond daemon` (SPEC §2, §5, §7): the schedule and window, signals,
the systemd notify protocol, reconnecting after a PostgreSQL restart, and
the metrics file.

Each test starts the real binary in the background against its own
database, listens on a datagram socket as $NOTIFY_SOCKET, and asserts on
what the daemon says (notify messages, log lines), its exit status and the
database it leaves behind.
"""

import hashlib
import os
import signal
import socket
import stat
import threading
import time

from harness import (IS_ROOT, IntegrationTest, PostgresCluster, SmtpServer,
                     main, run, spawn, write_config, write_secret)

# The tests run as root in CI containers; the daemon refuses root without it.
ROOT_ARGS = ["--allow-root"] if IS_ROOT else []


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def wait_for(predicate, timeout=20, interval=0.05, what="condition"):
    """Poll PREDICATE until it returns a true value, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class NotifyListener:
    """A datagram socket standing in for systemd's notify socket; collects
    every message in order. NAME starting with '@' is an abstract socket."""

    def __init__(self, name):
        self.env = name
        addr = "\0" + name[1:] if name.startswith("@") else name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(addr)
        self.sock.settimeout(0.1)
        self.messages = []
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append(data.decode())

    def snapshot(self):
        with self._lock:
            return list(self.messages)

    def find(self, prefix, start=0):
        """Index of the first message at or after START that starts with
        PREFIX (one of its lines), or None."""
        for i, m in enumerate(self.snapshot()[start:], start):
            if any(line.startswith(prefix) for line in m.split("\n")):
                return i
        return None

    def wait(self, prefix, start=0, timeout=20):
        return wait_for(lambda: self.find(prefix, start) is not None and
                        self.find(prefix, start) + 1,
                        timeout, what=f"{prefix!r} on the notify socket "
                        f"(got {self.snapshot()[start:]})") - 1

    def close(self):
        self._stop = True
        self._thread.join()
        self.sock.close()


class DaemonTest(IntegrationTest):

    def setUp(self):
        super().setUp()
        self.db = "t_" + self._testMethodName[5:40].lower()
        self.cluster.createdb(self.db)
        self.logpath = os.path.join(self.tmp, "daemon.log")
        self.proc = None

    def sql(self, text, cluster=None):
        return (cluster or self.cluster).psql(text, dbname=self.db)

    def config(self, rules, schedule='interval = "1h";', extra="", cluster=None,
               name="retentiond.conf"):
        cluster = cluster or self.cluster
        return write_config(os.path.join(self.tmp, name), f"""
database: {{
  conninfo = "{cluster.conninfo(self.db)}";
  statement_timeout = "60s";
}};
schedule: {{ {schedule} }};
{extra}
rules = (
{rules}
);
""")

    def seed(self, table="events", expired=40, fresh=60, cluster=None):
        self.sql(f"""
CREATE TABLE IF NOT EXISTS {table} (id serial PRIMARY KEY,
    created_at timestamptz NOT NULL, payload text);
CREATE INDEX IF NOT EXISTS {table}_created_at ON {table} (created_at);
INSERT INTO {table} (created_at, payload)
SELECT now() - interval '10 days' - g * interval '1 second', 'old'
FROM generate_series(1, {expired}) g;
INSERT INTO {table} (created_at, payload)
SELECT now() - interval '1 hour', 'new' FROM generate_series(1, {fresh}) g;
""", cluster=cluster)

    @staticmethod
    def rule(name="events", table="events", limits=""):
        return f"""{{
  name = "{name}"; policy = "{name} are kept 2 days";
  table = "public.{table}"; age_column = "created_at"; retain = "2 days";
  {limits}
}}"""

    def init_db(self, conf):
        proc = run(["init-db"], config=conf)
        self.assertExit(proc, 0)

    def start(self, conf, env=None, notify=True):
        """Start the daemon; returns the NotifyListener (or None)."""
        listener = None
        env = dict(env or {})
        if notify:
            listener = NotifyListener(os.path.join(self.tmp, "notify.sock"))
            self.addCleanup(listener.close)
            env["NOTIFY_SOCKET"] = listener.env
        self.logfile = open(self.logpath, "w")
        self.addCleanup(self.logfile.close)
        self.proc = spawn(["daemon"] + ROOT_ARGS, config=conf, env=env,
                          stdout=self.logfile, stderr=self.logfile)
        self.addCleanup(self.kill)
        return listener

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signal the daemon and wait; returns (exit status, seconds)."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except Exception:
            self.fail(f"the daemon did not exit within {timeout} s\n{self.log()}")
        return rc, time.monotonic() - t0

    def log(self):
        return read(self.logpath)

    def wait_log(self, text, count=1, timeout=20):
        return wait_for(lambda: self.log().count(text) >= count, timeout,
                        what=f"{text!r} in the log:\n{self.log()}")

    def alive(self):
        return self.proc.poll() is None

    def runs(self, cluster=None):
        """[(id, status, config_sha256)] of the daemon's runs, oldest first."""
        return [(int(r[0]), r[1], r[2]) for r in (cluster or self.cluster).query(
            "SELECT id, status, config_sha256 FROM retention.runs"
            " WHERE command = 'daemon' ORDER BY id", dbname=self.db)]

    def wait_runs(self, n, status=None, timeout=30, cluster=None):
        def done():
            rs = self.runs(cluster)
            return len(rs) >= n and rs[n - 1][1] not in ("running",) and \
                (status is None or rs[n - 1][1] == status) and rs
        return wait_for(done, timeout, what=f"run {n} to finish "
                        f"({status or 'any status'}); runs: {self.runs(cluster)}\n"
                        f"{self.log()}")

    def audit_rows(self, cluster=None):
        return int(self.sql("SELECT coalesce(sum(rows), 0) FROM retention.actions",
                            cluster=cluster))

    def count(self, where, table="events", cluster=None):
        return int(self.sql(f"SELECT count(*) FROM {table} WHERE {where}",
                            cluster=cluster))

    # --- the notify protocol --------------------------------------------------

    def test_notify_messages_come_in_protocol_order(self):
        self.seed()
        conf = self.config(self.rule())
        self.init_db(conf)
        # a 2 s watchdog: pings every second, and statement_timeout (60 s)
        # is worth a warning
        notify = self.start(conf, env={"WATCHDOG_USEC": "2000000"})

        ready = notify.wait("READY=1")
        self.wait_runs(1, "ok")
        status = notify.wait("STATUS=", ready + 1)
        watchdog = notify.wait("WATCHDOG=1", status + 1)
        idle = notify.wait("STATUS=idle, last cycle ok (40 rows changed), "
                           "next cycle at ", ready + 1)

        self.proc.send_signal(signal.SIGHUP)
        reloading = notify.wait("RELOADING=1", watchdog + 1)
        msg = notify.snapshot()[reloading]
        self.assertRegex(msg, r"\ARELOADING=1\nMONOTONIC_USEC=\d+\Z")
        ready2 = notify.wait("READY=1", reloading + 1)
        self.wait_log("configuration reloaded")

        rc, _ = self.stop()
        self.assertEqual(rc, 0, self.log())
        stopping = notify.wait("STOPPING=1", ready2 + 1)
        self.assertLess(ready, status)
        self.assertLess(status, watchdog)
        self.assertGreater(idle, ready)
        self.assertLess(watchdog, reloading)
        self.assertLess(reloading, ready2)
        self.assertLess(ready2, stopping)
        # one READY before the reload, one after it: READY means "up"
        msgs = notify.snapshot()
        self.assertEqual(sum(m == "READY=1" for m in msgs), 2, msgs)
        # every message is one assignment per line, STATUS on one line
        for m in msgs:
            for line in m.split("\n"):
                self.assertRegex(line, r"\A[A-Z_]+=.*\Z")
        self.assertIn("statement_timeout (60000 ms) is not below half the "
                      "watchdog timeout", self.log())

    def test_watchdog_is_fed_during_a_long_cycle(self):
        # 1 row per batch and a pause: a cycle of several seconds, far
        # longer than the 1 s watchdog timeout
        self.seed(expired=60, fresh=100)
        conf = self.config(self.rule(limits='batch_size = 1; batch_target = "1ms"; '
                                     'pause = "100ms";'))
        self.init_db(conf)
        notify = self.start(conf, env={"WATCHDOG_USEC": "1000000"})
        ready = notify.wait("READY=1")
        wait_for(lambda: self.audit_rows() >= 25, 30, what="25 batches")
        self.assertEqual(self.runs()[0][1], "running")
        msgs = notify.snapshot()[ready:]
        pings = sum(m == "WATCHDOG=1" for m in msgs)
        # 25 batches take >= 2.5 s: at least 4 pings at 0.5 s
        self.assertGreaterEqual(pings, 4, msgs)
        self.assertTrue(any(m.startswith("STATUS=rule events: ") and
                            m.endswith(", cycle 1 of today") for m in msgs), msgs)
        rc, _ = self.stop()
        self.assertEqual(rc, 0)

    # --- reload ---------------------------------------------------------------

    def test_reload_keeps_the_old_config_when_the_new_one_is_broken(self):
        self.seed("events")
        self.seed("visits")
        good = self.config(self.rule())
        self.init_db(good)
        with open(good, "rb") as f:
            sha_old = hashlib.sha256(f.read()).hexdigest()
        notify = self.start(good)
        self.wait_runs(1, "ok")
        self.assertEqual(self.runs()[0][2], sha_old)

        # broken: an unknown duration unit
        self.config(self.rule().replace('"2 days"', '"2 fortnights"'))
        self.proc.send_signal(signal.SIGHUP)
        self.wait_log("no changes were applied")
        self.assertIn("fortnights", self.log())
        self.assertTrue(self.alive())
        mark = len(notify.snapshot())
        # a cycle now still runs the old config
        self.proc.send_signal(signal.SIGUSR1)
        self.wait_runs(2, "ok")
        self.assertEqual(self.runs()[1][2], sha_old)
        self.assertEqual(self.count("payload = 'old'", "visits"), 40)
        self.assertIsNotNone(notify.find("READY=1", 0))

        # good again, with a second rule: the next cycle uses it
        new = self.config(self.rule() + "," + self.rule("visits", "visits"))
        with open(new, "rb") as f:
            sha_new = hashlib.sha256(f.read()).hexdigest()
        self.proc.send_signal(signal.SIGHUP)
        self.wait_log("configuration reloaded")
        notify.wait("READY=1", mark)
        self.proc.send_signal(signal.SIGUSR1)
        self.wait_runs(3, "ok")
        self.assertEqual(self.runs()[2][2], sha_new)
        self.assertEqual(self.count("payload = 'old'", "visits"), 0)
        self.assertEqual(self.count("payload = 'new'", "visits"), 60)
        rc, _ = self.stop()
        self.assertEqual(rc, 0)

    def test_reload_with_unreachable_new_database_keeps_the_connection(self):
        self.seed()
        conf = self.config(self.rule())
        self.init_db(conf)
        self.start(conf, notify=False)
        self.wait_runs(1, "ok")
        bad = os.path.join(self.tmp, "nosock")
        os.mkdir(bad)
        text = read(conf).replace(f"host={self.cluster.host}",
                                         f"host={bad}")
        write_config(conf, text)
        self.proc.send_signal(signal.SIGHUP)
        self.wait_log("could not connect with the new database settings")
        self.assertIn("no changes were applied", self.log())
        self.proc.send_signal(signal.SIGUSR1)
        self.wait_runs(2, "ok")
        rc, _ = self.stop()
        self.assertEqual(rc, 0)

    # --- stopping ---------------------------------------------------------------

    def test_sigterm_stops_after_the_batch_in_flight(self):
        self.seed(expired=2000, fresh=3000)
        conf = self.config(self.rule(limits='batch_size = 5; batch_target = "1ms"; '
                                     'pause = "50ms";'))
        self.init_db(conf)
        notify = self.start(conf)
        wait_for(lambda: int(self.sql("SELECT count(*) FROM retention.actions")) >= 5,
                 30, what="five committed batches")
        rc, secs = self.stop()
        self.assertEqual(rc, 0, self.log())
        self.assertLess(secs, 5, "a stop between batches is quick")
        runs = self.runs()
        self.assertEqual([r[1] for r in runs], ["interrupted"], self.log())
        left = self.count("payload = 'old'")
        self.assertGreater(left, 0, "the cycle was cut short")
        # every row removed has its audit row, and no audit row lies
        self.assertEqual(self.audit_rows(), 2000 - left)
        self.assertEqual(self.count("payload = 'new'"), 3000)
        self.assertIn("stopping after the batch in flight", self.log())
        self.assertNotIn("cancelled the statement", self.log())
        self.assertIsNotNone(notify.find("STOPPING=1"))
        self.assertExit(run(["verify"], config=conf), 0)

    def test_sigterm_cancels_a_statement_still_running_after_the_grace(self):
        # the row with id 16 takes 30 s to delete: its batch is in flight
        # when SIGTERM comes, and is cancelled after the 5 s grace
        conf = self.slow_batch_setup()
        self.start(conf)
        self.wait_slow_batch()
        done_before = self.audit_rows()
        rc, secs = self.stop()
        self.assertEqual(rc, 0, self.log())
        self.assertGreaterEqual(secs, 4.5, "the batch in flight had its grace")
        self.assertLess(secs, 12, "and was then cancelled, not waited for")
        self.assertIn("cancelled the statement still running", self.log())
        self.assertEqual([r[1] for r in self.runs()], ["interrupted"], self.log())
        # the cancelled batch left no trace: row 16 is there, unaudited
        self.assertEqual(self.count("id = 16"), 1)
        self.assertEqual(self.audit_rows(), done_before)
        self.assertEqual(self.audit_rows(), 30 - self.count("payload = 'old'"))
        self.assertEqual(self.sql("SELECT count(*) FROM pg_stat_activity"
                                  " WHERE wait_event = 'PgSleep'"), "0")

    def slow_batch_setup(self):
        self.seed(expired=30, fresh=100)
        self.sql("""
CREATE FUNCTION slow_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.id = 16 THEN PERFORM pg_sleep(30); END IF;
  RETURN OLD;
END $$;
CREATE TRIGGER slow BEFORE DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION slow_delete();
""")
        conf = self.config(self.rule(limits='batch_size = 1; pause = "0ms";'))
        self.init_db(conf)
        return conf

    def wait_slow_batch(self):
        wait_for(lambda: self.sql("SELECT count(*) FROM pg_stat_activity"
                                  " WHERE wait_event = 'PgSleep'") == "1",
                 30, what="the slow batch")

    def test_second_sigint_exits_at_once(self):
        conf = self.slow_batch_setup()
        self.start(conf, notify=False)
        self.wait_slow_batch()
        self.proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        self.assertTrue(self.alive(), "the first SIGINT waits for the batch")
        rc, secs = self.stop(signal.SIGINT)
        self.assertEqual(rc, 130, self.log())
        self.assertLess(secs, 2)
        self.assertIn("interrupted again, exiting now", self.log())
        # the database rolled the batch back: nothing unaudited is gone
        wait_for(lambda: self.sql("SELECT count(*) FROM pg_stat_activity"
                                  " WHERE wait_event = 'PgSleep'") == "0", 45,
                 what="the abandoned statement to end")
        self.assertEqual(self.audit_rows(), 30 - self.count("payload = 'old'"))

    # --- the database going away ---------------------------------------------

    def test_postgres_restart_is_survived_without_losing_audit_rows(self):
        self.seed(expired=600, fresh=1000)
        conf = self.config(self.rule(limits='batch_size = 5; batch_target = "1ms"; '
                                     'pause = "10ms";'))
        self.init_db(conf)
        self.start(conf)
        wait_for(lambda: self.audit_rows() >= 20, 30, what="some batches")

        # restart in the middle of the cycle
        self.cluster.restart()
        self.wait_log("lost the connection to the database")
        self.wait_log("database connection restored", timeout=30)
        self.assertTrue(self.alive())
        # the cut-short cycle is retried at once and completes; its
        # predecessor's run row is marked interrupted
        self.wait_runs(2, "ok", timeout=120)
        self.assertEqual([r[1] for r in self.runs()], ["interrupted", "ok"])
        self.assertEqual(self.count("payload = 'old'"), 0)
        self.assertEqual(self.audit_rows(), 600)
        self.assertExit(run(["verify"], config=conf), 0)

        # and a restart while idle: noticed at once, logged once
        self.cluster.restart()
        self.wait_log("lost the connection to the database", count=2)
        self.wait_log("database connection restored", count=2, timeout=30)
        self.seed(expired=10, fresh=0)
        self.proc.send_signal(signal.SIGUSR1)
        self.wait_runs(3, "ok")
        self.assertEqual(self.audit_rows(), 610)
        log = self.log()
        # once per outage, not once per retry
        self.assertEqual(log.count("lost the connection to the database"), 2, log)
        self.assertEqual(log.count("database connection restored"), 2, log)
        rc, _ = self.stop()
        self.assertEqual(rc, 0)

    def test_ready_only_once_the_database_is_up(self):
        late = PostgresCluster(name="late")
        late.start()
        self.addCleanup(late.stop)
        late.createdb(self.db)
        self.seed(cluster=late)
        conf = self.config(self.rule(), cluster=late)
        self.init_db(conf)
        late.stop(remove=False)

        notify = self.start(conf)
        time.sleep(3.5)     # attempts at 0, 1 and 3 s fail
        self.assertIsNone(notify.find("READY=1"), notify.snapshot())
        self.assertIsNotNone(notify.find("STATUS=database unreachable, retrying in "))
        self.assertEqual(self.log().count("could not connect to the database"), 1,
                         self.log())
        late.start()
        notify.wait("READY=1", timeout=15)
        self.wait_log("database connection made after")
        self.wait_runs(1, "ok", cluster=late)
        rc, _ = self.stop()
        self.assertEqual(rc, 0)

    def test_long_outage_is_mailed_directly_once(self):
        # The outbox lives in the unreachable database, so the alert goes
        # straight to SMTP, after a minute (a restart is not worth a mail).
        smtp = SmtpServer(starttls=True, auth=("retentiond", "smtp-pw"))
        smtp.start()
        self.addCleanup(smtp.stop)
        pw = write_secret(os.path.join(self.tmp, "smtp.password"), "smtp-pw")
        nosock = os.path.join(self.tmp, "nosock")
        os.mkdir(nosock)
        conf = write_config(os.path.join(self.tmp, "retentiond.conf"), f"""
database: {{ conninfo = "host={nosock} port=5432 dbname=x user=x"; }};
mail: {{ url = "{smtp.url}"; username = "retentiond"; password_file = "{pw}";
        ca_file = "{smtp.cafile}"; from = "retentiond@example.com";
        to = [ "ops@example.com" ]; send = "errors"; }};
rules = ( {self.rule()} );
""")
        notify = self.start(conf)
        time.sleep(20)
        self.assertEqual(smtp.messages(), [], "no mail for a short outage")
        msgs = smtp.wait_for_messages(1, timeout=75)
        self.assertEqual(len(msgs), 1, self.log())
        self.assertIn("database unreachable", msgs[0]["Subject"])
        body = msgs[0].get_body(("plain",)).get_content()
        self.assertIn(nosock, body)
        self.assertIsNone(notify.find("READY=1"))
        self.assertTrue(self.alive())
        self.assertEqual(self.log().count("could not connect to the database"), 1)
        rc, _ = self.stop()
        self.assertEqual(rc, 0)
        self.assertEqual(len(smtp.messages()), 1)

    # --- schedule ---------------------------------------------------------------

    def test_sigusr1_starts_a_cycle_now(self):
        self.seed()
        conf = self.config(self.rule())
        self.init_db(conf)
        # an abstract notify socket, as systemd may hand out
        listener = NotifyListener(f"@rtd-test-{os.getpid()}-{time.monotonic_ns()}")
        self.addCleanup(listener.close)
        self.start(conf, env={"NOTIFY_SOCKET": listener.env}, notify=False)
        listener.wait("READY=1")
        self.wait_runs(1, "ok")
        self.seed(expired=7, fresh=0)
        time.sleep(1)
        self.assertEqual(len(self.runs()), 1, "no second cycle within the hour")
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGUSR1)
        self.wait_runs(2, "ok", timeout=10)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(self.count("payload = 'old'"), 0)
        self.assertEqual(self.audit_rows(), 47)
        rc, _ = self.stop()
        self.assertEqual(rc, 0)

    def test_interval_counts_from_start_to_start(self):
        self.seed()
        conf = self.config(self.rule(), schedule='interval = "2s";')
        self.init_db(conf)
        self.start(conf, notify=False)
        self.wait_runs(3, timeout=20)
        started = [float(x) for x in self.sql(
            "SELECT extract(epoch FROM started_at) FROM retention.runs"
            " ORDER BY id").split()]
        gaps = [b - a for a, b in zip(started, started[1:])]
        for g in gaps:
            self.assertAlmostEqual(g, 2.0, delta=0.5, msg=gaps)
        rc, _ = self.stop()
        self.assertEqual(rc, 0)

    @staticmethod
    def window(start_offset_min, length_min):
        """A window starting START_OFFSET_MIN minutes from now (local time)."""
        now = time.localtime()
        minute = now.tm_hour * 60 + now.tm_min
        start = (minute + start_offset_min) % 1440
        end = (start + length_min) % 1440
        return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}", start

    def test_window_keeps_cycles_out_of_forbidden_hours(self):
        self.seed()
        # opens in two hours, for an hour: now is forbidden
        text, start = self.window(120, 60)
        conf = self.config(self.rule(),
                           schedule=f'interval = "1s"; window = "{text}";')
        self.init_db(conf)
        notify = self.start(conf)
        notify.wait("READY=1")
        # "at HH:MM", or "at YYYY-MM-DD HH:MM" when that is tomorrow
        opens = f"{start // 60:02d}:{start % 60:02d}"
        i = notify.wait("STATUS=idle, next cycle at ")
        self.assertTrue(notify.snapshot()[i].endswith(f" {opens}"),
                        notify.snapshot()[i])
        time.sleep(3)   # three intervals
        self.assertEqual(self.runs(), [])
        self.assertEqual(self.count("payload = 'old'"), 40)
        # SIGUSR1 is the operator asking: it runs outside the window too
        self.proc.send_signal(signal.SIGUSR1)
        self.wait_runs(1, "ok")
        self.assertEqual(self.count("payload = 'old'"), 0)
        time.sleep(2.5)
        self.assertEqual(len(self.runs()), 1, "and the window still holds after it")
        rc, _ = self.stop()
        self.assertEqual(rc, 0)

    def test_window_that_includes_now_lets_cycles_run(self):
        self.seed()
        # from an hour ago for two hours (spans midnight late at night)
        text, _ = self.window(-60, 120)
        conf = self.config(self.rule(),
                           schedule=f'interval = "1h"; window = "{text}";')
        self.init_db(conf)
        self.start(conf, notify=False)
        self.wait_runs(1, "ok")
        rc, _ = self.stop()
        self.assertEqual(rc, 0)

    # --- the command line -----------------------------------------------------

    def test_refuses_root_without_allow_root(self):
        if not IS_ROOT:
            self.skipTest("needs root")
        self.seed()
        conf = self.config(self.rule())
        proc = run(["daemon"], config=conf, timeout=10)
        self.assertExit(proc, 2)
        self.assertOutput(proc, r"refusing to run as root")
        self.assertOutput(proc, r"--allow-root")
        self.assertEqual(self.cluster.scalar(
            f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{self.db}'"), "0")

    def test_broken_config_at_start_is_a_usage_error(self):
        conf = self.config(self.rule().replace('"2 days"', '"soon"'))
        proc = run(["daemon"] + ROOT_ARGS, config=conf, timeout=10)
        self.assertExit(proc, 2)
        self.assertOutput(proc, r"retentiond\.conf:\d+: rule \"events\": \"retain\"")

    # --- metrics --------------------------------------------------------------

    def test_metrics_file_after_run_and_daemon_cycles(self):
        self.seed()
        metrics = os.path.join(self.tmp, "prom", "retentiond.prom")
        os.mkdir(os.path.dirname(metrics))
        conf = self.config(self.rule(), extra=f'metrics_file = "{metrics}";')
        self.init_db(conf)
        self.sql("INSERT INTO retention.legal_holds (subject, subject_id, reason,"
                 " placed_by) VALUES ('customer', '1', 'audit', 'test')")

        self.assertExit(run(["run"], config=conf), 0)
        text = read(metrics)
        self.assertIn('retentiond_rows_changed{rule="events",action="delete"} 40\n', text)
        self.assertIn('retentiond_rows_changed_total{rule="events",action="delete"} 40\n',
                      text)
        self.assertIn("retentiond_last_cycle_success 1\n", text)
        self.assertIn("retentiond_rules_failing 0\n", text)
        self.assertIn("retentiond_legal_holds_active 1\n", text)
        self.assertIn('retentiond_erasure_requests{state="pending"} 0\n', text)
        self.assertRegex(text, r"retentiond_last_success_timestamp_seconds 1\d{9}\.\d+\n")
        self.assertRegex(text, r"retentiond_cycle_duration_seconds \d+\.\d+\n")
        self.assertEqual(stat.S_IMODE(os.stat(metrics).st_mode), 0o644)

        # the daemon's cycle: the last-cycle gauge starts over, the total
        # (from the audit trail) keeps counting
        self.seed(expired=5, fresh=0)
        self.start(conf, notify=False)
        self.wait_runs(1, "ok")
        wait_for(lambda: 'action="delete"} 45\n' in read(metrics), 10,
                 what="the metrics file of the daemon's cycle")
        text = read(metrics)
        self.assertIn('retentiond_rows_changed{rule="events",action="delete"} 5\n', text)
        self.assertIn('retentiond_rows_changed_total{rule="events",action="delete"} 45\n',
                      text)
        self.assertEqual(os.listdir(os.path.dirname(metrics)), ["retentiond.prom"])
        rc, _ = self.stop()
        self.assertEqual(rc, 0)


if __name__ == "__main__":
    main()
