"""Fixtures for retentiond's integration tests and scripts/demo.

Everything here is standard library only (the SMTP server process also needs
aiosmtpd, see smtpd.py). Tests start real servers on private sockets:

  PostgresCluster  a throwaway PostgreSQL (initdb + pg_ctl) listening only on a
                   Unix socket in its own temporary directory
  StandbyCluster   a streaming standby of one (pg_basebackup -R)
  CitusCluster     a Citus coordinator and workers on 127.0.0.1 (Citus built
                   from its tarball by scripts/citus-build)
  SmtpServer       a real SMTP server on 127.0.0.1 (smtpd.py in a subprocess),
                   with STARTTLS or implicit TLS and AUTH
  run()            runs the real retentiond binary
  IntegrationTest  unittest base class: one cluster per test file, a temporary
                   directory per test

Every server started here is stopped on normal exit, on test failure, on
Ctrl-C and on SIGTERM (context managers and atexit); a small reaper process
also stops PostgreSQL if the test process is killed outright.

Environment:
  RETENTIOND           the binary under test (default build/src/retentiond)
  RETENTIOND_SRCDIR    the source tree (default: two levels above this file)
  RETENTIOND_WRAPPER   a command prefix for the binary, e.g. "valgrind -q"
  RETENTIOND_TEST_KEEP set to 1 to keep temporary directories for debugging
  PG_BINDIR            where initdb/pg_ctl/psql live (default: newest
                       /usr/lib/postgresql/*/bin, then $PATH)
  SMTPD_PYTHON         the Python that runs smtpd.py (default /usr/bin/python3,
                       which sees Debian's python3-aiosmtpd)
"""

import atexit
import email
import email.policy
import glob
import json
import os
import pwd
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("RETENTIOND_SRCDIR") or os.path.dirname(os.path.dirname(HERE))


def _default_binary():
    for candidate in (os.path.join(SRCDIR, "build", "src", "retentiond"),
                      os.path.join(SRCDIR, "src", "retentiond")):
        if os.access(candidate, os.X_OK):
            return candidate
    return os.path.join(SRCDIR, "build", "src", "retentiond")


