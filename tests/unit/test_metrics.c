/* metrics: the Prometheus text file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics.h"

static char *
escaped(const char *v)
{
	struct strbuf b = STRBUF_INIT;
	metrics_escape_label(&b, v);
	return sb_take(&b);
}

static void
test_label_values_are_escaped(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "invoices", "invoices" },
		{ "", "" },
		{ "a\"b", "a\\\"b" },
		{ "back\\slash", "back\\\\slash" },
		{ "two\nlines", "two\\nlines" },
		{ "\\\"\n", "\\\\\\\"\\n" },
		{ "tab\tstays", "tab\tstays" },		/* only the three */
		{ "k\xc3\xa4ufer", "k\xc3\xa4ufer" },	/* UTF-8 as is */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = escaped(cases[i].in);
		assert_string_equal(s, cases[i].out);
		free(s);
	}
	char *s = escaped(NULL);
	assert_string_equal(s, "");
	free(s);
}

static void
test_render_has_every_metric(void **state)
{
	struct rule rules[2];
	struct rule_result rr[2];
	/* writable copies: the structs hold char *, not const char * */
	char r0[] = "events", r1[] = "line\nbreak";
	char t0[] = "events", a0[] = "delete";
	char t1[] = "odd \"name\"", a1[] = "erasure";
	struct metrics_total totals[2] = {
		{ t0, a0, 1234 },
		{ t1, a1, 5 },
	};
	struct metrics_db db = {
		.last_success = 1700000000.5,
		.erasure_pending = 3,
		.erasure_overdue = 1,
		.access_pending = 4,
		.access_overdue = 6,
		.access_due_soon = 5,
		.holds_active = 2,
		.totals = totals,
		.n_totals = 2,
	};
	struct run_result res;
	struct strbuf b = STRBUF_INIT;

	(void)state;
	memset(rules, 0, sizeof(rules));
	memset(rr, 0, sizeof(rr));
	memset(&res, 0, sizeof(res));
	rules[0].name = r0;
	rules[0].action = ACTION_DELETE;
	rules[1].name = r1;
	rules[1].action = ACTION_DEIDENTIFY;
	rr[0] = (struct rule_result){ .rule = &rules[0], .outcome = OUTCOME_DONE,
				      .changed = 40, .overdue = 0 };
	rr[1] = (struct rule_result){ .rule = &rules[1], .outcome = OUTCOME_FAILED,
				      .changed = 0, .overdue = -1 };
	res.status = RUN_PARTIAL;
	res.rules = rr;
	res.n_rules = 2;
	res.seconds = 2.5;

	metrics_render(&b, &res, &db, 1700000100.25);
	const char *want[] = {
		"# TYPE retentiond_rows_changed gauge\n",
		"retentiond_rows_changed{rule=\"events\",action=\"delete\"} 40\n",
		"retentiond_rows_changed{rule=\"line\\nbreak\",action=\"deidentify\"} 0\n",
		"retentiond_rows_overdue{rule=\"events\"} 0\n",
		"# TYPE retentiond_rows_changed_total counter\n",
		"retentiond_rows_changed_total{rule=\"events\",action=\"delete\"} 1234\n",
		"retentiond_rows_changed_total{rule=\"odd \\\"name\\\"\",action=\"erasure\"} 5\n",
		"retentiond_last_cycle_timestamp_seconds 1700000100.250\n",
		"retentiond_last_cycle_success 0\n",
		"retentiond_last_success_timestamp_seconds 1700000000.500\n",
		"retentiond_cycle_duration_seconds 2.500\n",
		"retentiond_rules_failing 1\n",
		"retentiond_erasure_requests{state=\"pending\"} 3\n",
		"retentiond_erasure_requests{state=\"overdue\"} 1\n",
		"# TYPE retentiond_access_requests gauge\n",
		"retentiond_access_requests{state=\"pending\"} 4\n",
		"retentiond_access_requests{state=\"overdue\"} 6\n",
		"# TYPE retentiond_access_requests_due_soon gauge\n",
		"retentiond_access_requests_due_soon 5\n",
		"retentiond_legal_holds_active 2\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (!strstr(b.s, want[i]))
			fail_msg("missing %s in:\n%s", want[i], b.s);
	}
	/* an unknown overdue count is left out, not written as -1 */
	assert_null(strstr(b.s, "rule=\"line\\nbreak\"} -1"));
	/* every line is a comment or NAME{...} VALUE: no raw newline in a label */
	for (char *line = b.s; *line;) {
		char *nl = strchr(line, '\n');
		assert_non_null(nl);
		if (line[0] != '#')
			assert_true(strncmp(line, "retentiond_", 11) == 0);
		line = nl + 1;
	}
	sb_free(&b);
}

