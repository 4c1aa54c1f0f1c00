#include "db.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Trim the trailing newline libpq puts on its messages and join lines, so
 * an error fits one log line. */
static char *
one_line(const char *msg)
{
	char *s = xstrdup(msg && *msg ? msg : "unknown error");
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	return s;
}

char *
db_error(PGconn *conn, const PGresult *res)
{
	if (res && PQresultErrorMessage(res)[0])
		return one_line(PQresultErrorMessage(res));
	return one_line(conn ? PQerrorMessage(conn) : NULL);
}

/*
 * The "hash" method sends the pseudonym key's HMAC pads as bind
 * parameters, and a server that logs statements (log_min_duration_statement,
 * log_statement, sampling) writes bind parameters to its log in full unless
 * log_parameter_max_length is 0: the key would stand in the server's log,
 * where anyone who reads it gets the key back (the inner pad XOR 0x36).
 * Other parameters are personal data (the subject of an erasure request).
 * Turn that off for this session, whatever the rules: a reload may bring
 * "hash" to a connection made without it. It takes a superuser or, from
 * PostgreSQL 15, GRANT SET ON PARAMETER; without it, warn (when WARN: the
 * key is loaded) if the server does log statements.
 */
static void
hide_parameters(PGconn *conn, bool warn)
{
	/* asked first, so that a role without the right leaves no ERROR in
	 * the server's log at every connection */
	int version = PQserverVersion(conn);
	PGresult *res = PQexec(conn, version < 130000
		? "SELECT false"	/* no log_parameter_max_length yet */
		: version < 150000
		? "SELECT pg_catalog.current_setting('is_superuser') = 'on'"
		: "SELECT pg_catalog.current_setting('is_superuser') = 'on'"
		  " OR pg_catalog.has_parameter_privilege("
		  "    'log_parameter_max_length', 'SET')");
	bool may = PQresultStatus(res) == PGRES_TUPLES_OK &&
		   PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (may) {
		res = PQexec(conn, "SET log_parameter_max_length = 0");
		ExecStatusType st = PQresultStatus(res);
		PQclear(res);
		if (st == PGRES_COMMAND_OK)
			return;
	}
	if (!warn)
		return;
	res = PQexec(conn,
		"SELECT coalesce(pg_catalog.current_setting("
		"    'log_parameter_max_length', true), '-1') <> '0'"
		" AND (pg_catalog.current_setting('log_min_duration_statement') <> '-1'"
		"  OR pg_catalog.current_setting('log_statement') IN ('mod', 'all')"
		"  OR coalesce(pg_catalog.current_setting("
		"       'log_min_duration_sample', true), '-1') <> '-1'"
		"  OR coalesce(pg_catalog.current_setting("
		"       'log_transaction_sample_rate', true), '0')::float8 > 0)");
	if (PQresultStatus(res) == PGRES_TUPLES_OK &&
	    PQgetvalue(res, 0, 0)[0] == 't')
		log_warning("the database server logs statements with their "
			    "parameters, and \"hash\" sends the pseudonym key's "
			    "HMAC pads as parameters: the key can be read back from "
			    "the server's log; retentiond may not turn that off "
			    "for its session; as a superuser: GRANT SET ON "
			    "PARAMETER log_parameter_max_length TO \"%s\" "
			    "(PostgreSQL 15 and later), or ALTER ROLE \"%s\" SET "
			    "log_parameter_max_length = 0", PQuser(conn),
			    PQuser(conn));
	PQclear(res);
}

/* poll(2) CONN's socket for reading or WRITING: >0 ready, 0 timed out,
 * <0 error (errno). */
static int
socket_ready(PGconn *conn, bool writing, int timeout_ms)
{
	struct pollfd pfd = { .fd = PQsocket(conn),
			      .events = writing ? POLLOUT : POLLIN };
	int r;
	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r;
}

static PGconn *configure(PGconn *conn, const struct config *cfg,
			 enum db_role role, char **err);

bool
db_conninfo_sets(const char *conninfo, const char *keyword)
{
	char *msg = NULL;
	/* a bare database name is no conninfo: it sets nothing else */
	PQconninfoOption *opts = PQconninfoParse(conninfo ? conninfo : "", &msg);
	bool set = false;

	if (!opts) {
		PQfreemem(msg);
		return false;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, keyword) == 0 && o->val && o->val[0])
			set = true;
	PQconninfoFree(opts);
	return set;
}

