#include "replica.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"

/* How often the positions are read again while waiting. */
#define POLL_MS 200.0
/* How often a wait that goes on is logged again. */
#define RELOG_MS 30000.0

void
replica_history_add(struct replica_history *h, double at_ms, uint64_t lsn)
{
	if (h->n > 0 && h->s[h->n - 1].lsn > lsn) {
		/* the position went back: another server (a reload to a
		 * different database); what we saw of the old one says
		 * nothing about this one */
		h->n = 0;
		h->grain_ms = 0;
	}
	if (h->n > 0 && (h->s[h->n - 1].lsn == lsn ||
			 at_ms - h->s[h->n - 1].at_ms < h->grain_ms))
		return;		/* the oldest time at a position is what counts */
	if (h->n == REPLICA_HISTORY) {
		/* keep the first (the longest view back) and every other
		 * one after it, and from now on samples as far apart: the
		 * same span at a uniform, coarser grain */
		size_t k = 1;
		for (size_t i = 2; i < h->n; i += 2)
			h->s[k++] = h->s[i];
		h->n = k;
		h->grain_ms = (h->s[k - 1].at_ms - h->s[0].at_ms) / (double)(k - 1);
		if (at_ms - h->s[k - 1].at_ms < h->grain_ms)
			return;
	}
	h->s[h->n++] = (struct replica_sample){ at_ms, lsn };
}

double
replica_lag_ms(const struct replica_history *h, double now_ms,
	       uint64_t current_lsn, const struct replica_standby *s)
{
	uint64_t replayed = s->has_replay ? s->replay_lsn : 0;
	if (replayed >= current_lsn)
		return 0;	/* caught up, whatever a stale replay_lag says */
	/* the oldest time the primary was already past what the standby
	 * has replayed: WAL from then on is not replayed yet */
	double since = now_ms;
	for (size_t i = 0; i < h->n; i++)
		if (h->s[i].lsn > replayed) {
			since = fmin(since, h->s[i].at_ms);
			break;
		}
	double lag = now_ms - since;
	return s->replay_lag_ms > lag ? s->replay_lag_ms : lag;
}

struct replica_decision
replica_decide(const struct replica_history *h, double now_ms,
	       uint64_t current_lsn, const struct replica_standby *s, size_t n,
	       double max_lag_ms)
{
	struct replica_decision d = { REPLICA_OK, 0, 0 };

	for (size_t i = 0; i < n; i++)
		if (!s[i].visible)
			return (struct replica_decision){ REPLICA_HIDDEN, i, 0 };
	for (size_t i = 0; i < n; i++) {
		double lag = replica_lag_ms(h, now_ms, current_lsn, &s[i]);
		if (lag > max_lag_ms && lag > d.lag_ms)
			d = (struct replica_decision){ REPLICA_BEHIND, i, lag };
	}
	return d;
}

/* Positions seen by this process, across batches and cycles: LSNs only
 * grow, on a promoted standby too (a new timeline goes on from the old). */
static struct replica_history history;

/* Read the primary's position and every standby's; one row per standby
 * (or one row of NULLs when there is none). */
static PGresult *
read_positions(PGconn *conn, char **err)
{
	return db_query(conn,
		"SELECT (pg_catalog.pg_current_wal_lsn() - '0/0'::pg_lsn)::text,"
		" r.pid IS NOT NULL, r.state IS NOT NULL,"
		" coalesce(r.application_name, ''),"
		" coalesce(pg_catalog.host(r.client_addr), 'local'),"
		" (r.replay_lsn - '0/0'::pg_lsn)::text,"
		" (extract(epoch FROM r.replay_lag) * 1000)::float8"
		" FROM (SELECT 1) AS one"
		/* a base backup is no standby */
		" LEFT JOIN pg_catalog.pg_stat_replication AS r"
		"  ON r.state IS DISTINCT FROM 'backup'"
		" ORDER BY r.pid", 0, NULL, err);
}

static void
say_status(const struct engine_hooks *hooks, const char *line)
{
	if (hooks && hooks->status)
		hooks->status(hooks->arg, line);
}

