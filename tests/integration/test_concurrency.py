"""Concurrency (SPEC §5): retentiond's daemon works through a backlog while
pgbench runs an application's workload on the same tables (inserts of new
rows, updates of recent and of expired rows, deletes of a few of its own
rows, reads), and:

  - no deadlock happens (pg_stat_database.deadlocks and the server log);
  - no pgbench transaction fails (its exit status, "failed transactions");
  - no pgbench transaction waits on retentiond longer than lock_timeout:
    the slowest transaction of pgbench's per-transaction log stays under
    lock_timeout plus a margin, and with log_lock_waits on, no wait by a
    pgbench backend on a retentiond backend reaches lock_timeout;
  - the audit trail still accounts for every row retentiond removed or
    de-identified, no row the workload still owns was touched, and the
    chain verifies.

Expired rows are updated in id order by two-row transactions, while
retentiond takes them in age order, which is the reverse: the textbook
deadlock, unless retentiond gives up its wait first.

Environment:
  RETENTIOND_SOAK=1               a longer workload (120 s unless set below)
  RETENTIOND_CONCURRENCY_SECONDS  how long pgbench runs (default 12)
"""

import glob
import os
import re
import signal
import subprocess
import sys
import time

from harness import (real_clock, IS_ROOT, IntegrationTest, clean_env, main, run, spawn,
                     write_config, write_secret)

SOAK = os.environ.get("RETENTIOND_SOAK") == "1"
SECONDS = int(os.environ.get("RETENTIOND_CONCURRENCY_SECONDS",
                             "120" if SOAK else "12"))
ROOT_ARGS = ["--allow-root"] if IS_ROOT else []
KEY = "concurrency-test-pseudonym-key-0123456789"

LOCK_TIMEOUT_MS = 1000
# pgbench's own scheduling, a checkpoint, two cores shared with the other
# tests of `make -j2 check`: a transaction may take longer than its longest
# lock wait for reasons of its own. The server log's lock waits are the
# exact measure; the latency bound catches what they could miss.
LATENCY_MARGIN_MS = 2000
DEADLOCK_TIMEOUT_MS = 20

OLD_EVENTS = 30000
NEW_EVENTS = 20000
OLD_PEOPLE = 6000
OPEN_PEOPLE = 4000

# pgbench scripts, with weights
SCRIPTS = {
    # a new row, as the application writes them all the time
    "insert": (4, """
\\set c random(0, 99)
INSERT INTO events (created_at, customer_id, kind, payload)
  VALUES (now(), :c, 'bench', 'pgbench insert');
"""),
    # a recent row changes
    "update_recent": (3, f"""
\\set id random({OLD_EVENTS + 1}, {OLD_EVENTS + NEW_EVENTS})
UPDATE events SET payload = 'pgbench update' WHERE id = :id;
"""),
    # two expired rows from the front of the queue, where retentiond works,
    # in one transaction that holds the first a while: the younger row
    # first, the order opposite to retentiond's
    "update_expired": (3, """
\\set k random(0, 200)
BEGIN;
UPDATE events SET payload = 'pgbench touched' WHERE id = (SELECT id FROM events
  WHERE kind = 'old' ORDER BY created_at LIMIT 1 OFFSET :k + 20);
SELECT pg_sleep(0.02);
UPDATE events SET payload = 'pgbench touched' WHERE id = (SELECT id FROM events
  WHERE kind = 'old' ORDER BY created_at LIMIT 1 OFFSET :k);
END;
"""),
    # an account is seen: closed ones too, those retentiond is about to
    # de-identify, younger first again
    "update_person": (3, """
\\set k random(0, 200)
BEGIN;
SELECT id FROM people WHERE closed_at IS NOT NULL AND deidentified_at IS NULL
  ORDER BY closed_at LIMIT 1 OFFSET :k + 10 FOR UPDATE;
SELECT pg_sleep(0.01);
UPDATE people SET last_seen = now() WHERE id = (SELECT id FROM people
  WHERE closed_at IS NOT NULL AND deidentified_at IS NULL
  ORDER BY closed_at LIMIT 1 OFFSET :k);
END;
"""),
    # the application deletes a few of its own rows
    "delete": (1, """
\\set c random(0, 99)
DELETE FROM events WHERE id = (SELECT id FROM events WHERE kind = 'bench'
                               AND customer_id = :c LIMIT 1);
"""),
    "read": (3, f"""
\\set id random({OLD_EVENTS + 1}, {OLD_EVENTS + NEW_EVENTS})
SELECT count(*) FROM events WHERE created_at > now() - interval '1 hour';
SELECT * FROM events WHERE id = :id;
"""),
}


def log(msg):
    print(f"test_concurrency: {msg}", file=sys.stderr, flush=True)


