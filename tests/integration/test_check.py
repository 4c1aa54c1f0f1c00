"""`retentiond check` against a live database (SPEC §2).

Output contract: errors on stderr as "FILE:LINE: message", warnings as
"FILE:LINE: warning: message", notes as "FILE:LINE: note: message"; a
message about a rule starts 'rule "NAME" (schema.table): '. Success prints
"configuration OK" on stdout and exits 0; any error exits 2.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

DB = "shop"
HOSTILE = 'x"; DROP TABLE y; --'

SCHEMA_SQL = """
CREATE TABLE events (
    id bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL,
    customer_id int,
    email text,
    full_name text,
    marked_at timestamptz
);
CREATE INDEX events_created_at ON events (created_at);

CREATE TABLE logs (id int, logged_at timestamp);   -- no index on logged_at

CREATE TABLE people (
    id int,
    created_at timestamptz,
    email text NOT NULL,
    full_name text
);
CREATE INDEX people_created_at ON people (created_at);

CREATE TABLE mixed (
    id int,
    created_at timestamptz,
    ip inet,
    born date,
    n integer,
    t text,
    marked_at timestamptz
);
CREATE INDEX mixed_created_at ON mixed (created_at);

CREATE TABLE measurements (id int, taken_at timestamptz NOT NULL, v int)
    PARTITION BY RANGE (taken_at);
CREATE TABLE measurements_2023 PARTITION OF measurements
    FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE measurements_2024 PARTITION OF measurements
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE INDEX measurements_taken_at ON measurements (taken_at);

CREATE TABLE y (id int);
INSERT INTO y VALUES (1);
"""


def lc_string(value):
    """A libconfig string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sql_table_name(name):
    """How the config names a table whose name needs quoting."""
    return '"' + name.replace('"', '""') + '"'


class Config:
    """Renders a config file and remembers the line of every key.

    rules: list of dicts; a "deidentify" value is a dict column -> method,
    written one column per line. lines[(rule, key)] is the 1-based line of
    that key; lines[(rule, "deidentify." + column)] of each column;
    lines[(rule, "{")] and lines[(rule, "}")] bound the rule.
    """

    def __init__(self, conninfo, rules, pseudonym_key_file=None, extra=""):
        out = []
        self.lines = {}

        def emit(text):
            out.append(text)
            return len(out)

        emit("# written by test_check.py")
        emit("database: {")
        emit(f"  conninfo = {lc_string(conninfo)};")
        emit("};")
        if pseudonym_key_file:
            emit(f"pseudonym_key_file = {lc_string(pseudonym_key_file)};")
        for line in extra.splitlines():
            emit(line)
        emit("rules = (")
        for i, rule in enumerate(rules):
            name = rule["name"]
            self.lines[(name, "{")] = emit("  {")
            for key, value in rule.items():
                if key == "deidentify":
                    self.lines[(name, key)] = emit("    deidentify = {")
                    for column, method in value.items():
                        self.lines[(name, "deidentify." + column)] = emit(
                            f"      {column} = {lc_string(method)};")
                    emit("    };")
                elif isinstance(value, bool):
                    self.lines[(name, key)] = emit(
                        f"    {key} = {'true' if value else 'false'};")
                else:
                    self.lines[(name, key)] = emit(f"    {key} = {lc_string(value)};")
            self.lines[(name, "}")] = emit("  }" + ("," if i < len(rules) - 1 else ""))
        emit(");")
        self.text = "\n".join(out) + "\n"

    def line(self, rule, key):
        return self.lines[(rule, key)]


def rule(name, table, age_column="created_at", **keys):
    r = {"name": name, "policy": f"policy of {name}", "table": table,
         "age_column": age_column, "retain": "30 days"}
    r.update(keys)
    return r


