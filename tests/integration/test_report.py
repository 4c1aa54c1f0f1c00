"""`retentiond report` and the report files written after each cycle
(SPEC §2, §6).

Promises checked: each format parses with a standard reader and carries the
per-rule numbers; values from the config and the database (policy text with
quotes, commas, CR/LF and markup, a table name with markup, a database error
quoting table data) stay data in every format; the verdict turns OVERDUE when
expired rows remain; a date range aggregates runs; the report files land in
report.directory, written atomically; a broken audit chain is reported and
fails the command.
"""

import csv
import io
import json
import os
import re
import stat

from harness import IntegrationTest, main, write_config

# libconfig escapes: \" \n \r. Non-ASCII is written as is (UTF-8).
NASTY_POLICY_CONF = (r'Kept \u2264 30 days, \"then\" deleted <script>alert(1)</script>,'
                     r'\r\nBcc: evil@example.com\n.\nlast line').replace(r"\u2264", "\u2264")
NASTY_POLICY = ('Kept \u2264 30 days, "then" deleted <script>alert(1)</script>,'
                '\r\nBcc: evil@example.com\n.\nlast line')
ODD_TABLE = 'odd <script>, "t" \u00fc'
BAD_PAYLOAD = '<script>x</script>, "q"\r\nBcc: y'
# db.c makes database errors one line; the part before the CR/LF is quoted
BAD_PAYLOAD_HEAD = '<script>x</script>, "q"'


