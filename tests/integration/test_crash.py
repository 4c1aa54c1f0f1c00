"""Crash consistency (SPEC §1, §5): a cycle killed at any moment, by SIGKILL
or by PostgreSQL stopping dead (`pg_ctl stop -m immediate`), loses no audit
row and changes no row it should not.

The test runs `retentiond run` again and again on tables with tens of
thousands of rows in small batches and cuts each run short at a random
moment. After every cut, in the database:

  - the sum of actions.rows per rule equals the rows actually deleted, and
    the rows actually de-identified (marker set);
  - every de-identified row is wholly de-identified, every other row wholly
    untouched: no half-changed row;
  - fresh rows, rows kept by a legal hold and rows with no age are untouched;
  - `retentiond verify` passes;
and the next run marks the cut-short run `interrupted`. At the end, one run
to completion removes exactly the expired rows and nothing else, and no run
is left `running`.

Environment:
  RETENTIOND_SOAK=1             more iterations (200 unless set below)
  RETENTIOND_CRASH_ITERATIONS   how many runs are cut short (default 20)
  RETENTIOND_CRASH_SEED         the random seed (default: time; printed)
"""

import hashlib
import hmac
import os
import random
import signal
import sys
import time

from harness import (IntegrationTest, main, run, spawn, write_config,
                     write_secret)

SOAK = os.environ.get("RETENTIOND_SOAK") == "1"
ITERATIONS = int(os.environ.get("RETENTIOND_CRASH_ITERATIONS",
                                "200" if SOAK else "20"))
SEED = int(os.environ.get("RETENTIOND_CRASH_SEED", str(time.time_ns() % 10**9)))
# Every PG_EVERY-th iteration stops PostgreSQL instead of killing retentiond.
PG_EVERY = 3
KEY = "crash-test-pseudonym-key-0123456789abcdef"
HELD_CUSTOMER = 7

# Rows (not held) waiting for each rule when a run starts: with the limits
# in config() a run takes a second or two.
EVENTS_BACKLOG = 3000
PEOPLE_BACKLOG = 1500
# Rows never to be touched: fresh events, events of the held customer,
# people closed recently or still open (and the held one).
FRESH_EVENTS = 20000
HELD_EVENTS = 500
RECENT_PEOPLE = 4000
OPEN_PEOPLE = 1000
KEPT_PEOPLE = RECENT_PEOPLE + OPEN_PEOPLE + 1


def log(msg):
    print(f"test_crash: {msg}", file=sys.stderr, flush=True)