/* Whether we add target_session_attrs=read-write: the admin's conninfo
 * (or environment) did not choose. */
static bool
default_read_write(const struct config *cfg)
{
	const char *env = getenv("PGTARGETSESSIONATTRS");
	return !(env && env[0]) &&
	       !db_conninfo_sets(cfg->database.conninfo, "target_session_attrs");
}

/* The keyword arrays for libpq (at most 6 pairs and the terminator);
 * TIMEOUT is the caller's buffer for connect_timeout. READ_WRITE adds
 * target_session_attrs=read-write as a default. */
static void
connect_params(const struct config *cfg, const char **keys, const char **vals,
	       char *timeout, size_t timeout_size, bool read_write)
{
	int n = 0;

	/* Keywords before "dbname" are defaults the conninfo may override;
	 * those after it override the conninfo. */
	snprintf(timeout, timeout_size, "%lld",
		 (long long)(duration_ms(&cfg->database.connect_timeout) + 999) / 1000);
	keys[n] = "connect_timeout";
	vals[n++] = timeout;
	keys[n] = "fallback_application_name";
	vals[n++] = "retentiond";
	/* several hosts: libpq tries each until one takes writes, so a
	 * failover needs no change to the config (SPEC §10) */
	if (read_write) {
		keys[n] = "target_session_attrs";
		vals[n++] = "read-write";
	}
	keys[n] = "dbname";
	vals[n++] = cfg->database.conninfo;
	if (cfg->database.password.data) {
		keys[n] = "password";
		vals[n++] = (const char *)cfg->database.password.data;
	}
	keys[n] = NULL;
	vals[n] = NULL;
}

typedef PGconn *connect_fn(const char *const *keys, const char *const *vals,
			  int expand_dbname);

/* CONNECT (blocking or not) with cfg->database; NULL with *err when it
 * failed at once. */
