#include "driver.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ahead.h"
#include "busy.h"
#include "log.h"
#include "plan_citus.h"

long long
driver_adapt(long long limit, double elapsed_ms, double target_ms,
	     long long first, long long floor)
{
	double want = (double)limit * target_ms / (elapsed_ms > 1 ? elapsed_ms : 1);
	/* Growing, a batch's fixed costs (its round trips, the commit) make
	 * a small batch look slower per row than a big one, so the estimate
	 * errs short and may be followed fast: a backlog of a million rows
	 * is gone in the batches a slower climb would still spend growing.
	 * Shrinking, one slow batch (a checkpoint, a lock) must not swing
	 * the size. */
	if (want > (double)limit * DRIVER_GROWTH)
		want = (double)limit * DRIVER_GROWTH;
	if (want < (double)limit / 2)
		want = (double)limit / 2;
	long long ceiling = first * DRIVER_CEILING;
	if (want > (double)ceiling)
		want = (double)ceiling;
	return want < (double)floor ? floor : (long long)want;
}

struct driver_state
driver_start(const struct driver_config *dc, bool by_range)
{
	struct driver_state s = { .limit = dc->batch_size, .by_range = by_range };
	return s;
}

static struct driver_decision
finish(const struct driver_state *s, enum rule_outcome o, bool report)
{
	struct driver_decision d = { .action = DRIVER_FINISH, .state = *s,
				     .outcome = o, .report_error = report };
	return d;
}

static struct driver_decision
failed(const struct driver_state *s, const struct driver_event *e)
{
	struct driver_decision d = { .action = DRIVER_NEXT, .state = *s };
	enum db_errclass c = e->errclass;

	if (e->range && db_errclass_is_lock(c)) {
		/* a row someone else holds: redo the batch skipping it */
		d.state.by_row_once = true;
		return d;
	}
	if (c == DBERR_QUERY_CANCELED && s->limit > 1 &&
	    s->timeouts < DRIVER_TIMEOUT_RETRIES && !e->stop) {
		/* statement_timeout: smaller batches */
		d.state.timeouts++;
		d.state.limit = s->limit / 4 > 0 ? s->limit / 4 : 1;
		return d;
	}
	if (c == DBERR_FK_VIOLATION && s->races < DRIVER_FK_RETRIES) {
		/* a row referenced after it was picked: the next pick sees
		 * the reference and skips it */
		d.state.races++;
		return d;
	}
	if (db_errclass_is_lock(c))
		return finish(s, OUTCOME_LOCKED, true);	/* next cycle */
	if (c == DBERR_QUERY_CANCELED && e->stop)
		return finish(s, OUTCOME_STOPPED, false);
	return finish(s, OUTCOME_FAILED, true);
}

struct driver_decision
driver_step(const struct driver_config *dc, const struct driver_state *s,
	    const struct driver_event *e)
{
	struct driver_decision d = { .action = DRIVER_NEXT, .state = *s };

	switch (e->kind) {
	case DRIVER_EV_READY:
		if (e->stop)
			return finish(s, OUTCOME_STOPPED, false);
		if (e->now_ms >= e->deadline_ms)
			return finish(s, OUTCOME_TIME, false);
		d.action = DRIVER_RUN;
		d.range = s->by_range && !s->by_row_once;
		return d;
	case DRIVER_EV_NO_LOCK_WAIT:
		/* without the short wait, go row by row; without the
		 * configured one back, stop */
		if (!e->range)
			return finish(s, OUTCOME_FAILED, true);
		d.state.by_range = false;
		return d;
	case DRIVER_EV_TIED:
		/* LIMIT rows of one age: take them row by row */
		d.state.by_row_once = true;
		return d;
	case DRIVER_EV_FAILED:
		return failed(s, e);
	case DRIVER_EV_BATCH:
		d.state.by_row_once = false;
		d.state.timeouts = 0;
		d.state.races = 0;
		if (e->last)
			return finish(&d.state, OUTCOME_DONE, false);
		/* a batch read ahead took fewer rows than asked for: its
		 * time says how fast those went */
		d.state.limit = driver_adapt(e->rows > 0 && e->rows < s->limit
					     ? e->rows : s->limit, e->elapsed_ms,
			s->gentle ? dc->busy_target_ms : dc->target_ms,
			dc->batch_size, s->gentle ? dc->busy_floor : 1);
		d.action = DRIVER_PAUSE;
		/* The configured pause, gentle or not: the SPEC promises
		 * it between batches, and an admin who set a long one
		 * means it (shortening it under load is the admin's
		 * choice, pause = "3ms", not ours). */
		d.pause_ms = dc->pause_ms;
		return d;
	case DRIVER_EV_PAUSED:
		if (e->busy == s->gentle)
			return d;
		d.gentle_changed = true;
		d.state.gentle = e->busy;
		if (e->busy) {
			long long l = (long long)((double)s->limit *
				dc->busy_target_ms / dc->target_ms);
			d.state.limit = l > dc->busy_floor ? l : dc->busy_floor;
		}
		return d;
	}
	return finish(s, OUTCOME_FAILED, true);
}

