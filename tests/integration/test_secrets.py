"""Secrets never appear (SPEC §3: "Secrets ... are never logged").

A database password (checked by PostgreSQL with scram-sha-256, not trust),
an SMTP password (checked by the SMTP server's AUTH) and a pseudonym key
(used by a "hash" method), each distinctive, go through every command with
-v: check, plan, run, report in every format, verify, hold, erase, grants,
the daemon for a few cycles; then a wrong SMTP password, a wrong database
password (in a file, inline in conninfo, in a URI), each failing. None of
them, nor their usual encodings (base64, as in SMTP AUTH; hex; the HMAC
pads the key becomes), may appear in:

  - the stdout and stderr of every command,
  - every report file and the metrics file,
  - every mail received,
  - every table of retentiond's schema (runs, actions, outbox, ...),
  - the command line of any process while the daemon runs (the daemon,
    its PostgreSQL backend), nor the daemon's environment,
  - PostgreSQL's own log of retentiond's sessions, with every statement
    logged: the "hash" method sends the key's HMAC pads as bind parameters,
    which the server logs in full unless retentiond turns that off for its
    session (it says so when it may not).
"""

import base64
import glob
import os
import signal
import subprocess
import time

from harness import (IS_ROOT, IntegrationTest, SmtpServer, clean_env, main, run,
                     spawn, write_config, write_secret)

ROOT_ARGS = ["--allow-root"] if IS_ROOT else []
ROLE = "secret_keeper"
DB_PASSWORD = "db-Pa55w0rd-7f3c9e1a-never-shown"
SMTP_USER = "mailer"
SMTP_PASSWORD = "smtp-Pa55w0rd-2b8d4f6a-never-shown"
KEY = "pseudonym-key-5e9a1c7b3d-never-shown"
WRONG_DB_PASSWORD = "wrong-db-Pa55w0rd-c4a2e8f0"
WRONG_SMTP_PASSWORD = "wrong-smtp-Pa55w0rd-9d1b3f5a"
INLINE_DB_PASSWORD = "inline-db-Pa55w0rd-6e2a8c4b"
SECRETS = {
    "database password": DB_PASSWORD,
    "SMTP password": SMTP_PASSWORD,
    "pseudonym key": KEY,
    "wrong database password": WRONG_DB_PASSWORD,
    "wrong SMTP password": WRONG_SMTP_PASSWORD,
    "inline database password": INLINE_DB_PASSWORD,
}


def hmac_pad(key, byte):
    return bytes(b ^ byte for b in key.encode().ljust(64, b"\0")).hex()


def forms(name, secret):
    """(label, text) of every way SECRET could be written out."""
    b = secret.encode()
    out = [(name, secret),
           (f"{name} in base64", base64.b64encode(b).decode()),
           (f"{name} in hex", b.hex())]
    for user in (SMTP_USER, ROLE):
        plain = base64.b64encode(b"\0" + user.encode() + b"\0" + b).decode()
        out.append((f"{name} as SMTP AUTH PLAIN", plain))
    if secret == KEY:
        out += [("HMAC inner pad of the key", hmac_pad(secret, 0x36)),
                ("HMAC outer pad of the key", hmac_pad(secret, 0x5C))]
    return out


FORBIDDEN = [f for name, s in SECRETS.items() for f in forms(name, s)]


