"""`retentiond verify` (SPEC §2, §4): the audit trail's hash chain.

Output contract: exit 0 and "audit chain intact: N actions, head HASH" on
stdout; exit 1 and "audit chain broken at action ID: REASON" on stdout when
any row was changed, deleted or inserted around the trigger.

Tampering is done the way a superuser could: with the append-only trigger
bypassed through session_replication_role = replica.
"""

import hashlib
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

CONFIG = """\
database: {
  conninfo = "%(conninfo)s";
};
rules = (
  {
    name = "api-request-logs";
    policy = "API request data is kept no longer than 24 hours";
    table = "public.api_requests";
    age_column = "requested_at";
    retain = "24 hours";
  }
);
"""

GENESIS = "0" * 64

# As the engine writes them: search_path pinned, in the same transaction as
# the change. An odd TimeZone and DateStyle must not change any hash.
INSERT_ACTION = """
INSERT INTO retention.actions (run_id, rule, target, action, cutoff, rows,
                               started_at, finished_at, detail)
VALUES (%(run)d, 'api-request-logs', 'public.api_requests', 'delete',
        now() - interval '24 hours', %(rows)d, clock_timestamp(),
        clock_timestamp(), '{"batch": %(rows)d, "note": "l\u00f6schen"}');
"""

BYPASS = "SET session_replication_role = replica;"

# The canonical text, as the trigger and verify compute it (for forging).
CANONICAL = """
json_build_array(id, run_id, rule, target, action,
  to_char(cutoff AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), rows,
  to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
  to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
  detail)::text
"""


