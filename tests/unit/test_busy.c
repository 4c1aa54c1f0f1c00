/* busy: when other sessions' WAL makes retentiond gentle, and for how long. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "busy.h"

static void
test_alone_is_never_busy(void **state)
{
	struct busy b = { 0 };
	(void)state;
	assert_false(busy_now(&b, 0));
	/* nothing, and the server's own small records, are not others' work */
	assert_false(busy_observe(&b, 0, 10));
	assert_false(busy_observe(&b, 90, 20));
	assert_false(busy_observe(&b, BUSY_WAL_BYTES, 30));
	assert_false(busy_now(&b, 1e9));
}

static void
test_others_writing_makes_it_busy_for_the_hold(void **state)
{
	struct busy b = { 0 };
	(void)state;
	assert_true(busy_observe(&b, BUSY_WAL_BYTES + 1, 1000));
	/* quiet pauses within the hold do not end it */
	assert_true(busy_observe(&b, 0, 1500));
	assert_true(busy_now(&b, 1000 + BUSY_HOLD_MS - 1));
	assert_false(busy_now(&b, 1000 + BUSY_HOLD_MS));
}

static void
test_each_sighting_extends_the_hold(void **state)
{
	struct busy b = { 0 };
	(void)state;
	assert_true(busy_observe(&b, 5000, 0));
	assert_true(busy_observe(&b, 5000, BUSY_HOLD_MS - 100));
	assert_true(busy_now(&b, 2 * BUSY_HOLD_MS - 101));
	assert_false(busy_now(&b, 2 * BUSY_HOLD_MS - 100));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alone_is_never_busy),
		cmocka_unit_test(test_others_writing_makes_it_busy_for_the_hold),
		cmocka_unit_test(test_each_sighting_extends_the_hold),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
