/*
 * util: allocation that cannot fail silently, small string helpers.
 * Out of memory is not an input error; we log and exit.
 */
#ifndef RETENTIOND_UTIL_H
#define RETENTIOND_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#define MUSTCHECK __attribute__((warn_unused_result))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Milliseconds on the monotonic clock, for spans and deadlines. */
double monotonic_ms(void);

/* Overwrite then free: for passwords and keys. */
void secure_free(void *p, size_t n);
void secure_free_str(char *s);

bool str_has_ctl(const char *s);	/* any byte < 0x20 or 0x7f */

/* Length of the well-formed UTF-8 sequence at P (1 to 4), or 0 when none
 * starts there: a stray continuation byte, an overlong form, a surrogate,
 * a code point above U+10FFFF or a sequence cut short (by the NUL, too). */
size_t utf8_seq_len(const char *p);
bool str_is_utf8(const char *s);	/* every byte in a well-formed sequence */
/* After a truncating snprintf into S: drop a UTF-8 sequence cut short at
 * the end, so a long message quoting user text stays valid UTF-8. */
void utf8_trim_cut(char *s);

#endif
