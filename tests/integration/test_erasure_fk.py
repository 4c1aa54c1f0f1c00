"""Erasure follows foreign keys (SPEC §11).

Promises checked, each with exact exit codes, the audit trail's erasure
rows adding up to the rows removed, and `verify` passing:
- a referring table whose rule deletes: its rows of the subject go first,
  then the subject's rows, and the request is `done`;
- a referring table whose rule keeps: its rows stay, the rows they refer
  to stay too and are reported kept under that rule and policy, and the
  request is `partial` with every kept part (table, rows, rule, policy);
- a referring table whose rule de-identifies: its rows are de-identified
  and what they refer to is kept under that rule, unless their key
  cascades (then the parent goes, and they with it);
- a referring table that no rule covers but whose key cascades never
  blocks: its rows go with their parent, or stay (kept) with a kept one;
  a kept row keeps its parent even where its own key would cascade;
- a referring table that no rule covers blocks: the request stays
  `pending`, its detail names the table and the row count, staff are
  mailed once (not again on the next cycle), `coverage` lists the table;
  once a rule covers it, the next cycle finishes the request;
- a table that refers to itself (comments.parent_id) is emptied of the
  subject's rows level by level;
- a held subject: nothing is touched anywhere, the request is `held`;
- a request with nothing left to erase ends `done`;
- the shop of issue 18: orders (rule, subject), shipments (rule, no
  subject), invoices (keep): shipments deleted, invoices and the orders
  they refer to kept, `partial`;
- no value of the subject's rows reaches the request's detail, the log
  or the mail.
"""

import json
import os

from harness import IntegrationTest, SmtpServer, main, write_config, write_secret

PASSWORD = "s3cret-smtp"
ADDRESS = "12 Secret Lane, Springfield"

SHOP = f"""
CREATE TABLE customers (id int PRIMARY KEY, email text);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers,
                     ordered_at timestamptz NOT NULL);
CREATE TABLE shipments (id int PRIMARY KEY, order_id int NOT NULL REFERENCES orders,
                        shipped_at timestamptz NOT NULL, address text,
                        deidentified_at timestamptz);
CREATE TABLE invoices (id int PRIMARY KEY, order_id int NOT NULL REFERENCES orders,
                       issued_at timestamptz NOT NULL);
INSERT INTO customers VALUES (51, 'fifty.one@example.org'), (52, 'other@example.org');
-- customer 51: order 1 (shipped, invoiced), order 2 (shipped, two parcels)
INSERT INTO orders VALUES (1, 51, now() - interval '3 days'),
                          (2, 51, now() - interval '2 days'),
                          (3, 52, now() - interval '1 day');
INSERT INTO shipments VALUES (10, 1, now(), '{ADDRESS}', NULL),
                             (20, 2, now(), '{ADDRESS}', NULL),
                             (21, 2, now(), '{ADDRESS}', NULL),
                             (30, 3, now(), 'elsewhere', NULL);
INSERT INTO invoices VALUES (100, 1, now()), (300, 3, now());
"""

ORDERS = """
{ name = "orders"; policy = "orders are kept 2 years"; table = "orders";
  age_column = "ordered_at"; retain = "2 years";
  subject = "customer"; subject_column = "customer_id"; }"""

SHIPMENTS_DELETE = """
{ name = "shipments"; policy = "shipments are kept 1 year"; table = "shipments";
  age_column = "shipped_at"; retain = "1 year"; }"""

SHIPMENTS_DEID = """
{ name = "shipments"; policy = "delivery addresses are kept 1 year";
  table = "shipments"; age_column = "shipped_at"; retain = "1 year";
  action = "deidentify"; deidentify = { address = "redact"; };
  marker_column = "deidentified_at"; }"""

INVOICES_KEEP = """
{ name = "invoices"; policy = "Financial records are kept for 10 years";
  table = "invoices"; age_column = "issued_at"; retain = "10 years";
  on_erasure = "keep"; }"""

INVOICES_DELETE = """
{ name = "invoices"; policy = "invoices are kept 10 years";
  table = "invoices"; age_column = "issued_at"; retain = "10 years"; }"""


