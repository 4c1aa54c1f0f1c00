#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "file.h"
#include "log.h"
#include "report.h"

void
metrics_escape_label(struct strbuf *b, const char *value)
{
	const char *p = value ? value : "";
	const char *run = p;

	for (; *p; p++) {
		const char *esc = NULL;
		if (*p == '\\')
			esc = "\\\\";
		else if (*p == '"')
			esc = "\\\"";
		else if (*p == '\n')
			esc = "\\n";
		if (!esc)
			continue;
		sb_addn(b, run, (size_t)(p - run));
		sb_add(b, esc);
		run = p + 1;
	}
	sb_addn(b, run, (size_t)(p - run));
}

static void
head(struct strbuf *b, const char *name, const char *type, const char *help)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
label(struct strbuf *b, const char *name, const char *value, bool first)
{
	sb_printf(b, "%s%s=\"", first ? "{" : ",", name);
	metrics_escape_label(b, value);
	sb_add(b, "\"");
}

/* What the alert rules in doc/prometheus need beyond the above. */
static void
render_alerting(struct strbuf *b, const struct run_result *res,
		const struct metrics_db *db)
{
	if (db->interval_s > 0) {
		head(b, "retentiond_schedule_interval_seconds", "gauge",
		     "The configured schedule.interval: a cycle is expected "
		     "this often.");
		sb_printf(b, "retentiond_schedule_interval_seconds %.3f\n",
			  db->interval_s);
	}
	head(b, "retentiond_rule_compliant", "gauge",
	     "1 when nothing of the rule is overdue after the last cycle and "
	     "it did not fail, else 0, per rule.");
	for (size_t i = 0; i < res->n_rules; i++) {
		const struct rule_result *rr = &res->rules[i];
		if (!rr->rule)
			continue;
		sb_add(b, "retentiond_rule_compliant");
		label(b, "rule", rr->rule->name, true);
		sb_printf(b, "} %d\n", rule_result_compliant(rr) ? 1 : 0);
	}
	head(b, "retentiond_erasure_requests_due_soon", "gauge",
	     "Open right-to-erasure requests due within 7 days (a subset of "
	     "state=\"pending\").");
	sb_printf(b, "retentiond_erasure_requests_due_soon %lld\n",
		  db->erasure_due_soon);
	if (db->audit != METRICS_AUDIT_UNKNOWN) {
		head(b, "retentiond_audit_chain_ok", "gauge",
		     "1 when the audit trail's hash chain is intact as the "
		     "cycle checked it (what was appended since the ledger's "
		     "head; `retentiond verify` checks every row), 0 when it "
		     "is broken.");
		sb_printf(b, "retentiond_audit_chain_ok %d\n",
			  db->audit == METRICS_AUDIT_INTACT ? 1 : 0);
	}
	head(b, "retentiond_outbox_unsent", "gauge",
	     "Mails in the outbox not yet delivered.");
	sb_printf(b, "retentiond_outbox_unsent %lld\n", db->outbox_unsent);
	head(b, "retentiond_outbox_oldest_unsent_age_seconds", "gauge",
	     "Age of the oldest undelivered mail in the outbox; 0 when none.");
	sb_printf(b, "retentiond_outbox_oldest_unsent_age_seconds %.3f\n",
		  db->outbox_oldest_s);
}

