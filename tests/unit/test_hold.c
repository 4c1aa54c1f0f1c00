/* hold: SUBJECT:ID parsing for `retentiond hold add`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "hold.h"

static void
test_valid_targets_split_at_the_first_colon(void **state)
{
	static const struct {
		const char *arg, *subject, *id;
	} cases[] = {
		{ "customer:42", "customer", "42" },
		{ "customer:a:b", "customer", "a:b" },	/* only the first ':' */
		{ "Org_1.x-y:ID 7", "Org_1.x-y", "ID 7" },
		{ "user:alice@example.com", "user", "alice@example.com" },
		{ "u:\xc3\xa9", "u", "\xc3\xa9" },	/* any text, UTF-8 too */
		{ "c::", "c", ":" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *subject = NULL, *id = NULL;
		const char *err = NULL;
		assert_true(hold_parse_target(cases[i].arg, &subject, &id, &err));
		assert_string_equal(subject, cases[i].subject);
		assert_string_equal(id, cases[i].id);
		free(subject);
		free(id);
	}
}

static void
test_invalid_targets_are_refused_with_a_reason(void **state)
{
	static const struct {
		const char *arg, *why;
	} cases[] = {
		{ "customer", "expected SUBJECT:ID" },
		{ "", "expected SUBJECT:ID" },
		{ ":42", "SUBJECT is empty" },
		{ "customer:", "ID is empty" },
		{ "cust omer:42", "SUBJECT may only contain" },
		{ "cust'omer:42", "SUBJECT may only contain" },
		{ "k\xc3\xa4ufer:1", "SUBJECT may only contain" },
		{ "customer:4\n2", "control characters" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *subject = NULL, *id = NULL;
		const char *err = NULL;
		assert_false(hold_parse_target(cases[i].arg, &subject, &id, &err));
		assert_non_null(err);
		if (!strstr(err, cases[i].why))
			fail_msg("\"%s\": \"%s\" does not say \"%s\"",
				 cases[i].arg, err, cases[i].why);
		assert_null(subject);
		assert_null(id);
	}
}

static void
test_state_names(void **state)
{
	(void)state;
	assert_string_equal(hold_state_name(HOLD_ACTIVE), "active");
	assert_string_equal(hold_state_name(HOLD_EXPIRED), "expired");
	assert_string_equal(hold_state_name(HOLD_RELEASED), "released");
}

/* A connection object that never connected: enough for quoting. */
static PGconn *
offline_conn(void)
{
	PGconn *conn = PQconnectStart("no_such_keyword=1");
	assert_non_null(conn);
	return conn;
}

static void
test_not_held_condition_text(void **state)
{
	PGconn *conn = offline_conn();
	char *sql, *err = NULL;

	(void)state;
	/* tests/integration/test_hold.py runs exactly this against a database */
	sql = hold_sql_not_held(conn, "retention", "$1", "t.\"id\"", &err);
	assert_non_null(sql);
	assert_string_equal(sql,
		"NOT EXISTS (SELECT 1 FROM \"retention\".\"legal_holds\" h"
		" WHERE h.subject = $1 AND h.subject_id = (t.\"id\")::text"
		" AND h.released_at IS NULL"
		" AND (h.expires_at IS NULL OR h.expires_at > pg_catalog.now()))");
	free(sql);

	/* the schema is quoted, however it is spelt */
	sql = hold_sql_not_held(conn, "my \"odd\" schema", "$3", "x.\"c\"",
				&err);
	assert_non_null(sql);
	assert_non_null(strstr(sql, "FROM \"my \"\"odd\"\" schema\".\"legal_holds\" h"));
	assert_non_null(strstr(sql, "h.subject = $3 AND h.subject_id = (x.\"c\")::text"));
	free(sql);
	PQfinish(conn);
}

/* Citus (plan_citus.c): the ids held for a subject, as one text[] literal
 * the batch passes as a parameter; '{}' when none, never NULL, so that
 * "<> ALL" lets rows through only when the list is known. */
static void
test_held_ids_query_text(void **state)
{
	PGconn *conn = offline_conn();
	char *sql, *err = NULL;

	(void)state;
	sql = hold_sql_held_ids(conn, "my \"odd\" schema", "$1", &err);
	assert_non_null(sql);
	assert_string_equal(sql,
		"SELECT coalesce(array_agg(DISTINCT h.subject_id), '{}')::text"
		" FROM \"my \"\"odd\"\" schema\".\"legal_holds\" h"
		" WHERE h.subject = $1 AND h.released_at IS NULL"
		" AND (h.expires_at IS NULL OR h.expires_at > pg_catalog.now())");
	free(sql);
	PQfinish(conn);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_targets_split_at_the_first_colon),
		cmocka_unit_test(test_invalid_targets_are_refused_with_a_reason),
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_not_held_condition_text),
		cmocka_unit_test(test_held_ids_query_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
