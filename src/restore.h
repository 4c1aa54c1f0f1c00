/*
 * restore: what the ledger (ledger.h) is for. After each cycle the ledger
 * is told the erasure requests that cycle completed and the audit chain's
 * head, checked from the head it recorded before (so the cycle's check
 * costs what was appended since, not the whole trail). At the start of
 * each cycle, a database whose chain lacks that head was restored from a
 * backup (or lost audit rows): staff are mailed directly, a
 * `restore_detected` action is recorded, and every erasure of the ledger
 * that the database lacks is filed again, for that cycle to carry out
 * (SPEC §11).
 */
#ifndef RETENTIOND_RESTORE_H
#define RETENTIOND_RESTORE_H

#include <stdbool.h>
#include <stdio.h>

#include <libpq-fe.h>

#include "audit.h"
#include "config.h"
#include "engine.h"

#define RESTORE_REASON "re-applied after restore"

/*
 * At the start of a cycle (instance lock held, run RUN_ID recorded):
 * detect a restore and, when there was one, re-file what the database
 * lacks. Problems are logged; the cycle goes on either way.
 */
void restore_check(PGconn *conn, const struct config *cfg, long long run_id);

/*
 * `retentiond replay`: re-file every erasure of the ledger that the
 * database lacks, whether or not the chain lost the ledger's head, and
 * list them on OUT. DRY_RUN lists and changes nothing (RUN_ID unused).
 * Returns the number listed, or -1 with *err set.
 */
long long restore_replay(PGconn *conn, const struct config *cfg,
			 long long run_id, bool dry_run, FILE *out,
			 char **err) MUSTCHECK;

/*
 * After a cycle: append the erasure requests that RES completed (done or
 * partial) to the ledger, check the audit chain from the ledger's head
 * and append the new head when it is intact. *AV gets the check, with
 * n_rows the whole trail's length; returns audit_verify's status.
 */
int restore_record_cycle(PGconn *conn, const struct config *cfg,
			 const struct run_result *res,
			 struct audit_verify_result *av);

#endif
