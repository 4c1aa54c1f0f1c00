"""`retentiond hold add|release|list` (SPEC §2, §5: legal holds).

Output contract:
  hold add SUBJECT:ID --reason TEXT [--until DATE]
      stdout "hold ID placed on SUBJECT:ID[ until DATE]", exit 0; a bad
      SUBJECT:ID, a missing or empty --reason, an --until that is not a
      date or not in the future: exit 2, nothing stored
  hold release ID
      stdout "hold ID on SUBJECT:ID released", exit 0; no such hold or
      already released: exit 1
  hold list [--all]
      a table with a header row (ID, SUBJECT:ID, REASON, PLACED BY,
      PLACED AT, EXPIRES AT, STATE); active holds only without --all
"""

import os
import re
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

DB = "holds"

CONFIG = """\
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

# What hold_sql_not_held(conn, "retention", "$1", "t.\"id\"") returns;
# tests/unit/test_hold.c checks the C function gives exactly this text.
NOT_HELD = ('NOT EXISTS (SELECT 1 FROM "retention"."legal_holds" h'
            ' WHERE h.subject = $1 AND h.subject_id = (t."id")::text'
            ' AND h.released_at IS NULL'
            ' AND (h.expires_at IS NULL OR h.expires_at > pg_catalog.now()))')


class HoldTest(harness.IntegrationTest):

    @classmethod
    def setUpCluster(cls):
        cls.cluster.createdb(DB)
        cls.cluster.psql("CREATE TABLE customers (id int PRIMARY KEY, closed_at timestamptz);"
                         "INSERT INTO customers SELECT g, now() - interval '2 years'"
                         " FROM generate_series(1, 6) g;", dbname=DB)

    def setUp(self):
        super().setUp()
        self.config = harness.write_config(
            self.tmp, CONFIG % {"conninfo": self.cluster.conninfo(DB)})
        self.assertExit(harness.run(["init-db"], config=self.config), 0)
        self.sql("DELETE FROM retention.legal_holds;")

    def sql(self, text):
        return self.cluster.scalar(text, dbname=DB)

    def hold(self, *args, env=None):
        return harness.run(["hold", *args], config=self.config, env=env)

    def add(self, target, *args, **kw):
        proc = self.hold("add", target, *args, **kw)
        self.assertExit(proc, 0)
        m = re.match(r"^hold (\d+) placed on ", proc.stdout)
        self.assertIsNotNone(m, proc.stdout)
        return int(m.group(1))

    def listed(self, *args):
        """hold list as {id: (target, state)}; also checks the header."""
        proc = self.hold("list", *args)
        self.assertExit(proc, 0)
        lines = proc.stdout.splitlines()
        if lines and lines[0].startswith("no "):
            return {}
        self.assertRegex(lines[0], r"^ID\s+SUBJECT:ID\s+REASON\s+PLACED BY\s+"
                         r"PLACED AT\s+EXPIRES AT\s+STATE$")
        out = {}
        for line in lines[1:]:
            cols = re.split(r"\s{2,}", line.strip())
            out[int(cols[0])] = (cols[1], cols[-1])
        return out

    def count(self):
        return int(self.sql("SELECT count(*) FROM retention.legal_holds"))

    # --- add, list, release ------------------------------------------------

    def test_add_list_release_round_trip(self):
        proc = self.hold("add", "customer:42", "--reason", "litigation 2024-17",
                         env={"SUDO_USER": "alice"})
        self.assertExit(proc, 0)
        m = re.fullmatch(r"hold (\d+) placed on customer:42\n", proc.stdout)
        self.assertIsNotNone(m, proc.stdout)
        hid = int(m.group(1))
        row = self.cluster.query(
            "SELECT subject, subject_id, reason, placed_by,"
            " coalesce(expires_at::text, 'null'), coalesce(released_at::text, 'null')"
            f" FROM retention.legal_holds WHERE id = {hid}", dbname=DB)
        self.assertEqual(row, [["customer", "42", "litigation 2024-17",
                                f"alice@{socket.gethostname()}", "null", "null"]])
        self.assertEqual(self.listed(), {hid: ("customer:42", "active")})
        self.assertIn("litigation 2024-17", self.hold("list").stdout)

        proc = self.hold("release", str(hid))
        self.assertExit(proc, 0)
        self.assertEqual(proc.stdout, f"hold {hid} on customer:42 released\n")
        self.assertEqual(self.sql(
            f"SELECT released_at IS NOT NULL AND released_by LIKE '%@%'"
            f" FROM retention.legal_holds WHERE id = {hid}"), "t")
        self.assertEqual(self.listed(), {})
        self.assertEqual(self.hold("list").stdout, "no active legal holds\n")
        self.assertEqual(self.listed("--all"), {hid: ("customer:42", "released")})

    def test_id_is_everything_after_the_first_colon(self):
        hid = self.add("customer:urn:x:7", "--reason", "r")
        self.assertEqual(self.sql(
            f"SELECT subject || '|' || subject_id FROM retention.legal_holds WHERE id = {hid}"),
            "customer|urn:x:7")

    def test_options_may_come_first(self):
        hid = self.add("--reason", "case 9", "customer:9")
        self.assertEqual(self.listed(), {hid: ("customer:9", "active")})

    def test_until_in_the_future_is_stored_and_printed(self):
        proc = self.hold("add", "customer:5", "--reason", "audit", "--until", "2999-01-01")
        self.assertExit(proc, 0)
        self.assertRegex(proc.stdout, r"^hold \d+ placed on customer:5 until 2999-01-01 ")
        self.assertEqual(self.sql(
            "SELECT expires_at = '2999-01-01'::timestamptz FROM retention.legal_holds"), "t")

    def test_until_in_the_past_is_refused(self):
        proc = self.hold("add", "customer:5", "--reason", "audit", "--until", "2001-01-01")
        self.assertExit(proc, 2)
        self.assertIn('--until "2001-01-01"', proc.stderr)
        self.assertIn("is not in the future", proc.stderr)
        self.assertEqual(self.count(), 0)

    def test_until_that_is_not_a_date_is_refused(self):
        proc = self.hold("add", "customer:5", "--reason", "audit", "--until", "soonish")
        self.assertExit(proc, 2)
        self.assertIn('--until "soonish" is not a date', proc.stderr)
        self.assertEqual(self.count(), 0)

    def test_usage_errors_exit_2_and_store_nothing(self):
        cases = {
            "missing reason": ["add", "customer:1"],
            "empty reason": ["add", "customer:1", "--reason", ""],
            "blank reason": ["add", "customer:1", "--reason", "  "],
            "reason without value": ["add", "customer:1", "--reason"],
            "no target": ["add", "--reason", "x"],
            "two targets": ["add", "customer:1", "customer:2", "--reason", "x"],
            "no colon": ["add", "customer", "--reason", "x"],
            "empty subject": ["add", ":1", "--reason", "x"],
            "empty id": ["add", "customer:", "--reason", "x"],
            "bad subject": ["add", "cust omer:1", "--reason", "x"],
            "unknown option": ["add", "customer:1", "--reason", "x", "--force"],
            "no subcommand": [],
            "unknown subcommand": ["remove", "1"],
            "release without id": ["release"],
            "release of a non-number": ["release", "one"],
            "release of zero": ["release", "0"],
            "list with an argument": ["list", "customer:1"],
        }
        for what, args in cases.items():
            with self.subTest(what):
                proc = self.hold(*args)
                self.assertExit(proc, 2)
                self.assertIn("retentiond: hold:", proc.stderr)
        self.assertEqual(self.count(), 0)

    def test_help(self):
        proc = self.hold("--help")
        self.assertExit(proc, 0)
        self.assertIn("hold add SUBJECT:ID --reason TEXT", proc.stdout)

    def test_release_of_unknown_hold_exits_1(self):
        proc = self.hold("release", "999999")
        self.assertExit(proc, 1)
        self.assertIn("no hold with id 999999", proc.stderr)

    def test_release_twice_exits_1(self):
        hid = self.add("customer:3", "--reason", "r")
        self.assertExit(self.hold("release", str(hid)), 0)
        proc = self.hold("release", str(hid))
        self.assertExit(proc, 1)
        self.assertIn(f"hold {hid} was already released", proc.stderr)

    def test_expired_holds_are_not_listed_as_active(self):
        active = self.add("customer:1", "--reason", "r")
        expired = int(self.sql(
            "INSERT INTO retention.legal_holds (subject, subject_id, reason, placed_by,"
            " placed_at, expires_at) VALUES ('customer', '2', 'old case', 'me@h',"
            " now() - interval '2 days', now() - interval '1 day') RETURNING id"))
        self.assertEqual(self.listed(), {active: ("customer:1", "active")})
        self.assertEqual(self.listed("--all"), {active: ("customer:1", "active"),
                                                expired: ("customer:2", "expired")})

    def test_warns_when_no_rule_has_the_subject(self):
        proc = self.hold("add", "employee:7", "--reason", "tribunal")
        self.assertExit(proc, 0)
        self.assertIn('no rule has subject "employee"', proc.stderr)
        proc = self.hold("add", "customer:7", "--reason", "tribunal")
        self.assertExit(proc, 0)
        self.assertNotIn("no rule has subject", proc.stderr)

    def test_hostile_text_is_stored_verbatim_and_listed_safely(self):
        reason = "it's \"quoted\"; DROP TABLE customers; -- ünïcödé"
        hid = self.add("customer:x'); DROP TABLE customers; --", "--reason", reason)
        self.assertEqual(self.sql(
            f"SELECT reason FROM retention.legal_holds WHERE id = {hid}"), reason)
        self.assertEqual(self.sql("SELECT count(*) FROM customers"), "6")
        self.assertIn(reason, self.hold("list").stdout)
        # control characters cannot get into the table from the CLI
        proc = self.hold("add", "customer:1", "--reason", "line\nbreak")
        self.assertExit(proc, 2)

    # --- what the engine relies on: hold_sql_not_held -----------------------

    def passing(self, negate=False):
        """Ids of customers for which the engine's condition is true (rows
        it may change), or false with NEGATE (rows a hold protects)."""
        cond = f"NOT ({NOT_HELD})" if negate else NOT_HELD
        out = self.sql(
            "SET search_path = pg_catalog, pg_temp;"
            "PREPARE q(text) AS SELECT string_agg(t.id::text, ' ' ORDER BY t.id)"
            f" FROM public.customers t WHERE {cond};"
            "EXECUTE q('customer');")
        return [int(x) for x in out.split()] if out else []

    def test_not_held_condition_excludes_only_active_holds(self):
        self.assertEqual(self.passing(), [1, 2, 3, 4, 5, 6])
        self.add("customer:1", "--reason", "active")
        self.add("customer:2", "--reason", "active until later", "--until", "2999-01-01")
        released = self.add("customer:3", "--reason", "released")
        self.assertExit(self.hold("release", str(released)), 0)
        self.sql("INSERT INTO retention.legal_holds (subject, subject_id, reason,"
                 " placed_by, expires_at) VALUES"
                 " ('customer', '4', 'expired', 'me@h', now() - interval '1 second');")
        self.add("employee:5", "--reason", "another subject")
        self.add("customer:06", "--reason", "ids are compared as text")
        self.assertEqual(self.passing(negate=True), [1, 2])
        self.assertEqual(self.passing(), [3, 4, 5, 6])


if __name__ == "__main__":
    harness.main()
