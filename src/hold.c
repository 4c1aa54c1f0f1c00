#include "hold.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "log.h"

/* Columns every hold query returns, in the order row_to_hold reads them. */
#define HOLD_COLUMNS \
	"h.id, h.subject, h.subject_id, h.reason, h.placed_by," \
	" pg_catalog.date_trunc('second', h.placed_at)::text," \
	" pg_catalog.date_trunc('second', h.expires_at)::text," \
	" pg_catalog.date_trunc('second', h.released_at)::text," \
	" h.released_by," \
	" CASE WHEN h.released_at IS NOT NULL THEN 2" \
	" WHEN h.expires_at <= pg_catalog.now() THEN 1 ELSE 0 END"

#define HOLD_ACTIVE_SQL \
	"h.released_at IS NULL" \
	" AND (h.expires_at IS NULL OR h.expires_at > pg_catalog.now())"

const char *
hold_state_name(enum hold_state s)
{
	switch (s) {
	case HOLD_ACTIVE:
		return "active";
	case HOLD_EXPIRED:
		return "expired";
	case HOLD_RELEASED:
		return "released";
	}
	return "?";
}

static bool
subject_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

bool
hold_parse_target(const char *arg, char **subject, char **subject_id,
		  const char **err)
{
	const char *colon = strchr(arg, ':');

	if (!colon) {
		*err = "expected SUBJECT:ID, e.g. customer:42";
		return false;
	}
	if (colon == arg) {
		*err = "SUBJECT is empty (expected SUBJECT:ID, e.g. customer:42)";
		return false;
	}
	for (const char *p = arg; p < colon; p++) {
		if (!subject_char(*p)) {
			*err = "SUBJECT may only contain letters, digits, "
			       "'_', '.' and '-'";
			return false;
		}
	}
	if (colon[1] == '\0') {
		*err = "ID is empty (expected SUBJECT:ID, e.g. customer:42)";
		return false;
	}
	if (str_has_ctl(colon + 1)) {
		*err = "ID must not contain control characters";
		return false;
	}
	*subject = xstrndup(arg, (size_t)(colon - arg));
	*subject_id = xstrdup(colon + 1);
	return true;
}

char *
hold_sql_not_held(PGconn *conn, const char *schema, const char *subject_param,
		  const char *row_subject_expr, char **err)
{
	const char *fault = getenv("RETENTIOND_INJECT_FAULT");
	if (fault && strcmp(fault, "hold_condition") == 0) {
		*err = xstrdup("injected fault (RETENTIOND_INJECT_FAULT)");
		return NULL;
	}
	char *table = db_qualified(conn, schema, "legal_holds");
	if (!table) {
		*err = db_error(conn, NULL);
		return NULL;
	}
	char *sql = xasprintf(
		"NOT EXISTS (SELECT 1 FROM %s h WHERE h.subject = %s"
		" AND h.subject_id = (%s)::text AND " HOLD_ACTIVE_SQL ")",
		table, subject_param, row_subject_expr);
	free(table);
	return sql;
}

char *
hold_sql_held_ids(PGconn *conn, const char *schema, const char *subject_param,
		  char **err)
{
	char *table = db_qualified(conn, schema, "legal_holds");
	if (!table) {
		*err = db_error(conn, NULL);
		return NULL;
	}
	char *sql = xasprintf(
		"SELECT coalesce(array_agg(DISTINCT h.subject_id), '{}')::text"
		" FROM %s h WHERE h.subject = %s AND " HOLD_ACTIVE_SQL,
		table, subject_param);
	free(table);
	return sql;
}

static char *
dup_or_null(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL
					  : xstrdup(PQgetvalue(res, row, col));
}

static void
row_to_hold(const PGresult *res, int row, struct hold *h)
{
	h->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
	h->subject = dup_or_null(res, row, 1);
	h->subject_id = dup_or_null(res, row, 2);
	h->reason = dup_or_null(res, row, 3);
	h->placed_by = dup_or_null(res, row, 4);
	h->placed_at = dup_or_null(res, row, 5);
	h->expires_at = dup_or_null(res, row, 6);
	h->released_at = dup_or_null(res, row, 7);
	h->released_by = dup_or_null(res, row, 8);
	h->state = (enum hold_state)atoi(PQgetvalue(res, row, 9));
}

void
hold_free(struct hold *h)
{
	if (!h)
		return;
	free(h->subject);
	free(h->subject_id);
	free(h->reason);
	free(h->placed_by);
	free(h->placed_at);
	free(h->expires_at);
	free(h->released_at);
	free(h->released_by);
	memset(h, 0, sizeof(*h));
}

void
hold_free_list(struct hold *holds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		hold_free(&holds[i]);
	free(holds);
}

/* PostgreSQL parses the date, so every format it accepts works and the
 * time zone is the database's. */
static enum hold_result
check_until(PGconn *conn, const char *until, char **err)
{
	const char *p[] = { until };
	PGresult *res = PQexecParams(conn,
		"SELECT $1::timestamptz::text, $1::timestamptz > pg_catalog.now()",
		1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		const char *primary = PQresultErrorField(res,
						PG_DIAG_MESSAGE_PRIMARY);
		char *e = db_error(conn, res);
		enum hold_result r = HOLD_DB_ERROR;
		/* bad date syntax, out of range */
		if (db_errclass_of(state) == DBERR_DATA_EXCEPTION) {
			*err = xasprintf("--until \"%s\" is not a date: %s",
					 until, primary ? primary : e);
			r = HOLD_BAD_INPUT;
		} else {
			*err = xasprintf("could not check --until: %s", e);
		}
		free(e);
		PQclear(res);
		return r;
	}
	if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
		*err = xasprintf("--until \"%s\" (%s) is not in the future",
				 until, PQgetvalue(res, 0, 0));
		PQclear(res);
		return HOLD_BAD_INPUT;
	}
	PQclear(res);
	return HOLD_OK;
}

