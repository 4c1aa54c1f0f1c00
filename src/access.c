/*
 * Access requests: recording them, and fulfilling the pending ones (each
 * cycle, or at once with `access --now`). The export itself is in
 * access_export.c; which rows belong to the subject, in subject_graph.c.
 */
#include "access.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "db.h"
#include "erasure.h"
#include "log.h"
#include "outbox.h"
#include "strbuf.h"

bool
access_add(PGconn *conn, const char *schema, const char *subject,
	   const char *subject_id, const char *reason, long long *id,
	   char **due_at, char **err)
{
	/* the same columns and due date as an erasure request */
	return erasure_file_request(conn, schema, "access_requests", subject,
				    subject_id, reason, id, due_at, err);
}

static void
request_free(struct access_request *rq)
{
	free(rq->subject);
	free(rq->subject_id);
	free(rq->requested_at);
	free(rq->due_at);
	memset(rq, 0, sizeof(*rq));
}

#define UTC_TEXT(col) \
	"pg_catalog.to_char(" col " AT TIME ZONE 'UTC', " \
	"'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* Load pending request ID; *found false when it is not pending. */
static bool
request_load(PGconn *conn, const char *schema, long long id,
	     struct access_request *rq, bool *found, char **err)
{
	char idtext[32];
	char *t = db_qualified(conn, schema, "access_requests");
	char *sql = xasprintf("SELECT subject, subject_id, "
			      UTC_TEXT("requested_at") ", " UTC_TEXT("due_at")
			      " FROM %s WHERE id = $1 AND status = 'pending'", t);
	snprintf(idtext, sizeof(idtext), "%lld", id);
	const char *p[] = { idtext };
	PGresult *res = db_query(conn, sql, 1, p, err);
	free(sql);
	free(t);
	if (!res)
		return false;
	*found = PQntuples(res) == 1;
	if (*found) {
		rq->id = id;
		rq->subject = xstrdup(PQgetvalue(res, 0, 0));
		rq->subject_id = xstrdup(PQgetvalue(res, 0, 1));
		rq->requested_at = xstrdup(PQgetvalue(res, 0, 2));
		rq->due_at = xstrdup(PQgetvalue(res, 0, 3));
	}
	PQclear(res);
	return true;
}

static const char *
base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* What the audit row and the request keep: file names, sizes, hashes and
 * the rows per table; never a value. */
static char *
detail_json(const struct access_request *rq, const struct subject_graph *g,
	    const struct access_export *ex)
{
	struct strbuf b = STRBUF_INIT;
	const struct access_file *f[] = { &ex->json, &ex->html };

	sb_printf(&b, "{\"request\": %lld, \"subject\": ", rq->id);
	sb_json_str(&b, rq->subject);
	sb_add(&b, ", \"generated_at\": ");
	sb_json_str(&b, ex->generated_at);
	sb_add(&b, ", \"files\": [");
	for (size_t i = 0; i < ARRAY_SIZE(f); i++) {
		sb_add(&b, i ? ", {\"name\": " : "{\"name\": ");
		sb_json_str(&b, base_name(f[i]->path));
		sb_add(&b, ", \"sha256\": ");
		sb_json_str(&b, f[i]->sha256);
		sb_printf(&b, ", \"bytes\": %lld}", f[i]->bytes);
	}
	sb_add(&b, "], \"tables\": [");
	for (size_t i = 0; i < g->n; i++) {
		char *name = xasprintf("%s.%s", g->tables[i].schema,
				       g->tables[i].table);
		sb_add(&b, i ? ", {\"table\": " : "{\"table\": ");
		sb_json_str(&b, name);
		sb_printf(&b, ", \"rows\": %lld}", ex->table_rows[i]);
		free(name);
	}
	sb_printf(&b, "], \"rows\": %lld}", ex->rows);
	return sb_take(&b);
}

