/*
 * Hostile input to the pure modules (issue 8), and a regression test for
 * each bug the fuzzers (tests/fuzz) and tests/integration/test_hostile.py
 * found:
 *
 *  - the HTML escaper let DEL and the C1 controls (U+0080..U+009F)
 *    through, which HTML forbids (fuzz_escape);
 *  - sb_json_str copied bytes that are no UTF-8 into JSON, which made the
 *    whole report unreadable (fuzz_escape);
 *  - a config string that is no UTF-8 (a Latin-1 policy) passed `check`
 *    and failed every cycle in PostgreSQL instead;
 *  - log and config messages cut at their buffer's end could split a
 *    UTF-8 sequence (a long subject id in test_hostile.py);
 *  - the 16 MB config size limit let files up to 32 MB through;
 *  - timeouts beyond PostgreSQL's range passed `check` and failed at
 *    connect time as if the database were unreachable;
 *  - include loops and deep nesting gave libconfig's bare "include file
 *    nesting too deep" / "memory exhausted".
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

#include "config.h"
#include "diag.h"
#include "log.h"
#include "report.h"
#include "strbuf.h"
#include "util.h"

#define DB "database: { conninfo = \"dbname=shop\"; };\n"
#define RULE(extra) "rules = ( { name = \"r\"; policy = \"p\"; table = \"t\"; " \
	"age_column = \"c\"; retain = \"1d\"; " extra " } );\n"

/* ---- UTF-8 ------------------------------------------------------------- */

static void
test_utf8_validation_follows_rfc3629(void **state)
{
	static const struct {
		const char *s;
		size_t len;	/* of the first sequence; 0: none */
	} cases[] = {
		{"a", 1},
		{"\xc3\xa9", 2},
		{"\xe2\x82\xac", 3},
		{"\xf0\x9f\x99\x82", 4},
		{"\xc3", 0},		/* cut short by the NUL */
		{"\xc3(", 0},		/* bad continuation */
		{"\x80", 0},		/* stray continuation */
		{"\xc0\xaf", 0},	/* overlong '/' */
		{"\xe0\x80\xaf", 0},	/* overlong */
		{"\xed\xa0\x80", 0},	/* surrogate U+D800 */
		{"\xf4\x90\x80\x80", 0},	/* beyond U+10FFFF */
		{"\xff", 0},
		{"\xe9", 0},		/* Latin-1 e-acute */
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(utf8_seq_len(cases[i].s), cases[i].len);
		assert_int_equal(str_is_utf8(cases[i].s), cases[i].len != 0);
	}
	assert_true(str_is_utf8(""));
	assert_true(str_is_utf8("Donn\xc3\xa9" "es \xf0\x9f\x99\x82"));
	assert_false(str_is_utf8("Donn\xe9" "es"));
}

static void
test_utf8_trim_cut_drops_only_a_cut_sequence(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"abc", "abc"},
		{"ab\xc3\xa4", "ab\xc3\xa4"},
		{"ab\xc3", "ab"},
		{"ab\xe2\x82", "ab"},
		{"ab\xf0\x9f\x99", "ab"},
		{"ab\xf0\x9f\x99\x82", "ab\xf0\x9f\x99\x82"},
		{"", ""},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char buf[32];
		snprintf(buf, sizeof(buf), "%s", cases[i].in);
		utf8_trim_cut(buf);
		assert_string_equal(buf, cases[i].want);
	}
}

/* ---- escapers (fuzz_escape findings) ------------------------------------ */

static void
test_html_escape_replaces_del_and_c1_controls(void **state)
{
	struct strbuf b = STRBUF_INIT;

	(void)state;
	report_html_escape(&b, "a\x7f" "b\xc2\x85" "c\xc2\x9f" "d\xc2\xa0" "e\x01");
	/* U+00A0 (no control) stays; the others become U+FFFD */
	assert_string_equal(b.s, "a&#xFFFD;b&#xFFFD;c&#xFFFD;d\xc2\xa0" "e&#xFFFD;");
	sb_free(&b);
}

static void
test_json_str_replaces_bytes_that_are_not_utf8(void **state)
{
	struct strbuf b = STRBUF_INIT;

	(void)state;
	/* Latin-1, a cut sequence at the end, a surrogate; valid UTF-8 and
	 * U+2028 as before */
	sb_json_str(&b, "Donn\xe9" "es \xc3\xa9 \xed\xa0\x80 \xe2\x80\xa8 \xc3");
	assert_string_equal(b.s, "\"Donn\\ufffdes \xc3\xa9 \\ufffd\\ufffd\\ufffd "
			    "\\u2028 \\ufffd\"");
	assert_true(str_is_utf8(b.s));
	sb_free(&b);
}

