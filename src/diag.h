/*
 * diag: a list of problems found in one pass (config errors, catalog
 * checks), each tied to a file and line when it has one.
 */
#ifndef RETENTIOND_DIAG_H
#define RETENTIOND_DIAG_H

#include <stddef.h>

enum diag_level {
	DIAG_ERROR,	/* makes the config unusable: exit 2 */
	DIAG_WARNING,	/* worth fixing, does not fail `check` */
	DIAG_NOTE	/* information, e.g. "table is partitioned" */
};

struct diag_entry {
	enum diag_level level;
	char *text;	/* fully formatted: "FILE:LINE: message" or "message" */
};

struct diag {
	struct diag_entry *entries;
	size_t n;
	size_t cap;
	size_t n_errors;
};

void diag_init(struct diag *d);
void diag_fini(struct diag *d);

/* file may be NULL (then no location prefix); line <= 0 prints "FILE: ". */
void diag_add(struct diag *d, enum diag_level level, const char *file,
	      int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#define diag_error(d, file, line, ...) \
	diag_add((d), DIAG_ERROR, (file), (line), __VA_ARGS__)
#define diag_warning(d, file, line, ...) \
	diag_add((d), DIAG_WARNING, (file), (line), __VA_ARGS__)
#define diag_note(d, file, line, ...) \
	diag_add((d), DIAG_NOTE, (file), (line), __VA_ARGS__)

/* Print every entry to stderr, errors as "FILE:LINE: message", warnings and
 * notes with a "warning: " / "note: " after the location. */
void diag_print(const struct diag *d);

#endif
