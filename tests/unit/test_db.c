/* db: what a SQLSTATE means (db_errclass_of), and the server versions
 * retentiond accepts (db_server_supported). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "db.h"

static void
test_errclass(void **state)
{
	static const struct {
		const char *sqlstate;
		enum db_errclass want;
	} cases[] = {
		{ "55P03", DBERR_LOCK_NOT_AVAILABLE },
		{ "40P01", DBERR_DEADLOCK },
		{ "57014", DBERR_QUERY_CANCELED },
		{ "23503", DBERR_FK_VIOLATION },
		{ "25006", DBERR_READ_ONLY },
		{ "42P01", DBERR_UNDEFINED_TABLE },
		{ "22007", DBERR_DATA_EXCEPTION },
		{ "22008", DBERR_DATA_EXCEPTION },
		{ "08006", DBERR_CONNECTION },
		{ "08000", DBERR_CONNECTION },
		{ "", DBERR_CONNECTION },
		{ NULL, DBERR_CONNECTION },
		/* near misses are nothing special */
		{ "55P02", DBERR_OTHER },
		{ "40001", DBERR_OTHER },
		{ "23505", DBERR_OTHER },
		{ "57P01", DBERR_OTHER },
		{ "XX000", DBERR_OTHER },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum db_errclass got = db_errclass_of(cases[i].sqlstate);
		if (got != cases[i].want)
			fail_msg("%s: class %d, want %d",
				 cases[i].sqlstate ? cases[i].sqlstate : "NULL",
				 got, cases[i].want);
	}
	assert_true(db_errclass_is_lock(DBERR_LOCK_NOT_AVAILABLE));
	assert_true(db_errclass_is_lock(DBERR_DEADLOCK));
	assert_false(db_errclass_is_lock(DBERR_QUERY_CANCELED));
	assert_false(db_errclass_is_lock(DBERR_NONE));
}

static void
test_server_version(void **state)
{
	char *m;
	(void)state;

	/* the oldest supported and anything newer pass */
	assert_null(db_server_unsupported(140000));
	assert_null(db_server_unsupported(140011));
	assert_null(db_server_unsupported(150004));
	assert_null(db_server_unsupported(170000));
	/* older ones are refused, naming both versions */
	m = db_server_unsupported(130012);
	assert_non_null(m);
	assert_string_equal(m, "the database server is PostgreSQL 13.12, older "
			    "than PostgreSQL 14, the oldest this retentiond "
			    "supports");
	free(m);
	m = db_server_unsupported(90624);
	assert_non_null(m);
	assert_non_null(strstr(m, "PostgreSQL 9.6.24, older than PostgreSQL 14"));
	free(m);
	m = db_server_unsupported(139999);
	assert_non_null(m);
	free(m);
	/* no version at all (a dead connection) is no pass either */
	m = db_server_unsupported(0);
	assert_non_null(m);
	assert_non_null(strstr(m, "PostgreSQL 14 or later"));
	free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errclass),
		cmocka_unit_test(test_server_version),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
