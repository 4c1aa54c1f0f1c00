"""Explained verdicts (issue 22): every report format and the summary mail
say, per rule, why rows older than the cutoff are still there.

Promises checked: rows kept by `where` are counted with the condition's
text; held rows with the hold's id; rows still referred to with the
referring table; the verdict line says it in words; text, CSV, JSON and
HTML carry it, and so does the mail's text and HTML; the HTML is
well-formed (every element closed in order, parsed with html.parser), has
one section per rule and an A4 print stylesheet; no value of a row
(payload, customer id) reaches any of them.
"""

import csv
import html.parser
import io
import json
import os
import re

from harness import IntegrationTest, SmtpServer, main, write_config, write_secret

PASSWORD = "s3cret-explain"
SECRET = "payload-Do-Not-Leak-41"
WHERE = "status <> 'disputed'"

# Elements without an end tag (HTML Living Standard, "void elements").
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
        "meta", "source", "track", "wbr"}


class Nesting(html.parser.HTMLParser):
    """Collects nesting errors: an end tag that does not close the element
    open at that point, or elements left open at the end."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.text = [], [], []
        self.sections = 0

    def handle_starttag(self, tag, attrs):
        if tag == "section" and ("class", "rule") in attrs:
            self.sections += 1
        if tag not in VOID:
            self.stack.append((tag, self.getpos()))

    def handle_startendtag(self, tag, attrs):
        in_svg = any(t == "svg" for t, _ in self.stack)   # foreign content
        if tag not in VOID and not in_svg:
            self.errors.append(f"<{tag}/> is not a void element at {self.getpos()}")

    def handle_endtag(self, tag):
        if tag in VOID:
            self.errors.append(f"</{tag}> closes a void element at {self.getpos()}")
        elif not self.stack or self.stack[-1][0] != tag:
            open_tag = self.stack[-1] if self.stack else None
            self.errors.append(f"</{tag}> at {self.getpos()} but open is {open_tag}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)

    def close(self):
        super().close()
        if self.stack:
            self.errors.append(f"left open: {self.stack}")


class ExplainTest(IntegrationTest):

    def setUp(self):
        super().setUp()
        self.db = "t_" + self._testMethodName[5:40].lower()
        self.cluster.createdb(self.db)

    def sql(self, text):
        return self.cluster.psql(text, dbname=self.db)

    def rd(self, conf, *args):
        return self.run_rd(list(args), config=conf)

    RULE = """{
  name = "invoices"; policy = "financial records are kept 30 days";
  table = "public.invoices"; age_column = "created_at"; retain = "30 days";
  where = "status <> 'disputed'";
  subject = "customer"; subject_column = "customer_id";
}"""

    def seed(self):
        """60 invoices older than 30 days: 19 disputed (kept by where), 5 of
        customer 7 (held), 3 referred to by notes (no rule: blocked), 33
        deleted; and 10 fresh ones."""
        self.sql(f"""
CREATE TABLE invoices (id int PRIMARY KEY, created_at timestamptz NOT NULL,
                       status text NOT NULL, customer_id int NOT NULL,
                       payload text);
CREATE INDEX ON invoices (created_at);
CREATE TABLE notes (id serial PRIMARY KEY,
                    invoice_id int NOT NULL REFERENCES invoices (id));
INSERT INTO invoices
SELECT g, now() - interval '40 days' - g * interval '1 hour',
       CASE WHEN g <= 19 THEN 'disputed' ELSE 'paid' END,
       CASE WHEN g BETWEEN 20 AND 24 THEN 7 ELSE 100 + g END,
       '{SECRET}'
FROM generate_series(1, 60) g;
INSERT INTO invoices
SELECT 1000 + g, now() - interval '1 day', 'paid', 100 + g, '{SECRET}'
FROM generate_series(1, 10) g;
INSERT INTO notes (invoice_id) VALUES (25), (26), (27), (27);
""")

    def config(self, extra=""):
        return write_config(self.tmp, f"""
