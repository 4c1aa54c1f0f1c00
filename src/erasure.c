#include "erasure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "count.h"
#include "plan.h"
#include "db.h"
#include "driver.h"
#include "hold.h"
#include "log.h"
#include "strbuf.h"

bool
erasure_add(PGconn *conn, const char *schema, const char *subject,
	    const char *subject_id, const char *reason, long long *id,
	    char **due_at, char **err)
{
	return erasure_file_request(conn, schema, "erasure_requests", subject,
				    subject_id, reason, id, due_at, err);
}

bool
erasure_file_request(PGconn *conn, const char *schema, const char *table,
		     const char *subject, const char *subject_id,
		     const char *reason, long long *id, char **due_at,
		     char **err)
{
	char *t = db_qualified(conn, schema, table);
	char *sql = xasprintf("INSERT INTO %s (subject, subject_id, reason)"
			      " VALUES ($1, $2, $3) RETURNING id, due_at::text", t);
	const char *p[] = { subject, subject_id, reason };
	PGresult *res = db_query(conn, sql, 3, p, err);
	free(sql);
	free(t);
	if (!res)
		return false;
	*id = atoll(PQgetvalue(res, 0, 0));
	*due_at = xstrdup(PQgetvalue(res, 0, 1));
	PQclear(res);
	return true;
}

static bool
subject_held(PGconn *conn, const char *schema, const char *subject,
	     const char *subject_id, bool *held, char **err)
{
	char *frag = hold_sql_not_held(conn, schema, "$1", "$2::text", err);
	if (!frag)
		return false;
	char *sql = xasprintf("SELECT NOT (%s)", frag);
	const char *p[] = { subject, subject_id };
	PGresult *res = db_query(conn, sql, 2, p, err);
	free(sql);
	free(frag);
	if (!res)
		return false;
	*held = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return true;
}

static char *
detail_json(long long id, const char *subject, const char *subject_id,
	    const struct rule *r, long long kept)
{
	struct strbuf b = STRBUF_INIT;
	char *ref = xasprintf("%s:%s", subject, subject_id);
	sb_printf(&b, "{\"request\": %lld, \"subject\": ", id);
	sb_json_str(&b, ref);
	sb_add(&b, ", \"on_erasure\": ");
	sb_json_str(&b, rule_action_name(r->on_erasure));
	if (r->on_erasure == ACTION_KEEP) {
		sb_printf(&b, ", \"kept\": %lld, \"policy\": ", kept);
		sb_json_str(&b, r->policy);
	}
	sb_add(&b, "}");
	free(ref);
	return sb_take(&b);
}

/* "keep": nothing changes; the audit trail says what stayed and why. */
static void
keep_rule(PGconn *conn, const struct config *cfg, const struct rule *r,
	  struct erasure_outcome *eo, long long run_id, bool dry_run,
	  struct erasure_rule_result *rr)
{
	char *err = NULL;
	char *t = db_qualified(conn, r->schema, r->table);
	char *c = db_ident(conn, r->subject_column);
	char *sql = xasprintf("SELECT count(*) FROM %s t WHERE t.%s::text = $1",
			      t, c);
	const char *p[] = { eo->subject_id };
	PGresult *res = db_query(conn, sql, 1, p, &err);
	free(sql);
	free(c);
	if (!res) {
		rr->message = err;
		free(t);
		return;
	}
	rr->kept = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (!dry_run && rr->kept > 0) {
		char *d = detail_json(eo->id, eo->subject, eo->subject_id, r,
				      rr->kept);
		char *target = xasprintf("%s.%s", r->schema, r->table);
		if (!audit_append(conn, cfg->database.schema, run_id, r->name,
				  target, "erasure", NULL, 0, "now", "now", d, &err))
			rr->message = err;
		free(target);
		free(d);
	}
	free(t);
}

/* What is left after the driver stopped early (time, a stop): counted
 * unless a stop is on, since a stop may cancel whatever runs. */
static void
note_left(const struct driver_ctx *d, struct plan *rs,
	  enum rule_outcome o, struct erasure_rule_result *rr)
{
	struct count_rows counts;
	char *err = NULL;

	if (o == OUTCOME_STOPPED) {
		rr->left = -1;
		rr->message = xstrdup("stopped; the rest is left for the next "
				      "cycle");
		return;
	}
	if (!count_rule(d->conn, rs, NULL, &counts, &err)) {
		rr->message = err;
		rr->failed = true;
		return;
	}
	rr->left = counts.eligible;
	rr->blocked = counts.blocked;
	rr->message = xasprintf("max_runtime reached; %lld rows left for the "
				"next cycle", counts.eligible);
}

