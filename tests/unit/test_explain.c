/* explain: the verdict in words, and every report format carrying it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "explain.h"
#include "report.h"
#include "strbuf.h"

static struct report_rule
rule(const char *outcome, bool compliant, long long overdue)
{
	struct report_rule rr = {
		.rule = xstrdup("invoices"),
		.policy = xstrdup("7 years for financial records"),
		.table = xstrdup("billing.invoices"),
		.action = xstrdup("delete"),
		.retain = xstrdup("7 years"),
		.outcome = xstrdup(outcome),
		.cutoff = xstrdup("2019-12-06 02:06:19+00"),
		.oldest = xstrdup("2017-12-25 18:48:47+00"),
		.compliant = compliant,
		.overdue = overdue,
		.oldest_age_s = 2.8e8,
		.runs = 1,
		.last_run_id = 1,
	};
	rr.why.counted = true;
	return rr;
}

static void
free_rule(struct report_rule *rr)
{
	free(rr->rule);
	free(rr->policy);
	free(rr->table);
	free(rr->action);
	free(rr->retain);
	free(rr->outcome);
	free(rr->cutoff);
	free(rr->oldest);
	free(rr->message);
	explain_free(&rr->why);
}

/* The lines joined with " | ", so one strcmp checks them all. */
static char *
joined(const struct report_rule *rr)
{
	struct strbuf b = STRBUF_INIT;
	size_t n;
	char **lines = explain_lines(rr, &n);

	for (size_t i = 0; i < n; i++)
		sb_printf(&b, "%s%s", i ? " | " : "", lines[i]);
	explain_lines_free(lines, n);
	return sb_take(&b);
}

static void
expect(const struct report_rule *rr, const char *want)
{
	char *got = joined(rr);
	if (strcmp(got, want) != 0)
		fail_msg("got\n  %s\nwant\n  %s", got, want);
	free(got);
}

static void
test_where_keeps_old_rows_in_words(void **state)
{
	struct report_rule rr = rule("done", true, 0);

	(void)state;
	rr.why.older = 19;
	rr.why.kept_where = 19;
	rr.why.where = xstrdup("status <> 'disputed'");
	expect(&rr, "compliant: 19 rows older than 7 years are kept because "
		    "the rule only applies where status <> 'disputed'");
	rr.why.kept_where = rr.why.older = 1;
	expect(&rr, "compliant: 1 row older than 7 years is kept because "
		    "the rule only applies where status <> 'disputed'");
	free_rule(&rr);
}

static void
test_every_reason_gets_its_own_line(void **state)
{
	struct report_rule rr = rule(rule_outcome_name(OUTCOME_TIME), false, 40);

	(void)state;
	rr.why.older = 19 + 5 + 3 + 40 + 7;
	rr.why.kept_where = 19;
	rr.why.where = xstrdup("NOT fraud_review");
	rr.why.held = 5;
	rr.why.hold_ids = xstrdup("3, 7");
	rr.why.blocked = 3;
	rr.why.refs = xcalloc(2, sizeof(*rr.why.refs));
	rr.why.refs[0] = (struct report_ref){ xstrdup("shop.order_lines"), 2 };
	rr.why.refs[1] = (struct report_ref){ xstrdup("crm.tickets"), 1 };
	rr.why.n_refs = 2;
	rr.why.left = 40;
	rr.why.deidentified = 7;
	expect(&rr,
	       "OVERDUE 40: 19 rows older than 7 years are kept because the "
	       "rule only applies where NOT fraud_review"
	       " | 7 rows older than 7 years are kept de-identified: the rule "
	       "removes the personal data, not the row"
	       " | 5 rows are kept by legal holds 3, 7"
	       " | 3 rows cannot be deleted yet because rows in "
	       "shop.order_lines (2) and crm.tickets (1) still refer to them"
	       " | 40 rows are left for the next cycle: the run reached its "
	       "time limit (max_runtime)");
	free_rule(&rr);
}

