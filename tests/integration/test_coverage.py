"""`retentiond coverage`: the personal data that no rule covers (SPEC §9).

Promises checked:
- a labelled corpus of more than 60 tables, personal and not (opaque
  column names with personal values, json-only personal data, data
  personal only by its foreign keys, decoys: country names, product
  titles, hostnames, version strings, 16-digit codes that fail Luhn,
  settings tables): every personal table is found, at most one decoy in
  ten is flagged; precision and recall are printed per table;
- what covers a column: a delete rule on its table, a de-identify rule
  of exactly that column, ON DELETE CASCADE from a covered table, an
  ignore entry for the table or the column (with wildcards); the JSON
  object of §9 field by field; exit status 0, 1 and 2;
- `check` warns once per uncovered table;
- each cycle's report has a Coverage section in html, csv, json and text;
  the metrics file has retentiond_uncovered_columns;
- no sampled value ever reaches an output, a log line (-v), a report or
  the metrics file;
- a sample reads at most sample_rows rows; sample_rows = 0 reads none;
  a table locked exclusively by another session is skipped with a
  warning after lock_timeout, and a table under any weaker lock is still
  read (coverage takes ACCESS SHARE only).
"""

import csv
import io
import json
import os
import re
import subprocess
import time

from harness import (IntegrationTest, SmtpServer, clean_env, main, write_config,
                     write_secret)

# --- values -----------------------------------------------------------------


def luhn_ok(digits):
    total = 0
    for i, ch in enumerate(reversed(digits)):
        v = int(ch)
        if i % 2 == 1:
            v *= 2
            if v > 9:
                v -= 9
        total += v
    return total % 10 == 0


def card(n):
    """A 16-digit Visa-style number that passes Luhn."""
    body = f"4{(n * 7919 + 1234567) % 10**14:014d}"
    for check in "0123456789":
        if luhn_ok(body + check):
            return body + check
    raise AssertionError


def bad_code(n):
    """A 16-digit code that fails Luhn, starting like a card."""
    body = f"4{(n * 104729 + 7654321) % 10**14:014d}"
    for check in "0123456789":
        if not luhn_ok(body + check):
            return body + check
    raise AssertionError


def iban(n):
    """A German IBAN with valid check digits."""
    bban = f"{37040044:08d}{(n * 9973 + 532013000) % 10**10:010d}"
    num = int(bban + "1314" + "00")   # D=13, E=14, then "00"
    return f"DE{98 - num % 97:02d}{bban}"


def values_sql(rows):
    """VALUES list of one text column."""
    return ", ".join("('" + v.replace("'", "''") + "')" for v in rows)


N = 60   # rows in most corpus tables

# --- the corpus ----------------------------------------------------------------
# (table, personal columns (empty: a decoy), SQL creating and filling it)

CARDS = values_sql(card(i) for i in range(N))
IBANS = values_sql(iban(i) for i in range(N))
BAD_CODES = values_sql(bad_code(i) for i in range(N))
BAD_CODES_DASHED = values_sql("-".join(bad_code(i + 500)[k:k + 4] for k in range(0, 16, 4))
                              for i in range(N))

