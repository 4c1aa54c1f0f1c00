/*
 * partition: whole expired partitions leave by DROP (partitions = "drop")
 * or DETACH ("detach") instead of row by row (SPEC §5).
 *
 * Only for delete rules on a table range-partitioned on the age column,
 * for leaf partitions whose upper bound is at or before the cutoff — so
 * every row in them is expired — and never the default partition. A
 * partition with a held subject's rows, or rows the rule's `where` keeps,
 * is left to row batches; so is every partition of a table that other
 * tables reference. Each drop or detach is one transaction: lock, check
 * again for rows that must stay, count the rows (pcount.h), drop or
 * detach, and insert the audit row. (Several partitions in one
 * transaction were measured: on Citus no clear gain, on one server the
 * dropped files' truncation moved into the next batch's commit.)
 */
#ifndef RETENTIOND_PARTITION_H
#define RETENTIOND_PARTITION_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "plan.h"
#include "config.h"
#include "util.h"

struct partition_plan {
	char *name;		/* schema.table of the partition */
	char *bound;		/* its upper bound, as PostgreSQL prints it */
	long long rows;		/* counted when planned or retired */
	bool retired;		/* dropped or detached in this cycle */
	char *skipped;		/* why it stays for row batches, or NULL */
};

struct partition_result {
	struct partition_plan *parts;
	size_t n;
	long long rows;		/* rows in retired partitions */
	long long finalized;	/* interrupted detaches completed */
};

/*
 * Find (and unless DRY_RUN, retire) the partitions of RS's table that lie
 * wholly before CUTOFF. Returns false with *err on a database error; a
 * partition whose lock is not granted within lock_timeout is skipped.
 */
bool partition_retire(PGconn *conn, const struct config *cfg,
		      struct plan *rs, const char *cutoff, long long run_id,
		      bool dry_run, struct partition_result *out,
		      char **err) MUSTCHECK;
void partition_result_free(struct partition_result *r);

#endif
