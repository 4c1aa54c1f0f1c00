/*
 * Fuzz the report escapers: report_html_escape and report_csv_field
 * (src/report.c) and sb_json_str (src/strbuf.c), with arbitrary bytes as
 * they could come from the config (policy text) or the database.
 *
 * Invariants:
 *  - HTML: no raw '<', '>', '"', '\'' and no '&' that does not start one
 *    of the entities we write; no control character (HTML forbids C0
 *    controls other than TAB/LF/CR, DEL and the C1 range); unescaping gives
 *    the input back, controls shown as U+FFFD.
 *  - CSV: the field parses back (RFC 4180) to exactly the input, also when
 *    it sits between two other fields of a row.
 *  - JSON: a string literal with no raw control character, no raw
 *    U+2028/2029, valid UTF-8; decoding gives the input back when the
 *    input is valid UTF-8.
 */
#include "fuzz.h"

#include "report.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char REPLACEMENT[] = "\xef\xbf\xbd";

static int
html_control(const unsigned char *p)
{
	if (*p < 0x20)
		return *p != '\t' && *p != '\n' && *p != '\r';
	if (*p == 0x7f)
		return 1;
	/* U+0080..U+009F */
	return p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f;
}

static void
check_html(const char *v)
{
	static const struct {
		const char *entity;
		const char *text;
	} entities[] = {
		{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"},
		{"&quot;", "\""}, {"&#39;", "'"}, {"&#xFFFD;", REPLACEMENT},
	};
	struct strbuf b = STRBUF_INIT, back = STRBUF_INIT, want = STRBUF_INIT;

	report_html_escape(&b, v);
	const char *out = b.s ? b.s : "";
	for (const char *p = out; *p;) {
		FUZZ_CHECK(!strchr("<>\"'", *p), "raw %c", *p);
		FUZZ_CHECK(!html_control((const unsigned char *)p),
			   "raw control 0x%02x", (unsigned char)*p);
		if (*p != '&') {
			sb_addn(&back, p++, 1);
			continue;
		}
		size_t i;
		for (i = 0; i < sizeof(entities) / sizeof(entities[0]); i++)
			if (strncmp(p, entities[i].entity,
				    strlen(entities[i].entity)) == 0)
				break;
		FUZZ_CHECK(i < sizeof(entities) / sizeof(entities[0]),
			   "'&' that starts no entity: %.10s", p);
		sb_add(&back, entities[i].text);
		p += strlen(entities[i].entity);
	}
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (html_control(p)) {
			sb_add(&want, REPLACEMENT);
			if (*p == 0xc2)
				p++;	/* the C1 control's second byte */
		} else {
			sb_addn(&want, (const char *)p, 1);
		}
	}
	FUZZ_CHECK(strcmp(back.s ? back.s : "", want.s ? want.s : "") == 0,
		   "HTML does not unescape to the input");
	sb_free(&b);
	sb_free(&back);
	sb_free(&want);
}

/* Parse one RFC 4180 field at *pp, up to ',' or the end; NULL if malformed. */
static char *
csv_parse_field(const char **pp)
{
	struct strbuf f = STRBUF_INIT;
	const char *p = *pp;

	if (*p == '"') {
		for (p++;; p++) {
			if (*p == '\0') {
				sb_free(&f);
				return NULL;
			}
			if (*p == '"') {
				if (p[1] != '"')
					break;
				p++;
			}
			sb_addn(&f, p, 1);
		}
		p++;
		if (*p != ',' && *p != '\0') {
			sb_free(&f);
			return NULL;
		}
	} else {
		for (; *p && *p != ','; p++) {
			if (*p == '"' || *p == '\r' || *p == '\n') {
				sb_free(&f);
				return NULL;
			}
			sb_addn(&f, p, 1);
		}
	}
	*pp = p;
	return sb_take(&f);
}