static void
test_rows_left_say_why_the_run_left_them(void **state)
{
	static const struct {
		enum rule_outcome outcome;
		const char *message;
		const char *want;
	} cases[] = {
		{OUTCOME_LOCKED, NULL, "OVERDUE 2: 2 rows are left for the next "
		 "cycle: other sessions held locks (lock timeout)"},
		{OUTCOME_STOPPED, NULL, "OVERDUE 2: 2 rows are left for the next "
		 "cycle: the run was stopped"},
		{OUTCOME_FAILED, "permission denied for table invoices",
		 "OVERDUE 2: 2 rows were not changed because the rule failed: "
		 "permission denied for table invoices"},
		{OUTCOME_REFUSED, "would delete 90% of the table",
		 "OVERDUE 2: 2 rows were not changed because a safety guard "
		 "refused the rule: would delete 90% of the table"},
		{OUTCOME_DONE, NULL, "OVERDUE 2: 2 rows are due and will be changed "
		 "by the next cycle"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct report_rule rr =
			rule(rule_outcome_name(cases[i].outcome), false, 2);
		rr.why.older = rr.why.left = 2;
		rr.message = cases[i].message ? xstrdup(cases[i].message) : NULL;
		expect(&rr, cases[i].want);
		free_rule(&rr);
	}
}

static void
test_one_held_row_and_nothing_old(void **state)
{
	struct report_rule rr = rule("done", true, 0);

	(void)state;
	rr.why.older = rr.why.held = 1;
	rr.why.hold_ids = xstrdup("12");
	expect(&rr, "compliant: 1 row is kept by legal hold 12");
	rr.why.older = rr.why.held = 0;
	expect(&rr, "compliant: no row is older than 7 years");
	free_rule(&rr);
}

static void
test_uncounted_rule_says_why(void **state)
{
	struct report_rule rr = rule("done", true, 0);

	(void)state;
	rr.why.counted = false;
	expect(&rr, "compliant");
	rr.why.error = xstrdup("the rule is no longer in the config");
	expect(&rr, "compliant (why old rows remain could not be counted: "
		    "the rule is no longer in the config)");
	free_rule(&rr);
}

/* Every format carries the sentence, escaped for it. */
static void
test_every_format_carries_the_explanation(void **state)
{
	struct report r;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.rules = xcalloc(1, sizeof(*r.rules));
	r.rules[r.n_rules++] = rule("done", true, 0);
	r.rules[0].why.older = r.rules[0].why.kept_where = 19;
	r.rules[0].why.where = xstrdup("status <> 'disputed'");
	r.generated_at = xstrdup("2026-12-06 02:06:19+00");

	static const struct {
		enum report_format f;
		const char *want;
	} cases[] = {
		{REPORT_TEXT, "    why: compliant: 19 rows older than 7 years "
		 "are kept because the rule only applies where status <> "
		 "'disputed'\n"},
		{REPORT_CSV, ",compliant: 19 rows older than 7 years are kept "
		 "because the rule only applies where status <> 'disputed'\r\n"},
		{REPORT_JSON, "\"kept_by_where\": 19"},
		{REPORT_JSON, "\"lines\": [\"compliant: 19 rows older than 7 "
		 "years are kept because the rule only applies where status <> "
		 "'disputed'\"]"},
		{REPORT_HTML, "<p class=\"why ok\">compliant: 19 rows older than "
		 "7 years are kept because the rule only applies where status "
		 "&lt;&gt; &#39;disputed&#39;</p>"},
		{REPORT_HTML, "@page{size:A4"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct strbuf b = STRBUF_INIT;
		report_render(&r, cases[i].f, &b);
		if (!strstr(b.s, cases[i].want))
			fail_msg("%s lacks \"%s\":\n%s",
				 report_format_name(cases[i].f), cases[i].want,
				 b.s);
		sb_free(&b);
	}
	report_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_where_keeps_old_rows_in_words),
		cmocka_unit_test(test_every_reason_gets_its_own_line),
		cmocka_unit_test(test_rows_left_say_why_the_run_left_them),
		cmocka_unit_test(test_one_held_row_and_nothing_old),
		cmocka_unit_test(test_uncounted_rule_says_why),
		cmocka_unit_test(test_every_format_carries_the_explanation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
