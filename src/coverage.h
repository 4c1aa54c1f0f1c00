/*
 * coverage: personal data that no rule covers (SPEC §9).
 *
 * coverage_run() reads the catalog (two queries), samples the text and
 * json columns of each table (at most sample_rows rows, ACCESS SHARE
 * only, in a read-only transaction; a table locked by someone else is
 * skipped after lock_timeout with a warning), and decides, with the pure
 * coverage_detect functions, which columns hold personal data and which
 * rule, cascade or ignore entry covers each.
 *
 * Sampled values live only in libpq's result while they are scanned:
 * nothing here copies, logs or returns them, only counts and reasons.
 */
#ifndef RETENTIOND_COVERAGE_H
#define RETENTIOND_COVERAGE_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "config.h"
#include "coverage_detect.h"
#include "strbuf.h"
#include "util.h"

struct coverage_column {
	char *name;
	char **reasons;		/* "name e-mail", "values 93% e-mail", ... */
	size_t n_reasons;
	enum cov_confidence confidence;
	char *covered_by;	/* "rule NAME", "cascade from rule NAME",
				 * "ignore"; NULL: uncovered */
};

struct coverage_table {
	char *schema, *table;
	bool covered;		/* every personal column is */
	bool skipped;		/* its sample could not be read */
	struct coverage_column *cols;
	size_t n_cols;
};

struct coverage_result {
	long long tables_scanned, personal_tables, uncovered_tables;
	long long uncovered_columns, tables_skipped;
	struct coverage_table *tables;	/* only tables with personal data */
	size_t n_tables;
};

/* A table in which one row is one subject (§8 `subjects`). */
struct coverage_subject {
	const char *schema, *table;
	const char *subject;	/* "customer" */
};

/*
 * Look at every table outside the system schemas and retentiond's own.
 * SUBJECTS (N_SUBJECTS) are the subject tables; NULL means SPEC §8's
 * fallback: each rule's table whose primary key is its subject_column.
 * Must be called outside a transaction. Returns false with *err on a
 * database error (a table that cannot be sampled is not one).
 */
bool coverage_run(PGconn *conn, const struct config *cfg,
		  const struct coverage_subject *subjects, size_t n_subjects,
		  struct coverage_result *out, char **err) MUSTCHECK;
void coverage_free(struct coverage_result *r);

/* Whether a cycle should run coverage: someone reads the result (report
 * files, mail or the metrics file). */
bool coverage_wanted(const struct config *cfg);

/* A cycle's coverage, for its report and the metrics file. A failure is
 * logged and kept in error; it never changes the cycle's outcome. */
struct coverage_cycle {
	bool ran;		/* result is valid */
	struct coverage_result result;
	char *error;		/* coverage failed: why; NULL otherwise */
};
void coverage_cycle_run(PGconn *conn, const struct config *cfg,
			struct coverage_cycle *out);
void coverage_cycle_free(struct coverage_cycle *c);

/* `coverage --format text|json` (coverage_render.c). */
void coverage_render_text(const struct coverage_result *r, struct strbuf *b);
void coverage_render_json(const struct coverage_result *r, struct strbuf *b);
/* "email (name e-mail, values 93% e-mail; high)" for column C. */
void coverage_column_text(const struct coverage_column *c, struct strbuf *b);
/* Append S with control characters as \xNN: names come from the catalog,
 * and a hostile table name must not forge lines of a text output. */
void coverage_clean(struct strbuf *b, const char *s);

#endif
