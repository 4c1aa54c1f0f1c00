/* mailmsg: RFC 2047 subjects, header injection refusal, RFC 5322 dates,
 * quoted-printable bodies and the assembled message's line ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "mailmsg.h"
#include "strbuf.h"

/* ---- helpers ------------------------------------------------------------ */

static int
b64val(char c)
{
	static const char chars[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = strchr(chars, c);
	return c && p ? (int)(p - chars) : -1;
}

/* Decode base64 of length N into out; returns the byte count. */
static size_t
b64decode(const char *s, size_t n, unsigned char *out)
{
	size_t len = 0;
	assert_int_equal(n % 4, 0);
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		for (int k = 0; k < 4; k++)
			v[k] = s[i + k] == '=' ? 0 : b64val(s[i + k]);
		for (int k = 0; k < 4; k++)
			assert_true(v[k] >= 0);
		out[len++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (s[i + 2] != '=')
			out[len++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
		if (s[i + 3] != '=')
			out[len++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
	}
	return len;
}

static bool
valid_utf8(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k;
		if (p[i] < 0x80)
			k = 1;
		else if ((p[i] & 0xe0) == 0xc0)
			k = 2;
		else if ((p[i] & 0xf0) == 0xe0)
			k = 3;
		else if ((p[i] & 0xf8) == 0xf0)
			k = 4;
		else
			return false;
		if (i + k > n)
			return false;
		for (size_t j = 1; j < k; j++)
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
		i += k;
	}
	return true;
}

/* Every '\n' follows a '\r' and every '\r' precedes a '\n'. */
static void
assert_crlf_only(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n')
			assert_true(i > 0 && s[i - 1] == '\r');
		if (s[i] == '\r')
			assert_true(i + 1 < len && s[i + 1] == '\n');
	}
}

static size_t
longest_line(const char *s)
{
	size_t longest = 0, cur = 0;
	for (; *s; s++) {
		if (*s == '\r' || *s == '\n') {
			cur = 0;
			continue;
		}
		if (++cur > longest)
			longest = cur;
	}
	return longest;
}

/* ---- RFC 2047 ----------------------------------------------------------- */

static void
test_ascii_subject_passes_through(void **state)
{
	struct strbuf b = STRBUF_INIT;

	(void)state;
	mailmsg_encode_header(&b, "retentiond: run 12 on db1: ok, 1234 rows changed", 9);
	assert_string_equal(b.s, "retentiond: run 12 on db1: ok, 1234 rows changed");
	sb_free(&b);
}

static void
test_ascii_that_looks_encoded_is_encoded(void **state)
{
	struct strbuf b = STRBUF_INIT;

	(void)state;
	mailmsg_encode_header(&b, "a =?UTF-8?B?x?= b", 9);
	assert_true(strncmp(b.s, "=?UTF-8?B?", 10) == 0);
	sb_free(&b);
}

/* Split into words, check each, and return the decoded concatenation. */
static char *
check_words(const char *enc, size_t column)
{
	static unsigned char out[4096];
	size_t total = 0;
	const char *p = enc;
	bool first = true;

	while (*p) {
		if (!first) {
			assert_true(strncmp(p, "\r\n ", 3) == 0);
			p += 3;
		}
		assert_true(strncmp(p, "=?UTF-8?B?", 10) == 0);
		const char *end = strstr(p + 10, "?=");
		assert_non_null(end);
		size_t wlen = (size_t)(end + 2 - p);
		assert_true(wlen <= MAILMSG_WORD_MAX);
		/* the line holding the word stays within 76 characters */
		assert_true((first ? column : 1) + wlen <= 76);
		unsigned char word[256];
		size_t n = b64decode(p + 10, (size_t)(end - p - 10), word);
		/* no word ends inside a multibyte character */
		assert_true(valid_utf8(word, n));
		memcpy(out + total, word, n);
		total += n;
		p = end + 2;
		first = false;
	}
	out[total] = '\0';
	return (char *)out;
}

static void
test_utf8_subject_is_split_into_short_whole_words(void **state)
{
	static const char *const cases[] = {
		"L\xc3\xb6schfrist \xc3\xbc" "berschritten",
		/* 2-, 3- and 4-byte characters at every alignment */
		"\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4"
		"\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4"
		"\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4"
		"\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4",
		"x\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
		"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
		"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
		"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac",
		"xy\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
		"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
		"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80"
		"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80",
		"retentiond ALERT: run 7 on h\xc3\xb6st: partial, 12 rows changed, "
		"1 rule failed, 2 erasure requests overdue \xe2\x80\x94 \xe6\x97\xa5"
		"\xe6\x9c\xac\xe8\xaa\x9e",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t column = 0; column <= 40; column += 9) {
			struct strbuf b = STRBUF_INIT;
			mailmsg_encode_header(&b, cases[i], column);
			assert_string_equal(check_words(b.s, column), cases[i]);
			sb_free(&b);
		}
	}
}

/* ---- header injection ----------------------------------------------------- */

