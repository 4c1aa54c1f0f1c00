#include "restore.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "ledger.h"
#include "log.h"
#include "postcycle.h"
#include "strbuf.h"

/* A timestamptz as the ledger writes it: UTC, microseconds, ISO 8601. */
#define UTC_TEXT(col) \
	"pg_catalog.to_char(" col " AT TIME ZONE 'UTC', " \
	"'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

struct refiled {
	const struct ledger_erasure *e;
	long long id;		/* the new request; 0 in a dry run */
};

/* Does the database hold this erasure: the request as it completed, or a
 * request for the same subject filed since (it erases all the earlier one
 * did)? 1 yes, 0 no, -1 error. */
static int
db_has(PGconn *conn, const char *table, const struct ledger_erasure *e,
       char **err)
{
	char *sql = xasprintf(
		"SELECT EXISTS (SELECT 1 FROM %s WHERE subject = $1"
		" AND subject_id = $2 AND (completed_at = $3::timestamptz"
		" OR requested_at >= $3::timestamptz))", table);
	const char *p[] = { e->subject, e->subject_id, e->completed_at };
	PGresult *res = db_query(conn, sql, 3, p, err);
	free(sql);
	if (!res)
		return -1;
	int has = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return has;
}

static bool
listed(const struct refiled *r, size_t n, const struct ledger_erasure *e)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(r[i].e->subject, e->subject) == 0 &&
		    strcmp(r[i].e->subject_id, e->subject_id) == 0)
			return true;
	return false;
}

static bool
file_again(PGconn *conn, const char *table, const struct ledger_erasure *e,
	   long long *id, char **err)
{
	char *sql = xasprintf("INSERT INTO %s (subject, subject_id, reason)"
			      " VALUES ($1, $2, $3) RETURNING id", table);
	const char *p[] = { e->subject, e->subject_id, RESTORE_REASON };
	PGresult *res = db_query(conn, sql, 3, p, err);
	free(sql);
	if (!res)
		return false;
	*id = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}

static char *
action_detail(const char *ledger, const struct ledger_head *lost,
	      const struct refiled *r, size_t n)
{
	struct strbuf b = STRBUF_INIT;

	sb_add(&b, "{\"ledger\": ");
	sb_json_str(&b, ledger);
	if (lost)
		sb_printf(&b, ", \"ledger_head\": {\"id\": %lld, \"hash\": "
			  "\"%s\"}", lost->id, lost->hash);
	else
		sb_add(&b, ", \"by_hand\": true");
	sb_add(&b, ", \"refiled\": [");
	for (size_t i = 0; i < n; i++) {
		sb_printf(&b, "%s{\"request\": %lld, \"subject\": ",
			  i ? ", " : "", r[i].id);
		sb_json_str(&b, r[i].e->subject);
		sb_add(&b, ", \"subject_id\": ");
		sb_json_str(&b, r[i].e->subject_id);
		sb_printf(&b, ", \"was_request\": %lld, \"completed_at\": ",
			  r[i].e->request_id);
		sb_json_str(&b, r[i].e->completed_at);
		sb_add(&b, "}");
	}
	sb_add(&b, "]}");
	return sb_take(&b);
}

static void
rollback(PGconn *conn)
{
	char *e = NULL;
	if (!db_exec(conn, "ROLLBACK", &e))
		free(e);
}

/*
 * File again, one request per subject, every erasure of L that the
 * database lacks; unless DRY_RUN, in one transaction with the
 * restore_detected action (recorded when LOST is set or anything was
 * filed). Returns how many, *out listing them, or -1 with *err.
 */
static long long
refile(PGconn *conn, const struct config *cfg, const char *path,
       const struct ledger *l, const struct ledger_head *lost,
       long long run_id, bool dry_run, struct refiled **out, char **err)
{
	const char *schema = cfg->database.schema;
	char *table = db_qualified(conn, schema, "erasure_requests");
	struct refiled *r = xcalloc(l->n_erasures ? l->n_erasures : 1,
				    sizeof(*r));
	size_t n = 0;
	bool ok = true;

	*out = NULL;
	if (!dry_run && !db_exec(conn, "BEGIN", err)) {
		free(table);
		free(r);
		return -1;
	}
	for (size_t i = 0; i < l->n_erasures && ok; i++) {
		const struct ledger_erasure *e = &l->erasures[i];
		if (listed(r, n, e))
			continue;
		int has = db_has(conn, table, e, err);
		if (has < 0)
			ok = false;
		else if (!has) {
			r[n].e = e;
			ok = dry_run || file_again(conn, table, e, &r[n].id, err);
			n++;
		}
	}
	if (ok && !dry_run && (lost || n > 0)) {
		char *detail = action_detail(path, lost, r, n);
		char *target = xasprintf("%s.erasure_requests", schema);
		ok = audit_append(conn, schema, run_id, "restore", target,
				  "restore_detected", NULL, (long long)n, "now",
				  "now", detail, err);
		free(target);
		free(detail);
	}
	if (!dry_run) {
		if (ok)
			ok = db_exec(conn, "COMMIT", err);
		else
			rollback(conn);
	}
	free(table);
	if (!ok) {
		free(r);
		return -1;
	}
	*out = r;
	return (long long)n;
}

