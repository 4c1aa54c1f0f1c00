/*
 * count: what a compiled rule (plan.h) would change, what it kept, and
 * what is left; for `plan`, the guards, the compliance verdict and the
 * report.
 */
#ifndef RETENTIOND_COUNT_H
#define RETENTIOND_COUNT_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "plan.h"
#include "util.h"

struct count_rows {
	long long eligible;	/* rows the rule would change now */
	long long held;		/* due rows kept by a legal hold */
	long long blocked;	/* due rows still referenced */
};

/* As of CUTOFF (NULL for an erasure). */
bool count_rule(PGconn *conn, const struct plan *p, const char *cutoff,
		struct count_rows *out, char **err) MUSTCHECK;

/* Rows in the table: exact for small tables, else the planner's estimate. */
bool count_table_rows(PGconn *conn, const struct plan *p, long long *rows,
		      char **err) MUSTCHECK;

/* Rows due as of CUTOFF, held or not: for the compliance verdict. */
bool count_due(PGconn *conn, const struct plan *p, const char *cutoff,
	       long long *due, char **err) MUSTCHECK;

/* Due rows as of CUTOFF that the rule would change now, counting no
 * further than AT_MOST (a guard needs no more). */
bool count_upto(PGconn *conn, const struct plan *p, const char *cutoff,
		long long at_most, long long *n, char **err) MUSTCHECK;

/* After a run, in one pass over the rows older than the cutoff: what is
 * left due, held and blocked, how many rows are due as of LATE (held or
 * not: the compliance verdict), and the oldest row of the table. Expiry
 * only. */
struct count_after {
	struct count_rows rows;
	long long overdue;
	char *oldest;		/* NULL when the table is empty */
};

bool count_after_run(PGconn *conn, const struct plan *p, const char *cutoff,
		     const char *late, struct count_after *out,
		     char **err) MUSTCHECK;

/* The oldest row still in the table (NULL when empty). */
bool count_oldest(PGconn *conn, const struct plan *p, char **oldest,
		  char **err) MUSTCHECK;

#endif
