#!/usr/bin/python3
"""A real SMTP server for retentiond's integration tests (aiosmtpd).

    /usr/bin/python3 smtpd.py --port P --maildir D --cert C --key K
        [--starttls] [--implicit-tls] [--user U --password P] [--require-auth]
        [--reject-data "451 4.3.0 try later"] [--events FILE]

Listens on 127.0.0.1 only. Every accepted message is written to D/NNNN.eml
(the bytes as received after SMTP dot-unstuffing, line ends untouched) with a
sidecar D/NNNN.json: {"mail_from", "rcpt_tos", "tls", "auth_user"}. Both are
written to a temporary name and renamed, the sidecar first, so a reader that
sees NNNN.eml also finds its NNNN.json.

--port 0 picks a free port. Prints "ready PORT" on stdout once listening.
Exits on SIGTERM/SIGINT and when its stdin reaches EOF (the test process that
started it has gone; with --remove-on-orphan DIR it then also removes DIR).
"""

import argparse
import json
import os
import shutil
import signal
import socket
import ssl
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--maildir", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--starttls", action="store_true",
                   help="offer STARTTLS and refuse MAIL before it")
    p.add_argument("--implicit-tls", action="store_true",
                   help="TLS from the first byte (smtps)")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--require-auth", action="store_true",
                   help="refuse MAIL until AUTH succeeded")
    p.add_argument("--reject-data", metavar="REPLY",
                   help="answer every DATA with this reply instead of 250")
    p.add_argument("--events", metavar="FILE",
                   help="append auth attempts and message events as JSON lines")
    p.add_argument("--remove-on-orphan", metavar="DIR",
                   help="remove DIR when stdin reaches EOF (the parent died)")
    args = p.parse_args(argv)
    if (args.user is None) != (args.password is None):
        p.error("--user and --password go together")
    if args.require_auth and args.user is None:
        p.error("--require-auth needs --user and --password")
    return args


def write_atomic(path, data):
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def uses_tls(server):
    transport = server.transport
    return transport is not None and transport.get_extra_info("ssl_object") is not None


class Handler:
    def __init__(self, args):
        self.args = args
        self.maildir = args.maildir
        # Continue numbering after what is already there (a restarted server).
        existing = [int(n[:4]) for n in os.listdir(self.maildir)
                    if n.endswith(".eml") and n[:4].isdigit()]
        self.next = max(existing, default=0) + 1

    def event(self, **fields):
        if not self.args.events:
            return
        fields["time"] = time.time()
        with open(self.args.events, "a") as f:
            f.write(json.dumps(fields) + "\n")

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        self.event(event="mail", mail_from=address, tls=uses_tls(server),
                   auth_user=auth_user(session))
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        tls = uses_tls(server)
        if self.args.reject_data:
            self.event(event="data_rejected", mail_from=envelope.mail_from,
                       rcpt_tos=list(envelope.rcpt_tos), tls=tls)
            return self.args.reject_data
        n = self.next
        self.next += 1
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "tls": tls,
            "auth_user": auth_user(session),
        }
        base = os.path.join(self.maildir, f"{n:04d}")
        write_atomic(base + ".json", json.dumps(meta, indent=1).encode())
        write_atomic(base + ".eml", envelope.original_content)
        self.event(event="message", file=f"{n:04d}.eml", **meta)
        return "250 OK message accepted"


def auth_user(session):
    if not session.authenticated:
        return None
    login = getattr(session, "login_data", None)
    if isinstance(login, bytes):
        return login.decode("utf-8", "replace")
    return login


def make_authenticator(args, handler):
    user = args.user.encode()
    password = args.password.encode()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == user and auth_data.password == password)
        login = auth_data.login.decode("utf-8", "replace") \
            if isinstance(auth_data, LoginPassword) else None
        handler.event(event="auth", mechanism=mechanism, user=login,
                      success=ok, tls=uses_tls(server))
        return AuthResult(success=ok, handled=False,
                          auth_data=auth_data if ok else None)

    return authenticator


def server_context(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    return ctx


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_controller(args, handler, port):
    ctx = server_context(args)
    kwargs = dict(
        hostname="127.0.0.1",
        port=port,
        server_hostname="localhost",
        decode_data=False,
        auth_required=args.require_auth,
        auth_exclude_mechanism=["CRAM-MD5"],
    )
    if args.user is not None:
        kwargs["authenticator"] = make_authenticator(args, handler)
    if args.implicit_tls:
        kwargs["ssl_context"] = ctx
        # aiosmtpd only counts STARTTLS as TLS for AUTH; the whole
        # connection is TLS here, so AUTH needs no further condition.
        kwargs["auth_require_tls"] = False
    elif args.starttls:
        kwargs["tls_context"] = ctx
        kwargs["require_starttls"] = True
        kwargs["auth_require_tls"] = True
    else:
        # Plain SMTP: AUTH in clear text, for tests of clients that must
        # refuse to use it.
        kwargs["auth_require_tls"] = False
    return Controller(handler, **kwargs)


def main(argv):
    args = parse_args(argv)
    handler = Handler(args)

    controller = None
    last_error = None
    for _ in range(20):
        port = args.port or free_port()
        try:
            controller = build_controller(args, handler, port)
            controller.start()
            break
        except Exception as e:  # port taken between free_port() and bind
            last_error = e
            controller = None
            if args.port:
                break
            time.sleep(0.05)
    if controller is None:
        print(f"smtpd.py: cannot listen: {last_error}", file=sys.stderr)
        return 1

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    orphaned = threading.Event()

    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        orphaned.set()
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()

    print(f"ready {port}", flush=True)
    while not stop.wait(0.5):
        pass
    controller.stop()
    if orphaned.is_set() and args.remove_on_orphan:
        shutil.rmtree(args.remove_on_orphan, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
