#include "engine.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "access.h"
#include "ahead.h"
#include "count.h"
#include "plan.h"
#include "plan_citus.h"
#include "db.h"
#include "driver.h"
#include "erasure.h"
#include "restore.h"
#include "log.h"
#include "order.h"
#include "partition.h"
#include "schema.h"
#include "replica.h"
#include "strbuf.h"
#include "summary.h"

struct cycle {
	PGconn *conn;
	const struct config *cfg;
	const struct engine_options *opt;
	const struct engine_hooks *hooks;
	long long run_id;
	double deadline_ms;	/* monotonic; the cycle's max_runtime */
	struct replica_waiting lag;	/* max_replica_lag: the wait now */
	struct ahead ahead;	/* range batches' bounds, read ahead */
};

const char *
rule_outcome_name(enum rule_outcome o)
{
	switch (o) {
	case OUTCOME_DONE:
		return "done";
	case OUTCOME_NOTHING:
		return "nothing due";
	case OUTCOME_TIME:
		return "max_runtime reached";
	case OUTCOME_STOPPED:
		return "stopped";
	case OUTCOME_LOCKED:
		return "lock timeout";
	case OUTCOME_REFUSED:
		return "refused";
	case OUTCOME_FAILED:
		return "failed";
	case OUTCOME_PLANNED:
		return "planned";
	case OUTCOME_SKIPPED:
		return "skipped";
	}
	return "?";
}

bool
rule_outcome_is_failure(enum rule_outcome o)
{
	return o == OUTCOME_REFUSED || o == OUTCOME_FAILED;
}

bool
rule_result_compliant(const struct rule_result *rr)
{
	return rr->overdue == 0 && rr->outcome != OUTCOME_FAILED;
}

static bool
stop_requested(const struct cycle *c)
{
	return c->hooks && c->hooks->should_stop &&
	       c->hooks->should_stop(c->hooks->arg);
}