/* ---- the I/O around driver_step ---------------------------------------- */

static bool
stop_requested(const struct driver_ctx *d)
{
	return d->hooks && d->hooks->should_stop &&
	       d->hooks->should_stop(d->hooks->arg);
}

static void
sleep_ms(double ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = {
		.tv_sec = (time_t)(ms / 1000),
		/* rounded up: a pause cut to max_runtime must end at or
		 * past the deadline, or one more batch would start a
		 * fraction of a millisecond before it */
		.tv_nsec = (long)ceil(fmod(ms, 1000.0) * 1000000.0),
	};
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	/* a signal cuts the pause short, which is what a stop wants */
	(void)nanosleep(&ts, NULL);
}

/* The session's lock_timeout: the configured one, or (SHORT) the bound on
 * a range batch's wait for a row lock. */
static bool
set_lock_wait(const struct driver_ctx *d, bool short_wait)
{
	long long conf = duration_ms(&d->cfg->database.lock_timeout);
	long long ms = conf;
	char value[32];
	char *err = NULL;

	if (short_wait && (conf == 0 || conf > DRIVER_ROW_LOCK_WAIT_MS))
		ms = DRIVER_ROW_LOCK_WAIT_MS;
	snprintf(value, sizeof(value), "%lldms", ms);
	if (db_lock_timeout(d->conn, value, &err))
		return true;
	log_warning("could not set lock_timeout to %s: %s", value, err);
	free(err);
	return false;
}

/* The WAL insert position, or -1 when it could not be read (then nobody
 * is taken to be writing). */
static long long
wal_position(const struct driver_ctx *d)
{
	long long pos;
	char *err = NULL;
	if (db_wal_position(d->conn, &pos, &err))
		return pos;
	log_debug("could not read the WAL position: %s", err);
	free(err);
	return -1;
}

/* Pause between batches; while pausing, watch whether others write WAL
 * (busy.h). Returns whether retentiond should be gentle now. */
static bool
pause_and_watch(const struct driver_ctx *d, double pause, struct busy *busy,
		bool watch, double rule_deadline)
{
	/* never past max_runtime, however long the configured pause */
	double left = fmin(d->deadline_ms, rule_deadline) - monotonic_ms();
	long long before = watch ? wal_position(d) : -1;
	sleep_ms(fmin(pause, left));
	if (before >= 0) {
		long long after = wal_position(d);
		if (after >= 0)
			return busy_observe(busy, after - before, monotonic_ms());
	}
	return busy_now(busy, monotonic_ms());
}

/* While others write, the pages this session evicts go to disk as it
 * writes them (db_flush_writes): a platform without the kernel call
 * refuses the setting, and then only the batches stay short. */
static void
flush_writes(const struct driver_ctx *d, const struct rule *r, bool on)
{
	char *err = NULL;
	if (db_flush_writes(d->conn, on, &err))
		return;
	log_debug("rule \"%s\": backend_flush_after: %s", r->name, err);
	free(err);
}

/* Into (GENTLE) or out of the short, flushed batches for others'
 * writes: commits synchronous while gentle. ASYNC: whether the session
 * commits asynchronously now; returns what it does after. *TOLD: the log
 * said so already (once per target is enough). */