/* One look: OK, BEHIND or HIDDEN into *d, the standby's name into NAME. */
static bool
look(PGconn *conn, double max_ms, struct replica_decision *d, char *name,
     size_t name_size, char **err)
{
	PGresult *res = read_positions(conn, err);
	if (!res)
		return false;
	int n = PQntuples(res);
	double now = monotonic_ms();
	uint64_t current = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	struct replica_standby *s = xcalloc((size_t)n, sizeof(*s));
	size_t k = 0;
	char **names = xcalloc((size_t)n, sizeof(*names));

	replica_history_add(&history, now, current);
	for (int i = 0; i < n; i++) {
		if (PQgetvalue(res, i, 1)[0] != 't')
			continue;	/* the NULL row: no standby */
		names[k] = xasprintf("%s (%s)", PQgetvalue(res, i, 3),
				     PQgetvalue(res, i, 4));
		s[k].name = names[k];
		s[k].visible = PQgetvalue(res, i, 2)[0] == 't';
		s[k].has_replay = !PQgetisnull(res, i, 5);
		s[k].replay_lsn = strtoull(PQgetvalue(res, i, 5), NULL, 10);
		s[k].replay_lag_ms = PQgetisnull(res, i, 6)
			? -1 : strtod(PQgetvalue(res, i, 6), NULL);
		k++;
	}
	*d = replica_decide(&history, now, current, s, k, max_ms);
	for (size_t i = 0; i < k && d->verdict == REPLICA_OK; i++)
		log_debug("standby %s: replays %.3f s behind (%llu bytes)",
			  s[i].name, replica_lag_ms(&history, now, current, &s[i])
			  / 1000.0, (unsigned long long)(s[i].has_replay &&
			  current > s[i].replay_lsn ? current - s[i].replay_lsn : 0));
	if (d->verdict != REPLICA_OK)
		snprintf(name, name_size, "%s", s[d->worst].name);
	for (size_t i = 0; i < k; i++)
		free(names[i]);
	free(names);
	free(s);
	PQclear(res);
	return true;
}

double
replica_before_batch(PGconn *conn, const struct rule *r,
		     const struct engine_hooks *hooks, struct replica_waiting *w,
		     char **err)
{
	double max_ms = (double)duration_ms(&r->limits.max_replica_lag);
	struct replica_decision d;
	char name[256] = "";
	char *e = NULL;

	if (max_ms <= 0)
		return 0;
	if (!look(conn, max_ms, &d, name, sizeof(name), &e)) {
		*err = xasprintf("could not read the standbys' replay "
				 "positions: %s", e);
		free(e);
		return -1;
	}
	if (d.verdict == REPLICA_HIDDEN) {
		*err = xasprintf("max_replica_lag is set but role \"%s\" cannot "
				 "see how far standby %s replays "
				 "(pg_stat_replication shows it only to "
				 "pg_monitor): GRANT pg_monitor TO \"%s\"",
				 PQuser(conn), name, PQuser(conn));
		return -1;
	}
	double now = monotonic_ms();
	if (d.verdict == REPLICA_OK) {
		if (w->active) {
			w->waited_s += (now - w->since_ms) / 1000.0;
			log_info("rule \"%s\": standbys within max_replica_lag "
				 "again after %.1f s", r->name,
				 (now - w->since_ms) / 1000.0);
		}
		w->active = false;
		return 0;
	}
	if (!w->active) {
		w->active = true;
		w->since_ms = now;
		w->logged_ms = now - RELOG_MS;
	}
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->lag_ms = d.lag_ms;
	char line[512];
	snprintf(line, sizeof(line), "rule %s: waiting for standby %s, %.1f s "
		 "behind (max_replica_lag %.1f s)", r->name, name,
		 d.lag_ms / 1000.0, max_ms / 1000.0);
	say_status(hooks, line);
	if (now - w->logged_ms >= RELOG_MS) {
		log_notice("rule \"%s\": waiting: standby %s replays %.1f s "
			   "behind, more than max_replica_lag (%.1f s)", r->name,
			   name, d.lag_ms / 1000.0, max_ms / 1000.0);
		w->logged_ms = now;
	}
	return POLL_MS;
}


void
replica_check_role(PGconn *conn, const struct config *cfg, struct diag *diag)
{
	const char *file = cfg->path;
	int line = 0;
	char *err = NULL;

	if (duration_ms(&cfg->limits.max_replica_lag) <= 0) {
		size_t i = 0;
		while (i < cfg->n_rules &&
		       duration_ms(&cfg->rules[i].limits.max_replica_lag) <= 0)
			i++;
		if (i == cfg->n_rules)
			return;
		file = cfg->rules[i].file;
		line = cfg->rules[i].line;
	}
	/* what the server asks before it shows a walsender's positions */
	PGresult *res = db_query(conn,
		"SELECT pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')",
		0, NULL, &err);
	if (!res) {
		diag_warning(diag, file, line, "max_replica_lag: could not ask "
			     "whether role \"%s\" may see pg_stat_replication: "
			     "%s", PQuser(conn), err);
		free(err);
		return;
	}
	if (PQgetvalue(res, 0, 0)[0] != 't')
		diag_warning(diag, file, line, "max_replica_lag is set, but role "
			     "\"%s\" cannot see how far standbys replay "
			     "(pg_stat_replication's lag columns are NULL without "
			     "pg_monitor): runs will fail until GRANT pg_monitor "
			     "TO \"%s\"", PQuser(conn), PQuser(conn));
	PQclear(res);
}