/* The numbers doc/prometheus/retentiond.rules.yml alerts on. */
static void
test_render_has_what_the_alerts_need(void **state)
{
	struct rule rules[2];
	struct rule_result rr[2];
	char r0[] = "ok-rule", r1[] = "late-rule";
	struct metrics_db db = {
		.erasure_due_soon = 4,
		.audit = METRICS_AUDIT_BROKEN,
		.outbox_unsent = 2,
		.outbox_oldest_s = 7200.5,
		.interval_s = 3600,
	};
	struct run_result res;
	struct strbuf b = STRBUF_INIT;

	(void)state;
	memset(rules, 0, sizeof(rules));
	memset(&res, 0, sizeof(res));
	rules[0].name = r0;
	rules[1].name = r1;
	rr[0] = (struct rule_result){ .rule = &rules[0], .outcome = OUTCOME_DONE };
	rr[1] = (struct rule_result){ .rule = &rules[1], .outcome = OUTCOME_TIME,
				      .overdue = 12 };
	res.status = RUN_OK;
	res.rules = rr;
	res.n_rules = 2;

	metrics_render(&b, &res, &db, 1700000100.25);
	const char *want[] = {
		"# TYPE retentiond_schedule_interval_seconds gauge\n",
		"retentiond_schedule_interval_seconds 3600.000\n",
		"# TYPE retentiond_rule_compliant gauge\n",
		"retentiond_rule_compliant{rule=\"ok-rule\"} 1\n",
		"retentiond_rule_compliant{rule=\"late-rule\"} 0\n",
		"retentiond_erasure_requests_due_soon 4\n",
		"# TYPE retentiond_audit_chain_ok gauge\n",
		"retentiond_audit_chain_ok 0\n",
		"retentiond_outbox_unsent 2\n",
		"retentiond_outbox_oldest_unsent_age_seconds 7200.500\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!strstr(b.s, want[i]))
			fail_msg("missing %s in:\n%s", want[i], b.s);
	sb_free(&b);

	/* intact is 1; unknown chain and unset interval are left out, since
	 * a made-up 0 would fire (or silence) an alert */
	db.audit = METRICS_AUDIT_INTACT;
	metrics_render(&b, &res, &db, 1700000100.25);
	assert_non_null(strstr(b.s, "retentiond_audit_chain_ok 1\n"));
	sb_free(&b);
	db.audit = METRICS_AUDIT_UNKNOWN;
	db.interval_s = 0;
	metrics_render(&b, &res, &db, 1700000100.25);
	assert_null(strstr(b.s, "retentiond_audit_chain_ok"));
	assert_null(strstr(b.s, "retentiond_schedule_interval_seconds"));
	sb_free(&b);
}

static void
test_file_is_replaced_atomically(void **state)
{
	char dir[] = "/tmp/rtd-metrics-XXXXXX";
	char path[64];
	char *err = NULL;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/retentiond.prom", dir);
	mode_t old = umask(077);
	assert_true(metrics_write_file(path, "a 1\n", &err));
	assert_true(metrics_write_file(path, "b 2\n", &err));
	umask(old);

	FILE *f = fopen(path, "r");
	char buf[32] = "";
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "b 2\n");
	/* readable by the collector, whatever the service's umask */
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	/* no temporary file left behind */
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	assert_int_equal(n, 1);
	unlink(path);
	rmdir(dir);

	/* a directory that does not exist: an error naming it */
	assert_false(metrics_write_file("/nonexistent/dir/x.prom", "", &err));
	assert_non_null(strstr(err, "/nonexistent/dir"));
	free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_values_are_escaped),
		cmocka_unit_test(test_render_has_every_metric),
		cmocka_unit_test(test_render_has_what_the_alerts_need),
		cmocka_unit_test(test_file_is_replaced_atomically),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
