/*
 * erasure: right-to-erasure requests (SPEC §5, §11). A request names a
 * subject ("customer:42"); each cycle applies every rule with that subject
 * to the subject's rows, whatever their age, and follows foreign keys to
 * the rows that refer to them (erasure_graph.c), children first, each
 * table by its own rule, as the rule's on_erasure says: delete,
 * de-identify, or keep (a legal duty outlives the request; what was kept,
 * and under which policy, is recorded). A request ends done, partial (all
 * that is left is kept under a named policy) or stays pending (a block,
 * a failure, or work a later cycle can still do).
 */
#ifndef RETENTIOND_ERASURE_H
#define RETENTIOND_ERASURE_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "config.h"
#include "engine.h"
#include "util.h"

/* Record a request; *id and *due_at (requested + 1 calendar month, as
 * PostgreSQL prints it, malloc'd) on success. */
bool erasure_add(PGconn *conn, const char *schema, const char *subject,
		 const char *subject_id, const char *reason, long long *id,
		 char **due_at, char **err) MUSTCHECK;

/* The same insert into TABLE (erasure_requests or access_requests, which
 * share these columns and the one-month due date). */
bool erasure_file_request(PGconn *conn, const char *schema, const char *table,
			  const char *subject, const char *subject_id,
			  const char *reason, long long *id, char **due_at,
			  char **err) MUSTCHECK;

struct driver_ctx;

/*
 * Work through the pending (and held) requests with the rules in ORDER
 * (indexes into cfg->rules, children before parents), only those RUN[i]
 * marks as taking part, in batches through the driver D (its connection,
 * config, run, deadline and stop hook). DRY_RUN counts without changing
 * anything. Results are appended to out->erasures; out->interrupted when
 * a stop cut a request short. False on a database error that stopped the
 * whole pass.
 */
bool erasure_process(const struct driver_ctx *d, const size_t *order,
		     const bool *run, bool dry_run, struct run_result *out,
		     char **err) MUSTCHECK;

void erasure_outcome_free(struct erasure_outcome *e);

#endif