static void
test_control_characters_in_headers_are_refused(void **state)
{
	static const char *const bad[] = {
		"ok\r\nBcc: victim@example.com", "ok\nX-Evil: 1", "ok\r",
		"tab\there", "nul-ish \x01", "del \x7f",
	};

	(void)state;
	assert_null(mailmsg_check_value("retentiond: run 1 on h: ok"));
	assert_null(mailmsg_check_value("L\xc3\xb6schung"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_non_null(mailmsg_check_value(bad[i]));
}

static void
test_build_refuses_injected_subject_and_addresses(void **state)
{
	const char *to[] = { "dpo@example.com" };
	const char *bad_to[] = { "dpo@example.com\r\nBcc: x@evil.example" };
	struct mailmsg m = {
		.from = "Retention <r@example.com>", .to = to, .n_to = 1,
		.subject = "run 1\r\nBcc: x@evil.example", .text = "t",
		.html = "<p>h</p>",
	};
	char *err = NULL;
	size_t len;

	(void)state;
	assert_null(mailmsg_build(&m, &len, &err));
	assert_non_null(strstr(err, "Subject"));
	free(err);
	err = NULL;

	m.subject = "fine";
	m.from = "Retention <r@example.com>\nBcc: x@evil.example";
	assert_null(mailmsg_build(&m, &len, &err));
	assert_non_null(strstr(err, "From"));
	free(err);
	err = NULL;

	m.from = "r@example.com";
	m.to = bad_to;
	assert_null(mailmsg_build(&m, &len, &err));
	assert_non_null(strstr(err, "To"));
	free(err);
}

/* ---- Date ----------------------------------------------------------------- */

static void
test_date_is_rfc5322_with_local_offset(void **state)
{
	static const struct {
		const char *tz;
		time_t t;
		const char *want;
	} cases[] = {
		{ "UTC0", 0, "Thu, 1 Jan 1970 00:00:00 +0000" },
		{ "<+0530>-5:30", 0, "Thu, 1 Jan 1970 05:30:00 +0530" },
		{ "<-03>3", 0, "Wed, 31 Dec 1969 21:00:00 -0300" },
		{ "UTC0", 1739455380, "Thu, 13 Feb 2025 14:03:00 +0000" },
		{ "CET-1CEST,M3.5.0,M10.5.0/3", 1751371200,
		  "Tue, 1 Jul 2025 14:00:00 +0200" },
	};
	char out[MAILMSG_DATE_MAX];
	const char *old = getenv("TZ");
	char *saved = old ? strdup(old) : NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		setenv("TZ", cases[i].tz, 1);
		tzset();
		mailmsg_date(cases[i].t, out);
		assert_string_equal(out, cases[i].want);
	}
	if (saved)
		setenv("TZ", saved, 1);
	else
		unsetenv("TZ");
	tzset();
	free(saved);
}

/* ---- addresses ------------------------------------------------------------ */

static void
test_address_part_is_extracted(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "Retention <retention@example.com>", "retention@example.com" },
		{ "dpo@example.com", "dpo@example.com" },
		{ "  ops@example.com ", "ops@example.com" },
		{ "\"Team, Ops\" <ops@example.com>", "ops@example.com" },
		{ "no-at-sign", NULL },
		{ "a b@example.com", NULL },
		{ "Name <unterminated@example.com", NULL },
		{ "m\xc3\xbcller@example.com", NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = mailmsg_address(cases[i].in);
		if (cases[i].want) {
			assert_non_null(got);
			assert_string_equal(got, cases[i].want);
		} else {
			assert_null(got);
		}
		free(got);
	}
}

/* ---- quoted-printable ----------------------------------------------------- */

static void
test_quoted_printable(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "plain text", "plain text" },
		{ "a=b", "a=3Db" },
		{ "L\xc3\xb6schung", "L=C3=B6schung" },
		{ "trailing space \nnext", "trailing space=20\r\nnext" },
		{ "tab\t\r\nx", "tab=09\r\nx" },
		{ "lone\rcr", "lone=0Dcr" },
		{ ".starts with a dot", ".starts with a dot" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct strbuf b = STRBUF_INIT;
		mailmsg_qp(&b, cases[i].in);
		assert_string_equal(b.s, cases[i].want);
		sb_free(&b);
	}

	/* long lines get soft breaks and stay within 76 characters */
	char longline[2000];
	memset(longline, 'x', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	longline[500] = '=';
	struct strbuf b = STRBUF_INIT;
	mailmsg_qp(&b, longline);
	assert_true(longest_line(b.s) <= 76);
	assert_non_null(strstr(b.s, "=\r\n"));
	assert_crlf_only(b.s, b.len);
	sb_free(&b);
}

/* ---- the whole message -------------------------------------------------- */