void
metrics_render(struct strbuf *b, const struct run_result *res,
	       const struct metrics_db *db, double now)
{
	size_t failing = 0;

	for (size_t i = 0; i < res->n_rules; i++)
		if (rule_outcome_is_failure(res->rules[i].outcome))
			failing++;

	head(b, "retentiond_last_cycle_timestamp_seconds", "gauge",
	     "When the last cycle ended (Unix time).");
	sb_printf(b, "retentiond_last_cycle_timestamp_seconds %.3f\n", now);
	head(b, "retentiond_last_cycle_success", "gauge",
	     "1 when the last cycle ended with status ok, else 0.");
	sb_printf(b, "retentiond_last_cycle_success %d\n",
		  res->status == RUN_OK ? 1 : 0);
	head(b, "retentiond_last_success_timestamp_seconds", "gauge",
	     "When the last cycle with status ok ended, from the runs table "
	     "(Unix time; 0: never).");
	sb_printf(b, "retentiond_last_success_timestamp_seconds %.3f\n",
		  db->last_success);
	head(b, "retentiond_cycle_duration_seconds", "gauge",
	     "How long the last cycle took.");
	sb_printf(b, "retentiond_cycle_duration_seconds %.3f\n", res->seconds);
	head(b, "retentiond_rules_failing", "gauge",
	     "Rules that failed or were refused by a safety guard in the last "
	     "cycle.");
	sb_printf(b, "retentiond_rules_failing %zu\n", failing);

	head(b, "retentiond_rows_changed", "gauge",
	     "Rows the last cycle deleted or de-identified, per rule.");
	for (size_t i = 0; i < res->n_rules; i++) {
		const struct rule_result *rr = &res->rules[i];
		if (!rr->rule)
			continue;
		sb_add(b, "retentiond_rows_changed");
		label(b, "rule", rr->rule->name, true);
		label(b, "action", rule_action_name(rr->rule->action), false);
		sb_printf(b, "} %lld\n", rr->changed);
	}
	head(b, "retentiond_rows_overdue", "gauge",
	     "Rows older than retain plus one schedule interval after the last "
	     "cycle, per rule (held rows included).");
	for (size_t i = 0; i < res->n_rules; i++) {
		const struct rule_result *rr = &res->rules[i];
		if (!rr->rule || rr->overdue < 0)
			continue;	/* not counted: no number beats a wrong one */
		sb_add(b, "retentiond_rows_overdue");
		label(b, "rule", rr->rule->name, true);
		sb_printf(b, "} %lld\n", rr->overdue);
	}

	head(b, "retentiond_rows_changed_total", "counter",
	     "Rows changed per rule and action over the whole audit trail "
	     "(the actions table).");
	for (size_t i = 0; i < db->n_totals; i++) {
		sb_add(b, "retentiond_rows_changed_total");
		label(b, "rule", db->totals[i].rule, true);
		label(b, "action", db->totals[i].action, false);
		sb_printf(b, "} %lld\n", db->totals[i].rows);
	}
	head(b, "retentiond_erasure_requests", "gauge",
	     "Open right-to-erasure requests: pending (not yet due) or "
	     "overdue (past due_at).");
	sb_printf(b, "retentiond_erasure_requests{state=\"pending\"} %lld\n",
		  db->erasure_pending);
	sb_printf(b, "retentiond_erasure_requests{state=\"overdue\"} %lld\n",
		  db->erasure_overdue);
	head(b, "retentiond_access_requests", "gauge",
	     "Open right-of-access requests: pending (not yet due) or "
	     "overdue (past due_at).");
	sb_printf(b, "retentiond_access_requests{state=\"pending\"} %lld\n",
		  db->access_pending);
	sb_printf(b, "retentiond_access_requests{state=\"overdue\"} %lld\n",
		  db->access_overdue);
	head(b, "retentiond_access_requests_due_soon", "gauge",
	     "Open right-of-access requests due within 7 days (a subset of "
	     "state=\"pending\").");
	sb_printf(b, "retentiond_access_requests_due_soon %lld\n",
		  db->access_due_soon);
	head(b, "retentiond_legal_holds_active", "gauge",
	     "Legal holds neither released nor expired.");
	sb_printf(b, "retentiond_legal_holds_active %lld\n", db->holds_active);
	if (db->has_coverage) {
		head(b, "retentiond_uncovered_columns", "gauge",
		     "Personal-data columns that no rule covers (retentiond "
		     "coverage), at the last cycle.");
		sb_printf(b, "retentiond_uncovered_columns %lld\n",
			  db->uncovered_columns);
	}
	render_alerting(b, res, db);
}

void
metrics_db_free(struct metrics_db *db)
{
	for (size_t i = 0; i < db->n_totals; i++) {
		free(db->totals[i].rule);
		free(db->totals[i].action);
	}
	free(db->totals);
	memset(db, 0, sizeof(*db));
}

/* SELECT_LIST FROM schema.TABLE REST: the table name is quoted here, the
 * rest is constant text. */
static PGresult *
query(PGconn *conn, const char *schema, const char *select_list,
      const char *table, const char *rest, char **err)
{
	char *t = db_qualified(conn, schema, table);
	if (!t) {
		*err = xstrdup("could not quote the schema name");
		return NULL;
	}
	char *sql = xasprintf("SELECT %s FROM %s %s", select_list, t, rest);
	PGresult *res = db_query(conn, sql, 0, NULL, err);
	free(sql);
	free(t);
	return res;
}

