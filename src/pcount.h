/*
 * pcount: the exact row count of a partition about to be dropped, the big
 * ones in two halves at once.
 *
 * SPEC §5 records a partition's rows before it leaves. That count is an
 * index-only scan of the partition's smallest index, and on a big
 * partition it costs about as much as the drop itself (bench/README.md,
 * "The partitions, measured"); PostgreSQL's own parallel index scan hands
 * the leaf pages out one at a time and gains little. So the rows below
 * the median (from pg_stats) of that index's first column are counted
 * over a second connection while the caller's counts the rest. The
 * caller has locked the partition against writers before either count
 * starts, so both see the same rows; where the split value came from
 * only decides how even the halves are, never the sum.
 *
 * The second connection is an optimization: when it cannot be had, or
 * its count fails, the caller's connection counts that half too.
 */
#ifndef RETENTIOND_PCOUNT_H
#define RETENTIOND_PCOUNT_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "config.h"
#include "second.h"
#include "util.h"

/* Below this many rows (pg_class.reltuples) one count is quicker than
 * opening a second connection. */
#define PCOUNT_SPLIT_ROWS 1000000

struct pcount {
	struct second second;	/* kept for the next partition */
};

void pcount_init(struct pcount *pc, const struct config *cfg);

/* A partition of at least PCOUNT_SPLIT_ROWS rows is coming: start
 * opening the second connection now, so it is ready when needed. */
void pcount_prepare(struct pcount *pc);

/* A partition to count. */
struct pcount_target {
	const char *oid;	/* its pg_class oid, as text */
	const char *schema;
	const char *table;
	const char *qpart;	/* "schema"."table", quoted */
	double reltuples;	/* the planner's estimate, negative unknown */
};

/* Count T's rows over CONN, which holds a lock that keeps writers out. */
bool pcount_rows(struct pcount *pc, PGconn *conn,
		 const struct pcount_target *t, long long *rows,
		 char **err) MUSTCHECK;

/* Close the second connection, cancelling whatever it still runs. */
void pcount_close(struct pcount *pc);

#endif
