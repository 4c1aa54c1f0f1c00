/*
 * Fuzz the mail header encoder and validator (src/mailmsg.c): the header
 * check, RFC 2047 encoding, address extraction, quoted-printable bodies
 * and whole messages built from hostile strings.
 *
 * Invariants: an encoded header holds only printable ASCII and CRLF-space
 * folds, every encoded word is at most 75 characters on a line of at most
 * 76, and the words decode back to exactly the input; a message's header
 * block holds no line that is not a header we wrote or a fold, so no
 * injected header can appear; quoted-printable decodes back to the text.
 */
#include "fuzz.h"

#include "mailmsg.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
b64val(int c)
{
	const char *set = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			  "0123456789+/";
	const char *p = c ? strchr(set, c) : NULL;

	return p ? (int)(p - set) : -1;
}

/* Decode one base64 text of LEN characters into OUT; its length. */
static size_t
unbase64(const char *s, size_t len, unsigned char *out)
{
	size_t n = 0;

	FUZZ_CHECK(len % 4 == 0, "base64 of length %zu", len);
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		for (int k = 0; k < 4; k++) {
			v[k] = s[i + k] == '=' ? 0 : b64val(s[i + k]);
			FUZZ_CHECK(v[k] >= 0, "base64 character 0x%02x",
				   (unsigned char)s[i + k]);
		}
		out[n++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (s[i + 2] != '=')
			out[n++] = (unsigned char)(v[1] << 4 | v[2] >> 2);
		if (s[i + 3] != '=')
			out[n++] = (unsigned char)(v[2] << 6 | v[3]);
	}
	return n;
}

