#include "ahead.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

void
ahead_init(struct ahead *ah, const struct config *cfg)
{
	memset(ah, 0, sizeof(*ah));
	second_init(&ah->second, cfg,
		    "to read the next batch's bound ahead");
}

void
ahead_prepare(struct ahead *ah)
{
	second_prepare(&ah->second);
}

void
ahead_bound_free(struct ahead_bound *b)
{
	free(b->first);
	free(b->limit_age);
	b->first = b->limit_age = NULL;
}

static void
forget(struct ahead *ah)
{
	ah->sent = ah->have = false;
	ah->target = NULL;
	free(ah->from);
	free(ah->swept_upto);
	ah->from = ah->swept_upto = NULL;
	ahead_bound_free(&ah->bound);
}

void
ahead_drop(struct ahead *ah)
{
	if (ah->sent && ah->second.conn)
		second_cancel(ah->second.conn);
	forget(ah);
}

void
ahead_close(struct ahead *ah)
{
	forget(ah);
	second_close(&ah->second);
}

bool
ahead_send(struct ahead *ah, const struct plan *p,
	   const struct plan_target *t, const char *cutoff, const char *from,
	   long long limit, const char *swept, const char *swept_upto)
{
	ahead_drop(ah);
	if (ah->second.failed)
		return false;
	PGconn *h = second_get(&ah->second);
	if (!h)
		return false;
	char lim[32];
	snprintf(lim, sizeof(lim), "%lld", limit);
	struct plan_args a = { .cutoff = cutoff, .limit = lim, .from = from,
			       .swept = swept, .swept_upto = swept_upto };
	if (!plan_send(h, p, &t->bound, &a)) {
		second_give_up(&ah->second, db_error(h, NULL));
		return false;
	}
	ah->sent = true;
	ah->target = t;
	ah->from = xstrdup(from);
	ah->swept_upto = swept_upto ? xstrdup(swept_upto) : NULL;
	ah->limit = limit;
	return true;
}

static char *
dup_or_null(const PGresult *res, int col)
{
	return PQgetisnull(res, 0, col) ? NULL
					: xstrdup(PQgetvalue(res, 0, col));
}

/* The read's result into ah->bound; false (the connection given up) when
 * it failed. */
static bool
collect(struct ahead *ah)
{
	PGconn *h = ah->second.conn;
	PGresult *res;
	char *err = NULL;

	ah->sent = false;
	while ((res = PQgetResult(h)) != NULL) {
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
		    !ah->have) {
			ah->bound.first = dup_or_null(res, 0);
			ah->bound.limit_age = dup_or_null(res, 1);
			ah->have = true;
		} else if (!err && PQresultStatus(res) != PGRES_TUPLES_OK) {
			err = db_error(h, res);
		}
		PQclear(res);
	}
	if (!ah->have || err) {
		ahead_bound_free(&ah->bound);
		ah->have = false;
		second_give_up(&ah->second, err ? err : db_error(h, NULL));
		return false;
	}
	return true;
}

void
ahead_wait(struct ahead *ah)
{
	if (ah->sent && !collect(ah))
		forget(ah);
}

bool
ahead_take(struct ahead *ah, const struct plan_target *t, const char *from,
	   long long limit, struct ahead_bound *out, long long *used_limit,
	   char **swept_upto)
{
	/* Only a read that starts where this batch starts will do, and one no
	 * bigger than the batch the driver wants now: a smaller one (the
	 * driver grew the size meanwhile) is safe, a bigger one (it shrank:
	 * slow batches, or others writing) would make a longer transaction
	 * than it asked for. */
	bool fits = (ah->sent || ah->have) && ah->target == t &&
		    strcmp(ah->from, from) == 0 && ah->limit <= limit;
	if (!fits) {
		ahead_drop(ah);
		return false;
	}
	if (ah->sent && !collect(ah)) {
		forget(ah);
		return false;
	}
	*out = ah->bound;
	memset(&ah->bound, 0, sizeof(ah->bound));
	*used_limit = ah->limit;
	*swept_upto = ah->swept_upto;
	ah->swept_upto = NULL;
	forget(ah);
	return true;
}
