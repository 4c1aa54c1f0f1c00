"""The ledger, restore detection and replay (SPEC §11), and the cycle's
audit check from the ledger's head (issue 20).

Promises checked: state_directory/ledger is created 0600 in a 0700
directory and holds subject kind and id and nothing else of a person (no
e-mail, no name, no row value); a database restored from a dump taken
before an erasure is noticed by the next cycle, which logs an error, mails
staff directly, records exactly one restore_detected action and files the
erasure again ("re-applied after restore"), which that same cycle carries
out, and `verify` passes; the run after that re-files nothing; `replay
--dry-run` lists what the database lacks and changes nothing, `replay`
files it; a torn last line or a damaged line in the ledger is skipped with
a warning and the next cycle works and cuts the torn line off, also after
a writer was really killed (SIGKILL) in the middle of an append; the cycle
checks the audit rows appended since the ledger's head (a row changed
before it is not re-read by the cycle) while `verify` still checks every
row and finds it.
"""

import json
import os
import re
import signal
import stat
import subprocess
import time

from harness import (IntegrationTest, SmtpServer, clean_env, main, spawn,
                     write_config, write_secret)

PASSWORD = "s3cret-smtp"
EMAIL = "ada.lovelace@example.org"
NAME = "Ada Lovelace"
PHONE = "+44 20 7946 0958"


