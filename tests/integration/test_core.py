"""The execution core (issue 15): fail closed, the schema check, and
erasure through the one batch driver (max_runtime and stop apply).

Promises:
  - a rule whose legal-hold condition cannot be built fails ("could not
    build the legal-hold condition"), `run` exits 1, and no row (held or
    not) is touched, no audit row written;
  - the report refuses a run whose summary lacks a key it reads (exit 1,
    naming the key) instead of reading it as 0;
  - `run` and `plan` refuse a schema older than the binary, exit 1,
    "schema version N is older than this retentiond's M; run `retentiond
    init-db`";
  - a big erasure stops at max_runtime: the request stays pending, its
    detail says how many rows are left; a SIGTERM mid-erasure ends `run`
    promptly (exit 0, run "interrupted"); the next cycle finishes the
    request, the audit rows add up to the rows removed, `verify` passes.
"""

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

HOLD_CONFIG = """\
database: {
  conninfo = "%(conninfo)s";
};
rules = (
  {
    name = "closed-accounts";
    policy = "Account data is kept for one year after the account is closed";
    table = "public.customers";
    age_column = "closed_at";
    retain = "1 year";
    subject = "customer";
    subject_column = "id";
  }
);
"""

ERASE_ROWS = 200000


def read(path):
    with open(path) as f:
        return f.read()

ERASE_CONFIG = """\
database: {
  conninfo = "%(conninfo)s";
};
limits: {
  %(limits)s
};
rules = (
  {
    name = "clicks";
    policy = "Click logs are kept for ten years";
    table = "public.clicks";
    age_column = "at";
    retain = "10 years";
    subject = "customer";
    subject_column = "customer_id";
  }
);
"""