static void
apply_rule(const struct driver_ctx *d, const struct rule *r,
	   struct erasure_outcome *eo, bool dry_run,
	   struct erasure_rule_result *rr)
{
	struct plan rs;
	struct count_rows counts;
	char *err = NULL;
	enum rule_outcome o = OUTCOME_DONE;
	double deadline = monotonic_ms() +
			  (double)duration_ms(&r->limits.max_runtime);

	rr->rule = r;
	rr->method = r->on_erasure;
	if (r->on_erasure == ACTION_KEEP) {
		keep_rule(d->conn, d->cfg, r, eo, d->run_id, dry_run, rr);
		return;
	}
	if (!plan_compile(d->conn, d->cfg, r, r->on_erasure, PLAN_ERASURE,
			   eo->subject_id, &rs, &err)) {
		rr->message = err;
		rr->failed = true;
		return;
	}
	char *detail = detail_json(eo->id, eo->subject, eo->subject_id, r, 0);
	for (size_t ti = 0; ti < rs.n_targets && !dry_run && o == OUTCOME_DONE;
	     ti++) {
		struct driver_totals tot = { 0 };
		o = driver_run(d, &rs, ti, NULL, detail, deadline, &tot,
			       &rr->message);
		rr->rows += tot.changed;
	}
	if (o == OUTCOME_FAILED) {
		rr->failed = true;
	} else if (o == OUTCOME_TIME || o == OUTCOME_STOPPED) {
		note_left(d, &rs, o, rr);
	} else if (o == OUTCOME_DONE &&
		   count_rule(d->conn, &rs, NULL, &counts, &err)) {
		/* what is left: in a plan, everything due; after a run, rows
		 * that a reference or a lock kept */
		if (dry_run)
			rr->rows = counts.eligible;
		rr->blocked = counts.blocked;
		if (!dry_run && counts.eligible > 0)
			rr->message = xasprintf("%lld rows could not be changed "
						"now (locked by another session)",
						counts.eligible);
	} else if (o == OUTCOME_DONE) {
		rr->message = err;
		rr->failed = true;
	}
	free(detail);
	plan_release(&rs);
}

static char *
request_detail(const struct erasure_outcome *eo)
{
	struct strbuf b = STRBUF_INIT;
	sb_add(&b, "{\"rules\": [");
	for (size_t i = 0; i < eo->n_rules; i++) {
		const struct erasure_rule_result *rr = &eo->rules[i];
		char table[512];
		snprintf(table, sizeof(table), "%s.%s", rr->rule->schema,
			 rr->rule->table);
		sb_add(&b, i ? ", {\"rule\": " : "{\"rule\": ");
		sb_json_str(&b, rr->rule->name);
		sb_add(&b, ", \"table\": ");
		sb_json_str(&b, table);
		sb_add(&b, ", \"on_erasure\": ");
		sb_json_str(&b, rule_action_name(rr->method));
		sb_printf(&b, ", \"rows\": %lld, \"kept\": %lld, \"blocked\": %lld",
			  rr->rows, rr->kept, rr->blocked);
		/* cut short by max_runtime (a count) or a stop (unknown) */
		if (rr->left > 0)
			sb_printf(&b, ", \"left\": %lld", rr->left);
		else if (rr->left < 0)
			sb_add(&b, ", \"left\": null");
		if (rr->method == ACTION_KEEP) {
			sb_add(&b, ", \"policy\": ");
			sb_json_str(&b, rr->rule->policy);
		}
		sb_add(&b, ", \"error\": ");
		sb_json_str(&b, rr->message);
		sb_add(&b, "}");
	}
	sb_printf(&b, "], \"held\": %s",
		  strcmp(eo->status, "held") == 0 ? "true" : "false");
	if (eo->waiting) {
		sb_add(&b, ", \"waiting\": ");
		sb_json_str(&b, eo->waiting);
	}
	sb_add(&b, "}");
	return sb_take(&b);
}

static bool
record(PGconn *conn, const char *schema, const struct erasure_outcome *eo,
       char **err)
{
	char id[32];
	snprintf(id, sizeof(id), "%lld", eo->id);
	char *detail = request_detail(eo);
	char *t = db_qualified(conn, schema, "erasure_requests");
	char *sql = xasprintf(
		"UPDATE %s SET status = $2, detail = $3::jsonb,"
		" completed_at = CASE WHEN $2 IN ('done', 'partial') THEN now() END"
		" WHERE id = $1", t);
	const char *p[] = { id, eo->status, detail };
	PGresult *res = db_query(conn, sql, 3, p, err);
	free(sql);
	free(t);
	free(detail);
	if (!res)
		return false;
	PQclear(res);
	return true;
}

static bool
stopped(const struct driver_ctx *d)
{
	return d->hooks && d->hooks->should_stop &&
	       d->hooks->should_stop(d->hooks->arg);
}

