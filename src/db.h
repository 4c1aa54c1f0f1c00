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

#endif