class CoreTest(harness.IntegrationTest):

    dbs = 0

    def new_db(self):
        CoreTest.dbs += 1
        name = f"core{CoreTest.dbs}"
        self.cluster.createdb(name)
        return name

    def q(self, sql, db):
        return self.cluster.scalar(sql, dbname=db)

    # --- fail closed ------------------------------------------------------

    def hold_setup(self):
        db = self.new_db()
        # customers 1-3 are held, 4-9 are not; all closed two years ago
        self.cluster.psql(
            "CREATE TABLE customers (id int PRIMARY KEY, closed_at timestamptz);"
            "INSERT INTO customers SELECT g, now() - interval '2 years'"
            " FROM generate_series(1, 9) g;", dbname=db)
        config = harness.write_config(
            self.tmp, HOLD_CONFIG % {"conninfo": self.cluster.conninfo(db)})
        self.assertExit(harness.run(["init-db"], config=config), 0)
        for i in (1, 2, 3):
            self.assertExit(harness.run(["hold", "add", f"customer:{i}",
                                         "--reason", "case 7"],
                                        config=config), 0)
        return db, config

    def test_hold_condition_that_cannot_be_built_fails_the_rule(self):
        db, config = self.hold_setup()
        proc = harness.run(["run", "--force"], config=config,
                           env={"RETENTIOND_INJECT_FAULT": "hold_condition"})
        self.assertExit(proc, 1)
        out = proc.stdout + proc.stderr
        self.assertIn('rule "closed-accounts" (public.customers): could not '
                      'build the legal-hold condition', proc.stderr)
        self.assertIn("failed", out)
        # nothing touched, held or not, and nothing audited
        self.assertEqual(self.q("SELECT count(*) FROM customers", db), "9")
        self.assertEqual(self.q("SELECT count(*) FROM retention.actions", db), "0")
        self.assertEqual(self.q("SELECT status FROM retention.runs"
                                " ORDER BY id DESC LIMIT 1", db), "failed")
        # plan fails the same way
        proc = harness.run(["plan"], config=config,
                           env={"RETENTIOND_INJECT_FAULT": "hold_condition"})
        self.assertExit(proc, 1)
        self.assertIn("could not build the legal-hold condition", proc.stdout)

        # without the fault: unheld rows go, held rows stay
        proc = harness.run(["run", "--force"], config=config)
        self.assertExit(proc, 0)
        self.assertEqual(self.q("SELECT string_agg(id::text, ',' ORDER BY id)"
                                " FROM customers", db), "1,2,3")
        self.assertEqual(self.q("SELECT sum(rows) FROM retention.actions"
                                " WHERE action = 'delete'", db), "6")

    # --- the report reads what the engine wrote, strictly -------------------

    def test_report_refuses_a_summary_without_a_key(self):
        db, config = self.hold_setup()
        self.assertExit(harness.run(["run", "--force"], config=config), 0)
        run = self.q("SELECT max(id) FROM retention.runs", db)
        proc = harness.run(["report", "--run", run], config=config)
        self.assertExit(proc, 0)
        self.assertIn("closed-accounts", proc.stdout)
        # a key renamed on one side must not read as 0
        self.q("UPDATE retention.runs SET summary = jsonb_set(summary,"
               " '{rules,0}', (summary->'rules'->0) - 'held')"
               f" WHERE id = {run}", db)
        proc = harness.run(["report", "--run", run], config=config)
        self.assertExit(proc, 1)
        self.assertIn(f'run {run}: the summary of rule "closed-accounts" has no held',
                      proc.stderr)

    # --- the schema must be as new as the binary ----------------------------

    def test_run_and_plan_refuse_an_older_schema(self):
        db = self.new_db()
        self.cluster.psql(
            "CREATE TABLE customers (id int PRIMARY KEY, closed_at timestamptz);"
            "INSERT INTO customers VALUES (1, now() - interval '2 years');",
            dbname=db)
        config = harness.write_config(
            self.tmp, HOLD_CONFIG % {"conninfo": self.cluster.conninfo(db)})
        self.assertExit(harness.run(["init-db"], config=config), 0)
        latest = int(self.q("SELECT max(version) FROM retention.schema_version", db))
        self.q("DELETE FROM retention.schema_version WHERE version = %d" % latest, db)
        runs = self.q("SELECT count(*) FROM retention.runs", db)
        for cmd in ("run", "plan"):
            with self.subTest(cmd=cmd):
                proc = harness.run([cmd], config=config)
                self.assertExit(proc, 1)
                self.assertIn(f"schema version {latest - 1} is older than this "
                              f"retentiond's {latest}; run `retentiond init-db`",
                              proc.stderr)
        # refused before anything: no run recorded, no row deleted
        self.assertEqual(self.q("SELECT count(*) FROM retention.runs", db), runs)
        self.assertEqual(self.q("SELECT count(*) FROM customers", db), "1")

    def test_daemon_refuses_an_older_schema_and_keeps_trying(self):
        db = self.new_db()
        self.cluster.psql(
            "CREATE TABLE customers (id int PRIMARY KEY, closed_at timestamptz);"
            "INSERT INTO customers VALUES (1, now() - interval '2 years');",
            dbname=db)
        config = harness.write_config(
            self.tmp, (HOLD_CONFIG + 'schedule: { interval = "1h"; };\n')
            % {"conninfo": self.cluster.conninfo(db)})
        self.assertExit(harness.run(["init-db"], config=config), 0)
        latest = int(self.q("SELECT max(version) FROM retention.schema_version", db))
        self.q("DELETE FROM retention.schema_version WHERE version = %d" % latest, db)
        log = os.path.join(self.tmp, "daemon.log")
        with open(log, "w") as out:
            args = ["daemon"] + (["--allow-root"] if os.geteuid() == 0 else [])
            proc = harness.spawn(args, config=config, stdout=out, stderr=out)
            want = (f"schema version {latest - 1} is older than this "
                    f"retentiond's {latest}; run `retentiond init-db`")
            deadline = time.monotonic() + 30
            while want not in read(log):
                if time.monotonic() > deadline or proc.poll() is not None:
                    self.fail(f"no {want!r} in the daemon's log:\n" + read(log))
                time.sleep(0.1)
            # it stays up (to try again), and changed nothing
            self.assertIsNone(proc.poll())
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=30), 0)
        self.assertEqual(self.q("SELECT count(*) FROM customers", db), "1")

    # --- erasure through the driver -----------------------------------------

    def erase_setup(self, n=ERASE_ROWS):
        db = self.new_db()
        # recent rows: the rule's expiry has nothing to do, only the erasure
        self.cluster.psql(
            "CREATE TABLE clicks (id bigserial PRIMARY KEY, customer_id text,"
            " at timestamptz NOT NULL);"
            f"INSERT INTO clicks (customer_id, at) SELECT '42', now() - g * interval '1 second'"
            f" FROM generate_series(1, {n}) g;"
            "INSERT INTO clicks (customer_id, at) SELECT '7', now()"
            " FROM generate_series(1, 10);"
            "CREATE INDEX ON clicks (customer_id); CREATE INDEX ON clicks (at);"
            "ANALYZE clicks;", dbname=db)
        return db

    def erase_config(self, db, name, limits):
        return harness.write_config(
            os.path.join(self.tmp, name),
            ERASE_CONFIG % {"conninfo": self.cluster.conninfo(db),
                            "limits": limits})

    def request(self, db):
        row = self.cluster.query("SELECT status, detail FROM retention.erasure_requests",
                                 dbname=db)
        self.assertEqual(len(row), 1)
        return row[0][0], json.loads(row[0][1]) if row[0][1] else None

    def finish_and_check(self, db, config):
        proc = harness.run(["run"], config=config, timeout=300)
        self.assertExit(proc, 0)
        status, detail = self.request(db)
        self.assertEqual(status, "done", detail)
        self.assertEqual(self.q("SELECT count(*) FROM clicks WHERE customer_id = '42'",
                                db), "0")
        self.assertEqual(self.q("SELECT count(*) FROM clicks", db), "10")
        self.assertEqual(self.q("SELECT sum(rows) FROM retention.actions"
                                " WHERE action = 'erasure'", db), str(ERASE_ROWS))
        self.assertExit(harness.run(["verify"], config=config), 0)

    def test_erasure_stops_at_max_runtime_and_the_next_cycle_finishes_it(self):
        db = self.erase_setup()
        # at most 200 rows a batch and 10 ms between batches: ten seconds
        # and more for the whole erasure
        short = self.erase_config(db, "short.conf",
                                  'batch_size = 20; batch_target = "5ms";'
                                  ' pause = "10ms"; max_runtime = "1s";')
        full = self.erase_config(db, "full.conf", 'pause = "0s";')
        self.assertExit(harness.run(["init-db"], config=short), 0)
        self.assertExit(harness.run(["erase", "customer:42"], config=short), 0)

        t0 = time.monotonic()
        proc = harness.run(["run"], config=short, timeout=120)
        took = time.monotonic() - t0
        self.assertExit(proc, 0)
        # the cycle's budget holds for the erasure: a second for the run,
        # and the process's start and the counts around it (slack for a
        # sanitizer build on a busy machine); the whole erasure at these
        # limits takes ten seconds and more
        self.assertLess(took, 10, proc.stdout + proc.stderr)
        status, detail = self.request(db)
        self.assertEqual(status, "pending", detail)
        rule = detail["rules"][0]
        left = int(self.q("SELECT count(*) FROM clicks WHERE customer_id = '42'", db))
        self.assertGreater(left, 0)
        self.assertGreater(rule["rows"], 0)
        self.assertEqual(rule["left"], left)
        self.assertEqual(rule["rows"] + rule["left"], ERASE_ROWS)
        self.assertIn("max_runtime reached", rule["error"])
        self.assertEqual(self.q("SELECT status FROM retention.runs"
                                " ORDER BY id DESC LIMIT 1", db), "ok")
        self.assertEqual(self.q("SELECT sum(rows) FROM retention.actions"
                                " WHERE action = 'erasure'", db), str(rule["rows"]))

        self.finish_and_check(db, full)

    def test_sigterm_mid_erasure_interrupts_the_run(self):
        db = self.erase_setup()
        slow = self.erase_config(db, "slow.conf",
                                 'batch_size = 20; batch_target = "5ms";'
                                 ' pause = "20ms";')
        full = self.erase_config(db, "full.conf", 'pause = "0s";')
        self.assertExit(harness.run(["init-db"], config=slow), 0)
        self.assertExit(harness.run(["erase", "customer:42"], config=slow), 0)

        proc = harness.spawn(["run"], config=slow)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            n = self.q("SELECT count(*) FROM retention.actions"
                       " WHERE action = 'erasure'", db)
            if int(n) >= 3:
                break
            time.sleep(0.05)
        else:
            self.fail("no erasure batch within 60 s")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - t0
        self.assertEqual(proc.returncode, 0, out + err)
        self.assertLess(took, 5, out + err)
        self.assertEqual(self.q("SELECT status FROM retention.runs"
                                " ORDER BY id DESC LIMIT 1", db), "interrupted")
        status, detail = self.request(db)
        self.assertEqual(status, "pending", detail)
        self.assertIn("stopped", detail["rules"][0]["error"])
        left = int(self.q("SELECT count(*) FROM clicks WHERE customer_id = '42'", db))
        self.assertGreater(left, 0)
        self.assertEqual(self.q("SELECT sum(rows) FROM retention.actions"
                                " WHERE action = 'erasure'", db),
                         str(ERASE_ROWS - left))

        self.finish_and_check(db, full)


if __name__ == "__main__":
    harness.main()