static bool
switch_gentle(const struct driver_ctx *d, struct plan *rs, size_t ti,
	      bool gentle, bool async, bool *told)
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
		if (async && db_async_commit(d->conn, false, &err))
			async = false;
		flush_writes(d, r, true);
	} else {
		log_debug("rule \"%s\" (%s): nobody else is writing; batches "
			  "of about %lld ms again", r->name, rs->targets[ti].name,
			  (long long)duration_ms(&r->limits.batch_target));
		async = db_async_commit(d->conn, true, &err);
		flush_writes(d, r, false);
	}
	if (err) {
		log_debug("rule \"%s\": synchronous_commit: %s", r->name, err);
		free(err);
	}
	return async;
}

enum wait_result { WAIT_GO, WAIT_CUT, WAIT_FAILED };

/* Wait while the before_batch hook asks to: WAIT_CUT when a stop or the
 * deadline came first, WAIT_FAILED (*err) when the hook could not tell
 * (fail closed: no batch without the check). */
static enum wait_result
wait_before_batch(const struct driver_ctx *d, struct plan *rs, size_t ti,
		  double deadline, char **err)
{
	if (!d->hooks || !d->hooks->before_batch)
		return WAIT_GO;
	for (;;) {
		double ms = d->hooks->before_batch(d->hooks->arg, rs, ti, err);
		if (ms < 0)
			return WAIT_FAILED;
		if (ms == 0)
			return WAIT_GO;
		double left = deadline - monotonic_ms();
		if (stop_requested(d) || left <= 0)
			return WAIT_CUT;
		sleep_ms(fmin(ms, left));
	}
}

/*
 * Batches go by age range (batch_run_range) when the target has range
 * statements; a batch that meets a row locked by someone else, or whose
 * rows all share one age, is redone row by row with SKIP LOCKED
 * (batch_run).
 *
 * While other sessions write, batches aim for busy_batch_target instead of
 * batch_target and commit synchronously, so a commit of theirs never waits
 * for much of retentiond's WAL to reach disk (busy.h), and the pages the
 * batches write out go to disk as they do (db_flush_writes).
 */
enum rule_outcome
driver_run(const struct driver_ctx *d, struct plan *rs, size_t ti,
	   const char *cutoff, const char *detail, double rule_deadline,
	   struct driver_totals *tot, char **message)
{
	const struct rule *r = rs->rule;
	const char *tname = rs->targets[ti].name;
	double target = (double)duration_ms(&r->limits.batch_target);
	struct driver_config dc = {
		.batch_size = r->limits.batch_size,
		.target_ms = target,
		.busy_target_ms = (double)duration_ms(&r->limits.busy_batch_target),
		/* a commit and its round trips cost a millisecond or two
		 * whatever the batch's size: below this many rows a short
		 * target would shrink batches to single rows */
		.busy_floor = r->limits.batch_size < BUSY_MIN_ROWS
			? r->limits.batch_size : BUSY_MIN_ROWS,
		.pause_ms = (double)duration_ms(&r->limits.pause),
	};
	bool watch = dc.busy_target_ms > 0 && dc.busy_target_ms < target;
	double deadline = fmin(d->deadline_ms, rule_deadline);
	struct driver_state s = driver_start(&dc, rs->targets[ti].range.sql != NULL);
	struct busy busy = { 0 };
	char *from = xstrdup("-infinity");
	bool short_wait = false;	/* the session's lock_timeout now */
	bool told = false;		/* the log said we are gentle */
	enum rule_outcome outcome = OUTCOME_FAILED;
	char *err = NULL;

