"""Least privilege (SPEC §2 `grants`): a role given exactly what `retentiond
grants ROLE` prints can do every job, and nothing beyond it.

The owner of the tables runs `init-db` and applies the printed SQL; then,
as that role: `check`, `plan`, `run` (a delete rule, a de-identify rule
with "hash", a rule whose table a table without a rule references, legal
holds, an erasure request), `hold`, `erase`, `erasure list`, `verify` and
`report` all work. Under the same role, reading a table outside the rules,
updating a column no method writes, deleting from a de-identify-only table,
and changing or deleting the audit trail all fail.
"""

import os
import re
import signal
import subprocess
import time

from harness import (real_clock, IS_ROOT, IntegrationTest, clean_env, main, run, spawn,
                     write_config, write_secret)

ROLE = "retention_worker"
KEY = "privilege-test-pseudonym-key-0123456789"

SCHEMA = """
CREATE TABLE customers (id int PRIMARY KEY, closed_at timestamptz,
                        email text, full_name text, phone text,
                        credit_limit int DEFAULT 100, deidentified_at timestamptz);
CREATE INDEX ON customers (closed_at);
CREATE TABLE events (id serial PRIMARY KEY, created_at timestamptz NOT NULL,
                     customer_id int NOT NULL, payload text);
CREATE INDEX ON events (created_at);
-- a table with a rule, referenced by a table without one
CREATE TABLE sessions (id int PRIMARY KEY, started_at timestamptz NOT NULL,
                       customer_id int);
CREATE INDEX ON sessions (started_at);
CREATE TABLE session_flags (id serial PRIMARY KEY,
                            session_id int REFERENCES sessions, note text);
-- partitioned: the batches work on each partition by its own name
CREATE TABLE visits (id int, at timestamptz NOT NULL, customer_id int)
  PARTITION BY RANGE (at);
CREATE TABLE visits_p1 PARTITION OF visits FOR VALUES FROM (MINVALUE) TO ('2000-01-01');
CREATE TABLE visits_p2 PARTITION OF visits FOR VALUES FROM ('2000-01-01') TO (MAXVALUE);
CREATE INDEX ON visits (at);
INSERT INTO visits SELECT g, '1990-01-01'::timestamptz + g * interval '1 day', g % 20 + 1
FROM generate_series(1, 5) g;
INSERT INTO visits SELECT g, now() - interval '100 days', g % 20 + 1
FROM generate_series(6, 10) g;
INSERT INTO visits SELECT g, now(), g % 20 + 1 FROM generate_series(11, 40) g;
-- no rule at all: retentiond has no business here
CREATE TABLE payroll (id int PRIMARY KEY, salary int);
INSERT INTO payroll VALUES (1, 100000);

INSERT INTO customers (id, closed_at, email, full_name, phone)
SELECT g, CASE WHEN g <= 6 THEN now() - interval '2 years'
               WHEN g <= 12 THEN now() - interval '10 days' END,
       'user' || g || '@example.com', 'Person ' || g, '+44 ' || g
FROM generate_series(1, 20) g;
INSERT INTO events (created_at, customer_id, payload)
SELECT now() - interval '10 days' - g * interval '1 minute', g % 20 + 1, 'old'
FROM generate_series(1, 40) g;
INSERT INTO events (created_at, customer_id, payload)
SELECT now() - interval '1 hour', g % 20 + 1, 'new' FROM generate_series(1, 60) g;
INSERT INTO sessions SELECT g, now() - interval '100 days', g % 20 + 1
FROM generate_series(1, 10) g;
INSERT INTO sessions SELECT g, now(), g % 20 + 1 FROM generate_series(11, 30) g;
INSERT INTO session_flags (session_id, note) VALUES (3, 'abuse report');
"""

RULES = """
  { name = "events"; policy = "events are kept 2 days"; table = "public.events";
    age_column = "created_at"; retain = "2 days"; subject = "customer";
    subject_column = "customer_id"; },
  { name = "closed-accounts"; policy = "closed accounts are de-identified after a year";
    table = "public.customers"; age_column = "closed_at"; retain = "1 year";
    action = "deidentify"; marker_column = "deidentified_at";
    deidentify = { email = "hash"; full_name = "redact"; phone = "null"; };
    subject = "customer"; subject_column = "id"; },
  { name = "sessions"; policy = "sessions are kept 90 days"; table = "public.sessions";
    age_column = "started_at"; retain = "90 days"; max_fraction = 0.9; },
  { name = "visits"; policy = "visits are kept 90 days"; table = "public.visits";
    age_column = "at"; retain = "90 days"; partitions = "rows"; }
"""


