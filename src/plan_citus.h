/*
 * plan_citus: the statement forms for a table of Citus (distributed
 * PostgreSQL), chosen by plan_compile when the rule's table is a Citus
 * table on the coordinator retentiond connects to. A single server's SQL
 * is never changed by this module.
 *
 * What differs, and why (Citus 13):
 *  - holds: legal_holds is a local table of the coordinator, which a
 *    distributed query cannot join; the ids held for the rule's subject
 *    are read before each statement and passed as a text[] parameter;
 *  - row batches: no ctid (not unique across shards) and no FOR UPDATE in
 *    a multi-shard query; rows are picked by primary key (which includes
 *    the distribution column), and the audit row is its own statement in
 *    the batch's transaction (2PC commits both);
 *  - expiry batches are time slices of the age, sized from the previous
 *    slice's rows, so no batch needs a global ORDER BY ... OFFSET;
 *  - erasure compares the subject column with the id cast to the
 *    column's type, so a request on the distribution column goes to one
 *    shard;
 *  - de-identify uses IMMUTABLE forms (Citus refuses STABLE functions of
 *    a column in a multi-shard UPDATE).
 * Anything without such a form fails the rule, naming it.
 */
#ifndef RETENTIOND_PLAN_CITUS_H
#define RETENTIOND_PLAN_CITUS_H

#include <stdbool.h>

#include "batch.h"
#include "plan_int.h"

struct plan_citus {
	const char *kind;	/* "distributed", "reference", "citus-local" */
	char *pk;		/* t."a", t."b": the primary key's columns */
	char *held_sql;		/* the held ids' query, NULL without subject */
	char *held;		/* their text[] literal, read per statement */
	int pool;		/* the session's pool (plan_citus_pool), 0:
				 * Citus's own */
};

/*
 * The Citus kind of table OID: "distributed", "reference", "citus-local",
 * "local" (a plain table on a Citus coordinator), or NULL when the
 * database has no Citus. Returns false with *err on a database error.
 */
bool plan_citus_kind(PGconn *conn, const char *oid, const char **kind,
		     char **err) MUSTCHECK;

/* The primary key's columns of table OID as t."a", t."b"; *OUT NULL when
 * it has none. */
bool plan_citus_primary_key(PGconn *conn, const char *oid, char **out,
			    char **err) MUSTCHECK;

/* Why truncate_ip on a text column cannot run on a Citus table. */
#define PLAN_CITUS_NO_TEXT_IP \
	"method \"truncate_ip\" on a text column is not supported on a " \
	"Citus table (its helper function lives on the coordinator only); " \
	"use an inet column"

/* Connections per worker a session of retentiond's uses for a batch's
 * multi-shard statement, unless an admin set
 * citus.max_adaptive_executor_pool_size; kept between batches. */
#define PLAN_CITUS_POOL 4
/* ... and for the statements before the batches, whose tasks on each
 * shard are tiny (a LIMIT 1, a partition's count and DROP): one per
 * worker, the tasks one after another on it, costs less than opening
 * more (bench/README.md, "Citus"). */
#define PLAN_CITUS_POOL_ONE 1

/* Set p->citus when P's table (p->oid) is a Citus table. */
bool plan_citus_detect(PGconn *conn, struct plan *p, char **err) MUSTCHECK;

/* The not-held fragment: the row's subject not among the held ids. */
bool plan_citus_not_held(PGconn *conn, const struct config *cfg,
			 struct plan *p, const char *ref, char **err) MUSTCHECK;

/* The erasure condition: REF equals the id cast to the column's type. */
bool plan_citus_subject_cond(struct plan *p, const struct catalog_table *t,
			     const char *ref, struct strbuf *cond,
			     char **err) MUSTCHECK;

/* A de-identify expression Citus pushes down, or NULL with *err. */
char *plan_citus_deid_expr(PGconn *conn, enum deid_method method,
			   const char *c, const struct catalog_column *col,
			   int ipad, int opad, char **err);

/* The row batch (by primary key) and the count after the run. */
void plan_citus_batch_statement(struct plan *p, const char *target_q,
				struct plan_stmt *st);
void plan_citus_after_statement(struct plan *p, struct plan_stmt *st);

/* Read the held ids again, before a statement that uses them. */
bool plan_citus_refresh_held(PGconn *conn, const struct plan *p,
			     enum db_errclass *class, char **err);

/*
 * A distributed table's rows as its shards' statistics say (reltuples,
 * summed over the workers). *KNOWN false when that is not a distributed
 * table, a shard was never analysed or not found, or the workers could
 * not be asked (logged at debug level): then count the rows.
 */
void plan_citus_table_rows(PGconn *conn, const struct plan *p,
			   long long *rows, bool *known);

/* On a Citus table P, SIZE: the session's pool of connections to each
 * worker: PLAN_CITUS_POOL for a rule's batches and the counts after them
 * (kept between transactions; driver_run sets it, once for all of a
 * rule's targets), PLAN_CITUS_POOL_ONE for the existence check and the
 * partition drops before them (engine.c); 0: Citus's own again (the
 * caller, when its counts are done; nothing when it was not set). An
 * admin's own pool size is kept. A failure costs only speed: it is
 * logged at debug level. */
void plan_citus_pool(PGconn *conn, struct plan *p, int size);

void plan_citus_free(struct plan_citus *c);

/* batch_run and batch_run_range for a Citus table (batch_citus.c). */
bool citus_batch_run(PGconn *conn, struct plan *p, size_t target,
		     const char *cutoff, long long limit, const char *from,
		     long long run_id, const char *detail_json,
		     struct batch_outcome *out, char **err) MUSTCHECK;
bool citus_batch_run_slice(PGconn *conn, struct plan *p, size_t target,
			   const char *cutoff, long long limit,
			   const char *from, long long run_id,
			   const char *detail_json, struct batch_outcome *out,
			   char **err) MUSTCHECK;

#endif