class VerifyTest(harness.IntegrationTest):

    n = 0

    def setUp(self):
        super().setUp()
        VerifyTest.n += 1
        self.db = f"verify{VerifyTest.n}"
        self.cluster.createdb(self.db)
        self.config = self.write_config(self.cluster.conninfo(self.db))
        self.assertExit(harness.run(["init-db"], config=self.config), 0)
        self.run_id = int(self.sql(
            "INSERT INTO retention.runs (host, command, status)"
            " VALUES ('test', 'run', 'running') RETURNING id"))

    def write_config(self, conninfo, name="retentiond.conf"):
        return harness.write_config(os.path.join(self.tmp, name),
                                    CONFIG % {"conninfo": conninfo})

    def sql(self, text):
        return self.cluster.scalar(text, dbname=self.db)

    def sql_fails(self, text):
        """Run TEXT, which must fail; returns psql's stderr."""
        proc = subprocess.run(
            [self.cluster._bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
             "-h", self.cluster.host, "-p", str(self.cluster.port),
             "-U", "postgres", "-d", self.db],
            input=text, env=harness.clean_env(), capture_output=True, text=True)
        # psql: 3 when a script stopped at an error (ON_ERROR_STOP)
        self.assertEqual(proc.returncode, 3, f"accepted: {text}")
        return proc.stderr

    def add_actions(self, n):
        stmts = ["SET search_path = pg_catalog, pg_temp;",
                 "SET TimeZone = 'America/St_Johns';",
                 "SET DateStyle = 'SQL, DMY';"]
        for i in range(n):
            stmts.append("BEGIN;" + INSERT_ACTION % {"run": self.run_id, "rows": i + 1}
                         + "COMMIT;")
        self.sql("\n".join(stmts))
        return [int(x) for x in self.sql(
            "SELECT string_agg(id::text, ' ' ORDER BY id) FROM retention.actions").split()]

    def head(self):
        return self.sql("SELECT hash FROM retention.audit_head")

    def verify(self, config=None):
        return harness.run(["verify"], config=config or self.config)

    def assertBroken(self, proc, action_id, reason_pattern):
        self.assertExit(proc, 1)
        self.assertOutput(proc, rf"^audit chain broken at action {action_id}: "
                          + reason_pattern, stream="stdout")

    # --- an intact chain -------------------------------------------------

    def test_empty_trail_is_intact_at_the_genesis_hash(self):
        proc = self.verify()
        self.assertExit(proc, 0)
        self.assertEqual(proc.stdout, f"audit chain intact: 0 actions, head {GENESIS}\n")

    def test_intact_chain_reports_count_and_head(self):
        ids = self.add_actions(5)
        self.assertEqual(ids, [1, 2, 3, 4, 5])
        proc = self.verify()
        self.assertExit(proc, 0)
        self.assertEqual(proc.stdout, f"audit chain intact: 5 actions, head {self.head()}\n")
        # the links really are the previous rows' hashes
        rows = self.cluster.query(
            "SELECT prev_hash, hash FROM retention.actions ORDER BY id", dbname=self.db)
        self.assertEqual(rows[0][0], GENESIS)
        for prev, row in zip(rows, rows[1:]):
            self.assertEqual(row[0], prev[1])

    def test_hashes_do_not_depend_on_the_session_time_zone(self):
        self.add_actions(3)
        tokyo = self.write_config(
            self.cluster.conninfo(self.db)
            + " options='-c TimeZone=Asia/Tokyo -c DateStyle=German'", "tokyo.conf")
        proc = self.verify(tokyo)
        self.assertExit(proc, 0)
        self.assertIn("intact: 3 actions", proc.stdout)

    def test_hashes_are_sha256_of_previous_hash_and_canonical_row(self):
        self.add_actions(2)
        rows = self.cluster.query(
            f"SELECT prev_hash, hash, {CANONICAL} FROM retention.actions ORDER BY id",
            dbname=self.db)
        for prev, stored, canonical in rows:
            self.assertEqual(
                hashlib.sha256((prev + canonical).encode("utf-8")).hexdigest(), stored)

    def test_more_rows_than_one_page(self):
        self.sql("SET search_path = pg_catalog, pg_temp;"
                 "INSERT INTO retention.actions (run_id, rule, target, action,"
                 " rows, started_at, finished_at)"
                 f" SELECT {self.run_id}, 'r', 't', 'delete', g, now(), now()"
                 " FROM generate_series(1, 2500) g;")
        proc = self.verify()
        self.assertExit(proc, 0)
        self.assertIn("intact: 2500 actions", proc.stdout)
        self.sql(BYPASS + "UPDATE retention.actions SET rows = 0 WHERE id = 2001;")
        self.assertBroken(self.verify(), 2001, "row was changed")

    def test_concurrent_writers_keep_ids_in_chain_order(self):
        # A writer that holds the chain lock while another one queues: the
        # id must be drawn under the lock, or the second writer's id would
        # sort before rows chained ahead of it.
        script = ("BEGIN;" + INSERT_ACTION % {"run": self.run_id, "rows": 1}
                  + "SELECT pg_sleep(2);"
                  + INSERT_ACTION % {"run": self.run_id, "rows": 2} + "COMMIT;")
        slow = subprocess.Popen(
            [self.cluster._bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
             "-h", self.cluster.host, "-p", str(self.cluster.port),
             "-U", "postgres", "-d", self.db, "-c", script],
            stdin=subprocess.DEVNULL, env=harness.clean_env(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(slow.wait)
        time.sleep(0.5)
        self.add_actions(1)          # waits for the slow writer's commit
        out, err = slow.communicate(timeout=60)
        self.assertEqual(slow.returncode, 0, err)
        self.assertEqual(self.sql(
            "SELECT string_agg(rows::text, ' ' ORDER BY id) FROM retention.actions"),
            "1 2 1")
        proc = self.verify()
        self.assertExit(proc, 0)
        self.assertIn("intact: 3 actions", proc.stdout)

    def test_audit_append_only_trigger_refuses_changes(self):
        self.add_actions(2)
        for stmt in ("UPDATE retention.actions SET rows = 0 WHERE id = 1;",
                     "DELETE FROM retention.actions WHERE id = 2;",
                     "TRUNCATE retention.actions CASCADE;",
                     "UPDATE retention.audit_head SET hash = repeat('0', 64);",
                     "DELETE FROM retention.audit_head;"):
            with self.subTest(stmt):
                self.assertIn("the audit trail is append-only", self.sql_fails(stmt))
        self.assertExit(self.verify(), 0)

    # --- tampering -------------------------------------------------------

    def test_changed_row_is_found(self):
        self.add_actions(5)
        self.sql(BYPASS + "UPDATE retention.actions SET rows = 1000 WHERE id = 3;")
        proc = self.verify()
        self.assertBroken(proc, 3, "row was changed: stored hash [0-9a-f]{16}.* does "
                          "not match its content")
        self.assertIn("tampered", proc.stderr)

    def test_changed_row_with_its_own_hash_recomputed_is_found_at_the_next(self):
        self.add_actions(5)
        self.sql(BYPASS + "UPDATE retention.actions SET rows = 1000 WHERE id = 3;"
                 "UPDATE retention.actions SET hash = encode(sha256(convert_to("
                 f"prev_hash || {CANONICAL}, 'UTF8')), 'hex') WHERE id = 3;")
        self.assertBroken(self.verify(), 4, r"previous hash does not match action 3 "
                          r"\(a row before it was deleted or changed\)")

    def test_changed_timestamp_is_found(self):
        self.add_actions(3)
        self.sql(BYPASS + "UPDATE retention.actions SET finished_at = finished_at"
                 " + interval '1 microsecond' WHERE id = 2;")
        self.assertBroken(self.verify(), 2, "row was changed")

    def test_changed_detail_is_found(self):
        self.add_actions(3)
        self.sql(BYPASS + "UPDATE retention.actions SET detail = '{}' WHERE id = 1;")
        self.assertBroken(self.verify(), 1, "row was changed")

    def test_deleted_middle_row_is_found_at_the_next(self):
        self.add_actions(5)
        self.sql(BYPASS + "DELETE FROM retention.actions WHERE id = 3;")
        self.assertBroken(self.verify(), 4, "previous hash does not match action 2")

    def test_deleted_first_row_is_found(self):
        self.add_actions(3)
        self.sql(BYPASS + "DELETE FROM retention.actions WHERE id = 1;")
        self.assertBroken(self.verify(), 2, "previous hash is not the start of the chain")

    def test_deleted_newest_row_is_found(self):
        self.add_actions(5)
        self.sql(BYPASS + "DELETE FROM retention.actions WHERE id = 5;")
        self.assertBroken(self.verify(), 5, "the newest actions were deleted: head "
                          "says 5 but the last row is 4")

    def test_all_rows_deleted_is_found(self):
        self.add_actions(2)
        self.sql(BYPASS + "DELETE FROM retention.actions;")
        self.assertBroken(self.verify(), 2, "the newest actions were deleted")

    def test_row_inserted_with_a_forged_hash_is_found(self):
        self.add_actions(3)
        self.sql(BYPASS + "INSERT INTO retention.actions (id, run_id, rule, target,"
                 " action, rows, started_at, finished_at, prev_hash, hash)"
                 f" SELECT 4, {self.run_id}, 'r', 't', 'delete', 1, now(), now(),"
                 " hash, repeat('ab', 32) FROM retention.audit_head;")
        self.assertBroken(self.verify(), 4, "the row is not in the chain")

    def test_row_inserted_with_a_correct_hash_but_around_the_trigger_is_found(self):
        self.add_actions(3)
        self.sql(BYPASS + "INSERT INTO retention.actions (id, run_id, rule, target,"
                 " action, rows, started_at, finished_at, prev_hash, hash)"
                 f" SELECT 4, {self.run_id}, 'r', 't', 'delete', 1, now(), now(),"
                 " hash, '' FROM retention.audit_head;"
                 "UPDATE retention.actions SET hash = encode(sha256(convert_to("
                 f"prev_hash || {CANONICAL}, 'UTF8')), 'hex') WHERE id = 4;")
        self.assertBroken(self.verify(), 4, "the row is not in the chain: the audit "
                          "head ends at action 3")

    def test_changed_head_is_found(self):
        self.add_actions(2)
        self.sql(BYPASS + "UPDATE retention.audit_head SET hash = repeat('1', 64);")
        self.assertBroken(self.verify(), 2, "the audit head's hash does not match")

    def test_missing_head_is_found(self):
        self.add_actions(1)
        self.sql(BYPASS + "DELETE FROM retention.audit_head;")
        proc = self.verify()
        self.assertExit(proc, 1)
        self.assertIn("the audit head row is missing", proc.stdout)

    def test_a_replaced_canonical_function_cannot_hide_a_change(self):
        # Someone who can replace action_canonical() makes the trigger hash
        # something else; verify computes the canonical text itself.
        self.add_actions(2)
        self.sql("CREATE OR REPLACE FUNCTION retention.action_canonical("
                 "a retention.actions) RETURNS text LANGUAGE sql AS $$ SELECT '' $$;")
        self.add_actions(1)
        self.assertBroken(self.verify(), 3, "row was changed")

    # --- errors ----------------------------------------------------------

    def test_unreachable_database_exits_1(self):
        config = self.write_config(f"host={self.tmp} port=1 dbname=x connect_timeout=2",
                                   "down.conf")
        proc = self.verify(config)
        self.assertExit(proc, 1)
        self.assertIn("could not connect", proc.stderr)
        self.assertEqual(proc.stdout, "")

    def test_arguments_are_a_usage_error(self):
        self.assertExit(harness.run(["verify", "--all"], config=self.config), 2)


if __name__ == "__main__":
    harness.main()
