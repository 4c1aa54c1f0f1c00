#include "erasure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "count.h"
#include "plan.h"
#include "plan_citus.h"
#include "db.h"
#include "driver.h"
#include "erasure_graph.h"
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

/* Rule R's rows of the subject by its subject_column, compared as text. */
static bool
count_by_subject(PGconn *conn, const struct rule *r, const char *subject_id,
		 long long *n, char **err)
{
	char *t = db_qualified(conn, r->schema, r->table);
	char *c = db_ident(conn, r->subject_column);
	char *sql = t && c ? xasprintf("SELECT count(*) FROM %s t"
				       " WHERE t.%s::text = $1", t, c)
			   : NULL;
	free(t);
	free(c);
	if (!sql) {
		*err = db_error(conn, NULL);
		return false;
	}
	const char *p[] = { subject_id };
	PGresult *res = db_query(conn, sql, 1, p, err);
	free(sql);
	if (!res)
		return false;
	*n = atoll(PQgetvalue(res, 0, 0));
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

/* "keep": nothing changes; the audit trail says what stayed and why. Rows
 * are table I's of the graph by PRED, or when PRED is NULL the rule's by
 * its subject_column. */
static void
keep_rule(PGconn *conn, const struct config *cfg, const struct rule *r,
	  struct erasure_walk *w, long i, const char *pred,
	  struct erasure_outcome *eo, long long run_id, bool dry_run,
	  struct erasure_rule_result *rr)
{
	char *err = NULL;

	if (i >= 0)
		erasure_walk_hold(w, (size_t)i, r);
	if (!(pred ? erasure_walk_count(conn, w, (size_t)i, NULL,
					eo->subject_id, &rr->kept, &err)
		   : count_by_subject(conn, r, eo->subject_id, &rr->kept,
				      &err))) {
		rr->message = err;
		rr->failed = true;
		return;
	}
	if (!dry_run && rr->kept > 0) {
		char *d = detail_json(eo->id, eo->subject, eo->subject_id, r,
				      rr->kept);
		char *target = xasprintf("%s.%s", r->schema, r->table);
		if (!audit_append(conn, cfg->database.schema, run_id, r->name,
				  target, "erasure", NULL, 0, "now", "now", d, &err)) {
			rr->message = err;
			rr->failed = true;
		}
		free(target);
		free(d);
	}
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

/* One pass of rule R over the subject's rows: by the graph's predicate
 * PRED, or by its subject_column when PRED is NULL. */
static void
apply_pass(const struct driver_ctx *d, const struct rule *r,
	   struct erasure_outcome *eo, const char *pred, double deadline,
	   bool dry_run, struct erasure_rule_result *rr)
{
	struct plan rs;
	struct count_rows counts;
	char *err = NULL;
	enum rule_outcome o = OUTCOME_DONE;

	if (!(pred ? plan_compile_rows(d->conn, d->cfg, r, r->on_erasure,
				       eo->subject_id, pred, &rs, &err)
		   : plan_compile(d->conn, d->cfg, r, r->on_erasure,
				  PLAN_ERASURE, eo->subject_id, &rs, &err))) {
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
	plan_citus_pool(d->conn, &rs, 0);	/* set by driver_run */
	plan_release(&rs);
}

/* After rule R ran on table I: what of it stays, and why. A de-identified
 * row stays and keeps what it refers to; a deleted table's rows that HELD
 * selects (rows staying in a child table refer to them) are kept under
 * that child's rule; the rest that is left is blocked, and blocks its own
 * parents in turn. */
static void
account(const struct driver_ctx *d, const struct rule *r,
	struct erasure_walk *w, size_t i, const char *held,
	struct erasure_outcome *eo, bool dry_run,
	struct erasure_rule_result *rr)
{
	char *err = NULL;

	if (r->on_erasure == ACTION_DEIDENTIFY) {
		erasure_walk_hold(w, i, r);
		return;
	}
	if (dry_run && rr->blocked > 0) {
		/* the plan deletes nothing: rows only its own deletes would
		 * free are counted as going */
		long long stay = 0;
		if (!erasure_walk_staying(d->conn, w, i, r->where, held,
					  eo->subject_id, &stay, &err)) {
			rr->message = err;
			rr->failed = true;
			return;
		}
		if (stay < rr->blocked) {
			rr->rows += rr->blocked - stay;
			rr->blocked = stay;
		}
	}
	if (held) {
		const struct rule *under = NULL;
		if (!erasure_walk_kept(d->conn, w, i, r->where, eo->subject_id,
				       &rr->kept, &under, &err)) {
			free(rr->message);
			rr->message = err;
			rr->failed = true;
			return;
		}
		if (rr->kept > 0) {
			rr->kept_under = under;
			erasure_walk_hold(w, i, under);
		}
	}
	if (rr->blocked > 0)
		w->blocker[i] = true;
}

/* Rule R on its table I of the graph (-1: not in it, by subject_column). A
 * table that refers to itself loses a level of rows per pass (a row still
 * referred to waits for its children), so passes repeat, within the rule's
 * one max_runtime, while they delete and rows are left (referred to, or
 * freed by the last pass). What stays is kept when rows that stay in a
 * child table refer to it (SPEC §11), and then keeps its own parents under
 * the same rule. */
static void
apply_rule(const struct driver_ctx *d, const struct rule *r,
	   struct erasure_walk *w, long i, struct erasure_outcome *eo,
	   bool dry_run, struct erasure_rule_result *rr)
{
	char *err = NULL;

	rr->rule = r;
	rr->method = r->on_erasure;
	/* A table that only the rule's own subject_column reaches keeps the
	 * rule's condition, which compares as text (an ID that is not valid
	 * for the column's type matches nothing, fails nothing); the graph's
	 * predicate, when foreign keys reach it or the rule has another
	 * subject or none. */
	const struct sg_table *t = i >= 0 ? &w->g.tables[i] : NULL;
	bool own = r->subject && strcmp(r->subject, eo->subject) == 0;
	bool by_fk = t && t->reached_by && strstr(t->reached_by, "foreign key ");
	const char *pred = t && (!own || by_fk) ? t->predicate : NULL;
	if (r->on_erasure == ACTION_KEEP) {
		keep_rule(d->conn, d->cfg, r, w, i, pred, eo, d->run_id,
			  dry_run, rr);
		return;
	}
	/* a delete leaves alone what rows staying in a child table refer
	 * to, even where the key would cascade: those are kept */
	char *held = NULL, *rows = NULL;
	if (t && r->on_erasure == ACTION_DELETE &&
	    !erasure_walk_held(d->conn, w, (size_t)i, &held, &err)) {
		rr->message = err;
		rr->failed = true;
		return;
	}
	if (held) {
		rows = xasprintf("(%s) AND NOT (%s)", t->predicate, held);
		pred = rows;
	}
	double deadline = monotonic_ms() +
			  (double)duration_ms(&r->limits.max_runtime);
	apply_pass(d, r, eo, pred, deadline, dry_run, rr);
	for (int pass = 0; !dry_run && pass < SUBJECT_GRAPH_MAX_DEPTH &&
			   !rr->failed && rr->left == 0 &&
			   (rr->blocked > 0 || rr->message);
	     pass++) {
		struct erasure_rule_result again = { .rule = r,
						     .method = r->on_erasure };
		apply_pass(d, r, eo, pred, deadline, dry_run, &again);
		rr->rows += again.rows;
		rr->blocked = again.blocked;
		rr->left = again.left;
		rr->failed = again.failed;
		free(rr->message);
		rr->message = again.message;
		if (again.rows == 0)
			break;
	}
	if (t && !rr->failed)
		account(d, r, w, (size_t)i, held, eo, dry_run, rr);
	free(rows);
	free(held);
}

static bool
kept_any(const struct erasure_outcome *eo)
{
	for (size_t i = 0; i < eo->n_rules; i++)
		if (eo->rules[i].kept > 0)
			return true;
	return false;
}

/* SPEC §11: every part kept with its rule and policy ("kept"), the tables
 * no rule covers that block ("blocked_by"), whether staff were mailed
 * about them ("mailed", so it happens once), and what stopped the walk. */
static void
request_detail_graph(struct strbuf *b, const struct erasure_outcome *eo)
{
	sb_add(b, ", \"kept\": [");
	for (size_t i = 0, n = 0; i < eo->n_rules; i++) {
		const struct erasure_rule_result *rr = &eo->rules[i];
		const struct rule *under = rr->kept_under ? rr->kept_under
							  : rr->rule;
		if (rr->kept <= 0)
			continue;
		sb_add(b, n++ ? ", {\"table\": " : "{\"table\": ");
		char *table = xasprintf("%s.%s", rr->rule->schema,
					rr->rule->table);
		sb_json_str(b, table);
		free(table);
		sb_printf(b, ", \"rows\": %lld, \"rule\": ", rr->kept);
		sb_json_str(b, under->name);
		sb_add(b, ", \"policy\": ");
		sb_json_str(b, under->policy);
		if (rr->kept_under) {
			char *by = xasprintf("%s.%s", rr->kept_under->schema,
					     rr->kept_under->table);
			sb_add(b, ", \"referred_to_by\": ");
			sb_json_str(b, by);
			free(by);
		}
		sb_add(b, "}");
	}
	for (size_t i = 0; i < eo->n_cascaded; i++) {
		const struct erasure_block *c = &eo->cascaded[i];
		sb_add(b, (i || kept_any(eo)) ? ", {\"table\": "
					       : "{\"table\": ");
		sb_json_str(b, c->table);
		sb_printf(b, ", \"rows\": %lld, \"rule\": ", c->rows);
		sb_json_str(b, c->kept_under->name);
		sb_add(b, ", \"policy\": ");
		sb_json_str(b, c->kept_under->policy);
		sb_add(b, ", \"goes_with\": \"its parent rows, by ON DELETE "
			  "CASCADE\"}");
	}
	sb_add(b, "], \"blocked_by\": [");
	for (size_t i = 0; i < eo->n_blocks; i++) {
		sb_add(b, i ? ", {\"table\": " : "{\"table\": ");
		sb_json_str(b, eo->blocks[i].table);
		sb_printf(b, ", \"rows\": %lld, \"reason\": \"no rule covers "
			  "this table\"}", eo->blocks[i].rows);
	}
	sb_add(b, "]");
	if (eo->blocks_mailed) {
		sb_add(b, ", \"mailed\": [");
		for (size_t i = 0; i < eo->n_blocks; i++) {
			sb_add(b, i ? ", " : "");
			sb_json_str(b, eo->blocks[i].table);
		}
		sb_add(b, "]");
	}
	if (eo->error) {
		sb_add(b, ", \"error\": ");
		sb_json_str(b, eo->error);
	}
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
	sb_add(&b, "]");
	request_detail_graph(&b, eo);
	sb_printf(&b, ", \"held\": %s",
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

/* The request's new state, and the staff's mail about its blocks (once),
 * committed together: the mark that says "mailed" never outlives a mail
 * that was not queued. */
static bool
record_and_mail(PGconn *conn, const struct config *cfg,
		struct erasure_outcome *eo, char **err)
{
	const char *schema = cfg->database.schema;

	if (eo->n_blocks == 0)
		return record(conn, schema, eo, err);
	if (!db_exec(conn, "BEGIN", err))
		return false;
	if (erasure_blocks_mail(conn, cfg, eo, err) &&
	    record(conn, schema, eo, err) && db_exec(conn, "COMMIT", err))
		return true;
	char *e = NULL;
	if (!db_exec(conn, "ROLLBACK", &e))
		free(e);
	return false;
}

static bool
stopped(const struct driver_ctx *d)
{
	return d->hooks && d->hooks->should_stop &&
	       d->hooks->should_stop(d->hooks->arg);
}

/* Whether rule R takes part in erasing EO's subject, and when it does,
 * its table in W (-1: by subject_column, outside the graph). */
static bool
takes_part(const struct erasure_walk *w, const struct rule *r,
	   const struct erasure_outcome *eo, long *table)
{
	*table = erasure_walk_table(w, r);
	if (r->subject && strcmp(r->subject, eo->subject) == 0)
		return true;
	return erasure_walk_applies(w, r);
}

/* Apply the subject's rules to request EO, children first, following
 * foreign keys; true when a stop cut it short (it stays pending). */
static bool
process_one(const struct driver_ctx *d, const size_t *order, const bool *run,
	    bool dry_run, struct erasure_outcome *eo)
{
	const struct config *cfg = d->cfg;
	bool kept = false, unfinished = false, cut = false, own = false;
	const struct rule *idle = NULL;	/* a rule of the subject's that
					 * does not run now */
	struct erasure_walk w;
	char *err = NULL;

	eo->rules = xcalloc(cfg->n_rules ? cfg->n_rules : 1, sizeof(*eo->rules));
	if (!erasure_walk_init(d->conn, cfg, eo->subject, &w, &err)) {
		eo->error = xasprintf("could not follow the foreign keys of "
				      "subject \"%s\": %s", eo->subject, err);
		free(err);
		eo->failed = true;
		eo->status = "pending";
		log_error("erasure request %lld: %s", eo->id, eo->error);
		return false;
	}
	for (size_t k = 0; k < cfg->n_rules; k++) {
		size_t i = order[k];
		const struct rule *r = &cfg->rules[i];
		long table;
		if (!takes_part(&w, r, eo, &table))
			continue;
		if (r->subject && strcmp(r->subject, eo->subject) == 0)
			own = true;
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
		apply_rule(d, r, &w, table, eo, dry_run, rr);
		if (rr->left < 0)
			cut = true;
		eo->changed += rr->rows;
		if (rr->kept > 0)
			kept = true;
		if (rr->message || rr->blocked > 0 || rr->left != 0)
			unfinished = true;
		if (rr->failed) {
			eo->failed = true;
			log_error("erasure request %lld (%s:%s): rule \"%s\" "
				  "failed: %s", eo->id, eo->subject,
				  eo->subject_id, r->name, rr->message);
		}
	}
	/* a referring table no rule covers blocks what it refers to: only
	 * staff can resolve that */
	if (!cut && !erasure_walk_blocks(d->conn, &w, eo, &err)) {
		eo->error = err;
		eo->failed = true;
		log_error("erasure request %lld: %s", eo->id, eo->error);
	}
	if (eo->error || eo->n_blocks > 0)
		unfinished = true;
	if (eo->n_cascaded > 0)
		kept = true;
	for (size_t b = 0; b < eo->n_blocks && !dry_run; b++)
		log_warning("erasure request %lld is blocked: %lld rows of table "
			    "%s, which no rule covers, refer to the subject's "
			    "rows", eo->id, eo->blocks[b].rows,
			    eo->blocks[b].table);
	erasure_walk_fini(&w);
	/* Never "done" when a rule that holds the subject's rows did not run,
	 * or when no rule names the subject at all (the config changed after
	 * the request was filed): nothing was erased there. */
	if (idle)
		eo->waiting = xasprintf("rule \"%s\" has subject \"%s\" but %s in "
					"this cycle", idle->name, eo->subject,
					idle->enabled ? "did not run"
						      : "is disabled");
	else if (!own)
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
	 * and its due date in the reports; kept ones never do */
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
		if (!dry_run && !record_and_mail(conn, cfg, eo, err))
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
	for (size_t i = 0; i < e->n_blocks; i++)
		free(e->blocks[i].table);
	free(e->blocks);
	for (size_t i = 0; i < e->n_cascaded; i++)
		free(e->cascaded[i].table);
	free(e->cascaded);
	free(e->error);
	memset(e, 0, sizeof(*e));
}
