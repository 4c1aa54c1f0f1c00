"""Primary, standbys and failover (SPEC §10), on real streaming replication.

The primary is the class's throwaway cluster; StandbyCluster makes a real
streaming standby of it (pg_basebackup -R) on its own socket and port.
Promises checked:

- the commands that write refuse a standby, exit 1, naming it as one;
  those that only read work there and write nothing;
- a multi-host conninfo (keyword form and URI) that lists the standby
  first reaches the primary: target_session_attrs=read-write by default;
- max_replica_lag: a run waits while a standby's replay is paused, says so,
  and finishes once replay resumes; its report says how long it waited;
  a role that cannot see the positions fails the rule (check warns first);
- a failover in the middle of a daemon's cycle (primary stopped with -m
  immediate, standby promoted): the daemon carries on against the new
  primary, the audit rows there equal the rows removed, verify passes and
  the cut-off run is `interrupted`.
"""

import json
import os
import signal
import subprocess
import time
import urllib.parse

from harness import (IS_ROOT, IntegrationTest, PostgresCluster, StandbyCluster,
                     main, run, spawn, write_config)

ROOT_ARGS = ["--allow-root"] if IS_ROOT else []

STANDBY_MESSAGE = (r"the server at {host}:{port} is a standby \(in recovery\); "
                   r"retentiond writes and must connect to the primary")


