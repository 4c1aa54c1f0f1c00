"""`retentiond init-db` (SPEC §2, §4): creates retentiond's own schema from
the SQL embedded in the binary, idempotent and versioned.

Output contract: "schema "S" is at version N (applied: 001_init.sql)" on
the first run, "schema "S" is up to date (version N)" after; exit 0. A
database whose schema is newer than the binary knows is refused (exit 1).
"""

import glob
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

# The versioned files the binary embeds, as the source tree has them.
SQL_FILES = sorted(os.path.basename(p) for p in
                   glob.glob(os.path.join(harness.SRCDIR, "sql", "[0-9]*_*.sql")))
LATEST = int(re.match(r"\d+", SQL_FILES[-1]).group(0))

# SPEC §4 key columns, plus what the audit chain and the mail outbox need.
EXPECTED_COLUMNS = {
    "schema_version": ["version", "applied_at", "description"],
    "runs": ["id", "started_at", "finished_at", "host", "command", "status",
             "config_sha256", "error", "pid", "summary"],
    "actions": ["id", "run_id", "rule", "target", "action", "cutoff", "rows",
                "started_at", "finished_at", "detail", "prev_hash", "hash"],
    "audit_head": ["id", "last_id", "hash"],
    "legal_holds": ["id", "subject", "subject_id", "reason", "placed_by",
                    "placed_at", "expires_at", "released_at", "released_by"],
    "erasure_requests": ["id", "subject", "subject_id", "reason",
                         "requested_at", "due_at", "status", "completed_at",
                         "detail", "due_soon_mailed_at", "overdue_mailed_at"],
    "outbox": ["id", "created_at", "subject", "body", "html_body", "attempts",
               "last_error", "next_attempt_at", "sent_at"],
    "access_requests": ["id", "subject", "subject_id", "reason", "requested_at",
                        "due_at", "status", "completed_at", "detail",
                        "due_soon_mailed_at", "overdue_mailed_at"],
}

