/*
 * Typed access to libconfig settings, with every problem reported as
 * "FILE:LINE: message" and parsing carried on, so one run of `check` shows
 * every mistake in the file.
 */
#include "config_parse.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const char *
cfg_file(const struct cfg_ctx *c, const config_setting_t *s)
{
	const char *f = s ? config_setting_source_file(s) : NULL;

	/* libconfig names settings of the main text NULL (we parse it as a
	 * string) and included ones by the path as written in @include;
	 * cfg->files holds the main file, then the includes joined to the
	 * include directory, in libconfig's order. */
	if (f && c->lc) {
		for (unsigned i = 0; i < c->lc->num_filenames; i++)
			if (c->lc->filenames[i] == f &&
			    i + 1 < c->cfg->n_files)
				return c->cfg->files[i + 1];
	}
	return c->cfg->files[0];
}

int
cfg_line(const config_setting_t *s)
{
	return s ? (int)config_setting_source_line(s) : 0;
}

static size_t
file_index(const struct config *cfg, const char *file)
{
	for (size_t i = 0; i < cfg->n_files; i++)
		if (cfg->files[i] == file)
			return i;
	return cfg->n_files;
}

static void __attribute__((format(printf, 6, 0)))
vqueue(struct cfg_ctx *c, enum diag_level level, const char *file, int line,
       const char *prefix, const char *fmt, va_list ap)
{
	char msg[1024];

	if (vsnprintf(msg, sizeof(msg), fmt, ap) >= (int)sizeof(msg))
		utf8_trim_cut(msg);
	if (c->n_msgs == c->cap_msgs) {
		c->cap_msgs = c->cap_msgs ? 2 * c->cap_msgs : 16;
		c->msgs = xreallocarray(c->msgs, c->cap_msgs, sizeof(*c->msgs));
	}
	c->msgs[c->n_msgs] = (struct cfg_message){
		.file = file,
		.file_index = file_index(c->cfg, file),
		.line = line,
		.level = level,
		.seq = c->n_msgs,
		.text = prefix ? xasprintf("%s: %s", prefix, msg) : xstrdup(msg),
	};
	c->n_msgs++;
	if (level == DIAG_ERROR)
		c->n_errors++;
}

void
cfg_report(struct cfg_ctx *c, enum diag_level level, const char *file,
	   int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vqueue(c, level, file, line, NULL, fmt, ap);
	va_end(ap);
}