def wait_for(predicate, timeout=30, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def seed(cluster, db, expired, fresh=10):
    cluster.psql(f"""
CREATE TABLE events (id serial PRIMARY KEY, created_at timestamptz NOT NULL,
                     payload text);
CREATE INDEX ON events (created_at);
INSERT INTO events (created_at, payload)
SELECT now() - interval '10 days' - g * interval '1 second', 'old'
FROM generate_series(1, {expired}) g;
INSERT INTO events (created_at, payload)
SELECT now() - interval '1 hour', 'new' FROM generate_series(1, {fresh}) g;
""", dbname=db)


def rule(limits=""):
    return f"""{{
  name = "events"; policy = "events are kept 2 days";
  table = "public.events"; age_column = "created_at"; retain = "2 days";
  max_fraction = 1; {limits}
}}"""


def config(path, conninfo, rules, extra=""):
    return write_config(path, f"""
database: {{
  conninfo = "{conninfo}";
  statement_timeout = "60s";
  connect_timeout = "5s";
}};
{extra}
rules = (
{rules}
);
""")


def uri(clusters, db, **params):
    """postgresql:// URI naming CLUSTERS' sockets in order."""
    hosts = ",".join(f"{urllib.parse.quote(c.host, safe='')}:{c.port}"
                     for c in clusters)
    q = urllib.parse.urlencode(dict(user="postgres", **params))
    return f"postgresql://{hosts}/{db}?{q}"


class StandbyTest(IntegrationTest):

    @classmethod
    def setUpCluster(cls):
        cls.standby = StandbyCluster(cls.cluster, name="replica1")
        cls.addClassCleanup(cls.standby.stop)
        cls.standby.start()
        cls.standby.wait_streaming()

    def setUp(self):
        super().setUp()
        self.db = "t_" + self._testMethodName[5:40].lower()
        self.cluster.createdb(self.db)

    def sql(self, text, cluster=None):
        return (cluster or self.cluster).psql(text, dbname=self.db)

    def conf(self, conninfo, rules=None, extra="", name="retentiond.conf"):
        return config(os.path.join(self.tmp, name), conninfo,
                      rules or rule(), extra)

    def primary_conf(self, **kw):
        return self.conf(self.cluster.conninfo(self.db), name="primary.conf", **kw)

    def ready(self, expired=30):
        """Table, rows and retentiond's schema on the primary, replayed on
        the standby; returns the primary's config."""
        seed(self.cluster, self.db, expired)
        conf = self.primary_conf()
        self.assertExit(run(["init-db"], config=conf), 0)
        self.standby.wait_streaming()
        return conf

    def runs(self):
        return int(self.sql("SELECT count(*) FROM retention.runs"))

    # --- a standby: writers refused, readers served ---------------------------

    def test_write_commands_refuse_a_standby_and_name_it(self):
        self.ready()
        message = STANDBY_MESSAGE.format(host=self.standby.host,
                                         port=self.standby.port)
        # the standby alone; then with target_session_attrs=any, which
        # libpq accepts a standby for: retentiond still asks the server
        for conninfo in (self.standby.conninfo(self.db),
                         self.standby.conninfo(self.db) +
                         " target_session_attrs=any"):
            conf = self.conf(conninfo)
            for args in (["run"], ["plan"], ["init-db"],
                         ["hold", "add", "customer:1", "--reason", "case 7"],
                         ["hold", "release", "1"],
                         ["erase", "customer:1"],
                         ["access", "customer:1"], ["replay"],
                         ["replay", "--dry-run"]):
                proc = run(args, config=conf)
                self.assertExit(proc, 1, f"{args} with {conninfo}")
                self.assertOutput(proc, message)
                self.assertOutput(proc, "list the primary in database.conninfo")
        # nothing reached the primary either
        self.assertEqual(self.runs(), 0)
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE payload = 'old'"),
                         "30")

    def test_read_commands_work_on_a_standby_and_write_nothing(self):
        primary = self.ready()
        self.assertExit(run(["run"], config=primary), 0)
        self.standby.wait_streaming()
        before = self.sql("SELECT count(*), max(id) FROM retention.runs")
        conf = self.conf(self.standby.conninfo(self.db))

        proc = run(["check"], config=conf)
        self.assertExit(proc, 0)
        self.assertOutput(proc, "^configuration OK", stream="stdout")
        proc = run(["verify"], config=conf)
        self.assertExit(proc, 0)
        self.assertOutput(proc, r"^audit chain intact: 1 action", stream="stdout")
        proc = run(["report", "--format", "json"], config=conf)
        self.assertExit(proc, 0)
        report = json.loads(proc.stdout)
        self.assertEqual(report["rules"][0]["changed"], 30)
        for args in (["hold", "list"], ["erasure", "list"], ["access", "list"],
                     ["report", "--since", "2000-01-01", "--format", "text"]):
            self.assertExit(run(args, config=conf), 0, args)
        # coverage reads the catalog and samples: a standby serves it
        proc = run(["coverage", "--format", "json"], config=conf)
        self.assertExit(proc, 0)
        self.assertOutput(proc, "connected to a standby .*: reading only")
        self.assertEqual(json.loads(proc.stdout)["tables_scanned"], 1)
        self.assertEqual(self.sql("SELECT count(*), max(id) FROM retention.runs"),
                         before)

    def test_daemon_treats_a_standby_like_a_database_that_is_down(self):
        self.ready()
        conf = self.conf(self.standby.conninfo(self.db),
                         extra='schedule: { interval = "1s"; };')
        logpath = os.path.join(self.tmp, "daemon.log")
        with open(logpath, "w") as log:
            proc = spawn(["daemon"] + ROOT_ARGS, config=conf, stdout=log,
                         stderr=log)
            try:
                wait_for(lambda: "retrying with backoff" in read(logpath), 30,
                         what=f"the backoff in the log:\n{read(logpath)}")
                time.sleep(3)   # several intervals: still waiting, alive
                self.assertIsNone(proc.poll(), read(logpath))
            finally:
                proc.send_signal(signal.SIGTERM)
                rc = proc.wait(timeout=30)
        text = read(logpath)
        self.assertEqual(rc, 0, text)
        self.assertRegex(text, "could not connect to the database: " +
                         STANDBY_MESSAGE.format(host=self.standby.host,
                                                port=self.standby.port))
        # logged once per outage, not once per retry
        self.assertEqual(text.count("is a standby"), 1, text)
        self.assertEqual(self.runs(), 0)

    # --- several hosts: the primary is found -----------------------------------

    def test_multi_host_conninfo_listing_the_standby_first_reaches_the_primary(self):
        self.ready(expired=30)
        keyword = (f"host={self.standby.host},{self.cluster.host} "
                   f"port={self.standby.port},{self.cluster.port} "
                   f"dbname={self.db} user=postgres")
        for n, conninfo in enumerate((keyword, uri([self.standby, self.cluster],
                                                   self.db))):
            self.sql(f"INSERT INTO events (created_at, payload) SELECT now() - "
                     f"interval '9 days', 'old' FROM generate_series(1, 5)")
            conf = self.conf(conninfo)
            proc = run(["run"], config=conf)
            self.assertExit(proc, 0, conninfo)
            self.assertEqual(self.sql("SELECT count(*) FROM events "
                                      "WHERE payload = 'old'"), "0")
            self.assertEqual(self.sql("SELECT status FROM retention.runs "
                                      "ORDER BY id DESC LIMIT 1"), "ok")
            self.assertEqual(int(self.sql("SELECT sum(rows) FROM retention.actions")),
                             [35, 40][n])

    # --- max_replica_lag --------------------------------------------------------

    def test_run_waits_while_replay_is_paused_and_finishes_after(self):
        # enough rows that the run outlasts max_replica_lag however fast
        # the machine: it must still be writing when the lag passes 2 s
        seed(self.cluster, self.db, expired=3000)
        conf = self.conf(self.cluster.conninfo(self.db), rules=rule(
            'batch_size = 20; batch_target = "1ms"; pause = "10ms"; '
            'max_replica_lag = "2s";'))
        self.assertExit(run(["init-db"], config=conf), 0)
        self.standby.wait_streaming()

        self.standby.psql("SELECT pg_wal_replay_pause()")
        self.addCleanup(self.standby.psql, "SELECT pg_wal_replay_resume()",
                        check=False)
        logpath = os.path.join(self.tmp, "run.log")
        with open(logpath, "w") as log:
            proc = spawn(["run"], config=conf, stdout=log, stderr=log)
            try:
                wait_for(lambda: "waiting: standby replica1" in read(logpath),
                         30, what=f"the wait in the log:\n{read(logpath)}")
                # it waits, and does not write meanwhile
                left = self.sql("SELECT count(*) FROM events WHERE payload = 'old'")
                self.assertGreater(int(left), 0)
                time.sleep(3)
                self.assertIsNone(proc.poll(), read(logpath))
                self.assertEqual(self.sql("SELECT count(*) FROM events "
                                          "WHERE payload = 'old'"), left)
                t_resume = time.monotonic()
                self.standby.psql("SELECT pg_wal_replay_resume()")
                rc = proc.wait(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        text = read(logpath)
        self.assertEqual(rc, 0, text)
        self.assertLess(time.monotonic() - t_resume, 60)
        self.assertRegex(text, r'rule "events": waiting: standby replica1 \(local\) '
                               r'replays [0-9.]+ s behind, more than '
                               r'max_replica_lag \(2\.0 s\)')
        self.assertRegex(text, r"standbys within max_replica_lag again after")
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE payload = 'old'"),
                         "0")
        self.assertEqual(int(self.sql("SELECT sum(rows) FROM retention.actions")), 3000)
        # the report says how long it waited: at least the 3 s above
        run_id = self.sql("SELECT max(id) FROM retention.runs")
        proc = run(["report", "--run", run_id, "--format", "json"], config=conf)
        self.assertExit(proc, 0)
        waited = json.loads(proc.stdout)["rules"][0]["lag_wait_seconds"]
        self.assertGreaterEqual(waited, 3.0)
        proc = run(["report", "--run", run_id, "--format", "text"], config=conf)
        self.assertOutput(proc, r"waited [0-9.]+ s for standbys \(max_replica_lag\)",
                          stream="stdout")

    def test_erasure_batches_wait_too(self):
        self.sql("""
CREATE TABLE events (id serial PRIMARY KEY, created_at timestamptz NOT NULL,
                     customer_id int NOT NULL);
INSERT INTO events (created_at, customer_id)
SELECT now() - interval '1 hour', 1 FROM generate_series(1, 6000) g;
INSERT INTO events (created_at, customer_id)
SELECT now() - interval '1 hour', 2 FROM generate_series(1, 10) g;
""")
        # one row per batch: the erasure writes for longer than the limit
        conf = self.conf(self.cluster.conninfo(self.db), rules="""{
  name = "events"; policy = "events are kept 2 days";
  table = "public.events"; age_column = "created_at"; retain = "2 days";
  subject = "customer"; subject_column = "customer_id";
  batch_size = 1; max_replica_lag = "1s";
}""")
        self.assertExit(run(["init-db"], config=conf), 0)
        self.assertExit(run(["erase", "customer:1"], config=conf), 0)
        self.standby.wait_streaming()
        self.standby.psql("SELECT pg_wal_replay_pause()")
        self.addCleanup(self.standby.psql, "SELECT pg_wal_replay_resume()",
                        check=False)
        logpath = os.path.join(self.tmp, "run.log")
        with open(logpath, "w") as log:
            proc = spawn(["run"], config=conf, stdout=log, stderr=log)
            try:
                wait_for(lambda: "waiting: standby replica1" in read(logpath)
                         or proc.poll() is not None, 60, what="the wait")
                self.assertIsNone(proc.poll(), read(logpath))
                left = self.sql("SELECT count(*) FROM events WHERE customer_id = 1")
                self.assertGreater(int(left), 0)
                time.sleep(2)
                self.assertEqual(self.sql("SELECT count(*) FROM events "
                                          "WHERE customer_id = 1"), left)
                self.standby.psql("SELECT pg_wal_replay_resume()")
                rc = proc.wait(timeout=120)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        self.assertEqual(rc, 0, read(logpath))
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE customer_id = 1"),
                         "0")
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE customer_id = 2"),
                         "10")
        self.assertEqual(self.sql("SELECT status FROM retention.erasure_requests"),
                         "done")

    def test_daemon_status_line_names_the_standby_it_waits_for(self):
        from test_daemon import NotifyListener
        # enough rows to outlast max_replica_lag however fast the machine
        seed(self.cluster, self.db, expired=3000)
        conf = self.conf(self.cluster.conninfo(self.db), rules=rule(
            'batch_size = 20; batch_target = "1ms"; pause = "10ms"; '
            'max_replica_lag = "2s";'), extra='schedule: { interval = "1h"; };')
        self.assertExit(run(["init-db"], config=conf), 0)
        self.standby.wait_streaming()
        self.standby.psql("SELECT pg_wal_replay_pause()")
        self.addCleanup(self.standby.psql, "SELECT pg_wal_replay_resume()",
                        check=False)
        notify = NotifyListener(os.path.join(self.tmp, "notify.sock"))
        self.addCleanup(notify.close)
        logpath = os.path.join(self.tmp, "daemon.log")
        with open(logpath, "w") as log:
            proc = spawn(["daemon"] + ROOT_ARGS, config=conf, stdout=log,
                         stderr=log, env={"NOTIFY_SOCKET": notify.env})
            try:
                notify.wait("STATUS=rule events: waiting for standby replica1 "
                            "(local), ", timeout=60)
                self.standby.psql("SELECT pg_wal_replay_resume()")
                wait_for(lambda: self.sql("SELECT string_agg(status, ',') FROM "
                                          "retention.runs") == "ok", 60,
                         what=f"the cycle to finish:\n{read(logpath)}")
            finally:
                proc.send_signal(signal.SIGTERM)
                rc = proc.wait(timeout=30)
        self.assertEqual(rc, 0, read(logpath))
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE payload = 'old'"),
                         "0")

    def test_max_replica_lag_needs_pg_monitor(self):
        seed(self.cluster, self.db, expired=20)
        role = "lagwatch_" + self.db[-8:]
        self.cluster.psql(f"CREATE ROLE {role} LOGIN")
        admin = self.conf(self.cluster.conninfo(self.db), name="admin.conf",
                          extra='limits: { max_replica_lag = "5s"; };')
        self.assertExit(run(["init-db"], config=admin), 0)
        proc = run(["grants", role], config=admin)
        self.assertExit(proc, 0)
        self.assertIn(f'\nGRANT pg_monitor TO "{role}";\n', proc.stdout)
        grants = "\n".join(l for l in proc.stdout.splitlines()
                           if "pg_monitor" not in l)
        self.sql(grants)

        conf = self.conf(self.cluster.conninfo(self.db, user=role),
                         extra='limits: { max_replica_lag = "5s"; };')
        proc = run(["check"], config=conf)
        self.assertExit(proc, 0)
        self.assertOutput(proc, f'max_replica_lag is set, but role "{role}" '
                                f'cannot see how far standbys replay')
        # a lag it cannot measure is no lag within bounds: the rule fails
        proc = run(["run"], config=conf)
        self.assertExit(proc, 1)
        self.assertOutput(proc, f'role "{role}" cannot see how far standby '
                                f'replica1 \\(local\\) replays.*GRANT pg_monitor '
                                f'TO "{role}"', stream="stdout")
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE payload = 'old'"),
                         "20")

        self.cluster.psql(f"GRANT pg_monitor TO {role}")
        proc = run(["check"], config=conf)
        self.assertExit(proc, 0)
        self.assertNoOutput(proc, "cannot see how far standbys replay")
        self.assertExit(run(["run"], config=conf), 0)
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE payload = 'old'"),
                         "0")