CORPUS = [
    # ---- personal: names -------------------------------------------------
    ("crm.customers", {"id", "email", "first_name", "last_name", "dob"}, f"""
CREATE TABLE crm.customers (id serial PRIMARY KEY, email text, first_name text,
  last_name text, dob date, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO crm.customers (email, first_name, last_name, dob)
SELECT 'c' || g || '@example.org', 'Ann', 'Smith', date '1980-01-01' + g
FROM generate_series(1, {N}) g;"""),
    ("hr.mitarbeiter", {"vorname", "nachname", "geburtsdatum", "telefonnummer"}, """
CREATE TABLE hr.mitarbeiter (id int, vorname text, nachname text,
  geburtsdatum date, telefonnummer text, abteilung int);"""),
    ("hr.employes", {"prenom", "nom", "date_naissance", "courriel"}, """
CREATE TABLE hr.employes (id int, prenom text, nom text, date_naissance date,
  courriel text, service_id int);"""),
    ("hr.empleados", {"nombre", "apellido", "fecha_nacimiento", "telefono"}, """
CREATE TABLE hr.empleados (id int, nombre text, apellido text,
  fecha_nacimiento date, telefono text);"""),
    ("hr.medewerkers", {"voornaam", "achternaam", "geboortedatum", "woonplaats"}, """
CREATE TABLE hr.medewerkers (id int, voornaam text, achternaam text,
  geboortedatum date, woonplaats text);"""),
    ("mkt.leads", {"fullName", "emailAddress", "phoneNumber"}, """
CREATE TABLE mkt.leads (id int, "fullName" text, "emailAddress" text,
  "phoneNumber" text, score int);"""),
    ("mkt.newsletter", {"e_mail"}, """
CREATE TABLE mkt.newsletter (id int, e_mail varchar(200), confirmed bool);"""),
    ("legal.kyc", {"passport_number", "ssn", "tax_id"}, """
CREATE TABLE legal.kyc (id int, passport_number text, ssn text, tax_id text,
  verified bool);"""),
    ("geo.checkins", {"lat", "lng"}, """
CREATE TABLE geo.checkins (id int, lat float8, lng float8, at timestamptz);"""),
    ("app.devices", {"device_id", "push_token"}, """
CREATE TABLE app.devices (id int, device_id text, push_token text,
  platform text);"""),
    ("billing.card_store", {"card_number"}, """
CREATE TABLE billing.card_store (id int, card_number text, brand text);"""),
    ("support.tickets", {"notes"}, f"""
CREATE TABLE support.tickets (id int, priority int, notes text);
INSERT INTO support.tickets SELECT g, 1, 'printer broken again'
FROM generate_series(1, {N}) g;"""),
    # ---- personal: types -------------------------------------------------
    ("app.login_events", {"origin"}, f"""
CREATE TABLE app.login_events (id int, origin inet, ok bool);
INSERT INTO app.login_events SELECT g, ('10.0.0.' || g)::inet, true
FROM generate_series(1, {N}) g;"""),
    ("net.dhcp_leases", {"hw", "origin"}, """
CREATE TABLE net.dhcp_leases (id int, hw macaddr, origin cidr);"""),
    ("app.sessions", {"user_agent", "ip"}, f"""
CREATE TABLE app.sessions (id int, user_agent text, ip inet);
INSERT INTO app.sessions SELECT g, 'Mozilla/5.0 (X11; Linux x86_64)',
  ('192.168.1.' || g)::inet FROM generate_series(1, {N}) g;"""),
    # ---- personal: opaque names, values only --------------------------------
    ("misc.t_0001", {"c1"}, f"""
CREATE TABLE misc.t_0001 (c1 text, c2 int);
INSERT INTO misc.t_0001 SELECT 'm' || g || '@mail.example.net', g
FROM generate_series(1, {N}) g;"""),
    ("misc.contact_data", {"x"}, f"""
CREATE TABLE misc.contact_data (id int, x text);
INSERT INTO misc.contact_data SELECT g, '+31 20 ' || (5550000 + g)
FROM generate_series(1, {N}) g;"""),
    ("app.api_log", {"line"}, f"""
CREATE TABLE app.api_log (id int, line text);
INSERT INTO app.api_log SELECT g, 'GET /v1/items 200 from 172.16.4.' || g
FROM generate_series(1, {N}) g;"""),
    ("misc.audit_trail", {"origin"}, f"""
CREATE TABLE misc.audit_trail (id int, origin text, action text);
INSERT INTO misc.audit_trail SELECT g, '2001:db8:85a3::8a2e:370:' || to_hex(g), 'update'
FROM generate_series(1, {N}) g;"""),
    ("billing.payments", {"x"}, f"""
CREATE TABLE billing.payments (x text, amount numeric);
INSERT INTO billing.payments (x) VALUES {CARDS};"""),
    ("billing.payouts", {"ref"}, f"""
CREATE TABLE billing.payouts (ref text, amount numeric);
INSERT INTO billing.payouts (ref) VALUES {IBANS};"""),
    ("billing.refunds", {"acct"}, f"""
CREATE TABLE billing.refunds (id int, acct text, amount numeric);
INSERT INTO billing.refunds (acct) VALUES {IBANS};"""),
    ("support.chat", {"txt"}, f"""
CREATE TABLE support.chat (id int, txt text);
INSERT INTO support.chat SELECT g, 'please write to me at p' || g || '@example.com, thanks'
FROM generate_series(1, {N}) g;"""),
    ("misc.legacy_char", {"k"}, f"""
CREATE TABLE misc.legacy_char (k char(40));
INSERT INTO misc.legacy_char SELECT 'q' || g || '@example.de' FROM generate_series(1, {N}) g;"""),
    # ---- personal: json only -----------------------------------------------
    ("app.import_rows", {"payload"}, f"""
CREATE TABLE app.import_rows (id int, payload jsonb);
INSERT INTO app.import_rows SELECT g, jsonb_build_object('row', g,
  'c', jsonb_build_object('m', 'i' || g || '@example.com'))
FROM generate_series(1, {N}) g;"""),
    ("app.webhooks", {"data"}, f"""
CREATE TABLE app.webhooks (id int, data json);
INSERT INTO app.webhooks SELECT g, json_build_object('evt', 'call',
  'args', json_build_array('+44 20 7946 ' || (1000 + g)))
FROM generate_series(1, {N}) g;"""),
    ("misc.blob_store", {"v"}, f"""
CREATE TABLE misc.blob_store (k text, v jsonb);
INSERT INTO misc.blob_store SELECT 'k' || g, jsonb_build_object('email', null, 'dob', null)
FROM generate_series(1, {N}) g;"""),
    # ---- personal: foreign keys only -----------------------------------------
    ("crm.orders", {"customer_id"}, """
CREATE TABLE crm.orders (id serial PRIMARY KEY,
  customer_id int REFERENCES crm.customers ON DELETE CASCADE, total numeric);"""),
    ("crm.order_lines", {"order_id"}, """
CREATE TABLE crm.order_lines (id serial PRIMARY KEY,
  order_id int REFERENCES crm.orders, qty int);"""),
    ("crm.shipments", {"line_id"}, """
CREATE TABLE crm.shipments (id serial PRIMARY KEY,
  line_id int REFERENCES crm.order_lines, carrier_code int);"""),
    ("crm.cyc_a", {"b_id"}, """
CREATE TABLE crm.cyc_a (id int PRIMARY KEY, b_id int);"""),
    ("crm.cyc_b", {"a_id", "k"}, """
CREATE TABLE crm.cyc_b (id int PRIMARY KEY, a_id int REFERENCES crm.cyc_a,
  k int REFERENCES crm.customers);
ALTER TABLE crm.cyc_a ADD FOREIGN KEY (b_id) REFERENCES crm.cyc_b;"""),
    ("crm.loop_only", set(), """
CREATE TABLE crm.loop_only (id int PRIMARY KEY, parent int REFERENCES crm.loop_only);"""),

    # ---- decoys ----------------------------------------------------------------
    ("ref.countries", set(), """
CREATE TABLE ref.countries (code char(2), name text, population bigint);
INSERT INTO ref.countries VALUES ('DE', 'Germany', 83000000), ('FR', 'France', 68000000),
  ('ES', 'Spain', 48000000), ('NL', 'Netherlands', 17800000), ('BE', 'Belgium', 11700000);"""),
    ("ref.currencies", set(), """
CREATE TABLE ref.currencies (code char(3), name text, symbol text);
INSERT INTO ref.currencies VALUES ('EUR', 'Euro', '€'), ('USD', 'US Dollar', '$');"""),
    ("ref.languages", set(), """
CREATE TABLE ref.languages (code text, name text);
INSERT INTO ref.languages VALUES ('de', 'German'), ('fr', 'French'), ('nl', 'Dutch');"""),
    ("shop.products", set(), f"""
CREATE TABLE shop.products (sku text, title text, description text, price numeric);
INSERT INTO shop.products SELECT 'SKU-' || g, 'Stainless steel bottle ' || g || ' (750 ml)',
  'Keeps drinks cold for 24 hours. Dishwasher safe.', 19.90 FROM generate_series(1, {N}) g;"""),
    ("shop.product_variants", set(), """
CREATE TABLE shop.product_variants (id int, product_sku text, color text, size text);"""),
    ("shop.categories", set(), """
CREATE TABLE shop.categories (id int, name text, slug text);
INSERT INTO shop.categories VALUES (1, 'Kitchen', 'kitchen'), (2, 'Garden', 'garden');"""),
    ("infra.hosts", set(), f"""
CREATE TABLE infra.hosts (hostname text, os_version text, rack text);
INSERT INTO infra.hosts SELECT 'db-' || g || '.internal.example.com', '12.4.1', 'r' || g
FROM generate_series(1, {N}) g;"""),
    ("infra.releases", set(), f"""
CREATE TABLE infra.releases (version text, changelog text, released date);
INSERT INTO infra.releases SELECT '2.' || g || '.3', 'Fixed crash on start-up in 1.' || g || '.0', now()::date
FROM generate_series(1, {N}) g;"""),
    ("infra.services", set(), """
CREATE TABLE infra.services (name text, port int);
INSERT INTO infra.services VALUES ('api', 8080), ('web', 443);"""),
    ("app.settings", set(), """
CREATE TABLE app.settings (key text, value text);
INSERT INTO app.settings VALUES ('theme', 'dark'), ('page_size', '50'),
  ('timeout', '30s'), ('smtp_port', '587'), ('maintenance', 'false');"""),
    ("app.settings_json", set(), f"""
CREATE TABLE app.settings_json (id int, conf jsonb);
INSERT INTO app.settings_json SELECT g, jsonb_build_object('theme', 'dark', 'retries', g,
  'endpoints', jsonb_build_array('https://api.example.com/v' || g)) FROM generate_series(1, {N}) g;"""),
    ("app.feature_flags", set(), """
CREATE TABLE app.feature_flags (flag text, enabled bool);"""),
    ("app.gift_codes", set(), f"""
CREATE TABLE app.gift_codes (code text, amount numeric);
INSERT INTO app.gift_codes (code) VALUES {BAD_CODES};"""),
    ("app.vouchers", set(), f"""
CREATE TABLE app.vouchers (code text, used bool);
INSERT INTO app.vouchers (code) VALUES {BAD_CODES_DASHED};"""),
    ("app.migrations", set(), f"""
CREATE TABLE app.migrations (version text, applied_at timestamptz);
INSERT INTO app.migrations SELECT '2024' || lpad(g::text, 4, '0'), now()
FROM generate_series(1, {N}) g;"""),
    ("metrics.daily_totals", set(), """
CREATE TABLE metrics.daily_totals (day date, orders int, revenue numeric);"""),
    ("metrics.page_views", set(), f"""
CREATE TABLE metrics.page_views (path text, views int);
INSERT INTO metrics.page_views SELECT '/products/' || g, g FROM generate_series(1, {N}) g;"""),
    ("ref.units", set(), """
CREATE TABLE ref.units (code text, name text);
INSERT INTO ref.units VALUES ('kg', 'kilogram'), ('ml', 'millilitre');"""),
    ("ref.tax_rates", set(), """
CREATE TABLE ref.tax_rates (country_code text, rate numeric);"""),
    ("ref.holidays", set(), """
CREATE TABLE ref.holidays (day date, title text);
INSERT INTO ref.holidays VALUES ('2024-12-25', 'Christmas Day');"""),
    ("shop.warehouses", set(), """
CREATE TABLE shop.warehouses (id int, code text, name text, region text);
INSERT INTO shop.warehouses VALUES (1, 'W1', 'North', 'EU');"""),
    ("shop.inventory", set(), """
CREATE TABLE shop.inventory (sku text, qty int);"""),
    ("content.articles", set(), f"""
CREATE TABLE content.articles (slug text, title text, body_html text);
INSERT INTO content.articles SELECT 'post-' || g, 'Ten ways to water plants',
  '<p>Water them in the morning.</p>' FROM generate_series(1, {N}) g;"""),
    ("ops.job_runs", set(), f"""
CREATE TABLE ops.job_runs (id int, job text, status text, error_message text);
INSERT INTO ops.job_runs SELECT g, 'nightly', 'failed', 'connection reset by peer'
FROM generate_series(1, {N}) g;"""),
    ("ops.cron_schedules", set(), """
CREATE TABLE ops.cron_schedules (expr text, job text);
INSERT INTO ops.cron_schedules VALUES ('0 3 * * *', 'nightly');"""),
    ("app.translations", set(), """
CREATE TABLE app.translations (key text, locale text, text text);
INSERT INTO app.translations VALUES ('cart.empty', 'de', 'Ihr Warenkorb ist leer');"""),
    ("ref.airports", set(), """
CREATE TABLE ref.airports (iata char(3), city text);
INSERT INTO ref.airports VALUES ('BER', 'Berlin'), ('CDG', 'Paris');"""),
    ("shop.prices", set(), """
CREATE TABLE shop.prices (sku text, currency text, amount numeric);"""),
    ("infra.build_artifacts", set(), f"""
CREATE TABLE infra.build_artifacts (sha text, version text);
INSERT INTO infra.build_artifacts SELECT md5(g::text), '1.' || g || '.0'
FROM generate_series(1, {N}) g;"""),
    ("ref.timezones", set(), """
CREATE TABLE ref.timezones (tz text, utc_offset text);
INSERT INTO ref.timezones VALUES ('Europe/Berlin', '+01:00'), ('America/New_York', '-05:00');"""),
    ("shop.books", set(), """
CREATE TABLE shop.books (isbn text, title text);
INSERT INTO shop.books VALUES ('978-3-16-148410-0', 'A Book'), ('978-0-306-40615-7', 'B');"""),
    ("shop.barcodes", set(), """
CREATE TABLE shop.barcodes (ean13 text, sku text);
INSERT INTO shop.barcodes VALUES ('4006381333931', 'a'), ('5901234123457', 'b'),
  ('9780201379624', 'c'), ('4012345678901', 'd');"""),
    ("ref.phone_prefixes", set(), """
CREATE TABLE ref.phone_prefixes (country text, prefix text);
INSERT INTO ref.phone_prefixes VALUES ('DE', '+49'), ('FR', '+33');"""),
    ("metrics.latency", set(), f"""
CREATE TABLE metrics.latency (ts timestamptz, p50 float8, p99 float8, host_id int);
INSERT INTO metrics.latency SELECT now(), 1.5, 9.9, g FROM generate_series(1, {N}) g;"""),
]

