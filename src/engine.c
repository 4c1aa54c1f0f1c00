#include "engine.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "busy.h"
#include "db.h"
#include "erasure.h"
#include "log.h"
#include "order.h"
#include "partition.h"
#include "replica.h"
#include "strbuf.h"

/* How often a batch that hit statement_timeout is retried, each time with
 * a quarter of the rows, before the rule counts as failed. */
#define TIMEOUT_RETRIES 4

/* How long a row batch by age range may wait for a row lock someone else
 * holds before it gives up and the batch is redone skipping that row. */
#define ROW_LOCK_WAIT_MS 10

struct cycle {
	PGconn *conn;
	const struct config *cfg;
	const struct engine_options *opt;
	const struct engine_hooks *hooks;
	long long run_id;
	double deadline_ms;	/* monotonic; the cycle's max_runtime */
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

static void
sleep_ms(double ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = {
		.tv_sec = (time_t)(ms / 1000),
		.tv_nsec = (long)fmod(ms, 1000.0) * 1000000L,
	};
	/* a signal cuts the pause short, which is what a stop wants */
	(void)nanosleep(&ts, NULL);
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

/* Next batch size: aim for TARGET_MS, but change by at most a factor of
 * two per batch so one slow batch (a checkpoint, a lock) does not swing it;
 * never below FLOOR rows. */
static long long
adapt(long long limit, double elapsed_ms, double target_ms, long long first,
      long long floor)
{
	double want = (double)limit * target_ms / (elapsed_ms > 1 ? elapsed_ms : 1);
	if (want > (double)limit * 2)
		want = (double)limit * 2;
	if (want < (double)limit / 2)
		want = (double)limit / 2;
	long long ceiling = first * 10;
	if (want > (double)ceiling)
		want = (double)ceiling;
	return want < (double)floor ? floor : (long long)want;
}

/* now() - retain [- one schedule interval, for the compliance verdict] */
static char *
query_cutoff(struct cycle *c, const struct rule *r, bool grace, char **err)
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
		"SELECT (now() - $1::interval - $2::interval)::text", 2, p, err);
	if (!res)
		return NULL;
	char *cut = xstrdup(PQgetvalue(res, 0, 0));
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

/* The session's lock_timeout: the configured one, or (SHORT) the bound on
 * a range batch's wait for a row lock. */
static bool
set_lock_wait(struct cycle *c, bool short_wait)
{
	long long conf = duration_ms(&c->cfg->database.lock_timeout);
	long long ms = conf;
	char value[32];
	char *err = NULL;

	if (short_wait && (conf == 0 || conf > ROW_LOCK_WAIT_MS))
		ms = ROW_LOCK_WAIT_MS;
	snprintf(value, sizeof(value), "%lldms", ms);
	if (batch_lock_timeout(c->conn, value, &err))
		return true;
	log_warning("could not set lock_timeout to %s: %s", value, err);
	free(err);
	return false;
}

/* The WAL insert position, or -1 when it could not be read (then nobody
 * is taken to be writing). */
static long long
wal_position(struct cycle *c)
{
	long long pos;
	char *err = NULL;
	if (batch_wal_position(c->conn, &pos, &err))
		return pos;
	log_debug("could not read the WAL position: %s", err);
	free(err);
	return -1;
}

/* Pause between batches; while pausing, watch whether others write WAL
 * (busy.h). Returns whether retentiond should be gentle now. */
static bool
pause_and_watch(struct cycle *c, const struct rule *r, struct busy *busy,
		bool watch, double rule_deadline)
{
	/* never past max_runtime, however long the configured pause */
	double pause = (double)duration_ms(&r->limits.pause);
	double left = fmin(c->deadline_ms, rule_deadline) - monotonic_ms();
	long long before = watch ? wal_position(c) : -1;
	sleep_ms(fmin(pause, left));
	if (before >= 0) {
		long long after = wal_position(c);
		if (after >= 0)
			return busy_observe(busy, after - before, monotonic_ms());
	}
	return busy_now(busy, monotonic_ms());
}

/* Into (GENTLE) or out of the short, flushed batches for others'
 * writes: commits synchronous while gentle. ASYNC: whether the session
 * commits asynchronously now; returns what it does after. *TOLD: the log
 * said so already (once per target is enough). */
static bool
switch_gentle(struct cycle *c, struct rule_sql *rs, size_t ti, bool gentle,
	      bool async, bool *told)
{
	const struct rule *r = rs->rule;
	char *err = NULL;

	if (gentle) {
		if (!*told)
			log_info("rule \"%s\" (%s): other sessions are writing; "
				 "batches of about %lld ms, each flushed at its "
				 "commit, while they do", r->name,
				 rs->targets[ti].name, (long long)
				 duration_ms(&r->limits.busy_batch_target));
		*told = true;
		if (async && batch_async_commit(c->conn, false, &err))
			async = false;
	} else {
		log_debug("rule \"%s\" (%s): nobody else is writing; batches "
			  "of about %lld ms again", r->name, rs->targets[ti].name,
			  (long long)duration_ms(&r->limits.batch_target));
		async = batch_async_commit(c->conn, true, &err);
	}
	if (err) {
		log_debug("rule \"%s\": synchronous_commit: %s", r->name, err);
		free(err);
	}
	return async;
}

/* Work through one target until nothing is due, or time, a stop or an
 * error ends it. Returns the outcome for this target.
 *
 * Batches go by age range (batch_run_range) when the target has an age
 * index; a batch that meets a row locked by someone else, or whose rows
 * all share one age, is redone row by row with SKIP LOCKED (batch_run).
 *
 * While other sessions write, batches aim for busy_batch_target instead of
 * batch_target and commit synchronously, so a commit of theirs never waits
 * for much of retentiond's WAL to reach disk (busy.h). */
static enum rule_outcome
work_target(struct cycle *c, struct rule_sql *rs, size_t ti,
	    struct rule_result *rr, double rule_deadline)
{
	const struct rule *r = rs->rule;
	long long limit = r->limits.batch_size;
	char *from = xstrdup("-infinity");
	int timeouts = 0, races = 0;
	enum rule_outcome outcome = OUTCOME_DONE;
	char *detail = NULL;
	bool by_range = rs->targets[ti].range != NULL;
	bool short_wait = false;	/* the session's lock_timeout now */
	bool by_row_once = false;	/* redo this batch with batch_run */
	struct busy busy = { 0 };
	bool gentle = false;		/* others write: short, flushed batches */
	bool told = false;		/* the log said so */
	double target = (double)duration_ms(&r->limits.batch_target);
	double busy_target = (double)duration_ms(&r->limits.busy_batch_target);
	bool watch = busy_target > 0 && busy_target < target;
	/* a commit and its round trips cost a millisecond or two whatever
	 * the batch's size: below this many rows a short target would
	 * shrink batches to single rows and slow retentiond to a crawl */
	long long busy_floor = r->limits.batch_size < BUSY_MIN_ROWS
		? r->limits.batch_size : BUSY_MIN_ROWS;

