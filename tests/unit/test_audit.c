/*
 * audit: the C side of the hash chain must give the digests the database
 * trigger (sql/001_init.sql) gives, or verify would flag every row.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "audit.h"

/* Rows and hashes as PostgreSQL 15's actions_chain trigger wrote them. */
static const char row1[] =
	"[1, 1, \"r\", \"public.t\", \"delete\", \"2026-11-21T04:00:03.840695Z\", "
	"5, \"2026-11-22T04:00:03.840695Z\", \"2026-11-22T04:00:03.840695Z\", "
	"{\"a\": [1, 2], \"b\": 1}]";
static const char hash1[] =
	"e70760e223d1d2a890b1b8b68f6560df2ed6e2d9b83e72c0151cadaaad71d2ca";
static const char row2[] =
	"[2, 1, \"r2\", \"public.t\", \"erasure\", null, 5, "
	"\"2026-11-22T04:00:03.845949Z\", \"2026-11-22T04:00:03.845949Z\", null]";
static const char hash2[] =
	"4aa73298d63185ec4e74cee0bd6ee4f2003eaeab7ea977e0e26480055ebaa46a";

static void
test_chain_matches_the_database_trigger(void **state)
{
	char out[SHA256_HEX_LEN];

	(void)state;
	audit_chain_hash(AUDIT_GENESIS_HASH, row1, strlen(row1), out);
	assert_string_equal(out, hash1);
	audit_chain_hash(hash1, row2, strlen(row2), out);
	assert_string_equal(out, hash2);
}

static void
test_genesis_is_64_zeros(void **state)
{
	(void)state;
	assert_int_equal(strlen(AUDIT_GENESIS_HASH), 64);
	assert_int_equal(strspn(AUDIT_GENESIS_HASH, "0"), 64);
}

static void
test_canonical_text_is_hashed_as_utf8_bytes(void **state)
{
	/* "kunden-löschung": the UTF-8 bytes, as convert_to(..., 'UTF8') */
	static const char row[] =
		"[3, 1, \"kunden-l\xc3\xb6schung\", \"public.t\", \"delete\", null, "
		"0, \"2026-01-01T00:00:00.000000Z\", "
		"\"2026-01-01T00:00:00.000000Z\", null]";
	char out[SHA256_HEX_LEN];

	(void)state;
	audit_chain_hash(AUDIT_GENESIS_HASH, row, strlen(row), out);
	assert_string_equal(out, "c862f93ce9b8f94dc3992a6c31e14f62"
				 "1d6c7dbf6e59ef00857910b82d700dc7");
}

static void
test_any_change_changes_the_hash(void **state)
{
	char base[SHA256_HEX_LEN], out[SHA256_HEX_LEN];
	char copy[sizeof(row2)];

	(void)state;
	audit_chain_hash(hash1, row2, strlen(row2), base);
	/* the content: one byte anywhere */
	for (size_t i = 0; i < strlen(row2); i++) {
		memcpy(copy, row2, sizeof(row2));
		copy[i] ^= 0x01;
		audit_chain_hash(hash1, copy, strlen(copy), out);
		assert_string_not_equal(out, base);
	}
	/* the link: a different previous hash */
	audit_chain_hash(AUDIT_GENESIS_HASH, row2, strlen(row2), out);
	assert_string_not_equal(out, base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_matches_the_database_trigger),
		cmocka_unit_test(test_genesis_is_64_zeros),
		cmocka_unit_test(test_canonical_text_is_hashed_as_utf8_bytes),
		cmocka_unit_test(test_any_change_changes_the_hash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
