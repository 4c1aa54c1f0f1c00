/* driver: the batch loop's decisions (driver_step), table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "driver.h"

static const struct driver_config dc = {
	.batch_size = 1000,
	.target_ms = 200,
	.busy_target_ms = 20,
	.busy_floor = 500,
	.pause_ms = 50,
};

struct adapt_case {
	long long limit;
	double elapsed, target;
	long long first, floor;
	long long want;
};

static void
test_adapt(void **state)
{
	static const struct adapt_case cases[] = {
		/* on target: unchanged */
		{ 1000, 200, 200, 1000, 1, 1000 },
		/* toward the target, linearly within the factor of two */
		{ 1000, 400, 200, 1000, 1, 500 },
		{ 1000, 160, 200, 1000, 1, 1250 },
		{ 1000, 100, 200, 1000, 1, 2000 },
		{ 1000, 80, 200, 1000, 1, 2500 },
		/* at most x4 per step however fast */
		{ 1000, 40, 200, 1000, 1, 4000 },
		{ 1000, 10, 200, 1000, 1, 4000 },
		{ 1000, 0, 200, 1000, 1, 4000 },
		/* at most /2 per step however slow */
		{ 1000, 100000, 200, 1000, 1, 500 },
		/* never above ten times the first batch */
		{ 3000, 10, 200, 1000, 1, 10000 },
		{ 10000, 10, 200, 1000, 1, 10000 },
		{ 10000, 400, 200, 1000, 1, 5000 },
		/* never below the floor */
		{ 600, 100000, 200, 1000, 500, 500 },
		{ 1, 100000, 200, 1000, 1, 1 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct adapt_case *c = &cases[i];
		long long got = driver_adapt(c->limit, c->elapsed, c->target,
					     c->first, c->floor);
		if (got != c->want)
			fail_msg("case %zu: adapt(%lld, %.0f ms) = %lld, want %lld",
				 i, c->limit, c->elapsed, got, c->want);
	}
}

static struct driver_decision
step(const struct driver_state *s, struct driver_event e)
{
	return driver_step(&dc, s, &e);
}

static void
test_ready(void **state)
{
	struct driver_state s = driver_start(&dc, true);
	struct driver_decision d;
	(void)state;

	assert_int_equal(s.limit, 1000);
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_READY,
					   .now_ms = 10, .deadline_ms = 100 });
	assert_int_equal(d.action, DRIVER_RUN);
	assert_true(d.range);
	/* stop first, whatever the time */
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_READY,
		 .stop = true, .now_ms = 500, .deadline_ms = 100 });
	assert_int_equal(d.action, DRIVER_FINISH);
	assert_int_equal(d.outcome, OUTCOME_STOPPED);
	/* max_runtime reached: exactly at the deadline too */
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_READY,
		 .now_ms = 100, .deadline_ms = 100 });
	assert_int_equal(d.action, DRIVER_FINISH);
	assert_int_equal(d.outcome, OUTCOME_TIME);
	assert_false(d.report_error);
	/* a target without range statements goes by row */
	s = driver_start(&dc, false);
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_READY,
		 .now_ms = 10, .deadline_ms = 100 });
	assert_int_equal(d.action, DRIVER_RUN);
	assert_false(d.range);
}

struct fail_case {
	const char *what;
	struct driver_state s;
	struct driver_event e;
	enum driver_action action;
	enum rule_outcome outcome;	/* when FINISH */
	long long limit;		/* the state's after */
	bool by_row_once;
	bool report;
};

#define FAILED(cls, rng, stp) { .kind = DRIVER_EV_FAILED, .errclass = (cls), \
				.range = (rng), .stop = (stp) }