class CheckTest(harness.IntegrationTest):

    @classmethod
    def setUpCluster(cls):
        cls.cluster.createdb(DB)
        cls.cluster.psql(SCHEMA_SQL, dbname=DB)
        cls.cluster.psql(
            f"CREATE TABLE {sql_table_name(HOSTILE)} (id int, created_at timestamptz);"
            f"CREATE INDEX hostile_created_at ON {sql_table_name(HOSTILE)} (created_at);",
            dbname=DB)

    # --- helpers ---------------------------------------------------------

    def check(self, rules, conninfo=None, **kw):
        """Write a config with RULES and run `check`; returns (proc, config)."""
        if any(m == "hash" for r in rules for m in r.get("deidentify", {}).values()):
            kw.setdefault("pseudonym_key_file", harness.write_secret(
                os.path.join(self.tmp, "pseudonym.key"), "k" * 32 + "\n"))
        cfg = Config(conninfo or self.cluster.conninfo(DB), rules, **kw)
        self.config_path = harness.write_config(
            os.path.join(self.tmp, "retentiond.conf"), cfg.text)
        proc = harness.run(["check"], config=self.config_path)
        return proc, cfg

    def diag_lines(self, proc, level="error"):
        """(line, message) of each diagnostic at LEVEL about our file; line
        is None for one about the whole file ("FILE: message")."""
        prefix = re.escape(self.config_path) + r":(?:(\d+):)? "
        if level == "error":
            pat = prefix + r"(?!warning: |note: )(.*)$"
        else:
            pat = prefix + level + r": (.*)$"
        return [(int(m.group(1)) if m.group(1) else None, m.group(2))
                for m in re.finditer(pat, proc.stderr, re.M)]

    def assertDiag(self, proc, level, line, *needles, rule=None, table=None):
        """A LEVEL diagnostic at LINE (an int, or a range of lines) whose
        message names RULE (and TABLE) first and contains every NEEDLE."""
        lines = range(line, line + 1) if isinstance(line, int) else line
        for n, msg in self.diag_lines(proc, level):
            if n not in lines:
                continue
            if rule and not msg.startswith(f'rule "{rule}" ('
                                           + (f"{table}): " if table else "")):
                continue
            if all(x.lower() in msg.lower() for x in needles):
                return msg
        self.fail(f"no {level} at {self.config_path}:{line} naming "
                  f"rule {rule!r} containing {needles!r}\n"
                  f"--- stdout ---\n{proc.stdout}--- stderr ---\n{proc.stderr}")

    def rule_lines(self, cfg, name):
        return range(cfg.line(name, "{"), cfg.line(name, "}") + 1)

    def assertTableYExists(self):
        self.assertEqual(self.cluster.scalar(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename = 'y'", dbname=DB), "1",
            "table y was dropped: SQL from the config was executed")
        self.assertEqual(self.cluster.scalar("SELECT count(*) FROM y", dbname=DB), "1")

    def assertFailed(self, proc):
        self.assertExit(proc, 2)
        self.assertNotIn("configuration OK", proc.stdout)

    # --- the promises ------------------------------------------------------

    def test_the_example_config_is_valid(self):
        """etc/retentiond.conf, which admins copy and the package installs:
        every key it shows must parse and validate (the database need not
        be there: that is a warning)."""
        with open(os.path.join(harness.SRCDIR, "etc", "retentiond.conf")) as f:
            text = f.read()
        text = re.sub(r'(?m)^(\s*conninfo\s*=\s*)"[^"]*"',
                      r'\1"host=/nonexistent dbname=check"', text)
        conf = harness.write_config(os.path.join(self.tmp, "example.conf"), text)
        creds = os.path.join(self.tmp, "creds")
        os.mkdir(creds, 0o700)
        for name, value in (("db-password", "password"), ("smtp-password", "password"),
                            ("pseudonym-key", "0123456789abcdef0123456789abcdef")):
            harness.write_secret(os.path.join(creds, name), value)
        proc = harness.run(["check"], config=conf, env={"CREDENTIALS_DIRECTORY": creds})
        self.assertExit(proc, 0)
        self.assertOutput(proc, r"^configuration OK", stream="stdout")

    def test_good_config_is_ok(self):
        proc, cfg = self.check([
            rule("events", "public.events"),
            rule("events-deid", "events", action="deidentify",
                 deidentify={"email": "hash", "full_name": "redact"},
                 marker_column="marked_at", subject="customer",
                 subject_column="customer_id"),
        ])
        self.assertExit(proc, 0)
        self.assertIn("configuration OK", proc.stdout)
        self.assertEqual(self.diag_lines(proc, "error"), [])
        # the age column has an index: no warning about either rule
        for n, msg in self.diag_lines(proc, "warning"):
            self.assertFalse(msg.startswith('rule "events'), msg)

    def test_missing_table_is_an_error_at_the_table_key(self):
        proc, cfg = self.check([rule("ghost", "public.no_such_table")])
        self.assertFailed(proc)
        self.assertDiag(proc, "error", cfg.line("ghost", "table"),
                        "table", "does not exist",
                        rule="ghost", table="public.no_such_table")

    def test_missing_age_column(self):
        proc, cfg = self.check([rule("no-age", "events", age_column="no_such_col")])
        self.assertFailed(proc)
        self.assertDiag(proc, "error", cfg.line("no-age", "age_column"),
                        "no_such_col", rule="no-age", table="public.events")

    def test_missing_deidentify_column(self):
        proc, cfg = self.check([
            rule("no-deid-col", "events", action="deidentify",
                 deidentify={"email": "redact", "no_such_col": "redact"})])
        self.assertFailed(proc)
        self.assertDiag(proc, "error", cfg.line("no-deid-col", "deidentify.no_such_col"),
                        "no_such_col", rule="no-deid-col")
        # the column that exists is not reported
        self.assertFalse([m for _, m in self.diag_lines(proc) if '"email"' in m],
                         proc.stderr)

    def test_missing_marker_column(self):
        proc, cfg = self.check([
            rule("no-marker", "events", action="deidentify",
                 deidentify={"email": "hash"}, marker_column="no_such_marker")])
        self.assertFailed(proc)
        self.assertDiag(proc, "error", cfg.line("no-marker", "marker_column"),
                        "no_such_marker", rule="no-marker")

    def test_missing_subject_column(self):
        proc, cfg = self.check([
            rule("no-subject", "events", subject="customer",
                 subject_column="no_such_subject")])
        self.assertFailed(proc)
        self.assertDiag(proc, "error", cfg.line("no-subject", "subject_column"),
                        "no_such_subject", rule="no-subject")

    def test_integer_age_column_is_refused(self):
        proc, cfg = self.check([rule("int-age", "mixed", age_column="n")])
        self.assertFailed(proc)
        self.assertDiag(proc, "error", cfg.line("int-age", "age_column"),
                        '"n"', "date or timestamp", rule="int-age",
                        table="public.mixed")

    def test_methods_must_fit_the_column_type(self):
        cases = [("truncate_ip", "n"),   # integer
                 ("year", "t"),          # text
                 ("hash", "n")]          # integer
        for method, column in cases:
            with self.subTest(method=method, column=column):
                name = f"{method}-on-{column}"
                proc, cfg = self.check([
                    rule(name, "mixed", action="deidentify",
                         deidentify={column: method}, marker_column="marked_at")])
                self.assertFailed(proc)
                self.assertDiag(proc, "error", cfg.line(name, "deidentify." + column),
                                f'"{column}"', method, rule=name)

    def test_methods_that_fit_pass(self):
        proc, cfg = self.check([
            rule("fitting", "mixed", action="deidentify",
                 deidentify={"ip": "truncate_ip", "born": "year", "t": "hash",
                             "n": "null"},
                 marker_column="marked_at")])
        self.assertExit(proc, 0)
        self.assertIn("configuration OK", proc.stdout)

    def test_null_on_not_null_column_is_refused(self):
        proc, cfg = self.check([
            rule("people", "people", action="deidentify",
                 deidentify={"full_name": "null", "email": "null"})])
        self.assertFailed(proc)
        self.assertDiag(proc, "error", cfg.line("people", "deidentify.email"),
                        '"email"', "NOT NULL", rule="people")
        # full_name is nullable: no complaint about it
        self.assertFalse([m for _, m in self.diag_lines(proc) if "full_name" in m],
                         proc.stderr)

    def test_bad_where_is_an_error_and_runs_nothing(self):
        for where in ("no_such_col > 1", "1=1; DROP TABLE y"):
            with self.subTest(where=where):
                proc, cfg = self.check([rule("bad-where", "events", where=where)])
                self.assertFailed(proc)
                self.assertDiag(proc, "error", cfg.line("bad-where", "where"),
                                rule="bad-where", table="public.events")
                self.assertTableYExists()

    def test_good_where_passes(self):
        proc, cfg = self.check([rule("good-where", "events",
                                     where="email IS NOT NULL AND customer_id > 0")])
        self.assertExit(proc, 0)
        self.assertIn("configuration OK", proc.stdout)

    def test_age_column_without_index_is_a_warning(self):
        proc, cfg = self.check([rule("logs", "logs", age_column="logged_at")])
        self.assertExit(proc, 0)
        self.assertIn("configuration OK", proc.stdout)
        self.assertDiag(proc, "warning", self.rule_lines(cfg, "logs"), "index",
                        rule="logs", table="public.logs")

    def test_partitioned_table_gets_a_note(self):
        proc, cfg = self.check([rule("measurements", "measurements",
                                     age_column="taken_at")])
        self.assertExit(proc, 0)
        self.assertIn("configuration OK", proc.stdout)
        self.assertDiag(proc, "note", self.rule_lines(cfg, "measurements"),
                        "partitioned", rule="measurements",
                        table="public.measurements")

    def test_every_problem_in_one_pass(self):
        proc, cfg = self.check([
            rule("p1-missing-table", "public.no_such_table"),
            rule("p2-missing-age", "events", age_column="no_such_col"),
            rule("p3-int-age", "mixed", age_column="n"),
            rule("p4-not-null", "people", action="deidentify",
                 deidentify={"email": "null"}),
            rule("p5-bad-where", "events", where="no_such_col > 1"),
        ])
        self.assertFailed(proc)
        self.assertDiag(proc, "error", cfg.line("p1-missing-table", "table"),
                        "does not exist", rule="p1-missing-table")
        self.assertDiag(proc, "error", cfg.line("p2-missing-age", "age_column"),
                        "no_such_col", rule="p2-missing-age")
        self.assertDiag(proc, "error", cfg.line("p3-int-age", "age_column"),
                        "date or timestamp", rule="p3-int-age")
        self.assertDiag(proc, "error", cfg.line("p4-not-null", "deidentify.email"),
                        "NOT NULL", rule="p4-not-null")
        self.assertDiag(proc, "error", cfg.line("p5-bad-where", "where"),
                        rule="p5-bad-where")

    def test_config_errors_are_reported_with_file_and_line(self):
        proc, cfg = self.check([
            rule("bad-retain", "events", retain="forever"),
            rule("bad-action", "events", action="shred"),
        ])
        self.assertFailed(proc)
        # config errors name the rule and the key, at the key's line
        self.assertDiag(proc, "error", cfg.line("bad-retain", "retain"),
                        '"bad-retain"', '"retain"')
        self.assertDiag(proc, "error", cfg.line("bad-action", "action"),
                        '"bad-action"', '"action"', "shred")

    def test_syntax_error_names_file_and_line(self):
        text = ('database: { conninfo = "dbname=shop"; };\n'
                'rules = (\n'
                '  { name = "a"; policy = "p"; table = "t" age_column = "c"; }\n'
                ');\n')
        self.config_path = harness.write_config(os.path.join(self.tmp, "syntax.conf"), text)
        proc = harness.run(["check"], config=self.config_path)
        self.assertFailed(proc)
        self.assertTrue(self.diag_lines(proc, "error"), proc.stderr)
        self.assertEqual(self.diag_lines(proc, "error")[0][0], 3, proc.stderr)

    def test_unreachable_database_still_checks_the_config(self):
        conninfo = (f"host=127.0.0.1 port={harness.free_port()} dbname={DB} "
                    "user=postgres connect_timeout=5")
        proc, cfg = self.check([rule("events", "events")], conninfo=conninfo)
        self.assertExit(proc, 0)
        self.assertIn("configuration OK", proc.stdout)
        self.assertTrue([m for _, m in self.diag_lines(proc, "warning")
                         if re.search(r"catalog.*not checked", m, re.I)],
                        "no warning that the live catalog was not checked\n"
                        + proc.stderr)

    def test_hostile_table_name_is_only_ever_quoted(self):
        table = "public." + sql_table_name(HOSTILE)
        proc, cfg = self.check([rule("hostile", table, where="id > 0")])
        self.assertExit(proc, 0)
        self.assertIn("configuration OK", proc.stdout)
        self.assertEqual(self.diag_lines(proc, "error"), [])
        self.assertTableYExists()
        # the table itself is untouched too
        self.assertEqual(self.cluster.scalar(
            "SELECT count(*) FROM pg_class WHERE relname = "
            + harness.quote_literal(HOSTILE), dbname=DB), "1")

    def test_check_changes_nothing(self):
        before = self.cluster.scalar(
            "SELECT count(*) FROM pg_class", dbname=DB)
        proc, cfg = self.check([rule("events", "events"),
                                rule("logs", "logs", age_column="logged_at")])
        self.assertExit(proc, 0)
        self.assertEqual(self.cluster.scalar(
            "SELECT count(*) FROM pg_class", dbname=DB), before)


if __name__ == "__main__":
    harness.main()