RETENTIOND = os.environ.get("RETENTIOND") or _default_binary()
SMTPD_PY = os.path.join(HERE, "smtpd.py")
SMTPD_PYTHON = os.environ.get("SMTPD_PYTHON") or (
    "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable)
KEEP_TMP = os.environ.get("RETENTIOND_TEST_KEEP") == "1"
IS_ROOT = os.geteuid() == 0
PG_OS_USER = "postgres"

# Variables that would make a test depend on the machine it runs on.
_SCRUBBED_ENV = ("RETENTIOND_CONFIG", "NOTIFY_SOCKET", "JOURNAL_STREAM",
                 "CREDENTIALS_DIRECTORY", "WATCHDOG_USEC", "WATCHDOG_PID",
                 "LISTEN_FDS", "LISTEN_PID")


class HarnessError(Exception):
    """A fixture could not be set up: the test environment is broken."""


def clean_env(extra=None):
    """os.environ without PG* and retentiond/systemd variables, plus EXTRA.

    A value of None in EXTRA removes that variable.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PG") and k not in _SCRUBBED_ENV}
    env.setdefault("LC_ALL", "C.UTF-8")
    for k, v in (extra or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


# --- cleanup on every kind of exit ------------------------------------------

_live = []            # objects with a stop() method, stopped at exit
_live_lock = threading.Lock()


def _register(obj):
    with _live_lock:
        if obj not in _live:
            _live.append(obj)


def _unregister(obj):
    with _live_lock:
        if obj in _live:
            _live.remove(obj)


def _stop_all():
    with _live_lock:
        objs = list(reversed(_live))
    for obj in objs:
        try:
            obj.stop()
        except Exception as e:  # keep stopping the others
            print(f"harness: stopping {obj!r} failed: {e}", file=sys.stderr)


atexit.register(_stop_all)


def _on_signal(signum, frame):
    # Turn SIGTERM/SIGHUP into an exception so finally blocks, context
    # managers and atexit all run; a second signal falls through to default.
    signal.signal(signum, signal.SIG_DFL)
    raise KeyboardInterrupt(f"signal {signum}")


for _sig in (signal.SIGTERM, signal.SIGHUP):
    try:
        if signal.getsignal(_sig) in (signal.SIG_DFL, None):
            signal.signal(_sig, _on_signal)
    except (ValueError, OSError):  # not the main thread, or not allowed
        pass


def make_tmpdir(prefix="rtd-"):
    """A private temporary directory (mode 0700) that the caller removes."""
    return tempfile.mkdtemp(prefix=prefix)


def remove_tree(path):
    if path and os.path.exists(path) and not KEEP_TMP:
        shutil.rmtree(path, ignore_errors=True)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- PostgreSQL ---------------------------------------------------------------

def _pg_bindir():
    env = os.environ.get("PG_BINDIR")
    if env:
        return env

    def version(path):
        m = re.search(r"/postgresql/(\d+)/bin$", path)
        return int(m.group(1)) if m else 0

    dirs = [d for d in glob.glob("/usr/lib/postgresql/*/bin")
            if os.access(os.path.join(d, "initdb"), os.X_OK)]
    if dirs:
        return max(dirs, key=version)
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(initdb)
    raise HarnessError("PostgreSQL server binaries (initdb, pg_ctl) not found: "
                       "install postgresql-15 (scripts/deps) or set PG_BINDIR")


# Runs in its own session and waits for its stdin to reach EOF, which happens
# when the test process exits for any reason, even SIGKILL. If the cluster is
# still there then, it stops it and removes its directory.
_REAPER = r"""
import os, shutil, subprocess, sys
sys.stdin.buffer.read()
prefix, pg_ctl, datadir, tmpdir = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
cmd = ([prefix, "-u", "postgres", "--"] if prefix else []) + \
      [pg_ctl, "stop", "-D", datadir, "-m", "immediate", "-w"]
if os.path.exists(os.path.join(datadir, "postmaster.pid")):
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   cwd="/")
if sys.argv[5] != "keep":
    shutil.rmtree(tmpdir, ignore_errors=True)