/* Remember the head of a chain checked from its start (after a restore
 * the ledger's head is not in it). */
static void
record_full_head(PGconn *conn, const struct config *cfg)
{
	struct audit_verify_result v;
	char *err = NULL;

	int st = audit_verify(conn, cfg->database.schema, &v, &err);
	if (st < 0) {
		log_error("could not check the audit trail: %s", err);
		free(err);
		return;
	}
	if (st != 0 || v.last_id <= 0)
		return;	/* a broken chain is reported after the cycle */
	struct ledger_head h = { .id = v.last_id, .rows = v.n_rows };
	snprintf(h.hash, sizeof(h.hash), "%s", v.last_hash);
	char *line = ledger_format_head(&h);
	if (!ledger_append(cfg->state_directory, line, &err)) {
		log_error("%s", err);
		free(err);
	}
	free(line);
}

static void
alert(PGconn *conn, const struct config *cfg, const char *path,
      const struct ledger_head *lost, const struct refiled *r, long long n)
{
	struct strbuf b = STRBUF_INIT;
	const char *db = PQdb(conn);

	sb_printf(&b, "The audit trail of database \"%s\" (schema \"%s\") "
		  "lacks action %lld with hash %.16s..., which the ledger %s "
		  "recorded after an earlier cycle. The database was restored "
		  "from a backup taken before that, or audit rows were "
		  "removed.\n\n", db ? db : "?", cfg->database.schema,
		  lost->id, lost->hash, path);
	if (n == 0)
		sb_add(&b, "The database lacks none of the erasure requests "
			   "that the ledger recorded.\n");
	else
		sb_printf(&b, "%lld erasure request%s that the ledger recorded "
			  "%s missing and %s filed again (reason \"%s\"); this "
			  "cycle carries them out:\n", n, n == 1 ? "" : "s",
			  n == 1 ? "was" : "were", n == 1 ? "was" : "were",
			  RESTORE_REASON);
	for (long long i = 0; i < n; i++)
		sb_printf(&b, "  request %lld: %s:%s (was request %lld, "
			  "completed %s)\n", r[i].id, r[i].e->subject,
			  r[i].e->subject_id, r[i].e->request_id,
			  r[i].e->completed_at);
	sb_add(&b, "\nFind out what happened to the database; "
		   "`retentiond verify` checks the audit trail it has now.\n");
	postcycle_alert_direct(cfg, "retentiond ALERT: database restored from "
			       "a backup: erasures re-applied", b.s);
	sb_free(&b);
}

void
restore_check(PGconn *conn, const struct config *cfg, long long run_id)
{
	struct ledger l;
	char *err = NULL;
	char *path = ledger_path(cfg->state_directory);

	if (!ledger_load(cfg->state_directory, &l, &err)) {
		log_error("could not check for a restore from a backup: %s",
			  err);
		free(err);
		free(path);
		return;
	}
	if (l.head.id <= 0)
		goto out;	/* no cycle recorded yet */

	char id[32];
	snprintf(id, sizeof(id), "%lld", l.head.id);
	char *table = db_qualified(conn, cfg->database.schema, "actions");
	char *sql = xasprintf("SELECT hash FROM %s WHERE id = $1::bigint",
			      table);
	const char *p[] = { id };
	PGresult *res = db_query(conn, sql, 1, p, &err);
	free(sql);
	free(table);
	if (!res) {
		log_error("could not check for a restore from a backup: %s",
			  err);
		free(err);
		goto out;
	}
	bool contained = PQntuples(res) == 1 &&
			 strcmp(PQgetvalue(res, 0, 0), l.head.hash) == 0;
	PQclear(res);
	if (contained)
		goto out;

	log_error("the audit trail lacks action %lld (hash %.16s...) that "
		  "the ledger %s recorded: the database was restored from a "
		  "backup, or audit rows were removed", l.head.id, l.head.hash,
		  path);
	struct refiled *r = NULL;
	long long n = refile(conn, cfg, path, &l, &l.head, run_id, false, &r,
			     &err);
	if (n < 0) {
		log_error("could not re-file the ledger's erasure requests: %s",
			  err);
		free(err);
		char *body = xasprintf("The audit trail lacks action %lld that "
				       "the ledger %s recorded: the database "
				       "was restored from a backup. Re-filing "
				       "its erasure requests failed; run "
				       "`retentiond replay`.\n", l.head.id,
				       path);
		postcycle_alert_direct(cfg, "retentiond ALERT: database "
				       "restored from a backup", body);
		free(body);
		goto out;
	}
	for (long long i = 0; i < n; i++)
		log_notice("erasure request %lld (%s:%s) filed again: %s",
			   r[i].id, r[i].e->subject, r[i].e->subject_id,
			   RESTORE_REASON);
	alert(conn, cfg, path, &l.head, r, n);
	free(r);
	record_full_head(conn, cfg);
out:
	ledger_free(&l);
	free(path);
}