SCHEMAS = sorted({t.split(".")[0] for t, _, _ in CORPUS})


class CoverageBase(IntegrationTest):
    """Helpers shared by the coverage test classes."""

    DB = None

    def sql(self, text, db=None):
        return self.cluster.psql(text, dbname=db or self.DB)

    def config(self, rules="", extra="", db=None, name="retentiond.conf"):
        if not rules:
            rules = """{ name = "placeholder"; policy = "p"; table = "public.placeholder";
    age_column = "created_at"; retain = "1d"; enabled = false; }"""
        return write_config(os.path.join(self.tmp, name), f"""
database: {{ conninfo = "{self.cluster.conninfo(db or self.DB)}"; lock_timeout = "300ms"; }};
{extra}
rules = (
{rules}
);
""")

    def coverage(self, conf, *args, verbose=False):
        cmd = (["-v"] if verbose else []) + ["coverage"] + list(args)
        return self.run_rd(cmd, config=conf)

    def coverage_json(self, conf, code=None):
        p = self.coverage(conf, "--format", "json")
        if code is not None:
            self.assertExit(p, code)
        return json.loads(p.stdout)


class CorpusTest(CoverageBase):
    DB = "corpus"

    @classmethod
    def setUpCluster(cls):
        cls.cluster.createdb(cls.DB)
        sql = "".join(f"CREATE SCHEMA {s};\n" for s in SCHEMAS)
        sql += "CREATE TABLE public.placeholder (id int, created_at timestamptz);\n"
        sql += "\n".join(ddl for _, _, ddl in CORPUS)
        cls.cluster.psql(sql + "\nANALYZE;", dbname=cls.DB)

    def test_corpus_precision_and_recall(self):
        self.assertGreaterEqual(len(CORPUS), 60)
        conf = self.config("""{ name = "customers"; policy = "p"; table = "crm.customers";
    age_column = "created_at"; retain = "3y"; subject = "customer"; subject_column = "id"; }""")
        out = self.coverage_json(conf, 1)
        found = {t["table"]: {c["column"]: c for c in t["columns"]} for t in out["tables"]}
        self.assertEqual(out["tables_scanned"], len(CORPUS) + 1)

        missed, decoys_flagged = [], []
        n_decoys = sum(1 for _, cols, _ in CORPUS if not cols)
        tp_all = fp_all = fn_all = 0
        print(f"\n{'table':28} {'kind':8} {'prec':>5} {'recall':>6}  found")
        for table, expected, _ in CORPUS:
            got = set(found.get(table, {}))
            tp, fp, fn = len(got & expected), len(got - expected), len(expected - got)
            tp_all, fp_all, fn_all = tp_all + tp, fp_all + fp, fn_all + fn
            prec = tp / (tp + fp) if tp + fp else 1.0
            rec = tp / (tp + fn) if tp + fn else 1.0
            detail = "; ".join(f"{c}: {', '.join(found[table][c]['reasons'])} "
                               f"({found[table][c]['confidence']})" for c in sorted(got))
            print(f"{table:28} {'personal' if expected else 'decoy':8} "
                  f"{prec:5.2f} {rec:6.2f}  {detail}")
            if expected and not got:
                missed.append(table)
            if not expected and got:
                decoys_flagged.append(table)
        print(f"columns: precision {tp_all / (tp_all + fp_all):.2f}, "
              f"recall {tp_all / (tp_all + fn_all):.2f}; decoys flagged "
              f"{len(decoys_flagged)} of {n_decoys}: {decoys_flagged}")
        self.assertEqual(missed, [], "personal tables not found")
        self.assertLessEqual(len(decoys_flagged) * 10, n_decoys,
                             f"more than one decoy in ten flagged: {decoys_flagged}")

    def test_reasons_and_confidence(self):
        conf = self.config()
        out = self.coverage_json(conf, 1)
        cols = {(t["table"], c["column"]): c for t in out["tables"] for c in t["columns"]}
        self.assertIn("name e-mail", cols[("crm.customers", "email")]["reasons"])
        self.assertIn("values 100% e-mail", cols[("crm.customers", "email")]["reasons"])
        self.assertEqual(cols[("app.login_events", "origin")]["reasons"], ["type inet"])
        self.assertEqual(cols[("misc.t_0001", "c1")]["reasons"], ["values 100% e-mail"])
        self.assertEqual(cols[("billing.payments", "x")]["reasons"], ["values 100% card number"])
        self.assertEqual(cols[("billing.payouts", "ref")]["reasons"], ["values 100% IBAN"])
        self.assertEqual(cols[("misc.contact_data", "x")]["reasons"], ["values 100% phone"])
        self.assertEqual(cols[("app.api_log", "line")]["reasons"], ["values 100% IP address"])
        self.assertEqual(cols[("support.tickets", "notes")]["confidence"], "medium")
        self.assertEqual(cols[("crm.customers", "email")]["confidence"], "high")
        # without a rule naming the subject, nothing refers to a customer
        self.assertNotIn(("crm.orders", "customer_id"), cols)

    def test_sample_rows_zero_reads_names_and_types_only(self):
        conf = self.config(extra="coverage: { sample_rows = 0; };")
        out = self.coverage_json(conf, 1)
        tables = {t["table"] for t in out["tables"]}
        self.assertIn("crm.customers", tables)        # by name
        self.assertIn("app.login_events", tables)     # by type
        self.assertNotIn("misc.t_0001", tables)       # values only
        for t in out["tables"]:
            for c in t["columns"]:
                self.assertFalse(any(r.startswith("values") for r in c["reasons"]), c)