database: {{ conninfo = "{self.cluster.conninfo(self.db)}"; }};
{extra}
rules = (
{self.RULE}
);
""")

    def cycle(self, conf, expect_old="27"):
        self.assertExit(self.rd(conf, "init-db"), 0)
        proc = self.rd(conf, "hold", "add", "customer:7", "--reason", "court order")
        self.assertExit(proc, 0)
        hold_id = self.sql("SELECT max(id) FROM retention.legal_holds")
        self.assertExit(self.rd(conf, "run", "--force"), 0)
        # what the explanation must add up to
        if expect_old is not None:
            self.assertEqual(self.sql(
                "SELECT count(*) FROM invoices WHERE created_at < now() - interval '30 days'"),
                expect_old)
        return hold_id

    def report(self, conf, fmt):
        out = os.path.join(self.tmp, f"report.{fmt}")
        self.assertExit(self.rd(conf, "report", "--format", fmt, "--output", out), 0)
        with open(out, "rb") as f:
            data = f.read().decode("utf-8")
        self.assertNotIn(SECRET, data)
        return data

    def sentences(self, hold_id):
        return [
            f"19 rows older than 30 days are kept because the rule only applies where {WHERE}",
            f"5 rows are kept by legal hold {hold_id}",
            "3 rows cannot be deleted yet because rows in public.notes (3) still refer to them",
        ]

    def test_every_format_explains_why_old_rows_remain(self):
        self.seed()
        conf = self.config()
        hold_id = self.cycle(conf)
        first, held, blocked = self.sentences(hold_id)

        text = self.report(conf, "text")
        m = re.search(r"^    why: (\S.*)$", text, re.M)
        self.assertIsNotNone(m, text)
        verdict = m.group(1).split(":")[0]
        self.assertIn(verdict, ("compliant", "OVERDUE 8"))
        self.assertEqual(m.group(1), f"{verdict}: {first}")
        self.assertRegex(text, rf"(?m)^         {re.escape(held)}$")
        self.assertRegex(text, rf"(?m)^         {re.escape(blocked)}$")

        doc = json.loads(self.report(conf, "json"))
        why = doc["rules"][0]["explanation"]
        self.assertEqual(
            {k: why[k] for k in ("counted", "where", "older_than_cutoff", "kept_by_where",
                                 "deidentified", "held", "hold_ids", "blocked", "blocked_by",
                                 "left")},
            {"counted": True, "where": WHERE, "older_than_cutoff": 27, "kept_by_where": 19,
             "deidentified": 0, "held": 5, "hold_ids": hold_id, "blocked": 3,
             "blocked_by": [{"table": "public.notes", "rows": 3}], "left": 0})
        self.assertEqual(why["lines"], [f"{verdict}: {first}", held, blocked])

        rows = list(csv.DictReader(io.StringIO(self.report(conf, "csv"), newline="")))
        self.assertEqual(rows[0]["explanation"], f"{verdict}: {first}; {held}; {blocked}")

        page = self.report(conf, "html")
        parser = Nesting()
        parser.feed(page)
        parser.close()
        self.assertEqual(parser.errors, [])
        self.assertEqual(parser.sections, 1)
        words = " ".join("".join(parser.text).split())
        for sentence in (f"{verdict}: {first}", held, blocked):
            self.assertIn(sentence, words)
        self.assertIn("@page{size:A4", page)
        self.assertRegex(page, r"@media print\{[^\n]*section\.rule\{break-before:page")

    def test_summary_mail_explains_too(self):
        self.seed()
        smtp = SmtpServer(starttls=True, auth=("retentiond", PASSWORD))
        smtp.start()
        self.addCleanup(smtp.stop)
        pwfile = write_secret(os.path.join(self.tmp, "smtp.password"), PASSWORD)
        conf = self.config(f"""mail: {{ url = "{smtp.url}"; username = "retentiond";
  password_file = "{pwfile}"; ca_file = "{smtp.cafile}";
  from = "retention@example.com"; to = [ "dpo@example.com" ]; send = "always"; }};""")
        hold_id = self.cycle(conf)
        msgs = smtp.wait_for_messages(1, timeout=30)
        self.assertEqual(len(msgs), 1)
        text = msgs[0].get_body(preferencelist=("plain",)).get_content()
        page = msgs[0].get_body(preferencelist=("html",)).get_content()
        for sentence in self.sentences(hold_id):
            self.assertIn(sentence, text)
            self.assertIn(sentence.replace("'", "&#39;").replace("<", "&lt;")
                          .replace(">", "&gt;"), page)
        self.assertNotIn(SECRET, text + page)

    def test_rows_left_at_max_runtime_are_said_to_wait_for_the_next_cycle(self):
        self.seed()
        rule = self.RULE.replace('retain = "30 days";',
                                 'retain = "30 days"; batch_size = 10; pause = "1 hour";'
                                 ' max_runtime = "2s";')
        conf = write_config(self.tmp, f"""
database: {{ conninfo = "{self.cluster.conninfo(self.db)}"; }};
rules = (
{rule}
);
""")
        self.cycle(conf, expect_old=None)
        left = int(self.sql(
            "SELECT count(*) FROM invoices WHERE created_at < now() - interval '30 days'")) - 27
        self.assertGreater(left, 0)
        doc = json.loads(self.report(conf, "json"))
        rule = doc["rules"][0]
        self.assertEqual(rule["outcome"], "max_runtime reached")
        self.assertEqual(rule["explanation"]["left"], left)
        self.assertIn(f"{left} rows are left for the next cycle: the run reached its "
                      "time limit (max_runtime)", rule["explanation"]["lines"])

    def test_rule_gone_from_the_config_is_not_counted_but_said(self):
        self.seed()
        conf = self.config()
        self.cycle(conf)
        renamed = write_config(self.tmp, f"""
database: {{ conninfo = "{self.cluster.conninfo(self.db)}"; }};
rules = (
{self.RULE.replace('name = "invoices"', 'name = "bills"')}
);
""")
        doc = json.loads(self.report(renamed, "json"))
        why = doc["rules"][0]["explanation"]
        self.assertFalse(why["counted"])
        self.assertEqual(why["error"], "the rule is no longer in the config")
        self.assertIn("could not be counted: the rule is no longer in the config",
                      why["lines"][0])


if __name__ == "__main__":
    main()