static void
test_failures(void **state)
{
	static const struct fail_case cases[] = {
		{ "lock on a range batch: redo it by row",
		  { .limit = 1000, .by_range = true },
		  FAILED(DBERR_LOCK_NOT_AVAILABLE, true, false),
		  DRIVER_NEXT, 0, 1000, true, false },
		{ "deadlock on a range batch: redo it by row",
		  { .limit = 1000, .by_range = true },
		  FAILED(DBERR_DEADLOCK, true, false),
		  DRIVER_NEXT, 0, 1000, true, false },
		{ "lock on the by-row redo: locked, next cycle",
		  { .limit = 1000, .by_range = true, .by_row_once = true },
		  FAILED(DBERR_LOCK_NOT_AVAILABLE, false, false),
		  DRIVER_FINISH, OUTCOME_LOCKED, 1000, true, true },
		{ "deadlock by row: locked",
		  { .limit = 1000 },
		  FAILED(DBERR_DEADLOCK, false, false),
		  DRIVER_FINISH, OUTCOME_LOCKED, 1000, false, true },
		{ "statement timeout: a quarter of the rows",
		  { .limit = 1000 },
		  FAILED(DBERR_QUERY_CANCELED, false, false),
		  DRIVER_NEXT, 0, 250, false, false },
		{ "statement timeout, fourth retry still allowed",
		  { .limit = 16, .timeouts = 3 },
		  FAILED(DBERR_QUERY_CANCELED, true, false),
		  DRIVER_NEXT, 0, 4, false, false },
		{ "statement timeout, never below one row",
		  { .limit = 3 },
		  FAILED(DBERR_QUERY_CANCELED, false, false),
		  DRIVER_NEXT, 0, 1, false, false },
		{ "statement timeout after four retries: failed",
		  { .limit = 1000, .timeouts = 4 },
		  FAILED(DBERR_QUERY_CANCELED, false, false),
		  DRIVER_FINISH, OUTCOME_FAILED, 1000, false, true },
		{ "statement timeout on a single row: failed",
		  { .limit = 1 },
		  FAILED(DBERR_QUERY_CANCELED, false, false),
		  DRIVER_FINISH, OUTCOME_FAILED, 1, false, true },
		{ "cancelled by a stop: stopped, not failed",
		  { .limit = 1000 },
		  FAILED(DBERR_QUERY_CANCELED, false, true),
		  DRIVER_FINISH, OUTCOME_STOPPED, 1000, false, false },
		{ "foreign key race: retry",
		  { .limit = 1000, .races = 2 },
		  FAILED(DBERR_FK_VIOLATION, false, false),
		  DRIVER_NEXT, 0, 1000, false, false },
		{ "foreign key race, a fourth time: failed",
		  { .limit = 1000, .races = 3 },
		  FAILED(DBERR_FK_VIOLATION, false, false),
		  DRIVER_FINISH, OUTCOME_FAILED, 1000, false, true },
		{ "anything else: failed",
		  { .limit = 1000, .by_range = true },
		  FAILED(DBERR_OTHER, true, false),
		  DRIVER_FINISH, OUTCOME_FAILED, 1000, false, true },
		{ "a lost connection: failed",
		  { .limit = 1000 },
		  FAILED(DBERR_CONNECTION, false, false),
		  DRIVER_FINISH, OUTCOME_FAILED, 1000, false, true },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct fail_case *c = &cases[i];
		struct driver_decision d = step(&c->s, c->e);
		if (d.action != c->action ||
		    (c->action == DRIVER_FINISH && d.outcome != c->outcome) ||
		    d.state.limit != c->limit ||
		    d.state.by_row_once != c->by_row_once ||
		    (c->action == DRIVER_FINISH && d.report_error != c->report))
			fail_msg("%s: action %d outcome %d limit %lld by_row %d "
				 "report %d", c->what, d.action, d.outcome,
				 d.state.limit, d.state.by_row_once,
				 d.report_error);
	}
}

static void
test_timeout_backoff_sequence(void **state)
{
	struct driver_state s = driver_start(&dc, false);
	long long want[] = { 250, 62, 15, 3 };
	(void)state;
	for (int i = 0; i < 4; i++) {
		struct driver_decision d = step(&s, (struct driver_event)
			FAILED(DBERR_QUERY_CANCELED, false, false));
		assert_int_equal(d.action, DRIVER_NEXT);
		assert_int_equal(d.state.limit, want[i]);
		s = d.state;
	}
	struct driver_decision d = step(&s, (struct driver_event)
		FAILED(DBERR_QUERY_CANCELED, false, false));
	assert_int_equal(d.action, DRIVER_FINISH);
	assert_int_equal(d.outcome, OUTCOME_FAILED);
	/* a batch that goes through starts the count afresh */
	s.timeouts = 4;
	s.races = 2;
	s.by_row_once = true;
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_BATCH,
					   .elapsed_ms = 200 });
	assert_int_equal(d.state.timeouts, 0);
	assert_int_equal(d.state.races, 0);
	assert_false(d.state.by_row_once);
}