class SampleTest(CoverageBase):
    """How much a sample reads, and which locks it takes."""
    DB = "sample"

    @classmethod
    def setUpCluster(cls):
        cls.cluster.createdb(cls.DB)
        cls.cluster.psql("""
CREATE TABLE public.placeholder (id int, created_at timestamptz);
CREATE TABLE big (id int, k text);
INSERT INTO big SELECT g, 'b' || g || '@example.com' FROM generate_series(1, 50000) g;
CREATE TABLE small (id int, k text);
INSERT INTO small SELECT g, 's' || g || '@example.com' FROM generate_series(1, 300) g;
CREATE TABLE locked (id int, k text);
INSERT INTO locked SELECT g, 'l' || g || '@example.com' FROM generate_series(1, 50) g;
CREATE TABLE parted (id int, k text) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (20000);
CREATE TABLE parted_2 PARTITION OF parted FOR VALUES FROM (20000) TO (40000);
INSERT INTO parted SELECT g, 'p' || g || '@example.com' FROM generate_series(1, 39999) g;
ANALYZE;
""", dbname=cls.DB)

    def sampled(self, proc):
        return {m.group(1): int(m.group(2)) for m in re.finditer(
            r"coverage: (\S+): (\d+) rows? sampled", proc.stderr)}

    def test_never_more_than_sample_rows(self):
        conf = self.config(extra="coverage: { sample_rows = 200; };")
        p = self.coverage(conf, verbose=True)
        self.assertExit(p, 1)
        n = self.sampled(p)
        self.assertGreater(n["public.big"], 0)
        self.assertLessEqual(n["public.big"], 200)
        self.assertEqual(n["public.small"], 200)
        # a partitioned table is sampled through its parent, once
        self.assertGreater(n["public.parted"], 0)
        self.assertLessEqual(n["public.parted"], 200)
        self.assertNotIn("public.parted_1", n)
        self.assertOutput(p, r"^UNCOVERED public\.big: k \(values 100% e-mail; high\)", "stdout")

    def test_a_partitioned_table_sample_is_never_empty_by_chance(self):
        # the parent has no pages of its own: a small sample over many
        # partitions must still ask for enough of their pages
        self.sql("""
DO $$ BEGIN
  IF to_regclass('thin') IS NULL THEN
    CREATE TABLE thin (id int, k text) PARTITION BY RANGE (id);
    FOR i IN 0..7 LOOP
      EXECUTE format('CREATE TABLE thin_%s PARTITION OF thin FOR VALUES FROM (%s) TO (%s)',
                     i, i * 5000, (i + 1) * 5000);
    END LOOP;
    INSERT INTO thin SELECT g, 't' || g || '@example.com' FROM generate_series(0, 39999) g;
    ANALYZE thin;
  END IF;
END $$;
""")
        conf = self.config(extra="coverage: { sample_rows = 10; };")
        for _ in range(3):
            n = self.sampled(self.coverage(conf, verbose=True))
            self.assertGreater(n["public.thin"], 0)
            self.assertLessEqual(n["public.thin"], 10)

    def test_unreadable_tables_are_not_sampled_and_not_warned_about(self):
        self.sql("""
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cov_reader') THEN
    CREATE ROLE cov_reader LOGIN;
  END IF;
END $$;
GRANT SELECT ON small TO cov_reader;
CREATE TABLE IF NOT EXISTS hidden_people (id int, email text);
""")
        conf = write_config(os.path.join(self.tmp, "reader.conf"), f"""
database: {{ conninfo = "{self.cluster.conninfo(self.DB, 'cov_reader')}"; }};
rules = ( {{ name = "r"; policy = "p"; table = "small"; age_column = "id"; retain = "1d";
  enabled = false; }} );
""")
        p = self.coverage(conf)
        self.assertExit(p, 1)
        self.assertNoOutput(p, r"warning")
        self.assertOutput(p, r"info: coverage: \d+ tables not fully sampled: no SELECT privilege")
        self.assertOutput(p, r"^UNCOVERED public\.small: k \(values 100% e-mail; high\)", "stdout")
        # by name, without reading it
        self.assertOutput(p, r"^UNCOVERED public\.hidden_people: email \(name e-mail; high\)",
                          "stdout")

    def test_a_hostile_table_name_cannot_forge_a_line(self):
        self.sql('CREATE TABLE IF NOT EXISTS "x\ncovered   public.fake" (email text);')
        p = self.coverage(self.config())
        self.assertExit(p, 1)
        self.assertNoOutput(p, r"^covered   public\.fake", "stdout")
        self.assertOutput(p, r"^UNCOVERED public\.x\\x0acovered   public\.fake: email ", "stdout")
        p = self.run_rd(["check"], config=self.config())
        self.assertNoOutput(p, r"^covered   public\.fake")

    def hold_lock(self, mode):
        """A psql session holding MODE on table locked until it is closed."""
        c = self.cluster
        proc = subprocess.Popen(
            [c._bin("psql"), "-X", "-q", "-h", c.host, "-p", str(c.port),
             "-U", "postgres", "-d", self.DB],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, text=True, env=clean_env())
        self.addCleanup(lambda: (proc.stdin.close(), proc.wait(timeout=30)))
        proc.stdin.write(f"BEGIN; LOCK TABLE locked IN {mode} MODE;\n")
        proc.stdin.flush()
        for _ in range(200):
            if self.sql("SELECT count(*) FROM pg_locks WHERE granted AND "
                        f"mode = '{mode.title().replace(' ', '')}Lock' AND "
                        "relation = 'locked'::regclass") == "1":
                return
            time.sleep(0.05)
        self.fail(f"the {mode} lock was never taken")

    def test_exclusive_lock_skips_the_table_with_a_warning(self):
        self.hold_lock("ACCESS EXCLUSIVE")
        conf = self.config()
        start = time.monotonic()
        p = self.coverage(conf)
        self.assertLess(time.monotonic() - start, 20)
        self.assertExit(p, 1)
        self.assertOutput(p, r"warning: coverage: table public\.locked skipped: .*lock timeout")
        self.assertOutput(p, r"^UNCOVERED public\.big:", "stdout")
        self.assertOutput(p, r"1 skipped", "stdout")
        self.assertNoOutput(p, r"public\.locked", "stdout")

    def test_weaker_locks_do_not_stop_the_sample(self):
        # EXCLUSIVE conflicts with every lock but ACCESS SHARE: coverage
        # reading the table proves it takes nothing stronger
        self.hold_lock("EXCLUSIVE")
        conf = self.config()
        p = self.coverage(conf)
        self.assertExit(p, 1)
        self.assertNoOutput(p, r"skipped")
        self.assertOutput(p, r"^UNCOVERED public\.locked: k \(values 100% e-mail; high\)",
                          "stdout")


