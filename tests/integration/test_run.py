"""`retentiond run` and `plan` against a real PostgreSQL (SPEC §2, §5).

Each test builds its own tables in its own database, so tests do not see
each other's rows or audit trail.
"""

import hashlib
import hmac
import os
import re
import subprocess
import time

from harness import (real_clock, IntegrationTest, PG_OS_USER, clean_env, main, quote_ident,
                     write_config, write_secret)

KEY = b"0123456789abcdef-test-pseudonym-key"


class RunTest(IntegrationTest):

    def setUp(self):
        super().setUp()
        self.db = "t_" + self._testMethodName[5:40].lower()
        self.cluster.createdb(self.db)
        self.keyfile = write_secret(os.path.join(self.tmp, "pseudonym.key"),
                                    KEY.decode())

    def sql(self, text):
        return self.cluster.psql(text, dbname=self.db)

    def config(self, rules, extra=""):
        text = f"""
database: {{
  conninfo = "{self.cluster.conninfo(self.db)}";
}};
pseudonym_key_file = "{self.keyfile}";
{extra}
rules = (
{rules}
);
"""
        return write_config(self.tmp, text)

    def rd(self, conf, *args, **kw):
        return self.run_rd(list(args), config=conf, **kw)

    def init_db(self, conf):
        self.assertExit(self.rd(conf, "init-db"), 0)

    def audit_rows(self, rule=None):
        cond = f"WHERE rule = '{rule}'" if rule else ""
        return int(self.sql(f"SELECT coalesce(sum(rows), 0) FROM retention.actions {cond}"))

    # --- delete -------------------------------------------------------------

    def seed_events(self, expired=40, fresh=60, held_customer=7):
        self.sql(f"""
CREATE TABLE events (id serial PRIMARY KEY, created_at timestamptz NOT NULL,
                     customer_id int NOT NULL, payload text);
CREATE INDEX ON events (created_at);
INSERT INTO events (created_at, customer_id, payload)
SELECT now() - interval '10 days' - g * interval '1 minute', g % 10, 'old ' || g
FROM generate_series(1, {expired}) g;
INSERT INTO events (created_at, customer_id, payload)
SELECT now() - interval '1 hour' - g * interval '1 second', g % 10, 'new ' || g
FROM generate_series(1, {fresh}) g;
""")

    EVENTS_RULE = """{
  name = "events"; policy = "events are kept 2 days";
  table = "public.events"; age_column = "created_at"; retain = "2 days";
  subject = "customer"; subject_column = "customer_id";
}"""

    def test_run_deletes_exactly_the_expired_unheld_rows(self):
        self.seed_events()
        conf = self.config(self.EVENTS_RULE)
        self.init_db(conf)
        self.assertExit(self.rd(conf, "hold", "add", "customer:7",
                                "--reason", "litigation"), 0)
        held_old = int(self.sql("SELECT count(*) FROM events WHERE customer_id = 7 "
                                "AND created_at < now() - interval '2 days'"))
        self.assertGreater(held_old, 0)

        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, r'rule "events" \(public\.events\): deleted 36 rows',
                          stream="stdout")
        self.assertOutput(proc, r"4 kept by legal hold", stream="stdout")

        # expired rows are gone except the held customer's; fresh rows stay
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE payload LIKE 'old%' "
                                  "AND customer_id <> 7"), "0")
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE payload LIKE 'old%' "
                                  "AND customer_id = 7"), str(held_old))
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE payload LIKE 'new%'"), "60")
        # the audit trail accounts for every row removed
        self.assertEqual(self.audit_rows("events"), 36)
        run = self.cluster.query("SELECT status, command, config_sha256 IS NOT NULL "
                                 "FROM retention.runs ORDER BY id DESC LIMIT 1",
                                 dbname=self.db)
        self.assertEqual(run, [["ok", "run", "t"]])

        # a released hold lets the next cycle remove the rest
        hold_id = self.sql("SELECT id FROM retention.legal_holds")
        self.assertExit(self.rd(conf, "hold", "release", hold_id), 0)
        self.assertExit(self.rd(conf, "run", "--force"), 0)
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE payload LIKE 'old%'"), "0")
        self.assertEqual(self.audit_rows("events"), 40)
        self.assertExit(self.rd(conf, "verify"), 0)

    def test_small_batches_still_remove_everything_and_audit_each(self):
        self.seed_events(expired=45, fresh=60)
        conf = self.config(self.EVENTS_RULE.replace(
            'retain = "2 days";', 'retain = "2 days"; batch_size = 10; pause = "0ms";'))
        self.init_db(conf)
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE payload LIKE 'old%'"), "0")
        batches = int(self.sql("SELECT count(*) FROM retention.actions"))
        self.assertGreaterEqual(batches, 2)
        self.assertEqual(self.audit_rows(), 45)
        self.assertExit(self.rd(conf, "verify"), 0)

    def test_where_condition_limits_what_is_deleted(self):
        self.sql("""
CREATE TABLE invoices (id serial PRIMARY KEY, issued_at date NOT NULL, status text);
INSERT INTO invoices (issued_at, status)
SELECT current_date - 4000 + (g % 3), CASE WHEN g % 4 = 0 THEN 'disputed' ELSE 'paid' END
FROM generate_series(1, 20) g;
INSERT INTO invoices (issued_at, status)
SELECT current_date - 10, 'paid' FROM generate_series(1, 30) g;
""")
        conf = self.config("""{
  name = "invoices"; policy = "financial records are kept 7 years";
  table = "invoices"; age_column = "issued_at"; retain = "7 years";
  where = "status <> 'disputed'";
}""")
        self.init_db(conf)
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.sql("SELECT count(*) FROM invoices WHERE status = 'disputed'"), "5")
        self.assertEqual(self.sql("SELECT count(*) FROM invoices"), "35")
        self.assertEqual(self.audit_rows(), 15)

    def test_disabled_rule_changes_nothing_but_is_reported_overdue(self):
        self.seed_events()
        conf = self.config(self.EVENTS_RULE.replace("{", "{ enabled = false;", 1))
        self.init_db(conf)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, r'rule "events" \(public\.events\): disabled; 40 rows OVERDUE',
                          stream="stdout")
        self.assertEqual(self.sql("SELECT count(*) FROM events"), "100")
        self.assertEqual(self.sql(
            "SELECT summary->'rules'->0->>'compliant' || ' ' || (summary->'rules'->0->>'overdue')"
            " FROM retention.runs ORDER BY id DESC LIMIT 1"), "false 40")
        # --rule runs it even though it is disabled: the operator asked
        self.assertExit(self.rd(conf, "run", "--rule", "events"), 0)
        self.assertEqual(self.sql("SELECT count(*) FROM events"), "60")
        self.assertEqual(self.sql(
            "SELECT summary->'rules'->0->>'compliant' FROM retention.runs ORDER BY id DESC LIMIT 1"),
            "true")

    def test_unknown_rule_name_is_a_usage_error(self):
        self.seed_events()
        conf = self.config(self.EVENTS_RULE)
        proc = self.rd(conf, "run", "--rule", "nope")
        self.assertExit(proc, 2)
        self.assertOutput(proc, r'no rule named "nope"')

    # --- plan ---------------------------------------------------------------

    def test_plan_changes_nothing_and_predicts_run(self):
        self.seed_events()
        conf = self.config(self.EVENTS_RULE)
        self.init_db(conf)
        before = self.sql("SELECT count(*), sum(id) FROM events")
        proc = self.rd(conf, "plan")
        self.assertExit(proc, 0)
        m = re.search(r"would delete (\d+) of (\d+) rows", proc.stdout)
        self.assertIsNotNone(m, proc.stdout)
        self.assertEqual(m.group(1), "40")
        self.assertEqual(m.group(2), "100")
        self.assertOutput(proc, r"cutoff:", stream="stdout")
        self.assertOutput(proc, r"oldest:", stream="stdout")
        self.assertEqual(self.sql("SELECT count(*), sum(id) FROM events"), before)
        self.assertEqual(self.sql("SELECT count(*) FROM retention.actions"), "0")

        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, r"deleted 40 rows", stream="stdout")

    def test_plan_shows_the_guard_that_would_stop_a_rule(self):
        self.seed_events(expired=80, fresh=20)
        conf = self.config(self.EVENTS_RULE)
        self.init_db(conf)
        proc = self.rd(conf, "plan")
        self.assertOutput(proc, r"guard:\s+would stop it", stream="stdout")
        self.assertEqual(self.sql("SELECT count(*) FROM events"), "100")

    # --- de-identification ----------------------------------------------------

    def seed_people(self):
        self.sql("""
CREATE TABLE people (
  id int PRIMARY KEY, closed_at timestamptz,
  email text, full_name varchar(100), phone text, last_ip inet, ip_text text,
  born date, seen_at timestamptz, contact text, deidentified_at timestamptz);
INSERT INTO people VALUES
 (1, now() - interval '400 days', 'Alice@Example.com', 'Alice A', '+44 1', '192.168.10.77',
  '10.1.2.3', '1980-06-15', '2020-07-04 12:34:56+00', 'alice@example.com', NULL),
 (2, now() - interval '500 days', 'bob@example.org', 'Bob B', '+44 2',
  '2001:db8:1234:5678::1', 'not an ip', '1975-12-31', '2019-01-01 00:00:00+00', 'bob@mail.example.org', NULL),
 (3, now() - interval '10 days', 'carol@example.net', 'Carol C', '+44 3', '10.0.0.1',
  '10.0.0.1', '1990-01-02', '2021-03-03 03:03:03+00', 'carol@example.net', NULL),
 (4, NULL, 'dave@example.com', 'Dave D', '+44 4', '10.0.0.2', '10.0.0.2', '1991-01-02',
  '2021-03-03 03:03:03+00', 'dave@example.com', NULL),
 (5, now() - interval '600 days', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
""")

    PEOPLE_RULE = """{
  name = "closed-accounts"; policy = "closed accounts are de-identified after a year";
  table = "public.people"; age_column = "closed_at"; retain = "1 year";
  action = "deidentify"; marker_column = "deidentified_at";
  deidentify = { email = "hash"; full_name = "redact"; phone = "null";
                 last_ip = "truncate_ip"; ip_text = "truncate_ip"; born = "year";
                 seen_at = "year"; contact = "mask_email"; };
  max_fraction = 1.0;
}"""

    def test_every_deidentify_method_gives_its_documented_value(self):
        self.seed_people()
        conf = self.config(self.PEOPLE_RULE)
        self.init_db(conf)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, r"de-identified 3 rows", stream="stdout")

        rows = {r[0]: r for r in self.cluster.query(
            "SELECT id, email, full_name, coalesce(phone, '<null>'), last_ip, ip_text, born, "
            "to_char(seen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), contact, "
            "deidentified_at IS NOT NULL FROM people ORDER BY id", dbname=self.db)}
        ref = hmac.new(KEY, b"Alice@Example.com", hashlib.sha256).hexdigest()
        self.assertEqual(rows["1"][1], ref, "hash is HMAC-SHA256 under the pseudonym key")
        self.assertEqual(rows["2"][1], hmac.new(KEY, b"bob@example.org", hashlib.sha256).hexdigest())
        self.assertEqual(rows["1"][2], "[redacted]")
        self.assertEqual(rows["1"][3], "<null>")
        self.assertEqual(rows["1"][4], "192.168.10.0/24")
        self.assertEqual(rows["2"][4], "2001:db8:1234::/48")
        self.assertEqual(rows["1"][5], "10.1.2.0/24")
        self.assertEqual(rows["2"][5], "[redacted]", "text that is no address is redacted")
        self.assertEqual(rows["1"][6], "1980-01-01")
        self.assertEqual(rows["1"][7], "2020-01-01 00:00:00")
        self.assertEqual(rows["1"][8], "***@example.com")
        self.assertEqual(rows["2"][8], "***@mail.example.org")
        self.assertEqual(rows["1"][9], "t")
        # row 5 (all NULL) is done too; rows 3 (recent) and 4 (open) untouched
        self.assertEqual(rows["5"][9], "t")
        self.assertEqual(rows["3"][1:], ["carol@example.net", "Carol C", "+44 3", "10.0.0.1",
                                         "10.0.0.1", "1990-01-02", "2021-03-03 03:03:03",
                                         "carol@example.net", "f"])
        self.assertEqual(rows["4"][1], "dave@example.com")
        self.assertEqual(self.audit_rows(), 3)

        # done rows are never rewritten: a second run changes nothing
        snapshot = self.sql("SELECT string_agg(people::text, ';' ORDER BY id) FROM people")
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, r"nothing due", stream="stdout")
        self.assertEqual(self.sql("SELECT string_agg(people::text, ';' ORDER BY id) FROM people"),
                         snapshot)
        self.assertEqual(self.audit_rows(), 3)

    def test_deidentify_without_marker_is_idempotent(self):
        self.seed_people()
        conf = self.config("""{
  name = "no-marker"; policy = "p"; table = "people"; age_column = "closed_at";
  retain = "1 year"; action = "deidentify"; max_fraction = 1.0;
  deidentify = { full_name = "redact"; last_ip = "truncate_ip"; contact = "mask_email";
                 born = "year"; phone = "null"; };
}""")
        self.init_db(conf)
        self.assertExit(self.rd(conf, "run"), 0)
        # row 5 has only NULLs: already in its target state, not counted
        self.assertEqual(self.audit_rows(), 2)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, r"nothing due", stream="stdout")
        self.assertEqual(self.audit_rows(), 2)

    # --- concurrency ------------------------------------------------------------

    def background_psql(self, statements):
        """A psql session kept open; returns the Popen once STATEMENTS ran."""
        proc = subprocess.Popen(
            [self.cluster._bin("psql"), "-X", "-q", "-A", "-t", "-h", self.cluster.host,
             "-p", str(self.cluster.port), "-U", "postgres", "-d", self.db],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=clean_env())
        self.addCleanup(lambda: (proc.poll() is None) and (proc.kill(), proc.wait()))
        proc.stdin.write(statements + "\n\\echo READY\n")
        proc.stdin.flush()
        while True:
            line = proc.stdout.readline()
            if not line or line.strip() == "READY":
                break
        return proc

    def test_second_instance_exits_3(self):
        self.seed_events()
        conf = self.config(self.EVENTS_RULE)
        self.init_db(conf)
        holder = self.background_psql(
            "SELECT pg_advisory_lock(hashtextextended('retentiond/retention', 0));")
        proc = self.rd(conf, "run")
        self.assertExit(proc, 3)
        self.assertOutput(proc, r"another retentiond instance")
        self.assertEqual(self.sql("SELECT count(*) FROM events"), "100")
        holder.stdin.close()
        holder.wait(timeout=10)
        self.assertExit(self.rd(conf, "run"), 0)

    def test_concurrent_runs_one_works_other_exits_3(self):
        self.seed_events(expired=4000, fresh=6000)
        conf = self.config(self.EVENTS_RULE.replace(
            'retain = "2 days";', 'retain = "2 days"; batch_size = 20; batch_target = "5ms"; pause = "50ms";'))
        self.init_db(conf)
        from harness import spawn
        a = spawn(["run"], config=conf)
        b = spawn(["run"], config=conf)
        codes = sorted([a.wait(timeout=120), b.wait(timeout=120)])
        self.assertEqual(codes, [0, 3])
        self.assertEqual(self.sql("SELECT count(*) FROM events"), "6000")
        self.assertEqual(self.audit_rows(), 4000)

    def test_stale_runs_are_marked_but_a_live_plan_is_not(self):
        """A run marks the "running" rows of dead processes interrupted, but
        not the row of a plan still working (a plan takes no instance
        lock): each row is locked by the session working on it."""
        self.seed_events()
        conf = self.config(self.EVENTS_RULE)
        self.init_db(conf)
        live, dead = self.sql(
            "INSERT INTO retention.runs (host, command, status) VALUES"
            " ('h', 'plan', 'running'), ('h', 'run', 'running')"
            " RETURNING id").split()
        holder = self.background_psql(
            "SELECT pg_advisory_lock(hashtextextended("
            f"'retentiond/run/retention/{live}', 0));")
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.sql(f"SELECT status FROM retention.runs WHERE id = {live}"),
                         "running")
        self.assertEqual(self.sql(f"SELECT status FROM retention.runs WHERE id = {dead}"),
                         "interrupted")
        self.assertEqual(self.sql("SELECT count(*) FROM retention.runs"
                                  " WHERE status = 'running'"), "1")
        holder.stdin.close()
        holder.wait(timeout=10)
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.sql(f"SELECT status FROM retention.runs WHERE id = {live}"),
                         "interrupted")
        self.assertEqual(self.sql("SELECT count(*) FROM retention.runs"
                                  " WHERE status = 'running'"), "0")

    def test_long_pause_ends_at_max_runtime(self):
        """A pause between batches longer than what is left of max_runtime
        is cut at max_runtime: the run ends on time, with the batches it
        did audited, and the next run goes on."""
        self.seed_events()
        conf = self.config(self.EVENTS_RULE.replace(
            'retain = "2 days";',
            'retain = "2 days"; batch_size = 10; pause = "1 hour";'
            ' max_runtime = "2s";'))
        self.init_db(conf)
        t0 = time.monotonic()
        proc = self.rd(conf, "run", timeout=60)
        self.assertExit(proc, 0)
        self.assertLess(time.monotonic() - t0, 20)
        self.assertOutput(proc, r"max_runtime reached", stream="stdout")
        first = self.audit_rows()
        self.assertGreater(first, 0)
        self.assertLess(first, 40)
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE payload LIKE 'old%'"),
                         str(40 - first))

    # --- yielding to the application's writes ----------------------------------

    def many_expired(self, n=30000):
        self.seed_events(expired=n, fresh=10)
        # no autovacuum: its WAL would count as someone else writing
        self.sql("ALTER TABLE events SET (autovacuum_enabled = false);")

    def run_while_writing(self, conf):
        """`run` while another session commits a small insert every
        millisecond or so."""
        self.sql("CREATE TABLE noise (id serial, t text);")
        writer = self.background_psql("SELECT 1;")
        writer.stdin.write(
            "DO $$ BEGIN FOR i IN 1..200000 LOOP"
            " INSERT INTO noise (t) VALUES (repeat('x', 200)); COMMIT;"
            " PERFORM pg_sleep(0.001); END LOOP; END $$;\n")
        writer.stdin.flush()
        deadline = time.monotonic() + 10
        while int(self.sql("SELECT count(*) FROM noise")) == 0:
            self.assertLess(time.monotonic(), deadline, "the writer did not start")
            time.sleep(0.05)
        try:
            return self.rd(conf, "run", timeout=120)
        finally:
            writer.kill()
            writer.communicate(timeout=10)

    def assert_full_speed(self, proc):
        """Every row done in the few large batches batch_target gives."""
        self.assertExit(proc, 0)
        self.assertNoOutput(proc, r"other sessions are writing")
        self.assertEqual(self.audit_rows(), 30000)
        self.assertLessEqual(int(self.sql("SELECT count(*) FROM retention.actions")), 3)

    def test_batches_shrink_and_flush_while_others_write(self):
        """Another session committing writes while retentiond works: its
        batches aim for busy_batch_target (so the application's commits
        do not wait behind a big batch's WAL), and nothing is lost."""
        self.many_expired()
        conf = self.config(self.EVENTS_RULE, "limits: { max_fraction = 1.0; };")
        self.init_db(conf)
        # the server logs retentiond's statements from here on
        self.sql(f"ALTER DATABASE {self.db} SET log_statement = 'all';")
        before = len(self.cluster.server_log())
        proc = self.run_while_writing(conf)
        self.assertExit(proc, 0)
        self.assertOutput(proc, r"other sessions are writing; batches of about 3 ms")
        # while gentle, its evicted pages are sent to disk as it writes
        # them, not left to reach it in one burst later; afterwards the
        # session's own setting is back
        log = self.cluster.server_log()[before:]
        on = log.find("SET backend_flush_after = '256kB'")
        self.assertGreaterEqual(on, 0, "backend_flush_after never set")
        self.assertGreater(log.find("RESET backend_flush_after", on), on)
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE payload LIKE 'old%'"), "0")
        self.assertEqual(self.audit_rows(), 30000)
        # the first batch (10000 rows) ran before anyone was seen; then
        # batches of 1000 rows (BUSY_MIN_ROWS): 3 ms is below what a
        # commit costs
        batches, small = self.sql(
            "SELECT count(*), count(*) FILTER (WHERE rows <= 2000)"
            " FROM retention.actions").split("|")
        self.assertGreaterEqual(int(small), 5, f"{batches} batches, {small} small")
        self.assertExit(self.rd(conf, "verify"), 0)

    def test_alone_batches_stay_large(self):
        """Nobody else writing: no slowing down, the batches grow toward
        batch_target."""
        self.many_expired()
        conf = self.config(self.EVENTS_RULE, "limits: { max_fraction = 1.0; };")
        self.init_db(conf)
        proc = self.rd(conf, "run", timeout=120)
        self.assert_full_speed(proc)

    def test_busy_batch_target_zero_does_not_watch(self):
        self.many_expired()
        conf = self.config(self.EVENTS_RULE, 'limits: { max_fraction = 1.0;'
                           ' busy_batch_target = "0ms"; };')
        self.init_db(conf)
        proc = self.run_while_writing(conf)
        self.assert_full_speed(proc)

    @real_clock("PostgreSQL's lock_timeout never fires under libfaketime")
    def test_row_locked_by_another_session_is_skipped_not_waited_on(self):
        self.seed_events()
        conf = self.config(self.EVENTS_RULE)
        self.init_db(conf)
        locker = self.background_psql(
            "BEGIN; SELECT id FROM events WHERE payload = 'old 3' FOR UPDATE;")
        t0 = time.monotonic()
        proc = self.rd(conf, "run", timeout=60)
        self.assertExit(proc, 0)
        self.assertLess(time.monotonic() - t0, 20)
        self.assertEqual(self.sql("SELECT payload FROM events WHERE payload LIKE 'old%'"),
                         "old 3")
        self.assertEqual(self.audit_rows(), 39)
        locker.stdin.write("COMMIT;\n")
        locker.stdin.close()
        locker.wait(timeout=10)
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE payload LIKE 'old%'"), "0")
        self.assertEqual(self.audit_rows(), 40)

    # --- audit chain on real runs --------------------------------------------------

    def test_edited_audit_row_after_run_fails_verify(self):
        self.seed_events(expired=45)
        conf = self.config(self.EVENTS_RULE.replace(
            'retain = "2 days";', 'retain = "2 days"; batch_size = 10;'))
        self.init_db(conf)
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertExit(self.rd(conf, "verify"), 0)
        victim = self.sql("SELECT id FROM retention.actions ORDER BY id LIMIT 1 OFFSET 1")
        self.sql("SET session_replication_role = replica; "
                 f"UPDATE retention.actions SET rows = rows - 1 WHERE id = {victim};")
        proc = self.rd(conf, "verify")
        self.assertExit(proc, 1)
        self.assertIn(victim, proc.stdout + proc.stderr)

    # --- guards -------------------------------------------------------------------

    def test_max_fraction_guard_stops_rule_and_force_passes(self):
        self.seed_events(expired=80, fresh=20)
        conf = self.config(self.EVENTS_RULE)
        self.init_db(conf)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 1)
        self.assertOutput(proc, r"refused: would delete 80 of 100 rows \(80\.0%\), "
                                r"more than max_fraction 0\.50", stream="stdout")
        self.assertEqual(self.sql("SELECT count(*) FROM events"), "100")
        self.assertEqual(self.sql("SELECT status FROM retention.runs ORDER BY id DESC LIMIT 1"),
                         "failed")
        self.assertIn("max_fraction",
                      self.sql("SELECT error FROM retention.runs ORDER BY id DESC LIMIT 1"))
        proc = self.rd(conf, "run", "--force")
        self.assertExit(proc, 0)
        self.assertEqual(self.sql("SELECT count(*) FROM events"), "20")

    def test_retention_under_an_hour_needs_force(self):
        self.seed_events()
        conf = self.config(self.EVENTS_RULE.replace('"2 days"', '"30 min"').replace(
            'subject = "customer";', 'max_fraction = 1.0; subject = "customer";'))
        self.init_db(conf)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 1)
        self.assertOutput(proc, r"under one hour", stream="stdout")
        self.assertEqual(self.sql("SELECT count(*) FROM events"), "100")
        self.assertExit(self.rd(conf, "run", "--force"), 0)

    @real_clock("preloads libfaketime itself, with its own offset")
    def test_clock_skew_refuses_to_run(self):
        lib = None
        for cand in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                     "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"):
            if os.path.exists(cand):
                lib = cand
        self.assertIsNotNone(lib, "libfaketime is needed (apt-get install faketime)")
        self.seed_events()
        conf = self.config(self.EVENTS_RULE)
        self.init_db(conf)
        env = {"LD_PRELOAD": lib, "FAKETIME": "+1h", "DONT_FAKE_MONOTONIC": "1"}
        if os.environ.get("RETENTIOND_WRAPPER"):
            self.skipTest("faketime cannot preload under a wrapper")
        proc = self.rd(conf, "run", env=env)
        self.assertExit(proc, 1)
        self.assertOutput(proc, r"host clock and the database's differ by 3600 seconds")
        self.assertEqual(self.sql("SELECT count(*) FROM events"), "100")
        # a small skew is fine
        env["FAKETIME"] = "+2m"
        self.assertExit(self.rd(conf, "run", env=env), 0)

    # --- hostile identifiers ------------------------------------------------------

    def test_hostile_identifiers_are_quoted(self):
        table = 'x"; DROP TABLE y; --'
        col = 'when"--'
        self.sql(f"""
CREATE TABLE y (id int);
CREATE TABLE {quote_ident(table)} (id serial, {quote_ident(col)} timestamptz, "it's" text);
INSERT INTO {quote_ident(table)} ({quote_ident(col)}, "it's")
SELECT now() - g * interval '1 day', 'v' FROM generate_series(1, 10) g;
""")
        def cfg_str(v):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        conf = self.config(f"""{{
  name = "hostile"; policy = "p"; table = {cfg_str("public." + quote_ident(table))};
  age_column = {cfg_str(col)}; retain = "132 hours"; max_fraction = 1.0;
}}""")
        self.init_db(conf)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertEqual(self.sql("SELECT count(*) FROM y"), "0")
        self.assertEqual(self.sql(f"SELECT count(*) FROM {quote_ident(table)}"), "5")
        self.assertEqual(self.audit_rows(), 5)


if __name__ == "__main__":
    main()
