/* duration: what users may write in the config, and what PostgreSQL gets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "duration.h"

static const struct {
	const char *text;
	int64_t amount;
	enum duration_unit unit;
} good[] = {
	{"24 hours", 24, DUR_HOUR},
	{"24hours", 24, DUR_HOUR},
	{"30d", 30, DUR_DAY},
	{"7 years", 7, DUR_YEAR},
	{"1 year", 1, DUR_YEAR},
	{"200ms", 200, DUR_MILLISECOND},
	{"10 ms", 10, DUR_MILLISECOND},
	{" 5 min ", 5, DUR_MINUTE},
	{"1w", 1, DUR_WEEK},
	{"2 months", 2, DUR_MONTH},
	{"0s", 0, DUR_SECOND},
	{"3 MONTHS", 3, DUR_MONTH},
	{"1 mon", 1, DUR_MONTH},
	{"1 Hr", 1, DUR_HOUR},
	{"45 secs", 45, DUR_SECOND},
	{"5 msec", 5, DUR_MILLISECOND},
	{"2 milliseconds", 2, DUR_MILLISECOND},
	{"1 second", 1, DUR_SECOND},
	{"90 mins", 90, DUR_MINUTE},
	{"1 minute", 1, DUR_MINUTE},
	{"1 day", 1, DUR_DAY},
	{"2 week", 2, DUR_WEEK},
	{"5y", 5, DUR_YEAR},
	{"5 yr", 5, DUR_YEAR},
	{"\t12h\t", 12, DUR_HOUR},
	{"1000000000 ms", 1000000000, DUR_MILLISECOND},
};

static const struct {
	const char *text;
	const char *phrase;	/* the message must say this */
} bad[] = {
	{"", "empty"},
	{"   ", "empty"},
	{"-1d", "cannot be negative"},
	{"1.5h", "fraction"},
	{"h", "missing number"},
	{"10", "missing unit"},
	{"10 ", "missing unit"},
	{"10 fortnights", "unknown unit \"fortnights\""},
	{"10 days ago", "unexpected text after the unit: \"ago\""},
	{"10 %", "expected a unit"},
	{"99999999999999999999 s", "too large"},
	{"1000000001 s", "too large"},
	{"+5 s", "missing number"},
	{"1 h 30 min", "unexpected text"},
	{"5 seconds!", "unexpected text"},
	{"0x10 s", "unknown unit \"x\""},
	/* near misses say what to write instead */
	{"10m", "unknown unit \"m\": write \"min\" for minutes or "
		"\"month\" for months"},
	{"6 M", "unknown unit \"M\": write \"min\" for minutes or "
		"\"month\" for months"},
	{"6 mo", "unknown unit \"mo\": write \"month\" for months"},
	{"2 hrs", "unknown unit \"hrs\": write \"h\" or \"hours\""},
	{"3 wks", "unknown unit \"wks\": write \"w\" or \"weeks\""},
	{"7 yrs", "unknown unit \"yrs\": write \"y\" or \"years\""},
	{"10 us", "unknown unit \"us\": the smallest unit is \"ms\""},
	{"10 fortnights", "write \"2 weeks\" for each fortnight"},
};

/* A unit with no near miss gets no hint: a hint that guessed would be worse
 * than none. */
static void
test_no_hint_for_an_unrelated_unit(void **state)
{
	struct duration d;
	const char *err = NULL;

	(void)state;
	assert_false(duration_parse("5 parsecs", &d, &err));
	assert_string_equal(err, "unknown unit \"parsecs\"");
	assert_true(duration_parse("10 min", &d, &err));
	assert_int_equal(d.unit, DUR_MINUTE);
}

static void
test_accepts_every_documented_form(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct duration d = {-1, DUR_YEAR};
		const char *err = NULL;

		if (!duration_parse(good[i].text, &d, &err))
			fail_msg("\"%s\" refused: %s", good[i].text, err);
		if (d.amount != good[i].amount || d.unit != good[i].unit)
			fail_msg("\"%s\" parsed as %lld unit %d", good[i].text,
				 (long long)d.amount, (int)d.unit);
	}
}

