"""Mail through libcurl SMTP and the outbox (SPEC §5, §6), against a real
SMTP server on loopback (harness.SmtpServer: aiosmtpd with STARTTLS and AUTH).

Promises checked: a cycle with changes sends one well-formed
multipart/alternative message over STARTTLS after AUTH; a wrong password, a
refused connection and a server that never answers each give a clear log
line within the timeout, keep the mail in the outbox with the attempt counted
and the error kept (no password in either), and the mail goes out once the
server is back; an untrusted certificate or a server without STARTTLS is
refused, never used in plaintext; hostile policy text and table data stay in
the body; mail.send decides; erasure reminders go out once per request.
"""

import email.utils
import os
import re
import socket
import ssl
import threading
import time

from harness import (IntegrationTest, SmtpServer, main, make_cert, write_config,
                     write_secret)

PASSWORD = "s3cret-smtp"
WRONG_PASSWORD = "wrong-Pa55word-do-not-log"
NASTY_POLICY_CONF = (r'Kept ≤ 30 days, \"then\" <script>alert(1)</script>,'
                     r'\r\nBcc: evil@example.com\n.\n..two dots\nlast line')
NASTY_POLICY = ('Kept ≤ 30 days, "then" <script>alert(1)</script>,'
                '\r\nBcc: evil@example.com\n.\n..two dots\nlast line')


class LoopbackServer:
    """A TCP server on 127.0.0.1 that hands each connection to handle()
    in a thread of its own."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        pass

    def stop(self):
        self.sock.close()
        for c in self.conns:
            c.close()


class StallingServer(LoopbackServer):
    """Accepts TCP connections and never says a word."""


class ClosingServer(LoopbackServer):
    """Speaks SMTP with STARTTLS (trusted with cafile=self.cert) and AUTH
    up to DATA, reads part of the message, then drops the connection: a
    server that dies, or a network that breaks, in the middle of a mail."""

    def __init__(self, directory):
        self.cert, key = make_cert(directory)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(self.cert, key)
        self.dropped = 0        # connections dropped after some message bytes
        super().__init__()

    def handle(self, conn):
        try:
            conn.settimeout(10)
            f = conn.makefile("rwb")
            say = lambda line: (f.write(line.encode() + b"\r\n"), f.flush())
            say("220 localhost ESMTP closing-server")
            while True:
                line = f.readline()
                if not line:
                    return
                verb = line.split(b" ")[0].strip().upper()
                if verb in (b"EHLO", b"HELO"):
                    tls = isinstance(conn, ssl.SSLSocket)
                    say("250-localhost")
                    say("250 AUTH PLAIN" if tls else "250 STARTTLS")
                elif verb == b"STARTTLS":
                    say("220 go ahead")
                    f.close()
                    conn = self.ctx.wrap_socket(conn, server_side=True)
                    f = conn.makefile("rwb")
                elif verb == b"AUTH":
                    if len(line.split()) < 3:     # no initial response
                        say("334 ")
                        f.readline()
                    say("235 2.7.0 accepted")
                elif verb in (b"MAIL", b"RCPT"):
                    say("250 OK")
                elif verb == b"DATA":
                    say("354 go on")
                    if f.read(200):
                        self.dropped += 1
                    return          # gone, mid-message
                else:
                    say("502 no")
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()


class MailTest(IntegrationTest):

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

    def config(self, rules=None, send="changes", url=None, cafile="default",
               timeout="10s", tls=None, extra=""):
        url = url or self.smtp.url
        cafile = self.smtp.cafile if cafile == "default" else cafile
        mail = [f'url = "{url}";', 'username = "retentiond";',
                f'password_file = "{self.pwfile}";',
                'from = "Retention <retention@example.com>";',
                'to = [ "dpo@example.com", "Ops <ops@example.com>" ];',
                f'send = "{send}";', f'timeout = "{timeout}";']
        if cafile:
            mail.append(f'ca_file = "{cafile}";')
        if tls:
            mail.append(f'tls = "{tls}";')
        return write_config(self.tmp, f"""
