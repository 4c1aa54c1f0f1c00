/*
 * ledger: lines survive any subject text, a torn or damaged line is
 * recognised and skipped (never trusted, never a crash), an append cuts a
 * torn tail off, and the file and directory are private.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ledger.h"
#include "log.h"

/* Writable copies: struct ledger_erasure owns its strings. */
static char customer[] = "customer", id7[] = "7", id51[] = "51";
static char when1[] = "2026-12-06T02:08:01.123456Z";
static char when2[] = "2026-12-06T02:08:01.000000Z";

#define HASH "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void
test_erasure_lines_round_trip_any_subject_text(void **state)
{
	static char texts[][16] = {
		"customer", "42", "a\tb", "line\nbreak", "back\\slash",
		"\\t literally", "cr\rlf", "bell\a", "del\x7f", "ünïcødé",
		"x\\", "\\x41",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct ledger_erasure in = {
			.request_id = 7 + (long long)i,
			.subject = texts[i],
			.subject_id = texts[(i + 1) % 12],
			.completed_at = when1,
		}, out;
		struct ledger_head h;
		char *line = ledger_format_erasure(&in);
		size_t len = strlen(line);

		/* one line: only the final newline */
		assert_int_equal(line[len - 1], '\n');
		assert_null(memchr(line, '\n', len - 1));
		assert_int_equal(ledger_parse_line(line, len - 1, &out, &h),
				 LEDGER_LINE_ERASURE);
		assert_int_equal(out.request_id, in.request_id);
		assert_string_equal(out.subject, in.subject);
		assert_string_equal(out.subject_id, in.subject_id);
		assert_string_equal(out.completed_at, in.completed_at);
		ledger_erasure_free(&out);
		free(line);
	}
}

static void
test_head_lines_round_trip(void **state)
{
	struct ledger_head in = { .id = 123456789012LL, .rows = 1000000 }, out;
	struct ledger_erasure e;

	(void)state;
	memcpy(in.hash, HASH, sizeof(HASH));
	char *line = ledger_format_head(&in);
	assert_int_equal(ledger_parse_line(line, strlen(line) - 1, &e, &out),
			 LEDGER_LINE_HEAD);
	assert_int_equal(out.id, in.id);
	assert_int_equal(out.rows, in.rows);
	assert_string_equal(out.hash, HASH);
	free(line);
}

/* Every prefix is what a killed append leaves; every one-byte change is
 * what a bad disk leaves. Neither may parse. */
static void
test_torn_and_damaged_lines_are_recognised(void **state)
{
	struct ledger_erasure in = {
		.request_id = 5, .subject = customer, .subject_id = id51,
		.completed_at = when1,
	}, out;
	struct ledger_head hin = { .id = 9, .rows = 9 }, h;

	(void)state;
	memcpy(hin.hash, HASH, sizeof(HASH));
	char *lines[] = { ledger_format_erasure(&in), ledger_format_head(&hin) };
	for (size_t k = 0; k < 2; k++) {
		size_t len = strlen(lines[k]) - 1;
		for (size_t n = 1; n < len; n++)
			assert_int_equal(ledger_parse_line(lines[k], n, &out, &h),
					 LEDGER_LINE_BAD);
		for (size_t i = 0; i < len; i++) {
			char *copy = strdup(lines[k]);
			copy[i] ^= 0x01;
			assert_int_equal(ledger_parse_line(copy, len, &out, &h),
					 LEDGER_LINE_BAD);
			free(copy);
		}
		free(lines[k]);
	}
}

static void
test_malformed_lines_are_bad_comments_skipped(void **state)
{
	static const char *const bad[] = {
		"erasure", "head\t1\t2", "nonsense\tabcdef0123456789",
		"\t\t\t\t\t\t\t\t", "erasure\t1\tc\t1\tt\t0000000000000000",
	};
	struct ledger_erasure e;
	struct ledger_head h;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ledger_parse_line(bad[i], strlen(bad[i]), &e, &h),
				 LEDGER_LINE_BAD);
	assert_int_equal(ledger_parse_line("# a comment", 11, &e, &h),
			 LEDGER_LINE_SKIP);
	assert_int_equal(ledger_parse_line("", 0, &e, &h), LEDGER_LINE_SKIP);
}

static int
tmp_setup(void **state)
{
	char tmpl[] = "/tmp/test_ledger.XXXXXX";
	char *dir = mkdtemp(tmpl);
	assert_non_null(dir);
	*state = strdup(dir);
	return 0;
}

static int
tmp_teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", (char *)*state);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(*state);
	return 0;
}

static void
write_raw(const char *path, const char *text, const char *mode)
{
	FILE *f = fopen(path, mode);
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
test_load_append_torn_tail_and_modes(void **state)
{
	char *dir = xasprintf("%s/state", (char *)*state);
	char *path = ledger_path(dir);
	struct ledger l;
	char *err = NULL;
	struct stat st;

	/* no file yet: an empty ledger */
	assert_true(ledger_load(dir, &l, &err));
	assert_int_equal(l.n_erasures, 0);
	assert_int_equal(l.head.id, 0);
	ledger_free(&l);

	struct ledger_erasure e = {
		.request_id = 3, .subject = customer, .subject_id = id7,
		.completed_at = when2,
	};
	struct ledger_head h = { .id = 10, .rows = 10 };
	memcpy(h.hash, HASH, sizeof(HASH));
	char *le = ledger_format_erasure(&e), *lh = ledger_format_head(&h);
	char *both = xasprintf("%s%s", le, lh);
	assert_true(ledger_append(dir, both, &err));
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	/* a damaged line in the middle and a torn one at the end */
	write_raw(path, "erasure\t4\tcustomer\t8\tnot checked\t0123456789abcdef\n", "a");
	h.id = 11;
	char *lh2 = ledger_format_head(&h);
	write_raw(path, lh2, "a");
	write_raw(path, "head\t12\t0123", "a");
	assert_true(ledger_load(dir, &l, &err));
	assert_int_equal(l.n_erasures, 1);
	assert_int_equal(l.n_ignored, 2);
	assert_int_equal(l.head.id, 11);	/* the torn 12 is not trusted */
	assert_non_null(ledger_find(&l, 3, "2026-12-06T02:08:01.000000Z"));
	assert_null(ledger_find(&l, 3, "2026-12-06T02:08:02.000000Z"));
	ledger_free(&l);

	/* the next append cuts the torn tail off: every line whole again */
	h.id = 13;
	char *lh3 = ledger_format_head(&h);
	assert_true(ledger_append(dir, lh3, &err));
	assert_true(ledger_load(dir, &l, &err));
	assert_int_equal(l.n_ignored, 1);	/* only the damaged one */
	assert_int_equal(l.head.id, 13);
	ledger_free(&l);

	/* a state directory whose parent is missing is an error, named */
	char *deep = xasprintf("%s/no/such", (char *)*state);
	assert_false(ledger_append(deep, lh3, &err));
	assert_non_null(strstr(err, deep));
	free(err);

	free(deep);
	free(lh3);
	free(lh2);
	free(both);
	free(le);
	free(lh);
	free(path);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_erasure_lines_round_trip_any_subject_text),
		cmocka_unit_test(test_head_lines_round_trip),
		cmocka_unit_test(test_torn_and_damaged_lines_are_recognised),
		cmocka_unit_test(test_malformed_lines_are_bad_comments_skipped),
		cmocka_unit_test_setup_teardown(test_load_append_torn_tail_and_modes,
						tmp_setup, tmp_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
