"""Hostile input against a real PostgreSQL (SPEC §3, §5; issue 8).

Promises checked: names in rules are only ever data (quotes, spaces,
Unicode, SQL fragments, case) — `check`, `plan` and `run` touch exactly the
named table and only its expired rows, and a sentinel table is never
touched; values of 1 MB are hashed, redacted and masked correctly, and a
1 MB policy text flows through run, audit and every report format; NULL
ages never expire, NULL subject ids are neither held nor erased by mistake,
NULL de-identified columns stay NULL; non-ASCII text in every field
survives into the reports; a config that is malformed (wrong types,
duplicate keys, include loops, huge numbers, negative durations, not UTF-8,
binary, too large) is refused with a clear message and exit 2 before any
row is touched; values PostgreSQL cannot represent fail the rule with a
message, never delete.

Every case is counted in CASES (printed at the end) for the issue report.
"""

import csv
import hashlib
import hmac
import io
import json
import os
import re
import sys

import harness
from harness import (IntegrationTest, main, quote_ident,
                     write_config, write_secret)

KEY = b"hostile-test-pseudonym-key-0123456789"
MB = 1024 * 1024
CASES = []


def _sanitized(binary):
    try:
        with open(binary, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


# libconfig grows a string token 64 bytes at a time: a 1 MB policy asks
# realloc for 8.6 GB in all. glibc moves big blocks with mremap, so that
# takes 0.1 s; ASan's realloc copies, which takes minutes for each command
# that reads the file. The sanitizer build gets 64 kB.
POLICY_BYTES = MB // 16 if _sanitized(harness.RETENTIOND) else MB


def case(name):
    """Count one hostile case tried (for the report)."""
    CASES.append(name)


def conf_str(s):
    """S as a libconfig string literal."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def table_spec(schema, table):
    """The "schema"."table" form of config_split_table, quotes doubled."""
    return ".".join('"' + p.replace('"', '""') + '"' for p in (schema, table))


class HostileTest(IntegrationTest):

    def setUp(self):
        super().setUp()
        self.db = "t_" + self._testMethodName[5:40].lower()
        self.cluster.createdb(self.db)
        self.keyfile = write_secret(os.path.join(self.tmp, "pseudonym.key"),
                                    KEY.decode())
        # a table no rule names: it must come through every test unchanged
        self.sql("""
CREATE TABLE sentinel (id int PRIMARY KEY, created_at timestamptz, note text);
INSERT INTO sentinel SELECT g, now() - interval '10 years', 'keep ' || g
FROM generate_series(1, 25) g;
""")

    def tearDown(self):
        if self.cluster is not None and self.cluster.running:
            self.assertEqual(self.sql("SELECT count(*), sum(id) FROM sentinel"),
                             "25|325", "the sentinel table was touched")
        super().tearDown()

    def sql(self, text):
        return self.cluster.psql(text, dbname=self.db)

    def config(self, rules, extra="", name="retentiond.conf"):
        text = f"""
database: {{ conninfo = "{self.cluster.conninfo(self.db)}"; }};
pseudonym_key_file = "{self.keyfile}";
{extra}
rules = (
{rules}
);
"""
        return write_config(os.path.join(self.tmp, name), text)

    def rd(self, conf, *args, **kw):
        return self.run_rd(list(args), config=conf, **kw)

    def init_db(self, conf):
        self.assertExit(self.rd(conf, "init-db"), 0)

    def audit_rows(self):
        return int(self.sql("SELECT coalesce(sum(rows), 0) FROM retention.actions"))

    def assertNoCrash(self, proc):
        """Exit 0, 1 or 2 with a message: never a signal, sanitizer report
        or assertion failure."""
        self.assertIn(proc.returncode, (0, 1, 2),
                      f"crashed or hung: {proc.returncode}\n{proc.stderr[-3000:]}")
        self.assertNotRegex(proc.stderr, r"AddressSanitizer|runtime error|"
                            r"Assertion|Segmentation|LeakSanitizer")

    # --- identifiers ------------------------------------------------------------

    def seed_hostile_table(self, schema, table, age, subject, state):
        qs, qt = quote_ident(schema), quote_ident(table)
        qa, qsub, qst = quote_ident(age), quote_ident(subject), quote_ident(state)
        self.sql(f"""
CREATE SCHEMA IF NOT EXISTS {qs};
CREATE TABLE {qs}.{qt} (id serial PRIMARY KEY, {qa} timestamptz,
                        {qsub} text, {qst} text);
CREATE INDEX ON {qs}.{qt} ({qa});
INSERT INTO {qs}.{qt} ({qa}, {qsub}, {qst})
SELECT now() - interval '30 days', CASE WHEN g % 5 = 0 THEN 'O''Brien"; --'
                                        ELSE 'кл-' || g END,
       CASE WHEN g % 4 = 0 THEN 'gardé' ELSE 'prêt' END
FROM generate_series(1, 40) g;
INSERT INTO {qs}.{qt} ({qa}, {qsub}, {qst})
SELECT now() - interval '1 hour', 'кл-' || g, 'prêt' FROM generate_series(1, 20) g;
""")
        return f"{qs}.{qt}"

    def test_quoted_unicode_and_sql_fragment_names_touch_only_their_rows(self):
        schema = 'My "Schema" 🙂'
        table = 'tab.le; DROP TABLE sentinel; --'
        age, subject, state = "créé le", 'Kunden "ID"', "état"
        qualified = self.seed_hostile_table(schema, table, age, subject, state)
        where = f"{quote_ident(state)} <> 'gardé' AND 1 = 1"
        conf = self.config(f"""{{
  name = "hostile"; policy = {conf_str("Données «clients» 🙂 30 jours")};
  table = {conf_str(table_spec(schema, table))};
  age_column = {conf_str(age)}; retain = "7 days";
  where = {conf_str(where)};
  subject = "customer"; subject_column = {conf_str(subject)};
  max_fraction = 1.0;
}}""")
        case("schema with quotes, space and emoji; table with dot, ';' and "
             "DROP TABLE; columns with accents, quotes and spaces")
        proc = self.rd(conf, "check")
        self.assertExit(proc, 0)
        self.assertIn("configuration OK", proc.stdout)
        self.init_db(conf)

        case("hold on a subject id holding a quote, a double quote and --")
        self.assertExit(self.rd(conf, "hold", "add", "customer:O'Brien\"; --",
                                "--reason", "Rechtsstreit «A» ⚖"), 0)

        case("plan on hostile names")
        proc = self.rd(conf, "plan")
        self.assertExit(proc, 0)
        # 40 expired; 10 'gardé' (where) and 8 O'Brien rows (hold) stay,
        # 2 of them both
        m = re.search(r"would delete (\d+) of (\d+) rows", proc.stdout)
        self.assertIsNotNone(m, proc.stdout)
        self.assertEqual(m.groups(), ("24", "60"))

        case("run on hostile names")
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, r"deleted 24 rows", stream="stdout")
        self.assertEqual(self.sql(f"SELECT count(*) FROM {qualified}"), "36")
        self.assertEqual(self.sql(
            f"SELECT count(*) FROM {qualified} WHERE {quote_ident(age)} "
            "< now() - interval '7 days' AND "
            f"{quote_ident(state)} <> 'gardé' AND {quote_ident(subject)} "
            "<> 'O''Brien\"; --'"), "0")
        self.assertEqual(self.audit_rows(), 24)
        self.assertExit(self.rd(conf, "verify"), 0)

        case("erasure of a subject id with quotes on hostile names")
        self.assertExit(self.rd(conf, "hold", "release",
                                self.sql("SELECT id FROM retention.legal_holds")), 0)
        self.assertExit(self.rd(conf, "erase", "customer:O'Brien\"; --",
                                "--reason", "Art. 17 «löschen»"), 0)
        self.assertExit(self.rd(conf, "run", "--force"), 0)
        # whatever their age, but `where` still holds: the two 'gardé' rows
        # stay (g = 20, 40)
        self.assertEqual(self.sql(
            f"SELECT string_agg({quote_ident(state)}, ',') FROM {qualified} "
            f"WHERE {quote_ident(subject)} = 'O''Brien\"; --'"), "gardé,gardé")
        # the others' fresh rows and 'gardé' rows are still there
        self.assertEqual(self.sql(
            f"SELECT count(*) FROM {qualified} WHERE {quote_ident(age)} "
            "> now() - interval '1 day'"), "20")

    def test_table_name_case_and_lookalikes_are_kept_apart(self):
        # "Events", "events" and "events " are three tables; the rule names
        # the first, written without quotes: taken as written, case kept
        for t in ("Events", "events", "events "):
            self.sql(f"""
CREATE TABLE {quote_ident(t)} (id int PRIMARY KEY, at timestamptz);
INSERT INTO {quote_ident(t)} SELECT g, now() - interval '3 days' FROM generate_series(1, 10) g;
INSERT INTO {quote_ident(t)} SELECT g + 10, now() FROM generate_series(1, 10) g;
""")
        conf = self.config("""{
  name = "upper"; policy = "p"; table = "public.Events"; age_column = "at";
  retain = "1 day";
}""")
        case("table name differing only by case from another table")
        case("table name differing only by a trailing space")
        self.init_db(conf)
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.sql('SELECT count(*) FROM "Events"'), "10")
        self.assertEqual(self.sql('SELECT count(*) FROM "events"'), "20")
        self.assertEqual(self.sql('SELECT count(*) FROM "events "'), "20")

    def test_unquoted_unicode_schema_and_table(self):
        self.sql("""
CREATE SCHEMA "данные";
CREATE TABLE "данные"."заказы_🙂" (id int PRIMARY KEY, "日付" date);
INSERT INTO "данные"."заказы_🙂" SELECT g, current_date - 400 FROM generate_series(1, 5) g;
INSERT INTO "данные"."заказы_🙂" SELECT g + 5, current_date FROM generate_series(1, 5) g;
""")
        conf = self.config("""{
  name = "unicode"; policy = "注文は1年間保存されます"; table = "данные.заказы_🙂";
  age_column = "日付"; retain = "1 year";
}""")
        case("unquoted Cyrillic schema, table with emoji, CJK column and policy")
        proc = self.rd(conf, "check")
        self.assertExit(proc, 0)
        self.init_db(conf)
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.sql('SELECT count(*) FROM "данные"."заказы_🙂"'), "5")

    def test_missing_hostile_table_is_an_error_not_an_injection(self):
        conf = self.config("""{
  name = "inject"; policy = "p";
  table = "\\"x'); DELETE FROM sentinel; --\\"";
  age_column = "a\\"; DELETE FROM sentinel; --"; retain = "1 day";
}""")
        case("nonexistent table and column whose names are SQL statements")
        proc = self.rd(conf, "check")
        self.assertExit(proc, 2)
        self.assertOutput(proc, r"does not exist|not found|no table")
        self.init_db(conf)
        proc = self.rd(conf, "run")
        self.assertNoCrash(proc)
        self.assertEqual(proc.returncode, 1)
        proc = self.rd(conf, "plan")
        self.assertNoCrash(proc)
        self.assertExit(proc, 1)

    # --- 1 MB values ---------------------------------------------------------------

    def test_megabyte_values_are_hashed_redacted_and_masked(self):
        self.sql(f"""
CREATE TABLE big (id int PRIMARY KEY, closed_at timestamptz, h text, r text,
                  m text, done timestamptz);
INSERT INTO big VALUES
 (1, now() - interval '2 years', repeat('ab', {MB // 2}), repeat('é', {MB // 2}),
  repeat('a', {MB - 12}) || '@example.com', NULL),
 (2, now() - interval '2 years', 'small', 'small', 'x@' || repeat('d', {MB}), NULL),
 (3, now(), repeat('ab', {MB // 2}), repeat('z', {MB}), 'fresh@example.com', NULL);
""")
        conf = self.config("""{
  name = "big"; policy = "p"; table = "big"; age_column = "closed_at";
  retain = "1 year"; action = "deidentify"; marker_column = "done";
  deidentify = { h = "hash"; r = "redact"; m = "mask_email"; };
  max_fraction = 1.0;
}""")
        case("1 MB text hashed")
        case("1 MB text (2-byte UTF-8) redacted")
        case("1 MB local part masked by mask_email")
        case("1 MB domain kept by mask_email")
        self.init_db(conf)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        rows = {r[0]: r for r in self.cluster.query(
            "SELECT id, h, r, m, length(m), done IS NOT NULL FROM big ORDER BY id",
            dbname=self.db)}
        self.assertEqual(rows["1"][1], hmac.new(KEY, b"ab" * (MB // 2),
                                                hashlib.sha256).hexdigest())
        self.assertEqual(rows["1"][2], "[redacted]")
        self.assertEqual(rows["1"][3], "***@example.com")
        self.assertEqual(rows["2"][4], str(4 + MB))
        self.assertTrue(rows["2"][3].startswith("***@ddd"))
        self.assertEqual((rows["1"][5], rows["2"][5], rows["3"][5]), ("t", "t", "f"))
        self.assertEqual(self.sql("SELECT length(h), length(r) FROM big WHERE id = 3"),
                         f"{MB}|{MB}")

    def test_megabyte_policy_text_flows_through_run_and_reports(self):
        self.sql("""
CREATE TABLE ev (id int PRIMARY KEY, at timestamptz);
INSERT INTO ev SELECT g, now() - interval '3 days' FROM generate_series(1, 5) g;
INSERT INTO ev SELECT g + 5, now() FROM generate_series(1, 5) g;
""")
        policy = ("Politique «1 Mo» <b>&amp;</b>, \"quoted\" " * 30000
                  ).encode()[:POLICY_BYTES].decode("utf-8", "ignore")
        conf = self.config(f"""{{
  name = "ev"; policy = {conf_str(policy)}; table = "ev"; age_column = "at";
  retain = "1 day"; max_fraction = 1.0;
}}""", extra=f'report: {{ directory = "{self.tmp}/reports"; '
                     'formats = [ "html", "csv", "json" ]; };')
        case(f"{POLICY_BYTES // 1024} kB policy text: check, run, audit, report "
             "files and report formats")
        self.assertExit(self.rd(conf, "check"), 0)
        self.init_db(conf)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertEqual(self.sql("SELECT count(*) FROM ev"), "5")
        out = os.path.join(self.tmp, "r.json")
        self.assertExit(self.rd(conf, "report", "--format", "json", "--output", out), 0)
        with open(out, encoding="utf-8") as f:
            doc = json.load(f)
        self.assertTrue(any(r.get("policy") == policy for r in doc["rules"]),
                        "the 1 MB policy is not in the JSON report")
        out = os.path.join(self.tmp, "r.csv")
        self.assertExit(self.rd(conf, "report", "--format", "csv", "--output", out), 0)
        csv.field_size_limit(sys.maxsize)
        with open(out, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        self.assertTrue(any(r.get("policy") == policy for r in rows),
                        "the 1 MB policy is not in the CSV report")
        out = os.path.join(self.tmp, "r.html")
        self.assertExit(self.rd(conf, "report", "--format", "html", "--output", out), 0)
        with open(out, encoding="utf-8") as f:
            html = f.read()
        self.assertFalse("<b>&amp;</b>" in html, "policy markup left raw")
        self.assertTrue("&lt;b&gt;&amp;amp;&lt;/b&gt;" in html, "policy not escaped")
        self.assertExit(self.rd(conf, "verify"), 0)

    def test_long_subject_id_on_the_command_line(self):
        self.sql("CREATE TABLE t (id int PRIMARY KEY, at timestamptz, c text);")
        conf = self.config("""{
  name = "t"; policy = "p"; table = "t"; age_column = "at"; retain = "1 day";
  subject = "customer"; subject_column = "c";
}""")
        self.init_db(conf)
        long_id = "ä" * 50000        # 100 kB: below the kernel's argument limit
        case("100 kB subject id for hold add and erase")
        # an ID is text of any length: both are recorded, the erasure is
        # held by the hold, and a cycle runs normally
        for args in (["hold", "add", "customer:" + long_id, "--reason", "r"],
                     ["erase", "customer:" + long_id]):
            proc = self.rd(conf, *args)
            self.assertNoCrash(proc)
            self.assertExit(proc, 0)
        self.assertExit(self.rd(conf, "hold", "list"), 0)
        self.assertExit(self.rd(conf, "erasure", "list"), 0)
        proc = self.rd(conf, "run")
        self.assertNoCrash(proc)
        self.assertExit(proc, 0)
        self.assertEqual(self.sql("SELECT status || ' ' || length(subject_id)"
                                  " FROM retention.erasure_requests"), "held 50000")

    # --- NULLs ---------------------------------------------------------------------

    def test_nulls_never_expire_and_are_never_held_or_erased_by_mistake(self):
        self.sql("""
CREATE TABLE n (id int PRIMARY KEY, at timestamptz, subj text, email text, ip inet,
                born date, done timestamptz);
INSERT INTO n VALUES
 (1, NULL, 'a', 'a@example.com', '10.0.0.1', '1980-05-05', NULL),
 (2, now() - interval '3 years', NULL, 'b@example.com', '10.0.0.2', '1981-05-05', NULL),
 (3, now() - interval '3 years', 'held', 'c@example.com', '10.0.0.3', '1982-05-05', NULL),
 (4, now() - interval '3 years', 'd', NULL, NULL, NULL, NULL),
 (5, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE nd (id int PRIMARY KEY, at timestamptz, subj text);
INSERT INTO nd VALUES (1, NULL, 'x'), (2, now() - interval '3 years', NULL),
                      (3, now() - interval '3 years', 'held'), (4, NULL, NULL),
                      (5, now() - interval '3 years', 'gone');
""")
        conf = self.config("""{
  name = "n"; policy = "p"; table = "n"; age_column = "at"; retain = "1 year";
  action = "deidentify"; marker_column = "done"; max_fraction = 1.0;
  deidentify = { email = "hash"; ip = "truncate_ip"; born = "year"; };
  subject = "customer"; subject_column = "subj";
}, {
  name = "nd"; policy = "p"; table = "nd"; age_column = "at"; retain = "1 year";
  max_fraction = 1.0; subject = "customer"; subject_column = "subj";
}""")
        self.init_db(conf)
        self.assertExit(self.rd(conf, "hold", "add", "customer:held", "--reason", "r"), 0)
        case("NULL age never expires (delete and deidentify)")
        case("NULL subject id with an active hold: expires like any row")
        case("NULL in every de-identified column: stays NULL, row marked done")
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertEqual(self.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM nd"),
                         "1,3,4")
        rows = {r[0]: r for r in self.cluster.query(
            "SELECT id, coalesce(email, '<null>'), coalesce(ip::text, '<null>'), "
            "coalesce(born::text, '<null>'), done IS NOT NULL FROM n ORDER BY id",
            dbname=self.db)}
        self.assertEqual(rows["1"][1:], ["a@example.com", "10.0.0.1/32", "1980-05-05", "f"])
        self.assertEqual(rows["2"][2:], ["10.0.0.0/24", "1981-01-01", "t"])
        self.assertEqual(rows["3"][1:], ["c@example.com", "10.0.0.3/32", "1982-05-05", "f"])
        self.assertEqual(rows["4"][1:], ["<null>", "<null>", "<null>", "t"])
        self.assertEqual(rows["5"][1:], ["<null>", "<null>", "<null>", "f"])

        case("erasure request never matches rows whose subject id is NULL")
        self.sql("INSERT INTO nd VALUES (6, now(), NULL), (7, now(), 'e');")
        self.assertExit(self.rd(conf, "erase", "customer:e"), 0)
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM nd"),
                         "1,3,4,6")

    # --- non-ASCII everywhere ---------------------------------------------------------

    def test_non_ascii_in_every_text_field_reaches_the_reports(self):
        self.sql("""
CREATE TABLE "Käufe" ("Zeitpunkt" timestamptz, "Zustand" text, "Kunde" text);
INSERT INTO "Käufe" SELECT now() - interval '40 days', CASE WHEN g % 2 = 0 THEN 'offen' ELSE 'erledigt ✓' END, 'k' || g FROM generate_series(1, 10) g;
""")
        policy = "Käufe werden 30 Tage aufbewahrt — שמירה ל-30 יום — 保存30日 🙂"
        where = conf_str("\"Zustand\" = 'erledigt ✓'")
        conf = self.config(f"""{{
  name = "kaeufe"; policy = {conf_str(policy)}; table = "Käufe";
  age_column = "Zeitpunkt"; retain = "30 days";
  where = {where}; max_fraction = 1.0;
  subject = "kunde"; subject_column = "Kunde";
}}""")
        case("non-ASCII policy, where literal, table, columns, hold reason, "
             "erasure reason; in text, csv, json and html reports")
        self.init_db(conf)
        self.assertExit(self.rd(conf, "hold", "add", "kunde:k1", "--reason",
                                "Prüfung §12 — 審査中"), 0)
        self.assertExit(self.rd(conf, "erase", "kunde:k9", "--reason", "Löschung ✓"), 0)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertEqual(self.sql('SELECT string_agg("Kunde", \',\' ORDER BY "Kunde") '
                                  'FROM "Käufe"'), "k1,k10,k2,k4,k6,k8")
        self.assertIn("Prüfung §12 — 審査中", self.rd(conf, "hold", "list").stdout)
        for fmt in ("text", "csv", "json", "html"):
            out = os.path.join(self.tmp, "r." + fmt)
            self.assertExit(self.rd(conf, "report", "--format", fmt, "--output", out), 0)
            with open(out, encoding="utf-8") as f:
                data = f.read()
            if fmt == "json":
                data = json.dumps(json.loads(data), ensure_ascii=False)
            self.assertIn(policy, data, fmt)

    # --- hostile config files: refused before any row is touched ---------------------

    def assertRefused(self, conf, pattern, what):
        """check and run both exit 2 with PATTERN, and no row changes."""
        case(what)
        before = self.sql("SELECT count(*) FROM ev")
        for cmd in ("check", "run"):
            proc = self.rd(conf, cmd, timeout=30)
            self.assertNoCrash(proc)
            self.assertExit(proc, 2, f"{what} ({cmd})")
            self.assertOutput(proc, pattern)
        self.assertEqual(self.sql("SELECT count(*) FROM ev"), before)

    def test_malformed_config_files_are_refused_clearly(self):
        self.sql("""
CREATE TABLE ev (id int PRIMARY KEY, at timestamptz);
INSERT INTO ev SELECT g, now() - interval '3 days' FROM generate_series(1, 10) g;
""")
        good = """{ name = "ev"; policy = "p"; table = "ev"; age_column = "at";
  retain = "1 day"; max_fraction = 1.0; }"""
        conf = self.config(good)
        self.init_db(conf)
        conninfo = self.cluster.conninfo(self.db)
        db = f'database: {{ conninfo = "{conninfo}"; }};\n'

        def write(name, text, mode=0o600):
            return write_config(os.path.join(self.tmp, name), text, mode)

        self.assertRefused(self.config(good.replace('"1 day"', '"-1 day"')),
                           r"durations cannot be negative", "negative duration")
        self.assertRefused(self.config(good.replace('"1 day"', '"1e3 days"')),
                           r"retain", "exponent in a duration")
        self.assertRefused(self.config(good.replace('"1 day"', '"99999999999999999999 s"')),
                           r"too large", "duration beyond int64")
        self.assertRefused(self.config(good, extra="limits: { batch_size = 99999999999999999999; };"),
                           r"batch_size", "integer beyond int64")
        self.assertRefused(self.config(good, extra="limits: { batch_size = -5; pause = \"-1s\"; };"),
                           r"batch_size", "negative integer and duration in limits")
        self.assertRefused(self.config(good, extra="limits: { max_fraction = 1e999; };"),
                           r"max_fraction", "infinite float")
        self.assertRefused(self.config(good.replace('retain = "1 day"', "retain = 1")),
                           r"must be a duration string", "integer where a duration belongs")
        self.assertRefused(self.config(good.replace('name = "ev"', "name = [1, 2]")),
                           r"must be a string", "array where a string belongs")
        self.assertRefused(self.config(good, extra="limits = 5;"),
                           r"must be a group", "integer where a group belongs")
        self.assertRefused(self.config(good.replace("max_fraction = 1.0;",
                                                    'max_fraction = "half";')),
                           r"must be a number", "string where a number belongs")
        self.assertRefused(self.config(good.replace('table = "ev";',
                                                    'table = "ev"; table = "sentinel";')),
                           r"duplicate setting", "duplicate key in a rule")
        self.assertRefused(write("dupgroup.conf", db + db + f"rules = ( {good} );"),
                           r"duplicate setting", "duplicate group")
        self.assertRefused(self.config(good + ", " + good),
                           r"duplicate rule name", "duplicate rule name")

        # include loops: libconfig stops at its nesting limit; never a hang
        write("self.conf", '@include "self.conf"\n' + db + f"rules = ( {good} );")
        self.assertRefused(os.path.join(self.tmp, "self.conf"),
                           r"self\.conf:1: @include nested too deep", "file that includes itself")
        write("a.conf", '@include "b.conf"\n')
        write("b.conf", '@include "a.conf"\n')
        self.assertRefused(write("loop.conf", '@include "a.conf"\n' + db +
                                 f"rules = ( {good} );"),
                           r"@include nested too deep", "two files that include each other")
        self.assertRefused(write("missing.conf", '@include "nope.conf"\n' + db),
                           r"cannot open \"nope\.conf\"", "include of a missing file")

        latin1 = write("latin1.conf", "")
        with open(latin1, "wb") as f:
            f.write((db + "rules = ( " + good.replace('policy = "p"',
                                                      'policy = "Donn\xe9es"')
                     + " );").encode("latin-1"))
        self.assertRefused(latin1, r'"policy" is not valid UTF-8', "Latin-1 policy text")

        nul = write("nul.conf", "")
        with open(nul, "wb") as f:
            f.write(db.encode() + b"\0" + f"rules = ( {good} );".encode())
        self.assertRefused(nul, r"NUL byte", "NUL byte in the file")

        binary = write("binary.conf", "")
        with open(binary, "wb") as f:
            f.write(bytes(range(1, 256)) * 64)
        self.assertRefused(binary, r"binary\.conf:\d+: syntax error", "binary garbage")

        huge = write("huge.conf", "")
        with open(huge, "w") as f:
            f.write(db + "# " + "x" * (17 * MB) + "\n" + f"rules = ( {good} );")
        self.assertRefused(huge, r"is larger than", "17 MB config file")

        self.assertRefused(write("empty.conf", ""), r"conninfo|database|rules",
                           "empty config file")
        deep = "a = " + "(" * 20000 + ")" * 20000 + ";\n"
        self.assertRefused(write("deep.conf", db + deep + f"rules = ( {good} );"),
                           r"deep\.conf:\d+: .*nested too deep", "lists nested 20000 deep")
        self.assertRefused(write("longname.conf", db + "k" * MB + " = 1;\n" +
                                 f"rules = ( {good} );"),
                           r"unknown key", "1 MB key name")
        self.assertRefused(write("writable.conf", db + f"rules = ( {good} );", 0o666),
                           r"writable by group or others", "world-writable config")
        case("config path that is a directory")
        proc = self.rd(self.tmp, "check")
        self.assertNoCrash(proc)
        self.assertExit(proc, 2)
        self.assertOutput(proc, r"not a regular file|cannot")
        self.assertEqual(self.sql("SELECT count(*) FROM ev"), "10")

    def test_values_postgresql_cannot_hold_fail_the_rule_not_the_data(self):
        self.sql("""
CREATE TABLE ev (id int PRIMARY KEY, at timestamptz);
INSERT INTO ev SELECT g, now() - interval '3 days' FROM generate_series(1, 10) g;
""")
        for retain in ("1000000000 years", "300000 years", "1000000000 weeks"):
            conf = self.config(f"""{{ name = "ev"; policy = "p"; table = "ev";
  age_column = "at"; retain = "{retain}"; max_fraction = 1.0; }}""")
            case(f"retain = \"{retain}\" (beyond PostgreSQL's interval or "
                 "timestamp range): refused by check with its line")
            for cmd in ("check", "plan", "run"):
                proc = self.rd(conf, cmd)
                self.assertNoCrash(proc)
                self.assertExit(proc, 2)
                self.assertOutput(proc, r'retentiond\.conf:\d+: rule "ev": '
                                        r'"retain" (must be at most 1000 years|'
                                        r': duration is too large)')
            self.assertEqual(self.sql("SELECT count(*) FROM ev"), "10")
        conf = self.config("""{ name = "ev"; policy = "p"; table = "ev";
  age_column = "at"; retain = "1000 years"; max_fraction = 1.0; }""")
        case('retain = "1000 years", the longest allowed: nothing is due')
        self.init_db(conf)
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.sql("SELECT count(*) FROM ev"), "10")

        case("statement_timeout beyond PostgreSQL's integer range: refused "
             "by check, not at connect time")
        conf = self.config("""{ name = "ev"; policy = "p"; table = "ev";
  age_column = "at"; retain = "1 day"; max_fraction = 1.0; }""")
        with open(conf) as f:
            text = f.read().replace(
                "database: {", 'database: { statement_timeout = "1000000000 weeks";', 1)
        conf = write_config(conf, text)
        for cmd in ("check", "run"):
            proc = self.rd(conf, cmd)
            self.assertExit(proc, 2)
            self.assertOutput(proc, r'"statement_timeout" must be at most 24 days')
        self.assertEqual(self.sql("SELECT count(*) FROM ev"), "10")


def tearDownModule():
    print(f"\nhostile cases tried: {len(CASES)}")
    for c in CASES:
        print(f"  - {c}")


if __name__ == "__main__":
    main()
