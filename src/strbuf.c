#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static void
grow(struct strbuf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + extra + 1)
		cap *= 2;
	b->s = xreallocarray(b->s, cap, 1);
	b->cap = cap;
}

void
sb_addn(struct strbuf *b, const char *s, size_t n)
{
	grow(b, n);
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void
sb_add(struct strbuf *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

void
sb_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	grow(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void
sb_json_str(struct strbuf *b, const char *s)
{
	if (!s) {
		sb_add(b, "null");
		return;
	}
	sb_add(b, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			sb_add(b, "\\\"");
			break;
		case '\\':
			sb_add(b, "\\\\");
			break;
		case '\n':
			sb_add(b, "\\n");
			break;
		case '\r':
			sb_add(b, "\\r");
			break;
		case '\t':
			sb_add(b, "\\t");
			break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				sb_printf(b, "\\u%04x", *p);
			} else if (p[0] == 0xe2 && p[1] == 0x80 &&
				   (p[2] == 0xa8 || p[2] == 0xa9)) {
				/* line separators break JavaScript embedding */
				sb_printf(b, "\\u%04x", p[2] == 0xa8 ? 0x2028 : 0x2029);
				p += 2;
			} else {
				/* JSON text is UTF-8 (RFC 8259 §8.1): a byte of
				 * no well-formed sequence (a Latin-1 config, a
				 * SQL_ASCII database) would make the whole
				 * document unreadable, so it becomes U+FFFD */
				size_t n = utf8_seq_len((const char *)p);
				if (n == 0)
					sb_add(b, "\\ufffd");
				else
					sb_addn(b, (const char *)p, n);
				p += n ? n - 1 : 0;
			}
		}
	}
	sb_add(b, "\"");
}

char *
sb_take(struct strbuf *b)
{
	char *s = b->s ? b->s : xstrdup("");
	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

void
sb_free(struct strbuf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}