static void
test_batches(void **state)
{
	struct driver_state s = driver_start(&dc, true);
	struct driver_decision d;
	(void)state;

	/* a tied range batch is taken by row, then range again */
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_TIED });
	assert_int_equal(d.action, DRIVER_NEXT);
	assert_true(d.state.by_row_once);
	s = d.state;
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_READY,
					   .deadline_ms = 1 });
	assert_false(d.range);
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_BATCH,
					   .elapsed_ms = 100 });
	assert_int_equal(d.action, DRIVER_PAUSE);
	assert_int_equal(d.state.limit, 2000);
	/* alone: the configured pause */
	assert_true(d.pause_ms == 50);
	s = d.state;
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_READY,
					   .deadline_ms = 1 });
	assert_true(d.range);
	/* the last batch ends the target */
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_BATCH,
					   .elapsed_ms = 100, .last = true });
	assert_int_equal(d.action, DRIVER_FINISH);
	assert_int_equal(d.outcome, OUTCOME_DONE);
	/* lock_timeout cannot be shortened: by row from now on */
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_NO_LOCK_WAIT,
					   .range = true });
	assert_int_equal(d.action, DRIVER_NEXT);
	assert_false(d.state.by_range);
	/* ... nor set back: failed */
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_NO_LOCK_WAIT });
	assert_int_equal(d.action, DRIVER_FINISH);
	assert_int_equal(d.outcome, OUTCOME_FAILED);
}

/* A batch whose bound was read ahead took fewer rows than the state's
 * limit (it was read while the limit was still growing): the next size
 * comes from the rows it really took, or a fast small batch would look
 * like a fast big one and the next batch could overshoot batch_target. */
static void
test_batch_read_ahead_adapts_from_its_rows(void **state)
{
	struct driver_state s = driver_start(&dc, true);
	struct driver_decision d;
	(void)state;

	s.limit = 4000;
	/* 1000 rows in 100 ms of a 200 ms target: 2000 next, not 8000 */
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_BATCH,
					   .elapsed_ms = 100, .rows = 1000 });
	assert_int_equal(d.action, DRIVER_PAUSE);
	assert_int_equal(d.state.limit, 2000);
	/* rows 0 (the batch took its limit): from the limit */
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_BATCH,
					   .elapsed_ms = 400 });
	assert_int_equal(d.state.limit, 2000);
	/* rows past the limit never raise the base */
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_BATCH,
					   .elapsed_ms = 400, .rows = 9000 });
	assert_int_equal(d.state.limit, 2000);
}

static void
test_busy_switching(void **state)
{
	struct driver_state s = driver_start(&dc, true);
	struct driver_decision d;
	(void)state;

	/* quiet: nothing changes */
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_PAUSED });
	assert_false(d.gentle_changed);
	assert_int_equal(d.state.limit, 1000);
	/* others write: gentle, the batch scaled to the busy target but
	 * not below the floor */
	s.limit = 8000;
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_PAUSED,
					   .busy = true });
	assert_true(d.gentle_changed);
	assert_true(d.state.gentle);
	assert_int_equal(d.state.limit, 800);
	s.limit = 1000;
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_PAUSED,
					   .busy = true });
	assert_int_equal(d.state.limit, 500);
	s = d.state;
	/* still busy: no switch again */
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_PAUSED,
					   .busy = true });
	assert_false(d.gentle_changed);
	/* while gentle, batches aim for the busy target, floored */
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_BATCH,
					   .elapsed_ms = 40 });
	assert_int_equal(d.state.limit, 500);
	/* ... and pause as configured: the admin's pause is a promise */
	assert_int_equal(d.action, DRIVER_PAUSE);
	assert_true(d.pause_ms == 50);
	s.limit = 2000;
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_BATCH,
					   .elapsed_ms = 40 });
	assert_int_equal(d.state.limit, 1000);
	/* quiet again: back, the size grows from there */
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_PAUSED });
	assert_true(d.gentle_changed);
	assert_false(d.state.gentle);
	assert_int_equal(d.state.limit, 2000);
	s = d.state;
	d = step(&s, (struct driver_event){ .kind = DRIVER_EV_BATCH,
					   .elapsed_ms = 40 });
	assert_true(d.pause_ms == 50);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adapt),
		cmocka_unit_test(test_ready),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_timeout_backoff_sequence),
		cmocka_unit_test(test_batches),
		cmocka_unit_test(test_batch_read_ahead_adapts_from_its_rows),
		cmocka_unit_test(test_busy_switching),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