static void
test_refuses_bad_forms_with_a_clear_message(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct duration d = {42, DUR_DAY};
		const char *err = NULL;

		if (duration_parse(bad[i].text, &d, &err))
			fail_msg("\"%s\" accepted", bad[i].text);
		if (!err || !strstr(err, bad[i].phrase))
			fail_msg("\"%s\": message \"%s\" lacks \"%s\"",
				 bad[i].text, err ? err : "(none)",
				 bad[i].phrase);
		/* a failed parse must leave the output alone */
		assert_int_equal(d.amount, 42);
		assert_int_equal(d.unit, DUR_DAY);
	}
}

static void
test_null_error_pointer_is_allowed(void **state)
{
	struct duration d;

	(void)state;
	assert_false(duration_parse("nonsense", &d, NULL));
	assert_false(duration_parse(NULL, &d, NULL));
}

static void
test_unknown_unit_quote_is_bounded_and_printable(void **state)
{
	struct duration d;
	const char *err = NULL;
	char text[300];

	(void)state;
	memset(text, 'z', sizeof(text) - 1);
	text[0] = '1';
	text[sizeof(text) - 1] = '\0';
	assert_false(duration_parse(text, &d, &err));
	assert_non_null(strstr(err, "unknown unit"));
	assert_true(strlen(err) < 96);

	assert_false(duration_parse("1 day\x1b[2J", &d, &err));
	assert_null(strchr(err, '\x1b'));
}

static void
test_ms_for_fixed_units_and_minus_one_for_calendar(void **state)
{
	static const struct {
		struct duration d;
		int64_t ms;
	} cases[] = {
		{{200, DUR_MILLISECOND}, 200},
		{{30, DUR_SECOND}, 30000},
		{{5, DUR_MINUTE}, 300000},
		{{24, DUR_HOUR}, 86400000},
		{{30, DUR_DAY}, 2592000000LL},
		{{2, DUR_WEEK}, 1209600000},
		{{0, DUR_SECOND}, 0},
		{{DURATION_MAX_AMOUNT, DUR_WEEK}, DURATION_MAX_AMOUNT * 604800000LL},
		{{1, DUR_MONTH}, -1},
		{{7, DUR_YEAR}, -1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(duration_ms(&cases[i].d), cases[i].ms);
}

static void
test_interval_text_is_what_postgresql_reads(void **state)
{
	static const struct {
		const char *in;
		const char *interval;
	} cases[] = {
		{"24 hours", "24 hours"},
		{"1h", "1 hour"},
		{"7 years", "7 years"},
		{"1 yr", "1 year"},
		{"200ms", "200 milliseconds"},
		{"1 ms", "1 millisecond"},
		{"30d", "30 days"},
		{"2w", "2 weeks"},
		{"1 mon", "1 month"},
		{"6 months", "6 months"},
		{"0s", "0 seconds"},
		{"15 min", "15 minutes"},
		{"1000000000 weeks", "1000000000 weeks"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct duration d;
		char buf[DURATION_TEXT_MAX];

		assert_true(duration_parse(cases[i].in, &d, NULL));
		duration_to_interval(&d, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].interval);
	}
}

static void
test_only_months_and_years_are_calendar_units(void **state)
{
	static const struct {
		const char *text;
		bool calendar;
	} cases[] = {
		{"1 month", true}, {"7 years", true}, {"1 mon", true},
		{"365 days", false}, {"52 weeks", false}, {"1 h", false},
		{"1 ms", false}, {"1 s", false}, {"1 min", false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct duration d;

		assert_true(duration_parse(cases[i].text, &d, NULL));
		if (duration_is_calendar(&d) != cases[i].calendar)
			fail_msg("\"%s\": calendar %d", cases[i].text,
				 !cases[i].calendar);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepts_every_documented_form),
		cmocka_unit_test(test_refuses_bad_forms_with_a_clear_message),
		cmocka_unit_test(test_null_error_pointer_is_allowed),
		cmocka_unit_test(test_no_hint_for_an_unrelated_unit),
		cmocka_unit_test(test_unknown_unit_quote_is_bounded_and_printable),
		cmocka_unit_test(test_ms_for_fixed_units_and_minus_one_for_calendar),
		cmocka_unit_test(test_interval_text_is_what_postgresql_reads),
		cmocka_unit_test(test_only_months_and_years_are_calendar_units),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
