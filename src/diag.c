#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void
diag_init(struct diag *d)
{
	memset(d, 0, sizeof(*d));
}

void
diag_fini(struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->entries[i].text);
	free(d->entries);
	memset(d, 0, sizeof(*d));
}

static const char *
level_word(enum diag_level level)
{
	switch (level) {
	case DIAG_WARNING:
		return "warning: ";
	case DIAG_NOTE:
		return "note: ";
	case DIAG_ERROR:
		break;
	}
	return "";
}

void
diag_add(struct diag *d, enum diag_level level, const char *file, int line,
	 const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) >= (int)sizeof(msg))
		utf8_trim_cut(msg);
	va_end(ap);

	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 8;
		d->entries = xreallocarray(d->entries, d->cap,
					   sizeof(*d->entries));
	}
	char *text;
	if (file && line > 0)
		text = xasprintf("%s:%d: %s%s", file, line, level_word(level), msg);
	else if (file)
		text = xasprintf("%s: %s%s", file, level_word(level), msg);
	else
		text = xasprintf("%s%s", level_word(level), msg);
	d->entries[d->n].level = level;
	d->entries[d->n].text = text;
	d->n++;
	if (level == DIAG_ERROR)
		d->n_errors++;
}

void
diag_print(const struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		fprintf(stderr, "%s\n", d->entries[i].text);
}
