/*
 * strbuf: a growable string, for SQL text, JSON and reports.
 */
#ifndef RETENTIOND_STRBUF_H
#define RETENTIOND_STRBUF_H

#include <stddef.h>

struct strbuf {
	char *s;	/* always NUL-terminated once anything was added */
	size_t len;
	size_t cap;
};

#define STRBUF_INIT { NULL, 0, 0 }

void sb_add(struct strbuf *b, const char *s);
void sb_addn(struct strbuf *b, const char *s, size_t n);
void sb_printf(struct strbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A JSON string literal, quotes included; NULL becomes null. Control
 * characters, quotes, backslashes and U+2028/2029 are escaped. */
void sb_json_str(struct strbuf *b, const char *s);
/* Take the string (never NULL) and reset the buffer. */
char *sb_take(struct strbuf *b);
void sb_free(struct strbuf *b);

#endif