enum hold_result
hold_add(PGconn *conn, const char *schema, const char *subject,
	 const char *subject_id, const char *reason, const char *until,
	 const char *placed_by, long long *id, char **expires_at, char **err)
{
	enum hold_result r;
	char *e = NULL;

	*expires_at = NULL;
	if (until && (r = check_until(conn, until, err)) != HOLD_OK)
		return r;

	char *table = db_qualified(conn, schema, "legal_holds");
	if (!table) {
		*err = db_error(conn, NULL);
		return HOLD_DB_ERROR;
	}
	char *sql = xasprintf(
		"INSERT INTO %s (subject, subject_id, reason, placed_by, expires_at)"
		" VALUES ($1, $2, $3, $4, $5::timestamptz)"
		" RETURNING id, expires_at::text", table);
	free(table);
	const char *p[] = { subject, subject_id, reason, placed_by, until };
	PGresult *res = db_query(conn, sql, 5, p, &e);
	free(sql);
	if (!res) {
		*err = xasprintf("could not place the hold: %s", e);
		free(e);
		return HOLD_DB_ERROR;
	}
	*id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	*expires_at = dup_or_null(res, 0, 1);
	PQclear(res);
	return HOLD_OK;
}

enum hold_result
hold_release(PGconn *conn, const char *schema, long long id,
	     const char *released_by, struct hold *released, char **err)
{
	struct hold h = { 0 };
	char idbuf[32];
	char *e = NULL;

	snprintf(idbuf, sizeof(idbuf), "%lld", id);
	char *table = db_qualified(conn, schema, "legal_holds");
	if (!table) {
		*err = db_error(conn, NULL);
		return HOLD_DB_ERROR;
	}
	char *sql = xasprintf(
		"UPDATE %s h SET released_at = pg_catalog.now(), released_by = $2"
		" WHERE h.id = $1::bigint AND h.released_at IS NULL"
		" RETURNING " HOLD_COLUMNS, table);
	const char *p[] = { idbuf, released_by };
	PGresult *res = db_query(conn, sql, 2, p, &e);
	free(sql);
	if (!res)
		goto fail;
	if (PQntuples(res) == 1) {
		if (released)
			row_to_hold(res, 0, released);
		PQclear(res);
		free(table);
		return HOLD_OK;
	}
	PQclear(res);

	/* Nothing updated: say whether it never existed or was released. */
	sql = xasprintf("SELECT " HOLD_COLUMNS " FROM %s h WHERE h.id = $1::bigint",
			table);
	res = db_query(conn, sql, 1, p, &e);
	free(sql);
	if (!res)
		goto fail;
	free(table);
	if (PQntuples(res) == 0) {
		PQclear(res);
		*err = xasprintf("no hold with id %lld", id);
		return HOLD_NOT_FOUND;
	}
	row_to_hold(res, 0, &h);
	PQclear(res);
	*err = xasprintf("hold %lld was already released at %s by %s", id,
			 h.released_at ? h.released_at : "?",
			 h.released_by ? h.released_by : "?");
	hold_free(&h);
	return HOLD_ALREADY_RELEASED;

fail:
	free(table);
	*err = xasprintf("could not release hold %lld: %s", id, e);
	free(e);
	return HOLD_DB_ERROR;
}

bool
hold_list(PGconn *conn, const char *schema, bool all, struct hold **holds,
	  size_t *n, char **err)
{
	char *e = NULL;
	char *table = db_qualified(conn, schema, "legal_holds");
	if (!table) {
		*err = db_error(conn, NULL);
		return false;
	}
	char *sql = xasprintf("SELECT " HOLD_COLUMNS " FROM %s h%s ORDER BY h.id",
			      table, all ? "" : " WHERE " HOLD_ACTIVE_SQL);
	free(table);
	PGresult *res = db_query(conn, sql, 0, NULL, &e);
	free(sql);
	if (!res) {
		*err = xasprintf("could not list holds: %s", e);
		free(e);
		return false;
	}
	*n = (size_t)PQntuples(res);
	*holds = xcalloc(*n, sizeof(**holds));
	for (size_t i = 0; i < *n; i++)
		row_to_hold(res, (int)i, &(*holds)[i]);
	PQclear(res);
	return true;
}

char *
hold_actor(void)
{
	const char *user = getenv("SUDO_USER");
	char host[256];
	char uid[32];

	if (!user || !*user || str_has_ctl(user)) {
		struct passwd *pw = getpwuid(geteuid());
		if (pw && pw->pw_name && *pw->pw_name) {
			user = pw->pw_name;
		} else {
			snprintf(uid, sizeof(uid), "uid %lu",
				 (unsigned long)geteuid());
			user = uid;
		}
	}
	if (gethostname(host, sizeof(host)) != 0 || !host[0])
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	return xasprintf("%s@%s", user, host);
}