static void
test_message_has_crlf_everywhere_and_the_mime_structure(void **state)
{
	const char *to[] = { "dpo@example.com", "Ops Team <ops@example.com>" };
	char html[3000];
	memset(html, 'h', sizeof(html) - 1);
	html[sizeof(html) - 1] = '\0';
	memcpy(html, "<p>", 3);
	struct mailmsg m = {
		.from = "Retention <retention@example.com>",
		.to = to, .n_to = 2,
		.subject = "retentiond: run 3 on h\xc3\xb6st: ok, 5 rows changed",
		.text = "line one\nline two\r\n.dot line\n\nrule \"x\": 5 rows\n",
		.html = html,
		.date = 1739455380,
		.message_id = "retentiond.3.123@host.example",
	};
	char *err = NULL;
	size_t len = 0;

	(void)state;
	char *msg = mailmsg_build(&m, &len, &err);
	assert_non_null(msg);
	assert_int_equal(strlen(msg), len);
	assert_crlf_only(msg, len);
	assert_true(longest_line(msg) <= 78);

	/* headers, then one empty line */
	char *body = strstr(msg, "\r\n\r\n");
	assert_non_null(body);
	*body = '\0';
	assert_non_null(strstr(msg, "Date: "));
	assert_non_null(strstr(msg, "\r\nFrom: Retention <retention@example.com>\r\n"));
	assert_non_null(strstr(msg, "\r\nTo: dpo@example.com,\r\n Ops Team <ops@example.com>\r\n"));
	assert_non_null(strstr(msg, "\r\nSubject: =?UTF-8?B?"));
	assert_non_null(strstr(msg, "\r\nMessage-ID: <retentiond.3.123@host.example>\r\n"));
	assert_non_null(strstr(msg, "\r\nMIME-Version: 1.0\r\n"));
	assert_non_null(strstr(msg, "\r\nContent-Type: multipart/alternative;\r\n boundary=\"=_rtd_"));
	char *bstart = strstr(msg, "boundary=\"") + 10;
	char boundary[64];
	size_t blen = (size_t)(strchr(bstart, '"') - bstart);
	memcpy(boundary, bstart, blen);
	boundary[blen] = '\0';
	*body = '\r';

	/* two parts and the closing delimiter, each on its own line */
	char delim[80], close[80];
	snprintf(delim, sizeof(delim), "\r\n--%s\r\n", boundary);
	snprintf(close, sizeof(close), "\r\n--%s--\r\n", boundary);
	char *p1 = strstr(body, delim);
	assert_non_null(p1);
	assert_non_null(strstr(p1, "Content-Type: text/plain; charset=UTF-8\r\n"
				   "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
				   "line one\r\nline two\r\n.dot line\r\n\r\n"
				   "rule \"x\": 5 rows\r\n"));
	char *p2 = strstr(p1 + 1, delim);
	assert_non_null(p2);
	assert_non_null(strstr(p2, "Content-Type: text/html; charset=UTF-8\r\n"));
	assert_non_null(strstr(p2, close));
	assert_true(strlen(strstr(p2, close)) == strlen(close));
	free(msg);
}

static void
test_text_only_message_and_random_message_id(void **state)
{
	const char *to[] = { "dpo@example.com" };
	struct mailmsg m = {
		.from = "r@example.com", .to = to, .n_to = 1,
		.subject = "alert", .text = "db down\n",
	};
	char *err = NULL;
	size_t len;

	(void)state;
	char *msg = mailmsg_build(&m, &len, &err);
	assert_non_null(msg);
	assert_crlf_only(msg, len);
	assert_non_null(strstr(msg, "\r\nMessage-ID: <"));
	assert_non_null(strstr(msg, "\r\nContent-Type: text/plain; charset=UTF-8\r\n"));
	assert_null(strstr(msg, "multipart"));
	free(msg);

	m.message_id = "no-at-sign";
	assert_null(mailmsg_build(&m, &len, &err));
	free(err);
}

static void
test_non_ascii_display_name_is_encoded(void **state)
{
	const char *to[] = { "J\xc3\xbcrgen <j@example.com>" };
	struct mailmsg m = {
		.from = "R\xc3\xa9tention <r@example.com>", .to = to, .n_to = 1,
		.subject = "s", .text = "t",
	};
	char *err = NULL;
	size_t len;

	(void)state;
	char *msg = mailmsg_build(&m, &len, &err);
	assert_non_null(msg);
	assert_non_null(strstr(msg, "\r\nFrom: =?UTF-8?B?"));
	assert_non_null(strstr(msg, "?= <r@example.com>\r\n"));
	assert_non_null(strstr(msg, "\r\nTo: =?UTF-8?B?"));
	for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
		assert_true(*p < 0x80);	/* 7-bit clean, bodies too */
	free(msg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ascii_subject_passes_through),
		cmocka_unit_test(test_ascii_that_looks_encoded_is_encoded),
		cmocka_unit_test(test_utf8_subject_is_split_into_short_whole_words),
		cmocka_unit_test(test_control_characters_in_headers_are_refused),
		cmocka_unit_test(test_build_refuses_injected_subject_and_addresses),
		cmocka_unit_test(test_date_is_rfc5322_with_local_offset),
		cmocka_unit_test(test_address_part_is_extracted),
		cmocka_unit_test(test_quoted_printable),
		cmocka_unit_test(test_message_has_crlf_everywhere_and_the_mime_structure),
		cmocka_unit_test(test_text_only_message_and_random_message_id),
		cmocka_unit_test(test_non_ascii_display_name_is_encoded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
