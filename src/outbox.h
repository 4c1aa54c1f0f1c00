/*
 * outbox: mail waits in the database (the `outbox` table, SPEC §4) until
 * an SMTP server has accepted it, so an SMTP outage loses no mail.
 *
 * Delivery takes one row at a time with SELECT ... FOR UPDATE SKIP LOCKED
 * and keeps its transaction open while the message is sent, so two
 * senders (a daemon and a manual `run`) never send the same row. A failure
 * counts the attempt, keeps the error (no secrets: mail.c scrubs them) and
 * sets next_attempt_at with capped exponential backoff.
 *
 * At-least-once: when the server accepted a message but the database
 * could not record it, it is sent again later; its Message-ID is derived
 * from the row, so recipients' clients can tell it is the same mail.
 */
#ifndef RETENTIOND_OUTBOX_H
#define RETENTIOND_OUTBOX_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "config.h"
#include "util.h"

/* Backoff after the first failure, and its cap. */
#define OUTBOX_BACKOFF_FIRST_S 60
#define OUTBOX_BACKOFF_MAX_S 3600
/* At most this many messages per delivery round, so a long queue does not
 * hold up the next cycle; the rest go out with the next round. */
#define OUTBOX_MAX_PER_ROUND 50

/* Seconds until the next try after ATTEMPTS failed ones (>= 1):
 * 1 min, 2 min, 4 min, ... at most 1 h. */
long long outbox_backoff_seconds(int attempts);

/* Queue a message; inside or outside a transaction. *id gets its id (may
 * be NULL). */
bool outbox_add(PGconn *conn, const char *schema, const char *subject,
		const char *text, const char *html, long long *id,
		char **err) MUSTCHECK;

struct outbox_result {
	int sent;
	int failed;		/* attempts that failed this round */
};

/*
 * Send what is due (sent_at IS NULL, next_attempt_at NULL or past), oldest
 * first. Stops at the first failure: the server is most likely down or
 * refusing us, and every further try would wait for the same timeout.
 * Must be called outside a transaction. Failures are logged here, naming
 * the message; returns false only when the database failed (*err set).
 */
bool outbox_deliver(PGconn *conn, const struct config *cfg,
		    struct outbox_result *res, char **err) MUSTCHECK;

#endif