COVERED_SQL = """
CREATE TABLE people (id int PRIMARY KEY, email text,
  created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON people (created_at);
CREATE TABLE visits (id int PRIMARY KEY,
  person_id int REFERENCES people ON DELETE CASCADE, ip inet);
CREATE TABLE visit_notes (visit_id int REFERENCES visits ON DELETE CASCADE,
  user_agent text);
CREATE TABLE logins (id int, person_id int REFERENCES people, client_ip inet);
CREATE TABLE profiles (id int, email text, phone text,
  created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON profiles (created_at);
CREATE TABLE countries_ref (name text, contact_email text);
CREATE TABLE staff (id int, email text, dob date);
CREATE TABLE archive_2023 (email text);
CREATE TABLE archive_2024 (email text);
CREATE TABLE paused (email text, created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON paused (created_at);
CREATE TABLE plain (id int, qty int);
"""

COVERED_RULES = """
{ name = "people-rule"; policy = "p"; table = "people"; age_column = "created_at";
  retain = "1y"; },
{ name = "profiles-deid"; policy = "p"; table = "profiles"; age_column = "created_at";
  retain = "1y"; action = "deidentify"; deidentify = { email = "null"; }; },
{ name = "paused-rule"; policy = "p"; table = "paused"; age_column = "created_at";
  retain = "1y"; enabled = false; }
"""