class ConcurrencyTest(IntegrationTest):

    CLUSTER_SETTINGS = {
        "log_lock_waits": "on",
        "deadlock_timeout": f"{DEADLOCK_TIMEOUT_MS}ms",
        # the application name tells pgbench's backends from retentiond's
        "log_line_prefix": "'%m [%p] %q%u@%d app=%a '",
        "max_connections": "40",
    }

    def setUp(self):
        super().setUp()
        self.db = "t_concurrency"
        self.cluster.createdb(self.db)
        self.keyfile = write_secret(os.path.join(self.tmp, "key"), KEY)

    def sql(self, text):
        return self.cluster.psql(text, dbname=self.db)

    def num(self, text):
        return int(self.sql(text) or 0)

    def seed(self):
        self.sql(f"""
CREATE TABLE events (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL,
                     customer_id int NOT NULL, kind text NOT NULL, payload text);
CREATE INDEX ON events (created_at);
CREATE INDEX ON events (kind, customer_id);
-- expired: the higher the id, the older the row
INSERT INTO events (created_at, customer_id, kind, payload)
SELECT now() - interval '10 days' - g * interval '1 minute', g % 100, 'old', 'seed'
FROM generate_series(1, {OLD_EVENTS}) g;
INSERT INTO events (created_at, customer_id, kind, payload)
SELECT now() - interval '1 hour' + g * interval '1 ms', g % 100, 'new', 'seed'
FROM generate_series(1, {NEW_EVENTS}) g;

CREATE TABLE people (id int PRIMARY KEY, closed_at timestamptz, last_seen timestamptz,
                     email text, full_name text, deidentified_at timestamptz);
CREATE INDEX ON people (closed_at);
INSERT INTO people (id, closed_at, email, full_name)
SELECT g, now() - interval '2 years' - g * interval '1 hour',
       'user' || g || '@example.com', 'Person ' || g
FROM generate_series(1, {OLD_PEOPLE}) g;
INSERT INTO people (id, closed_at, email, full_name)
SELECT g, NULL, 'user' || g || '@example.com', 'Person ' || g
FROM generate_series({OLD_PEOPLE + 1}, {OLD_PEOPLE + OPEN_PEOPLE}) g;
ANALYZE events, people;
""")

    def config(self):
        # slow enough that the backlog outlasts the workload
        limits = ('batch_size = 20; batch_target = "20ms"; pause = "50ms"; '
                  'max_fraction = 1.0;')
        return write_config(self.tmp, f"""
database: {{
  conninfo = "{self.cluster.conninfo(self.db)}";
  lock_timeout = "{LOCK_TIMEOUT_MS}ms";
  statement_timeout = "30s";
}};
schedule: {{ interval = "2s"; }};
pseudonym_key_file = "{self.keyfile}";
rules = (
  {{ name = "events"; policy = "events are kept 2 days";
    table = "public.events"; age_column = "created_at"; retain = "2 days"; {limits} }},
  {{ name = "people"; policy = "closed accounts are de-identified after a year";
    table = "public.people"; age_column = "closed_at"; retain = "1 year";
    action = "deidentify"; marker_column = "deidentified_at";
    deidentify = {{ email = "hash"; full_name = "redact"; }}; {limits} }}
);
""")

    def deadlocks(self):
        # the statistics reach shared memory within a second of a
        # transaction's end; a snapshot forced now sees them
        return self.num("SELECT pg_stat_force_next_flush(); "
                        "SELECT deadlocks FROM pg_stat_database "
                        f"WHERE datname = '{self.db}'")

    def pgbench(self, seconds):
        args = [self.cluster._bin("pgbench"), "-n", "-h", self.cluster.host,
                "-p", str(self.cluster.port), "-U", "postgres",
                "-c", "4", "-j", "2", "-T", str(seconds), "-R", "300",
                "-l", "--log-prefix", os.path.join(self.tmp, "pgbench_log"),
                "--failures-detailed"]
        for name, (weight, text) in SCRIPTS.items():
            path = os.path.join(self.tmp, f"{name}.sql")
            with open(path, "w") as f:
                f.write(text)
            args += ["-f", f"{path}@{weight}"]
        args.append(self.db)
        return subprocess.run(args, env=clean_env(), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=seconds + 120, cwd=self.tmp)

    def latencies_ms(self):
        """(transactions, failed, slowest ms) from pgbench's per-transaction
        log: client_id transaction_no time script_no time_epoch time_us"""
        n = failed = 0
        slowest = 0.0
        for path in glob.glob(os.path.join(self.tmp, "pgbench_log.*")):
            with open(path) as f:
                for line in f:
                    fields = line.split()
                    if len(fields) < 6:
                        continue
                    n += 1
                    if fields[2] in ("failed", "skipped"):
                        failed += 1
                        continue
                    slowest = max(slowest, int(fields[2]) / 1000.0)
        return n, failed, slowest

    def lock_waits(self, server_log, since):
        """[(waiter app, holder apps, ms)] of every lock wait the server
        logged after offset SINCE of its log ("still waiting" after
        deadlock_timeout, then "acquired" with the whole wait)."""
        text = server_log[since:]
        app_of = dict(re.findall(r"\[(\d+)\] \S+ app=(\S*) ", text))
        holders_of = {}
        waits = []
        for m in re.finditer(
                r"\[(\d+)\] \S+ app=(\S*) LOG:  process \d+ (still waiting for|acquired)"
                r" (.*?) after ([\d.]+) ms\n(?:.*DETAIL:  Process(?:es)? holding the"
                r" lock: ([\d, ]+)\.)?", text):
            pid, app, what, lock, ms, holders = m.groups()
            if holders:
                holders_of[(pid, lock)] = [app_of.get(h.strip(), "?")
                                           for h in holders.split(",") if h.strip()]
            waits.append((app, holders_of.get((pid, lock), ["?"]), float(ms)))
        return waits

    @real_clock("pgbench's lock waits and -T never end under libfaketime")
    def test_daemon_and_pgbench_share_the_tables_without_harm(self):
        self.seed()
        conf = self.config()
        self.assertExit(run(["init-db"], config=conf), 0)
        deadlocks_before = self.deadlocks()
        log_offset = len(self.cluster.server_log())

        daemon_log = open(os.path.join(self.tmp, "daemon.log"), "w")
        self.addCleanup(daemon_log.close)
        daemon = spawn(["-v", "daemon"] + ROOT_ARGS, config=conf,
                       stdout=daemon_log, stderr=daemon_log)
        self.addCleanup(lambda: daemon.poll() is None and (daemon.kill(), daemon.wait()))
        bench = self.pgbench(SECONDS)
        changed_meanwhile = self.num("SELECT coalesce(sum(rows), 0) FROM retention.actions")
        daemon.send_signal(signal.SIGTERM)
        self.assertEqual(daemon.wait(timeout=30), 0)
        with open(daemon_log.name) as f:
            dlog = f.read()

        # the workload: complete, without a failed transaction
        self.assertEqual(bench.returncode, 0, bench.stdout + bench.stderr)
        m = re.search(r"number of failed transactions: (\d+)", bench.stdout)
        self.assertIsNotNone(m, bench.stdout)
        self.assertEqual(m.group(1), "0", bench.stdout)
        n, failed, slowest = self.latencies_ms()
        self.assertGreater(n, SECONDS * 100, "pgbench ran its transactions")
        self.assertEqual(failed, 0)

        # no deadlock, and no long wait on retentiond
        server_log = self.cluster.server_log()
        self.assertEqual(self.deadlocks() - deadlocks_before, 0)
        self.assertNotIn("deadlock detected", server_log[log_offset:])
        waits = self.lock_waits(server_log, log_offset)
        on_us = [w for w in waits if w[0] == "pgbench" and "retentiond" in w[1]]
        too_long = [w for w in waits if w[0] == "pgbench" and w[2] >= LOCK_TIMEOUT_MS
                    and "pgbench" not in w[1]]
        self.assertEqual(too_long, [], "pgbench waited on retentiond for lock_timeout")
        self.assertLess(slowest, LOCK_TIMEOUT_MS + LATENCY_MARGIN_MS,
                        f"a pgbench transaction took longer than lock_timeout; "
                        f"lock waits logged: {waits}")

        # retentiond did its part while the workload ran, and met rows the
        # workload held
        self.assertGreater(changed_meanwhile, 0, dlog)
        met_locks = dlog.count("redoing the batch row by row")

        # finish the job, then account for every row
        self.assertExit(run(["run"], config=conf, timeout=300), 0)
        self.assertEqual(self.num("SELECT count(*) FROM events WHERE kind = 'old'"), 0)
        self.assertEqual(self.num("SELECT coalesce(sum(rows), 0) FROM retention.actions"
                                  " WHERE rule = 'events'"), OLD_EVENTS)
        self.assertEqual(self.num("SELECT count(*) FROM events WHERE kind = 'new'"),
                         NEW_EVENTS)
        self.assertEqual(self.num("SELECT coalesce(sum(rows), 0) FROM retention.actions"
                                  " WHERE rule = 'people'"), OLD_PEOPLE)
        self.assertEqual(self.num(
            "SELECT count(*) FROM people WHERE deidentified_at IS NOT NULL"
            " AND full_name = '[redacted]' AND email ~ '^[0-9a-f]{64}$'"), OLD_PEOPLE)
        self.assertEqual(self.num(
            "SELECT count(*) FROM people WHERE closed_at IS NULL AND deidentified_at"
            " IS NULL AND full_name = 'Person ' || id"), OPEN_PEOPLE)
        self.assertExit(run(["verify"], config=conf), 0)

        tps = re.search(r"tps = ([\d.]+)", bench.stdout)
        log(f"{n} pgbench transactions in {SECONDS} s ({tps.group(1) if tps else '?'} tps), "
            f"0 failed, slowest {slowest:.1f} ms; 0 deadlocks; "
            f"{len(waits)} lock waits over {DEADLOCK_TIMEOUT_MS} ms logged, "
            f"{len(on_us)} of them pgbench on retentiond, longest "
            f"{max([w[2] for w in on_us], default=0):.1f} ms "
            f"(lock_timeout {LOCK_TIMEOUT_MS} ms); retentiond changed "
            f"{changed_meanwhile} rows meanwhile and met a locked row "
            f"{met_locks} times")


if __name__ == "__main__":
    main()