class ReportTest(IntegrationTest):

    def setUp(self):
        super().setUp()
        self.db = "t_" + self._testMethodName[5:40].lower()
        self.cluster.createdb(self.db)

    def sql(self, text):
        return self.cluster.psql(text, dbname=self.db)

    def config(self, rules, extra=""):
        return write_config(self.tmp, f"""
database: {{ conninfo = "{self.cluster.conninfo(self.db)}"; }};
{extra}
rules = (
{rules}
);
""")

    def rd(self, conf, *args):
        return self.run_rd(list(args), config=conf)

    def init(self, conf):
        self.assertExit(self.rd(conf, "init-db"), 0)

    def report_bytes(self, conf, *args):
        """The report as written, bytes for bytes (captured stdout would
        have its CRLFs translated)."""
        out = os.path.join(self.tmp, "report.out")
        self.assertExit(self.rd(conf, "report", "--output", out, *args), 0)
        with open(out, "rb") as f:
            data = f.read()
        os.unlink(out)
        return data.decode("utf-8")

    def seed_events(self, table="events", expired=40, fresh=60):
        q = '"' + table.replace('"', '""') + '"'
        self.sql(f"""
CREATE TABLE {q} (id serial PRIMARY KEY, created_at timestamptz NOT NULL,
                  customer_id int NOT NULL, payload text);
CREATE INDEX ON {q} (created_at);
INSERT INTO {q} (created_at, customer_id, payload)
SELECT now() - interval '10 days' - g * interval '1 minute', g % 10, 'old'
FROM generate_series(1, {expired}) g;
INSERT INTO {q} (created_at, customer_id, payload)
SELECT now() - interval '1 hour', g % 10, 'new' FROM generate_series(1, {fresh}) g;
""")

    EVENTS = """{
  name = "events"; policy = "events are kept 2 days";
  table = "public.events"; age_column = "created_at"; retain = "2 days";
  subject = "customer"; subject_column = "customer_id";
}"""

    # --- formats ----------------------------------------------------------------

    def test_every_format_parses_and_shows_the_rule_numbers(self):
        self.seed_events()
        conf = self.config(self.EVENTS)
        self.init(conf)
        self.assertExit(self.rd(conf, "hold", "add", "customer:7", "--reason", "court"), 0)
        self.assertExit(self.rd(conf, "run"), 0)
        run_id = self.sql("SELECT max(id) FROM retention.runs")

        # text (the default): an aligned table with the numbers
        proc = self.rd(conf, "report")
        self.assertExit(proc, 0)
        self.assertOutput(proc, rf"^retentiond report: run {run_id} on ", stream="stdout")
        self.assertOutput(proc, r"^events\s+public\.events\s+delete\s+36\s+4\s+0\s+\S+ days\s+OVERDUE 4$",
                          stream="stdout")
        self.assertOutput(proc, r"policy: events are kept 2 days", stream="stdout")
        self.assertOutput(proc, r"Legal holds:\s+1 active", stream="stdout")
        self.assertOutput(proc, r"Audit chain:\s+intact: 1 action, head [0-9a-f]{64}", stream="stdout")

        # JSON: one documented object
        proc = self.rd(conf, "report", "--format", "json")
        self.assertExit(proc, 0)
        doc = json.loads(proc.stdout)
        self.assertEqual(doc["report_version"], 1)
        self.assertEqual(doc["scope"], "run")
        self.assertEqual([r["id"] for r in doc["runs"]], [int(run_id)])
        self.assertEqual(doc["runs"][0]["status"], "ok")
        self.assertEqual(doc["runs"][0]["config_sha256"],
                         self.sql("SELECT config_sha256 FROM retention.runs"))
        rule = doc["rules"][0]
        self.assertEqual((rule["rule"], rule["table"], rule["action"]),
                         ("events", "public.events", "delete"))
        self.assertEqual((rule["changed"], rule["held"], rule["blocked"]), (36, 4, 0))
        self.assertEqual((rule["compliant"], rule["overdue"], rule["verdict"]),
                         (False, 4, "OVERDUE 4"))
        self.assertGreater(rule["oldest_age_seconds"], 9 * 86400)
        self.assertIsNotNone(rule["cutoff"])
        self.assertEqual(doc["totals"]["changed"], 36)
        self.assertEqual(doc["legal_holds_active"], 1)
        self.assertEqual(doc["audit"]["status"], "intact")
        verify = self.rd(conf, "verify")
        self.assertIn(doc["audit"]["head"], verify.stdout)

        # CSV: RFC 4180, one header row, one row per rule
        text = self.report_bytes(conf, "--format", "csv")
        self.assertTrue(text.endswith("\r\n"))
        self.assertNotIn("\n", text.replace("\r\n", ""))
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        self.assertEqual(len(rows), 1)
        self.assertEqual((rows[0]["rule"], rows[0]["changed"], rows[0]["held"],
                          rows[0]["verdict"], rows[0]["run_id"]),
                         ("events", "36", "4", "OVERDUE 4", run_id))

        # HTML: the per-rule table and the chart
        proc = self.rd(conf, "report", "--format", "html")
        self.assertExit(proc, 0)
        html = proc.stdout
        self.assertTrue(html.startswith("<!DOCTYPE html>"))
        self.assertIn('<table class="rules">', html)
        self.assertIn("<svg", html)
        self.assertIn("@media print", html)
        self.assertNotIn("<script", html)
        self.assertRegex(html, r"<td class=\"n\">36</td><td class=\"n\">4</td>")

    def test_hostile_values_stay_data_in_every_format(self):
        self.seed_events(table=ODD_TABLE)
        self.sql(f"""
CREATE TABLE castme (id serial PRIMARY KEY, created_at timestamptz NOT NULL, payload text);
INSERT INTO castme (created_at, payload) VALUES (now() - interval '10 days', $q${BAD_PAYLOAD}$q$);
""")
        odd = ODD_TABLE.replace('"', '""').replace('"', r'\"')
        conf = self.config(f"""{{
  name = "odd"; policy = "{NASTY_POLICY_CONF}";
  table = "public.\\"{odd}\\""; age_column = "created_at"; retain = "2 days";
}},
{{
  name = "castme"; policy = "p"; table = "castme"; age_column = "created_at";
  retain = "2 days"; where = "payload::int > 0";
}}""")
        self.init(conf)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 1)    # the castme rule fails: partial

        full_table = "public." + ODD_TABLE

        doc = json.loads(self.rd(conf, "report", "--format", "json").stdout)
        by_name = {r["rule"]: r for r in doc["rules"]}
        self.assertEqual(by_name["odd"]["policy"], NASTY_POLICY)
        self.assertEqual(by_name["odd"]["table"], full_table)
        self.assertEqual(by_name["odd"]["changed"], 40)
        self.assertEqual(by_name["castme"]["outcome"], "failed")
        self.assertIn(BAD_PAYLOAD_HEAD, by_name["castme"]["message"])

        text = self.report_bytes(conf, "--format", "csv")
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        self.assertEqual(len(rows), 2)
        self.assertEqual(rows[0]["policy"], NASTY_POLICY)
        self.assertEqual(rows[0]["table"], full_table)
        self.assertEqual(rows[0]["changed"], "40")
        self.assertIn(BAD_PAYLOAD_HEAD, rows[1]["message"])
        self.assertEqual(rows[1]["outcome"], "failed")

        html = self.rd(conf, "report", "--format", "html").stdout
        self.assertNotIn("<script", html)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", html)
        self.assertIn("odd &lt;script&gt;, &quot;t&quot; \u00fc", html)
        self.assertIn("&lt;script&gt;x&lt;/script&gt;, &quot;q&quot;", html)

        proc = self.rd(conf, "report")
        self.assertExit(proc, 0)
        # CR and LF are shown, not obeyed: the layout holds
        self.assertNotIn("\r", proc.stdout)
        self.assertIn(r"<script>alert(1)</script>,\r\nBcc: evil@example.com\n.\nlast line",
                      proc.stdout)

    # --- verdict, range, run selection -------------------------------------------

    def test_disabled_rule_is_reported_overdue(self):
        self.seed_events()
        conf = self.config(self.EVENTS.replace("{", "{ enabled = false;", 1))
        self.init(conf)
        self.assertExit(self.rd(conf, "run"), 0)
        proc = self.rd(conf, "report")
        self.assertOutput(proc, r"^events\s+.*\s+OVERDUE 40$", stream="stdout")
        self.assertOutput(proc, r"Compliance:\s+NOT COMPLIANT: 1 of 1 rule \(40 rows OVERDUE\)",
                          stream="stdout")
        doc = json.loads(self.rd(conf, "report", "--format", "json").stdout)
        self.assertFalse(doc["compliant"])
        self.assertEqual(doc["rules"][0]["verdict"], "OVERDUE 40")
        self.assertEqual(doc["rules"][0]["outcome"], "skipped")

        # the next cycle runs it: compliant
        self.assertExit(self.rd(conf, "run", "--rule", "events"), 0)
        doc = json.loads(self.rd(conf, "report", "--format", "json").stdout)
        self.assertTrue(doc["compliant"])
        self.assertEqual(doc["rules"][0]["verdict"], "compliant")

    def test_range_aggregates_runs_and_run_selects_one(self):
        self.seed_events(expired=30)
        conf = self.config(self.EVENTS)
        self.init(conf)
        self.assertExit(self.rd(conf, "run"), 0)
        self.sql("INSERT INTO events (created_at, customer_id, payload) "
                 "SELECT now() - interval '5 days', 1, 'late' FROM generate_series(1, 5)")
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertExit(self.rd(conf, "plan"), 0)   # plans are not cycles
        first, second = self.sql(
            "SELECT string_agg(id::text, ' ' ORDER BY id) FROM retention.runs "
            "WHERE command = 'run'").split()

        doc = json.loads(self.rd(conf, "report", "--since", "2000-01-01",
                                 "--format", "json").stdout)
        self.assertEqual(doc["scope"], "range")
        self.assertEqual([r["id"] for r in doc["runs"]], [int(first), int(second)])
        self.assertEqual(doc["rules"][0]["changed"], 35)
        self.assertEqual(doc["rules"][0]["runs"], 2)
        self.assertEqual(doc["rules"][0]["last_run_id"], int(second))

        # a bare --until date is the whole of that day; nothing before 2000
        doc = json.loads(self.rd(conf, "report", "--until", "1999-12-31",
                                 "--format", "json").stdout)
        self.assertEqual((doc["runs"], doc["rules"]), ([], []))

        doc = json.loads(self.rd(conf, "report", "--run", first, "--format", "json").stdout)
        self.assertEqual(doc["rules"][0]["changed"], 30)
        # without --run: the latest finished cycle
        doc = json.loads(self.rd(conf, "report", "--format", "json").stdout)
        self.assertEqual(doc["runs"][0]["id"], int(second))
        self.assertEqual(doc["rules"][0]["changed"], 5)

        proc = self.rd(conf, "report", "--run", "999")
        self.assertExit(proc, 1)
        self.assertOutput(proc, r"there is no run 999")
        proc = self.rd(conf, "report", "--since", "last tuesday-ish")
        self.assertExit(proc, 2)
        self.assertOutput(proc, r"--since/--until: not a date")
        self.assertExit(self.rd(conf, "report", "--run", "1", "--since", "2000-01-01"), 2)
        self.assertExit(self.rd(conf, "report", "--format", "pdf"), 2)

    def test_erasure_requests_are_counted(self):
        self.seed_events()
        conf = self.config(self.EVENTS)
        self.init(conf)
        self.assertExit(self.rd(conf, "hold", "add", "customer:3", "--reason", "court"), 0)
        for who in ("customer:3", "customer:4", "customer:5"):
            self.assertExit(self.rd(conf, "erase", who), 0)
        # customer 3 is held: its request stays open; make one overdue and
        # one due within 7 days
        self.sql("INSERT INTO retention.erasure_requests (subject, subject_id, requested_at) "
                 "VALUES ('customer', '3', now() - interval '40 days'),"
                 "       ('customer', '3', now() - interval '27 days')")
        self.assertExit(self.rd(conf, "run"), 0)
        doc = json.loads(self.rd(conf, "report", "--format", "json").stdout)
        e = doc["erasure_requests"]
        self.assertEqual(e["received"], 5)
        self.assertEqual(e["done"], 2)          # customers 4 and 5
        self.assertEqual(e["open"], 3)          # customer 3's, held
        self.assertEqual(e["overdue"], 1)
        self.assertEqual(e["due_soon"], 1)
        text = self.rd(conf, "report").stdout
        self.assertRegex(text, r"Erasure requests: 5 received, 2 done in this period; "
                               r"now 1 due within 7 days, 1 OVERDUE, 3 open")

    # --- files ----------------------------------------------------------------

    def test_cycle_writes_report_files_atomically(self):
        self.seed_events()
        reports = os.path.join(self.tmp, "var", "reports")
        conf = self.config(self.EVENTS, extra=f"""
report: {{ directory = "{reports}"; formats = [ "html", "csv", "json", "text" ]; }};
""")
        self.init(conf)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        run_id = self.sql("SELECT max(id) FROM retention.runs")
        names = sorted(os.listdir(reports))
        self.assertEqual(names, sorted(f"run-{run_id}.{e}" for e in ("html", "csv", "json", "txt")))
        self.assertEqual(stat.S_IMODE(os.stat(reports).st_mode) & 0o027, 0)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(reports, names[0])).st_mode), 0o640)
        with open(os.path.join(reports, f"run-{run_id}.json")) as f:
            self.assertEqual(json.load(f)["rules"][0]["changed"], 40)
        with open(os.path.join(reports, f"run-{run_id}.html")) as f:
            self.assertIn("<svg", f.read())
        self.assertOutput(proc, rf"report of run {run_id} written to {re.escape(reports)}/run-{run_id}\.html")

        # --output: the same atomic write, no temporary file left behind
        out = os.path.join(self.tmp, "out.csv")
        self.assertExit(self.rd(conf, "report", "--format", "csv", "--output", out), 0)
        with open(out, newline="") as f:
            self.assertEqual(next(csv.DictReader(f))["changed"], "40")
        self.assertEqual([n for n in os.listdir(self.tmp) if n.startswith(".")], [])

    def test_unwritable_report_directory_is_logged_not_fatal(self):
        self.seed_events()
        blocker = os.path.join(self.tmp, "not-a-dir")
        with open(blocker, "w") as f:
            f.write("x")
        conf = self.config(self.EVENTS, extra=f"""
report: {{ directory = "{blocker}/reports"; }};
""")
        self.init(conf)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, rf"report of run \d+ not written: could not create directory "
                                rf"\"{re.escape(blocker)}/reports\"")
        self.assertEqual(self.sql("SELECT count(*) FROM events"), "60")

    # --- the audit chain ---------------------------------------------------------

    def test_broken_audit_chain_is_reported_and_fails(self):
        self.seed_events()
        conf = self.config(self.EVENTS)
        self.init(conf)
        self.assertExit(self.rd(conf, "run"), 0)
        self.sql("SET session_replication_role = replica;"
                 "UPDATE retention.actions SET rows = rows + 1;")
        proc = self.rd(conf, "report", "--format", "json")
        self.assertExit(proc, 1)
        doc = json.loads(proc.stdout)
        self.assertEqual(doc["audit"]["status"], "broken")
        self.assertEqual(doc["audit"]["first_bad_id"], 1)
        self.assertOutput(proc, r"audit trail of schema \"retention\" is broken")


if __name__ == "__main__":
    main()