bool
metrics_collect(PGconn *conn, const char *schema, struct metrics_db *db,
		char **err)
{
	PGresult *res;

	memset(db, 0, sizeof(*db));
	res = query(conn, schema,
		"coalesce(extract(epoch FROM max(finished_at)), 0)::float8",
		"runs", "WHERE status = 'ok'"
		" AND command NOT IN ('plan', 'access')", err);
	if (!res)
		return false;
	db->last_success = atof(PQgetvalue(res, 0, 0));
	PQclear(res);

	res = query(conn, schema,
		"count(*) FILTER (WHERE due_at >= now()),"
		" count(*) FILTER (WHERE due_at < now())",
		"erasure_requests", "WHERE status <> 'done'", err);
	if (!res)
		return false;
	db->erasure_pending = atoll(PQgetvalue(res, 0, 0));
	db->erasure_overdue = atoll(PQgetvalue(res, 0, 1));
	PQclear(res);

	res = query(conn, schema,
		"count(*) FILTER (WHERE due_at >= now()),"
		" count(*) FILTER (WHERE due_at < now()),"
		" count(*) FILTER (WHERE due_at >= now()"
		"   AND due_at < now() + interval '7 days')",
		"access_requests", "WHERE status <> 'done'", err);
	if (!res)
		return false;
	db->access_pending = atoll(PQgetvalue(res, 0, 0));
	db->access_overdue = atoll(PQgetvalue(res, 0, 1));
	db->access_due_soon = atoll(PQgetvalue(res, 0, 2));
	PQclear(res);

	res = query(conn, schema, "count(*)", "legal_holds",
		"WHERE released_at IS NULL"
		" AND (expires_at IS NULL OR expires_at > now())", err);
	if (!res)
		return false;
	db->holds_active = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);

	res = query(conn, schema, "rule, action, sum(rows)::bigint", "actions",
		/* an export reads rows, it changes none */
		"WHERE action <> 'access_export'"
		" GROUP BY rule, action ORDER BY rule, action", err);
	if (!res)
		return false;
	int n = PQntuples(res);
	db->totals = xcalloc(n > 0 ? (size_t)n : 1, sizeof(*db->totals));
	for (int i = 0; i < n; i++) {
		db->totals[i].rule = xstrdup(PQgetvalue(res, i, 0));
		db->totals[i].action = xstrdup(PQgetvalue(res, i, 1));
		db->totals[i].rows = atoll(PQgetvalue(res, i, 2));
	}
	db->n_totals = (size_t)n;
	PQclear(res);

	/* the same window as the report's "due soon" */
	char *due = xasprintf("count(*) FILTER (WHERE due_at >= now()"
			      " AND due_at < now() + interval '%d days')",
			      REPORT_DUE_SOON_DAYS);
	res = query(conn, schema, due, "erasure_requests",
		    "WHERE " REPORT_ERASURE_OPEN, err);
	free(due);
	if (!res)
		return false;
	db->erasure_due_soon = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);

	res = query(conn, schema, "count(*), coalesce(extract(epoch FROM"
		    " now() - min(created_at)), 0)::float8", "outbox",
		    "WHERE sent_at IS NULL", err);
	if (!res)
		return false;
	db->outbox_unsent = atoll(PQgetvalue(res, 0, 0));
	db->outbox_oldest_s = atof(PQgetvalue(res, 0, 1));
	PQclear(res);

	return true;
}

bool
metrics_write_file(const char *path, const char *text, char **err)
{
	/* 0644: the collector runs as another user */
	return file_replace(path, text, strlen(text), 0644, err);
}

bool
metrics_write(PGconn *conn, const struct config *cfg,
	      const struct run_result *res, const struct coverage_cycle *cov,
	      int audit)
{
	struct metrics_db db;
	struct strbuf b = STRBUF_INIT;
	char *err = NULL;
	struct timespec now;

	if (!cfg->metrics_file)
		return true;
	if (!conn || PQstatus(conn) != CONNECTION_OK ||
	    !metrics_collect(conn, cfg->database.schema, &db, &err)) {
		log_warning("metrics file %s not updated: %s", cfg->metrics_file,
			    err ? err : "the database connection is gone");
		free(err);
		return false;
	}
	if (cov && cov->ran) {
		db.has_coverage = true;
		db.uncovered_columns = cov->result.uncovered_columns;
	}
	db.interval_s = (double)duration_ms(&cfg->schedule.interval) / 1000.0;
	/* a chain that could not be checked is left out, not called broken */
	db.audit = audit == 0 ? METRICS_AUDIT_INTACT
		 : audit == 1 ? METRICS_AUDIT_BROKEN : METRICS_AUDIT_UNKNOWN;
	clock_gettime(CLOCK_REALTIME, &now);
	metrics_render(&b, res, &db,
		       (double)now.tv_sec + (double)now.tv_nsec / 1e9);
	metrics_db_free(&db);
	bool ok = metrics_write_file(cfg->metrics_file, b.s ? b.s : "", &err);
	if (!ok) {
		log_warning("metrics file not updated: %s", err);
		free(err);
	}
	sb_free(&b);
	return ok;
}
