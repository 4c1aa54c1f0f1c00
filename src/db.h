/*
 * db: database connections, all set up alike. Keyword arrays, never
 * string-built conninfo; a pinned search_path so nothing resolves through
 * a schema an attacker could write to; timeouts from the config; every
 * error carries PQerrorMessage.
 */
#ifndef RETENTIOND_DB_H
#define RETENTIOND_DB_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "config.h"
#include "util.h"

/* Connect with cfg->database. On failure returns NULL and sets *err to a
 * malloc'd message (no password in it). Unless the conninfo (or
 * PGTARGETSESSIONATTRS) says otherwise, asks for target_session_attrs=
 * read-write, so a multi-host conninfo reaches the primary; a standby is
 * refused with db_standby_message (SPEC §10). */
PGconn *db_connect(const struct config *cfg, char **err) MUSTCHECK;

/* The same in two steps, so the server can start the session while the
 * caller works: start sends what it can without waiting; finish waits
 * (at most connect_timeout) and sets the session up like db_connect.
 * Both return NULL with *err on failure, having closed the connection. */
PGconn *db_connect_start(const struct config *cfg, char **err) MUSTCHECK;
PGconn *db_connect_finish(PGconn *conn, const struct config *cfg,
			  char **err) MUSTCHECK;

/* What a connection is for: a command that writes is refused a standby;
 * one that only reads (check, verify, report) takes the primary when it
 * can and a standby otherwise. */
enum db_role {
	DB_WRITES,
	DB_READS
};

PGconn *db_connect_as(const struct config *cfg, enum db_role role,
		      char **err) MUSTCHECK;

/* Whether CONNINFO (keyword form or URI) sets KEYWORD; false when it is
 * no conninfo at all (a bare database name). */
bool db_conninfo_sets(const char *conninfo, const char *keyword);

/* "the server at HOST:PORT is a standby ...", malloc'd. */
char *db_standby_message(PGconn *conn);

/* Cancel anything running, then close. NULL is fine. */
void db_close(PGconn *conn);
/* Ask the server to cancel the statement CONN runs, if it runs one. */
void db_cancel(PGconn *conn);

/* Run SQL that returns no rows; false with a logged-ready *err on failure. */
bool db_exec(PGconn *conn, const char *sql, char **err) MUSTCHECK;

/* PQexecParams with text parameters; returns the result (caller PQclear)
 * or NULL with *err set. Accepts PGRES_COMMAND_OK and PGRES_TUPLES_OK. */
PGresult *db_query(PGconn *conn, const char *sql, int nparams,
		   const char *const *params, char **err) MUSTCHECK;

/* Quote an identifier (malloc'd, never NULL on success). */
char *db_ident(PGconn *conn, const char *name) MUSTCHECK;

/* "schema"."table", quoted. */
char *db_qualified(PGconn *conn, const char *schema, const char *table) MUSTCHECK;

/* Trimmed single-line copy of PQerrorMessage (or the result's message). */
char *db_error(PGconn *conn, const PGresult *res);

/* What a failed statement's SQLSTATE means to retentiond: the only place
 * that knows SQLSTATE codes (as pgbench's getSQLErrorStatus). */
enum db_errclass {
	DBERR_NONE,			/* success */
	DBERR_LOCK_NOT_AVAILABLE,	/* 55P03: lock_timeout, NOWAIT */
	DBERR_DEADLOCK,			/* 40P01 */
	DBERR_QUERY_CANCELED,		/* 57014: statement_timeout, cancel */
	DBERR_FK_VIOLATION,		/* 23503 */
	DBERR_READ_ONLY,		/* 25006 */
	DBERR_UNDEFINED_TABLE,		/* 42P01 */
	DBERR_DATA_EXCEPTION,		/* class 22: bad input (a date) */
	DBERR_CONNECTION,		/* class 08, or no SQLSTATE at all */
	DBERR_OTHER
};

/* The class of SQLSTATE (NULL or "" when the server sent none: the
 * connection is gone). Pure. */
enum db_errclass db_errclass_of(const char *sqlstate);

/* A lock we may not wait for: lock-not-available or a deadlock. */
bool db_errclass_is_lock(enum db_errclass c);

/*
 * The one query helper: PQexecParams with TYPES (NULL: the server infers
 * them) and text VALUES. Returns the result (caller PQclear) when it is
 * PGRES_COMMAND_OK or PGRES_TUPLES_OK; else NULL with *err set and, when
 * CLASS is not NULL, *class the error's class.
 */
PGresult *db_exec_params(PGconn *conn, const char *sql, int nparams,
			 const Oid *types, const char *const *values,
			 enum db_errclass *class, char **err) MUSTCHECK;

/* The oldest PostgreSQL retentiond supports (PQserverVersion's form):
 * partition handling needs 14's pg_partition_tree and DETACH behaviour. */
#define DB_MIN_SERVER_VERSION 140000

/* NULL when SERVER_VERSION (PQserverVersion) is supported; else why not,
 * naming both versions (malloc'd). Pure. */
char *db_server_unsupported(int server_version) MUSTCHECK;

/* Session settings the batches change. */
/* lock_timeout (a PostgreSQL interval, "10ms"). */
bool db_lock_timeout(PGconn *conn, const char *value, char **err) MUSTCHECK;
/* Commit without waiting for the WAL flush (ON), or go back to the
 * session's own synchronous_commit. */
bool db_async_commit(PGconn *conn, bool on, char **err) MUSTCHECK;
/* Ask the kernel to write the pages this session writes out of shared
 * buffers after every DB_FLUSH_AFTER of them (backend_flush_after, which
 * any role may set), or go back to the session's own setting (off by
 * default). Unflushed, a batch's evicted pages pile up in the page cache
 * and reach the disk in one burst some seconds later, where others'
 * commits may wait behind it for their WAL flush (PostgreSQL's own
 * advice for the setting; bench/README.md has what it changed here). */
#define DB_FLUSH_AFTER "256kB"
bool db_flush_writes(PGconn *conn, bool on, char **err) MUSTCHECK;
/* Parallel query for this session: off (false), or back to the default. */
bool db_parallel_query(PGconn *conn, bool on, char **err) MUSTCHECK;
/* The server's WAL insert position, in bytes (busy.h). */
bool db_wal_position(PGconn *conn, long long *pos, char **err) MUSTCHECK;

#endif
