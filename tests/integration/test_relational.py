"""Foreign keys, partitioned tables and right-to-erasure requests (SPEC §5)."""

import os
import re
import subprocess
import time

from harness import (IntegrationTest, clean_env, main, real_clock, write_config,
                     write_secret)

KEY = "relational-test-pseudonym-key-0123456789"


class RelationalTest(IntegrationTest):

    def setUp(self):
        super().setUp()
        self.db = "t_" + self._testMethodName[5:40].lower()
        self.cluster.createdb(self.db)
        self.keyfile = write_secret(os.path.join(self.tmp, "key"), KEY)

    def sql(self, text):
        return self.cluster.psql(text, dbname=self.db)

    def config(self, rules):
        return write_config(self.tmp, f"""
database: {{ conninfo = "{self.cluster.conninfo(self.db)}"; }};
pseudonym_key_file = "{self.keyfile}";
rules = (
{rules}
);
""")

    def rd(self, conf, *args):
        return self.run_rd(list(args), config=conf)

    def init(self, conf):
        self.assertExit(self.rd(conf, "init-db"), 0)

    # --- foreign keys ---------------------------------------------------------

    SHOP = """
CREATE TABLE customers (id int PRIMARY KEY, email text, closed_at timestamptz);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers,
                     ordered_at timestamptz NOT NULL);
CREATE TABLE invoices (id int PRIMARY KEY, order_id int REFERENCES orders,
                       issued_at timestamptz NOT NULL);
CREATE TABLE support_notes (id int PRIMARY KEY, customer_id int REFERENCES customers);
CREATE INDEX ON customers (closed_at);
CREATE INDEX ON orders (ordered_at);
CREATE INDEX ON invoices (issued_at);
-- customer 1: everything long expired
INSERT INTO customers VALUES (1, 'a@x', now() - interval '30 days');
INSERT INTO orders VALUES (10, 1, now() - interval '20 days');
INSERT INTO invoices VALUES (100, 10, now() - interval '20 days');
-- customer 2: expired, but its order's invoice is recent
INSERT INTO customers VALUES (2, 'b@x', now() - interval '30 days');
INSERT INTO orders VALUES (20, 2, now() - interval '20 days');
INSERT INTO invoices VALUES (200, 20, now() - interval '3 days');
-- customer 3: expired, but a table without a rule still points at it
INSERT INTO customers VALUES (3, 'c@x', now() - interval '30 days');
INSERT INTO support_notes VALUES (1, 3);
-- customers 4..9 are open: nothing happens to them
INSERT INTO customers SELECT g, 'o@x', NULL FROM generate_series(4, 9) g;
"""

    # parents first in the file: the engine must reorder them
    SHOP_RULES = """
{ name = "customers"; policy = "accounts: 1 day after closing"; table = "customers";
  age_column = "closed_at"; retain = "1 day"; max_fraction = 1.0; },
{ name = "orders"; policy = "orders: 5 days"; table = "orders";
  age_column = "ordered_at"; retain = "5 days"; max_fraction = 1.0; },
{ name = "invoices"; policy = "invoices: 10 days"; table = "invoices";
  age_column = "issued_at"; retain = "10 days"; max_fraction = 1.0; }
"""

    def test_children_go_first_and_referenced_parents_are_blocked(self):
        self.sql(self.SHOP)
        conf = self.config(self.SHOP_RULES)
        self.init(conf)

        plan = self.rd(conf, "plan")
        self.assertExit(plan, 0)
        self.assertOutput(plan, r"blocked: +2 rows still referenced", stream="stdout")

        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        # invoices ran first, so customer 1's whole chain is gone in one cycle
        self.assertEqual(self.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM customers "
                                  "WHERE closed_at IS NOT NULL"), "2,3")
        self.assertEqual(self.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM orders"), "20")
        self.assertEqual(self.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM invoices"), "200")
        order = self.sql("SELECT string_agg(rule, ',' ORDER BY id) FROM retention.actions")
        self.assertEqual(order, "invoices,orders,customers")
        self.assertOutput(proc, r'rule "orders" \(public\.orders\): deleted 1 rows.*1 still referenced',
                          stream="stdout")
        self.assertOutput(proc, r'rule "customers" \(public\.customers\): deleted 1 rows.*'
                                r'2 still referenced', stream="stdout")
        summary = self.sql("SELECT string_agg((r->>'rule') || '=' || (r->>'blocked'), ',' "
                           "ORDER BY r->>'rule') FROM retention.runs, "
                           "jsonb_array_elements(summary->'rules') r WHERE command = 'run'")
        self.assertEqual(summary, "customers=2,invoices=0,orders=1")

        # the invoice expires: the next cycle removes it, its order, its customer
        self.sql("UPDATE invoices SET issued_at = now() - interval '11 days'")
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.sql("SELECT count(*) FROM invoices"), "0")
        self.assertEqual(self.sql("SELECT count(*) FROM orders"), "0")
        self.assertEqual(self.sql("SELECT string_agg(id::text, ',') FROM customers "
                                  "WHERE closed_at IS NOT NULL"), "3")
        self.assertEqual(self.sql("SELECT count(*) FROM customers"), "7")
        self.assertEqual(self.sql("SELECT sum(rows) FROM retention.actions"), "6")
        self.assertExit(self.rd(conf, "verify"), 0)

    def test_cascade_is_named_in_check_and_in_the_audit_detail(self):
        self.sql("""
CREATE TABLE orders (id int PRIMARY KEY, ordered_at timestamptz NOT NULL);
CREATE TABLE order_items (id int PRIMARY KEY,
                          order_id int REFERENCES orders ON DELETE CASCADE);
INSERT INTO orders VALUES (1, now() - interval '9 days'), (2, now());
INSERT INTO order_items VALUES (1, 1), (2, 1), (3, 2);
""")
        conf = self.config("""{ name = "orders"; policy = "p"; table = "orders";
  age_column = "ordered_at"; retain = "5 days"; }""")
        proc = self.rd(conf, "check")
        self.assertOutput(proc, r"note: .*public\.order_items \(ON DELETE CASCADE\)")
        self.init(conf)
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.sql("SELECT count(*) FROM order_items"), "1")
        self.assertEqual(self.sql("SELECT detail->>'cascade' FROM retention.actions"),
                         '["public.order_items"]')

    # --- partitions -----------------------------------------------------------

    def make_monthly(self, default=True):
        parts = []
        for m in range(12):
            parts.append(f"""
CREATE TABLE events_m{m:02d} PARTITION OF events FOR VALUES
  FROM (date_trunc('month', now()) - interval '{m} months')
  TO (date_trunc('month', now()) - interval '{m - 1} months');""")
        self.sql(f"""
CREATE TABLE events (id bigserial, at timestamptz NOT NULL, customer_id int, payload text)
  PARTITION BY RANGE (at);
{''.join(parts)}
{"CREATE TABLE events_default PARTITION OF events DEFAULT;" if default else ""}
CREATE INDEX ON events (at);
-- 10 rows per month: days 1..10 of each month, so the straddling month has
-- rows on both sides of the cutoff
INSERT INTO events (at, customer_id, payload)
SELECT date_trunc('month', now()) - m * interval '1 month' + d * interval '2 days' + interval '1 hour',
       (m * 10 + d) % 7, 'm' || m
FROM generate_series(0, 11) m, generate_series(0, 9) d
WHERE date_trunc('month', now()) - m * interval '1 month' + d * interval '2 days' + interval '1 hour' < now();
{"INSERT INTO events (at, customer_id, payload) VALUES (now() - interval '5 years', 1, 'ancient');" if default else ""}
""")

    def partition_rule(self, mode="drop", extra=""):
        return f"""{{ name = "events"; policy = "events: 100 days"; table = "events";
  age_column = "at"; retain = "100 days"; partitions = "{mode}"; max_fraction = 1.0;
  {extra} }}"""

    def expected_gone(self):
        return int(self.sql("SELECT count(*) FROM events WHERE at < now() - interval '100 days'"))

    def test_expired_partitions_are_dropped_with_exact_counts(self):
        self.make_monthly()
        conf = self.config(self.partition_rule())
        self.init(conf)
        gone = self.expected_gone()
        # whole partitions: those whose upper bound is before the cutoff
        whole = self.cluster.query("""
SELECT c.relname, (SELECT count(*) FROM events e WHERE e.tableoid = c.oid)
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'events'::regclass
  AND (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']*)''\\)'))[1]::timestamptz
      <= now() - interval '100 days' ORDER BY 1""", dbname=self.db)
        self.assertGreaterEqual(len(whole), 7)
        # the month that straddles the cutoff depends on today's date
        straddling = self.cluster.query("""
SELECT c.relname, (SELECT count(*) FROM events e WHERE e.tableoid = c.oid
                   AND e.at < now() - interval '100 days')
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,
     regexp_match(pg_get_expr(c.relpartbound, c.oid),
                  'FROM \\(''([^'']*)''\\) TO \\(''([^'']*)''\\)') b
WHERE i.inhparent = 'events'::regclass
  AND b[1]::timestamptz <= now() - interval '100 days'
  AND b[2]::timestamptz > now() - interval '100 days'""", dbname=self.db)
        self.assertEqual(len(straddling), 1, straddling)
        # the default partition and the straddling month are trimmed by
        # rows, the latter only when it holds rows older than the cutoff
        trimmed = [["public.events_default"]]
        if int(straddling[0][1]) > 0:
            trimmed.append([f"public.{straddling[0][0]}"])

        plan = self.rd(conf, "plan")
        self.assertOutput(plan, rf"would remove {len(whole)} whole partitions", stream="stdout")

        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertEqual(self.expected_gone(), 0)
        left = self.sql("SELECT count(*) FROM events")
        self.assertEqual(int(left) + gone,
                         int(self.sql("SELECT sum(rows) FROM retention.actions")) + int(left))
        dropped = self.cluster.query(
            "SELECT split_part(target, '.', 2), rows FROM retention.actions "
            "WHERE action = 'drop_partition' ORDER BY 1", dbname=self.db)
        self.assertEqual(dropped, [[n, str(c)] for n, c in whole])
        for name, _ in whole:
            self.assertEqual(self.sql(f"SELECT to_regclass('{name}') IS NULL"), "t")
        self.assertEqual(self.cluster.query(
            "SELECT target FROM retention.actions WHERE action = 'delete' ORDER BY 1",
            dbname=self.db), sorted(trimmed))
        self.assertEqual(self.sql("SELECT to_regclass('events_default') IS NOT NULL"), "t")
        self.assertExit(self.rd(conf, "verify"), 0)

    def whole_partitions(self):
        return [r[0] for r in self.cluster.query("""
SELECT 'public.' || c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'events'::regclass
  AND (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']*)''\\)'))[1]::timestamptz
      <= now() - interval '100 days'
ORDER BY (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']*)''\\)'))[1]::timestamptz""",
            dbname=self.db)]

    def drop_transactions(self):
        """The partitions dropped, grouped by transaction ("now", the
        audit row's started_at, is its transaction's start), oldest first."""
        rows = self.cluster.query(
            "SELECT started_at, target FROM retention.actions"
            " WHERE action = 'drop_partition' ORDER BY id", dbname=self.db)
        groups = []
        for started, target in rows:
            if groups and groups[-1][0] == started:
                groups[-1][1].append(target)
            else:
                groups.append((started, [target]))
        return [g[1] for g in groups]

    def test_each_partition_leaves_in_a_transaction_of_its_own(self):
        self.make_monthly()
        whole = self.whole_partitions()
        self.assertGreaterEqual(len(whole), 7)
        conf = self.config(self.partition_rule())
        self.init(conf)
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.drop_transactions(), [[w] for w in whole])
        self.assertEqual(self.expected_gone(), 0)
        self.assertExit(self.rd(conf, "verify"), 0)

    @real_clock("PostgreSQL's lock_timeout never fires under libfaketime")
    def test_a_partition_someone_writes_to_is_left_and_the_others_dropped(self):
        self.make_monthly()
        whole = self.whole_partitions()
        busy = "public.events_m07"
        self.assertIn(busy, whole[2:])
        conf = self.config(self.partition_rule())
        self.init(conf)
        locker = subprocess.Popen(
            [self.cluster._bin("psql"), "-X", "-q", "-A", "-t", "-h", self.cluster.host,
             "-p", str(self.cluster.port), "-U", "postgres", "-d", self.db],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=clean_env())
        self.addCleanup(lambda: (locker.poll() is None) and (locker.kill(), locker.wait()))
        locker.stdin.write(f"BEGIN; LOCK TABLE {busy} IN ROW EXCLUSIVE MODE;\n\\echo READY\n")
        locker.stdin.flush()
        self.assertEqual(locker.stdout.readline().strip(), "READY")
        t0 = time.monotonic()
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertLess(time.monotonic() - t0, 30)
        # only it stays, emptied by row batches (ROW EXCLUSIVE lets them in)
        self.assertEqual(sum(self.drop_transactions(), []), [w for w in whole if w != busy])
        self.assertEqual(self.sql(f"SELECT to_regclass('{busy}') IS NOT NULL"), "t")
        self.assertEqual(self.sql(f"SELECT count(*) FROM retention.actions"
                                  f" WHERE target = '{busy}' AND action = 'delete'"), "1")
        self.assertEqual(self.sql(f"SELECT count(*) FROM {busy}"), "0")
        self.assertEqual(self.expected_gone(), 0)
        locker.communicate("COMMIT;\n", timeout=10)
        self.assertExit(self.rd(conf, "verify"), 0)

    def test_detach_mode_keeps_expired_partitions_as_tables(self):
        self.make_monthly()
        conf = self.config(self.partition_rule("detach"))
        self.init(conf)
        self.assertExit(self.rd(conf, "run"), 0)
        n = int(self.sql("SELECT count(*) FROM retention.actions WHERE action = 'detach_partition'"))
        self.assertGreaterEqual(n, 7)
        self.assertEqual(self.sql("SELECT to_regclass('events_m11') IS NOT NULL"), "t")
        self.assertEqual(self.sql("SELECT count(*) FROM pg_inherits WHERE inhrelid = 'events_m11'::regclass"), "0")
        self.assertEqual(self.expected_gone(), 0)

    def test_partition_with_a_held_subject_falls_back_to_rows(self):
        self.make_monthly()
        conf = self.config(self.partition_rule(
            extra='subject = "customer"; subject_column = "customer_id";'))
        self.init(conf)
        held_rows = int(self.sql("SELECT count(*) FROM events_m09 WHERE customer_id = 3"))
        self.assertGreater(held_rows, 0)
        self.assertExit(self.rd(conf, "hold", "add", "customer:3", "--reason", "dispute"), 0)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        # every partition that holds customer 3's rows stays, trimmed by rows
        self.assertEqual(self.sql("SELECT to_regclass('events_m09') IS NOT NULL"), "t")
        self.assertEqual(self.sql("SELECT count(*) FROM events_m09"), str(held_rows))
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE at < now() - interval '100 days'"
                                  " AND customer_id <> 3"), "0")
        self.assertEqual(int(self.sql("SELECT count(*) FROM events WHERE customer_id = 3 "
                                      "AND at < now() - interval '100 days'")) > 0, True)

    def make_big_partition(self):
        """events_m05 with 3000 more rows: NULLs in customer_id and many
        rows at every value, vacuumed (its smallest index is then the one
        on customer_id, which the count is split on), then made to look
        to the planner like two million rows, the size at which retentiond
        counts a partition in two halves over two connections."""
        self.make_monthly()
        self.sql("""
CREATE INDEX ON events (customer_id);
INSERT INTO events (at, customer_id, payload)
SELECT date_trunc('month', now()) - interval '5 months' + g * interval '10 minutes',
       CASE WHEN g % 10 = 0 THEN NULL ELSE g % 700 END, 'big'
FROM generate_series(1, 3000) g;
VACUUM ANALYZE events_m05;
UPDATE pg_class SET reltuples = 2000000 WHERE oid = 'events_m05'::regclass;
""")
        return int(self.sql("SELECT count(*) FROM events_m05"))

    def dropped_rows(self, name):
        return self.sql("SELECT rows FROM retention.actions "
                        f"WHERE target = 'public.{name}' AND action = 'drop_partition'")

    def test_big_partition_is_counted_in_two_halves_exactly(self):
        rows = self.make_big_partition()
        conf = self.config(self.partition_rule())
        self.init(conf)
        plan = self.rd(conf, "-v", "plan")
        self.assertExit(plan, 0)
        self.assertOutput(plan, r'partition "public"\."events_m05": \d+ rows below the '
                          r"median of customer_id counted over a second connection")
        proc = self.rd(conf, "-v", "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, r'"events_m05": \d+ rows below the median of customer_id '
                          r"counted over a second connection, \d+ on the first")
        self.assertNoOutput(proc, "counting on one|counting it on the first")
        self.assertEqual(self.dropped_rows("events_m05"), str(rows))
        # the small partitions were counted in one statement, as before
        self.assertEqual(len(re.findall("over a second connection", proc.stderr)), 1)
        self.assertEqual(self.expected_gone(), 0)
        self.assertExit(self.rd(conf, "verify"), 0)

    def test_big_partition_without_a_second_connection_is_counted_on_one(self):
        rows = self.make_big_partition()
        role = self.one_connection_role("rd_solo_", self.db)
        conf = write_config(self.tmp, f"""
database: {{ conninfo = "{self.cluster.conninfo(self.db, user=role)}"; }};
rules = ( {self.partition_rule()} );
""")
        self.init(conf)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, "could not use a second connection to count big "
                          "partitions in two halves, working on one: .*too many "
                          "connections for role")
        self.assertEqual(self.dropped_rows("events_m05"), str(rows))
        self.assertEqual(self.expected_gone(), 0)

    def test_interrupted_concurrent_detach_is_finalized(self):
        # PostgreSQL detaches concurrently only without a default partition
        self.make_monthly(default=False)
        conf = self.config(self.partition_rule())
        self.init(conf)
        # a reader keeps the second phase of DETACH CONCURRENTLY waiting;
        # cancelling it leaves the partition "detach pending"
        reader = subprocess.Popen(
            [self.cluster._bin("psql"), "-X", "-q", "-h", self.cluster.host,
             "-p", str(self.cluster.port), "-U", "postgres", "-d", self.db],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=clean_env())
        self.addCleanup(lambda: reader.poll() is None and (reader.kill(), reader.wait()))
        reader.stdin.write("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM events;\n")
        reader.stdin.flush()
        time.sleep(0.5)
        detacher = subprocess.Popen(
            [self.cluster._bin("psql"), "-X", "-q", "-h", self.cluster.host,
             "-p", str(self.cluster.port), "-U", "postgres", "-d", self.db, "-c",
             "ALTER TABLE events DETACH PARTITION events_m01 CONCURRENTLY"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
        for _ in range(100):
            if self.sql("SELECT count(*) FROM pg_inherits WHERE inhdetachpending") == "1":
                break
            time.sleep(0.1)
        self.sql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
                 "WHERE query LIKE 'ALTER TABLE events DETACH%'")
        out, errs = detacher.communicate(timeout=30)
        self.assertIn("canceling statement", errs)
        reader.stdin.write("COMMIT;\n")
        reader.stdin.close()
        reader.wait(timeout=30)
        self.assertEqual(self.sql("SELECT count(*) FROM pg_inherits WHERE inhdetachpending"), "1")

        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertEqual(self.sql("SELECT count(*) FROM pg_inherits WHERE inhdetachpending"), "0")
        self.assertEqual(self.sql("SELECT count(*) FROM pg_inherits "
                                  "WHERE inhrelid = 'events_m01'::regclass"), "0")

    # --- erasure requests -----------------------------------------------------------

    ERASURE_SCHEMA = """
CREATE TABLE customers (id int PRIMARY KEY, email text, full_name text,
                        closed_at timestamptz, deidentified_at timestamptz);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers,
                     ordered_at timestamptz NOT NULL);
CREATE TABLE invoices (id int PRIMARY KEY, customer_id int REFERENCES customers,
                       issued_at timestamptz NOT NULL);
INSERT INTO customers SELECT g, 'c' || g || '@example.com', 'Name ' || g, NULL, NULL
FROM generate_series(40, 49) g;
INSERT INTO orders SELECT g, 40 + g % 10, now() - g * interval '1 day' FROM generate_series(1, 50) g;
INSERT INTO invoices SELECT g, 40 + g % 10, now() - g * interval '1 day' FROM generate_series(1, 50) g;
"""

    ERASURE_RULES = """
{ name = "accounts"; policy = "accounts are kept while open"; table = "customers";
  age_column = "closed_at"; retain = "1 year"; action = "deidentify";
  deidentify = { email = "hash"; full_name = "redact"; };
  marker_column = "deidentified_at"; subject = "customer"; subject_column = "id"; },
{ name = "orders"; policy = "orders: 2 years"; table = "orders"; age_column = "ordered_at";
  retain = "2 years"; subject = "customer"; subject_column = "customer_id"; },
{ name = "invoices"; policy = "Financial records are kept for 7 years";
  table = "invoices"; age_column = "issued_at"; retain = "7 years";
  subject = "customer"; subject_column = "customer_id"; on_erasure = "keep"; }
"""

    def test_erasure_deidentifies_deletes_and_keeps_as_configured(self):
        self.sql(self.ERASURE_SCHEMA)
        conf = self.config(self.ERASURE_RULES)
        self.init(conf)
        proc = self.rd(conf, "erase", "customer:42", "--reason", "user asked by mail")
        self.assertExit(proc, 0)
        self.assertOutput(proc, r"erasure request 1 for customer:42 recorded; due ", stream="stdout")
        self.assertEqual(self.sql("SELECT due_at = requested_at + interval '1 month' "
                                  "FROM retention.erasure_requests"), "t")

        plan = self.rd(conf, "plan")
        self.assertOutput(plan, r"erasure request 1 \(customer:42.*would be partial", stream="stdout")
        self.assertEqual(self.sql("SELECT count(*) FROM orders WHERE customer_id = 42"), "5")

        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, r'rule "invoices": 5 rows kept: Financial records', stream="stdout")
        self.assertEqual(self.sql("SELECT email <> 'c42@example.com' AND full_name = '[redacted]' "
                                  "AND deidentified_at IS NOT NULL FROM customers WHERE id = 42"), "t")
        self.assertEqual(self.sql("SELECT email FROM customers WHERE id = 43"), "c43@example.com")
        self.assertEqual(self.sql("SELECT count(*) FROM orders WHERE customer_id = 42"), "0")
        self.assertEqual(self.sql("SELECT count(*) FROM orders"), "45")
        self.assertEqual(self.sql("SELECT count(*) FROM invoices WHERE customer_id = 42"), "5")
        self.assertEqual(self.sql("SELECT status, completed_at IS NOT NULL FROM retention.erasure_requests"),
                         "partial|t")
        detail = self.sql("SELECT string_agg((r->>'rule') || ':' || (r->>'rows') || ':' || (r->>'kept'),"
                          " ',' ORDER BY r->>'rule') FROM retention.erasure_requests,"
                          " jsonb_array_elements(detail->'rules') r")
        self.assertEqual(detail, "accounts:1:0,invoices:0:5,orders:5:0")
        self.assertEqual(self.sql("SELECT string_agg(rule || '=' || rows, ',' ORDER BY rule) "
                                  "FROM retention.actions WHERE action = 'erasure'"),
                         "accounts=1,invoices=0,orders=5")
        self.assertIn("Financial records", self.sql(
            "SELECT detail->>'policy' FROM retention.actions WHERE rule = 'invoices'"))
        # a finished request is not processed again
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.sql("SELECT count(*) FROM retention.actions WHERE action = 'erasure'"), "3")
        listing = self.rd(conf, "erasure", "list", "--status", "partial")
        self.assertOutput(listing, r"customer:42 +partial", stream="stdout")
        self.assertExit(self.rd(conf, "verify"), 0)

    def test_erasure_of_a_held_subject_waits(self):
        self.sql(self.ERASURE_SCHEMA)
        conf = self.config(self.ERASURE_RULES)
        self.init(conf)
        self.assertExit(self.rd(conf, "hold", "add", "customer:44", "--reason", "court order"), 0)
        self.assertExit(self.rd(conf, "erase", "customer:44"), 0)
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.sql("SELECT status FROM retention.erasure_requests"), "held")
        self.assertEqual(self.sql("SELECT count(*) FROM orders WHERE customer_id = 44"), "5")
        self.assertEqual(self.sql("SELECT email FROM customers WHERE id = 44"), "c44@example.com")
        # once released, the next cycle does the work
        self.assertExit(self.rd(conf, "hold", "release", "1"), 0)
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.sql("SELECT status FROM retention.erasure_requests"), "partial")
        self.assertEqual(self.sql("SELECT count(*) FROM orders WHERE customer_id = 44"), "0")

    def test_erasure_that_fails_on_a_rule_makes_the_run_partial(self):
        """A rule that fails on a request leaves it pending (the next cycle
        tries again) and the run says so at once: exit 1, status partial,
        the request and rule named in runs.error and in the log."""
        self.sql(self.ERASURE_SCHEMA)
        self.sql("""
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'orders of customer 45 are frozen'; END $$;
CREATE TRIGGER frozen BEFORE DELETE ON orders FOR EACH ROW
WHEN (OLD.customer_id = 45) EXECUTE FUNCTION refuse();
""")
        conf = self.config(self.ERASURE_RULES)
        self.init(conf)
        self.assertExit(self.rd(conf, "erase", "customer:45"), 0)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 1)
        self.assertOutput(proc, r'erasure request 1 \(customer:45\): rule "orders" '
                                r'failed: .*frozen')
        self.assertEqual(self.sql("SELECT status FROM retention.erasure_requests"), "pending")
        self.assertEqual(self.sql("SELECT count(*) FROM orders WHERE customer_id = 45"), "5")
        status, error = self.sql("SELECT status, error FROM retention.runs "
                                 "ORDER BY id DESC LIMIT 1").split("|", 1)
        self.assertEqual(status, "partial")
        self.assertIn('erasure request 1: rule "orders"', error)
        # the cause gone, the next cycle finishes the request
        self.sql("DROP TRIGGER frozen ON orders")
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.sql("SELECT status FROM retention.erasure_requests"), "partial")
        self.assertEqual(self.sql("SELECT count(*) FROM orders WHERE customer_id = 45"), "0")
        self.assertExit(self.rd(conf, "verify"), 0)

    def test_due_date_is_one_calendar_month_later(self):
        self.sql(self.ERASURE_SCHEMA)
        conf = self.config(self.ERASURE_RULES)
        self.init(conf)
        self.sql("SET TimeZone = 'UTC'; INSERT INTO retention.erasure_requests "
                 "(subject, subject_id, requested_at) VALUES "
                 "('customer', '1', '2026-01-31 10:00+00'), ('customer', '2', '2026-03-15 10:00+00')")
        self.assertEqual(self.sql("SET TimeZone = 'UTC'; SELECT string_agg(due_at::date::text, ',' "
                                  "ORDER BY id) FROM retention.erasure_requests"),
                         "2026-02-28,2026-04-15")

    def test_bad_erasure_arguments(self):
        self.sql(self.ERASURE_SCHEMA)
        conf = self.config(self.ERASURE_RULES)
        self.init(conf)
        self.assertExit(self.rd(conf, "erase", "no-colon"), 2)
        self.assertExit(self.rd(conf, "erase"), 2)
        self.assertExit(self.rd(conf, "erasure", "list", "--status", "bogus"), 2)
        # a subject no rule names: the request would change nothing
        proc = self.rd(conf, "erase", "visitor:7")
        self.assertExit(proc, 2)
        self.assertOutput(proc, r'no rule in .* has subject "visitor": an erasure '
                                r'request for it would change nothing')
        self.assertEqual(self.sql("SELECT count(*) FROM retention.erasure_requests"), "0")

    def test_erasure_is_never_done_when_its_rules_did_not_run(self):
        self.sql(self.ERASURE_SCHEMA)
        conf = self.config(self.ERASURE_RULES)
        self.init(conf)
        self.assertExit(self.rd(conf, "erase", "customer:43"), 0)
        self.assertExit(self.rd(conf, "erase", "customer:44"), 0)

        # --rule orders: invoices and accounts did not run, the request waits
        self.assertExit(self.rd(conf, "run", "--rule", "orders"), 0)
        self.assertEqual(self.sql("SELECT count(*) FROM orders WHERE customer_id = 43"), "0")
        self.assertEqual(self.sql("SELECT status || ' ' || (detail->>'waiting')"
                                  " FROM retention.erasure_requests WHERE id = 1"),
                         'pending rule "invoices" has subject "customer" but did not '
                         'run in this cycle')
        self.assertEqual(self.sql("SELECT email FROM customers WHERE id = 43"),
                         "c43@example.com")

        # the config changes after the requests were filed: no rule has the
        # subject any more, and nothing may be called erased
        other = self.config("""{ name = "orders"; policy = "orders: 2 years"; table = "orders";
  age_column = "ordered_at"; retain = "2 years"; }""")
        proc = self.rd(other, "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, r'erasure request 2 stays pending: no rule in .* has '
                                r'subject "customer"; nothing was erased')
        self.assertEqual(self.cluster.query(
            "SELECT id, status, completed_at IS NULL, detail->>'waiting' LIKE 'no rule in %'"
            " FROM retention.erasure_requests ORDER BY id", dbname=self.db),
            [["1", "pending", "t", "t"], ["2", "pending", "t", "t"]])
        self.assertEqual(self.sql("SELECT email FROM customers WHERE id = 44"),
                         "c44@example.com")

        # back to the full config (the same file): both are carried out
        conf = self.config(self.ERASURE_RULES)
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.cluster.query(
            "SELECT status, detail ? 'waiting' FROM retention.erasure_requests ORDER BY id",
            dbname=self.db), [["partial", "f"], ["partial", "f"]])
        self.assertExit(self.rd(conf, "verify"), 0)


if __name__ == "__main__":
    main()
