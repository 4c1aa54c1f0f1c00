/*
 * access: what an export tells a person about when a table's rows go
 * (access_rule_when), for each kind of rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "access.h"

static void
test_when_rows_go(void **state)
{
	char age[] = "placed_at", where[] = "status <> 'disputed'";
	char email[] = "email", ip[] = "last_ip";
	struct column_method methods[] = {
		{ email, METHOD_HASH, 0 },
		{ ip, METHOD_TRUNCATE_IP, 0 },
	};
	static const struct {
		enum rule_action action;
		struct duration retain;
		bool with_where, with_methods;
		const char *want;
	} cases[] = {
		{ ACTION_DELETE, { 7, DUR_YEAR }, false, false,
		  "deleted 7 years after placed_at" },
		{ ACTION_DELETE, { 1, DUR_DAY }, true, false,
		  "deleted 1 day after placed_at, for rows where "
		  "status <> 'disputed'" },
		{ ACTION_DEIDENTIFY, { 18, DUR_MONTH }, false, true,
		  "de-identified (email: hash, last_ip: truncate_ip) 18 months "
		  "after placed_at" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rule r;
		memset(&r, 0, sizeof(r));
		r.action = cases[i].action;
		r.retain = cases[i].retain;
		r.age_column = age;
		r.where = cases[i].with_where ? where : NULL;
		if (cases[i].with_methods) {
			r.deidentify = methods;
			r.n_deidentify = 2;
		}
		char *got = access_rule_when(&r);
		assert_string_equal(got, cases[i].want);
		free(got);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_when_rows_go),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