class RestoreTest(IntegrationTest):

    def setUp(self):
        super().setUp()
        self.db = "t_" + self._testMethodName[5:40].lower()
        self.cluster.createdb(self.db)
        self.smtp = SmtpServer(starttls=True, auth=("retentiond", PASSWORD))
        self.smtp.start()
        self.addCleanup(self.smtp.stop)
        self.pwfile = write_secret(os.path.join(self.tmp, "smtp.password"), PASSWORD)
        self.reports = os.path.join(self.tmp, "reports")
        os.mkdir(self.reports)
        self.ledger = os.path.join(self.state, "ledger")

    def sql(self, text):
        return self.cluster.psql(text, dbname=self.db)

    def config(self, send="errors"):
        return write_config(self.tmp, f"""
database: {{ conninfo = "{self.cluster.conninfo(self.db)}"; }};
mail: {{ url = "{self.smtp.url}"; username = "retentiond";
        password_file = "{self.pwfile}"; ca_file = "{self.smtp.cafile}";
        from = "Retention <retention@example.com>";
        to = [ "dpo@example.com" ]; send = "{send}"; timeout = "10s"; }};
report: {{ directory = "{self.reports}"; formats = [ "json" ]; }};
metrics_file = "{self.tmp}/retentiond.prom";
rules = (
  {{ name = "customers"; policy = "closed accounts are kept 1 year";
     table = "public.customers"; age_column = "closed_at"; retain = "1 year";
     subject = "customer"; subject_column = "id"; }},
  {{ name = "events"; policy = "events are kept 2 days";
     table = "public.events"; age_column = "created_at"; retain = "2 days";
     subject = "customer"; subject_column = "customer_id"; }}
);
""")

    def rd(self, conf, *args, **kw):
        return self.run_rd(list(args), config=conf, **kw)

    def seed(self):
        self.sql(f"""
CREATE TABLE customers (id int PRIMARY KEY, email text, full_name text,
                        phone text, closed_at timestamptz);
CREATE TABLE events (id serial PRIMARY KEY, created_at timestamptz NOT NULL,
                     customer_id int NOT NULL REFERENCES customers,
                     payload text);
CREATE INDEX ON events (created_at);
INSERT INTO customers SELECT g, 'c' || g || '@example.com', 'Customer ' || g,
                             '555-' || g, NULL FROM generate_series(1, 10) g;
UPDATE customers SET email = '{EMAIL}', full_name = '{NAME}', phone = '{PHONE}'
 WHERE id = 7;
INSERT INTO events (created_at, customer_id, payload)
SELECT now() - interval '10 days' - g * interval '1 minute', 1 + g % 10,
       'old ' || g FROM generate_series(1, 30) g;
INSERT INTO events (created_at, customer_id, payload)
SELECT now() - interval '1 hour', 1 + g % 10, 'visited from {EMAIL}'
FROM generate_series(1, 60) g;
""")

    def customer7_rows(self):
        return int(self.sql("SELECT (SELECT count(*) FROM customers WHERE id = 7)"
                            " + (SELECT count(*) FROM events WHERE customer_id = 7)"))

    def count(self, where):
        return int(self.sql(f"SELECT count(*) FROM retention.{where}"))

    def dump(self):
        path = os.path.join(self.tmp, "before.dump")
        subprocess.run([self.cluster._bin("pg_dump"), "-Fc", "-f", path,
                        "-h", self.cluster.host, "-p", str(self.cluster.port),
                        "-U", "postgres", self.db],
                       env=clean_env(), check=True, timeout=120)
        return path

    def restore(self, path):
        """Drop the database and restore the dump: a new database, the same
        name, the state of the backup."""
        self.cluster.psql(f'DROP DATABASE "{self.db}" WITH (FORCE);')
        self.cluster.createdb(self.db)
        subprocess.run([self.cluster._bin("pg_restore"), "-d", self.db,
                        "-h", self.cluster.host, "-p", str(self.cluster.port),
                        "-U", "postgres", "--exit-on-error", path],
                       env=clean_env(), check=True, timeout=120)

    def ledger_text(self):
        with open(self.ledger, "rb") as f:
            return f.read()

    def erase_and_run(self, conf):
        self.assertExit(self.rd(conf, "erase", "customer:7", "--reason", "asked by mail"), 0)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertEqual(self.customer7_rows(), 0)
        return proc

    # --- the ledger ----------------------------------------------------------------

    def test_ledger_holds_ids_and_heads_and_no_personal_data(self):
        self.seed()
        conf = self.config()
        self.assertExit(self.rd(conf, "init-db"), 0)
        self.assertFalse(os.path.exists(self.state))
        self.erase_and_run(conf)

        self.assertEqual(stat.S_IMODE(os.stat(self.state).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(self.ledger).st_mode), 0o600)
        data = self.ledger_text()
        req = self.sql("SELECT id, to_char(completed_at AT TIME ZONE 'UTC',"
                       " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
                       " FROM retention.erasure_requests").split("|")
        lines = data.decode().splitlines()
        erasures = [l.split("\t") for l in lines if l.startswith("erasure\t")]
        self.assertEqual([e[:5] for e in erasures],
                         [["erasure", req[0], "customer", "7", req[1]]])
        heads = [l.split("\t") for l in lines if l.startswith("head\t")]
        last = self.sql("SELECT id, hash FROM retention.actions ORDER BY id DESC LIMIT 1")
        self.assertEqual(heads[-1][1:3], last.split("|"))
        self.assertEqual(heads[-1][3], self.sql("SELECT count(*) FROM retention.actions"))
        # nothing of the person: no e-mail, name, phone, row value, reason
        for value in (EMAIL, "ada.lovelace", NAME, "Lovelace", PHONE, "visited",
                      "old ", "asked by mail", "example.org"):
            self.assertNotIn(value.encode(), data, value)
        for line in lines:
            self.assertTrue(line.startswith(("#", "erasure\t", "head\t")), line)

    def test_a_torn_last_line_is_skipped_and_cut_off(self):
        self.seed()
        conf = self.config()
        self.assertExit(self.rd(conf, "init-db"), 0)
        self.erase_and_run(conf)
        good = self.ledger_text()
        # what a SIGKILL in the middle of an append leaves: half a line
        torn = b"erasure\t99\tcustomer\t3\t2026-01-0"
        with open(self.ledger, "ab") as f:
            f.write(torn)
        self.sql("INSERT INTO events (created_at, customer_id)"
                 " VALUES (now() - interval '9 days', 2)")
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, r"ledger:\d+: ignoring a torn last line")
        self.assertOutput(proc, r"cutting off a torn last line")
        self.assertNoOutput(proc, r"restored from a backup")
        data = self.ledger_text()
        self.assertTrue(data.startswith(good))
        self.assertNotIn(torn, data)
        self.assertTrue(data.endswith(b"\n"))
        # the cycle after that reads a clean ledger
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertNoOutput(proc, r"ledger")
        self.assertEqual(self.count("actions WHERE action = 'restore_detected'"), 0)

    def test_a_writer_killed_mid_append_leaves_a_usable_ledger(self):
        """A real SIGKILL in the middle of an append (the test seam writes
        each append in two halves, 5 s apart, and changes nothing else):
        the next run warns about the torn last line with FILE:LINE, does not
        crash, cuts it off, and the ledger stays usable."""
        self.seed()
        conf = self.config()
        self.assertExit(self.rd(conf, "init-db"), 0)
        self.erase_and_run(conf)
        good = self.ledger_text()
        self.assertTrue(good.endswith(b"\n"))
        # a second erasure, whose ledger line the kill tears
        self.assertExit(self.rd(conf, "erase", "customer:3"), 0)
        proc = spawn(["run"], config=conf,
                     env={"RETENTIOND_INJECT_FAULT": "ledger_slow_append"})
        deadline = time.monotonic() + 60
        torn = False
        while time.monotonic() < deadline and proc.poll() is None:
            data = self.ledger_text()
            if len(data) > len(good) and not data.endswith(b"\n"):
                torn = True
                break
            time.sleep(0.05)
        self.assertTrue(torn, "the run never left half a line in the ledger")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        self.assertEqual(proc.returncode, -signal.SIGKILL)
        self.assertFalse(self.ledger_text().endswith(b"\n"))
        n_lines = self.ledger_text().count(b"\n") + 1

        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, rf"{re.escape(self.ledger)}:{n_lines}: "
                                r"ignoring a torn last line")
        self.assertOutput(proc, r"cutting off a torn last line")
        self.assertNoOutput(proc, r"restored from a backup")
        data = self.ledger_text()
        self.assertTrue(data.startswith(good))
        self.assertTrue(data.endswith(b"\n"))
        # usable: read back clean by the next cycle and by replay
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertNoOutput(proc, r"ledger")
        self.assertExit(self.rd(conf, "replay", "--dry-run"), 0)
        self.assertEqual(self.count("actions WHERE action = 'restore_detected'"), 0)
        self.assertExit(self.rd(conf, "verify"), 0)

    def test_a_damaged_line_is_skipped_with_a_warning(self):
        self.seed()
        conf = self.config()
        self.assertExit(self.rd(conf, "init-db"), 0)
        self.erase_and_run(conf)
        data = self.ledger_text()
        lines = data.split(b"\n")
        i = next(n for n, l in enumerate(lines) if l.startswith(b"erasure\t"))
        lines[i] = lines[i].replace(b"customer\t7", b"customer\t8")  # checksum now wrong
        with open(self.ledger, "wb") as f:
            f.write(b"\n".join(lines))
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, rf"ledger:{i + 1}: ignoring a damaged line")

    def test_bad_state_directory_is_a_config_error(self):
        conf = write_config(self.tmp, f"""
database: {{ conninfo = "{self.cluster.conninfo(self.db)}"; }};
state_directory = "var/lib/retentiond";
rules = ( {{ name = "x"; policy = "p"; table = "t"; age_column = "c"; retain = "1d"; }} );
""")
        proc = self.rd(conf, "check")
        self.assertExit(proc, 2)
        self.assertOutput(proc, rf"{conf}:3: \"state_directory\" must be an absolute path")

    def test_state_directory_from_the_config(self):
        self.seed()
        state = os.path.join(self.tmp, "elsewhere")
        conf = self.config()
        with open(conf, "a") as f:
            f.write(f'state_directory = "{state}";\n')
        self.assertExit(self.rd(conf, "init-db"), 0)
        self.erase_and_run(conf)
        self.assertTrue(os.path.exists(os.path.join(state, "ledger")))
        self.assertFalse(os.path.exists(self.ledger))

    # --- a restore ------------------------------------------------------------------

    def test_restore_from_backup_re_applies_the_erasure(self):
        self.seed()
        conf = self.config()
        self.assertExit(self.rd(conf, "init-db"), 0)
        self.assertExit(self.rd(conf, "run"), 0)   # expired events: audit rows
        backup = self.dump()
        had = self.customer7_rows()
        self.erase_and_run(conf)
        self.assertEqual(len(self.smtp.messages()), 0)   # send = "errors"

        self.restore(backup)
        self.assertEqual(self.customer7_rows(), had)   # the person is back
        self.assertEqual(self.count("erasure_requests"), 0)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, r"error: the audit trail lacks action \d+ .* the "
                                r"database was restored from a backup")
        # erased again, in the same cycle
        self.assertEqual(self.customer7_rows(), 0)
        self.assertEqual(self.count("actions WHERE action = 'restore_detected'"), 1)
        self.assertEqual(self.sql("SELECT subject || ':' || subject_id || '|' || reason"
                                  " || '|' || status FROM retention.erasure_requests"),
                         "customer:7|re-applied after restore|done")
        detail = json.loads(self.sql("SELECT detail FROM retention.actions"
                                     " WHERE action = 'restore_detected'"))
        self.assertEqual([(r["subject"], r["subject_id"]) for r in detail["refiled"]],
                         [("customer", "7")])
        # staff are mailed directly, not through the (restored) outbox
        msgs = self.smtp.wait_for_messages(1)
        subjects = [m["Subject"] for m in msgs]
        self.assertIn("retentiond ALERT: database restored from a backup: "
                      "erasures re-applied", subjects)
        alert = next(m for m in msgs if "restored" in m["Subject"])
        body = alert.get_body(preferencelist=("plain",)).get_content()
        self.assertIn("customer:7", body)
        self.assertNotIn(EMAIL, body)
        self.assertOutput(proc, r"mailed directly, without the outbox")
        self.assertExit(self.rd(conf, "verify"), 0)

        # the next cycle finds the head it recorded: nothing re-filed
        n_mail = len(self.smtp.messages())
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertNoOutput(proc, r"restored")
        self.assertEqual(self.count("erasure_requests"), 1)
        self.assertEqual(self.count("actions WHERE action = 'restore_detected'"), 1)
        self.assertEqual(len(self.smtp.messages()), n_mail)
        # nor does replay find anything missing
        proc = self.rd(conf, "replay", "--dry-run")
        self.assertExit(proc, 0)
        self.assertEqual(proc.stdout,
                         "would re-file 0 erasure requests of the ledger that "
                         "the database lacks\n")
        self.assertExit(self.rd(conf, "verify"), 0)

    def test_replay_dry_run_lists_and_changes_nothing_then_replay_files(self):
        self.seed()
        conf = self.config()
        self.assertExit(self.rd(conf, "init-db"), 0)
        backup = self.dump()
        had = self.customer7_rows()
        self.erase_and_run(conf)
        req = self.sql("SELECT id FROM retention.erasure_requests")
        self.restore(backup)
        ledger = self.ledger_text()
        before = self.sql("SELECT (SELECT count(*) FROM retention.erasure_requests),"
                          " (SELECT count(*) FROM retention.actions),"
                          " (SELECT count(*) FROM retention.runs)")

        proc = self.rd(conf, "replay", "--dry-run")
        self.assertExit(proc, 0)
        self.assertRegex(proc.stdout,
                         rf"^would re-file customer:7 \(request {req}, completed "
                         r"\d{4}-\d\d-\d\dT[\d:.]+Z\)\n"
                         r"would re-file 1 erasure request of the ledger that "
                         r"the database lacks\n$")
        self.assertEqual(self.sql("SELECT (SELECT count(*) FROM retention.erasure_requests),"
                                  " (SELECT count(*) FROM retention.actions),"
                                  " (SELECT count(*) FROM retention.runs)"), before)
        self.assertEqual(self.ledger_text(), ledger)
        self.assertEqual(self.customer7_rows(), had)

        proc = self.rd(conf, "replay")
        self.assertExit(proc, 0)
        self.assertRegex(proc.stdout, r"erasure request \d+: re-filed customer:7 ")
        self.assertEqual(self.sql("SELECT reason || '|' || status"
                                  " FROM retention.erasure_requests"),
                         "re-applied after restore|pending")
        self.assertEqual(self.count("actions WHERE action = 'restore_detected'"), 1)
        proc = self.rd(conf, "replay", "--dry-run")
        self.assertIn("would re-file 0 erasure requests", proc.stdout)
        self.assertExit(self.rd(conf, "replay", "--bogus"), 2)

    # --- the cycle's audit check (issue 20) -------------------------------------------

    def test_cycle_checks_from_the_ledger_head_verify_checks_all(self):
        self.seed()
        conf = self.config(send="never")
        self.assertExit(self.rd(conf, "init-db"), 0)
        self.assertExit(self.rd(conf, "run"), 0)
        self.erase_and_run(conf)
        total = int(self.sql("SELECT count(*) FROM retention.actions"))
        self.assertGreaterEqual(total, 2)

        # an old row changed behind the triggers' back
        self.sql("SET session_replication_role = replica;"
                 " UPDATE retention.actions SET rows = rows + 1"
                 " WHERE id = (SELECT min(id) FROM retention.actions);")
        first = self.sql("SELECT min(id) FROM retention.actions")
        self.sql("INSERT INTO events (created_at, customer_id)"
                 " VALUES (now() - interval '9 days', 2)")
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        run_id = self.sql("SELECT max(id) FROM retention.runs")
        with open(os.path.join(self.reports, f"run-{run_id}.json")) as f:
            audit = json.load(f)["audit"]
        # the cycle walked only the new row, from the ledger's head; the
        # count is the whole trail's
        self.assertEqual(audit["status"], "intact")
        self.assertEqual(audit["actions"], total + 1)
        self.assertEqual(audit["head"], self.sql(
            "SELECT hash FROM retention.actions ORDER BY id DESC LIMIT 1"))
        # the metrics file says what the cycle found, without a walk of its own
        self.assertIn("\nretentiond_audit_chain_ok 1\n", self.metrics())
        # verify reads every row and finds the old one
        proc = self.rd(conf, "verify")
        self.assertExit(proc, 1)
        self.assertRegex(proc.stdout, rf"audit chain broken at action {first}: row was changed")

    def test_a_changed_row_after_the_ledger_head_is_found_by_the_cycle(self):
        self.seed()
        conf = self.config(send="never")
        self.assertExit(self.rd(conf, "init-db"), 0)
        self.assertExit(self.rd(conf, "run"), 0)
        head = self.sql("SELECT max(id) FROM retention.actions")
        # rows appended by someone else after the head the ledger knows
        self.erase_and_run(conf)
        with open(self.ledger, "rb") as f:
            lines = f.read().split(b"\n")
        # forget the newest head, as if the last cycle had not recorded it
        keep = [l for l in lines if not l.startswith(b"head\t")
                or l.split(b"\t")[1] == head.encode()]
        with open(self.ledger, "wb") as f:
            f.write(b"\n".join(keep))
        self.sql("SET session_replication_role = replica;"
                 f" UPDATE retention.actions SET rows = rows + 1 WHERE id > {head};")
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        run_id = self.sql("SELECT max(id) FROM retention.runs")
        with open(os.path.join(self.reports, f"run-{run_id}.json")) as f:
            audit = json.load(f)["audit"]
        self.assertEqual(audit["status"], "broken")
        self.assertEqual(audit["first_bad_id"], int(head) + 1)
        self.assertIn("\nretentiond_audit_chain_ok 0\n", self.metrics())

    def metrics(self):
        with open(os.path.join(self.tmp, "retentiond.prom")) as f:
            return f.read()


if __name__ == "__main__":
    main()