class ErasureFkTest(IntegrationTest):

    def setUp(self):
        super().setUp()
        self.db = "t_" + self._testMethodName[5:40].lower()
        self.cluster.createdb(self.db)
        self.smtp = SmtpServer(starttls=True, auth=("retentiond", PASSWORD))
        self.smtp.start()
        self.addCleanup(self.smtp.stop)
        self.pwfile = write_secret(os.path.join(self.tmp, "smtp.password"), PASSWORD)

    def sql(self, text):
        return self.cluster.psql(text, dbname=self.db)

    def config(self, *rules):
        return write_config(self.tmp, f"""
database: {{ conninfo = "{self.cluster.conninfo(self.db)}"; }};
mail: {{ url = "{self.smtp.url}"; username = "retentiond";
        password_file = "{self.pwfile}"; ca_file = "{self.smtp.cafile}";
        from = "Retention <retention@example.com>";
        to = [ "dpo@example.com" ]; send = "errors"; timeout = "10s"; }};
rules = (
{",".join(rules)}
);
""")

    def rd(self, conf, *args):
        return self.run_rd(list(args), config=conf)

    def rows(self):
        """Rows of every table, for what was removed."""
        return {t: int(self.sql(f"SELECT count(*) FROM {t}"))
                for t in ("orders", "shipments", "invoices")}

    def erasure_audit(self):
        return int(self.sql("SELECT coalesce(sum(rows), 0) FROM retention.actions "
                            "WHERE action = 'erasure'"))

    def request(self, rid=1):
        status, detail = self.sql("SELECT status, detail::text FROM "
                                  f"retention.erasure_requests WHERE id = {rid}").split("|", 1)
        return status, json.loads(detail)

    def erase_and_run(self, conf, who="customer:51", code=0, deidentified=0, plan=None):
        self.assertExit(self.rd(conf, "init-db"), 0)
        before = self.rows()
        self.assertExit(self.rd(conf, "erase", who, "--reason", "asked by mail"), 0)
        if plan:
            # the plan foresees the outcome, and changes nothing
            proc = self.rd(conf, "plan")
            self.assertExit(proc, 0)
            self.assertOutput(proc, rf"erasure request 1 \(.*\): would be {plan}$",
                              stream="stdout")
            self.assertEqual(self.rows(), before)
        proc = self.rd(conf, "run")
        self.assertExit(proc, code)
        after = self.rows()
        removed = sum(before[t] - after[t] for t in before)
        # every row removed (or de-identified) is in the audit trail, and
        # nothing else is
        self.assertEqual(self.erasure_audit(), removed + deidentified)
        self.assertExit(self.rd(conf, "verify"), 0)
        return proc, before, after

    def assertNoPersonalData(self, text):
        for value in (ADDRESS, "fifty.one@example.org", "Springfield"):
            self.assertNotIn(value, text)

    # --- a referring table, by its own rule --------------------------------------

    def test_child_with_a_delete_rule_goes_first_and_the_request_is_done(self):
        self.sql(SHOP)
        conf = self.config(ORDERS, SHIPMENTS_DELETE, INVOICES_DELETE)
        proc, before, after = self.erase_and_run(conf, plan="done")
        self.assertEqual(after, {"orders": before["orders"] - 2,
                                 "shipments": before["shipments"] - 3,
                                 "invoices": before["invoices"] - 1})
        self.assertEqual(self.sql("SELECT count(*) FROM orders WHERE customer_id = 51"), "0")
        self.assertEqual(self.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM shipments"), "30")
        status, detail = self.request()
        self.assertEqual(status, "done")
        self.assertEqual(detail["kept"], [])
        self.assertEqual(detail["blocked_by"], [])
        self.assertEqual({r["rule"]: r["rows"] for r in detail["rules"]},
                         {"orders": 2, "shipments": 3, "invoices": 1})
        self.assertOutput(proc, r"erasure request 1 \(customer:51.*\): done", stream="stdout")
        self.assertEqual(self.sql("SELECT string_agg(rule || '=' || rows, ',' ORDER BY rule)"
                                  " FROM retention.actions WHERE action = 'erasure'"),
                         "invoices=1,orders=2,shipments=3")
        self.assertNoPersonalData(json.dumps(detail) + proc.stderr + proc.stdout)

    def test_child_with_a_keep_rule_keeps_what_it_refers_to(self):
        self.sql(SHOP)
        self.sql("DELETE FROM shipments")
        conf = self.config(ORDERS, INVOICES_KEEP)
        proc, before, after = self.erase_and_run(conf, plan="partial")
        # order 1 has an invoice (kept, and so the order is kept); order 2 goes
        self.assertEqual(self.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM orders"), "1,3")
        self.assertEqual(after["invoices"], before["invoices"])
        status, detail = self.request()
        self.assertEqual(status, "partial")
        self.assertEqual(self.sql("SELECT completed_at IS NOT NULL FROM retention.erasure_requests"), "t")
        kept = {k["table"]: k for k in detail["kept"]}
        self.assertEqual(set(kept), {"public.invoices", "public.orders"})
        self.assertEqual((kept["public.invoices"]["rows"], kept["public.invoices"]["rule"]),
                         (1, "invoices"))
        self.assertEqual((kept["public.orders"]["rows"], kept["public.orders"]["rule"],
                          kept["public.orders"]["referred_to_by"]),
                         (1, "invoices", "public.invoices"))
        for k in kept.values():
            self.assertEqual(k["policy"], "Financial records are kept for 10 years")
        self.assertEqual(detail["blocked_by"], [])
        self.assertOutput(proc, r'rule "orders": deleted 1 rows; 1 rows kept, referred to by '
                                r'public.invoices: rule "invoices"', stream="stdout")
        # a partial request is finished: the next cycle leaves it alone
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.request()[0], "partial")
        self.assertEqual(len(self.smtp.messages()), 0)

    def test_child_with_a_deidentify_rule(self):
        self.sql(SHOP)
        self.sql("DELETE FROM invoices")
        conf = self.config(ORDERS, SHIPMENTS_DEID)
        proc, before, after = self.erase_and_run(conf, deidentified=3, plan="partial")
        self.assertEqual(self.sql("SELECT count(*) FROM shipments WHERE address = "
                                  f"'{ADDRESS}'"), "0")
        self.assertEqual(self.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM shipments "
                                  "WHERE address = '[redacted]' AND deidentified_at IS NOT NULL"),
                         "10,20,21")
        self.assertEqual(self.sql("SELECT address FROM shipments WHERE id = 30"), "elsewhere")
        # the de-identified shipments still refer to their orders: those stay,
        # kept under the shipments rule
        self.assertEqual(after, before)
        status, detail = self.request()
        self.assertEqual(status, "partial")
        self.assertEqual([(k["table"], k["rows"], k["rule"], k["policy"]) for k in detail["kept"]],
                         [("public.orders", 2, "shipments", "delivery addresses are kept 1 year")])
        self.assertEqual(int(self.sql("SELECT sum(rows) FROM retention.actions WHERE "
                                      "action = 'erasure' AND rule = 'shipments'")), 3)
        self.assertNoPersonalData(json.dumps(detail) + proc.stderr + proc.stdout)

    def test_cascading_children_go_with_their_parent_or_stay_with_it(self):
        """order_items has no rule but cascades from orders: it never
        blocks; the items of a deleted order go with it, those of an order
        an invoice keeps are kept with it. A kept invoice whose key would
        cascade keeps its order all the same."""
        self.sql(SHOP)
        self.sql("""
DELETE FROM shipments;
ALTER TABLE invoices DROP CONSTRAINT invoices_order_id_fkey,
  ADD FOREIGN KEY (order_id) REFERENCES orders ON DELETE CASCADE;
CREATE TABLE order_items (id int PRIMARY KEY,
                          order_id int NOT NULL REFERENCES orders ON DELETE CASCADE);
INSERT INTO order_items VALUES (1, 1), (2, 2), (3, 2), (4, 3);
""")
        conf = self.config(ORDERS, INVOICES_KEEP)
        proc, before, after = self.erase_and_run(conf, plan="partial")
        self.assertEqual(self.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM orders"), "1,3")
        self.assertEqual(self.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM invoices"),
                         "100,300")
        self.assertEqual(self.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM order_items"),
                         "1,4")
        status, detail = self.request()
        self.assertEqual(status, "partial")
        self.assertEqual(detail["blocked_by"], [])
        self.assertEqual(sorted((k["table"], k["rows"], k["rule"]) for k in detail["kept"]),
                         [("public.invoices", 1, "invoices"), ("public.order_items", 1, "invoices"),
                          ("public.orders", 1, "invoices")])
        self.assertOutput(proc, r"kept with their parent rows \(ON DELETE CASCADE\): table "
                                r"public.order_items: 1 rows: rule \"invoices\"", stream="stdout")
        self.assertEqual(len(self.smtp.messages()), 0)

    def test_deidentified_child_whose_key_cascades_goes_with_its_parent(self):
        """De-identified rows keep what they refer to only where their key
        would stop the delete; here it cascades: the orders go, and the
        de-identified shipments with them."""
        self.sql(SHOP)
        self.sql("""
DELETE FROM invoices;
ALTER TABLE shipments DROP CONSTRAINT shipments_order_id_fkey,
  ADD FOREIGN KEY (order_id) REFERENCES orders ON DELETE CASCADE;
""")
        conf = self.config(ORDERS, SHIPMENTS_DEID)
        self.assertExit(self.rd(conf, "init-db"), 0)
        self.assertExit(self.rd(conf, "erase", "customer:51"), 0)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertEqual(self.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM orders"), "3")
        self.assertEqual(self.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM shipments"), "30")
        status, detail = self.request()
        self.assertEqual(status, "done")
        self.assertEqual(detail["kept"], [])
        # the audit trail: 3 de-identified, 2 orders deleted (and the
        # cascade named in the orders' audit row)
        self.assertEqual(self.sql("SELECT string_agg(rule || '=' || rows, ',' ORDER BY rule)"
                                  " FROM retention.actions WHERE action = 'erasure'"),
                         "orders=2,shipments=3")
        self.assertExit(self.rd(conf, "verify"), 0)

    # --- a referring table that no rule covers --------------------------------------

    def test_child_with_no_rule_blocks_and_staff_are_mailed_once(self):
        self.sql(SHOP)
        self.sql("""
CREATE TABLE order_flags (id int PRIMARY KEY, order_id int NOT NULL REFERENCES orders, flag int);
INSERT INTO order_flags VALUES (1, 1, 7), (2, 2, 8), (3, 2, 9), (4, 3, 1);
""")
        conf = self.config(ORDERS, SHIPMENTS_DELETE, INVOICES_DELETE)
        proc, before, after = self.erase_and_run(conf, plan="pending")
        # the covered children went; the orders stay, blocked by order_flags
        self.assertEqual(self.sql("SELECT count(*) FROM orders WHERE customer_id = 51"), "2")
        self.assertEqual(self.sql("SELECT count(*) FROM shipments"), "1")
        self.assertEqual(self.sql("SELECT count(*) FROM order_flags"), "4")
        status, detail = self.request()
        self.assertEqual(status, "pending")
        self.assertEqual([(b["table"], b["rows"]) for b in detail["blocked_by"]],
                         [("public.order_flags", 3)])
        self.assertEqual(detail["mailed"], ["public.order_flags"])
        self.assertOutput(proc, r"erasure request 1 is blocked: 3 rows of table "
                                r"public.order_flags, which no rule covers")
        self.assertOutput(proc, r"blocked by table public.order_flags: 3 rows", stream="stdout")
        msgs = self.smtp.wait_for_messages(1)
        self.assertEqual(len(msgs), 1)
        self.assertIn("erasure request 1 is blocked by public.order_flags", msgs[0]["Subject"])
        body = msgs[0].get_body(("plain",)).get_content()
        self.assertIn("public.order_flags: 3 rows", body)
        self.assertNoPersonalData(body + json.dumps(detail) + proc.stderr)

        # the next cycle: still blocked, no second mail
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertEqual(self.request()[0], "pending")
        self.assertEqual(len(self.smtp.wait_for_messages(2, timeout=3)), 1)
        self.assertEqual(self.request()[1]["mailed"], ["public.order_flags"])

        # coverage lists the table that blocks
        cov = self.rd(conf, "coverage", "--format", "json")
        self.assertExit(cov, 1)
        tables = {t["table"]: t for t in json.loads(cov.stdout)["tables"]}
        self.assertIn("public.order_flags", tables)
        self.assertFalse(tables["public.order_flags"]["covered"])

        # staff add a rule: the next cycle finishes the request
        conf = self.config(ORDERS, SHIPMENTS_DELETE, INVOICES_DELETE, """
{ name = "flags"; policy = "flags go with their order"; table = "order_flags";
  age_column = "flagged_at"; retain = "1 year"; }""")
        self.sql("ALTER TABLE order_flags ADD flagged_at timestamptz NOT NULL DEFAULT now()")
        before = self.rows()
        flags = int(self.sql("SELECT count(*) FROM order_flags"))
        audit = self.erasure_audit()
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.request()[0], "done")
        self.assertEqual(self.sql("SELECT count(*) FROM orders WHERE customer_id = 51"), "0")
        removed = (before["orders"] - self.rows()["orders"]
                   + flags - int(self.sql("SELECT count(*) FROM order_flags")))
        self.assertEqual(removed, 5)
        self.assertEqual(self.erasure_audit() - audit, removed)
        self.assertExit(self.rd(conf, "verify"), 0)

    # --- a table that refers to itself --------------------------------------------

    def test_self_referencing_table_is_erased_level_by_level(self):
        self.sql("""
CREATE TABLE comments (id int PRIMARY KEY, author_id int NOT NULL,
                       parent_id int REFERENCES comments, posted_at timestamptz NOT NULL);
-- 51's comment 1 has a reply (2) with a reply (3); 51's comment 4 stands alone;
-- 52's comment 5 is nobody's reply
INSERT INTO comments VALUES (1, 51, NULL, now()), (2, 52, 1, now()), (3, 53, 2, now()),
                            (4, 51, NULL, now()), (5, 52, NULL, now());
""")
        conf = write_config(self.tmp, f"""
database: {{ conninfo = "{self.cluster.conninfo(self.db)}"; }};
rules = (
{{ name = "comments"; policy = "comments are kept 5 years"; table = "comments";
  age_column = "posted_at"; retain = "5 years";
  subject = "customer"; subject_column = "author_id"; }}
);
""")
        self.assertExit(self.rd(conf, "init-db"), 0)
        self.assertExit(self.rd(conf, "erase", "customer:51"), 0)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertEqual(self.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM comments"), "5", proc.stdout + proc.stderr)
        self.assertEqual(self.erasure_audit(), 4)
        status, detail = self.request()
        self.assertEqual(status, "done")
        self.assertEqual(detail["rules"][0]["rows"], 4)
        self.assertExit(self.rd(conf, "verify"), 0)

    # --- held, nothing left ----------------------------------------------------------

    def test_held_subject_touches_nothing_anywhere(self):
        self.sql(SHOP)
        conf = self.config(ORDERS, SHIPMENTS_DELETE, INVOICES_KEEP)
        self.assertExit(self.rd(conf, "init-db"), 0)
        self.assertExit(self.rd(conf, "hold", "add", "customer:51", "--reason", "court order"), 0)
        before = self.rows()
        addresses = self.sql("SELECT string_agg(address, ',' ORDER BY id) FROM shipments")
        self.assertExit(self.rd(conf, "erase", "customer:51"), 0)
        self.assertExit(self.rd(conf, "run"), 0)
        self.assertEqual(self.rows(), before)
        self.assertEqual(self.sql("SELECT string_agg(address, ',' ORDER BY id) FROM shipments"),
                         addresses)
        self.assertEqual(self.request()[0], "held")
        self.assertEqual(self.erasure_audit(), 0)
        self.assertEqual(self.sql("SELECT count(*) FROM retention.actions "
                                  "WHERE action = 'erasure'"), "0")
        self.assertExit(self.rd(conf, "verify"), 0)

    def test_request_with_nothing_left_is_done(self):
        self.sql(SHOP)
        conf = self.config(ORDERS, SHIPMENTS_DELETE, INVOICES_DELETE)
        proc, before, after = self.erase_and_run(conf, who="customer:99")
        self.assertEqual(after, before)
        status, detail = self.request()
        self.assertEqual(status, "done")
        self.assertEqual(detail["kept"], [])
        self.assertEqual(detail["blocked_by"], [])
        self.assertEqual(self.erasure_audit(), 0)

    # --- issue 18's shop ---------------------------------------------------------------

    def test_shop_of_issue_18_ends_partial_with_its_kept_parts(self):
        self.sql(SHOP)
        conf = self.config(ORDERS, SHIPMENTS_DELETE, INVOICES_KEEP)
        proc, before, after = self.erase_and_run(conf, plan="partial")
        # every shipment of the customer's orders is gone; the invoice stays,
        # and so does the order it refers to; the other order is gone
        self.assertEqual(self.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM shipments"), "30")
        self.assertEqual(self.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM invoices"),
                         "100,300")
        self.assertEqual(self.sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM orders"), "1,3")
        status, detail = self.request()
        self.assertEqual(status, "partial")
        self.assertEqual(sorted((k["table"], k["rows"], k["rule"]) for k in detail["kept"]),
                         [("public.invoices", 1, "invoices"), ("public.orders", 1, "invoices")])
        self.assertEqual(detail["blocked_by"], [])
        self.assertEqual({r["rule"]: (r["rows"], r["kept"], r["blocked"]) for r in detail["rules"]},
                         {"shipments": (3, 0, 0), "invoices": (0, 1, 0), "orders": (1, 1, 0)})
        self.assertOutput(proc, r"erasure request 1 \(customer:51.*\): partial", stream="stdout")
        self.assertNoPersonalData(json.dumps(detail) + proc.stderr + proc.stdout)


if __name__ == "__main__":
    main()