/* Staff learn that an export is ready: where, how big; no values. */
static char *
ready_mail(const struct access_request *rq, const struct subject_graph *g,
	   const struct access_export *ex, char **subject)
{
	struct strbuf b = STRBUF_INIT;

	*subject = xasprintf("retentiond: access request %lld is ready", rq->id);
	sb_printf(&b, "The export for access request %lld (%s:%s, due %s) is "
		  "ready. Send both files to the person, by a channel that "
		  "proves who they are.\n\n", rq->id, rq->subject,
		  rq->subject_id, rq->due_at);
	sb_printf(&b, "  %s  (%lld bytes, sha256 %s)\n", ex->json.path,
		  ex->json.bytes, ex->json.sha256);
	sb_printf(&b, "  %s  (%lld bytes, sha256 %s)\n\n", ex->html.path,
		  ex->html.bytes, ex->html.sha256);
	sb_printf(&b, "%lld row%s from %zu table%s:\n", ex->rows,
		  ex->rows == 1 ? "" : "s", g->n, g->n == 1 ? "" : "s");
	for (size_t i = 0; i < g->n; i++)
		sb_printf(&b, "  %s.%s: %lld\n", g->tables[i].schema,
			  g->tables[i].table, ex->table_rows[i]);
	return sb_take(&b);
}

static void
rollback(PGconn *conn)
{
	char *e = NULL;
	if (PQtransactionStatus(conn) != PQTRANS_IDLE &&
	    !db_exec(conn, "ROLLBACK", &e))
		free(e);
}

/* The audit row, the request's new status and the mail, in one
 * transaction: an export is either recorded everywhere or nowhere. */
static bool
record_done(PGconn *conn, const struct config *cfg, long long run_id,
	    const struct access_request *rq, const struct subject_graph *g,
	    const struct access_export *ex, char **err)
{
	const char *schema = cfg->database.schema;
	char *detail = detail_json(rq, g, ex);
	char *target = xasprintf("access request %lld", rq->id);
	char idtext[32];
	bool ok = false;

	snprintf(idtext, sizeof(idtext), "%lld", rq->id);
	if (!db_exec(conn, "BEGIN", err))
		goto out;
	if (!audit_append(conn, schema, run_id, rq->subject, target,
			  "access_export", NULL, ex->rows, "now", "now", detail,
			  err))
		goto out;
	char *t = db_qualified(conn, schema, "access_requests");
	char *sql = xasprintf("UPDATE %s SET status = 'done', completed_at ="
			      " now(), detail = $2::jsonb WHERE id = $1", t);
	free(t);
	const char *p[] = { idtext, detail };
	PGresult *res = db_query(conn, sql, 2, p, err);
	free(sql);
	if (!res)
		goto out;
	PQclear(res);
	if (cfg->mail.configured && cfg->mail.send != MAIL_SEND_NEVER) {
		char *subject, *body = ready_mail(rq, g, ex, &subject);
		long long mid;
		bool queued = outbox_add(conn, schema, subject, body, NULL, &mid,
					 err);
		free(subject);
		free(body);
		if (!queued)
			goto out;
	}
	ok = db_exec(conn, "COMMIT", err);
out:
	if (!ok)
		rollback(conn);
	free(detail);
	free(target);
	return ok;
}

static void
record_failed(PGconn *conn, const char *schema, long long id, const char *why)
{
	char idtext[32];
	char *e = NULL;
	struct strbuf d = STRBUF_INIT;

	snprintf(idtext, sizeof(idtext), "%lld", id);
	sb_add(&d, "{\"error\": ");
	sb_json_str(&d, why);
	sb_add(&d, "}");
	char *t = db_qualified(conn, schema, "access_requests");
	char *sql = xasprintf("UPDATE %s SET status = 'failed', completed_at ="
			      " now(), detail = $2::jsonb WHERE id = $1"
			      " AND status = 'pending'", t);
	const char *p[] = { idtext, d.s };
	PGresult *res = db_query(conn, sql, 2, p, &e);
	if (res)
		PQclear(res);
	else {
		log_error("access request %lld: could not mark it failed: %s",
			  id, e);
		free(e);
	}
	free(sql);
	free(t);
	sb_free(&d);
}

