"""retentiond against a Citus coordinator (distributed PostgreSQL, issue 21).

A coordinator and two workers on 127.0.0.1 (harness.CitusCluster; Citus
13.2.2 built from its tarball by scripts/citus-build). retentiond connects
to the coordinator and keeps its own schema there; the rule's tables are
distributed (hash, by the subject), reference or time-partitioned
distributed tables. The same promises as on one server:

  - expiry removes exactly the expired, unheld rows; the audit rows add up
    to the rows removed; held rows are untouched; `verify` exits 0; no
    Citus warning ("cannot push down ...") reaches the log;
  - every de-identify method gives its documented value (hash: HMAC-SHA256
    under the pseudonym key); truncate_ip on a text column, which needs a
    coordinator-only helper, fails the rule by name (exit 1), changing
    nothing;
  - a reference table with a subject honours holds;
  - a time-partitioned distributed table: the partitions wholly expired
    are dropped, the straddling one's expired rows deleted;
  - erasure follows the co-located tables (orders of a customer), audited
    as "erasure"; a held subject waits;
  - access exports the subject's rows of distributed tables;
  - `check` names each rule's Citus table kind.
"""

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import write_config, write_secret  # noqa: E402

KEY = b"citus-test-pseudonym-key-0123456789"


class CitusTest(harness.IntegrationTest):

    USE_CLUSTER = False
    dbs = 0

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cluster = harness.CitusCluster(name=cls.__name__.lower()[:8])
        cls.addClassCleanup(cls.cluster.stop)
        cls.cluster.start()

    def setUp(self):
        super().setUp()
        CitusTest.dbs += 1
        self.db = f"citus{CitusTest.dbs}"
        self.cluster.createdb(self.db)
        self.keyfile = write_secret(os.path.join(self.tmp, "pseudonym.key"),
                                    KEY.decode())
        self.reqdir = os.path.join(self.tmp, "requests")
        os.mkdir(self.reqdir, 0o700)

    def sql(self, text):
        return self.cluster.psql(text, dbname=self.db)

    def config(self, rules, extra=""):
        text = f"""
database: {{
  conninfo = "{self.cluster.conninfo(self.db)}";
}};
pseudonym_key_file = "{self.keyfile}";
subjects = {{
  customer = {{ table = "public.customers"; key = "id"; }};
}};
requests: {{ directory = "{self.reqdir}"; }};
{extra}
rules = (
{rules}
);
"""
        conf = write_config(self.tmp, text)
        proc = self.rd(conf, "init-db")
        self.assertExit(proc, 0)
        self.assertClean(proc)
        return conf

    def rd(self, conf, *args, **kw):
        return self.run_rd(list(args), config=conf, **kw)

    def audit_rows(self, rule=None, action=None):
        cond = ["true"]
        if rule:
            cond.append(f"rule = '{rule}'")
        if action:
            cond.append(f"action = '{action}'")
        return int(self.sql("SELECT coalesce(sum(rows), 0) FROM retention.actions"
                            f" WHERE {' AND '.join(cond)}"))

    def assertClean(self, proc):
        """No Citus planner complaint in what retentiond logged."""
        self.assertNoOutput(proc, r"cannot push down|not supported|WARNING")

    def customers(self, n=10):
        self.sql(f"""
SET citus.shard_count = 8;
CREATE TABLE customers (id bigint PRIMARY KEY, email text, full_name text,
                        closed_at timestamptz, deidentified_at timestamptz);
SELECT create_distributed_table('customers', 'id');
INSERT INTO customers SELECT g, 'c' || g || '@example.com', 'Name ' || g,
  CASE WHEN g % 2 = 0 THEN now() - interval '400 days' END, NULL
FROM generate_series(1, {n}) g;
""")

    # --- expiry -------------------------------------------------------------

    EVENTS_RULE = """{
  name = "events"; policy = "events are kept 2 days";
  table = "public.events"; age_column = "created_at"; retain = "2 days";
  subject = "customer"; subject_column = "customer_id";
  batch_size = 300; max_fraction = 1.0;
}"""

    def seed_events(self, index=True):
        self.sql(f"""
SET citus.shard_count = 8;
CREATE TABLE events (customer_id bigint NOT NULL, id bigint NOT NULL,
                     created_at timestamptz NOT NULL, payload text,
                     PRIMARY KEY (customer_id, id));
{"CREATE INDEX ON events (created_at);" if index else ""}
SELECT create_distributed_table('events', 'customer_id');
INSERT INTO events SELECT g % 10, g, now() - interval '10 days' - g * interval '1 minute', 'old'
FROM generate_series(1, 2000) g;
-- many rows of one age: no batch depends on ages being distinct
INSERT INTO events SELECT g % 10, 100000 + g, now() - interval '20 days', 'same'
FROM generate_series(1, 700) g;
INSERT INTO events SELECT g % 10, 200000 + g, now() - interval '1 hour' - g * interval '1 second', 'new'
FROM generate_series(1, 600) g;
""")

    def check_events_run(self, index):
        self.seed_events(index=index)
        conf = self.config(self.EVENTS_RULE)
        self.assertExit(self.rd(conf, "hold", "add", "customer:7", "--reason", "court"), 0)
        held_before = self.sql("SELECT count(*) FROM events WHERE customer_id = 7")
        proc = self.rd(conf, "-v", "run")
        self.assertExit(proc, 0)
        self.assertClean(proc)
        expired_unheld = 2700 - 270
        self.assertEqual(self.sql("SELECT count(*) FROM events"), str(3300 - expired_unheld))
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE customer_id = 7"),
                         held_before, "held rows are untouched")
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE payload = 'new'"), "600")
        self.assertEqual(self.audit_rows("events"), expired_unheld)
        self.assertGreater(int(self.sql("SELECT count(*) FROM retention.actions"
                                        " WHERE rule = 'events'")), 1,
                           "batches, not one statement")
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertClean(proc)
        self.assertEqual(self.audit_rows("events"), expired_unheld)
        self.assertExit(self.rd(conf, "verify"), 0)
        # the report explains the rows left (held) with the same queries
        proc = self.rd(conf, "report")
        self.assertExit(proc, 0)
        self.assertClean(proc)

    def test_expiry_on_a_distributed_table_with_an_age_index(self):
        self.check_events_run(index=True)

    def test_expiry_on_a_distributed_table_without_an_age_index(self):
        self.check_events_run(index=False)

    def test_retentiond_schema_lives_on_the_coordinator_only(self):
        self.sql("CREATE TABLE notes (id int PRIMARY KEY, at timestamptz);")
        self.config("""{ name = "notes"; policy = "p"; table = "notes"; age_column = "at";
  retain = "1 year"; }""")
        self.assertEqual(self.sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'retention'"),
                         "1")
        for w in self.cluster.workers:
            self.assertEqual(w.psql("SELECT count(*) FROM pg_namespace"
                                    " WHERE nspname = 'retention'", dbname=self.db), "0")

    def test_citus_local_table_with_a_subject_honours_holds(self):
        self.sql("""
CREATE TABLE sessions (id int PRIMARY KEY, ended_at timestamptz);
SELECT citus_add_local_table_to_metadata('sessions');
INSERT INTO sessions SELECT g, now() - interval '3 years' FROM generate_series(1, 20) g;
""")
        conf = self.config("""{
  name = "sessions"; policy = "p"; table = "sessions"; age_column = "ended_at";
  retain = "1 year"; subject = "customer"; subject_column = "id"; max_fraction = 1.0;
}""")
        self.assertExit(self.rd(conf, "hold", "add", "customer:5", "--reason", "r"), 0)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertClean(proc)
        self.assertEqual(self.sql("SELECT string_agg(id::text, ',') FROM sessions"), "5")
        self.assertEqual(self.audit_rows(), 19)
        self.assertExit(self.rd(conf, "verify"), 0)

    @harness.real_clock("PostgreSQL's lock_timeout never fires under libfaketime")
    def test_a_locked_row_is_waited_for_then_left_for_the_next_cycle(self):
        """No SKIP LOCKED on Citus: a batch meeting a row another session
        holds waits lock_timeout, is retried by primary key, and then the
        rule stops ("lock timeout"); what was done is audited, the next
        cycle finishes."""
        self.seed_events()
        conf = self.config(self.EVENTS_RULE.replace(
            "batch_size = 300;", "batch_size = 5000;"))
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(text.replace("database: {", 'database: {\n  lock_timeout = "300ms";', 1))
        locker = subprocess.Popen(
            [self.cluster.coordinator._bin("psql"), "-X", "-q", "-At", "-h", self.cluster.host,
             "-p", str(self.cluster.port), "-U", "postgres", "-d", self.db],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=harness.clean_env())
        self.addCleanup(lambda: (locker.poll() is None) and (locker.kill(), locker.wait()))
        locker.stdin.write("BEGIN;\nSELECT 1 FROM events WHERE customer_id = 3 AND id = 3"
                           " FOR UPDATE;\n\\echo locked\n")
        locker.stdin.flush()
        for line in locker.stdout:
            if line.strip() == "locked":
                break
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, r'rule "events".*lock timeout, the rest is left for the '
                          r'next cycle', stream="stdout")
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE id = 3"), "1")
        removed = 3300 - int(self.sql("SELECT count(*) FROM events"))
        self.assertEqual(self.audit_rows("events"), removed)
        locker.stdin.write("ROLLBACK;\n")
        locker.stdin.close()
        locker.wait(timeout=30)
        locker.stdout.close()
        locker.stderr.close()
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE id = 3"), "0")
        self.assertEqual(self.audit_rows("events"), 2700, "no hold here: every expired row")
        self.assertExit(self.rd(conf, "verify"), 0)

    def test_table_size_comes_from_the_shards_statistics(self):
        """The coordinator's pg_class knows nothing of a distributed
        table's rows: its size (the max_fraction guard's denominator, the
        report's table_rows) is the shards' reltuples, summed, as a single
        server's is its own; an exact count where a shard has none."""
        self.seed_events()
        conf = self.config(self.EVENTS_RULE)
        set_shards = ("SELECT count(*) FROM run_command_on_shards('events', "
                      "$$UPDATE pg_class SET reltuples = {} "
                      "WHERE oid = '%s'::regclass$$) WHERE success")
        self.assertEqual(self.sql(set_shards.format(50000)), "8")
        proc = self.rd(conf, "plan")
        self.assertExit(proc, 0)
        self.assertClean(proc)
        self.assertOutput(proc, r"would delete 2700 of 400000 rows", stream="stdout")
        # one shard never analysed: the statistics say too little, count
        one = self.sql("SELECT shard_name('events'::regclass, min(shardid))"
                       " FROM pg_dist_shard WHERE logicalrelid = 'events'::regclass")
        self.assertEqual(self.sql(
            "SELECT count(*) FROM run_command_on_shards('events', "
            "$$UPDATE pg_class SET reltuples = -1 WHERE oid = '%1$s'::regclass"
            f" AND '%1$s' = '{one}'$$) WHERE result = 'UPDATE 1'"), "1")
        proc = self.rd(conf, "plan")
        self.assertExit(proc, 0)
        self.assertOutput(proc, r"would delete 2700 of 3300 rows", stream="stdout")

    def test_batches_keep_a_pool_of_connections_to_the_workers(self):
        """Citus keeps one connection per worker after a transaction and
        would open the rest of its pool again for every batch (measured in
        bench/README.md, "Citus"); for its batches retentiond's session
        sets a pool of 4 per worker and keeps all of it between
        transactions, and for the count after them, then gives Citus its
        own settings back. The check whether any row is due, tiny on each
        shard, goes over one connection per worker."""
        self.seed_events()
        self.sql(f"ALTER DATABASE {self.db} SET log_statement = 'all'")
        conf = self.config(self.EVENTS_RULE)
        mark = len(self.cluster.coordinator.server_log())
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertClean(proc)
        log = self.cluster.coordinator.server_log()[mark:]
        setter = "set_config('citus.max_adaptive_executor_pool_size'"
        one = log.find(setter)
        due = log.find("LIMIT", one)
        pool = log.find(setter, one + 1)
        first = log.find('DELETE FROM "public"."events"')
        last = log.rfind('DELETE FROM "public"."events"')
        after = log.find("WITH due AS", last)
        reset = log.find("RESET citus.max_cached_conns_per_worker", last)
        self.assertGreaterEqual(first, 0, "no batch in the log")
        self.assertTrue(0 <= one < due < pool < first,
                        "one connection per worker for the check, then the pool")
        self.assertTrue(last < after < reset, "and reset after them and the count after them")
        self.assertIn("set_config('citus.max_cached_conns_per_worker'", log[pool:first])
        self.assertEqual(log.count(setter), 2, "set twice, reset once")
        self.assertEqual(log.count("RESET citus.max_cached_conns_per_worker"), 1)
        # the same queries in a session of their own: 1 and 4, or an
        # admin's choice
        q = ("SELECT current_setting('citus.max_adaptive_executor_pool_size'),"
             " current_setting('citus.max_cached_conns_per_worker')")
        stmts = re.findall(r"(?:statement|execute [^:]*): (SELECT pg_catalog.set_config"
                           r"\('citus.max_adaptive_executor_pool_size'.*)", log)
        self.assertEqual(len(stmts), 2)
        self.assertEqual(self.sql(stmts[0] + ";" + q).splitlines()[-1], "1|1")
        self.assertEqual(self.sql(stmts[1] + ";" + q).splitlines()[-1], "4|4")
        self.sql(f"ALTER DATABASE {self.db} SET"
                 " citus.max_adaptive_executor_pool_size = 2")
        self.assertEqual(self.sql(stmts[0] + ";" + q).splitlines()[-1], "2|2")
        self.assertEqual(self.sql(stmts[1] + ";" + q).splitlines()[-1], "2|2")

    def test_rows_of_one_age_go_in_bounded_batches(self):
        """A time slice cannot be narrower than a second: when one age
        holds many more rows than a batch, they go LIMIT at a time."""
        self.sql("""
SET citus.shard_count = 8;
CREATE TABLE pings (customer_id bigint, id bigint, at timestamptz NOT NULL,
                    PRIMARY KEY (customer_id, id));
SELECT create_distributed_table('pings', 'customer_id');
INSERT INTO pings SELECT g % 50, g, date_trunc('second', now()) - interval '30 days'
FROM generate_series(1, 5000) g;
INSERT INTO pings SELECT g % 50, 10000 + g, now() FROM generate_series(1, 100) g;
""")
        conf = self.config("""{
  name = "pings"; policy = "p"; table = "pings"; age_column = "at";
  retain = "7 days"; max_fraction = 1.0; batch_size = 100;
}""")
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertClean(proc)
        self.assertEqual(self.sql("SELECT count(*) FROM pings"), "100")
        self.assertEqual(self.audit_rows("pings"), 5000)
        batches, biggest = self.cluster.query(
            "SELECT count(*), max(rows) FROM retention.actions WHERE rule = 'pings'",
            dbname=self.db)[0]
        # batch_size adapts up to ten times itself; the slice's last rows
        # (at most twice that) go in one batch; never all 5000 at once
        self.assertLessEqual(int(biggest), 2 * 1000)
        self.assertGreaterEqual(int(batches), 5)
        self.assertExit(self.rd(conf, "verify"), 0)

    def test_reference_table_with_a_subject_honours_holds(self):
        self.sql("""
CREATE TABLE countries (id int PRIMARY KEY, retired_at timestamptz);
SELECT create_reference_table('countries');
INSERT INTO countries SELECT g, now() - interval '3 years' FROM generate_series(1, 20) g;
""")
        conf = self.config("""{
  name = "countries"; policy = "p"; table = "countries"; age_column = "retired_at";
  retain = "1 year"; subject = "customer"; subject_column = "id"; max_fraction = 1.0;
}""")
        self.assertExit(self.rd(conf, "hold", "add", "customer:3", "--reason", "r"), 0)
        # the commands that only read work on Citus tables too
        for args in (["plan"], ["coverage"]):
            proc = self.rd(conf, *args)
            self.assertExit(proc, 0, f"{args}")
            self.assertClean(proc)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertClean(proc)
        for args in (["report"], ["report", "--format", "json"]):
            proc = self.rd(conf, *args)
            self.assertExit(proc, 0)
            self.assertClean(proc)
        self.assertEqual(self.sql("SELECT string_agg(id::text, ',') FROM countries"), "3")
        self.assertEqual(self.audit_rows(), 19)
        self.assertExit(self.rd(conf, "verify"), 0)

    def test_time_partitioned_distributed_table(self):
        self.sql("""
SET citus.shard_count = 4;
CREATE TABLE clicks (customer_id bigint NOT NULL, id bigint NOT NULL,
                     at timestamptz NOT NULL, PRIMARY KEY (customer_id, id, at))
  PARTITION BY RANGE (at);
SELECT create_distributed_table('clicks', 'customer_id');
DO $$
DECLARE m date := date_trunc('month', now() - interval '8 months')::date;
BEGIN
  FOR i IN 0..9 LOOP
    EXECUTE format('CREATE TABLE clicks_%s PARTITION OF clicks'
                   ' FOR VALUES FROM (%L) TO (%L)', i, m + i * interval '1 month',
                   m + (i + 1) * interval '1 month');
  END LOOP;
END $$;
INSERT INTO clicks SELECT g % 5, g, now() - g * interval '1 hour'
FROM generate_series(1, 5000) g;
""")
        before = int(self.sql("SELECT count(*) FROM clicks"))
        expired = int(self.sql("SELECT count(*) FROM clicks WHERE at < now() - interval '90 days'"))
        parts = int(self.sql("SELECT count(*) FROM pg_inherits WHERE inhparent = 'clicks'::regclass"))
        conf = self.config("""{
  name = "clicks"; policy = "p"; table = "clicks"; age_column = "at";
  retain = "90 days"; max_fraction = 1.0;
}""")
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertClean(proc)
        self.assertEqual(int(self.sql("SELECT count(*) FROM clicks")), before - expired)
        self.assertEqual(self.sql("SELECT count(*) FROM clicks WHERE at < now() - interval '90 days'"),
                         "0")
        self.assertLess(int(self.sql("SELECT count(*) FROM pg_inherits"
                                     " WHERE inhparent = 'clicks'::regclass")), parts,
                        "wholly expired partitions are dropped")
        self.assertExit(self.rd(conf, "verify"), 0)

    # --- de-identify ------------------------------------------------------------

    def seed_people(self):
        self.sql("""
SET citus.shard_count = 4;
CREATE TABLE people (id int PRIMARY KEY, closed_at timestamptz, email text, full_name text,
                     phone text, last_ip inet, born date, seen_at timestamptz,
                     contact text, deidentified_at timestamptz);
SELECT create_distributed_table('people', 'id');
INSERT INTO people VALUES
 (1, now() - interval '400 days', 'Alice@Example.com', 'Alice A', '+44 1', '192.168.10.77',
  '1980-05-06', '2020-07-08 09:10:11+00', 'alice@example.com', NULL),
 (2, now() - interval '500 days', 'bob@example.org', 'Bob B', '+44 2', '2001:db8:1234:5678::1',
  '1985-01-02', '2019-02-03 04:05:06+00', 'bob@mail.example.org', NULL),
 (3, now() - interval '10 days', 'carol@example.net', 'Carol C', '+44 3', '10.0.0.1',
  '1990-01-02', '2021-03-03 03:03:03+00', 'carol@example.net', NULL);
""")

    def test_every_deidentify_method_on_a_distributed_table(self):
        self.seed_people()
        conf = self.config("""{
  name = "people"; policy = "p"; table = "people"; age_column = "closed_at";
  retain = "1 year"; action = "deidentify"; marker_column = "deidentified_at";
  deidentify = { email = "hash"; full_name = "redact"; phone = "null";
                 last_ip = "truncate_ip"; born = "year"; seen_at = "year";
                 contact = "mask_email"; };
  max_fraction = 1.0;
}""")
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertClean(proc)
        self.assertOutput(proc, r"de-identified 2 rows", stream="stdout")
        rows = {r[0]: r for r in self.cluster.query(
            "SELECT id, email, full_name, coalesce(phone, '<null>'), last_ip, born, "
            "to_char(seen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), contact, "
            "deidentified_at IS NOT NULL FROM people ORDER BY id", dbname=self.db)}
        self.assertEqual(rows["1"][1], hmac.new(KEY, b"Alice@Example.com",
                                                hashlib.sha256).hexdigest())
        self.assertEqual(rows["1"][2:], ["[redacted]", "<null>", "192.168.10.0/24",
                                         "1980-01-01", "2020-01-01 00:00:00",
                                         "***@example.com", "t"])
        self.assertEqual(rows["2"][4], "2001:db8:1234::/48")
        self.assertEqual(rows["2"][7], "***@mail.example.org")
        self.assertEqual(rows["3"][1:], ["carol@example.net", "Carol C", "+44 3", "10.0.0.1",
                                         "1990-01-02", "2021-03-03 03:03:03",
                                         "carol@example.net", "f"])
        self.assertEqual(self.audit_rows(), 2)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, r"nothing due", stream="stdout")
        self.assertEqual(self.audit_rows(), 2)
        self.assertExit(self.rd(conf, "verify"), 0)

    def test_truncate_ip_on_text_fails_by_name_and_changes_nothing(self):
        self.sql("""
CREATE TABLE visits (id int PRIMARY KEY, at timestamptz, ip text);
SELECT create_distributed_table('visits', 'id');
INSERT INTO visits VALUES (1, now() - interval '3 years', '10.1.2.3');
""")
        conf = self.config("""{
  name = "visits"; policy = "p"; table = "visits"; age_column = "at";
  retain = "1 year"; action = "deidentify"; deidentify = { ip = "truncate_ip"; };
  max_fraction = 1.0;
}""")
        proc = self.rd(conf, "run")
        self.assertExit(proc, 1)
        self.assertOutput(proc, r'rule "visits".*truncate_ip.*text column is not '
                          r'supported on a Citus table')
        self.assertEqual(self.sql("SELECT ip FROM visits"), "10.1.2.3")
        self.assertEqual(self.audit_rows(), 0)

    # --- erasure and access ------------------------------------------------------

    ERASURE_RULES = """
{ name = "accounts"; policy = "accounts"; table = "customers";
  age_column = "closed_at"; retain = "1 year"; action = "deidentify";
  deidentify = { email = "hash"; full_name = "redact"; };
  marker_column = "deidentified_at"; subject = "customer"; subject_column = "id"; },
{ name = "orders"; policy = "orders: 2 years"; table = "orders"; age_column = "ordered_at";
  retain = "2 years"; subject = "customer"; subject_column = "customer_id"; }
"""

    def seed_orders(self):
        self.customers()
        self.sql("""
SET citus.shard_count = 8;
CREATE TABLE orders (customer_id bigint NOT NULL REFERENCES customers (id), id bigint NOT NULL,
                     ordered_at timestamptz NOT NULL, PRIMARY KEY (customer_id, id));
SELECT create_distributed_table('orders', 'customer_id', colocate_with => 'customers');
INSERT INTO orders SELECT 1 + g % 10, g, now() - g * interval '1 day' FROM generate_series(1, 50) g;
""")

    def test_erasure_follows_co_located_tables(self):
        self.seed_orders()
        conf = self.config(self.ERASURE_RULES)
        # customer 3's account is open: only the erasure touches it
        self.assertExit(self.rd(conf, "erase", "customer:3", "--reason", "asked"), 0)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertClean(proc)
        self.assertEqual(self.sql("SELECT count(*) FROM orders WHERE customer_id = 3"), "0")
        self.assertEqual(self.sql("SELECT count(*) FROM orders"), "45")
        self.assertEqual(self.sql("SELECT email FROM customers WHERE id = 3"),
                         hmac.new(KEY, b"c3@example.com", hashlib.sha256).hexdigest())
        self.assertEqual(self.sql("SELECT full_name FROM customers WHERE id = 3"), "[redacted]")
        self.assertEqual(self.sql("SELECT email FROM customers WHERE id = 5"), "c5@example.com")
        self.assertEqual(self.sql("SELECT string_agg(rule || '=' || action || '=' || rows, ','"
                                  " ORDER BY rule, action) FROM retention.actions"),
                         "accounts=deidentify=5,accounts=erasure=1,orders=erasure=5")
        self.assertEqual(self.sql("SELECT count(*) FROM customers WHERE deidentified_at IS NOT NULL"),
                         "6", "the 5 closed accounts by expiry, customer 3 by erasure")
        self.assertEqual(self.sql("SELECT status FROM retention.erasure_requests"), "done")
        self.assertExit(self.rd(conf, "verify"), 0)

    def test_erasure_of_a_held_subject_waits(self):
        self.seed_orders()
        conf = self.config(self.ERASURE_RULES)
        self.assertExit(self.rd(conf, "hold", "add", "customer:6", "--reason", "court"), 0)
        self.assertExit(self.rd(conf, "erase", "customer:6"), 0)
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.sql("SELECT status FROM retention.erasure_requests"), "held")
        self.assertEqual(self.sql("SELECT count(*) FROM orders WHERE customer_id = 6"), "5")
        self.assertExit(self.rd(conf, "hold", "release", "1"), 0)
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.sql("SELECT count(*) FROM orders WHERE customer_id = 6"), "0")
        self.assertEqual(self.audit_rows("orders", "erasure"), 5)
        self.assertExit(self.rd(conf, "verify"), 0)

    def test_access_exports_the_subjects_rows(self):
        self.seed_orders()
        conf = self.config(self.ERASURE_RULES)
        proc = self.rd(conf, "access", "customer:3", "--now")
        self.assertExit(proc, 0)
        self.assertClean(proc)
        m = re.search(r"^  (\S+\.json)$", proc.stdout, re.M)
        self.assertIsNotNone(m, proc.stdout)
        with open(m.group(1), encoding="utf-8") as f:
            doc = json.load(f)
        t = {x["table"]: x for x in doc["tables"]}
        self.assertEqual([r["email"] for r in t["public.customers"]["rows"]],
                         ["c3@example.com"])
        self.assertEqual(sorted(int(r["id"]) for r in t["public.orders"]["rows"]),
                         [2, 12, 22, 32, 42])

    # --- check ---------------------------------------------------------------------

    def test_check_names_the_citus_table_kind(self):
        self.seed_orders()
        self.sql("CREATE TABLE notes (id int PRIMARY KEY, at timestamptz);"
                 "CREATE TABLE tags (id int PRIMARY KEY, at timestamptz);"
                 "SELECT create_reference_table('tags');")
        conf = self.config(self.ERASURE_RULES + """,
{ name = "notes"; policy = "p"; table = "notes"; age_column = "at"; retain = "1 year"; },
{ name = "tags"; policy = "p"; table = "tags"; age_column = "at"; retain = "1 year"; }
""")
        proc = self.rd(conf, "check")
        self.assertExit(proc, 0)
        out = proc.stdout + proc.stderr
        self.assertRegex(out, r'rule "orders".*Citus distributed table')
        self.assertRegex(out, r'rule "tags".*Citus reference table')
        self.assertRegex(out, r'rule "notes".*local table on the Citus coordinator')

    def test_check_refuses_what_citus_cannot_run(self):
        self.sql("""
CREATE TABLE logs (id int, at timestamptz);
SELECT create_distributed_table('logs', 'id');
CREATE TABLE visits (id int PRIMARY KEY, at timestamptz, ip text);
SELECT create_distributed_table('visits', 'id');
""")
        conf = self.config("""
{ name = "logs"; policy = "p"; table = "logs"; age_column = "at"; retain = "1 year"; },
{ name = "visits"; policy = "p"; table = "visits"; age_column = "at";
  retain = "1 year"; action = "deidentify"; deidentify = { ip = "truncate_ip"; }; }
""")
        proc = self.rd(conf, "check")
        self.assertExit(proc, 2)
        self.assertOutput(proc, r':\d+: rule "logs" \(public.logs\): the Citus distributed '
                          r'table has no primary key')
        self.assertOutput(proc, r':\d+: rule "visits" \(public.visits\): column "ip": method '
                          r'"truncate_ip" on a text column is not supported on a Citus table')
        proc = self.rd(conf, "run")
        self.assertExit(proc, 1)
        self.assertOutput(proc, r'rule "logs".*has no primary key', stream="stdout")


if __name__ == "__main__":
    harness.main()