class FailoverTest(IntegrationTest):
    """Its own primary and synchronous standby: the test destroys them.
    Synchronous replication, so a commit that waits for it (the run's own
    record) is on the standby before the client hears of it."""

    USE_CLUSTER = False

    def setUp(self):
        super().setUp()
        self.primary = PostgresCluster(name="fo-primary", settings={
            "synchronous_commit": "on"})
        self.addCleanup(self.primary.stop)
        self.primary.start()
        self.db = "shop"
        self.primary.createdb(self.db)
        self.standby = StandbyCluster(self.primary, name="failover1")
        self.addCleanup(self.standby.stop)
        self.standby.start()
        self.standby.wait_streaming()
        # synchronous from now on (after the base backup, so that the
        # standby, once promoted, waits for no standby of its own)
        self.primary.psql("ALTER SYSTEM SET synchronous_standby_names = "
                          "'failover1'; SELECT pg_reload_conf();")
        wait_for(lambda: self.primary.scalar(
            "SELECT sync_state FROM pg_stat_replication") == "sync", 30,
            what="the standby to be synchronous")
        self.proc = None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def runs(self, cluster):
        return cluster.query("SELECT id, status FROM retention.runs"
                             " WHERE command = 'daemon' ORDER BY id",
                             dbname=self.db)

    def test_failover_in_the_middle_of_a_daemon_cycle(self):
        expired = 1500
        seed(self.primary, self.db, expired=expired, fresh=100)
        conninfo = (f"host={self.primary.host},{self.standby.host} "
                    f"port={self.primary.port},{self.standby.port} "
                    f"dbname={self.db} user=postgres")
        conf = config(os.path.join(self.tmp, "retentiond.conf"), conninfo,
                      rule('batch_size = 5; batch_target = "1ms"; '
                           'pause = "10ms";'),
                      extra='schedule: { interval = "1h"; };')
        self.assertExit(run(["init-db"], config=conf), 0)
        self.standby.wait_streaming()

        logpath = os.path.join(self.tmp, "daemon.log")
        log = open(logpath, "w")
        self.addCleanup(log.close)
        self.proc = spawn(["daemon"] + ROOT_ARGS, config=conf, stdout=log,
                          stderr=log)
        self.addCleanup(self.kill)

        def audited(cluster):
            return int(cluster.scalar("SELECT coalesce(sum(rows), 0) FROM "
                                      "retention.actions", dbname=self.db))
        wait_for(lambda: audited(self.primary) >= 50, 60,
                 what=f"some batches:\n{read(logpath)}")
        self.assertLess(audited(self.primary), expired, "the cycle ended too soon")

        # the primary dies in the middle of the cycle; the standby takes over
        self.primary.stop(mode="immediate", remove=False)
        self.standby.promote()

        wait_for(lambda: "lost the connection to the database" in read(logpath),
                 30, what="the daemon to notice")
        wait_for(lambda: "database connection restored" in read(logpath), 60,
                 what=f"the reconnection:\n{read(logpath)}")
        # the cut-short cycle runs again at once on the new primary and
        # completes; the run it cut off is marked interrupted
        wait_for(lambda: [r[1] for r in self.runs(self.standby)] ==
                 ["interrupted", "ok"], 120,
                 what=f"runs interrupted, ok on the new primary: "
                 f"{self.runs(self.standby)}\n{read(logpath)}")
        self.assertIsNone(self.proc.poll(), read(logpath))

        left = int(self.standby.scalar("SELECT count(*) FROM events WHERE "
                                       "payload = 'old'", dbname=self.db))
        self.assertEqual(left, 0)
        # every row removed, on the new primary, has its audit row: a batch
        # and its audit row were committed together or not at all
        self.assertEqual(audited(self.standby), expired)
        self.assertEqual(self.standby.scalar(
            "SELECT count(*) FROM events WHERE payload = 'new'", dbname=self.db),
            "100")
        proc = run(["verify"], config=conf)
        self.assertExit(proc, 0)
        self.assertOutput(proc, "^audit chain intact", stream="stdout")

        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(timeout=30), 0)


if __name__ == "__main__":
    main()
