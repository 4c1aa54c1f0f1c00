#include "busy.h"

bool
busy_observe(struct busy *b, long long bytes, double now_ms)
{
	if (bytes > BUSY_WAL_BYTES) {
		b->until_ms = now_ms + BUSY_HOLD_MS;
		b->seen = true;
	}
	return busy_now(b, now_ms);
}

bool
busy_now(const struct busy *b, double now_ms)
{
	return b->seen && now_ms < b->until_ms;
}
