"""Row batches along the age index (SPEC §5: short transactions, rows
locked by others skipped, never waited on).

Batches go by age range when the age column has an index; these tests hold
the promises that path has to keep where it differs from picking rows one
by one: ages shared by many rows, rows locked by another session, and the
counts and compliance verdict afterwards.
"""

import subprocess
import time

from harness import real_clock, IntegrationTest, clean_env, main, write_config


class BatchTest(IntegrationTest):

    def setUp(self):
        super().setUp()
        self.db = "b_" + self._testMethodName[5:40].lower()
        self.cluster.createdb(self.db)

    def sql(self, text):
        return self.cluster.psql(text, dbname=self.db)

    def config(self, rule, database_extra=""):
        return write_config(self.tmp, f"""
database: {{
  conninfo = "{self.cluster.conninfo(self.db)}";
  {database_extra}
}};
rules = ( {rule} );
""")

    def rd(self, conf, *args, **kw):
        return self.run_rd(list(args), config=conf, **kw)

    @staticmethod
    def stop_holder(proc):
        if proc.poll() is None:
            proc.stdin.close()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            f.close()

    def test_many_rows_sharing_one_date_never_make_a_batch_too_big(self):
        # 6 old days of 70 rows each: with batch_size 25 no age range of
        # whole days fits in a batch, so every batch must split a day
        self.sql("""
CREATE TABLE ledger (id serial PRIMARY KEY, booked_on date NOT NULL, note text);
CREATE INDEX ON ledger (booked_on);
INSERT INTO ledger (booked_on, note)
SELECT current_date - 400 - (g % 6), 'old' FROM generate_series(1, 420) g;
INSERT INTO ledger (booked_on, note)
SELECT current_date - (g % 5), 'new' FROM generate_series(1, 50) g;
""")
        conf = self.config("""{
  name = "ledger"; policy = "kept one year"; table = "ledger";
  age_column = "booked_on"; retain = "1 year"; max_fraction = 1.0;
  batch_size = 25; pause = "0ms";
}""")
        self.assertExit(self.rd(conf, "init-db"), 0)
        proc = self.rd(conf, "-v", "run")
        self.assertExit(proc, 0)
        self.assertEqual(self.sql("SELECT count(*) FROM ledger WHERE note = 'old'"), "0")
        self.assertEqual(self.sql("SELECT count(*) FROM ledger WHERE note = 'new'"), "50")
        # batches grow to at most ten times batch_size, days or not
        self.assertEqual(self.sql(
            "SELECT sum(rows), max(rows) <= 250 FROM retention.actions"), "420|t")
        # a batch whose rows all share a day goes row by row
        self.assertOutput(proc, r"by row picked")
        self.assertOutput(proc, r"by age picked")
        self.assertExit(self.rd(conf, "verify"), 0)

    @real_clock("PostgreSQL's lock_timeout never fires under libfaketime")
    def test_a_row_locked_by_another_session_is_skipped_not_waited_for(self):
        self.sql("""
CREATE TABLE events (id serial PRIMARY KEY, created_at timestamptz NOT NULL);
CREATE INDEX ON events (created_at);
INSERT INTO events (created_at)
SELECT now() - interval '10 days' - g * interval '1 minute' FROM generate_series(1, 300) g;
INSERT INTO events (created_at)
SELECT now() - g * interval '1 minute' FROM generate_series(1, 20) g;
""")
        locked_id = self.sql("SELECT id FROM events ORDER BY created_at LIMIT 1 OFFSET 150")
        # lock_timeout 60s: a batch that waited for the lock would take
        # that long; skipping it must not
        conf = self.config("""{
  name = "events"; policy = "kept 2 days"; table = "events";
  age_column = "created_at"; retain = "2 days"; max_fraction = 1.0;
  batch_size = 40; pause = "0ms";
}""", database_extra='lock_timeout = "60s"; statement_timeout = "5min";')
        self.assertExit(self.rd(conf, "init-db"), 0)
        c = self.cluster
        holder = subprocess.Popen(
            [c._bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", c.host,
             "-p", str(c.port), "-U", "postgres", "-d", self.db],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=clean_env())
        self.addCleanup(self.stop_holder, holder)
        holder.stdin.write(f"BEGIN;\nSELECT id FROM events WHERE id = {locked_id} FOR UPDATE;\n"
                           "\\echo locked\n")
        holder.stdin.flush()
        self.assertEqual(holder.stdout.readline().strip(), locked_id)
        while holder.stdout.readline().strip() != "locked":
            pass

        t0 = time.monotonic()
        proc = self.rd(conf, "run", timeout=120)
        elapsed = time.monotonic() - t0
        holder.stdin.write("ROLLBACK;\n")
        self.stop_holder(holder)

        self.assertExit(proc, 0)
        self.assertLess(elapsed, 30, "the run waited for the row lock")
        # everything due but the locked row is gone, and audited
        self.assertEqual(self.sql(
            "SELECT count(*) FROM events WHERE created_at < now() - interval '2 days'"), "1")
        self.assertEqual(self.sql(f"SELECT count(*) FROM events WHERE id = {locked_id}"), "1")
        self.assertEqual(self.sql("SELECT count(*) FROM events"), "21")
        self.assertEqual(self.sql("SELECT sum(rows) FROM retention.actions"), "299")
        # the row left is due, so the report says so
        self.assertEqual(self.sql(
            "SELECT (summary->'rules'->0->>'eligible') || ' ' ||"
            " (summary->'rules'->0->>'changed') FROM retention.runs"
            " ORDER BY id DESC LIMIT 1"), "300 299")
        # the next cycle removes the row once it is free
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.sql("SELECT count(*) FROM events"), "20")

    def test_counts_after_the_run_match_the_table(self):
        self.make_backlog(500)
        conf = self.config("""{
  name = "events"; policy = "kept 2 days"; table = "events";
  age_column = "created_at"; retain = "2 days"; max_fraction = 1.0;
  where = "kind <> 'audit'"; subject = "customer"; subject_column = "customer_id";
  batch_size = 30; pause = "0ms";
}""")
        self.assertExit(self.rd(conf, "init-db"), 0)
        self.assertExit(self.rd(conf, "hold", "add", "customer:3", "--reason", "court"), 0)
        held = int(self.sql("SELECT count(*) FROM events WHERE customer_id = 3"
                            " AND kind <> 'audit' AND created_at < now() - interval '2 days'"))
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        gone = 500 - 71 - held   # 71 audit rows are kept by `where`
        self.assertOutput(proc, rf"deleted {gone} rows", stream="stdout")
        self.assertOutput(proc, rf"{held} kept by legal hold", stream="stdout")
        summary = self.sql(
            "SELECT concat_ws(' ', r->>'eligible', r->>'held', r->>'overdue', r->>'oldest')"
            " FROM retention.runs, jsonb_array_elements(summary->'rules') r"
            " ORDER BY id DESC LIMIT 1")
        # due: what was deleted; held rows are due but kept, and overdue;
        # the oldest row is one that `where` or the hold keeps
        self.assertEqual(summary.split(" ", 3),
                         [str(gone), str(held), str(held),
                          self.sql("SELECT min(created_at)::text FROM events")])
        self.assertEqual(self.sql("SELECT count(*) FROM events"), str(550 - gone))

    def make_backlog(self, old=2000):
        """OLD due rows of distinct ages, some kept by `where`, one
        customer's by a hold, and 50 new rows; returns how many go."""
        self.sql("""
CREATE TABLE events (id serial PRIMARY KEY, created_at timestamptz NOT NULL,
                     customer_id int NOT NULL, kind text NOT NULL);
CREATE INDEX ON events (created_at);
INSERT INTO events (created_at, customer_id, kind)
SELECT now() - interval '30 days' - g * interval '1 minute', g % 5,
       CASE WHEN g % 7 = 0 THEN 'audit' ELSE 'click' END
FROM generate_series(1, {old}) g;
INSERT INTO events (created_at, customer_id, kind)
SELECT now() - g * interval '1 minute', g % 5, 'click' FROM generate_series(1, 50) g;
""".format(old=old))
        return int(self.sql("SELECT count(*) FROM events WHERE kind <> 'audit'"
                            " AND customer_id <> 3"
                            " AND created_at < now() - interval '2 days'"))

    BACKLOG_RULE = """{
  name = "events"; policy = "kept 2 days"; table = "events";
  age_column = "created_at"; retain = "2 days"; max_fraction = 1.0;
  where = "kind <> 'audit'"; subject = "customer"; subject_column = "customer_id";
  batch_size = 50; pause = "0ms";
}"""

    def assert_backlog_gone(self, gone):
        self.assertEqual(self.sql(
            "SELECT count(*) FROM events WHERE created_at < now() - interval '2 days'"
            " AND kind <> 'audit' AND customer_id <> 3"), "0")
        self.assertEqual(self.sql("SELECT count(*) FROM events"), str(2050 - gone))
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE customer_id = 3"
                                  " AND created_at < now() - interval '2 days'"),
                         self.sql("SELECT count(*) FROM generate_series(1, 2000) g"
                                  " WHERE g % 5 = 3"))
        # every row removed is audited, no batch past ten times batch_size
        self.assertEqual(self.sql(
            "SELECT sum(rows), max(rows) <= 500 FROM retention.actions"), f"{gone}|t")

    def test_bounds_read_ahead_change_exactly_the_rows_due(self):
        # the next batch's bound is read on a second connection while a
        # batch runs: it must change the same rows, no more, no fewer
        gone = self.make_backlog()
        conf = self.config(self.BACKLOG_RULE)
        self.assertExit(self.rd(conf, "init-db"), 0)
        self.assertExit(self.rd(conf, "hold", "add", "customer:3", "--reason", "court"), 0)
        proc = self.rd(conf, "-v", "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, r"by age \(bound read ahead\) picked")
        # the read's own WAL (its sweep prunes pages) is over before the
        # pause, whose watch would take it for another session's writes
        self.assertNotIn("other sessions are writing", proc.stderr)
        self.assert_backlog_gone(gone)
        # batches read ahead still grow to ten times batch_size (a range
        # ends before the LIMIT-th row's age, so 499 at most), not stuck
        # at the size they had when the first bound was read ahead (200)
        self.assertEqual(self.sql("SELECT max(rows) > 400 FROM retention.actions"), "t")
        self.assertExit(self.rd(conf, "verify"), 0)

    def test_without_a_second_connection_each_batch_reads_its_own_bound(self):
        gone = self.make_backlog()
        role = self.one_connection_role("rd_one_", self.db)
        conf = write_config(self.tmp, f"""
database: {{ conninfo = "{self.cluster.conninfo(self.db, user=role)}"; }};
rules = ( {self.BACKLOG_RULE} );
""")
        self.assertExit(self.rd(conf, "init-db"), 0)
        self.assertExit(self.rd(conf, "hold", "add", "customer:3", "--reason", "court"), 0)
        proc = self.rd(conf, "-v", "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, "could not use a second connection to read the next "
                          "batch's bound ahead, working on one: .*too many "
                          "connections for role")
        self.assertNotIn("bound read ahead", proc.stderr)
        self.assert_backlog_gone(gone)


if __name__ == "__main__":
    main()