static PGconn *
open_conn(const struct config *cfg, connect_fn *connect, bool read_write,
	  char **err)
{
	const char *keys[8];
	const char *vals[8];
	char timeout[32];

	connect_params(cfg, keys, vals, timeout, sizeof(timeout), read_write);
	PGconn *conn = connect(keys, vals, 1);
	if (!conn) {
		*err = xstrdup("out of memory allocating the connection");
		return NULL;
	}
	if (PQstatus(conn) == CONNECTION_BAD) {
		*err = db_error(conn, NULL);
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

PGconn *
db_connect_start(const struct config *cfg, char **err)
{
	PGconn *conn = open_conn(cfg, PQconnectStartParams,
				 default_read_write(cfg), err);
	if (!conn)
		return NULL;
	/* send what can be sent now, so the server starts the backend while
	 * the caller does other work */
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	while (st == PGRES_POLLING_WRITING && socket_ready(conn, true, 0) > 0)
		st = PQconnectPoll(conn);
	if (st == PGRES_POLLING_FAILED) {
		*err = db_error(conn, NULL);
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* libpq enforces connect_timeout only when it waits itself: the value in
 * effect (the conninfo's, else the config's), in ms, -1 for none. */
static double
timeout_ms(PGconn *conn)
{
	PQconninfoOption *opts = PQconninfo(conn);
	double ms = -1;
	for (PQconninfoOption *o = opts; o && o->keyword; o++)
		if (strcmp(o->keyword, "connect_timeout") == 0 && o->val) {
			int s = atoi(o->val);
			if (s > 0)	/* libpq's floor */
				ms = (s < 2 ? 2 : s) * 1000.0;
		}
	PQconninfoFree(opts);
	return ms;
}

PGconn *
db_connect_finish(PGconn *conn, const struct config *cfg, char **err)
{
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	double limit = timeout_ms(conn);
	double deadline = monotonic_ms() + limit;

	while (PQstatus(conn) != CONNECTION_OK) {
		if (st == PGRES_POLLING_READING || st == PGRES_POLLING_WRITING) {
			double left = limit < 0 ? -1 : deadline - monotonic_ms();
			int r = limit < 0 || left > 0
				? socket_ready(conn, st == PGRES_POLLING_WRITING,
					       limit < 0 ? -1 : (int)left + 1)
				: 0;
			if (r < 0) {
				*err = xasprintf("waiting for the server: %s",
						 strerror(errno));
				PQfinish(conn);
				return NULL;
			}
			if (r == 0) {
				*err = xstrdup("timeout expired");
				PQfinish(conn);
				return NULL;
			}
		}
		st = PQconnectPoll(conn);
		if (st == PGRES_POLLING_FAILED) {
			*err = db_error(conn, NULL);
			PQfinish(conn);
			return NULL;
		}
	}
	return configure(conn, cfg, DB_WRITES, err);
}

char *
db_standby_message(PGconn *conn)
{
	return xasprintf("the server at %s:%s is a standby (in recovery); "
			 "retentiond writes and must connect to the primary: "
			 "list the primary in database.conninfo or use "
			 "target_session_attrs=read-write", PQhost(conn),
			 PQport(conn));
}

PGconn *
db_connect_as(const struct config *cfg, enum db_role role, char **err)
{
	bool rw = default_read_write(cfg);
	PGconn *conn = open_conn(cfg, PQconnectdbParams, rw, err);

	if (!conn && rw) {
		/* No host took writes. Connect once more without asking, to
		 * tell a standby (which a reader may use, and a writer must
		 * be told about) from a server that is down; the first
		 * error stays when that fails too. */
		char *again = NULL;
		conn = open_conn(cfg, PQconnectdbParams, false, &again);
		if (conn) {
			free(*err);
			*err = NULL;
		}
		free(again);
	}
	return conn ? configure(conn, cfg, role, err) : NULL;
}

PGconn *
db_connect(const struct config *cfg, char **err)
{
	return db_connect_as(cfg, DB_WRITES, err);
}

/* The session every connection gets; closes CONN on failure, and a
 * connection to a standby when ROLE writes. */
static PGconn *
configure(PGconn *conn, const struct config *cfg, enum db_role role,
	  char **err)
{
	/* Pin search_path: every object we touch is schema-qualified, and
	 * nothing may resolve through a schema another role can create
	 * functions or operators in. Timeouts are set here, not through the
	 * "options" keyword, so options in the admin's conninfo survive. */
	char stmt[32], lock[32];
	snprintf(stmt, sizeof(stmt), "%lldms",
		 (long long)duration_ms(&cfg->database.statement_timeout));
	snprintf(lock, sizeof(lock), "%lldms",
		 (long long)duration_ms(&cfg->database.lock_timeout));
	const char *params[] = { stmt, lock };
	/* pg_is_in_recovery() too: a conninfo that says
	 * target_session_attrs=any may still land on a standby */
	PGresult *res = PQexecParams(conn,
		"SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false),"
		" pg_catalog.set_config('statement_timeout', $1, false),"
		" pg_catalog.set_config('lock_timeout', $2, false),"
		" pg_catalog.pg_is_in_recovery()",
		2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char *e = db_error(conn, res);
		*err = xasprintf("could not configure the session: %s", e);
		free(e);
		PQclear(res);
		PQfinish(conn);
		return NULL;
	}
	bool standby = PQgetvalue(res, 0, 3)[0] == 't';
	PQclear(res);
	if (standby && role == DB_WRITES) {
		*err = db_standby_message(conn);
		PQfinish(conn);
		return NULL;
	}
	if (standby)
		log_info("connected to a standby (in recovery) at %s:%s: "
			 "reading only", PQhost(conn), PQport(conn));
	hide_parameters(conn, cfg->pseudonym_key.data != NULL);
	log_debug("connected to database \"%s\" on %s as \"%s\" (server %d)",
		  PQdb(conn), PQhost(conn), PQuser(conn), PQserverVersion(conn));
	return conn;
}

void
db_cancel(PGconn *conn)
{
	if (PQtransactionStatus(conn) != PQTRANS_ACTIVE)
		return;
	PGcancel *c = PQgetCancel(conn);
	if (c) {
		char buf[256];
		(void)PQcancel(c, buf, sizeof(buf));
		PQfreeCancel(c);
	}
}

void
db_close(PGconn *conn)
{
	if (!conn)
		return;
	/* A statement still running would otherwise go on after we left. */
	db_cancel(conn);
	PQfinish(conn);
}

PGresult *
db_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
	 char **err)
{
	return db_exec_params(conn, sql, nparams, NULL, params, NULL, err);
}

bool
db_exec(PGconn *conn, const char *sql, char **err)
{
	PGresult *res = db_query(conn, sql, 0, NULL, err);
	if (!res)
		return false;
	PQclear(res);
	return true;
}

char *
db_ident(PGconn *conn, const char *name)
{
	char *q = PQescapeIdentifier(conn, name, strlen(name));
	if (!q) {
		/* only on invalid encoding or OOM; the caller reports */
		return NULL;
	}
	char *copy = xstrdup(q);
	PQfreemem(q);
	return copy;
}

char *
db_qualified(PGconn *conn, const char *schema, const char *table)
{
	char *s = db_ident(conn, schema);
	char *t = db_ident(conn, table);
	char *r = NULL;
	if (s && t)
		r = xasprintf("%s.%s", s, t);
	free(s);
	free(t);
	return r;
}

enum db_errclass
db_errclass_of(const char *sqlstate)
{
	static const struct {
		const char *code;
		enum db_errclass class;
	} map[] = {
		{ "55P03", DBERR_LOCK_NOT_AVAILABLE },
		{ "40P01", DBERR_DEADLOCK },
		{ "57014", DBERR_QUERY_CANCELED },
		{ "23503", DBERR_FK_VIOLATION },
		{ "25006", DBERR_READ_ONLY },
		{ "42P01", DBERR_UNDEFINED_TABLE },
	};

	/* libpq reports a lost connection without a SQLSTATE */
	if (!sqlstate || !*sqlstate || strncmp(sqlstate, "08", 2) == 0)
		return DBERR_CONNECTION;
	if (strncmp(sqlstate, "22", 2) == 0)
		return DBERR_DATA_EXCEPTION;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(sqlstate, map[i].code) == 0)
			return map[i].class;
	return DBERR_OTHER;
}

bool
db_errclass_is_lock(enum db_errclass c)
{
	return c == DBERR_LOCK_NOT_AVAILABLE || c == DBERR_DEADLOCK;
}

PGresult *
db_exec_params(PGconn *conn, const char *sql, int nparams, const Oid *types,
	       const char *const *values, enum db_errclass *class, char **err)
{
	PGresult *res = PQexecParams(conn, sql, nparams, types, values, NULL,
				     NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		if (class)
			*class = DBERR_NONE;
		return res;
	}
	if (class)
		*class = db_errclass_of(PQresultErrorField(res, PG_DIAG_SQLSTATE));
	*err = db_error(conn, res);
	PQclear(res);
	return NULL;
}

bool
db_lock_timeout(PGconn *conn, const char *value, char **err)
{
	const char *p[] = { value };
	PGresult *res = db_query(conn,
		"SELECT pg_catalog.set_config('lock_timeout', $1, false)", 1, p,
		err);
	if (!res)
		return false;
	PQclear(res);
	return true;
}

bool
db_async_commit(PGconn *conn, bool on, char **err)
{
	return db_exec(conn, on ? "SET synchronous_commit = off"
				: "RESET synchronous_commit", err);
}

bool
db_flush_writes(PGconn *conn, bool on, char **err)
{
	return db_exec(conn, on ? "SET backend_flush_after = '"
				  DB_FLUSH_AFTER "'"
				: "RESET backend_flush_after", err);
}

bool
db_parallel_query(PGconn *conn, bool on, char **err)
{
	return db_exec(conn, on ? "RESET max_parallel_workers_per_gather"
				: "SET max_parallel_workers_per_gather = 0", err);
}

bool
db_wal_position(PGconn *conn, long long *pos, char **err)
{
	PGresult *res = db_query(conn,
		"SELECT pg_catalog.pg_wal_lsn_diff("
		"pg_catalog.pg_current_wal_insert_lsn(), '0/0')::bigint",
		0, NULL, err);
	if (!res)
		return false;
	*pos = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}

/* "15.4", or "9.6.24" before PostgreSQL 10 */
static void
version_text(int v, char *buf, size_t size)
{
	if (v >= 100000)
		snprintf(buf, size, "%d.%d", v / 10000, v % 10000);
	else
		snprintf(buf, size, "%d.%d.%d", v / 10000, v / 100 % 100, v % 100);
}

char *
db_server_unsupported(int server_version)
{
	char have[32], need[32];

	if (server_version >= DB_MIN_SERVER_VERSION)
		return NULL;
	snprintf(need, sizeof(need), "%d", DB_MIN_SERVER_VERSION / 10000);
	if (server_version <= 0)
		return xasprintf("could not tell the database server's version; "
				 "retentiond needs PostgreSQL %s or later", need);
	version_text(server_version, have, sizeof(have));
	return xasprintf("the database server is PostgreSQL %s, older than "
			 "PostgreSQL %s, the oldest this retentiond supports",
			 have, need);
}