/* ---- config ---------------------------------------------------------------- */

static const char *
find_text(const struct diag *d, const char *phrase)
{
	for (size_t i = 0; i < d->n; i++)
		if (strstr(d->entries[i].text, phrase))
			return d->entries[i].text;
	return NULL;
}

static void
expect_refused(const char *text, const char *phrase)
{
	struct config cfg;
	struct diag d;

	diag_init(&d);
	if (config_load_string(text, "test.conf", &cfg, &d)) {
		config_free(&cfg);
		fail_msg("accepted: %s", text);
	}
	if (!find_text(&d, phrase)) {
		for (size_t i = 0; i < d.n; i++)
			print_error("    %s\n", d.entries[i].text);
		fail_msg("no message with \"%s\"", phrase);
	}
	for (size_t i = 0; i < d.n; i++)
		assert_true(str_is_utf8(d.entries[i].text));
	diag_fini(&d);
}

static void
test_config_strings_must_be_utf8(void **state)
{
	(void)state;
	expect_refused(DB "rules = ( { name = \"r\"; policy = \"Donn\xe9" "es\"; "
		       "table = \"t\"; age_column = \"c\"; retain = \"1d\"; } );\n",
		       "\"policy\" is not valid UTF-8");
	expect_refused(DB RULE("where = \"a = '\xe9'\";"),
		       "\"where\" is not valid UTF-8");
	expect_refused(DB "rules = ( { name = \"r\"; policy = \"p\"; "
		       "table = \"t\xe9\"; age_column = \"c\"; retain = \"1d\"; } );\n",
		       "\"table\" is not valid UTF-8");
	expect_refused(DB RULE("action = \"deidentify\"; deidentify = ( { column = "
			       "\"E-Mail \xe9\"; method = \"redact\"; } );"),
		       "column name is not valid UTF-8");
	expect_refused(DB "mail: { url = \"smtp://127.0.0.1\"; tls = \"none\"; "
		       "from = \"a@b\"; to = [ \"J\xf6rg <j@b>\" ]; };\n" RULE(""),
		       "\"to\" is not valid UTF-8");
}

static void
test_config_messages_stay_utf8_when_quoting_is_cut(void **state)
{
	char text[1024];

	(void)state;
	/* an enum value of 40 two-byte characters after one ASCII byte: the
	 * quote (44 bytes at most) is cut to fit, in the middle of one */
	char value[128] = "x";
	for (int i = 0; i < 40; i++)
		strcat(value, "\xc3\xa4");
	snprintf(text, sizeof(text), DB RULE("action = \"%s\";"), value);
	expect_refused(text, "\"action\" must be");
}

static void
test_config_timeouts_beyond_postgresql_are_refused(void **state)
{
	(void)state;
	expect_refused("database: { conninfo = \"dbname=x\"; statement_timeout = "
		       "\"1000000000 weeks\"; };\n" RULE(""),
		       "\"statement_timeout\" must be at most 24 days");
	expect_refused("database: { conninfo = \"dbname=x\"; lock_timeout = "
		       "\"25 days\"; };\n" RULE(""),
		       "\"lock_timeout\" must be at most 24 days");
	expect_refused("database: { conninfo = \"dbname=x\"; connect_timeout = "
		       "\"9999999999 s\"; };\n" RULE(""),
		       "\"connect_timeout\"");

	struct config cfg;
	struct diag d;
	diag_init(&d);
	assert_true(config_load_string("database: { conninfo = \"dbname=x\"; "
				       "statement_timeout = \"24 days\"; };\n"
				       RULE(""), "test.conf", &cfg, &d));
	config_free(&cfg);
	diag_fini(&d);
}

static void
test_config_deep_nesting_is_a_clear_error(void **state)
{
	size_t depth = 20000;
	char *text = xmalloc(2 * depth + 256);
	char *p = text;

	(void)state;
	p += sprintf(p, DB "a = ");
	memset(p, '(', depth);
	p += depth;
	memset(p, ')', depth);
	p += depth;
	sprintf(p, ";\n" RULE(""));
	expect_refused(text, "nested too deep for the parser");
	free(text);
}