class SecretsTest(IntegrationTest):

    # A server that logs every statement, with its bind parameters (in
    # full: log_parameter_max_length is -1 by default)
    CLUSTER_SETTINGS = {"log_min_duration_statement": "0"}

    @classmethod
    def setUpCluster(cls):
        cls.cluster.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{DB_PASSWORD}';")
        cls.cluster.createdb("t_secrets", owner=ROLE)
        # the role must give its password; everyone else keeps trust
        hba = os.path.join(cls.cluster.datadir, "pg_hba.conf")
        with open(hba) as f:
            text = f.read()
        with open(hba, "w") as f:
            f.write(f"local all {ROLE} scram-sha-256\n" + text)
        cls.cluster.psql("SELECT pg_reload_conf()")

    def setUp(self):
        super().setUp()
        self.db = "t_secrets"
        self.smtp = SmtpServer(starttls=True, auth=(SMTP_USER, SMTP_PASSWORD))
        self.smtp.start()
        self.addCleanup(self.smtp.stop)
        self.reports = os.path.join(self.tmp, "reports")
        os.mkdir(self.reports)
        self.metrics = os.path.join(self.tmp, "retentiond.prom")
        self.files = {
            "db": write_secret(os.path.join(self.tmp, "db.password"), DB_PASSWORD + "\n"),
            "smtp": write_secret(os.path.join(self.tmp, "smtp.password"), SMTP_PASSWORD),
            "key": write_secret(os.path.join(self.tmp, "pseudonym.key"), KEY + "\n"),
            "wrong-db": write_secret(os.path.join(self.tmp, "wrong-db.password"),
                                     WRONG_DB_PASSWORD),
            "wrong-smtp": write_secret(os.path.join(self.tmp, "wrong-smtp.password"),
                                       WRONG_SMTP_PASSWORD),
        }
        self.outputs = []       # (what, text) of everything retentiond said

    def sql(self, text):
        # as the owner's role, over trust as postgres
        return self.cluster.psql(f"SET ROLE {ROLE};\n{text}", dbname=self.db)

    def config(self, name="retentiond.conf", conninfo=None, db_password="db",
               smtp_password="smtp", interval="1h"):
        conninfo = conninfo or self.cluster.conninfo(self.db, user=ROLE)
        pw = f'password_file = "{self.files[db_password]}";' if db_password else ""
        return write_config(os.path.join(self.tmp, name), f"""
database: {{ conninfo = "{conninfo}"; {pw} connect_timeout = "5s"; }};
schedule: {{ interval = "{interval}"; }};
pseudonym_key_file = "{self.files['key']}";
mail: {{ url = "{self.smtp.url}"; username = "{SMTP_USER}";
        password_file = "{self.files[smtp_password]}"; ca_file = "{self.smtp.cafile}";
        from = "retentiond@example.com"; to = [ "dpo@example.com" ];
        send = "always"; timeout = "10s"; }};
report: {{ directory = "{self.reports}"; formats = [ "html", "csv", "json" ]; }};
metrics_file = "{self.metrics}";
rules = (
  {{ name = "accounts"; policy = "closed accounts are pseudonymised after a year";
    table = "public.accounts"; age_column = "closed_at"; retain = "1 year";
    action = "deidentify"; deidentify = {{ email = "hash"; name = "redact"; }};
    marker_column = "done_at"; subject = "customer"; subject_column = "id";
    max_fraction = 1.0; }},
  {{ name = "logins"; policy = "logins are kept 30 days"; table = "public.logins";
    age_column = "at"; retain = "30 days"; subject = "customer";
    subject_column = "account_id"; max_fraction = 1.0; }}
);
""")

    def seed(self):
        self.sql("""
CREATE TABLE accounts (id int PRIMARY KEY, closed_at timestamptz, email text,
                       name text, done_at timestamptz);
CREATE INDEX ON accounts (closed_at);
CREATE TABLE logins (id serial PRIMARY KEY, account_id int, at timestamptz NOT NULL);
CREATE INDEX ON logins (at);
INSERT INTO accounts SELECT g, now() - interval '2 years', 'user' || g || '@example.com',
                            'Person ' || g, NULL FROM generate_series(1, 30) g;
INSERT INTO logins (account_id, at) SELECT g % 30 + 1, now() - g * interval '1 day'
FROM generate_series(1, 90) g;
""")

    def rd(self, what, *args, conf=None, code=None, env=None):
        proc = run(["-v"] + list(args), config=conf or self.conf, env=env, timeout=60)
        self.outputs.append((f"{what}: stdout", proc.stdout))
        self.outputs.append((f"{what}: stderr", proc.stderr))
        if code is not None:
            self.assertExit(proc, code, what)
        return proc

    def assertClean(self, what, text):
        for label, needle in FORBIDDEN:
            self.assertNotIn(needle, text, f"the {label} appears in {what}")

    def collect_files_mail_tables(self):
        for path in sorted(glob.glob(os.path.join(self.reports, "*"))) + [self.metrics]:
            with open(path, errors="replace") as f:
                self.outputs.append((path, f.read()))
        for msg in self.smtp.messages():
            self.outputs.append((f"mail {msg.path}", msg.raw.decode("utf-8", "replace")))
        tables = self.cluster.query(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'retention'", dbname=self.db)
        self.assertIn(["outbox"], tables)
        for (table,) in tables:
            self.outputs.append((f"table retention.{table}", self.cluster.psql(
                f"SELECT t::text FROM retention.{table} t", dbname=self.db)))

    def test_no_secret_appears_anywhere(self):
        # without the password the role is refused: the password is checked
        proc = subprocess.run(
            [self.cluster._bin("psql"), "-X", "-w", "-h", self.cluster.host, "-p",
             str(self.cluster.port), "-U", ROLE, "-d", self.db, "-c", "SELECT 1"],
            env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(proc.returncode, 2)    # psql: the connection failed
        self.assertIn("password", proc.stderr)
        self.seed()
        self.conf = self.config()

        self.rd("init-db", "init-db", code=0)

        # The server's log: the key's HMAC pads travel as bind parameters.
        # Without the right to turn parameter logging off for its session,
        # retentiond says so, and the pads are indeed in the log ...
        offset = len(self.cluster.server_log())
        proc = self.rd("plan, parameters logged", "plan", code=0)
        self.assertIn("the key can be read back from the server's log", proc.stderr)
        self.assertIn(hmac_pad(KEY, 0x36), self.cluster.server_log()[offset:],
                      "the test sees the pads in the server's log")
        # (asked, not tried: no ERROR in the server's log at each connection)
        self.assertNotIn("permission denied to set parameter", self.cluster.server_log())
        # ... with it (or as a superuser), they never are
        self.cluster.psql(f"GRANT SET ON PARAMETER log_parameter_max_length TO {ROLE}")
        self.server_log_from = len(self.cluster.server_log())
        granted = len(self.outputs)

        self.rd("check", "check", code=0)
        self.rd("grants", "grants", "someone", code=0)
        self.rd("hold add", "hold", "add", "customer:3", "--reason", "court order", code=0)
        self.rd("hold list", "hold", "list", code=0)
        self.rd("erase", "erase", "customer:5", "--reason", "asked by mail", code=0)
        self.rd("erasure list", "erasure", "list", code=0)
        self.rd("plan", "plan", code=0)
        self.rd("run", "run", code=0)
        self.assertEqual(self.sql("SELECT count(*) FROM accounts WHERE done_at IS NOT NULL"),
                         "29", "the run worked, with the password")
        self.assertGreaterEqual(len(self.smtp.wait_for_messages(1)), 1,
                                "mail went out, with the password")
        self.rd("verify", "verify", code=0)
        for fmt in ("text", "csv", "json", "html"):
            self.rd(f"report {fmt}", "report", "--format", fmt, code=0)
        out = os.path.join(self.tmp, "report.out")
        self.rd("report --output", "report", "--format", "json", "--output", out, code=0)
        with open(out) as f:
            self.outputs.append(("report --output", f.read()))

        self.daemon_cycles()

        # a wrong SMTP password: the mail stays in the outbox, with the error
        bad_smtp = self.config("bad-smtp.conf", smtp_password="wrong-smtp")
        self.sql("INSERT INTO accounts VALUES (100, now() - interval '2 years',"
                 " 'late@example.com', 'Late', NULL)")
        self.rd("run, wrong SMTP password", "run", conf=bad_smtp)
        self.assertTrue(any(not e["success"] for e in self.smtp.events()
                            if e["event"] == "auth"), "the wrong password was tried")
        self.assertNotEqual(self.sql("SELECT count(*) FROM retention.outbox"
                                     " WHERE last_error IS NOT NULL"), "0")

        # a wrong database password, in a file, inline and in a URI
        bad_db = self.config("bad-db.conf", db_password="wrong-db")
        # (check says the database is unreachable, and checks the file)
        self.rd("check, wrong database password", "check", conf=bad_db, code=0)
        for what in ("plan", "run", "verify", "report"):
            # the database is unreachable: a failure at run time
            self.rd(f"{what}, wrong database password", what, conf=bad_db, code=1)
        self.assertIn("password authentication failed",
                      self.outputs[-1][1] + self.outputs[-2][1])
        inline = self.config("inline.conf", db_password=None,
                             conninfo=self.cluster.conninfo(self.db, user=ROLE)
                             + f" password={INLINE_DB_PASSWORD}")
        self.rd("run, wrong inline password", "run", conf=inline, code=1)
        uri = self.config("uri.conf", db_password=None, conninfo=(
            f"postgresql://{ROLE}:{INLINE_DB_PASSWORD}@/{self.db}"
            f"?host={self.cluster.host}&port={self.cluster.port}"))
        self.rd("check, password in a URI", "check", conf=uri)
        self.rd("run, password in a URI", "run", conf=uri, code=1)
        # a broken URI: the parse error must not quote it
        broken = self.config("broken.conf", db_password=None, conninfo=(
            f"postgresql://{ROLE}:{INLINE_DB_PASSWORD}@/{self.db}?host=%zz&nope=1"))
        self.rd("check, broken URI", "check", conf=broken, code=2)
        self.daemon_cycles(conf=bad_db, expect_cycles=False)

        self.collect_files_mail_tables()
        # what the server logged of retentiond's sessions
        mine = [line for line in self.cluster.server_log()[self.server_log_from:].splitlines()
                if f" {ROLE}@{self.db} " in line]
        self.assertTrue(any("parameters:" in line for line in mine),
                        "the server logged retentiond's statements and parameters")
        self.outputs.append(("the server log of retentiond's sessions", "\n".join(mine)))
        self.assertNotIn("may not turn that off",
                         "".join(text for _, text in self.outputs[granted:]))
        self.assertGreater(len(self.outputs), 40)
        for what, text in self.outputs:
            self.assertClean(what, text)
        # and, to be sure the search can find something, the secrets are
        # where they must be
        with open(self.files["db"]) as f:
            self.assertIn(DB_PASSWORD, f.read())
        print(f"test_secrets: {len(SECRETS)} secrets in {len(FORBIDDEN)} forms "
              f"checked against {len(self.outputs)} outputs, process titles and "
              f"environments", flush=True)

    def daemon_cycles(self, conf=None, expect_cycles=True):
        """The daemon, -v, for a few cycles (or, without the database, a few
        seconds of retries); every process's command line is searched
        while it runs, and the daemon's environment."""
        conf = conf or self.config("daemon.conf", interval="1s")
        log = os.path.join(self.tmp, f"daemon-{len(self.outputs)}.log")
        with open(log, "w") as f:
            before = int(self.sql("SELECT count(*) FROM retention.runs"
                                  " WHERE command = 'daemon'"))
            proc = spawn(["-v", "daemon"] + ROOT_ARGS, config=conf, stdout=f, stderr=f)
            try:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    n = int(self.sql("SELECT count(*) FROM retention.runs"
                                     " WHERE command = 'daemon' AND status <> 'running'"))
                    if (n - before >= 3) if expect_cycles else \
                            time.monotonic() > deadline - 27:
                        break
                    time.sleep(0.2)
                if expect_cycles:
                    self.assertGreaterEqual(n - before, 3, "daemon cycles")
                self.check_processes(proc.pid)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
        with open(log, errors="replace") as f:
            self.outputs.append((f"daemon log {log}", f.read()))

    def check_processes(self, daemon_pid):
        with open(f"/proc/{daemon_pid}/environ", "rb") as f:
            self.assertClean("the daemon's environment", f.read().decode("utf-8", "replace"))
        seen = 0
        for path in glob.glob("/proc/[0-9]*/cmdline"):
            pid = int(path.split("/")[2])
            try:
                with open(path, "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue        # gone meanwhile
            if "/smtpd.py " in cmdline:
                continue        # the tests' SMTP servers take the password so
            if "retentiond" in cmdline or ROLE in cmdline:
                seen += 1
            self.assertClean(f"the command line of process {pid} ({cmdline[:60]})",
                             cmdline)
        self.assertGreaterEqual(seen, 1, "the daemon's process was looked at")


if __name__ == "__main__":
    main()