"""


class PostgresCluster:
    """A throwaway PostgreSQL cluster on a private Unix socket.

    As root, every server command runs as the `postgres` OS user (initdb and
    postgres refuse to run as root); otherwise as the current user. Clients
    (psql, retentiond) run as the current user and connect as the database
    superuser "postgres" with trust authentication.
    """

    def __init__(self, name="pg", settings=None):
        self.name = name
        self.settings = dict(settings or {})
        self.bindir = _pg_bindir()
        self.dir = None
        self.datadir = None
        self.host = None      # the socket directory
        self.port = None
        self.logfile = None
        self._running = False
        self._reaper = None

    def __repr__(self):
        return f"PostgresCluster({self.name!r}, port={self.port}, dir={self.dir!r})"

    def _bin(self, prog):
        return os.path.join(self.bindir, prog)

    def _server_cmd(self, argv):
        if IS_ROOT:
            return ["runuser", "-u", PG_OS_USER, "--"] + argv
        return argv

    def _server_run(self, argv, check=True, timeout=120):
        proc = subprocess.run(self._server_cmd(argv), cwd=self.dir,
                              env=clean_env(), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise HarnessError(f"{self.name}: {' '.join(argv)} failed "
                               f"({proc.returncode}):\n{proc.stdout}{self._log_tail()}")
        return proc

    def _log_tail(self, n=40):
        try:
            with open(self.logfile, errors="replace") as f:
                lines = f.readlines()[-n:]
            return "\n--- server log ---\n" + "".join(lines)
        except (OSError, TypeError):
            return ""

    def _make_dir(self):
        base = tempfile.gettempdir()
        if IS_ROOT and not _traversable_by(base, PG_OS_USER):
            base = "/tmp"
        # Short prefix: the socket path must stay under 108 bytes.
        self.dir = tempfile.mkdtemp(prefix=f"rtd-{self.name[:12]}-", dir=base)
        self.datadir = os.path.join(self.dir, "data")
        self.host = os.path.join(self.dir, "sock")
        self.logfile = os.path.join(self.dir, "server.log")
        os.mkdir(self.host)
        if IS_ROOT:
            pw = pwd.getpwnam(PG_OS_USER)
            os.chmod(self.dir, 0o755)
            for path in (self.dir, self.host):
                os.chown(path, pw.pw_uid, pw.pw_gid)

    def _choose_port(self):
        for _ in range(50):
            port = free_port()
            if not any(os.path.exists(os.path.join(d, f".s.PGSQL.{port}"))
                       for d in ("/tmp", "/var/run/postgresql", "/run/postgresql")):
                return port
        raise HarnessError("no free port for PostgreSQL")

    def _start_reaper(self):
        if self._reaper is not None:
            return
        self._reaper = subprocess.Popen(
            [sys.executable, "-c", _REAPER, "runuser" if IS_ROOT else "",
             self._bin("pg_ctl"), self.datadir, self.dir,
             "keep" if KEEP_TMP else "remove"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, cwd="/")

    def _stop_reaper(self):
        if self._reaper is None:
            return
        try:
            self._reaper.stdin.close()
            self._reaper.wait(timeout=30)
        except Exception:
            self._reaper.kill()
        self._reaper = None

    def _create(self):
        self._server_run([self._bin("initdb"), "-D", self.datadir,
                          "-U", "postgres", "-A", "trust", "--no-sync",
                          "-E", "UTF8", "--locale=C", "--no-instructions"])

    def start(self):
        """Create the cluster if needed (first call) and start the server."""
        if self._running:
            return self
        _register(self)
        try:
            if self.dir is None:
                self._make_dir()
                self._start_reaper()
                self._create()
            if self.port is None:
                self.port = self._choose_port()
            opts = {
                "listen_addresses": "''",
                "fsync": "off",
                "full_page_writes": "off",
                "synchronous_commit": "off",
                "max_connections": "40",
                "shared_buffers": "32MB",
                "log_line_prefix": "'%m [%p] %q%u@%d '",
            }
            opts.update({k: str(v) for k, v in self.settings.items()})
            o = f"-k {self.host} -p {self.port} " + " ".join(
                f"-c {k}={v}" for k, v in opts.items())
            self._server_run([self._bin("pg_ctl"), "start", "-w", "-t", "60",
                              "-D", self.datadir, "-l", self.logfile, "-o", o])
            self._running = True
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, mode="fast", remove=True):
        """Stop the server (idempotent). REMOVE=False keeps the data for a
        later start() on the same port."""
        if self._running or (self.datadir and os.path.exists(
                os.path.join(self.datadir, "postmaster.pid"))):
            self._server_run([self._bin("pg_ctl"), "stop", "-D", self.datadir,
                              "-m", mode, "-w", "-t", "60"], check=False)
        self._running = False
        if remove:
            self._stop_reaper()
            remove_tree(self.dir)
            self.dir = self.datadir = self.host = None
            self.port = None
            _unregister(self)

    def detach(self):
        """Leave the server running after this process exits (scripts/demo
        --keep): no stop at exit, no reaper. The caller owns it from now on."""
        _unregister(self)
        if self._reaper is not None:
            self._reaper.kill()     # SIGKILL: it cleans up nothing
            self._reaper.wait()
            self._reaper = None

    def restart(self, mode="fast"):
        """Stop without removing anything, then start again (same port)."""
        self.stop(mode=mode, remove=False)
        return self.start()

    @property
    def running(self):
        return self._running

    def conninfo(self, dbname="postgres", user="postgres"):
        return f"host={self.host} port={self.port} dbname={dbname} user={user}"

    def psql(self, sql, dbname="postgres", user="postgres", check=True):
        """Run SQL (any number of statements) with psql; returns stdout
        stripped. Raises HarnessError on failure when CHECK."""
        proc = subprocess.run(
            [self._bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", self.host, "-p", str(self.port), "-U", user, "-d", dbname],
            input=sql, env=clean_env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise HarnessError(f"psql failed ({proc.returncode}): {proc.stderr}"
                               f"\n--- sql ---\n{sql}")
        return proc.stdout.strip()

    def query(self, sql, dbname="postgres", user="postgres"):
        """Rows of a single query as lists of strings ('|' separated)."""
        out = self.psql(sql, dbname=dbname, user=user)
        return [line.split("|") for line in out.splitlines()] if out else []

    def scalar(self, sql, dbname="postgres", user="postgres"):
        return self.psql(sql, dbname=dbname, user=user)

    def createdb(self, name, owner=None):
        sql = f"CREATE DATABASE {quote_ident(name)}"
        if owner:
            sql += f" OWNER {quote_ident(owner)}"
        self.psql(sql + ";")

    def server_log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


class StandbyCluster(PostgresCluster):
    """A streaming standby of PRIMARY (a running PostgresCluster):
    `pg_basebackup -R` over the primary's Unix socket into a private
    directory, on its own socket and port. Its cluster_name is NAME, which
    the primary sees as application_name (synchronous_standby_names).

    initdb's trust pg_hba allows local replication connections, and
    PostgreSQL's defaults (wal_level replica, max_wal_senders 10) suffice.
    """

    def __init__(self, primary, name="standby", settings=None):
        merged = dict(primary.settings)
        merged.update(settings or {})
        merged["cluster_name"] = name
        super().__init__(name=name, settings=merged)
        self.primary = primary

    @property
    def slot(self):
        return self.name.replace("-", "_")

    def _create(self):
        # a replication slot, so the primary keeps the WAL this standby
        # still needs (a CHECKPOINT would otherwise recycle it while the
        # standby is busy replaying, and it could never catch up)
        self._server_run([self._bin("pg_basebackup"), "-D", self.datadir,
                          "-R", "-X", "stream", "-c", "fast", "--no-sync",
                          "-C", "-S", self.slot,
                          "-h", self.primary.host,
                          "-p", str(self.primary.port), "-U", "postgres"])

    def stop(self, mode="fast", remove=True):
        super().stop(mode=mode, remove=remove)
        if remove and self.primary.running:
            # or the primary keeps WAL for it forever
            self.primary.psql("SELECT pg_drop_replication_slot(slot_name)"
                              " FROM pg_replication_slots"
                              f" WHERE slot_name = {quote_literal(self.slot)}"
                              " AND NOT active", check=False)

    def promote(self):
        """Make it a primary (pg_ctl promote, waits until it takes writes)."""
        self._server_run([self._bin("pg_ctl"), "promote", "-w", "-t", "60",
                          "-D", self.datadir])

    def wait_streaming(self, timeout=60):
        """Until the primary sees this standby streaming and replayed all
        the primary has inserted so far."""
        deadline = time.monotonic() + timeout
        while True:
            ok = self.primary.scalar(
                "SELECT count(*) FROM pg_stat_replication"
                f" WHERE application_name = {quote_literal(self.name)}"
                " AND state = 'streaming'"
                # insert, not write: with synchronous_commit off (the
                # harness's default) a commit may not be written yet
                " AND replay_lsn >= pg_current_wal_insert_lsn()")
            if ok == "1":
                return self
            if time.monotonic() >= deadline:
                raise HarnessError(f"{self.name} not streaming after {timeout} s"
                                   f"{self._log_tail()}")
            time.sleep(0.1)


class CitusCluster:
    """A throwaway Citus cluster: a coordinator and WORKERS workers, each a
    PostgresCluster with shared_preload_libraries=citus, listening on
    127.0.0.1 (Citus's nodes talk TCP to each other) as well as on their
    private sockets. Clients (retentiond, psql) talk to the coordinator.

    Citus itself is built from its source tarball by scripts/citus-build
    (scripts/deps runs it); start() runs it too, a no-op once installed.
    Databases come from createdb(): created on every node with the citus
    extension, the workers registered with citus_add_node.
    """

    SETTINGS = {
        "shared_preload_libraries": "citus",
        "listen_addresses": "'127.0.0.1'",
        # multi-node writes commit with two-phase commit
        "max_prepared_transactions": "100",
        "max_connections": "120",
        "citus.shard_replication_factor": "1",
        # a maintenance daemon per database with the extension
        "max_worker_processes": "64",
    }

    def __init__(self, name="citus", workers=2, settings=None):
        self.name = name
        merged = dict(self.SETTINGS)
        merged.update(settings or {})
        self.coordinator = PostgresCluster(name=f"{name}-c", settings=merged)
        self.workers = [PostgresCluster(name=f"{name}-w{i}", settings=merged)
                        for i in range(workers)]

    def __repr__(self):
        return f"CitusCluster({self.name!r}, coordinator={self.coordinator!r})"

    @property
    def nodes(self):
        return [self.coordinator] + self.workers

    @staticmethod
    def build():
        """Build and install Citus unless the installed one is current."""
        script = os.path.join(SRCDIR, "scripts", "citus-build")
        proc = subprocess.run([script], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=1200)
        if proc.returncode != 0:
            raise HarnessError(f"scripts/citus-build failed ({proc.returncode}):"
                               f"\n{proc.stdout}")

    def start(self):
        self.build()
        _register(self)
        try:
            for node in self.nodes:
                node.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        for node in reversed(self.nodes):
            node.stop()
        _unregister(self)

    @property
    def host(self):
        return self.coordinator.host

    @property
    def port(self):
        return self.coordinator.port

    def conninfo(self, dbname="postgres", user="postgres"):
        return self.coordinator.conninfo(dbname=dbname, user=user)

    def psql(self, sql, dbname="postgres", user="postgres", check=True):
        return self.coordinator.psql(sql, dbname=dbname, user=user, check=check)

    def query(self, sql, dbname="postgres", user="postgres"):
        return self.coordinator.query(sql, dbname=dbname, user=user)

    def scalar(self, sql, dbname="postgres", user="postgres"):
        return self.coordinator.scalar(sql, dbname=dbname, user=user)

    def createdb(self, name, owner=None):
        """NAME on every node with the citus extension, the workers added
        to the coordinator's metadata."""
        for node in self.nodes:
            node.createdb(name, owner=owner)
            node.psql("CREATE EXTENSION citus;", dbname=name)
        sql = ("SELECT citus_set_coordinator_host('127.0.0.1', "
               f"{self.coordinator.port});")
        for w in self.workers:
            sql += f"SELECT citus_add_node('127.0.0.1', {w.port});"
        self.coordinator.psql(sql, dbname=name)

    def server_log(self):
        return "".join(f"--- {n.name} ---\n{n.server_log()}" for n in self.nodes)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def quote_ident(name):
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value):
    return "'" + value.replace("'", "''") + "'"