	if (rs->cascades)
		detail = xasprintf("{\"cascade\": %s}", rs->cascades);
	/* A batch need not wait for its commit to reach disk: a crash can
	 * only lose a batch together with its audit row, and the next cycle
	 * redoes it. The run's own record is committed synchronously at the
	 * end, which flushes every batch before it, so no report ever counts
	 * a batch that a crash could take back. */
	char *err0 = NULL;
	bool async = batch_async_commit(c->conn, true, &err0);
	if (!async) {
		log_debug("rule \"%s\": synchronous_commit stays on: %s", r->name,
			  err0);
		free(err0);
		err0 = NULL;
	}
	for (;;) {
		if (stop_requested(c)) {
			outcome = OUTCOME_STOPPED;
			break;
		}
		double now = monotonic_ms();
		if (now >= c->deadline_ms || now >= rule_deadline) {
			outcome = OUTCOME_TIME;
			break;
		}
		enum replica_wait_result lag = replica_wait(c->conn, r, c->hooks,
			fmin(c->deadline_ms, rule_deadline),
			&rr->lag_wait_seconds, &rr->message);
		if (lag != REPLICA_GO) {
			outcome = lag == REPLICA_STOPPED ? OUTCOME_STOPPED
				: lag == REPLICA_TIMEOUT ? OUTCOME_TIME
				: OUTCOME_FAILED;
			break;
		}
		bool range = by_range && !by_row_once;
		if (range != short_wait) {
			if (set_lock_wait(c, range)) {
				short_wait = range;
			} else if (range) {
				/* without the short wait, go row by row */
				by_range = range = false;
			} else {
				outcome = OUTCOME_FAILED;
				rr->message = xasprintf("%s: could not reset "
					"lock_timeout", rs->targets[ti].name);
				break;
			}
		}
		struct batch_outcome bo;
		char *err = NULL;
		double t0 = monotonic_ms();
		bool ok = range
			? batch_run_range(c->conn, rs, ti, rr->cutoff, limit, from,
					  c->run_id, rs->cascades ? detail : NULL,
					  &bo, &err)
			: batch_run(c->conn, rs, ti, rr->cutoff, limit, from,
				    c->run_id, rs->cascades ? detail : NULL,
				    &bo, &err);
		double elapsed = monotonic_ms() - t0;
		if (!ok) {
			if (range && (strcmp(bo.sqlstate, "55P03") == 0 ||
				      strcmp(bo.sqlstate, "40P01") == 0)) {
				/* a row someone else holds: nothing was
				 * changed; redo the batch skipping it */
				log_debug("rule \"%s\" (%s): %s; redoing the batch "
					  "row by row", r->name,
					  rs->targets[ti].name, err);
				by_row_once = true;
				free(err);
				continue;
			}
			if (strcmp(bo.sqlstate, "57014") == 0 && limit > 1 &&
			    timeouts < TIMEOUT_RETRIES && !stop_requested(c)) {
				/* statement_timeout: smaller batches */
				timeouts++;
				limit = limit / 4 > 0 ? limit / 4 : 1;
				log_warning("rule \"%s\" (%s): batch hit "
					    "statement_timeout; retrying with %lld rows",
					    r->name, rs->targets[ti].name, limit);
				free(err);
				continue;
			}
			if (strcmp(bo.sqlstate, "23503") == 0 && races < 3) {
				/* a row referenced after it was picked: the
				 * next pick sees the reference and skips it */
				races++;
				free(err);
				continue;
			}
			if (strcmp(bo.sqlstate, "55P03") == 0 ||
			    strcmp(bo.sqlstate, "40P01") == 0) {
				/* a lock we would have to wait for: the rows
				 * stay for the next cycle */
				outcome = OUTCOME_LOCKED;
				rr->message = xasprintf("%s: %s",
					rs->targets[ti].name, err);
			} else if (strcmp(bo.sqlstate, "57014") == 0 &&
				   stop_requested(c)) {
				outcome = OUTCOME_STOPPED;
			} else {
				outcome = OUTCOME_FAILED;
				rr->message = xasprintf("%s: %s",
					rs->targets[ti].name, err);
			}
			free(err);
			break;
		}
		if (range && bo.tied) {
			/* LIMIT rows of one age: take them row by row */
			free(bo.last_age);
			by_row_once = true;
			continue;
		}
		by_row_once = false;
		timeouts = 0;
		races = 0;
		if (bo.changed > 0)
			rr->batches++;
		rr->changed += bo.changed;
		if (elapsed > rr->longest_batch_ms)
			rr->longest_batch_ms = elapsed;
		status(c, "rule %s: %lld %s", r->name, rr->changed,
		       r->action == ACTION_DELETE ? "deleted" : "de-identified");
		log_debug("rule \"%s\" (%s): batch of %lld %s picked %lld, "
			  "changed %lld in %.1f ms", r->name,
			  rs->targets[ti].name, limit, range ? "by age" : "by row",
			  bo.picked, bo.changed, elapsed);
		bool last = bo.last;
		if (rs->ordered && bo.last_age) {
			free(from);
			from = bo.last_age;
		} else {
			free(bo.last_age);
		}
		if (last)
			break;
		limit = adapt(limit, elapsed, gentle ? busy_target : target,
			      r->limits.batch_size, gentle ? busy_floor : 1);
		bool want = pause_and_watch(c, r, &busy, watch, rule_deadline);
		if (want != gentle) {
			gentle = want;
			async = switch_gentle(c, rs, ti, gentle, async, &told);
			if (gentle) {
				long long l = (long long)((double)limit *
							  busy_target / target);
				limit = l > busy_floor ? l : busy_floor;
			}
		}
	}
	if (short_wait)
		(void)set_lock_wait(c, false);
	if (async && !batch_async_commit(c->conn, false, &err0)) {
		log_warning("rule \"%s\": could not reset synchronous_commit: %s",
			    r->name, err0);
		free(err0);
	}
	free(from);
	free(detail);
	return outcome;
}

static void
count_overdue(struct cycle *c, struct rule_sql *rs, struct rule_result *rr)
{
	char *err = NULL;
	char *late = query_cutoff(c, rs->rule, true, &err);
	if (!late || !batch_count_due(c->conn, rs, late, &rr->overdue, &err)) {
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
count_oldest(struct cycle *c, struct rule_sql *rs, struct rule_result *rr)
{
	char *err = NULL;
	free(rr->oldest);
	rr->oldest = NULL;
	if (!batch_oldest(c->conn, rs, &rr->oldest, &err)) {
		log_warning("rule \"%s\": could not find the oldest row: %s",
			    rs->rule->name, err);
		free(err);
	}
}

/* Drop or detach whole expired partitions (or, in a plan, say which). */
static bool
retire_partitions(struct cycle *c, struct rule_sql *rs, struct rule_result *rr,
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
	return !reload || batch_reload_targets(c->conn, c->cfg, rs, err);
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
count_before(struct cycle *c, struct rule_sql *rs, struct rule_result *rr,
	     bool full, char **err)
{
	const struct rule *r = rs->rule;
	struct batch_counts counts;

	if (!full) {
		long long at_most = 1;
		if (!c->opt->force && r->limits.max_fraction < 1.0)
			at_most = (long long)(r->limits.max_fraction *
					      (double)rr->table_rows) + 1;
		if (!batch_count_upto(c->conn, rs, rr->cutoff, at_most,
				      &rr->eligible, err))
			return false;
		if (at_most == 1 || rr->eligible < at_most)
			return true;
	}
	if (!batch_count(c->conn, rs, rr->cutoff, &counts, err))
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
after_run(struct cycle *c, struct rule_sql *rs, struct rule_result *rr)
{
	struct batch_after after;
	char *err = NULL;
	char *late = query_cutoff(c, rs->rule, true, &err);

	if (!late || !batch_after(c->conn, rs, rr->cutoff, late, &after, &err)) {
		log_warning("rule \"%s\": could not count the rows left: %s",
			    rs->rule->name, err);
		free(err);
		free(late);
		return false;
	}
	free(late);
	free(rr->oldest);
	rr->oldest = after.oldest;
	rr->held = after.counts.held;
	rr->blocked = after.counts.blocked;
	rr->eligible = rr->changed + after.counts.eligible;
	rr->overdue = after.overdue;
	return true;
}

static void
run_rule_steps(struct cycle *c, const struct rule *r, struct rule_result *rr)
{
	struct rule_sql rs;
	char *err = NULL;
	double t0 = monotonic_ms();

	rr->rule = r;
	status(c, "rule %s: counting", r->name);
	if (!batch_prepare(c->conn, c->cfg, r, r->action, BATCH_EXPIRY, NULL,
			   &rs, &err)) {
		rr->outcome = OUTCOME_FAILED;
		rr->message = err;
		return;
	}
	rr->how = xstrdup(rs.ordered ? "row batches along the age index"
				     : "row batches (no index on the age column)");
	rr->cutoff = query_cutoff(c, r, false, &err);
	bool full = c->opt->dry_run || !rule_selected(c->opt, r);
	if (!rr->cutoff ||
	    !batch_table_rows(c->conn, &rs, &rr->table_rows, &err) ||
	    !count_before(c, &rs, rr, full, &err)) {
		rr->outcome = OUTCOME_FAILED;
		rr->message = err;
		batch_release(&rs);
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
			batch_release(&rs);
			rr->seconds = (monotonic_ms() - t0) / 1000.0;
			return;
		}
	} else {
		double deadline = t0 + (double)duration_ms(&r->limits.max_runtime);
		rr->outcome = OUTCOME_DONE;
		if (!retire_partitions(c, &rs, rr, &err)) {
			rr->outcome = OUTCOME_FAILED;
			rr->message = err;
		}
		for (size_t i = 0; i < rs.n_targets && rr->outcome == OUTCOME_DONE; i++)
			rr->outcome = work_target(c, &rs, i, rr, deadline);
		status(c, "rule %s: counting what is left", r->name);
		if (after_run(c, &rs, rr)) {
			batch_release(&rs);
			rr->seconds = (monotonic_ms() - t0) / 1000.0;
			return;
		}
	}
	count_oldest(c, &rs, rr);
	count_overdue(c, &rs, rr);
	batch_release(&rs);
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

static bool
check_schema(struct cycle *c, char **err)
{
	char *t = db_qualified(c->conn, c->cfg->database.schema, "schema_version");
	char *sql = xasprintf("SELECT max(version) FROM %s", t);
	char *e = NULL;
	PGresult *res = db_query(c->conn, sql, 0, NULL, &e);
	free(sql);
	free(t);
	if (!res) {
		*err = xasprintf("retentiond's schema \"%s\" is not ready (%s); "
				 "run `retentiond init-db` first",
				 c->cfg->database.schema, e);
		free(e);
		return false;
	}
	PQclear(res);
	return true;
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

static char *
summary_json(const struct run_result *out)
{
	struct strbuf b = STRBUF_INIT;
	sb_printf(&b, "{\"changed\": %lld, \"seconds\": %.3f, \"rules\": [",
		  out->changed, out->seconds);
	for (size_t i = 0; i < out->n_rules; i++) {
		const struct rule_result *rr = &out->rules[i];
		sb_add(&b, i ? ", {\"rule\": " : "{\"rule\": ");
		sb_json_str(&b, rr->rule->name);
		sb_add(&b, ", \"policy\": ");
		sb_json_str(&b, rr->rule->policy);
		char table[512], retain[DURATION_TEXT_MAX];
		snprintf(table, sizeof(table), "%s.%s", rr->rule->schema,
			 rr->rule->table);
		duration_to_interval(&rr->rule->retain, retain, sizeof(retain));
		sb_add(&b, ", \"table\": ");
		sb_json_str(&b, table);
		sb_add(&b, ", \"action\": ");
		sb_json_str(&b, rule_action_name(rr->rule->action));
		sb_add(&b, ", \"retain\": ");
		sb_json_str(&b, retain);
		sb_printf(&b, ", \"compliant\": %s, \"overdue\": %lld, "
			  "\"table_rows\": %lld",
			  rule_result_compliant(rr) ? "true" : "false",
			  rr->overdue, rr->table_rows);
		sb_add(&b, ", \"outcome\": ");
		sb_json_str(&b, rule_outcome_name(rr->outcome));
		sb_add(&b, ", \"cutoff\": ");
		sb_json_str(&b, rr->cutoff);
		sb_printf(&b, ", \"partitions\": %lld", rr->partitions);
		sb_printf(&b, ", \"eligible\": %lld, \"held\": %lld, "
			  "\"blocked\": %lld, \"changed\": %lld, \"batches\": %lld, "
			  "\"longest_batch_ms\": %.1f",
			  rr->eligible, rr->held, rr->blocked, rr->changed,
			  rr->batches, rr->longest_batch_ms);
		sb_printf(&b, ", \"lag_wait_seconds\": %.1f",
			  rr->lag_wait_seconds);
		sb_add(&b, ", \"oldest\": ");
		sb_json_str(&b, rr->oldest);
		sb_add(&b, ", \"message\": ");
		sb_json_str(&b, rr->message);
		sb_add(&b, "}");
	}
	sb_add(&b, "], \"erasures\": [");
	for (size_t i = 0; i < out->n_erasures; i++) {
		const struct erasure_outcome *eo = &out->erasures[i];
		sb_printf(&b, "%s{\"id\": %lld, \"subject\": ", i ? ", " : "",
			  eo->id);
		sb_json_str(&b, eo->subject);
		sb_add(&b, ", \"subject_id\": ");
		sb_json_str(&b, eo->subject_id);
		sb_add(&b, ", \"status\": ");
		sb_json_str(&b, eo->status);
		sb_add(&b, ", \"due_at\": ");
		sb_json_str(&b, eo->due_at);
		sb_printf(&b, ", \"changed\": %lld}", eo->changed);
	}
	sb_add(&b, "]}");
	return sb_take(&b);
}

static enum run_status
overall_status(const struct run_result *out)
{
	size_t failed = 0, worked = 0;
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

	/* No parallel workers: a retention job should not take the cores the
	 * application needs, and on a small server the counts right after a
	 * big delete (one visit to each dead row, see batch_after) cost more
	 * CPU in parallel than alone. */
	if (!db_exec(conn, "SET max_parallel_workers_per_gather = 0", &err)) {
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
	if (!stopped && !stop_requested(&c)) {
		status(&c, "erasure requests");
		if (!erasure_process(conn, cfg, order, ran, c.run_id, opt->dry_run,
				     hooks ? hooks->should_stop : NULL,
				     hooks ? hooks->arg : NULL, out, &err)) {
			log_error("erasure requests: %s", err);
			out->erasure_error = err;
		}
	}
	free(order);
	free(ran);
	if (opt->dry_run && !db_exec(conn, "ROLLBACK", &err)) {
		log_warning("could not end the read-only transaction: %s", err);
		free(err);
	}
	enum engine_status st = finish(&c, out, t0);
	if (!db_exec(conn, "RESET max_parallel_workers_per_gather", &err)) {
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
	free(r->error);
	memset(r, 0, sizeof(*r));
}