COVERED_IGNORE = """coverage: { ignore = (
  { match = "public.countries_ref"; reason = "reference data"; },
  { match = "public.staff.email"; reason = "work addresses, kept while employed"; },
  { match = "public.archive_*"; reason = "dropped by hand each January"; }
); };"""

UNCOVERED = {"public.logins", "public.profiles", "public.staff", "public.paused"}


class CoveredByTest(CoverageBase):
    DB = "covered"

    @classmethod
    def setUpCluster(cls):
        cls.cluster.createdb(cls.DB)
        cls.cluster.psql(COVERED_SQL, dbname=cls.DB)

    def conf(self):
        return self.config(COVERED_RULES, COVERED_IGNORE)

    def test_each_kind_of_cover(self):
        out = self.coverage_json(self.conf(), 1)
        by = {(t["table"], c["column"]): c["covered_by"]
              for t in out["tables"] for c in t["columns"]}
        self.assertEqual(by[("public.people", "email")], "rule people-rule")
        # ON DELETE CASCADE, at any depth
        self.assertEqual(by[("public.visits", "ip")], "cascade from rule people-rule")
        self.assertEqual(by[("public.visit_notes", "user_agent")],
                         "cascade from rule people-rule")
        # a reference without CASCADE does not go with the rows
        self.assertIsNone(by[("public.logins", "client_ip")])
        # de-identify: exactly the columns it names
        self.assertEqual(by[("public.profiles", "email")], "rule profiles-deid")
        self.assertIsNone(by[("public.profiles", "phone")])
        # ignore: the table, one column, a wildcard
        self.assertEqual(by[("public.countries_ref", "contact_email")], "ignore")
        self.assertEqual(by[("public.staff", "email")], "ignore")
        self.assertIsNone(by[("public.staff", "dob")])
        self.assertEqual(by[("public.archive_2023", "email")], "ignore")
        self.assertEqual(by[("public.archive_2024", "email")], "ignore")
        # a disabled rule covers nothing
        self.assertIsNone(by[("public.paused", "email")])

    def test_json_object(self):
        out = self.coverage_json(self.conf(), 1)
        self.assertEqual(set(out), {"tables_scanned", "personal_tables", "uncovered_tables",
                                    "uncovered_columns", "tables"})
        self.assertEqual(out["tables_scanned"], 11)
        self.assertEqual(out["personal_tables"], 10)
        self.assertEqual(out["uncovered_tables"], len(UNCOVERED))
        self.assertEqual(out["uncovered_columns"], 4)
        self.assertEqual({t["table"] for t in out["tables"] if not t["covered"]}, UNCOVERED)
        for t in out["tables"]:
            self.assertEqual(set(t), {"table", "covered", "columns"})
            for c in t["columns"]:
                self.assertEqual(set(c), {"column", "reasons", "confidence", "covered_by"})
                self.assertIn(c["confidence"], ("high", "medium"))
                self.assertTrue(c["reasons"])
        staff = next(t for t in out["tables"] if t["table"] == "public.staff")
        self.assertEqual(staff["columns"], [
            {"column": "email", "reasons": ["name e-mail"], "confidence": "high",
             "covered_by": "ignore"},
            {"column": "dob", "reasons": ["name birth date"], "confidence": "high",
             "covered_by": None}])

    def test_text_output_and_file(self):
        p = self.coverage(self.conf())
        self.assertExit(p, 1)
        lines = p.stdout.splitlines()
        self.assertIn("UNCOVERED public.staff: email (name e-mail; high; ignore), "
                      "dob (name birth date; high)", lines)
        self.assertIn("covered   public.people: email (name e-mail; high; rule people-rule)",
                      lines)
        self.assertEqual(lines[-1], "11 tables scanned, 10 with personal data, "
                                    "4 uncovered (4 columns)")
        out = os.path.join(self.tmp, "cov.json")
        p = self.coverage(self.conf(), "--format", "json", "--output", out)
        self.assertExit(p, 1)
        self.assertEqual(p.stdout, "")
        with open(out) as f:
            self.assertEqual(json.load(f)["uncovered_columns"], 4)

    def test_exit_0_when_everything_is_covered(self):
        conf = self.config(COVERED_RULES, """coverage: { ignore = (
  { match = "*.*"; reason = "test: everything is reference data"; } ); };""")
        out = self.coverage_json(conf, 0)
        self.assertEqual(out["uncovered_columns"], 0)
        self.assertTrue(all(t["covered"] for t in out["tables"]))
        self.assertExit(self.coverage(conf), 0)

    def test_exit_2_on_config_and_usage_errors(self):
        conf = self.config(COVERED_RULES, """coverage: {
  ignore = ( { match = "public.staff"; } );
};""")
        p = self.coverage(conf)
        self.assertExit(p, 2)
        self.assertOutput(p, r"retentiond\.conf:4: .*\"ignore\" entry has no \"reason\"")
        self.assertExit(self.coverage(self.conf(), "--format", "xml"), 2)
        self.assertExit(self.coverage(self.conf(), "extra"), 2)

    def test_exit_1_when_the_database_is_unreachable(self):
        conf = write_config(os.path.join(self.tmp, "down.conf"), """
database: { conninfo = "host=/nonexistent dbname=x connect_timeout=2"; };
rules = ( { name = "r"; policy = "p"; table = "t"; age_column = "c"; retain = "1d"; } );
""")
        self.assertExit(self.coverage(conf), 1)

    def test_check_warns_once_per_uncovered_table(self):
        p = self.run_rd(["check"], config=self.conf())
        self.assertExit(p, 0)
        warned = re.findall(r"warning: table (\S+) holds personal data that no rule covers",
                            p.stderr)
        self.assertEqual(sorted(warned), sorted(UNCOVERED), p.stderr)
        self.assertOutput(p, r"table public\.profiles holds personal data that no rule "
                             r"covers: phone \(name phone; high\)")
        # covered columns are not named in the warning
        self.assertNoOutput(p, r"public\.profiles .*email")

    def test_check_quiet_when_covered(self):
        conf = self.config(COVERED_RULES, """coverage: { ignore = (
  { match = "*.*"; reason = "test"; } ); };""")
        p = self.run_rd(["check"], config=conf)
        self.assertExit(p, 0)
        self.assertNoOutput(p, r"no rule covers")