def _traversable_by(path, user):
    """True when USER can reach entries inside PATH (x on every component)."""
    pw = pwd.getpwnam(user)
    path = os.path.abspath(path)
    parts = []
    while True:
        parts.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for p in parts:
        st = os.stat(p)
        if st.st_uid == pw.pw_uid:
            ok = st.st_mode & 0o100
        elif st.st_gid == pw.pw_gid or pw.pw_name in _group_members(st.st_gid):
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            return False
    return True


def _group_members(gid):
    import grp
    try:
        return grp.getgrgid(gid).gr_mem
    except KeyError:
        return []


# --- SMTP -------------------------------------------------------------------------

def make_cert(directory, name="localhost"):
    """A self-signed certificate for localhost/127.0.0.1: (cert, key) paths.
    The certificate is its own CA: clients trust it with cafile=cert."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    proc = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={name}", "-keyout", key, "-out", cert,
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=60)
    if proc.returncode != 0:
        raise HarnessError(f"openssl req failed: {proc.stdout}")
    os.chmod(key, 0o600)
    return cert, key


class SmtpServer:
    """A real SMTP server on 127.0.0.1 (smtpd.py, aiosmtpd) in a subprocess.

    starttls:     offer STARTTLS and refuse MAIL before it
    implicit_tls: TLS from the first byte (smtps://); overrides starttls
    auth:         (user, password) accepted by AUTH PLAIN/LOGIN, or None
    require_auth: refuse MAIL without AUTH
    reject_data:  an SMTP reply (e.g. "451 4.3.0 try again later") given to
                  every DATA instead of accepting the message
    """

    def __init__(self, starttls=True, implicit_tls=False,
                 auth=("retentiond", "s3cret-smtp"), require_auth=True,
                 reject_data=None):
        self.starttls = starttls and not implicit_tls
        self.implicit_tls = implicit_tls
        self.auth = auth
        self.require_auth = require_auth and auth is not None
        self.reject_data = reject_data
        self.dir = None
        self.maildir = None
        self.cafile = None
        self.keyfile = None
        self.port = None
        self.proc = None
        self._stderr = None

    def __repr__(self):
        return f"SmtpServer(port={self.port}, dir={self.dir!r})"

    @property
    def scheme(self):
        return "smtps" if self.implicit_tls else "smtp"

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, timeout=30):
        if self.proc is not None:
            return self
        _register(self)
        try:
            if self.dir is None:
                self.dir = make_tmpdir("rtd-smtp-")
                self.maildir = os.path.join(self.dir, "mail")
                os.mkdir(self.maildir)
                self.cafile, self.keyfile = make_cert(self.dir)
            argv = [SMTPD_PYTHON, SMTPD_PY, "--port", str(self.port or 0),
                    "--maildir", self.maildir, "--cert", self.cafile,
                    "--key", self.keyfile,
                    "--events", os.path.join(self.dir, "events.jsonl")]
            if self.starttls:
                argv.append("--starttls")
            if self.implicit_tls:
                argv.append("--implicit-tls")
            if self.auth:
                argv += ["--user", self.auth[0], "--password", self.auth[1]]
            if self.require_auth:
                argv.append("--require-auth")
            if self.reject_data:
                argv += ["--reject-data", self.reject_data]
            if not KEEP_TMP:
                argv += ["--remove-on-orphan", self.dir]
            self._stderr = open(os.path.join(self.dir, "smtpd.log"), "ab")
            # stdin stays open: smtpd.py exits when it reaches EOF, i.e. when
            # this process dies, however it dies.
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE,
                                         stderr=self._stderr,
                                         env=clean_env(), cwd=self.dir,
                                         start_new_session=True)
            self.port = self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                buf += chunk
                m = re.search(rb"^ready (\d+)$", buf, re.M)
                if m:
                    return int(m.group(1))
            elif self.proc.poll() is not None:
                break
        raise HarnessError(f"smtpd.py did not start: {buf!r}\n{self.log()}")

    def stop(self):
        """Stop the server (idempotent) and remove its directory."""
        if self.proc is not None:
            try:
                self.proc.terminate()
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            except ProcessLookupError:
                pass
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
            self.proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        remove_tree(self.dir)
        self.dir = self.maildir = self.cafile = self.keyfile = None
        _unregister(self)

    def log(self):
        try:
            with open(os.path.join(self.dir, "smtpd.log"), errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def events(self):
        """Connection-level events (auth attempts, rejected commands) as dicts."""
        try:
            with open(os.path.join(self.dir, "events.jsonl")) as f:
                return [json.loads(line) for line in f if line.strip()]
        except (OSError, TypeError):
            return []

    def messages(self):
        """Every message received so far, in order, as EmailMessage objects
        with extra attributes: raw (bytes as received), mail_from, rcpt_tos,
        tls (bool), auth_user (str or None), path."""
        out = []
        for path in sorted(glob.glob(os.path.join(self.maildir, "[0-9]*.eml"))):
            with open(path, "rb") as f:
                raw = f.read()
            with open(path[:-4] + ".json") as f:
                meta = json.load(f)
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            msg.raw = raw
            msg.path = path
            msg.mail_from = meta["mail_from"]
            msg.rcpt_tos = meta["rcpt_tos"]
            msg.tls = meta["tls"]
            msg.auth_user = meta["auth_user"]
            out.append(msg)
        return out

    def wait_for_messages(self, n, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.messages()
            if len(msgs) >= n or time.monotonic() >= deadline:
                return msgs
            time.sleep(0.1)

    def clear(self):
        for path in glob.glob(os.path.join(self.maildir, "[0-9]*.*")):
            os.unlink(path)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


# --- running retentiond --------------------------------------------------------

def _command(args, config):
    cmd = shlex.split(os.environ.get("RETENTIOND_WRAPPER", "")) + [RETENTIOND]
    if config is not None:
        cmd += ["-c", str(config)]
    return cmd + [str(a) for a in args]


def run(args, config=None, env=None, timeout=60, input=None):
    """Run retentiond [-c CONFIG] ARGS to completion; stdout and stderr are
    captured as text. ENV adds to (None values remove from) a clean
    environment without PG* or RETENTIOND_CONFIG."""
    return subprocess.run(_command(args, config), env=clean_env(env),
                          input=input, stdin=None if input is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout)


def spawn(args, config=None, env=None, stdout=None, stderr=None):
    """Start retentiond in the background (for `daemon`); returns the Popen.
    The caller stops it; it is also killed at exit."""
    proc = subprocess.Popen(_command(args, config), env=clean_env(env),
                            stdin=subprocess.DEVNULL,
                            stdout=stdout or subprocess.PIPE,
                            stderr=stderr or subprocess.PIPE, text=True)
    _register(_ProcStopper(proc))
    return proc


class _ProcStopper:
    def __init__(self, proc):
        self.proc = proc

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def write_config(path_or_dir, text, mode=0o600):
    """Write TEXT to PATH (or DIR/retentiond.conf) with MODE; returns the path."""
    path = str(path_or_dir)
    if os.path.isdir(path):
        path = os.path.join(path, "retentiond.conf")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)  # the umask may have narrowed it
    return path


def write_secret(path, value, mode=0o600):
    """A secret file (password, key) with MODE."""
    return write_config(path, value, mode)


def line_of(text, needle, start=1):
    """1-based number of the first line (at or after line START) of TEXT
    that contains NEEDLE; raises ValueError when there is none."""
    for n, line in enumerate(text.splitlines(), 1):
        if n >= start and needle in line:
            return n
    raise ValueError(f"{needle!r} not in text")


# --- unittest base class --------------------------------------------------------

class IntegrationTest(unittest.TestCase):
    """One PostgreSQL cluster per test class (set USE_CLUSTER = False to go
    without), a fresh temporary directory per test in self.tmp.

    Subclasses may define a classmethod setUpCluster(cls) to create their
    databases; it runs after the cluster is up.
    """

    USE_CLUSTER = True
    CLUSTER_SETTINGS = {}   # extra server settings (-c NAME=VALUE)
    cluster = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The ledger (state_directory) defaults to $STATE_DIRECTORY, else
        # /var/lib/retentiond: every retentiond this class starts gets a
        # private one, so tests never share a ledger with each other or
        # with the machine.
        cls._class_state = make_tmpdir("rtd-state-")
        cls.addClassCleanup(remove_tree, cls._class_state)
        cls._saved_state_env = os.environ.get("STATE_DIRECTORY")
        cls.addClassCleanup(cls._restore_state_env)
        os.environ["STATE_DIRECTORY"] = cls._class_state
        if not os.access(RETENTIOND, os.X_OK):
            raise HarnessError(f"retentiond binary not found at {RETENTIOND}: "
                               "build it (scripts/build) or set RETENTIOND")
        if cls.USE_CLUSTER:
            cls.cluster = PostgresCluster(name=cls.__name__.lower(),
                                          settings=cls.CLUSTER_SETTINGS)
            # Class cleanups run even when setUpClass fails half way.
            cls.addClassCleanup(cls._stop_cluster)
            cls.cluster.start()
            cls.setUpCluster()

    @classmethod
    def _restore_state_env(cls):
        if cls._saved_state_env is None:
            os.environ.pop("STATE_DIRECTORY", None)
        else:
            os.environ["STATE_DIRECTORY"] = cls._saved_state_env

    @classmethod
    def _stop_cluster(cls):
        if cls.cluster is not None:
            cls.cluster.stop()
            cls.cluster = None

    @classmethod
    def setUpCluster(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        try:
            cls._stop_cluster()
        finally:
            super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.tmp = make_tmpdir("rtd-test-")
        self.addCleanup(remove_tree, self.tmp)
        # a fresh ledger per test (see setUpClass), in self.state
        self.state = os.path.join(self.tmp, "state")
        os.environ["STATE_DIRECTORY"] = self.state
        self.addCleanup(os.environ.__setitem__, "STATE_DIRECTORY",
                        self._class_state)

    def run_rd(self, args, config=None, **kw):
        return run(args, config=config, **kw)

    def one_connection_role(self, prefix, db, table="events"):
        """A role that may hold one connection (a second is refused),
        owning TABLE and its partitions in database DB; dropped after the
        test. For what retentiond does without its second connection."""
        role = prefix + db[2:20]
        self.cluster.psql(f"""
CREATE ROLE {role} LOGIN CONNECTION LIMIT 1;
GRANT CREATE ON DATABASE {db} TO {role};
ALTER TABLE {table} OWNER TO {role};
SELECT format('ALTER TABLE %s OWNER TO {role}', inhrelid::regclass)
FROM pg_inherits WHERE inhparent = '{table}'::regclass \\gexec
""", dbname=db)
        self.addCleanup(lambda: self.cluster.psql(
            f"REASSIGN OWNED BY {role} TO postgres; DROP OWNED BY {role}; "
            f"DROP ROLE {role};", dbname=db))
        return role

    def assertExit(self, proc, code, msg=None):
        if proc.returncode != code:
            detail = (f"exit status {proc.returncode}, expected {code}\n"
                      f"command: {shlex.join(str(a) for a in proc.args)}\n"
                      f"--- stdout ---\n{proc.stdout}--- stderr ---\n{proc.stderr}")
            self.fail(f"{msg}: {detail}" if msg else detail)

    def assertOutput(self, proc, pattern, stream="stderr", flags=re.M):
        """Assert that regex PATTERN matches in the process's STREAM."""
        text = getattr(proc, stream)
        if not re.search(pattern, text, flags):
            self.fail(f"{pattern!r} not found in {stream}\n"
                      f"--- stdout ---\n{proc.stdout}--- stderr ---\n{proc.stderr}")

    def assertNoOutput(self, proc, pattern, stream="stderr", flags=re.M):
        text = getattr(proc, stream)
        if re.search(pattern, text, flags):
            self.fail(f"{pattern!r} unexpectedly found in {stream}\n"
                      f"--- stdout ---\n{proc.stdout}--- stderr ---\n{proc.stderr}")


def real_clock(reason):
    """Mark a test that needs the real clock: scripts/check-dates runs the
    suite under libfaketime (RETENTIOND_FAKED_DATE set) and leaves such
    tests out, saying why; they run in every other stage."""
    def mark(fn):
        fn.real_clock = reason
        return fn
    return mark


def _without_real_clock(suite):
    kept = unittest.TestSuite()
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            kept.addTest(_without_real_clock(test))
            continue
        reason = getattr(getattr(test, test._testMethodName, None), "real_clock", None)
        if reason:
            print(f"not run under a faked date: {test.id()}: {reason}", file=sys.stderr)
        else:
            kept.addTest(test)
    return kept


def main():
    """Entry point for test files: unittest with one line per test."""
    if os.environ.get("RETENTIOND_FAKED_DATE") and len(sys.argv) == 1:
        suite = _without_real_clock(unittest.defaultTestLoader.loadTestsFromModule(
            sys.modules["__main__"]))
        result = unittest.TextTestRunner(verbosity=2).run(suite)
        sys.exit(0 if result.wasSuccessful() else 1)
    unittest.main(verbosity=2)