long long
restore_replay(PGconn *conn, const struct config *cfg, long long run_id,
	       bool dry_run, FILE *out, char **err)
{
	struct ledger l;
	struct refiled *r = NULL;
	char *path = ledger_path(cfg->state_directory);

	if (!ledger_load(cfg->state_directory, &l, err)) {
		free(path);
		return -1;
	}
	long long n = refile(conn, cfg, path, &l, NULL, run_id, dry_run, &r,
			     err);
	for (long long i = 0; i < n; i++) {
		if (dry_run)
			fprintf(out, "would re-file ");
		else
			fprintf(out, "erasure request %lld: re-filed ", r[i].id);
		fprintf(out, "%s:%s (request %lld, completed %s)\n",
			r[i].e->subject, r[i].e->subject_id,
			r[i].e->request_id, r[i].e->completed_at);
	}
	free(r);
	ledger_free(&l);
	free(path);
	return n;
}

/* Ledger lines for the requests RES completed that it does not hold yet. */
static bool
completed_lines(PGconn *conn, const struct config *cfg,
		const struct run_result *res, const struct ledger *l,
		struct strbuf *lines, char **err)
{
	char *table = db_qualified(conn, cfg->database.schema,
				   "erasure_requests");
	char *sql = xasprintf("SELECT subject, subject_id, "
			      UTC_TEXT("completed_at") " FROM %s"
			      " WHERE id = $1::bigint"
			      " AND status IN ('done', 'partial')"
			      " AND completed_at IS NOT NULL", table);
	bool ok = true;

	free(table);
	for (size_t i = 0; i < res->n_erasures && ok; i++) {
		const struct erasure_outcome *eo = &res->erasures[i];
		if (strcmp(eo->status, "done") != 0 &&
		    strcmp(eo->status, "partial") != 0)
			continue;
		char id[32];
		snprintf(id, sizeof(id), "%lld", eo->id);
		const char *p[] = { id };
		PGresult *r = db_query(conn, sql, 1, p, err);
		if (!r) {
			ok = false;
			break;
		}
		if (PQntuples(r) == 1 &&
		    !ledger_find(l, eo->id, PQgetvalue(r, 0, 2))) {
			struct ledger_erasure e = {
				.request_id = eo->id,
				.subject = PQgetvalue(r, 0, 0),
				.subject_id = PQgetvalue(r, 0, 1),
				.completed_at = PQgetvalue(r, 0, 2),
			};
			char *line = ledger_format_erasure(&e);
			sb_add(lines, line);
			free(line);
		}
		PQclear(r);
	}
	free(sql);
	return ok;
}

int
restore_record_cycle(PGconn *conn, const struct config *cfg,
		     const struct run_result *res,
		     struct audit_verify_result *av)
{
	struct ledger l;
	struct strbuf lines = STRBUF_INIT;
	char *err = NULL;
	int st = -1;

	memset(av, 0, sizeof(*av));
	if (!ledger_load(cfg->state_directory, &l, &err)) {
		log_error("%s", err);
		free(err);
		err = NULL;
		memset(&l, 0, sizeof(l));
	}
	if (!completed_lines(conn, cfg, res, &l, &lines, &err)) {
		log_error("run %lld: could not read its completed erasure "
			  "requests for the ledger: %s", res->run_id, err);
		free(err);
		err = NULL;
	}

	if (l.head.id > 0) {
		st = audit_verify_from(conn, cfg->database.schema, l.head.id,
				       l.head.hash, av, &err);
		if (st == AUDIT_FROM_GONE)
			log_warning("the audit trail lacks action %lld that "
				    "the ledger recorded; checking every row",
				    l.head.id);
		else if (st >= 0)
			av->n_rows += l.head.rows;
	}
	if (l.head.id <= 0 || st == AUDIT_FROM_GONE)
		st = audit_verify(conn, cfg->database.schema, av, &err);
	if (st < 0) {
		log_error("could not check the audit trail: %s", err);
		free(err);
	} else if (st == 0 && av->last_id > 0 && av->last_id != l.head.id) {
		struct ledger_head h = { .id = av->last_id, .rows = av->n_rows };
		snprintf(h.hash, sizeof(h.hash), "%s", av->last_hash);
		char *line = ledger_format_head(&h);
		sb_add(&lines, line);
		free(line);
	}
	if (lines.s && !ledger_append(cfg->state_directory, lines.s, &err)) {
		log_error("%s", err);
		free(err);
	}
	sb_free(&lines);
	ledger_free(&l);
	return st;
}