SECRETS = {
    "email": "zq7leak.person@secret-example.org",
    "phone": "+49 30 9876543",
    "card": card(4242),
    "iban": iban(4242),
    "ip": "203.0.113.77",
}


class CycleTest(CoverageBase):
    """The Coverage section of each cycle's report, the metric, and that no
    sampled value reaches any of them, nor the output and logs."""
    DB = "cycle"

    @classmethod
    def setUpCluster(cls):
        cls.cluster.createdb(cls.DB)
        s = SECRETS
        cls.cluster.psql(COVERED_SQL + f"""
CREATE TABLE vault (id int, a text, b text, c text, d jsonb, e text);
INSERT INTO vault SELECT g, '{s["email"]}', '{s["phone"]}', '{s["card"]}',
  jsonb_build_object('x', '{s["iban"]}'), 'seen from {s["ip"]}'
FROM generate_series(1, 20) g;
INSERT INTO people SELECT g, '{s["email"]}', now() - interval '1 day'
FROM generate_series(1, 5) g;
""", dbname=cls.DB)

    def cycle_conf(self, extra=""):
        self.reports = os.path.join(self.tmp, "reports")
        self.metrics = os.path.join(self.tmp, "metrics.prom")
        return self.config(COVERED_RULES, COVERED_IGNORE + f"""
report: {{ directory = "{self.reports}"; formats = [ "html", "csv", "json", "text" ]; }};
metrics_file = "{self.metrics}";
{extra}""")

    def run_cycle(self, conf):
        self.assertExit(self.run_rd(["init-db"], config=conf), 0)
        p = self.run_rd(["-v", "run"], config=conf)
        self.assertExit(p, 0)
        files = {}
        for name in os.listdir(self.reports):
            with open(os.path.join(self.reports, name), encoding="utf-8", newline="") as f:
                files[name.rsplit(".", 1)[1]] = f.read()
        with open(self.metrics) as f:
            metrics = f.read()
        return p, files, metrics

    def test_report_section_in_every_format_and_the_metric(self):
        p, files, metrics = self.run_cycle(self.cycle_conf())
        self.assertEqual(set(files), {"html", "csv", "json", "txt"})
        uncovered = UNCOVERED | {"public.vault"}
        n_cols = 4 + 5

        # json: the object of `coverage --format json`
        cov = json.loads(files["json"])["coverage"]
        self.assertEqual(cov["uncovered_columns"], n_cols)
        self.assertEqual({t["table"] for t in cov["tables"] if not t["covered"]}, uncovered)

        # text
        self.assertIn("\nCOVERAGE\n", files["txt"])
        for t in uncovered:
            self.assertRegex(files["txt"], rf"(?m)^  UNCOVERED {re.escape(t)}: ")
        self.assertIn(f"{len(uncovered)} uncovered ({n_cols} columns)", files["txt"])

        # csv: a second block with its own header
        blocks = files["csv"].split("\r\n\r\n")
        self.assertEqual(len(blocks), 2)
        rows = list(csv.DictReader(io.StringIO(blocks[1])))
        self.assertEqual({r["coverage_table"] for r in rows}, uncovered)
        self.assertTrue(all(r["uncovered_columns_total"] == str(n_cols) for r in rows))

        # html
        self.assertIn("<h2>Coverage</h2>", files["html"])
        for t in uncovered:
            self.assertIn(f"<tr><td>{t}</td>", files["html"])

        self.assertRegex(metrics, r"(?m)^# TYPE retentiond_uncovered_columns gauge$")
        self.assertRegex(metrics, rf"(?m)^retentiond_uncovered_columns {n_cols}$")

    def test_metric_is_zero_when_covered(self):
        conf = self.cycle_conf()
        with open(conf) as f:
            text = f.read()
        text = text.replace('{ match = "public.countries_ref";',
                            '{ match = "*.*"; reason = "all"; },\n  { match = "public.countries_ref";')
        write_config(conf, text)
        _, files, metrics = self.run_cycle(conf)
        self.assertRegex(metrics, r"(?m)^retentiond_uncovered_columns 0$")
        self.assertEqual(json.loads(files["json"])["coverage"]["uncovered_columns"], 0)

    def test_no_sampled_value_leaks_anywhere(self):
        smtp = SmtpServer(starttls=True, auth=("retentiond", "smtp-pw"))
        smtp.start()
        self.addCleanup(smtp.stop)
        pw = write_secret(os.path.join(self.tmp, "smtp.password"), "smtp-pw")
        conf = self.cycle_conf(f"""mail: {{ url = "{smtp.url}"; username = "retentiond";
  password_file = "{pw}"; ca_file = "{smtp.cafile}"; from = "r@example.com";
  to = [ "dpo@example.com" ]; send = "always"; }};""")
        texts = []
        for args in (["-v", "coverage"], ["-v", "coverage", "--format", "json"],
                     ["-v", "check"]):
            p = self.run_rd(args, config=conf)
            self.assertIn(p.returncode, (0, 1))
            texts += [p.stdout, p.stderr]
        self.assertIn("public.vault", texts[0])   # it was found, by values
        p, files, metrics = self.run_cycle(conf)
        texts += [p.stdout, p.stderr, metrics] + list(files.values())
        texts.append(self.cluster.server_log())
        self.assertEqual(len(files), 4)
        mails = smtp.wait_for_messages(1)
        self.assertEqual(len(mails), 1)
        for m in mails:   # raw, and decoded (quoted-printable could split a value)
            texts.append(m.raw.decode("utf-8", "replace"))
            texts += [m.get_body(preferencelist=(kind,)).get_content()
                      for kind in ("plain", "html")]
        # the mail has the section, so the grep below looks where it matters
        self.assertIn("UNCOVERED public.vault", texts[-2])     # text part
        self.assertIn("<td>public.vault</td>", texts[-1])     # html part
        everything = "\n".join(texts)
        needles = list(SECRETS.values()) + [
            "zq7leak", "secret-example", "9876543", SECRETS["card"][:8],
            SECRETS["iban"][4:12], "203.0.113"]
        for needle in needles:
            self.assertNotIn(needle, everything, f"sampled value {needle!r} leaked")
        # the database keeps none either: nothing coverage wrote
        dump = self.sql("SELECT string_agg(t::text, ' ') FROM retention.runs t")
        for needle in needles:
            self.assertNotIn(needle, dump)


if __name__ == "__main__":
    main()
