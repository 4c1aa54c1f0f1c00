#include "schedule.h"

static long
mod_day(long sec)
{
	sec %= SCHEDULE_SECONDS_PER_DAY;
	return sec < 0 ? sec + SCHEDULE_SECONDS_PER_DAY : sec;
}

bool
schedule_in_window(const struct schedule_window *w, long sec_of_day)
{
	if (!w->set || w->start == w->end)
		return true;
	long minute = mod_day(sec_of_day) / 60;
	if (w->start < w->end)
		return minute >= w->start && minute < w->end;
	/* spans midnight: 22:00-02:00 is open late in the day and early */
	return minute >= w->start || minute < w->end;
}

long
schedule_until_window(const struct schedule_window *w, long sec_of_day)
{
	if (schedule_in_window(w, sec_of_day))
		return 0;
	long now = mod_day(sec_of_day);
	return mod_day((long)w->start * 60 - now);
}

int64_t
schedule_next_due(int64_t last_start_ms, int64_t interval_ms, int64_t now_ms)
{
	int64_t due = last_start_ms + interval_ms;
	return due > now_ms ? due : now_ms;
}

int64_t
schedule_wait_ms(int64_t due_ms, int64_t now_ms,
		 const struct schedule_window *w, long sec_of_day)
{
	int64_t wait = due_ms > now_ms ? due_ms - now_ms : 0;
	/* the time of day when the interval is up; sub-second parts are
	 * rounded up so a window opening at 01:00:00 is not missed by a
	 * rounding down to 00:59:59 */
	long at = mod_day(sec_of_day + (long)((wait + 999) / 1000));
	long more = schedule_until_window(w, at);
	return wait + (int64_t)more * 1000;
}

int64_t
schedule_backoff_next(int64_t cur_ms)
{
	if (cur_ms < SCHEDULE_BACKOFF_MIN_MS)
		return SCHEDULE_BACKOFF_MIN_MS;
	if (cur_ms >= SCHEDULE_BACKOFF_MAX_MS / 2)
		return SCHEDULE_BACKOFF_MAX_MS;
	return cur_ms * 2;
}
