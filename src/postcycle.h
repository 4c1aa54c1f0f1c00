/*
 * postcycle: what follows every cycle — the run's report files in
 * report.directory, the summary mail queued in the outbox (per mail.send),
 * and delivery of everything the outbox still holds.
 *
 * Failures here are logged and never change the run's outcome: the data
 * work is done and audited; a mail that cannot go out stays in the outbox
 * for the next cycle.
 */
#ifndef RETENTIOND_POSTCYCLE_H
#define RETENTIOND_POSTCYCLE_H

#include <libpq-fe.h>

#include "config.h"
#include "coverage.h"
#include "engine.h"

/* After a cycle: the ledger, the report, the mail. COV (may be NULL) is
 * the cycle's coverage, for the report's Coverage section. Returns the
 * state of the audit chain as the cycle checked it (audit_verify's 0, 1
 * or -1; -1 also when there was no run to check), for the metrics file. */
int postcycle(PGconn *conn, const struct config *cfg,
	      const struct run_result *res, const struct coverage_cycle *cov);

/* For when the database itself is down: the alert cannot wait in the
 * outbox, so it is sent directly (unless mail is not configured or
 * mail.send is "never"). SUBJECT gets a "retentiond ALERT: " prefix unless
 * it starts with "retentiond"; control characters in it (a quoted libpq
 * error) become spaces, the full text belongs in BODY. Logged either way. */
void postcycle_alert_direct(const struct config *cfg, const char *subject,
			    const char *body);

#endif