static int
message_order(const void *pa, const void *pb)
{
	const struct cfg_message *a = pa, *b = pb;

	if (a->file_index != b->file_index)
		return a->file_index < b->file_index ? -1 : 1;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void
cfg_flush(struct cfg_ctx *c)
{
	if (c->n_msgs > 1)
		qsort(c->msgs, c->n_msgs, sizeof(*c->msgs), message_order);
	for (size_t i = 0; i < c->n_msgs; i++) {
		diag_add(c->diag, c->msgs[i].level, c->msgs[i].file,
			 c->msgs[i].line, "%s", c->msgs[i].text);
		free(c->msgs[i].text);
	}
	free(c->msgs);
	c->msgs = NULL;
	c->n_msgs = c->cap_msgs = 0;
}

static void __attribute__((format(printf, 4, 0)))
vreport(struct cfg_ctx *c, enum diag_level level, const config_setting_t *s,
	const char *fmt, va_list ap)
{
	vqueue(c, level, cfg_file(c, s), cfg_line(s),
	       c->label[0] ? c->label : NULL, fmt, ap);
}

void
cfg_error(struct cfg_ctx *c, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(c, DIAG_ERROR, s, fmt, ap);
	va_end(ap);
}

void
cfg_warning(struct cfg_ctx *c, const config_setting_t *s, const char *fmt,
	    ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(c, DIAG_WARNING, s, fmt, ap);
	va_end(ap);
}

const char *
cfg_quote(const char *s, char *buf, size_t len)
{
	size_t n = 0, max = len - 4;	/* room for "..." and the NUL */

	/* whole UTF-8 sequences or nothing: the message stays valid UTF-8
	 * whatever the file holds */
	while (*s && n < max) {
		size_t k = utf8_seq_len(s);
		if (k > 1 && n + k > max)
			break;
		if (k == 0 || (unsigned char)*s < 0x20 || *s == 0x7f) {
			buf[n++] = '?';
			s++;
		} else {
			memcpy(buf + n, s, k);
			n += k;
			s += k;
		}
	}
	buf[n] = '\0';
	if (*s)
		strcat(buf, "...");
	return buf;
}

/* Case-insensitive Levenshtein distance, for "did you mean"; long names
 * are never close to a key, so the rows stay small. */
static size_t
distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[65];

	if (la > 64 || lb > 64)
		return (size_t)-1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = tolower((unsigned char)a[i - 1]) !=
				      tolower((unsigned char)b[j - 1]);
			size_t best = diag + cost;
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static void
closest(const char *name, const char *const *keys, size_t n,
	const char **best, size_t *best_d)
{
	for (size_t i = 0; i < n; i++) {
		size_t d = distance(name, keys[i]);
		/* a two-letter key is two edits from anything of that size */
		if (d < *best_d && d < strlen(keys[i])) {
			*best = keys[i];
			*best_d = d;
		}
	}
}

void
cfg_unknown_key(struct cfg_ctx *c, const config_setting_t *s,
		const char *group, const char *const *keys, size_t n,
		const char *const *more_keys, size_t n_more)
{
	const char *name = config_setting_name(s);
	const char *best = NULL;
	size_t best_d = 3;	/* suggest only within two edits */
	char where[64] = "";
	char hint[96] = "";

	closest(name, keys, n, &best, &best_d);
	if (more_keys)
		closest(name, more_keys, n_more, &best, &best_d);
	if (group)
		snprintf(where, sizeof(where), " in \"%s\"", group);
	if (best)
		snprintf(hint, sizeof(hint), "; did you mean \"%s\"?", best);
	cfg_error(c, s, "unknown key \"%s\"%s%s", name, where, hint);
}

static const char *
type_name(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a number";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	}
	return "nothing";
}

bool
cfg_string(struct cfg_ctx *c, const config_setting_t *s, const char **out)
{
	const char *v;

	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		cfg_error(c, s, "\"%s\" must be a string, not %s",
			  config_setting_name(s), type_name(s));
		return false;
	}
	v = config_setting_get_string(s);
	if (!v || !*v) {
		cfg_error(c, s, "\"%s\" must not be empty",
			  config_setting_name(s));
		return false;
	}
	/* Every string ends up in SQL, the audit trail, JSON or mail, all
	 * UTF-8: a Latin-1 policy would fail each cycle, not here. */
	if (!str_is_utf8(v)) {
		cfg_error(c, s, "\"%s\" is not valid UTF-8; save the file as "
			  "UTF-8", config_setting_name(s));
		return false;
	}
	*out = v;
	return true;
}

bool
cfg_dup_string(struct cfg_ctx *c, const config_setting_t *s, char **out)
{
	const char *v;

	if (!cfg_string(c, s, &v))
		return false;
	free(*out);
	*out = xstrdup(v);
	return true;
}

/* Column names are quoted with PQescapeIdentifier later, so anything
 * PostgreSQL can store is accepted: a hostile name must be representable. */
bool
cfg_ident(struct cfg_ctx *c, const config_setting_t *s, char **out)
{
	const char *v;

	if (!cfg_string(c, s, &v))
		return false;
	if (strlen(v) > CFG_NAME_MAX) {
		cfg_error(c, s, "\"%s\" is longer than %d bytes, the longest "
			  "name PostgreSQL keeps", config_setting_name(s),
			  CFG_NAME_MAX);
		return false;
	}
	free(*out);
	*out = xstrdup(v);
	return true;
}

bool
cfg_bool(struct cfg_ctx *c, const config_setting_t *s, bool *out)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		cfg_error(c, s, "\"%s\" must be a boolean (true or false), "
			  "not %s", config_setting_name(s), type_name(s));
		return false;
	}
	*out = config_setting_get_bool(s) != 0;
	return true;
}

bool
cfg_int(struct cfg_ctx *c, const config_setting_t *s, int64_t min,
	int64_t max, int64_t *out)
{
	int64_t v;

	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64) {
		cfg_error(c, s, "\"%s\" must be an integer, not %s",
			  config_setting_name(s), type_name(s));
		return false;
	}
	v = config_setting_get_int64(s);
	if (v < min || v > max) {
		cfg_error(c, s, "\"%s\" must be between %lld and %lld",
			  config_setting_name(s), (long long)min,
			  (long long)max);
		return false;
	}
	*out = v;
	return true;
}

