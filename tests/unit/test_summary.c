/* summary: the engine's runs.summary carries every key the report reads
 * back (report_load.c refuses a rule without one), each with its value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "summary.h"

/* "KEY": VALUE must stand in JSON exactly so. */
static void
has(const char *json, const char *key, const char *value)
{
	char want[256];
	snprintf(want, sizeof(want), "\"%s\": %s", key, value);
	if (!strstr(json, want))
		fail_msg("%s not in %s", want, json);
}

static void
test_every_key_the_report_reads_is_written(void **state)
{
	char name[] = "invoices", policy[] = "Ten years (HGB 257)",
	     schema[] = "billing", cutoff[] = "2016-12-06 02:00:00+00",
	     oldest[] = "2015-01-01", message[] = "a note";
	struct rule rule = {
		.name = name, .policy = policy, .schema = schema, .table = name,
		.action = ACTION_DEIDENTIFY,
	};
	struct rule_result rr = {
		.rule = &rule, .outcome = OUTCOME_TIME,
		.cutoff = cutoff, .eligible = 1001,
		.held = 1002, .blocked = 1003, .table_rows = 1004,
		.overdue = 1005, .changed = 1006, .partitions = 1007,
		.batches = 1008, .longest_batch_ms = 12.5,
		.oldest = oldest, .message = message,
	};
	struct run_result res = { .rules = &rr, .n_rules = 1, .changed = 1006 };
	const char *err = NULL;
	(void)state;

	assert_true(duration_parse("10 years", &rule.retain, &err));
	char *json = summary_json(&res);

	/* every key of SUMMARY_RULE_KEYS, with its value */
#define CHECK_PRESENT(k) \
	if (!strstr(json, "\"" k "\": ")) \
		fail_msg("key %s missing from %s", k, json);
	SUMMARY_RULE_KEYS(CHECK_PRESENT)
#undef CHECK_PRESENT
	has(json, SUMMARY_RULE, "\"invoices\"");
	has(json, SUMMARY_POLICY, "\"Ten years (HGB 257)\"");
	has(json, SUMMARY_TABLE, "\"billing.invoices\"");
	has(json, SUMMARY_ACTION, "\"deidentify\"");
	has(json, SUMMARY_RETAIN, "\"10 years\"");
	has(json, SUMMARY_OUTCOME, "\"max_runtime reached\"");
	has(json, SUMMARY_CUTOFF, "\"2016-12-06 02:00:00+00\"");
	has(json, SUMMARY_OLDEST, "\"2015-01-01\"");
	has(json, SUMMARY_MESSAGE, "\"a note\"");
	has(json, SUMMARY_ELIGIBLE, "1001");
	has(json, SUMMARY_HELD, "1002");
	has(json, SUMMARY_BLOCKED, "1003");
	has(json, SUMMARY_TABLE_ROWS, "1004");
	has(json, SUMMARY_OVERDUE, "1005");
	has(json, SUMMARY_CHANGED, "1006");
	has(json, SUMMARY_PARTITIONS, "1007");
	has(json, SUMMARY_BATCHES, "1008");
	has(json, SUMMARY_LONGEST_BATCH_MS, "12.5");
	/* overdue rows: not compliant */
	has(json, SUMMARY_COMPLIANT, "false");
	free(json);

	/* nothing overdue, not failed: compliant; NULLs are null */
	rr.overdue = 0;
	rr.oldest = NULL;
	rr.message = NULL;
	json = summary_json(&res);
	has(json, SUMMARY_COMPLIANT, "true");
	has(json, SUMMARY_OLDEST, "null");
	has(json, SUMMARY_MESSAGE, "null");
	free(json);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_key_the_report_reads_is_written),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