CONFIG = """\
database: {
  conninfo = "%(conninfo)s";
  %(schema)s
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

# Everything init-db creates, as text, to compare before and after.
CATALOG_SNAPSHOT = """
SELECT string_agg(x, E'\\n' ORDER BY x) FROM (
  SELECT 'rel ' || c.relname || ' ' || c.relkind::text || ' ' || c.oid FROM pg_class c
   WHERE c.relnamespace = '%(schema)s'::regnamespace
  UNION ALL
  SELECT 'fn ' || p.proname || ' ' || p.oid FROM pg_proc p
   WHERE p.pronamespace = '%(schema)s'::regnamespace
  UNION ALL
  SELECT 'trg ' || t.tgname || ' ' || t.oid FROM pg_trigger t
   JOIN pg_class c ON c.oid = t.tgrelid
   WHERE c.relnamespace = '%(schema)s'::regnamespace
  UNION ALL
  SELECT 'ver ' || version || ' ' || applied_at FROM %(schema)s.schema_version
  UNION ALL
  SELECT 'head ' || coalesce(last_id::text, '-') || ' ' || hash FROM %(schema)s.audit_head
) s(x);
"""


class InitDbTest(harness.IntegrationTest):

    n = 0

    def new_db(self):
        InitDbTest.n += 1
        name = f"initdb{InitDbTest.n}"
        self.cluster.createdb(name)
        return name

    def config(self, db, schema=None):
        text = CONFIG % {
            "conninfo": self.cluster.conninfo(db),
            "schema": f'schema = "{schema}";' if schema else "",
        }
        return harness.write_config(os.path.join(self.tmp, f"{db}.conf"), text)

    def columns(self, db, schema):
        rows = self.cluster.query(
            "SELECT table_name, column_name FROM information_schema.columns"
            f" WHERE table_schema = {harness.quote_literal(schema)}"
            " ORDER BY table_name, ordinal_position", dbname=db)
        tables = {}
        for table, column in rows:
            tables.setdefault(table, []).append(column)
        return tables

    def test_creates_every_table_and_column_of_the_spec(self):
        db = self.new_db()
        proc = harness.run(["init-db"], config=self.config(db))
        self.assertExit(proc, 0)
        self.assertEqual(proc.stdout,
                         f'schema "retention" is at version {LATEST} '
                         f'(applied: {", ".join(SQL_FILES)})\n')
        self.assertEqual(self.columns(db, "retention"), EXPECTED_COLUMNS)
        # one row per file, each with the file's name
        self.assertEqual(self.cluster.query(
            "SELECT version, description = '' OR description IS NULL"
            " FROM retention.schema_version ORDER BY version", dbname=db),
            [[str(int(re.match(r"\d+", f).group(0))), "f"] for f in SQL_FILES])
        # the chain starts at the genesis hash
        self.assertEqual(self.cluster.query(
            "SELECT coalesce(last_id::text, 'null'), hash FROM retention.audit_head",
            dbname=db), [["null", "0" * 64]])
        # every table carries a comment for auditors
        uncommented = self.cluster.scalar(
            "SELECT string_agg(relname, ',') FROM pg_class"
            " WHERE relnamespace = 'retention'::regnamespace AND relkind = 'r'"
            " AND obj_description(oid, 'pg_class') IS NULL", dbname=db)
        self.assertEqual(uncommented, "")

    def test_constraints_of_the_spec_hold(self):
        db = self.new_db()
        self.assertExit(harness.run(["init-db"], config=self.config(db)), 0)
        bad = {
            "runs status": "INSERT INTO retention.runs (host, command, status)"
                           " VALUES ('h', 'run', 'bogus')",
            "empty hold reason": "INSERT INTO retention.legal_holds"
                                 " (subject, subject_id, reason, placed_by)"
                                 " VALUES ('customer', '1', '', 'me')",
            "erasure status": "INSERT INTO retention.erasure_requests"
                              " (subject, subject_id, status)"
                              " VALUES ('customer', '1', 'bogus')",
            "second audit head": "INSERT INTO retention.audit_head (hash)"
                                 " VALUES ('x')",
        }
        for what, sql in bad.items():
            with self.subTest(what):
                proc = subprocess.run(
                    [self.cluster._bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                     "-h", self.cluster.host, "-p", str(self.cluster.port),
                     "-U", "postgres", "-d", db, "-c", sql],
                    env=harness.clean_env(), capture_output=True, text=True)
                # psql -c: 1 when the statement failed
                self.assertEqual(proc.returncode, 1, proc.stdout)

    def test_erasure_requests_are_due_one_month_after_they_arrive(self):
        db = self.new_db()
        self.assertExit(harness.run(["init-db"], config=self.config(db)), 0)
        due = self.cluster.scalar(
            "INSERT INTO retention.erasure_requests (subject, subject_id, requested_at)"
            " VALUES ('customer', '7', '2024-01-31 12:00+00')"
            " RETURNING due_at = '2024-01-31 12:00+00'::timestamptz + interval '1 month';",
            dbname=db)
        self.assertEqual(due, "t")
        explicit = self.cluster.scalar(
            "INSERT INTO retention.erasure_requests (subject, subject_id, due_at)"
            " VALUES ('customer', '8', '2030-01-01+00')"
            " RETURNING due_at = '2030-01-01+00';", dbname=db)
        self.assertEqual(explicit, "t")

    def test_second_run_is_up_to_date_and_changes_nothing(self):
        db = self.new_db()
        config = self.config(db)
        self.assertExit(harness.run(["init-db"], config=config), 0)
        before = self.cluster.scalar(CATALOG_SNAPSHOT % {"schema": "retention"},
                                     dbname=db)
        proc = harness.run(["init-db"], config=config)
        self.assertExit(proc, 0)
        self.assertEqual(proc.stdout,
                         f'schema "retention" is up to date (version {LATEST})\n')
        after = self.cluster.scalar(CATALOG_SNAPSHOT % {"schema": "retention"},
                                    dbname=db)
        self.assertEqual(before, after)

    def test_honours_a_custom_schema(self):
        db = self.new_db()
        schema = "audit_trail"
        config = self.config(db, schema=schema)
        proc = harness.run(["init-db"], config=config)
        self.assertExit(proc, 0)
        self.assertEqual(proc.stdout,
                         f'schema "audit_trail" is at version {LATEST} '
                         f'(applied: {", ".join(SQL_FILES)})\n')
        self.assertEqual(self.columns(db, schema), EXPECTED_COLUMNS)
        self.assertEqual(self.columns(db, "retention"), {})
        # the trigger functions work from a caller pinned to pg_catalog, as
        # retentiond is: they must not depend on the caller's search_path
        q = harness.quote_ident(schema)
        self.cluster.psql(
            "SET search_path = pg_catalog, pg_temp;"
            f"INSERT INTO {q}.runs (host, command, status) VALUES ('h', 'run', 'ok');"
            f"INSERT INTO {q}.actions (run_id, rule, target, action, rows,"
            " started_at, finished_at) VALUES (1, 'r', 't', 'delete', 1, now(), now());"
            f"INSERT INTO {q}.erasure_requests (subject, subject_id) VALUES ('c', '1');",
            dbname=db)
        proc = harness.run(["verify"], config=config)
        self.assertExit(proc, 0)
        self.assertIn("audit chain intact: 1 action,", proc.stdout)
        proc = harness.run(["init-db"], config=config)
        self.assertExit(proc, 0)
        self.assertIn("up to date", proc.stdout)

    def test_refuses_a_database_newer_than_the_binary(self):
        db = self.new_db()
        config = self.config(db)
        self.assertExit(harness.run(["init-db"], config=config), 0)
        self.cluster.psql("INSERT INTO retention.schema_version (version, description)"
                          " VALUES (99, 'from the future')", dbname=db)
        proc = harness.run(["init-db"], config=config)
        self.assertExit(proc, 1)
        self.assertIn(f"version 99, newer than this retentiond knows ({LATEST})",
                      proc.stderr)
        self.assertEqual(proc.stdout, "")
        for args in (["verify"], ["hold", "list"]):
            with self.subTest(args=args):
                proc = harness.run(args, config=config)
                self.assertExit(proc, 1)
                self.assertIn("upgrade retentiond", proc.stderr)

    def test_other_commands_ask_for_init_db_first(self):
        db = self.new_db()
        config = self.config(db)
        for args in (["verify"], ["hold", "list"], ["hold", "release", "1"],
                     ["hold", "add", "customer:1", "--reason", "case 1"]):
            with self.subTest(args=args):
                proc = harness.run(args, config=config)
                self.assertExit(proc, 1)
                self.assertIn('schema "retention" is not initialised: run '
                              '"retentiond init-db" first', proc.stderr)
        # and asking did not create anything
        self.assertEqual(self.columns(db, "retention"), {})

    def test_concurrent_runs_wait_for_each_other(self):
        db = self.new_db()
        config = self.config(db)
        procs = [subprocess.Popen(harness._command(["init-db"], config),
                                  env=harness.clean_env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
        results = [p.communicate(timeout=60) + (p.returncode,) for p in procs]
        for out, err, rc in results:
            self.assertEqual(rc, 0, err)
            self.assertRegex(out, rf'^schema "retention" is (at version|up to date \(version) {LATEST}\b')
        # between them they applied every file, each exactly once
        applied = []
        for out, _, _ in results:
            m = re.search(r"\(applied: (.*)\)$", out, re.M)
            if m:
                applied += m.group(1).split(", ")
        self.assertEqual(sorted(applied), SQL_FILES, results)
        self.assertEqual(self.cluster.scalar(
            "SELECT string_agg(version::text, ' ' ORDER BY version)"
            " FROM retention.schema_version", dbname=db),
            " ".join(str(int(re.match(r"\d+", f).group(0))) for f in SQL_FILES))

    def test_unreachable_database_fails_at_run_time(self):
        text = CONFIG % {
            "conninfo": f"host={self.tmp} port=1 dbname=x connect_timeout=2",
            "schema": "",
        }
        config = harness.write_config(os.path.join(self.tmp, "down.conf"), text)
        proc = harness.run(["init-db"], config=config)
        self.assertExit(proc, 1)
        self.assertIn("could not connect", proc.stderr)

    def test_extra_arguments_are_a_usage_error(self):
        db = self.new_db()
        proc = harness.run(["init-db", "now"], config=self.config(db))
        self.assertExit(proc, 2)

    def test_upgrades_a_database_at_version_1(self):
        # sql/001_init.sql, applied by hand the way its header says (it is
        # installed for admins), leaves version 1; init-db applies the rest.
        db = self.new_db()
        path = os.path.join(harness.SRCDIR, "sql", "001_init.sql")
        with open(path) as f:
            sql = f.read()
        self.cluster.psql('CREATE SCHEMA "byhand"; BEGIN;'
                          'SET LOCAL search_path = "byhand", pg_catalog, pg_temp;'
                          + sql + "COMMIT;", dbname=db)
        self.assertEqual(self.cluster.scalar(
            "SELECT max(version) FROM byhand.schema_version", dbname=db), "1")
        proc = harness.run(["init-db"], config=self.config(db, schema="byhand"))
        self.assertExit(proc, 0)
        if len(SQL_FILES) == 1:
            self.assertEqual(proc.stdout, 'schema "byhand" is up to date (version 1)\n')
        else:
            self.assertEqual(proc.stdout,
                             f'schema "byhand" is at version {LATEST} '
                             f'(applied: {", ".join(SQL_FILES[1:])})\n')
        self.assertEqual(self.columns(db, "byhand"), EXPECTED_COLUMNS)


if __name__ == "__main__":
    harness.main()