/* Apply the subject's rules to request EO; true when a stop cut it short
 * (it stays pending). */
static bool
process_one(const struct driver_ctx *d, const size_t *order, const bool *run,
	    bool dry_run, struct erasure_outcome *eo)
{
	const struct config *cfg = d->cfg;
	bool kept = false, unfinished = false, cut = false;
	const struct rule *idle = NULL;	/* a rule of the subject's that
					 * does not run now */

	eo->rules = xcalloc(cfg->n_rules ? cfg->n_rules : 1, sizeof(*eo->rules));
	for (size_t k = 0; k < cfg->n_rules; k++) {
		size_t i = order[k];
		const struct rule *r = &cfg->rules[i];
		if (!r->subject || strcmp(r->subject, eo->subject) != 0)
			continue;
		if (!run[i]) {
			/* its rows of the subject stay: the request is
			 * not done until that rule has run */
			if (!idle)
				idle = r;
			continue;
		}
		if (stopped(d)) {
			cut = unfinished = true;
			break;
		}
		struct erasure_rule_result *rr = &eo->rules[eo->n_rules++];
		apply_rule(d, r, eo, dry_run, rr);
		if (rr->left < 0)
			cut = true;
		eo->changed += rr->rows;
		if (rr->kept > 0)
			kept = true;
		if (rr->message || rr->blocked > 0)
			unfinished = true;
		if (rr->failed) {
			eo->failed = true;
			log_error("erasure request %lld (%s:%s): rule \"%s\" "
				  "failed: %s", eo->id, eo->subject,
				  eo->subject_id, r->name, rr->message);
		}
	}
	/* Never "done" when a rule that holds the subject's rows did not run,
	 * or when no rule names the subject at all (the config changed after
	 * the request was filed): nothing was erased there. */
	if (idle)
		eo->waiting = xasprintf("rule \"%s\" has subject \"%s\" but %s in "
					"this cycle", idle->name, eo->subject,
					idle->enabled ? "did not run"
						      : "is disabled");
	else if (eo->n_rules == 0)
		eo->waiting = xasprintf("no rule in %s has subject \"%s\"; "
					"nothing was erased", cfg->path,
					eo->subject);
	if (eo->waiting) {
		unfinished = true;
		if (!dry_run)
			log_warning("erasure request %lld stays pending: %s",
				    eo->id, eo->waiting);
	}
	/* blocked or failed rows keep the request open for the next cycle,
	 * and its due date in the reports */
	eo->status = unfinished ? "pending" : kept ? "partial" : "done";
	return cut;
}

bool
erasure_process(const struct driver_ctx *d, const size_t *order,
		const bool *run, bool dry_run, struct run_result *out,
		char **err)
{
	PGconn *conn = d->conn;
	const struct config *cfg = d->cfg;
	const char *schema = cfg->database.schema;
	char *t = db_qualified(conn, schema, "erasure_requests");
	char *sql = xasprintf("SELECT id, subject, subject_id, due_at::text"
			      " FROM %s WHERE status IN ('pending', 'held')"
			      " ORDER BY id", t);
	PGresult *res = db_query(conn, sql, 0, NULL, err);
	free(sql);
	free(t);
	if (!res)
		return false;

	bool ok = true;
	int n = PQntuples(res);
	out->erasures = xcalloc((size_t)n, sizeof(*out->erasures));
	for (int i = 0; i < n && ok; i++) {
		if (stopped(d))
			break;
		struct erasure_outcome *eo = &out->erasures[out->n_erasures++];
		eo->id = atoll(PQgetvalue(res, i, 0));
		eo->subject = xstrdup(PQgetvalue(res, i, 1));
		eo->subject_id = xstrdup(PQgetvalue(res, i, 2));
		eo->due_at = xstrdup(PQgetvalue(res, i, 3));

		bool held = false;
		if (!subject_held(conn, schema, eo->subject, eo->subject_id,
				  &held, err)) {
			ok = false;
			break;
		}
		if (held)
			eo->status = "held";
		else if (process_one(d, order, run, dry_run, eo))
			out->interrupted = true;
		out->changed += eo->changed;
		if (!dry_run && !record(conn, schema, eo, err))
			ok = false;
		else if (!dry_run)
			log_info("erasure request %lld (%s:%s): %s, %lld rows changed",
				 eo->id, eo->subject, eo->subject_id, eo->status,
				 eo->changed);
	}
	PQclear(res);
	return ok;
}

void
erasure_outcome_free(struct erasure_outcome *e)
{
	for (size_t i = 0; i < e->n_rules; i++)
		free(e->rules[i].message);
	free(e->rules);
	free(e->subject);
	free(e->subject_id);
	free(e->due_at);
	free(e->waiting);
	memset(e, 0, sizeof(*e));
}