	/* A batch need not wait for its commit to reach disk: a crash can
	 * only lose a batch together with its audit row, and the next cycle
	 * redoes it. The run's own record is committed synchronously at the
	 * end, which flushes every batch before it, so no report ever counts
	 * a batch that a crash could take back. */
	bool async = db_async_commit(d->conn, true, &err);
	if (!async) {
		log_debug("rule \"%s\": synchronous_commit stays on: %s", r->name,
			  err);
		free(err);
		err = NULL;
	}
	plan_citus_pool(d->conn, rs, PLAN_CITUS_POOL);
	for (;;) {
		struct driver_event ev = { .kind = DRIVER_EV_READY };
		enum wait_result wr = wait_before_batch(d, rs, ti, deadline, &err);
		if (wr == WAIT_FAILED) {
			outcome = OUTCOME_FAILED;
			*message = xasprintf("%s: %s", tname, err);
			free(err);
			err = NULL;
			break;
		}
		ev.stop = stop_requested(d);
		ev.now_ms = wr == WAIT_GO ? monotonic_ms() : deadline;
		ev.deadline_ms = deadline;
		struct driver_decision dd = driver_step(&dc, &s, &ev);
		if (dd.action == DRIVER_FINISH) {
			outcome = dd.outcome;
			break;
		}
		bool range = dd.range;
		if (range != short_wait) {
			if (set_lock_wait(d, range)) {
				short_wait = range;
			} else {
				ev = (struct driver_event){
					.kind = DRIVER_EV_NO_LOCK_WAIT,
					.range = range };
				dd = driver_step(&dc, &s, &ev);
				s = dd.state;
				if (dd.action == DRIVER_FINISH) {
					outcome = dd.outcome;
					*message = xasprintf("%s: could not reset "
							     "lock_timeout", tname);
					break;
				}
				continue;
			}
		}
		struct batch_outcome bo;
		double t0 = monotonic_ms();
		bool ok = range
			? batch_run_range(d->conn, rs, ti, cutoff, s.limit, from,
					  d->run_id, detail, d->ahead, &bo, &err)
			: batch_run(d->conn, rs, ti, cutoff, s.limit, from,
				    d->run_id, detail, &bo, &err);
		double elapsed = monotonic_ms() - t0;
		if (!ok) {
			ev = (struct driver_event){ .kind = DRIVER_EV_FAILED,
				.range = range, .errclass = bo.errclass,
				.stop = stop_requested(d) };
			dd = driver_step(&dc, &s, &ev);
			if (dd.action == DRIVER_FINISH) {
				outcome = dd.outcome;
				if (dd.report_error)
					*message = xasprintf("%s: %s", tname, err);
				free(err);
				break;
			}
			if (dd.state.timeouts > s.timeouts)
				log_warning("rule \"%s\" (%s): batch hit "
					    "statement_timeout; retrying with "
					    "%lld rows", r->name, tname,
					    dd.state.limit);
			else if (dd.state.by_row_once)
				log_debug("rule \"%s\" (%s): %s; redoing the "
					  "batch row by row", r->name, tname, err);
			free(err);
			err = NULL;
			s = dd.state;
			continue;
		}
		if (range && bo.tied) {
			free(bo.last_age);
			ev = (struct driver_event){ .kind = DRIVER_EV_TIED };
			s = driver_step(&dc, &s, &ev).state;
			continue;
		}
		if (bo.changed > 0)
			tot->batches++;
		tot->changed += bo.changed;
		if (elapsed > tot->longest_batch_ms)
			tot->longest_batch_ms = elapsed;
		if (d->hooks && d->hooks->progress)
			d->hooks->progress(d->hooks->arg, r, tot->changed);
		log_debug("rule \"%s\" (%s): batch of %lld %s picked %lld, "
			  "changed %lld in %.1f ms", r->name, tname, s.limit,
			  !range ? "by row" : bo.ahead ? "by age (bound read ahead)"
			  : "by age", bo.picked, bo.changed, elapsed);
		if ((rs->ordered || rs->citus) && bo.last_age) {
			free(from);
			from = bo.last_age;
		} else {
			free(bo.last_age);
		}
		ev = (struct driver_event){ .kind = DRIVER_EV_BATCH,
			.elapsed_ms = elapsed, .last = bo.last,
			.rows = bo.picked < s.limit ? bo.picked : 0 };
		dd = driver_step(&dc, &s, &ev);
		s = dd.state;
		if (dd.action == DRIVER_FINISH) {
			outcome = dd.outcome;
			break;
		}
		ev = (struct driver_event){ .kind = DRIVER_EV_PAUSED,
			.busy = pause_and_watch(d, dd.pause_ms, &busy, watch,
						rule_deadline) };
		dd = driver_step(&dc, &s, &ev);
		s = dd.state;
		if (dd.gentle_changed)
			async = switch_gentle(d, rs, ti, s.gentle, async, &told);
	}
	/* a bound still being read ahead is for a batch that will not run */
	if (d->ahead)
		ahead_drop(d->ahead);
	if (short_wait)
		(void)set_lock_wait(d, false);
	if (s.gentle)
		flush_writes(d, r, false);
	if (async && !db_async_commit(d->conn, false, &err)) {
		log_warning("rule \"%s\": could not reset synchronous_commit: %s",
			    r->name, err);
		free(err);
	}
	free(from);
	return outcome;
}