static void
status(const struct cycle *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
status(const struct cycle *c, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	if (!c->hooks || !c->hooks->status)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->hooks->status(c->hooks->arg, line);
}

static bool
rule_selected(const struct engine_options *opt, const struct rule *r)
{
	if (opt->n_only == 0)
		return r->enabled;
	for (size_t i = 0; i < opt->n_only; i++)
		if (strcmp(opt->only[i], r->name) == 0)
			return true;
	return false;
}

/* now() - retain [- one schedule interval, for the compliance verdict];
 * *EPOCH (unless NULL) the same in seconds since 1970. */
static char *
query_cutoff(struct cycle *c, const struct rule *r, bool grace,
	     double *epoch, char **err)
{
	char interval[DURATION_TEXT_MAX], extra[DURATION_TEXT_MAX];
	duration_to_interval(&r->retain, interval, sizeof(interval));
	if (grace)
		duration_to_interval(&c->cfg->schedule.interval, extra,
				     sizeof(extra));
	else
		snprintf(extra, sizeof(extra), "0 seconds");
	const char *p[] = { interval, extra };
	PGresult *res = db_query(c->conn,
		"SELECT x::text, extract(epoch FROM x)::text"
		" FROM (SELECT now() - $1::interval - $2::interval AS x) s",
		2, p, err);
	if (!res)
		return NULL;
	char *cut = xstrdup(PQgetvalue(res, 0, 0));
	if (epoch)
		*epoch = strtod(PQgetvalue(res, 0, 1), NULL);
	PQclear(res);
	return cut;
}

static bool
guards_pass(struct cycle *c, const struct rule *r, struct rule_result *rr)
{
	if (c->opt->force)
		return true;
	if (!duration_is_calendar(&r->retain) &&
	    duration_ms(&r->retain) < ENGINE_MIN_RETAIN_MS) {
		char interval[DURATION_TEXT_MAX];
		duration_to_interval(&r->retain, interval, sizeof(interval));
		rr->message = xasprintf("retain is %s, under one hour; pass "
					"--force if that is intended", interval);
		return false;
	}
	double limit = r->limits.max_fraction * (double)rr->table_rows;
	if (rr->eligible > 0 && (double)rr->eligible > limit) {
		rr->message = xasprintf(
			"would %s %lld of %lld rows (%.1f%%), more than "
			"max_fraction %.2f allows; pass --force if that is intended",
			r->action == ACTION_DELETE ? "delete" : "de-identify",
			rr->eligible, rr->table_rows,
			rr->table_rows ? 100.0 * (double)rr->eligible /
						 (double)rr->table_rows
				       : 100.0,
			r->limits.max_fraction);
		return false;
	}
	return true;
}

static bool
hook_stop(void *arg)
{
	return stop_requested(arg);
}

/* Before each batch: wait while a standby replays further behind than
 * the rule's max_replica_lag (replica.h). */
static double
hook_before(void *arg, const struct plan *rs, size_t target, char **err)
{
	struct cycle *c = arg;
	(void)target;
	return replica_before_batch(c->conn, rs->rule, c->hooks, &c->lag, err);
}

/* Seconds waited for standbys since LAG was zeroed, the wait going on
 * now included. */
static double
lag_waited(const struct replica_waiting *lag)
{
	return lag->waited_s +
	       (lag->active ? (monotonic_ms() - lag->since_ms) / 1000.0 : 0);
}

static void
hook_progress(void *arg, const struct rule *r, long long changed)
{
	status(arg, "rule %s: %lld %s", r->name, changed,
	       r->action == ACTION_DELETE ? "deleted" : "de-identified");
}

/* Work through one target with the driver. */
static enum rule_outcome
work_target(struct cycle *c, struct plan *rs, size_t ti,
	    struct rule_result *rr, double rule_deadline)
{
	struct driver_hooks hooks = { .should_stop = hook_stop,
				      .progress = hook_progress,
				      .before_batch = hook_before, .arg = c };
	struct driver_ctx d = { .conn = c->conn, .ahead = &c->ahead,
				.cfg = c->cfg, .run_id = c->run_id,
				.deadline_ms = c->deadline_ms, .hooks = &hooks };
	struct driver_totals tot = { .longest_batch_ms = rr->longest_batch_ms };
	char *detail = rs->cascades
		? xasprintf("{\"cascade\": %s}", rs->cascades) : NULL;
	memset(&c->lag, 0, sizeof(c->lag));
	enum rule_outcome o = driver_run(&d, rs, ti, rr->cutoff, detail,
					 rule_deadline, &tot, &rr->message);
	rr->lag_wait_seconds += lag_waited(&c->lag);
	if (o == OUTCOME_TIME && c->lag.active && !rr->message)
		rr->message = xasprintf("max_runtime reached while waiting for "
					"standby %s, %.1f s behind "
					"(max_replica_lag)", c->lag.name,
					c->lag.lag_ms / 1000.0);
	rr->changed += tot.changed;
	rr->batches += tot.batches;
	rr->longest_batch_ms = tot.longest_batch_ms;
	free(detail);
	return o;
}

static void
note_overdue(struct cycle *c, struct plan *rs, struct rule_result *rr)
{
	char *err = NULL;
	char *late = query_cutoff(c, rs->rule, true, NULL, &err);
	if (!late || !count_due(c->conn, rs, late, &rr->overdue, &err)) {
		log_warning("rule \"%s\": could not count overdue rows: %s",
			    rs->rule->name, err);
		free(err);
		rr->overdue = -1;
	}
	free(late);
}

/* The oldest row, where after_run did not say it: nothing was changed
 * (a plan, a skipped or refused rule), or counting after the run failed.
 * Not before a run, where after_run says it: on a partitioned table the
 * query plans every partition, the expired ones too. */
static void
note_oldest(struct cycle *c, struct plan *rs, struct rule_result *rr)
{
	char *err = NULL;
	free(rr->oldest);
	rr->oldest = NULL;
	if (!count_oldest(c->conn, rs, &rr->oldest, &err)) {
		log_warning("rule \"%s\": could not find the oldest row: %s",
			    rs->rule->name, err);
		free(err);
	}
}

/* Whether nothing in partition T can be due: its lower bound is at or
 * after the cutoff, a second to spare for the rounding of both to a
 * double. Passing over it saves a query or two per partition, a round
 * trip to every shard on Citus. */
static bool
due_later(const struct plan_target *t, double cutoff_epoch)
{
	return t->lower_epoch >= cutoff_epoch + 1.0;
}

/* Drop or detach whole expired partitions (or, in a plan, say which). */
static bool
retire_partitions(struct cycle *c, struct plan *rs, struct rule_result *rr,
		  char **err)
{
	struct partition_result pr;
	if (!partition_retire(c->conn, c->cfg, rs, rr->cutoff, c->run_id,
			      c->opt->dry_run, &pr, err))
		return false;
	if (pr.n > 0) {
		struct strbuf b = STRBUF_INIT;
		long long rows = 0, n = 0;
		for (size_t i = 0; i < pr.n; i++) {
			if (pr.parts[i].skipped)
				continue;
			rows += pr.parts[i].rows;
			n++;
		}
		sb_printf(&b, "%s %lld whole partition%s (%lld rows)",
			  c->opt->dry_run ? "would remove" : "removed", n,
			  n == 1 ? "" : "s", rows);
		for (size_t i = 0; i < pr.n; i++)
			if (pr.parts[i].skipped)
				sb_printf(&b, "; %s by rows: %s", pr.parts[i].name,
					  pr.parts[i].skipped);
		free(rr->how);
		rr->how = sb_take(&b);
	}
	rr->partitions = 0;
	for (size_t i = 0; i < pr.n; i++)
		if (pr.parts[i].retired)
			rr->partitions++;
	rr->changed += pr.rows;
	bool reload = rr->partitions > 0 || pr.finalized > 0;
	partition_result_free(&pr);
	return !reload || plan_reload_targets(c->conn, c->cfg, rs, err);
}

/*
 * Counts before a rule runs. A plan and a disabled rule (for its
 * compliance line) are counted in full. A run needs only to know whether
 * the max_fraction guard stops it, so counting stops one row past the
 * guard's limit, or at the first due row when the guard cannot stop it
 * (--force, max_fraction 1): counting every due row of a big backlog
 * costs as much as a good part of deleting them. The report's numbers
 * then come from after_run, or in full when the guard refuses.
 */
static bool
count_before(struct cycle *c, struct plan *rs, struct rule_result *rr,
	     bool full, char **err)
{
	const struct rule *r = rs->rule;
	struct count_rows counts;

	if (!full) {
		long long at_most = 1;
		if (!c->opt->force && r->limits.max_fraction < 1.0)
			at_most = (long long)(r->limits.max_fraction *
					      (double)rr->table_rows) + 1;
		if (at_most == 1)
			plan_citus_pool(c->conn, rs, PLAN_CITUS_POOL_ONE);
		if (!count_upto(c->conn, rs, rr->cutoff, at_most,
				      &rr->eligible, err))
			return false;
		if (at_most == 1 || rr->eligible < at_most)
			return true;
	}
	if (!count_rule(c->conn, rs, rr->cutoff, &counts, err))
		return false;
	rr->eligible = counts.eligible;
	rr->held = counts.held;
	rr->blocked = counts.blocked;
	return true;
}

/* After the batches (or none): the oldest row, what is left and what is
 * overdue, in one pass. False (logged) when that failed; the caller
 * counts apart. */
static bool
after_run(struct cycle *c, struct plan *rs, struct rule_result *rr)
{
	struct count_after after;
	char *err = NULL;
	char *late = query_cutoff(c, rs->rule, true, NULL, &err);

	if (!late || !count_after_run(c->conn, rs, rr->cutoff, late, &after, &err)) {
		log_warning("rule \"%s\": could not count the rows left: %s",
			    rs->rule->name, err);
		free(err);
		free(late);
		return false;
	}
	free(late);
	free(rr->oldest);
	rr->oldest = after.oldest;
	rr->held = after.rows.held;
	rr->blocked = after.rows.blocked;
	rr->eligible = rr->changed + after.rows.eligible;
	rr->overdue = after.overdue;
	return true;
}

static void
run_rule_steps(struct cycle *c, const struct rule *r, struct rule_result *rr)
{
	struct plan rs;
	char *err = NULL;
	double t0 = monotonic_ms();

	rr->rule = r;
	status(c, "rule %s: counting", r->name);
	if (!plan_compile(c->conn, c->cfg, r, r->action, PLAN_EXPIRY, NULL,
			   &rs, &err)) {
		log_error("rule \"%s\" (%s.%s): %s", r->name, r->schema,
			  r->table, err);
		rr->outcome = OUTCOME_FAILED;
		rr->message = err;
		return;
	}
	rr->how = xstrdup(rs.ordered ? "row batches along the age index"
				     : "row batches (no index on the age column)");
	double cutoff_epoch = NAN;
	rr->cutoff = query_cutoff(c, r, false, &cutoff_epoch, &err);
	bool full = c->opt->dry_run || !rule_selected(c->opt, r);
	if (!rr->cutoff ||
	    !count_table_rows(c->conn, &rs, &rr->table_rows, &err) ||
	    !count_before(c, &rs, rr, full, &err)) {
		rr->outcome = OUTCOME_FAILED;
		rr->message = err;
		plan_citus_pool(c->conn, &rs, 0);
		plan_release(&rs);
		return;
	}

	if (!rule_selected(c->opt, r)) {
		rr->outcome = OUTCOME_SKIPPED;
	} else if (!guards_pass(c, r, rr)) {
		rr->outcome = OUTCOME_REFUSED;
	} else if (c->opt->dry_run) {
		rr->outcome = OUTCOME_PLANNED;
		if (!retire_partitions(c, &rs, rr, &err)) {
			rr->outcome = OUTCOME_FAILED;
			rr->message = err;
		}
	} else if (rr->eligible == 0) {
		rr->outcome = OUTCOME_NOTHING;
		if (after_run(c, &rs, rr)) {
			plan_citus_pool(c->conn, &rs, 0);
			plan_release(&rs);
			rr->seconds = (monotonic_ms() - t0) / 1000.0;
			return;
		}
	} else {
		double deadline = t0 + (double)duration_ms(&r->limits.max_runtime);
		rr->outcome = OUTCOME_DONE;
		plan_citus_pool(c->conn, &rs, PLAN_CITUS_POOL_ONE);
		if (!retire_partitions(c, &rs, rr, &err)) {
			rr->outcome = OUTCOME_FAILED;
			rr->message = err;
		}
		for (size_t i = 0; i < rs.n_targets && rr->outcome == OUTCOME_DONE; i++)
			if (!due_later(&rs.targets[i], cutoff_epoch))
				rr->outcome = work_target(c, &rs, i, rr, deadline);
		status(c, "rule %s: counting what is left", r->name);
		if (after_run(c, &rs, rr)) {
			plan_citus_pool(c->conn, &rs, 0);
			plan_release(&rs);
			rr->seconds = (monotonic_ms() - t0) / 1000.0;
			return;
		}
	}
	note_oldest(c, &rs, rr);
	note_overdue(c, &rs, rr);
	/* the batches' pool served the counts after them too */
	plan_citus_pool(c->conn, &rs, 0);
	plan_release(&rs);
	rr->seconds = (monotonic_ms() - t0) / 1000.0;
}

static void
run_rule(struct cycle *c, const struct rule *r, struct rule_result *rr)
{
	run_rule_steps(c, r, rr);
	/* a stop cancels whatever statement runs, a count as much as a
	 * batch: that is an interruption, not the rule's failure */
	if (rr->outcome == OUTCOME_FAILED && stop_requested(c))
		rr->outcome = OUTCOME_STOPPED;
}

/* The server and the schema must be what this binary was built for: a
 * schema left behind by an upgrade would fail later on a missing object. */
static bool
check_schema(struct cycle *c, char **err)
{
	*err = db_server_unsupported(PQserverVersion(c->conn));
	if (*err)
		return false;
	return schema_require(c->conn, c->cfg->database.schema, err) == 0;
}

static bool
check_clock(struct cycle *c, char **err)
{
	PGresult *res = db_query(c->conn,
		"SELECT extract(epoch FROM clock_timestamp())::float8", 0, NULL, err);
	if (!res)
		return false;
	double db = atof(PQgetvalue(res, 0, 0));
	PQclear(res);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	double host = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	if (fabs(host - db) > ENGINE_MAX_SKEW_SECONDS) {
		*err = xasprintf("the host clock and the database's differ by "
				 "%.0f seconds (more than %d); refusing to run "
				 "until they agree (check NTP)",
				 fabs(host - db), ENGINE_MAX_SKEW_SECONDS);
		return false;
	}
	return true;
}

static enum run_status
overall_status(const struct run_result *out)
{
	size_t failed = 0, worked = 0;
	if (out->interrupted)
		return RUN_INTERRUPTED;
	for (size_t i = 0; i < out->n_rules; i++) {
		if (out->rules[i].outcome == OUTCOME_STOPPED)
			return RUN_INTERRUPTED;
		if (out->rules[i].outcome == OUTCOME_SKIPPED)
			continue;
		worked++;
		if (rule_outcome_is_failure(out->rules[i].outcome))
			failed++;
	}
	if (out->erasure_error)
		failed++;
	/* a request a rule failed on stays pending, but the run must say
	 * so now, not a month later when the request is overdue */
	for (size_t i = 0; i < out->n_erasures; i++)
		if (out->erasures[i].failed) {
			failed++;
			break;
		}
	if (failed == 0)
		return RUN_OK;
	return failed >= worked && worked > 0 ? RUN_FAILED : RUN_PARTIAL;
}

static char *
failure_text(const struct run_result *out)
{
	struct strbuf b = STRBUF_INIT;
	for (size_t i = 0; i < out->n_rules; i++) {
		const struct rule_result *rr = &out->rules[i];
		if (!rule_outcome_is_failure(rr->outcome))
			continue;
		sb_printf(&b, "%srule \"%s\": %s: %s", b.len ? "; " : "",
			  rr->rule->name, rule_outcome_name(rr->outcome),
			  rr->message ? rr->message : "");
	}
	for (size_t i = 0; i < out->n_erasures; i++) {
		const struct erasure_outcome *eo = &out->erasures[i];
		if (eo->error)
			sb_printf(&b, "%serasure request %lld: %s",
				  b.len ? "; " : "", eo->id, eo->error);
		for (size_t k = 0; k < eo->n_rules; k++)
			if (eo->rules[k].failed)
				sb_printf(&b, "%serasure request %lld: rule \"%s\": %s",
					  b.len ? "; " : "", eo->id,
					  eo->rules[k].rule->name,
					  eo->rules[k].message);
	}
	return b.len ? sb_take(&b) : NULL;
}

static enum engine_status
finish(struct cycle *c, struct run_result *out, double t0)
{
	char *err = NULL;
	out->seconds = (monotonic_ms() - t0) / 1000.0;
	if (!out->error)
		out->status = overall_status(out);
	if (out->run_id) {
		char *summary = summary_json(out);
		char *failures = out->error ? xstrdup(out->error)
					    : failure_text(out);
		if (!runlog_finish(c->conn, c->cfg->database.schema, out->run_id,
				   out->status, failures, summary, &err)) {
			log_error("could not record the end of run %lld: %s",
				  out->run_id, err);
			free(err);
		}
		free(summary);
		free(failures);
	}
	return out->error && out->n_rules == 0 ? ENGINE_ERROR : ENGINE_OK;
}

enum engine_status
engine_cycle(PGconn *conn, const struct config *cfg,
	     const struct engine_options *opt, const struct engine_hooks *hooks,
	     struct run_result *out)
{
	struct cycle c = { .conn = conn, .cfg = cfg, .opt = opt, .hooks = hooks };
	const char *schema = cfg->database.schema;
	char *err = NULL;
	double t0 = monotonic_ms();
	bool locked = false;

	memset(out, 0, sizeof(*out));
	out->status = RUN_FAILED;
	c.deadline_ms = t0 + (double)duration_ms(&cfg->limits.max_runtime);

	if (!check_schema(&c, &err)) {
		out->error = err;
		return ENGINE_ERROR;
	}
	/* plan changes nothing, so it neither needs the lock nor may it mark
	 * a working instance's run as stale */
	if (!opt->dry_run) {
		int holder = 0;
		switch (runlog_lock(conn, schema, &holder, &err)) {
		case LOCK_TAKEN:
			locked = true;
			break;
		case LOCK_BUSY:
			out->error = holder
				? xasprintf("another retentiond instance (database "
					    "backend pid %d) is working on this "
					    "database", holder)
				: xstrdup("another retentiond instance is working "
					  "on this database");
			return ENGINE_LOCKED;
		case LOCK_ERROR:
			out->error = err;
			return ENGINE_ERROR;
		}
		long long stale = runlog_mark_stale(conn, schema, &err);
		if (stale < 0) {
			log_warning("could not mark stale runs: %s", err);
			free(err);
		} else if (stale > 0) {
			log_notice("marked %lld unfinished earlier run%s as "
				   "interrupted", stale, stale == 1 ? "" : "s");
		}
	}
	if (!runlog_begin(conn, schema, opt->command, cfg->sha256, &out->run_id,
			  &err)) {
		out->error = xasprintf("could not record the run: %s", err);
		free(err);
		if (locked)
			runlog_unlock(conn, schema);
		return ENGINE_ERROR;
	}
	c.run_id = out->run_id;

	if (!check_clock(&c, &err)) {
		out->error = err;
		(void)finish(&c, out, t0);
		if (locked)
			runlog_unlock(conn, schema);
		return ENGINE_ERROR;
	}
	/* before any work: a restored database gets its erasures back first */
	if (!opt->dry_run)
		restore_check(conn, cfg, c.run_id);

	/* No parallel workers: a retention job should not take the cores the
	 * application needs, and on a small server the counts right after a
	 * big delete (one visit to each dead row, see count_after_run) cost more
	 * CPU in parallel than alone. */
	if (!db_parallel_query(conn, false, &err)) {
		log_warning("could not turn parallel query off: %s", err);
		free(err);
		err = NULL;
	}

	if (opt->dry_run && !db_exec(conn, "BEGIN TRANSACTION READ ONLY", &err)) {
		out->error = err;
		(void)finish(&c, out, t0);
		return ENGINE_ERROR;
	}
	size_t *order = xcalloc(cfg->n_rules ? cfg->n_rules : 1, sizeof(*order));
	bool *ran = xcalloc(cfg->n_rules ? cfg->n_rules : 1, sizeof(*ran));
	if (!order_rules(conn, cfg, order, &err)) {
		log_warning("could not read foreign keys to order the rules; "
			    "using the config file's order: %s", err);
		free(err);
		for (size_t i = 0; i < cfg->n_rules; i++)
			order[i] = i;
	}
	out->rules = xcalloc(cfg->n_rules ? cfg->n_rules : 1, sizeof(*out->rules));
	bool stopped = false;
	ahead_init(&c.ahead, cfg);
	for (size_t k = 0; k < cfg->n_rules && !stopped; k++) {
		const struct rule *r = &cfg->rules[order[k]];
		/* a rule --rule left out is not looked at; a disabled one
		 * still gets its compliance counted for the report */
		if (opt->n_only && !rule_selected(opt, r))
			continue;
		ran[order[k]] = rule_selected(opt, r);
		struct rule_result *rr = &out->rules[out->n_rules++];
		/* in the plan's one transaction, a failing rule must not
		 * abort the others */
		if (opt->dry_run && !db_exec(conn, "SAVEPOINT rule", &err)) {
			rr->rule = r;
			rr->outcome = OUTCOME_FAILED;
			rr->message = err;
			continue;
		}
		run_rule(&c, r, rr);
		if (opt->dry_run && !db_exec(conn, "ROLLBACK TO SAVEPOINT rule", &err)) {
			log_warning("savepoint: %s", err);
			free(err);
		}
		out->changed += rr->changed;
		stopped = rr->outcome == OUTCOME_STOPPED;
	}
	ahead_close(&c.ahead);
	if (!stopped && !stop_requested(&c)) {
		status(&c, "erasure requests");
		struct driver_hooks dh = { .should_stop = hook_stop,
					   .before_batch = hook_before,
					   .arg = &c };
		memset(&c.lag, 0, sizeof(c.lag));
		struct driver_ctx d = { .conn = conn, .cfg = cfg,
					.run_id = c.run_id,
					.deadline_ms = c.deadline_ms, .hooks = &dh };
		if (!erasure_process(&d, order, ran, opt->dry_run, out, &err)) {
			log_error("erasure requests: %s", err);
			out->erasure_error = err;
		}
	}
	if (!opt->dry_run && !stopped && !stop_requested(&c)) {
		status(&c, "access requests");
		if (!access_process(conn, cfg, c.run_id, c.deadline_ms,
				    hooks ? hooks->should_stop : NULL,
				    hooks ? hooks->arg : NULL, out, &err)) {
			log_error("access requests: %s", err);
			out->access_error = err;
		}
	}
	free(order);
	free(ran);
	if (opt->dry_run && !db_exec(conn, "ROLLBACK", &err)) {
		log_warning("could not end the read-only transaction: %s", err);
		free(err);
	}
	enum engine_status st = finish(&c, out, t0);
	if (!db_parallel_query(conn, true, &err)) {
		log_warning("could not reset max_parallel_workers_per_gather: %s",
			    err);
		free(err);
	}
	if (locked)
		runlog_unlock(conn, schema);
	return st;
}

void
run_result_free(struct run_result *r)
{
	for (size_t i = 0; i < r->n_rules; i++) {
		free(r->rules[i].cutoff);
		free(r->rules[i].oldest);
		free(r->rules[i].how);
		free(r->rules[i].message);
	}
	free(r->rules);
	for (size_t i = 0; i < r->n_erasures; i++)
		erasure_outcome_free(&r->erasures[i]);
	free(r->erasures);
	free(r->erasure_error);
	for (size_t i = 0; i < r->n_accesses; i++)
		access_outcome_free(&r->accesses[i]);
	free(r->accesses);
	free(r->access_error);
	free(r->error);
	memset(r, 0, sizeof(*r));
}
