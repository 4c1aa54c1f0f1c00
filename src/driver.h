/*
 * driver: the one batch loop. Expiry and erasure (and, later, access
 * exports) run their batches through it, so max_runtime, stop requests,
 * pauses, the statement-timeout back-off, lock handling and busy
 * detection hold for all of them alike.
 *
 * The decisions are a pure step function (driver_step): given the state
 * and what just happened, what to do next. driver_run only does the I/O
 * around it: run a batch, pause, watch the WAL, set session settings.
 */
#ifndef RETENTIOND_DRIVER_H
#define RETENTIOND_DRIVER_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "batch.h"
#include "config.h"
#include "db.h"
#include "engine.h"

/* How often a batch that hit statement_timeout is retried, each time with
 * a quarter of the rows, before the target counts as failed. */
#define DRIVER_TIMEOUT_RETRIES 4
/* How often a batch is retried after a row it picked was referenced by a
 * new row in between (a foreign key violation). */
#define DRIVER_FK_RETRIES 3
/* How long a range batch may wait for a row lock someone else holds
 * before it gives up and the batch is redone skipping that row. */
#define DRIVER_ROW_LOCK_WAIT_MS 10
/* A batch grows by at most this factor on its way to batch_target, and to
 * at most DRIVER_CEILING times batch_size: bigger batches measured no
 * faster per row (bench/README.md, issue 20), and they hold their locks
 * longer. */
#define DRIVER_GROWTH 4
#define DRIVER_CEILING 10

/* What stays fixed while one target is worked through. */
struct driver_config {
	long long batch_size;	/* the first batch; DRIVER_CEILING x at most */
	double target_ms;	/* batch_target */
	double busy_target_ms;	/* busy_batch_target, while others write */
	long long busy_floor;	/* fewest rows per batch while gentle */
	double pause_ms;	/* pause */
};

struct driver_state {
	long long limit;	/* rows in the next batch */
	int timeouts;		/* statement timeouts in a row */
	int races;		/* foreign key races in a row */
	bool by_range;		/* the target has range batches */
	bool by_row_once;	/* redo the next batch row by row */
	bool gentle;		/* others write: short, flushed batches */
};

enum driver_event_kind {
	DRIVER_EV_READY,	/* about to run a batch */
	DRIVER_EV_BATCH,	/* a batch committed */
	DRIVER_EV_TIED,		/* a range batch found LIMIT rows of one age */
	DRIVER_EV_FAILED,	/* a batch failed; nothing was changed */
	DRIVER_EV_PAUSED,	/* the pause after a batch is over */
	DRIVER_EV_NO_LOCK_WAIT	/* lock_timeout could not be set */
};

struct driver_event {
	enum driver_event_kind kind;
	bool stop;		/* a stop was requested */
	double now_ms;		/* READY: monotonic now */
	double deadline_ms;	/* READY: the earlier of cycle and rule */
	bool range;		/* BATCH, FAILED, NO_LOCK_WAIT: by range */
	enum db_errclass errclass;	/* FAILED */
	double elapsed_ms;	/* BATCH */
	long long rows;		/* BATCH: rows it took, when fewer than the
				 * state's limit (a bound read ahead); else 0 */
	bool last;		/* BATCH: nothing due is left */
	bool busy;		/* PAUSED: others write WAL */
};

enum driver_action {
	DRIVER_RUN,		/* run a batch: range or by row, state.limit */
	DRIVER_NEXT,		/* go on (READY again) */
	DRIVER_PAUSE,		/* pause, watch, then PAUSED */
	DRIVER_FINISH		/* the target is over: outcome */
};

struct driver_decision {
	enum driver_action action;
	struct driver_state state;
	bool range;		/* RUN: by age range, else by row */
	double pause_ms;	/* PAUSE: how long */
	bool gentle_changed;	/* PAUSED: switch the commit mode */
	bool report_error;	/* FINISH: the failure's message matters */
	enum rule_outcome outcome;	/* FINISH */
};

/* The first state for a target. */
struct driver_state driver_start(const struct driver_config *dc, bool by_range);

/* The next step. Pure: no I/O, no clock. */
struct driver_decision driver_step(const struct driver_config *dc,
				   const struct driver_state *s,
				   const struct driver_event *e);

/* Next batch size: aim for TARGET_MS, growing by at most DRIVER_GROWTH and
 * shrinking by at most half per batch; at most DRIVER_CEILING x FIRST, at
 * least FLOOR. */
long long driver_adapt(long long limit, double elapsed_ms, double target_ms,
		       long long first, long long floor);

struct driver_hooks {
	bool (*should_stop)(void *arg);
	/* progress: CHANGED rows so far for the rule */
	void (*progress)(void *arg, const struct rule *r, long long changed);
	/* Before every batch: how many ms to wait before asking again (0:
	 * go on; < 0: the rule fails, *err says why). The seam for what
	 * must hold before a batch runs (a standby's replay lag). NULL:
	 * never wait. */
	double (*before_batch)(void *arg, const struct plan *rs,
			       size_t target, char **err);
	void *arg;
};

struct ahead;

struct driver_ctx {
	PGconn *conn;
	struct ahead *ahead;	/* range batches read their bounds ahead on
				 * it (ahead.h); NULL: on conn */
	const struct config *cfg;
	long long run_id;
	double deadline_ms;	/* monotonic: the cycle's max_runtime */
	const struct driver_hooks *hooks;
};

struct driver_totals {
	long long changed;
	long long batches;
	double longest_batch_ms;
};

/*
 * Work through target TI of RS until nothing is due, or time, a stop or an
 * error ends it; add what was done to *TOT. CUTOFF: NULL for an erasure;
 * DETAIL: the audit rows' detail (JSON) or NULL. Returns the outcome and,
 * for LOCKED and FAILED, *message (malloc'd, naming the target).
 */
enum rule_outcome driver_run(const struct driver_ctx *d, struct plan *rs,
			     size_t ti, const char *cutoff, const char *detail,
			     double rule_deadline, struct driver_totals *tot,
			     char **message);

#endif
