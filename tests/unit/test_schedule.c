/* schedule: the window, the next cycle, the reconnect backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "schedule.h"

#define HM(h, m) ((long)(h) * 3600 + (long)(m) * 60)
#define MIN(h, m) ((h) * 60 + (m))

static void
test_window_within_a_day(void **state)
{
	struct schedule_window w = { true, MIN(1, 0), MIN(5, 0) };	/* 01:00-05:00 */
	static const struct {
		long sec;
		bool open;
	} cases[] = {
		{ HM(0, 0), false },
		{ HM(0, 59) + 59, false },
		{ HM(1, 0), true },		/* the start minute is in */
		{ HM(3, 30), true },
		{ HM(4, 59) + 59, true },
		{ HM(5, 0), false },		/* the end minute is out */
		{ HM(23, 59), false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(schedule_in_window(&w, cases[i].sec), cases[i].open);
}

static void
test_window_spanning_midnight(void **state)
{
	struct schedule_window w = { true, MIN(22, 0), MIN(2, 0) };	/* 22:00-02:00 */
	static const struct {
		long sec;
		bool open;
	} cases[] = {
		{ HM(21, 59), false },
		{ HM(22, 0), true },
		{ HM(23, 59) + 59, true },
		{ HM(0, 0), true },
		{ HM(1, 59), true },
		{ HM(2, 0), false },
		{ HM(12, 0), false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(schedule_in_window(&w, cases[i].sec), cases[i].open);
}

static void
test_no_window_is_always_open(void **state)
{
	struct schedule_window none = { false, 0, 0 };

	(void)state;
	for (long s = 0; s < SCHEDULE_SECONDS_PER_DAY; s += 599) {
		assert_true(schedule_in_window(&none, s));
		assert_int_equal(schedule_until_window(&none, s), 0);
	}
}

static void
test_until_window_counts_to_the_next_opening(void **state)
{
	struct schedule_window night = { true, MIN(1, 0), MIN(5, 0) };
	struct schedule_window span = { true, MIN(22, 0), MIN(2, 0) };

	(void)state;
	assert_int_equal(schedule_until_window(&night, HM(0, 30)), 30 * 60);
	assert_int_equal(schedule_until_window(&night, HM(3, 0)), 0);
	/* just closed: the next opening is tomorrow */
	assert_int_equal(schedule_until_window(&night, HM(5, 0)), 20 * 3600);
	assert_int_equal(schedule_until_window(&night, HM(23, 0)), 2 * 3600);
	assert_int_equal(schedule_until_window(&span, HM(2, 0)), 20 * 3600);
	assert_int_equal(schedule_until_window(&span, HM(21, 59) + 30), 30);
	assert_int_equal(schedule_until_window(&span, HM(23, 0)), 0);
	/* out-of-range inputs wrap like times of day */
	assert_int_equal(schedule_until_window(&night, HM(24, 30)), 30 * 60);
	assert_int_equal(schedule_until_window(&night, -HM(23, 30)), 30 * 60);
}

static void
test_next_cycle_is_one_interval_after_the_last_start(void **state)
{
	const int64_t hour = 3600 * 1000;

	(void)state;
	/* start to start: a 10-minute cycle does not push the next one */
	assert_int_equal(schedule_next_due(1000, hour, 1000 + 600000), 1000 + hour);
	/* a cycle longer than the interval: the next starts at once, and a
	 * missed slot is not made up with a burst */
	assert_int_equal(schedule_next_due(0, hour, 3 * hour + 5), 3 * hour + 5);
	assert_int_equal(schedule_next_due(0, hour, hour), hour);
}

static void
test_wait_combines_interval_and_window(void **state)
{
	struct schedule_window none = { false, 0, 0 };
	struct schedule_window night = { true, MIN(1, 0), MIN(5, 0) };
	const int64_t min = 60 * 1000;

	(void)state;
	/* no window: the interval alone */
	assert_int_equal(schedule_wait_ms(10 * min, 0, &none, HM(12, 0)), 10 * min);
	assert_int_equal(schedule_wait_ms(0, 5 * min, &none, HM(12, 0)), 0);
	/* due now, inside the window */
	assert_int_equal(schedule_wait_ms(0, 0, &night, HM(2, 0)), 0);
	/* due now, before the window: wait for 01:00 */
	assert_int_equal(schedule_wait_ms(0, 0, &night, HM(0, 40)), 20 * min);
	/* due in an hour at 04:30: that is 05:30, closed; next 01:00 */
	assert_int_equal(schedule_wait_ms(60 * min, 0, &night, HM(4, 30)),
			 60 * min + (int64_t)HM(19, 30) * 1000);
	/* due in 30 s at 00:59:45: the window opens 15 s before that */
	assert_int_equal(schedule_wait_ms(30000, 0, &night, HM(0, 59) + 45), 30000);
}

static void
test_backoff_doubles_from_one_second_to_five_minutes(void **state)
{
	static const int64_t expect[] = {
		1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000,
		300000, 300000, 300000,
	};
	int64_t cur = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
		cur = schedule_backoff_next(cur);
		assert_int_equal(cur, expect[i]);
	}
	assert_int_equal(schedule_backoff_next(-5), SCHEDULE_BACKOFF_MIN_MS);
	assert_int_equal(schedule_backoff_next(INT64_MAX), SCHEDULE_BACKOFF_MAX_MS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window_within_a_day),
		cmocka_unit_test(test_window_spanning_midnight),
		cmocka_unit_test(test_no_window_is_always_open),
		cmocka_unit_test(test_until_window_counts_to_the_next_opening),
		cmocka_unit_test(test_next_cycle_is_one_interval_after_the_last_start),
		cmocka_unit_test(test_wait_combines_interval_and_window),
		cmocka_unit_test(test_backoff_doubles_from_one_second_to_five_minutes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
