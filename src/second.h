/*
 * second: a second connection to the same database, for work that runs
 * beside the main connection's (pcount.h, ahead.h).
 *
 * Opened on demand, set up like the first (db_connect_finish), without
 * parallel workers: its work is one scan beside the first connection's,
 * and workers would only compete with it for the same cores. It is an
 * optimization wherever it is used: when it cannot be had, it is not
 * tried again, and the caller does the work on the first connection.
 */
#ifndef RETENTIOND_SECOND_H
#define RETENTIOND_SECOND_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "config.h"

struct second {
	const struct config *cfg;
	const char *why;	/* for the log: "to count big partitions ..." */
	PGconn *conn;
	bool connecting;	/* the connection is not finished yet */
	bool failed;		/* it could not be had: do not retry */
};

void second_init(struct second *s, const struct config *cfg, const char *why);

/* Start opening the connection, so that it is ready when needed. */
void second_prepare(struct second *s);

/* The connection, finished if it was still opening; NULL (logged once)
 * when it cannot be had. */
PGconn *second_get(struct second *s);

/* Cancel what the connection runs and read its results away, leaving it
 * idle. */
void second_cancel(PGconn *conn);

/* Give the connection up after a failure on it (logged with ERR, which is
 * freed); it is not tried again. */
void second_give_up(struct second *s, char *err);

/* Close it, cancelling whatever it still runs. */
void second_close(struct second *s);

#endif