enum access_status
access_fulfil(PGconn *conn, const struct config *cfg, long long run_id,
	      long long id, const struct access_hooks *hooks,
	      struct access_outcome *out)
{
	struct access_request rq = {0};
	struct subject_graph g = {0};
	struct access_export ex = {0};
	enum access_status st = ACCESS_FAILED;
	char *err = NULL;
	bool found = false;

	memset(out, 0, sizeof(*out));
	out->id = id;
	out->status = "failed";
	if (!request_load(conn, cfg->database.schema, id, &rq, &found, &err)) {
		out->message = err;
		return ACCESS_FAILED;
	}
	if (!found) {
		out->message = xasprintf("access request %lld is not pending", id);
		return ACCESS_FAILED;
	}
	out->subject = xstrdup(rq.subject);
	out->subject_id = xstrdup(rq.subject_id);
	if (!config_subject_allowed(cfg, rq.subject)) {
		err = xasprintf("subject kind \"%s\" is not in the \"subjects\" "
				"group of %s", rq.subject, cfg->path);
		goto failed;
	}
	if (!subject_graph_build(conn, cfg, rq.subject, &g, &err))
		goto failed;
	st = access_export_write(conn, cfg, &rq, &g, hooks, &ex, &err);
	if (st == ACCESS_STOPPED || st == ACCESS_TIME) {
		out->status = "pending";
		out->message = xstrdup(st == ACCESS_STOPPED
				       ? "stopped before the export was finished"
				       : "max_runtime reached before the export "
					 "was finished; next cycle");
		goto out;
	}
	if (st != ACCESS_OK)
		goto failed;
	if (!record_done(conn, cfg, run_id, &rq, &g, &ex, &err)) {
		/* the files stay; the request stays pending and is written
		 * again next time */
		out->status = "pending";
		out->message = xasprintf("could not record the export: %s", err);
		free(err);
		st = ACCESS_FAILED;
		goto out;
	}
	out->status = "done";
	out->rows = ex.rows;
	out->n_tables = g.n;
	out->json_path = xstrdup(ex.json.path);
	out->html_path = xstrdup(ex.html.path);
	log_info("access request %lld (%s): %lld row%s from %zu table%s in "
		 "%s and %s", id, rq.subject, ex.rows, ex.rows == 1 ? "" : "s",
		 g.n, g.n == 1 ? "" : "s", ex.json.path, ex.html.path);
	goto out;

failed:
	st = ACCESS_FAILED;
	log_error("access request %lld (%s): %s", id, rq.subject, err);
	record_failed(conn, cfg->database.schema, id, err);
	out->message = err;
out:
	access_export_free(&ex);
	subject_graph_free(&g);
	request_free(&rq);
	return st;
}

bool
access_process(PGconn *conn, const struct config *cfg, long long run_id,
	       double deadline_ms, bool (*should_stop)(void *), void *arg,
	       struct run_result *out, char **err)
{
	struct access_hooks hooks = { should_stop, arg, deadline_ms };
	char *t = db_qualified(conn, cfg->database.schema, "access_requests");
	char *sql = xasprintf("SELECT id FROM %s WHERE status = 'pending'"
			      " ORDER BY due_at, id", t);
	PGresult *res = db_query(conn, sql, 0, NULL, err);
	free(sql);
	free(t);
	if (!res)
		return false;
	int n = PQntuples(res);
	out->accesses = xcalloc(n ? (size_t)n : 1, sizeof(*out->accesses));
	for (int i = 0; i < n; i++) {
		if (should_stop && should_stop(arg))
			break;
		if (deadline_ms > 0 && monotonic_ms() >= deadline_ms)
			break;
		long long id = atoll(PQgetvalue(res, i, 0));
		struct access_outcome *o = &out->accesses[out->n_accesses++];
		enum access_status st = access_fulfil(conn, cfg, run_id, id,
						      &hooks, o);
		if (st == ACCESS_STOPPED || st == ACCESS_TIME)
			break;
	}
	PQclear(res);
	return true;
}

void
access_outcome_free(struct access_outcome *o)
{
	free(o->subject);
	free(o->subject_id);
	free(o->json_path);
	free(o->html_path);
	free(o->message);
	memset(o, 0, sizeof(*o));
}