static void
check_csv(const char *v)
{
	struct strbuf b = STRBUF_INIT;
	const char *p;
	char *f;

	sb_add(&b, "a,");
	report_csv_field(&b, v);
	sb_add(&b, ",z");
	p = b.s;
	f = csv_parse_field(&p);
	FUZZ_CHECK(f && strcmp(f, "a") == 0 && *p == ',', "first field");
	free(f);
	p++;
	f = csv_parse_field(&p);
	FUZZ_CHECK(f, "field does not parse: %s", b.s);
	/* a value a spreadsheet would run as a formula comes back with a
	 * leading quote; nothing else changes, and no field left starts
	 * like a formula */
	FUZZ_CHECK(strcmp(f, v) == 0 ||
		   (f[0] == '\'' && strcmp(f + 1, v) == 0 &&
		    strchr("=+-@\t\r", v[0]) && v[0]),
		   "field parses to something else");
	if (f[0] && strchr("=+-@\t\r", f[0])) {
		char *end = NULL;
		(void)strtod(f, &end);
		FUZZ_CHECK(end && end != f && *end == '\0',
			   "a formula left in a field: %s", f);
	}
	FUZZ_CHECK(*p == ',', "field runs into the next");
	free(f);
	p++;
	f = csv_parse_field(&p);
	FUZZ_CHECK(f && strcmp(f, "z") == 0 && *p == '\0', "last field");
	free(f);
	sb_free(&b);
}

static int
hex4(const char *p)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

static void
put_utf8(struct strbuf *b, int cp)
{
	char u[3];

	if (cp < 0x80) {
		u[0] = (char)cp;
		sb_addn(b, u, 1);
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		sb_addn(b, u, 2);
	} else {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		sb_addn(b, u, 3);
	}
}

static void
check_json(const char *v)
{
	struct strbuf b = STRBUF_INIT, back = STRBUF_INIT;
	size_t vlen = strlen(v);

	sb_json_str(&b, v);
	FUZZ_CHECK(b.len >= 2 && b.s[0] == '"' && b.s[b.len - 1] == '"',
		   "not a string literal");
	FUZZ_CHECK(fuzz_valid_utf8(b.s, b.len), "JSON text is not UTF-8");
	for (const char *p = b.s + 1; p < b.s + b.len - 1;) {
		unsigned char ch = (unsigned char)*p;
		FUZZ_CHECK(ch >= 0x20 && ch != 0x7f, "raw control 0x%02x", ch);
		FUZZ_CHECK(!(ch == 0xe2 && (unsigned char)p[1] == 0x80 &&
			     ((unsigned char)p[2] == 0xa8 ||
			      (unsigned char)p[2] == 0xa9)), "raw U+2028/9");
		FUZZ_CHECK(ch != '"', "raw quote inside the string");
		if (ch != '\\') {
			sb_addn(&back, p++, 1);
			continue;
		}
		char e = p[1];
		static const char from[] = "\"\\/bfnrtu";
		static const char to[] = "\"\\/\b\f\n\r\t";
		const char *simple = e ? strchr(from, e) : NULL;
		FUZZ_CHECK(simple, "bad escape \\%c", e);
		if (e != 'u') {
			sb_addn(&back, &to[simple - from], 1);
			p += 2;
			continue;
		}
		int cp = hex4(p + 2);
		FUZZ_CHECK(cp >= 0, "bad \\u escape");
		FUZZ_CHECK(cp < 0xd800 || cp > 0xdfff, "lone surrogate");
		put_utf8(&back, cp);
		p += 6;
	}
	if (fuzz_valid_utf8(v, vlen))
		FUZZ_CHECK(back.len == vlen && memcmp(back.s ? back.s : "", v,
						      vlen) == 0,
			   "JSON does not decode to the input");
	sb_free(&b);
	sb_free(&back);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *v = fuzz_cstr(data, size);

	check_html(v);
	check_csv(v);
	check_json(v);
	free(v);
	return 0;
}
