/* schema: the SQL files embedded at build time (scripts/embed-sql). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "schema.h"

static void
test_versions_start_at_one_and_have_no_gaps(void **state)
{
	(void)state;
	assert_true(n_sql_files >= 1);
	for (size_t i = 0; i < n_sql_files; i++)
		assert_int_equal(sql_files[i].version, (int)i + 1);
	assert_int_equal(schema_latest_version(), (int)n_sql_files);
}

static void
test_names_carry_their_version(void **state)
{
	(void)state;
	for (size_t i = 0; i < n_sql_files; i++) {
		char prefix[16];
		snprintf(prefix, sizeof(prefix), "%03d_", sql_files[i].version);
		assert_memory_equal(sql_files[i].name, prefix, strlen(prefix));
		size_t n = strlen(sql_files[i].name);
		assert_true(n > 4);
		assert_string_equal(sql_files[i].name + n - 4, ".sql");
	}
}

static void
test_first_file_is_embedded_whole(void **state)
{
	const char *sql = sql_files[0].sql;

	(void)state;
	assert_string_equal(sql_files[0].name, "001_init.sql");
	/* the start, the end, and the hash chain in between */
	assert_non_null(strstr(sql, "CREATE TABLE schema_version"));
	assert_non_null(strstr(sql, "CREATE TRIGGER actions_chain"));
	assert_non_null(strstr(sql, "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"));
	assert_non_null(strstr(sql, "VALUES (1, "));
	/* no schema name may be baked in: init-db sets search_path */
	assert_null(strstr(sql, "retention."));
	assert_null(strstr(sql, "\"retention\""));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_versions_start_at_one_and_have_no_gaps),
		cmocka_unit_test(test_names_carry_their_version),
		cmocka_unit_test(test_first_file_is_embedded_whole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
