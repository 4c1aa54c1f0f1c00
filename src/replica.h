/*
 * replica: wait for standbys that replay too far behind
 * (limits.max_replica_lag, SPEC §10). A retention run writes a lot of WAL;
 * a standby that falls behind is a stale failover target and a growing
 * disk, so before each batch the batch driver asks replica_before_batch
 * (driver.h's before_batch seam).
 *
 * pg_stat_replication's replay_lag is not trusted alone: it is NULL, or
 * stays at its last value, when the standby reports nothing new (replay
 * paused). Lag is also measured from positions and time: the primary's
 * WAL position is sampled at each check, and a standby that has not
 * replayed the position the primary had at time T is at least now - T
 * behind.
 */
#ifndef RETENTIOND_REPLICA_H
#define RETENTIOND_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "config.h"
#include "engine.h"
#include "util.h"

#define REPLICA_HISTORY 256

/* The primary's WAL position seen at a time (monotonic ms). */
struct replica_sample {
	double at_ms;
	uint64_t lsn;
};

/* Samples in time and position order; when full, every other one goes
 * and later ones are taken at least GRAIN_MS apart, so the history keeps
 * its span at a coarser grain (a lag is then known to within a grain). */
struct replica_history {
	struct replica_sample s[REPLICA_HISTORY];
	size_t n;
	double grain_ms;	/* 0 until the first thinning */
};

void replica_history_add(struct replica_history *h, double at_ms,
			 uint64_t lsn);

/* One row of pg_stat_replication. */
struct replica_standby {
	const char *name;	/* "application_name (client_addr)" */
	bool visible;		/* the role may read its positions */
	bool has_replay;	/* replay_lsn is not NULL */
	uint64_t replay_lsn;
	double replay_lag_ms;	/* < 0: NULL */
};

/* How far behind S replays, in ms, when the primary is at CURRENT now:
 * 0 when it has replayed CURRENT; else the larger of replay_lag and the
 * time since the oldest sample in H (or now) beyond S's replay position. */
double replica_lag_ms(const struct replica_history *h, double now_ms,
		      uint64_t current_lsn, const struct replica_standby *s);

enum replica_verdict {
	REPLICA_OK,		/* every standby within the limit */
	REPLICA_BEHIND,		/* standby WORST is LAG_MS behind */
	REPLICA_HIDDEN		/* standby WORST's positions are hidden */
};

struct replica_decision {
	enum replica_verdict verdict;
	size_t worst;
	double lag_ms;
};

/* Whether to wait: the standby furthest behind if any is past MAX_LAG_MS;
 * a standby whose positions the role cannot read decides first (fail
 * closed: a lag that cannot be measured is no lag within bounds). */
struct replica_decision replica_decide(const struct replica_history *h,
				       double now_ms, uint64_t current_lsn,
				       const struct replica_standby *s,
				       size_t n, double max_lag_ms);

/* A wait in progress, across the looks of one batch loop. */
struct replica_waiting {
	bool active;		/* a standby is behind: waiting */
	double since_ms;	/* monotonic: since when */
	double logged_ms;	/* the log said so last */
	double waited_s;	/* waits that ended, in total */
	double lag_ms;		/* the last look: how far behind */
	char name[256];		/* and which standby */
};

/*
 * One look before a batch of rule R, for a batch loop that waits itself
 * (the batch driver's before_batch seam): 0 to go on; else how many ms to
 * wait before looking again, having said why (log, HOOKS' status line);
 * -1 with *err when the lag cannot be read (fail closed). W starts zeroed
 * and keeps the wait across looks; W->waited_s adds up waits that ended.
 */
double replica_before_batch(PGconn *conn, const struct rule *r,
			    const struct engine_hooks *hooks,
			    struct replica_waiting *w, char **err) MUSTCHECK;

/* `check`: a warning into DIAG when max_replica_lag is set (globally or
 * on a rule) but the role cannot see pg_stat_replication's positions. */
void replica_check_role(PGconn *conn, const struct config *cfg,
			struct diag *diag);

#endif
