/*
 * duration: "24 hours", "30d", "7 years", "200ms".
 *
 * Calendar units (months, years) are kept as such and handed to PostgreSQL
 * as an interval; C never turns a month into seconds.
 */
#ifndef RETENTIOND_DURATION_H
#define RETENTIOND_DURATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

enum duration_unit {
	DUR_MILLISECOND,
	DUR_SECOND,
	DUR_MINUTE,
	DUR_HOUR,
	DUR_DAY,
	DUR_WEEK,
	DUR_MONTH,
	DUR_YEAR
};

struct duration {
	int64_t amount;		/* >= 0 */
	enum duration_unit unit;
};

/* Largest amount accepted for any unit; keeps every conversion in range. */
#define DURATION_MAX_AMOUNT 1000000000LL

/*
 * Parse TEXT. On failure returns false and, if err is not NULL, stores a
 * static English message ("unknown unit \"fortnights\"", ...).
 */
bool duration_parse(const char *text, struct duration *out,
		    const char **err) MUSTCHECK;

/* True for months and years, which have no fixed length. */
bool duration_is_calendar(const struct duration *d);

/* Milliseconds for fixed units; -1 for calendar units. */
int64_t duration_ms(const struct duration *d);

/*
 * The PostgreSQL interval literal, e.g. "24 hours", "7 years",
 * "200 milliseconds"; always fits in 48 bytes.
 */
void duration_to_interval(const struct duration *d, char *buf, size_t len);

/* The same as the user wrote it, normalised: "24 hours", "1 year". */
#define DURATION_TEXT_MAX 48

#endif