class CrashTest(IntegrationTest):

    def setUp(self):
        super().setUp()
        self.db = "t_crash"
        self.cluster.createdb(self.db)
        self.keyfile = write_secret(os.path.join(self.tmp, "key"), KEY)
        # old events of customers other than the held one, ever inserted
        self.events_expired = 0
        self.people_expired = 0
        self.next_person = 1

    def sql(self, text):
        # The cluster commits asynchronously (harness: synchronous_commit
        # off); the test's own rows must survive the crashes it causes,
        # or the counts below would be off by them.
        return self.cluster.psql("SET synchronous_commit = on;\n" + text,
                                 dbname=self.db)

    def num(self, text):
        return int(self.sql(text) or 0)

    def config(self):
        limits = ('batch_size = 50; batch_target = "2ms"; pause = "10ms"; '
                  'max_fraction = 1.0;')
        return write_config(self.tmp, f"""
database: {{ conninfo = "{self.cluster.conninfo(self.db)}"; }};
pseudonym_key_file = "{self.keyfile}";
rules = (
  {{ name = "events"; policy = "events are kept 2 days";
    table = "public.events"; age_column = "created_at"; retain = "2 days";
    subject = "customer"; subject_column = "customer_id"; {limits} }},
  {{ name = "people"; policy = "closed accounts are de-identified after a year";
    table = "public.people"; age_column = "closed_at"; retain = "1 year";
    action = "deidentify"; marker_column = "deidentified_at";
    deidentify = {{ email = "hash"; full_name = "redact"; phone = "null"; }};
    subject = "customer"; subject_column = "id"; {limits} }}
);
""")

    # --- data -------------------------------------------------------------------

    def create(self):
        self.sql("""
CREATE TABLE events (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL,
                     customer_id int NOT NULL, payload text NOT NULL);
CREATE INDEX ON events (created_at);
CREATE TABLE people (id int PRIMARY KEY, closed_at timestamptz, email text,
                     full_name text, phone text, deidentified_at timestamptz);
CREATE INDEX ON people (closed_at);
""")
        # fresh rows and rows of the held customer: never to be touched
        self.sql(f"""
INSERT INTO events (created_at, customer_id, payload)
SELECT now() - interval '1 hour' - g * interval '1 ms', g % 10, 'new'
FROM generate_series(1, {FRESH_EVENTS}) g;
INSERT INTO events (created_at, customer_id, payload)
SELECT now() - interval '30 days' - g * interval '1 s', {HELD_CUSTOMER}, 'held'
FROM generate_series(1, {HELD_EVENTS}) g;
""")
        self.add_people(RECENT_PEOPLE, "now() - interval '10 days'")
        self.add_people(OPEN_PEOPLE, "NULL")
        self.add_people(1, "now() - interval '3 years'", pid=HELD_CUSTOMER)
        self.top_up(initial=True)

    def add_people(self, n, closed_at, pid=None):
        if pid is not None:
            ids = f"SELECT {pid} AS g"
        else:
            first = max(self.next_person, HELD_CUSTOMER + 1)
            ids = f"SELECT generate_series({first}, {first + n - 1}) AS g"
            self.next_person = first + n
        self.sql(f"""
INSERT INTO people (id, closed_at, email, full_name, phone)
SELECT g, {closed_at}, 'user' || g || '@example.com', 'Person ' || g, '+44 ' || g
FROM ({ids}) s;
""")

    def top_up(self, initial=False):
        """Give every rule a backlog that takes the run a second or two: in
        one psql call, as the test spends most of its time between runs."""
        scale = 2 if initial else 1
        first = max(self.next_person, HELD_CUSTOMER + 1)
        row = self.cluster.query(f"""
SET synchronous_commit = on;
-- events of customers 0..9, but never of the held one
WITH n AS (SELECT {EVENTS_BACKLOG * scale} - count(*) AS n FROM events
           WHERE payload = 'old'),
     i AS (INSERT INTO events (created_at, customer_id, payload)
           SELECT now() - interval '10 days' - (random() * 1000) * interval '1 hour',
                  CASE WHEN g % 10 = {HELD_CUSTOMER} THEN 0 ELSE g % 10 END, 'old'
           FROM n, generate_series(1, n.n) g RETURNING 1)
SELECT count(*) FROM i;
WITH n AS (SELECT {PEOPLE_BACKLOG * scale} - count(*) AS n FROM people
           WHERE closed_at < now() - interval '2 years' AND deidentified_at IS NULL
             AND id <> {HELD_CUSTOMER}),
     i AS (INSERT INTO people (id, closed_at, email, full_name, phone)
           SELECT g, now() - interval '2 years' - random() * interval '500 days',
                  'user' || g || '@example.com', 'Person ' || g, '+44 ' || g
           FROM n, generate_series({first}, {first} + n.n - 1) g RETURNING 1)
SELECT count(*) FROM i;
-- as autovacuum would have: without statistics the planner sorts every
-- due row for each batch
ANALYZE events, people;
""", dbname=self.db)
        added_events, added_people = int(row[0][0]), int(row[1][0])
        self.events_expired += added_events
        self.people_expired += added_people
        self.next_person = first + added_people

    # --- the promises -----------------------------------------------------------

    def check_consistent(self, what):
        # one query, so that a check costs little next to a run
        row = self.cluster.query(f"""
SET synchronous_commit = on;
SELECT
  (SELECT count(*) FROM events WHERE payload = 'old'),
  (SELECT count(*) FROM events WHERE payload = 'new'),
  (SELECT count(*) FROM events WHERE payload = 'held'),
  (SELECT coalesce(sum(rows), 0) FROM retention.actions WHERE rule = 'events'),
  (SELECT count(*) FROM people),
  (SELECT count(*) FROM people WHERE deidentified_at IS NOT NULL),
  (SELECT coalesce(sum(rows), 0) FROM retention.actions WHERE rule = 'people'),
  -- a row is wholly de-identified or wholly untouched
  (SELECT coalesce(string_agg(id::text, ','), '') FROM people WHERE
    (deidentified_at IS NOT NULL AND NOT (full_name = '[redacted]' AND phone IS NULL
                                          AND email ~ '^[0-9a-f]{{64}}$'))
    OR (deidentified_at IS NULL AND NOT (full_name = 'Person ' || id
                                         AND phone = '+44 ' || id
                                         AND email = 'user' || id || '@example.com'))),
  -- only expired rows of subjects without a hold were de-identified
  (SELECT coalesce(string_agg(id::text, ','), '') FROM people
    WHERE deidentified_at IS NOT NULL AND (closed_at IS NULL
          OR closed_at > now() - interval '1 year' OR id = {HELD_CUSTOMER})),
  (SELECT count(*) FROM retention.runs WHERE status = 'running')
""", dbname=self.db)[0]
        (old, new, held, audit_events, people, done, audit_people, half, wrong,
         running) = row
        self.assertEqual(int(audit_events), self.events_expired - int(old),
                         f"{what}: audit rows of rule events != rows deleted")
        self.assertEqual(int(new), FRESH_EVENTS, f"{what}: a fresh row was deleted")
        self.assertEqual(int(held), HELD_EVENTS, f"{what}: a held row was deleted")
        self.assertEqual(int(people), KEPT_PEOPLE + self.people_expired,
                         f"{what}: rows of people are missing")
        self.assertEqual(int(audit_people), int(done),
                         f"{what}: audit rows of rule people != rows de-identified")
        self.assertEqual(half, "", f"{what}: rows changed in part: {half}")
        self.assertEqual(wrong, "", f"{what}: rows de-identified that were not due: {wrong}")
        # at most the run just cut short is still "running"
        self.assertLessEqual(int(running), 1, what)
        self.assertExit(run(["verify"], config=self.conf), 0, f"{what}: verify")
        return int(audit_events), int(audit_people)

    def spot_check_hashes(self):
        rows = self.cluster.query("SELECT id, email FROM people WHERE deidentified_at"
                                  " IS NOT NULL ORDER BY random() LIMIT 5", dbname=self.db)
        self.assertTrue(rows)
        for pid, email in rows:
            want = hmac.new(KEY.encode(), f"user{pid}@example.com".encode(),
                            hashlib.sha256).hexdigest()
            self.assertEqual(email, want, f"person {pid}")

    # --- cutting runs short ---------------------------------------------------------

    @staticmethod
    def read(path):
        with open(path, errors="replace") as f:
            return f.read()

    def wait_backends_gone(self, timeout=60):
        """A killed client's backend may finish (and commit) the batch in
        flight before it notices; the next run needs its lock."""
        deadline = time.monotonic() + timeout
        while self.num("SELECT count(*) FROM pg_stat_activity"
                       " WHERE application_name = 'retentiond'"):
            if time.monotonic() > deadline:
                self.fail("retentiond's backend outlived its process")
            time.sleep(0.05)

    def wait_some_work(self, before, deadline):
        """Until a batch more than BEFORE is audited (or DEADLINE)."""
        while time.monotonic() < deadline:
            if self.num("SELECT count(*) FROM retention.actions") > before:
                return True
            time.sleep(0.02)
        return False

    def cut_short(self, i, rng):
        """Start a run and cut it short; returns (kind, pid, rules) where
        kind is "kill", "pg" or None (the run ended by itself first)."""
        pg = i % PG_EVERY == PG_EVERY - 1
        out = open(os.path.join(self.tmp, f"run-{i}.log"), "w")
        self.addCleanup(out.close)
        before = self.num("SELECT count(*) FROM retention.actions")
        # a third of the runs de-identify only, so that the cut lands in
        # an UPDATE batch as often as in a DELETE one
        rules = ["--rule", "people"] if rng.random() < 1 / 3 else []
        proc = spawn(["run"] + rules, config=self.conf, stdout=out, stderr=out)
        # a random moment once the run is under way: somewhere in a batch,
        # between batches, between the rules or in the bookkeeping
        if rng.random() < 0.15:
            time.sleep(rng.uniform(0, 0.3))     # while it starts up
        else:
            self.wait_some_work(before, time.monotonic() + 10)
            time.sleep(rng.uniform(0, 0.9))
        kind = None
        if proc.poll() is None:
            if pg:
                self.cluster.stop(mode="immediate", remove=False)
                kind = "pg"
            else:
                proc.send_signal(signal.SIGKILL)
                kind = "kill"
        rc = proc.wait(timeout=60)
        if pg and kind == "pg":
            # no crash, no hang: a failed run, exit 1
            self.assertIn(rc, (0, 1), f"iteration {i}: run ended with {rc}\n"
                          + self.read(out.name))
            self.cluster.start()
        elif kind is None:
            self.assertEqual(rc, 0, self.read(out.name))
        return kind, proc.pid, "people" if rules else "both"

    def test_runs_cut_short_at_random_lose_nothing(self):
        rng = random.Random(SEED)
        log(f"{ITERATIONS} iterations, seed {SEED} (RETENTIOND_CRASH_SEED)")
        self.create()
        self.conf = self.config()
        self.assertExit(run(["init-db"], config=self.conf), 0)
        self.assertExit(run(["hold", "add", f"customer:{HELD_CUSTOMER}",
                             "--reason", "litigation"], config=self.conf), 0)

        kills = crashes = finished = deid_cuts = 0
        cut_pids = []
        # ITERATIONS runs cut short: a run that ended before its cut
        # counts for nothing and another one is started (up to a bound)
        i = 0
        while kills + crashes < ITERATIONS and i < 3 * ITERATIONS:
            kind, pid, rules = self.cut_short(i, rng)
            i += 1
            if kind and rules == "people":
                deid_cuts += 1
            if kind == "kill":
                kills += 1
                cut_pids.append(pid)
            elif kind == "pg":
                crashes += 1
                cut_pids.append(pid)
            else:
                finished += 1
            self.wait_backends_gone()
            self.check_consistent(f"iteration {i - 1} ({kind or 'finished'})")
            self.top_up()
        self.assertEqual(kills + crashes, ITERATIONS,
                         f"only {kills + crashes} of {i} runs could be cut short")

        # one run to the end finishes the job
        proc = run(["run"], config=self.conf, timeout=300)
        self.assertExit(proc, 0)
        deleted, deidentified = self.check_consistent("final run")
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE payload = 'old'"), "0")
        self.assertEqual(self.num(
            "SELECT count(*) FROM people WHERE deidentified_at IS NULL AND closed_at"
            f" < now() - interval '1 year' AND id <> {HELD_CUSTOMER}"), 0)
        self.assertEqual(self.num("SELECT count(*) FROM people WHERE deidentified_at"
                                  " IS NOT NULL"), self.people_expired)
        self.spot_check_hashes()
        # no run stays "running": each cut-short one was marked interrupted
        self.assertEqual(self.sql("SELECT count(*) FROM retention.runs"
                                  " WHERE status = 'running'"), "0")
        statuses = dict(self.cluster.query("SELECT pid, status FROM retention.runs",
                                           dbname=self.db))
        for pid in cut_pids:
            # a PostgreSQL crash may take the run's own first row with it
            if str(pid) in statuses:
                self.assertEqual(statuses[str(pid)], "interrupted", f"run of pid {pid}")
        self.assertGreater(kills, 0)
        self.assertGreater(crashes, 0)
        log(f"survived {kills} SIGKILLs and {crashes} PostgreSQL crashes "
            f"({deid_cuts} of them in de-identify-only runs; {finished} runs "
            f"ended before the cut); "
            f"{deleted} rows deleted and {deidentified} de-identified, every "
            f"one audited; seed {SEED}")


if __name__ == "__main__":
    main()
