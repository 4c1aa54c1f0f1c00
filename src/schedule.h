/*
 * schedule: when the daemon may start its next cycle, and how long it waits
 * before the next reconnect attempt.
 *
 * Pure arithmetic on times the caller passes in — no clock is read here —
 * so the rules (start to start on the monotonic clock, the window in local
 * time, the backoff) are unit-tested without sleeping.
 */
#ifndef RETENTIOND_SCHEDULE_H
#define RETENTIOND_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#define SCHEDULE_SECONDS_PER_DAY 86400L

/* Reconnect delays: the first retry after one second, doubling up to five
 * minutes, so a restart of PostgreSQL is bridged in seconds and a long
 * outage costs one attempt every five minutes. */
#define SCHEDULE_BACKOFF_MIN_MS 1000LL
#define SCHEDULE_BACKOFF_MAX_MS (5LL * 60 * 1000)

/* A window from START to END, minutes after local midnight (0..1439); END
 * before START spans midnight. An empty window (start == end) is refused by
 * the config and treated here as "always open". */
struct schedule_window {
	bool set;
	int start;
	int end;
};

/* True when a cycle may start at SEC_OF_DAY (0..86399, local time). The
 * window includes its start minute and excludes its end minute. */
bool schedule_in_window(const struct schedule_window *w, long sec_of_day);

/* Seconds from SEC_OF_DAY until the window next opens; 0 when it is open. */
long schedule_until_window(const struct schedule_window *w, long sec_of_day);

/*
 * When the next cycle is due, in monotonic milliseconds: one INTERVAL after
 * the last cycle's start. A cycle that ran past its successor's slot is not
 * made up by a burst: the next one is due at once (NOW), once.
 */
int64_t schedule_next_due(int64_t last_start_ms, int64_t interval_ms,
			  int64_t now_ms);

/*
 * Milliseconds from NOW_MS until a cycle may start: first DUE_MS must have
 * come (monotonic), then the window must be open at that moment. SEC_OF_DAY
 * is the local time of day at NOW_MS. The window part is an estimate across
 * a DST change or a clock step; callers re-check and never sleep on it for
 * long.
 */
int64_t schedule_wait_ms(int64_t due_ms, int64_t now_ms,
			 const struct schedule_window *w, long sec_of_day);

/* The reconnect delay after one of CUR_MS failed: SCHEDULE_BACKOFF_MIN_MS
 * first (CUR_MS == 0), then doubling, capped at SCHEDULE_BACKOFF_MAX_MS. */
int64_t schedule_backoff_next(int64_t cur_ms);

#endif