bool
cfg_duration(struct cfg_ctx *c, const config_setting_t *s, int flags,
	     struct duration *out)
{
	const char *name = config_setting_name(s);
	const char *text, *err;
	struct duration d;

	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		cfg_error(c, s, "\"%s\" must be a duration string such as "
			  "\"30s\" or \"7 days\", not %s", name, type_name(s));
		return false;
	}
	text = config_setting_get_string(s);
	if (!duration_parse(text, &d, &err)) {
		cfg_error(c, s, "\"%s\": %s", name, err);
		return false;
	}
	if ((flags & CFG_DUR_FIXED) && duration_is_calendar(&d)) {
		cfg_error(c, s, "\"%s\": months and years have no fixed "
			  "length; use days", name);
		return false;
	}
	if ((flags & CFG_DUR_POSITIVE) && d.amount == 0) {
		cfg_error(c, s, "\"%s\" must be greater than zero", name);
		return false;
	}
	/* else the server refuses it at connect time, which reads like a
	 * connection problem */
	if ((flags & CFG_DUR_PG_TIMEOUT) && duration_ms(&d) > INT_MAX) {
		cfg_error(c, s, "\"%s\" must be at most 24 days (%d ms, the "
			  "largest timeout PostgreSQL and libpq accept)", name,
			  INT_MAX);
		return false;
	}
	/* PostgreSQL's timestamps end in 294276 AD: a longer retention
	 * would fail at run time as "timestamp out of range" */
	if ((flags & CFG_DUR_RETENTION) &&
	    (d.unit == DUR_YEAR ? d.amount > 1000
	     : d.unit == DUR_MONTH ? d.amount > 12000
	     : duration_ms(&d) > 365250LL * 24 * 60 * 60 * 1000)) {
		cfg_error(c, s, "\"%s\" must be at most 1000 years", name);
		return false;
	}
	*out = d;
	return true;
}

bool
cfg_enum(struct cfg_ctx *c, const config_setting_t *s,
	 const char *const *names, size_t n, int *out)
{
	char expected[160] = "", quoted[48];
	const char *v;

	if (!cfg_string(c, s, &v))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v, names[i]) == 0) {
			*out = (int)i;
			return true;
		}
	}
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(expected);
		snprintf(expected + len, sizeof(expected) - len, "%s\"%s\"",
			 i == 0 ? "" : i + 1 == n ? " or " : ", ", names[i]);
	}
	cfg_error(c, s, "\"%s\" must be %s, not \"%s\"",
		  config_setting_name(s), expected,
		  cfg_quote(v, quoted, sizeof(quoted)));
	return false;
}

bool
cfg_group(struct cfg_ctx *c, const config_setting_t *s)
{
	if (config_setting_is_group(s))
		return true;
	cfg_error(c, s, "\"%s\" must be a group { ... }, not %s",
		  config_setting_name(s), type_name(s));
	return false;
}

const char *const cfg_limit_keys[CFG_N_LIMIT_KEYS] = {
	"batch_size", "batch_target", "pause", "max_runtime", "max_fraction",
	"busy_batch_target", "max_replica_lag",
};

static bool
fraction(struct cfg_ctx *c, const config_setting_t *s, double *out)
{
	double v;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_FLOAT:
		v = config_setting_get_float(s);
		break;
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		v = (double)config_setting_get_int64(s);
		break;
	default:
		cfg_error(c, s, "\"%s\" must be a number, not %s",
			  config_setting_name(s), type_name(s));
		return false;
	}
	/* written so that NaN fails too */
	if (!(v > 0.0 && v <= 1.0)) {
		cfg_error(c, s, "\"%s\" must be greater than 0 and at most 1 "
			  "(a share of the table)", config_setting_name(s));
		return false;
	}
	*out = v;
	return true;
}

bool
cfg_limit_key(struct cfg_ctx *c, const config_setting_t *s, struct limits *l)
{
	const char *k = config_setting_name(s);

	if (strcmp(k, "batch_size") == 0)
		(void)cfg_int(c, s, 1, 10000000, &l->batch_size);
	else if (strcmp(k, "batch_target") == 0)
		(void)cfg_duration(c, s, CFG_DUR_FIXED | CFG_DUR_POSITIVE,
				   &l->batch_target);
	else if (strcmp(k, "pause") == 0)
		(void)cfg_duration(c, s, CFG_DUR_FIXED, &l->pause);
	else if (strcmp(k, "busy_batch_target") == 0)
		(void)cfg_duration(c, s, CFG_DUR_FIXED, &l->busy_batch_target);
	else if (strcmp(k, "max_runtime") == 0)
		(void)cfg_duration(c, s, CFG_DUR_FIXED | CFG_DUR_POSITIVE,
				   &l->max_runtime);
	else if (strcmp(k, "max_fraction") == 0)
		(void)fraction(c, s, &l->max_fraction);
	else if (strcmp(k, "max_replica_lag") == 0)
		(void)cfg_duration(c, s, CFG_DUR_FIXED | CFG_DUR_POSITIVE,
				   &l->max_replica_lag);
	else
		return false;
	return true;
}