class PrivilegeTest(IntegrationTest):

    def setUp(self):
        super().setUp()
        self.db = "t_" + self._testMethodName[5:40].lower()
        self.cluster.createdb(self.db)
        self.sql(SCHEMA)
        self.keyfile = write_secret(os.path.join(self.tmp, "key"), KEY)
        self.reports = os.path.join(self.tmp, "reports")
        os.mkdir(self.reports)
        self.owner_conf = self.config("postgres", "owner.conf")
        self.role_conf = self.config(ROLE, "role.conf")

    def tearDown(self):
        self.cluster.psql(f"DROP DATABASE IF EXISTS {self.db}; DROP OWNED BY {ROLE};"
                          f" DROP ROLE IF EXISTS {ROLE};", check=False)
        super().tearDown()

    def sql(self, text, user="postgres", check=True):
        return self.cluster.psql(text, dbname=self.db, user=user, check=check)

    def config(self, user, name):
        return write_config(os.path.join(self.tmp, name), f"""
database: {{ conninfo = "{self.cluster.conninfo(self.db, user=user)}"; }};
pseudonym_key_file = "{self.keyfile}";
report: {{ directory = "{self.reports}"; formats = [ "html", "csv", "json" ]; }};
rules = ( {RULES} );
""")

    def rd(self, *args, conf=None):
        return run(list(args), config=conf or self.role_conf)

    def grant(self):
        """Owner: init-db, then exactly what `grants` prints."""
        self.assertExit(self.rd("init-db", conf=self.owner_conf), 0)
        proc = self.rd("grants", ROLE, conf=self.owner_conf)
        self.assertExit(proc, 0)
        self.sql(f"CREATE ROLE {ROLE} LOGIN;")
        self.sql(proc.stdout)
        return proc.stdout

    def assertDenied(self, statement, why=r"permission denied|append-only"):
        proc = subprocess.run(
            [self.cluster._bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", self.cluster.host, "-p", str(self.cluster.port), "-U", ROLE,
             "-d", self.db, "-c", statement],
            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, timeout=60)
        # psql -c: 1 when the statement failed
        self.assertEqual(proc.returncode, 1, f"{statement!r} was allowed")
        self.assertRegex(proc.stderr, why, statement)

    def hold_row_lock(self, statement):
        """A session of the owner that holds STATEMENT's row locks until its
        stdin is closed."""
        proc = subprocess.Popen(
            [self.cluster._bin("psql"), "-X", "-q", "-A", "-t", "-h", self.cluster.host,
             "-p", str(self.cluster.port), "-U", "postgres", "-d", self.db],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=clean_env())
        self.addCleanup(proc.stderr.close)
        self.addCleanup(proc.stdout.close)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        proc.stdin.write(f"BEGIN; {statement};\n\\echo READY\n")
        proc.stdin.flush()
        while True:
            line = proc.stdout.readline()
            if not line or line.strip() == "READY":
                return proc

    @real_clock("PostgreSQL's lock_timeout never fires under libfaketime")
    def test_the_printed_grants_are_enough_for_every_command(self):
        printed = self.grant()
        # least privilege, as printed: no table-wide UPDATE, no DELETE on
        # a de-identify-only table, nothing on the table without a rule
        self.assertNotIn("payroll", printed)
        self.assertNotRegex(printed, r"GRANT [^;]*DELETE[^;]* ON \"public\".\"customers\"")
        self.assertNotRegex(printed, r"GRANT [^;]*UPDATE ON \"public\"")

        proc = self.rd("check")
        self.assertExit(proc, 0)
        self.assertIn("configuration OK", proc.stdout)

        self.assertExit(self.rd("hold", "add", "customer:3", "--reason", "litigation"), 0)
        self.assertExit(self.rd("hold", "add", "customer:4", "--reason", "audit"), 0)
        self.assertExit(self.rd("hold", "list"), 0)
        hold4 = self.sql("SELECT id FROM retention.legal_holds WHERE subject_id = '4'")
        self.assertExit(self.rd("hold", "release", hold4), 0)
        self.assertExit(self.rd("erase", "customer:15", "--reason", "user asked"), 0)
        self.assertExit(self.rd("erasure", "list"), 0)

        proc = self.rd("plan")
        self.assertExit(proc, 0)
        self.assertRegex(proc.stdout, r'rule "events" .*would delete')

        # a row the application holds is skipped, not waited on: the
        # batch that meets it is redone with FOR UPDATE SKIP LOCKED
        locker = self.hold_row_lock("SELECT * FROM events WHERE id = 10 FOR UPDATE")
        proc = self.rd("run")
        self.assertExit(proc, 0)
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE id = 10"), "1")
        locker.stdin.close()
        locker.wait(timeout=10)
        proc = self.rd("run")
        self.assertExit(proc, 0)
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE id = 10"), "0")
        # events: expired and not held (customer 3 is) are gone
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE payload = 'old'"
                                  " AND customer_id <> 3"), "0")
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE payload = 'old'"
                                  " AND customer_id = 3"), "2")
        # the erasure: customer 15's events (of any age) are gone, the
        # account de-identified
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE customer_id = 15"),
                         "0", proc.stdout)
        self.assertEqual(self.sql("SELECT full_name FROM customers WHERE id = 15"),
                         "[redacted]")
        self.assertEqual(self.sql("SELECT status FROM retention.erasure_requests"), "done")
        # closed accounts: 1, 2, 4, 5, 6 done; 3 held
        self.assertEqual(self.sql(
            "SELECT string_agg(id::text, ',' ORDER BY id) FROM customers"
            " WHERE deidentified_at IS NOT NULL"), "1,2,4,5,6,15")
        self.assertEqual(self.sql("SELECT credit_limit FROM customers WHERE id = 1"), "100")
        # sessions: old ones gone except the one still referenced
        self.assertEqual(self.sql("SELECT string_agg(id::text, ',') FROM sessions"
                                  " WHERE started_at < now() - interval '90 days'"), "3")
        self.assertIn("still referenced", proc.stdout)
        # visits: row batches in each partition
        self.assertEqual(self.sql("SELECT count(*) FROM visits WHERE at < now() -"
                                  " interval '90 days'"), "0")
        self.assertEqual(self.sql("SELECT count(*) FROM visits"), "30")
        self.assertEqual(self.sql("SELECT string_agg(DISTINCT status, ',') FROM"
                                  " retention.runs WHERE command = 'run'"), "ok")
        self.assertEqual(self.sql("SELECT DISTINCT usename FROM pg_stat_activity"
                                  f" WHERE usename = '{ROLE}'"), "")

        self.assertExit(self.rd("verify"), 0)
        for fmt in ("text", "csv", "json", "html"):
            proc = self.rd("report", "--format", fmt)
            self.assertExit(proc, 0, fmt)
            self.assertIn("events", proc.stdout)
        self.assertEqual(sorted(os.listdir(self.reports)),
                         sorted(f"run-{n}.{ext}" for n in re.findall(
                             r"\d+", self.sql("SELECT id FROM retention.runs WHERE"
                                              " command = 'run'"))
                                for ext in ("html", "csv", "json")))

        # the audit trail the role wrote accounts for every row it removed
        self.assertEqual(self.sql(
            "SELECT (SELECT sum(rows) FROM retention.actions WHERE rule = 'events')"
            " + (SELECT count(*) FROM events)"), "100")

    def test_the_role_can_fulfil_an_access_request(self):
        # SPEC §8: `grants` includes the SELECTs an export needs
        requests = os.path.join(self.tmp, "requests")
        extra = (f'subjects = {{ customer = {{ table = "public.customers"; key = "id"; }}; }};\n'
                 f'requests: {{ directory = "{requests}"; }};\n')
        for conf in (self.owner_conf, self.role_conf):
            with open(conf, "a") as f:
                f.write(extra)
        printed = self.grant()
        self.assertNotIn("payroll", printed)
        self.assertIn('GRANT SELECT ON "public"."customers"', printed)
        proc = self.rd("access", "customer:5", "--now")
        self.assertExit(proc, 0)
        self.assertRegex(proc.stdout, r"access request \d+: \d+ rows from 2 tables")
        self.assertEqual(self.sql("SELECT status FROM retention.access_requests").strip(),
                         "done")
        self.assertExit(self.rd("access", "list"), 0)
        self.assertExit(self.rd("verify"), 0)

    def test_the_role_can_do_nothing_more(self):
        self.grant()
        self.assertExit(self.rd("run"), 0)
        # tables outside the rules
        self.assertDenied("SELECT * FROM payroll")
        self.assertDenied("SELECT * FROM session_flags")
        self.assertDenied("SELECT note FROM session_flags")
        self.assertDenied("UPDATE visits_p2 SET customer_id = 0")
        self.assertDenied("INSERT INTO payroll VALUES (2, 1)")
        # no new rows in a rule's table, no column beyond the methods'
        self.assertDenied("INSERT INTO events (created_at, customer_id) VALUES (now(), 1)")
        self.assertDenied("UPDATE customers SET credit_limit = 0")
        self.assertDenied("UPDATE customers SET closed_at = NULL")
        self.assertDenied("UPDATE events SET payload = 'x'")
        # a de-identify-only table loses no row
        self.assertDenied("DELETE FROM customers WHERE id = 1")
        self.assertDenied("TRUNCATE customers")
        # the audit trail is append-only for it
        self.assertDenied("UPDATE retention.actions SET rows = 0")
        self.assertDenied("DELETE FROM retention.actions")
        self.assertDenied("TRUNCATE retention.actions")
        self.assertDenied("UPDATE retention.audit_head SET hash = repeat('0', 64)")
        self.assertDenied("DELETE FROM retention.audit_head")
        self.assertDenied("DELETE FROM retention.runs")
        self.assertDenied("DELETE FROM retention.legal_holds")
        self.assertDenied("DELETE FROM retention.erasure_requests")
        self.assertDenied("DELETE FROM retention.outbox")
        self.assertDenied("DROP TABLE retention.actions", r"must be owner")
        self.assertDenied("ALTER TABLE retention.actions DISABLE TRIGGER USER",
                          r"must be owner")
        self.assertDenied("CREATE TABLE retention.x (id int)", r"permission denied")
        self.assertDenied("CREATE TABLE public.x (id int)", r"permission denied")
        # nothing above changed anything
        self.assertEqual(self.sql("SELECT count(*) FROM payroll"), "1")
        self.assertEqual(self.sql("SELECT count(*) FROM customers WHERE credit_limit = 100"),
                         "20")
        self.assertExit(self.rd("verify"), 0)

    def test_check_names_a_missing_privilege(self):
        self.grant()
        self.assertExit(self.rd("check"), 0)
        # has_table_privilege('SELECT, DELETE') is true with SELECT alone:
        # each privilege must be asked on its own
        self.sql(f"REVOKE DELETE ON events FROM {ROLE};"
                 f" REVOKE UPDATE (phone) ON customers FROM {ROLE};"
                 f" REVOKE UPDATE (started_at) ON sessions FROM {ROLE};"
                 f" REVOKE SELECT ON session_flags FROM {ROLE};"
                 f" REVOKE DELETE ON visits_p2 FROM {ROLE};")
        proc = self.rd("check")
        self.assertExit(proc, 2)
        self.assertRegex(proc.stderr, r'rule "events".*lacks DELETE privilege on the table')
        self.assertRegex(proc.stderr, r'rule "closed-accounts".*lacks UPDATE privilege'
                                      r' on column "phone"')
        self.assertRegex(proc.stderr, r'rule "sessions".*lacks UPDATE privilege on every')
        self.assertRegex(proc.stderr, r'rule "sessions".*lacks SELECT privilege on column'
                                      r' "session_id" of public.session_flags')
        self.assertRegex(proc.stderr, r'rule "visits".*lacks DELETE privilege on'
                                      r' partition public.visits_p2')
        self.assertNotRegex(proc.stderr, r'visits_p1')
        self.assertNotRegex(proc.stderr, r'rule "closed-accounts".*lacks DELETE')

    def test_daemon_refuses_root_unless_allowed(self):
        """The daemon holds secrets and talks to the network: as root it
        refuses to start without --allow-root (exit 2), before it even
        connects; a dedicated user, or root with the flag, runs."""
        self.grant()
        if IS_ROOT:
            proc = run(["daemon"], config=self.role_conf, timeout=15)
            self.assertExit(proc, 2)
            self.assertIn("refusing to run as root", proc.stderr)
            self.assertIn("--allow-root", proc.stderr)
            self.assertEqual(self.sql("SELECT count(*) FROM retention.runs"), "0")
        # (not root, only that part does not apply: without the flag, the
        # daemon below starts as it should)
        log = open(os.path.join(self.tmp, "daemon.log"), "w")
        self.addCleanup(log.close)
        daemon = spawn(["daemon"] + (["--allow-root"] if IS_ROOT else []),
                       config=self.role_conf, stdout=log, stderr=log)
        self.addCleanup(lambda: daemon.poll() is None and (daemon.kill(), daemon.wait()))
        deadline = time.monotonic() + 30
        while self.sql("SELECT count(*) FROM retention.runs WHERE status = 'ok'") == "0":
            self.assertLess(time.monotonic(), deadline, "the daemon ran no cycle")
            self.assertIsNone(daemon.poll(), "the daemon exited")
            time.sleep(0.1)
        daemon.send_signal(signal.SIGTERM)
        self.assertEqual(daemon.wait(timeout=30), 0)


if __name__ == "__main__":
    main()
