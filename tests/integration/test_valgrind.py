"""A full cycle under valgrind memcheck (issue 8): no invalid read or
write, no use of uninitialised memory, no definite leak.

Every command of one cycle runs under valgrind — check, init-db, hold,
erase, plan, run with delete, de-identify (every method), a legal hold and
an erasure request, mail through STARTTLS + AUTH, report in every format,
verify — then the daemon for one cycle and SIGTERM. Any memcheck error or
definite leak makes valgrind exit 99, which fails the command.

Not part of `make check`: scripts/check runs it against build/ (valgrind
cannot run an ASan binary), as

    make -C build check TESTS=tests/integration/test_valgrind.py

Skipped when valgrind is missing or the binary is built with sanitizers.
"""

import os
import shutil
import signal
import time
import unittest

import harness
from harness import IntegrationTest, SmtpServer, main, write_config, write_secret

KEY = "valgrind-test-pseudonym-key-0123456789"
PASSWORD = "s3cret-smtp"
VALGRIND_ERROR = 99


def _sanitized(binary):
    try:
        with open(binary, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


class ValgrindTest(IntegrationTest):

    @classmethod
    def setUpClass(cls):
        if not shutil.which("valgrind"):
            raise unittest.SkipTest("valgrind is not installed (scripts/deps)")
        if _sanitized(harness.RETENTIOND):
            raise unittest.SkipTest("the binary is built with sanitizers; "
                                    "valgrind cannot run it")
        super().setUpClass()

    def setUp(self):
        super().setUp()
        self.db = "t_" + self._testMethodName[5:40].lower()
        self.cluster.createdb(self.db)
        self.vgdir = os.path.join(self.tmp, "valgrind")
        os.mkdir(self.vgdir)
        # One log per process; --error-exitcode makes a finding fail the
        # command, the log says what it was.
        wrapper = ("valgrind -q --error-exitcode=%d --leak-check=full "
                   "--errors-for-leak-kinds=definite --show-leak-kinds=definite "
                   "--num-callers=30 --log-file=%s/vg.%%p.log"
                   % (VALGRIND_ERROR, self.vgdir))
        old = os.environ.get("RETENTIOND_WRAPPER")
        os.environ["RETENTIOND_WRAPPER"] = wrapper
        self.addCleanup(self._restore, old)

    @staticmethod
    def _restore(old):
        if old is None:
            os.environ.pop("RETENTIOND_WRAPPER", None)
        else:
            os.environ["RETENTIOND_WRAPPER"] = old

    def valgrind_logs(self):
        out = []
        for name in sorted(os.listdir(self.vgdir)):
            with open(os.path.join(self.vgdir, name), errors="replace") as f:
                text = f.read()
            if text.strip():
                out.append(f"--- {name} ---\n{text}")
        return "\n".join(out)

    def rd(self, conf, *args, code=0, **kw):
        kw.setdefault("timeout", 180)
        proc = self.run_rd(list(args), config=conf, **kw)
        if proc.returncode == VALGRIND_ERROR:
            self.fail(f"valgrind found errors in {' '.join(args)}:\n"
                      f"{self.valgrind_logs()}\n--- stderr ---\n{proc.stderr}")
        self.assertExit(proc, code)
        return proc

    def sql(self, text):
        return self.cluster.psql(text, dbname=self.db)

    def test_full_cycle_is_clean_under_memcheck(self):
        self.sql("""
CREATE TABLE customers (id int PRIMARY KEY, closed_at timestamptz, email text,
  full_name text, phone text, last_ip inet, born date, contact text,
  deidentified_at timestamptz);
INSERT INTO customers
SELECT g, now() - interval '400 days', 'c' || g || '@example.com', 'Name ' || g,
       '+44 ' || g, ('10.0.' || g || '.7')::inet, '1980-06-15', 'x' || g || '@mail.example.org', NULL
FROM generate_series(1, 30) g;
CREATE TABLE events (id serial PRIMARY KEY, created_at timestamptz NOT NULL,
  customer_id int NOT NULL REFERENCES customers, payload text);
CREATE INDEX ON events (created_at);
INSERT INTO events (created_at, customer_id, payload)
SELECT now() - interval '10 days', 1 + g % 30, 'old ' || g FROM generate_series(1, 60) g;
INSERT INTO events (created_at, customer_id, payload)
SELECT now(), 1 + g % 30, 'new ' || g FROM generate_series(1, 40) g;
""")
        smtp = SmtpServer(starttls=True, auth=("retentiond", PASSWORD))
        smtp.start()
        self.addCleanup(smtp.stop)
        keyfile = write_secret(os.path.join(self.tmp, "pseudonym.key"), KEY)
        pwfile = write_secret(os.path.join(self.tmp, "smtp.password"), PASSWORD)
        reports = os.path.join(self.tmp, "reports")
        conf = write_config(self.tmp, f"""
database: {{ conninfo = "{self.cluster.conninfo(self.db)}"; }};
schedule: {{ interval = "1h"; }};
limits: {{ batch_size = 7; pause = "0ms"; max_fraction = 1.0; }};
pseudonym_key_file = "{keyfile}";
mail: {{
  url = "{smtp.url}"; username = "retentiond"; password_file = "{pwfile}";
  ca_file = "{smtp.cafile}"; from = "Retention <retention@example.com>";
  to = [ "dpo@example.com" ]; send = "always"; timeout = "60s";
}};
report: {{ directory = "{reports}"; formats = [ "html", "csv", "json", "text" ]; }};
metrics_file = "{self.tmp}/retentiond.prom";
rules = (
  {{ name = "events"; policy = "Events are kept 2 days «ok»";
     table = "events"; age_column = "created_at"; retain = "2 days";
     subject = "customer"; subject_column = "customer_id"; }},
  {{ name = "customers"; policy = "Closed accounts are de-identified after a year";
     table = "customers"; age_column = "closed_at"; retain = "1 year";
     action = "deidentify"; marker_column = "deidentified_at";
     deidentify = {{ email = "hash"; full_name = "redact"; phone = "null";
                    last_ip = "truncate_ip"; born = "year"; contact = "mask_email"; }};
     subject = "customer"; subject_column = "id"; on_erasure = "delete"; }}
);
""")
        self.rd(conf, "check")
        self.rd(conf, "init-db")
        self.rd(conf, "hold", "add", "customer:3", "--reason", "litigation «A»")
        self.rd(conf, "erase", "customer:5", "--reason", "Art. 17")
        self.rd(conf, "hold", "list")
        self.rd(conf, "erasure", "list")
        self.rd(conf, "plan")
        proc = self.rd(conf, "run")
        self.assertRegex(proc.stdout, r"deleted \d+ rows")
        self.assertRegex(proc.stdout, r"de-identified \d+ rows")
        # the cycle did its work: held rows stay, the erased subject is gone
        self.assertEqual(self.sql("SELECT count(*) FROM events WHERE customer_id = 5"), "0")
        self.assertNotEqual(self.sql(
            "SELECT count(*) FROM events WHERE customer_id = 3 "
            "AND created_at < now() - interval '2 days'"), "0")
        self.assertEqual(self.sql("SELECT count(*) FROM customers WHERE "
                                  "deidentified_at IS NOT NULL"), "28")
        self.assertGreaterEqual(len(smtp.wait_for_messages(1, timeout=60)), 1)
        for fmt in ("text", "csv", "json", "html"):
            self.rd(conf, "report", "--format", fmt,
                    "--output", os.path.join(self.tmp, "r." + fmt))
        self.rd(conf, "verify")
        self.rd(conf, "grants", "retentiond_role")

        # the daemon: one cycle, then SIGTERM
        runs = int(self.sql("SELECT count(*) FROM retention.runs"))
        proc = harness.spawn(["daemon"] + (["--allow-root"] if harness.IS_ROOT else []),
                             config=conf)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if int(self.sql("SELECT count(*) FROM retention.runs WHERE "
                            "finished_at IS NOT NULL")) > runs:
                break
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=120)
        except Exception:
            proc.kill()
            proc.communicate()
            raise
        if proc.returncode == VALGRIND_ERROR:
            self.fail(f"valgrind found errors in the daemon:\n{self.valgrind_logs()}")
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(self.valgrind_logs(), "")


if __name__ == "__main__":
    main()
