/*
 * schema: retentiond's own tables (SPEC §4), created and upgraded from the
 * versioned SQL files under sql/, which the build embeds in the binary
 * (scripts/embed-sql generates sql_files.c).
 */
#ifndef RETENTIOND_SCHEMA_H
#define RETENTIOND_SCHEMA_H

#include <stddef.h>

#include <libpq-fe.h>

#include "util.h"

struct sql_file {
	int version;		/* NNN of sql/NNN_name.sql */
	const char *name;	/* "001_init.sql" */
	const char *sql;
};

/* In ascending version order; generated. */
extern const struct sql_file sql_files[];
extern const size_t n_sql_files;

/* The newest version this binary knows. */
int schema_latest_version(void);

/*
 * Create SCHEMA if missing and apply every embedded file newer than the
 * database's version, each in its own transaction together with its
 * schema_version row, under an advisory lock so concurrent init-dbs wait
 * for each other. Returns the number of files this call applied (0: up to
 * date) and, when APPLIED is not NULL, their names ("001_init.sql,
 * 002_x.sql", malloc'd; NULL when none). Another init-db running at the
 * same time may apply some of the files instead. Returns -1 with *err set
 * (malloc'd) when a file fails or the database's version is newer than
 * this binary knows; files applied before that stay applied. Must be
 * called outside a transaction.
 */
int schema_init(PGconn *conn, const char *schema, char **applied, char **err)
	MUSTCHECK;

/* The database's schema version: 0 when SCHEMA or its schema_version table
 * does not exist. Returns 0, or -1 with *err set. */
int schema_version(PGconn *conn, const char *schema, int *version, char **err)
	MUSTCHECK;

/*
 * For commands that use the schema: 0 when it is at exactly the version
 * this binary knows; -1 with *err set ("... run \"retentiond init-db\"
 * first", or "newer than this retentiond") otherwise.
 */
int schema_require(PGconn *conn, const char *schema, char **err) MUSTCHECK;

#endif