database: {{ conninfo = "{self.cluster.conninfo(self.db)}"; }};
mail: {{ {" ".join(mail)} }};
{extra}
rules = (
{rules or self.EVENTS}
);
""")

    def rd(self, conf, *args, **kw):
        return self.run_rd(list(args), config=conf, **kw)

    def init(self, conf):
        self.assertExit(self.rd(conf, "init-db"), 0)

    def seed_events(self, expired=40, fresh=60):
        self.sql(f"""
CREATE TABLE events (id serial PRIMARY KEY, created_at timestamptz NOT NULL,
                     customer_id int NOT NULL);
CREATE INDEX ON events (created_at);
INSERT INTO events (created_at, customer_id)
SELECT now() - interval '10 days' - g * interval '1 minute', g % 10
FROM generate_series(1, {expired}) g;
INSERT INTO events (created_at, customer_id)
SELECT now() - interval '1 hour', g % 10 FROM generate_series(1, {fresh}) g;
""")

    EVENTS = """{
  name = "events"; policy = "events are kept 2 days";
  table = "public.events"; age_column = "created_at"; retain = "2 days";
  subject = "customer"; subject_column = "customer_id";
}"""

    def outbox(self):
        return self.cluster.query(
            "SELECT id, attempts, coalesce(last_error, ''), sent_at IS NOT NULL,"
            " coalesce(next_attempt_at > now(), false)"
            " FROM retention.outbox ORDER BY id", dbname=self.db)

    def make_due(self):
        """Pretend the backoff has passed."""
        self.sql("UPDATE retention.outbox SET next_attempt_at = now() - interval '1 second'"
                 " WHERE sent_at IS NULL")

    @staticmethod
    def parts(msg):
        text = msg.get_body(preferencelist=("plain",)).get_content()
        html = msg.get_body(preferencelist=("html",)).get_content()
        return text, html

    # --- a good delivery ----------------------------------------------------------

    def test_cycle_with_changes_sends_one_wellformed_message(self):
        self.seed_events()
        conf = self.config()
        self.init(conf)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        run_id = self.sql("SELECT max(id) FROM retention.runs")

        msgs = self.smtp.wait_for_messages(1)
        time.sleep(0.3)
        msgs = self.smtp.messages()
        self.assertEqual(len(msgs), 1)
        msg = msgs[0]
        # the transport: STARTTLS, then AUTH, envelope from the config
        self.assertTrue(msg.tls)
        self.assertEqual(msg.auth_user, "retentiond")
        auths = [e for e in self.smtp.events() if e["event"] == "auth"]
        self.assertEqual([(a["success"], a["tls"]) for a in auths], [(True, True)])
        self.assertEqual(msg.mail_from, "retention@example.com")
        self.assertEqual(msg.rcpt_tos, ["dpo@example.com", "ops@example.com"])
        # the headers
        self.assertFalse(msg.defects)
        self.assertEqual(msg["From"], "Retention <retention@example.com>")
        self.assertEqual(msg["To"], "dpo@example.com, Ops <ops@example.com>")
        self.assertEqual(msg["Subject"],
                         f"retentiond: run {run_id} on {socket.gethostname()}: ok, 40 rows changed")
        sent = email.utils.parsedate_to_datetime(msg["Date"])
        self.assertIsNotNone(sent.tzinfo)
        self.assertLess(abs(time.time() - sent.timestamp()), 120)
        self.assertRegex(msg["Message-ID"], r"^<[^<>@\s]+@[^<>@\s]+>$")
        self.assertEqual(msg["MIME-Version"], "1.0")
        self.assertEqual(msg.get_content_type(), "multipart/alternative")
        self.assertEqual([p.get_content_type() for p in msg.iter_parts()],
                         ["text/plain", "text/html"])
        # CRLF line ends throughout, no line over 998 octets
        self.assertNotRegex(msg.raw, rb"(?<!\r)\n")
        self.assertTrue(all(len(line) <= 998 for line in msg.raw.split(b"\r\n")))
        # the per-rule numbers in both parts
        text, html = self.parts(msg)
        self.assertRegex(text, r"(?m)^events\s+public\.events\s+delete\s+40\s+0\s+0\s")
        self.assertIn("compliant", text)
        self.assertIn("<td class=\"n\">40</td>", html)
        self.assertIn("<svg", html)
        # the outbox records it
        self.assertEqual(self.outbox(), [["1", "1", "", "t", "f"]])
        self.assertOutput(proc, r'mail 1 \("retentiond: run \d+ on .*"\) sent to 2 recipients')

        # send = "changes": a cycle that changes nothing sends nothing
        self.assertExit(self.rd(conf, "run"), 0)
        time.sleep(0.3)
        self.assertEqual(len(self.smtp.messages()), 1)
        self.assertEqual(len(self.outbox()), 1)

    def test_implicit_tls_smtps_delivers(self):
        self.smtp.stop()
        self.smtp = SmtpServer(implicit_tls=True, auth=("retentiond", PASSWORD))
        self.smtp.start()
        self.addCleanup(self.smtp.stop)
        self.assertTrue(self.smtp.url.startswith("smtps://"))
        self.seed_events()
        conf = self.config()
        self.init(conf)
        self.assertExit(self.rd(conf, "run"), 0)
        msgs = self.smtp.wait_for_messages(1)
        self.assertEqual(len(msgs), 1)
        self.assertTrue(msgs[0].tls)
        self.assertEqual(msgs[0].auth_user, "retentiond")

    # --- failures keep the mail -------------------------------------------------

    def assert_kept_then_delivered(self, proc, pattern, conf_after):
        self.assertExit(proc, 0)     # the data work succeeded; mail is not fatal
        self.assertOutput(proc, r"could not send mail 1 \(\"retentiond: run \d+ .*\"\), "
                                r"attempt 1; it stays in the outbox, next try in 1 min: " + pattern)
        self.assertNotIn(PASSWORD, proc.stderr)
        self.assertNotIn(WRONG_PASSWORD, proc.stderr)
        rows = self.outbox()
        self.assertEqual(len(rows), 1)
        _, attempts, last_error, sent, later = rows[0]
        self.assertEqual((attempts, sent, later), ("1", "f", "t"))
        self.assertRegex(last_error, pattern)
        self.assertNotIn(PASSWORD, last_error)
        self.assertNotIn(WRONG_PASSWORD, last_error)

        # not yet due: the next cycle leaves it (backoff)
        self.assertExit(self.rd(conf_after, "run"), 0)
        self.assertEqual(self.outbox()[0][1], "1")
        # due: the next cycle delivers it
        self.make_due()
        proc = self.rd(conf_after, "run")
        self.assertExit(proc, 0)
        msgs = self.smtp.wait_for_messages(1)
        self.assertEqual(len(msgs), 1)
        self.assertTrue(msgs[0].tls)
        self.assertEqual(self.outbox()[0][1:4], ["2", "", "t"])

    def test_wrong_password_keeps_the_mail(self):
        self.seed_events()
        write_secret(self.pwfile, WRONG_PASSWORD)
        conf = self.config()
        self.init(conf)
        proc = self.rd(conf, "run")
        self.assertEqual(self.smtp.messages(), [])
        self.assertEqual([e["success"] for e in self.smtp.events() if e["event"] == "auth"],
                         [False])
        write_secret(self.pwfile, PASSWORD)
        self.assert_kept_then_delivered(proc, r".*(Login denied|535).*", conf)

    def test_refused_connection_keeps_the_mail(self):
        self.seed_events()
        conf = self.config()
        self.init(conf)
        port = self.smtp.port
        self.smtp.stop()
        t0 = time.monotonic()
        proc = self.rd(conf, "run")
        self.assertLess(time.monotonic() - t0, 10)
        # back on the same port, with a new certificate
        self.smtp.port = port
        self.smtp.start()
        self.assert_kept_then_delivered(proc, r".*(onnect|refused).*", self.config())

    def test_stalling_server_times_out_and_keeps_the_mail(self):
        self.seed_events()
        stall = StallingServer()
        self.addCleanup(stall.stop)
        conf = self.config(url=f"smtp://127.0.0.1:{stall.port}", timeout="2s")
        self.init(conf)
        t0 = time.monotonic()
        proc = self.rd(conf, "run")
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 2)
        self.assertLess(elapsed, 12)
        self.assertTrue(stall.conns, "retentiond never connected")
        self.assert_kept_then_delivered(proc, r".*[Tt]ime.*out.*", self.config())

    def test_server_closing_mid_message_keeps_the_mail(self):
        self.seed_events()
        closing = ClosingServer(self.tmp)
        self.addCleanup(closing.stop)
        conf = self.config(url=f"smtp://127.0.0.1:{closing.port}",
                           cafile=closing.cert)
        self.init(conf)
        proc = self.rd(conf, "run")
        self.assertEqual(closing.dropped, 1, "the server never saw the message start: " + proc.stderr)
        self.assertEqual(self.sql("SELECT count(*) FROM events"), "60")
        # the run's own work is done and counted; the mail waits
        self.assertOutput(proc, r"run 1: ok", stream="stdout")
        self.assert_kept_then_delivered(
            proc, r".*(?i:reset|clos|fail|read|recv|send).*", self.config())

    # --- TLS is never given up ----------------------------------------------------

    def test_untrusted_certificate_is_refused(self):
        self.seed_events()
        conf = self.config(cafile=None)
        self.init(conf)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, r"could not send mail 1 .*certificate")
        time.sleep(0.3)
        self.assertEqual(self.smtp.messages(), [])
        # nothing after the failed handshake: no AUTH, no MAIL in clear text
        self.assertEqual([e for e in self.smtp.events() if e["event"] in ("auth", "mail")], [])
        self.assertEqual(self.outbox()[0][1], "1")

    def test_server_without_starttls_is_refused(self):
        self.smtp.stop()
        self.smtp = SmtpServer(starttls=False, auth=("retentiond", PASSWORD),
                               require_auth=False)
        self.smtp.start()
        self.addCleanup(self.smtp.stop)
        self.seed_events()
        conf = self.config()
        self.init(conf)
        proc = self.rd(conf, "run")
        self.assertExit(proc, 0)
        self.assertOutput(proc, r"could not send mail 1 .*(SSL|TLS|STARTTLS)")
        time.sleep(0.3)
        self.assertEqual(self.smtp.messages(), [])
        self.assertEqual([e for e in self.smtp.events() if e["event"] in ("auth", "mail")], [])

    # --- content ---------------------------------------------------------------

    def test_hostile_policy_and_table_data_stay_in_the_body(self):
        self.seed_events()
        self.sql("CREATE TABLE castme (id serial PRIMARY KEY, created_at timestamptz NOT NULL,"
                 " payload text);"
                 "INSERT INTO castme (created_at, payload) VALUES"
                 " (now() - interval '10 days', E'<script>x</script>, \"q\"\\r\\nBcc: y@evil.example');")
        rules = self.EVENTS.replace('"events are kept 2 days"', f'"{NASTY_POLICY_CONF}"') + """,
{
  name = "castme"; policy = "p"; table = "castme"; age_column = "created_at";
  retain = "2 days"; where = "payload::int > 0";
}"""
        conf = self.config(rules=rules)
        self.init(conf)
        self.assertExit(self.rd(conf, "run"), 1)    # castme fails: partial
        msgs = self.smtp.wait_for_messages(1)
        self.assertEqual(len(msgs), 1)
        msg = msgs[0]
        self.assertFalse(msg.defects)
        # nothing injected into the header
        self.assertEqual(sorted(k.lower() for k in msg.keys()),
                         sorted(["date", "from", "to", "subject", "message-id",
                                 "mime-version", "auto-submitted", "content-type"]))
        self.assertIsNone(msg["Bcc"])
        self.assertEqual(msg.rcpt_tos, ["dpo@example.com", "ops@example.com"])
        self.assertRegex(msg["Subject"], r"^retentiond ALERT: run \d+ on .*: partial, "
                                         r"40 rows changed, 1 rule failed$")
        text, html = self.parts(msg)
        # mail has CRLF line ends; compare lines, whatever ended them
        text, html = text.replace("\r\n", "\n"), html.replace("\r\n", "\n")
        # text: CR/LF in values are shown as escapes, markup is inert text
        self.assertIn(r"<script>alert(1)</script>,\r\nBcc: evil@example.com\n.\n..two dots",
                      text)
        self.assertIn('rule "castme" (public.castme): failed:', text)
        # HTML: no live markup; the policy's own lines, dot lines included,
        # arrive intact (libcurl dot-stuffs, the server un-stuffs)
        self.assertNotIn("<script", html)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;,", html)
        self.assertIn("Bcc: evil@example.com\n.\n..two dots\nlast line", html)
        self.assertIn("&lt;script&gt;x&lt;/script&gt;, &quot;q&quot;", html)
        self.assertIn(b"\r\n.\r\n..two dots\r\n", msg.raw)
        self.assertIn("Kept ≤ 30 days", html)
        self.assertTrue(msg.raw.isascii())     # 7-bit: UTF-8 is encoded

    # --- policy and reminders --------------------------------------------------

    def test_send_errors_mails_only_alerts(self):
        self.seed_events()
        conf = self.config(send="errors")
        self.init(conf)
        self.assertExit(self.rd(conf, "run"), 0)
        time.sleep(0.3)
        self.assertEqual(self.smtp.messages(), [])
        self.assertEqual(self.outbox(), [])

        # a guard refuses the rule: that is an alert
        self.sql("INSERT INTO events (created_at, customer_id) "
                 "SELECT now() - interval '10 days', 1 FROM generate_series(1, 500)")
        proc = self.rd(conf, "run")
        msgs = self.smtp.wait_for_messages(1)
        self.assertEqual(len(msgs), 1, proc.stderr)
        self.assertRegex(msgs[0]["Subject"], r"^retentiond ALERT: run \d+ on .*: failed, "
                                             r"0 rows changed, 1 rule refused$")
        text, _ = self.parts(msgs[0])
        self.assertIn("ALERTS", text)
        self.assertIn("max_fraction", text)

    def test_send_never_sends_nothing(self):
        self.seed_events()
        conf = self.config(send="never")
        self.init(conf)
        self.assertExit(self.rd(conf, "run"), 0)
        time.sleep(0.3)
        self.assertEqual(self.smtp.messages(), [])
        self.assertEqual(self.outbox(), [])

    def test_erasure_reminders_are_mailed_once(self):
        self.seed_events()
        conf = self.config(send="errors")
        self.init(conf)
        # a held subject keeps its requests open
        self.assertExit(self.rd(conf, "hold", "add", "customer:3", "--reason", "court"), 0)
        self.sql("INSERT INTO retention.erasure_requests (subject, subject_id, requested_at) "
                 "VALUES ('customer', '3', now() - interval '40 days'),"
                 "       ('customer', '3', now() - interval '27 days')")
        self.assertExit(self.rd(conf, "run"), 0)
        msgs = self.smtp.wait_for_messages(1)
        self.assertEqual(len(msgs), 1)
        self.assertRegex(msgs[0]["Subject"],
                         r"^retentiond ALERT: .*, 1 erasure request overdue, "
                         r"1 erasure request due soon$")
        text, html = self.parts(msgs[0])
        self.assertRegex(text, r"erasure request \d+ \(customer:3, held\) is OVERDUE")
        self.assertRegex(text, r"erasure request \d+ \(customer:3, held\) is due within 7 days")
        self.assertEqual(self.sql(
            "SELECT count(*) FROM retention.erasure_requests"
            " WHERE overdue_mailed_at IS NOT NULL OR due_soon_mailed_at IS NOT NULL"), "2")

        # the next cycle: nothing new, no mail
        self.assertExit(self.rd(conf, "run"), 0)
        time.sleep(0.3)
        self.assertEqual(len(self.smtp.messages()), 1)

        # the due-soon one becomes overdue: one more reminder for it
        self.sql("UPDATE retention.erasure_requests SET due_at = now() - interval '1 hour'"
                 " WHERE overdue_mailed_at IS NULL")
        self.assertExit(self.rd(conf, "run"), 0)
        msgs = self.smtp.wait_for_messages(2)
        self.assertEqual(len(msgs), 2)
        self.assertRegex(msgs[1]["Subject"], r", 1 erasure request overdue$")


if __name__ == "__main__":
    main()