/* A private directory with files, for includes and sizes. */
struct tmpdir {
	char dir[64];
	char path[4][128];
	int n;
};

static const char *
tmp_file(struct tmpdir *t, const char *name, const char *text)
{
	char *path = t->path[t->n++];
	FILE *f;

	char buf[sizeof(t->path[0])];

	snprintf(buf, sizeof(buf), "%s/%s", t->dir, name);
	memcpy(path, buf, sizeof(buf));
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0600), 0);
	return path;
}

static void
tmp_remove(struct tmpdir *t)
{
	for (int i = 0; i < t->n; i++)
		unlink(t->path[i]);
	rmdir(t->dir);
}

static void
expect_file_refused(const char *path, const char *phrase)
{
	struct config cfg;
	struct diag d;

	diag_init(&d);
	assert_false(config_load(path, &cfg, &d));
	if (!find_text(&d, phrase)) {
		for (size_t i = 0; i < d.n; i++)
			print_error("    %s\n", d.entries[i].text);
		fail_msg("no message with \"%s\"", phrase);
	}
	diag_fini(&d);
}

static void
test_include_loops_end_with_a_clear_error(void **state)
{
	struct tmpdir t = { .dir = "/tmp/rtd-unit-XXXXXX" };

	(void)state;
	assert_non_null(mkdtemp(t.dir));
	const char *self = tmp_file(&t, "self.conf",
				    "@include \"self.conf\"\n" DB RULE(""));
	tmp_file(&t, "a.conf", "@include \"b.conf\"\n");
	tmp_file(&t, "b.conf", "@include \"a.conf\"\n");
	const char *loop = tmp_file(&t, "loop.conf",
				    "@include \"a.conf\"\n" DB RULE(""));
	expect_file_refused(self, "@include nested too deep: does a file "
			    "include itself");
	expect_file_refused(loop, "@include nested too deep");
	tmp_remove(&t);
}

static void
test_config_size_limit_is_16_mb(void **state)
{
	struct tmpdir t = { .dir = "/tmp/rtd-unit-XXXXXX" };
	size_t size = 17 * 1024 * 1024;	/* above the limit, below twice it */
	char *text = xmalloc(size + 1);

	(void)state;
	assert_non_null(mkdtemp(t.dir));
	memset(text, '#', size);
	text[size] = '\0';
	const char *big = tmp_file(&t, "big.conf", text);
	free(text);
	expect_file_refused(big, "is larger than 16777216 bytes");
	tmp_remove(&t);
}

/* ---- log ------------------------------------------------------------------ */

static void
test_long_log_message_is_cut_between_characters(void **state)
{
	char path[] = "/tmp/rtd-unit-log-XXXXXX";
	int fd = mkstemp(path);
	int saved = dup(STDERR_FILENO);
	char *id = xmalloc(2 * 5000 + 1);
	char buf[16384];
	ssize_t n;

	(void)state;
	assert_true(fd >= 0 && saved >= 0);
	for (int i = 0; i < 5000; i++)
		memcpy(id + 2 * i, "\xc3\xa4", 2);
	id[2 * 5000] = '\0';
	/* 4095 bytes of two-byte characters: the cut falls inside one */
	fflush(stderr);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	log_msg(LOG_LVL_WARNING, "%s", id);
	fflush(stderr);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	unlink(path);
	free(id);
	assert_true(n > 4000);
	buf[n] = '\0';
	assert_true(str_is_utf8(buf));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_validation_follows_rfc3629),
		cmocka_unit_test(test_utf8_trim_cut_drops_only_a_cut_sequence),
		cmocka_unit_test(test_html_escape_replaces_del_and_c1_controls),
		cmocka_unit_test(test_json_str_replaces_bytes_that_are_not_utf8),
		cmocka_unit_test(test_config_strings_must_be_utf8),
		cmocka_unit_test(test_config_messages_stay_utf8_when_quoting_is_cut),
		cmocka_unit_test(test_config_timeouts_beyond_postgresql_are_refused),
		cmocka_unit_test(test_config_deep_nesting_is_a_clear_error),
		cmocka_unit_test(test_include_loops_end_with_a_clear_error),
		cmocka_unit_test(test_config_size_limit_is_16_mb),
		cmocka_unit_test(test_long_log_message_is_cut_between_characters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