static void
check_encoded(const char *v, size_t column)
{
	struct strbuf b = STRBUF_INIT;
	size_t vlen = strlen(v);

	mailmsg_encode_header(&b, v, column);
	const char *out = b.s ? b.s : "";

	for (const unsigned char *p = (const unsigned char *)out; *p; p++) {
		if (*p == '\r') {
			FUZZ_CHECK(p[1] == '\n' && p[2] == ' ',
				   "CR that is not a fold");
			continue;
		}
		if (*p == '\n') {
			FUZZ_CHECK(p > (const unsigned char *)out && p[-1] == '\r',
				   "bare LF");
			continue;
		}
		FUZZ_CHECK(*p >= 0x20 && *p < 0x7f, "byte 0x%02x", *p);
	}
	if (strncmp(out, "=?UTF-8?B?", 10) != 0 || vlen == 0) {
		/* plain: printable ASCII, unchanged */
		FUZZ_CHECK(strcmp(out, v) == 0, "plain value changed");
		FUZZ_CHECK(!strstr(v, "=?"), "\"=?\" left plain");
		sb_free(&b);
		return;
	}

	unsigned char *decoded = malloc(vlen + 4);
	size_t n = 0;
	int valid = fuzz_valid_utf8(v, vlen);
	const char *p = out;

	if (!decoded)
		abort();
	for (int first = 1;; first = 0) {
		const char *end = strstr(p, "?=");
		FUZZ_CHECK(strncmp(p, "=?UTF-8?B?", 10) == 0, "not a word");
		FUZZ_CHECK(end, "word not closed");
		size_t word = (size_t)(end + 2 - p);
		FUZZ_CHECK(word <= MAILMSG_WORD_MAX, "word of %zu", word);
		/* the first line starts after "Name: " */
		FUZZ_CHECK((first ? column : 1) + word <= 76 || word <= 24,
			   "line of %zu", (first ? column : 1) + word);
		size_t got = unbase64(p + 10, (size_t)(end - p - 10),
				      decoded + n);
		FUZZ_CHECK(got > 0, "empty word");
		/* a word never splits a UTF-8 sequence */
		if (valid)
			FUZZ_CHECK(fuzz_valid_utf8((char *)decoded + n, got),
				   "word splits a UTF-8 sequence");
		n += got;
		FUZZ_CHECK(n <= vlen, "decodes to more than the input");
		p = end + 2;
		if (!*p)
			break;
		FUZZ_CHECK(strncmp(p, "\r\n ", 3) == 0, "no fold between words");
		p += 3;
	}
	FUZZ_CHECK(n == vlen && memcmp(decoded, v, vlen) == 0,
		   "words do not decode to the input");
	free(decoded);
	sb_free(&b);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* TEXT with "\r\n" as "\n", which is what quoted-printable keeps. */
static void
check_qp(const char *text)
{
	struct strbuf b = STRBUF_INIT;
	size_t tlen = strlen(text), col = 0, n = 0;
	char *want = malloc(tlen + 1), *got = malloc(tlen + 1);

	if (!want || !got)
		abort();
	for (const char *t = text; *t; t++)
		if (!(t[0] == '\r' && t[1] == '\n'))
			want[n++] = *t;
	want[n] = '\0';

	mailmsg_qp(&b, text);
	n = 0;
	for (const char *p = b.s ? b.s : ""; *p;) {
		unsigned char ch = (unsigned char)*p;
		if (ch == '\r') {
			FUZZ_CHECK(p[1] == '\n', "bare CR");
			/* whitespace at the end of a line is lost in transit */
			FUZZ_CHECK(p == b.s || (p[-1] != ' ' && p[-1] != '\t'),
				   "trailing whitespace");
			got[n++] = '\n';
			p += 2;
			col = 0;
			continue;
		}
		FUZZ_CHECK((ch >= 0x20 && ch < 0x7f) || ch == '\t',
			   "byte 0x%02x", ch);
		FUZZ_CHECK(++col <= 76, "line longer than 76");
		if (ch == '=') {
			if (p[1] == '\r' && p[2] == '\n') {
				p += 3;
				col = 0;
				continue;
			}
			int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
			FUZZ_CHECK(hi >= 0 && lo >= 0, "bad =XX");
			got[n++] = (char)(hi << 4 | lo);
			p += 3;
			col += 2;
			FUZZ_CHECK(col <= 76, "line longer than 76");
			continue;
		}
		got[n++] = (char)ch;
		p++;
	}
	got[n] = '\0';
	FUZZ_CHECK(strcmp(got, want) == 0, "quoted-printable round trip");
	free(want);
	free(got);
	sb_free(&b);
}

static int
our_header(const char *line, size_t len)
{
	static const char *const names[] = {
		"Date: ", "From: ", "To: ", "Subject: ", "Message-ID: ",
		"MIME-Version: ", "Auto-Submitted: ", "Content-Type: ",
		"Content-Transfer-Encoding: ",
	};

	if (len > 0 && line[0] == ' ')
		return 1;	/* a fold */
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (len >= strlen(names[i]) &&
		    strncmp(line, names[i], strlen(names[i])) == 0)
			return 1;
	return 0;
}

static void
check_message(const char *v)
{
	char *addr = mailmsg_address(v);
	const char *from = addr ? v : "Retention <retention@example.com>";
	const char *to[] = {from, "dpo@example.com"};
	struct mailmsg m = {
		.from = from, .to = to, .n_to = 2, .subject = v, .text = v,
		.html = v, .date = 1700000000, .message_id = NULL,
	};
	size_t len = 0;
	char *err = NULL;
	char *msg;

	if (addr) {
		for (const char *p = addr; *p; p++)
			FUZZ_CHECK(*p > 0x20 && *p < 0x7f && !strchr("<>,", *p),
				   "address byte 0x%02x", (unsigned char)*p);
		FUZZ_CHECK(strchr(addr, '@'), "address without '@'");
	}
	free(addr);
	msg = mailmsg_build(&m, &len, &err);
	if (!msg) {
		FUZZ_CHECK(err && *err && !strpbrk(err, "\r\n"), "error text");
		FUZZ_CHECK(mailmsg_check_value(v) != NULL,
			   "valid subject refused: %s", err);
		free(err);
		return;
	}
	FUZZ_CHECK(strlen(msg) == len, "length");
	const char *body = strstr(msg, "\r\n\r\n");
	FUZZ_CHECK(body, "no end of headers");
	int subjects = 0;
	for (const char *line = msg; line < body + 2;) {
		const char *eol = strstr(line, "\r\n");
		size_t n = (size_t)(eol - line);
		FUZZ_CHECK(n <= 998, "header line of %zu", n);
		FUZZ_CHECK(our_header(line, n), "injected header line: %.*s",
			   (int)(n < 60 ? n : 60), line);
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK((unsigned char)line[i] >= 0x20 &&
				   (unsigned char)line[i] < 0x7f,
				   "header byte 0x%02x",
				   (unsigned char)line[i]);
		subjects += strncmp(line, "Subject: ", 9) == 0;
		line = eol + 2;
	}
	FUZZ_CHECK(subjects == 1, "%d subjects", subjects);
	for (const char *p = body; *p; p++) {
		FUZZ_CHECK(*p != '\r' || p[1] == '\n', "bare CR in the body");
		FUZZ_CHECK(*p != '\n' || p[-1] == '\r', "bare LF in the body");
		FUZZ_CHECK((unsigned char)*p < 0x80, "8-bit body");
	}
	free(msg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *v;
	size_t column;

	if (size == 0)
		return 0;
	/* the first byte picks the column the value starts at */
	column = data[0] % 40 + 1;
	v = fuzz_cstr(data + 1, size - 1);
	if (mailmsg_check_value(v) == NULL) {
		FUZZ_CHECK(!strpbrk(v, "\r\n"), "CR or LF accepted");
		check_encoded(v, column);
	} else {
		FUZZ_CHECK(strlen(v) > 900 || strpbrk(v, "\r\n\t\x7f") ||
			   strlen(v) != strcspn(v, "\x01\x02\x03\x04\x05\x06"
						"\x07\x08\x0b\x0c\x0e\x0f\x10"
						"\x11\x12\x13\x14\x15\x16\x17"
						"\x18\x19\x1a\x1b\x1c\x1d\x1e"
						"\x1f"),
			   "refused a good value");
	}
	check_qp(v);
	check_message(v);
	free(v);
	return 0;
}
