#include "duration.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	enum duration_unit unit;
} unit_names[] = {
	{"ms", DUR_MILLISECOND},
	{"msec", DUR_MILLISECOND},
	{"millisecond", DUR_MILLISECOND},
	{"milliseconds", DUR_MILLISECOND},
	{"s", DUR_SECOND},
	{"sec", DUR_SECOND},
	{"secs", DUR_SECOND},
	{"second", DUR_SECOND},
	{"seconds", DUR_SECOND},
	{"min", DUR_MINUTE},
	{"mins", DUR_MINUTE},
	{"minute", DUR_MINUTE},
	{"minutes", DUR_MINUTE},
	{"h", DUR_HOUR},
	{"hr", DUR_HOUR},
	{"hour", DUR_HOUR},
	{"hours", DUR_HOUR},
	{"d", DUR_DAY},
	{"day", DUR_DAY},
	{"days", DUR_DAY},
	{"w", DUR_WEEK},
	{"week", DUR_WEEK},
	{"weeks", DUR_WEEK},
	{"mon", DUR_MONTH},
	{"month", DUR_MONTH},
	{"months", DUR_MONTH},
	{"y", DUR_YEAR},
	{"yr", DUR_YEAR},
	{"year", DUR_YEAR},
	{"years", DUR_YEAR},
};

/* Singular names as PostgreSQL's interval input spells them. */
static const char *const interval_words[] = {
	[DUR_MILLISECOND] = "millisecond",
	[DUR_SECOND] = "second",
	[DUR_MINUTE] = "minute",
	[DUR_HOUR] = "hour",
	[DUR_DAY] = "day",
	[DUR_WEEK] = "week",
	[DUR_MONTH] = "month",
	[DUR_YEAR] = "year",
};

static const int64_t unit_ms[] = {
	[DUR_MILLISECOND] = 1,
	[DUR_SECOND] = 1000,
	[DUR_MINUTE] = 60 * 1000,
	[DUR_HOUR] = 60 * 60 * 1000,
	[DUR_DAY] = 24 * 60 * 60 * 1000,
	[DUR_WEEK] = 7 * 24 * 60 * 60 * 1000LL,
	[DUR_MONTH] = -1,
	[DUR_YEAR] = -1,
};

/* Near misses and what to write instead. "m" is refused on purpose: it
 * could mean minutes or months, and a retention of 6 minutes instead of 6
 * months would erase nearly everything; the hint names both spellings. */
static const struct {
	const char *name;
	const char *hint;
} unit_hints[] = {
	{"m", "write \"min\" for minutes or \"month\" for months"},
	{"mi", "write \"min\" for minutes"},
	{"mn", "write \"min\" for minutes"},
	{"mo", "write \"month\" for months"},
	{"mos", "write \"months\""},
	{"mth", "write \"month\" for months"},
	{"mths", "write \"months\""},
	{"mnth", "write \"month\" for months"},
	{"mnths", "write \"months\""},
	{"hrs", "write \"h\" or \"hours\""},
	{"hs", "write \"h\" or \"hours\""},
	{"ds", "write \"d\" or \"days\""},
	{"wk", "write \"w\" or \"weeks\""},
	{"wks", "write \"w\" or \"weeks\""},
	{"ws", "write \"w\" or \"weeks\""},
	{"yrs", "write \"y\" or \"years\""},
	{"ys", "write \"y\" or \"years\""},
	{"sc", "write \"s\" for seconds"},
	{"ss", "write \"s\" for seconds"},
	{"msecs", "write \"ms\" for milliseconds"},
	{"us", "the smallest unit is \"ms\" (milliseconds)"},
	{"ns", "the smallest unit is \"ms\" (milliseconds)"},
	{"microsecond", "the smallest unit is \"ms\" (milliseconds)"},
	{"microseconds", "the smallest unit is \"ms\" (milliseconds)"},
	{"fortnight", "write \"2 weeks\" for each fortnight"},
	{"fortnights", "write \"2 weeks\" for each fortnight"},
	{"decade", "write \"10 years\" for each decade"},
	{"decades", "write \"10 years\" for each decade"},
};

/* The unknown unit or trailing text is quoted back to the user; a thread-local
 * buffer keeps err a plain const char * without an allocation to free. */
static _Thread_local char errbuf[160];

static const char *
skip_spaces(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Quote at most a short, printable piece of what the user wrote. */
static const char *
quoted_error(const char *what, const char *text, size_t len)
{
	char piece[32];
	size_t n = 0;

	for (size_t i = 0; i < len && n < sizeof(piece) - 4; i++) {
		unsigned char ch = (unsigned char)text[i];
		piece[n++] = (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
	}
	piece[n] = '\0';
	if (n < len)
		strcat(piece, "...");
	snprintf(errbuf, sizeof(errbuf), "%s \"%s\"", what, piece);
	return errbuf;
}

/* "unknown unit "m"", with what to write instead when it is a near miss. */
static const char *
unknown_unit_error(const char *unit, size_t len)
{
	const char *msg = quoted_error("unknown unit", unit, len);

	for (size_t i = 0; i < ARRAY_SIZE(unit_hints); i++)
		if (strlen(unit_hints[i].name) == len &&
		    strncasecmp(unit_hints[i].name, unit, len) == 0) {
			size_t n = strlen(errbuf);
			snprintf(errbuf + n, sizeof(errbuf) - n, ": %s",
				 unit_hints[i].hint);
			break;
		}
	return msg;
}

bool
duration_parse(const char *text, struct duration *out, const char **err)
{
	const char *msg = NULL;
	const char *p;
	int64_t amount = 0;
	bool overflow = false;

	if (!text)
		text = "";
	p = skip_spaces(text);
	if (*p == '\0') {
		msg = "empty duration";
		goto fail;
	}
	if (*p == '-') {
		msg = "durations cannot be negative";
		goto fail;
	}
	if (!isdigit((unsigned char)*p)) {
		msg = "missing number (write e.g. \"30 days\")";
		goto fail;
	}
	for (; isdigit((unsigned char)*p); p++) {
		int digit = *p - '0';
		if (amount > (INT64_MAX - digit) / 10)
			overflow = true;
		else
			amount = amount * 10 + digit;
	}
	if ((*p == '.' || *p == ',') && isdigit((unsigned char)p[1])) {
		msg = "fractions are not allowed; use a smaller unit "
		      "(\"90 min\", not \"1.5h\")";
		goto fail;
	}
	p = skip_spaces(p);

	const char *unit = p;
	while (isalpha((unsigned char)*p))
		p++;
	size_t unit_len = (size_t)(p - unit);
	if (unit_len == 0) {
		msg = *p ? quoted_error("expected a unit, found", p, strlen(p))
			 : "missing unit (e.g. \"s\", \"min\", \"h\", \"days\", "
			   "\"years\")";
		goto fail;
	}

	size_t i;
	for (i = 0; i < ARRAY_SIZE(unit_names); i++)
		if (strlen(unit_names[i].name) == unit_len &&
		    strncasecmp(unit_names[i].name, unit, unit_len) == 0)
			break;
	if (i == ARRAY_SIZE(unit_names)) {
		msg = unknown_unit_error(unit, unit_len);
		goto fail;
	}

	p = skip_spaces(p);
	if (*p) {
		msg = quoted_error("unexpected text after the unit:", p,
				   strlen(p));
		goto fail;
	}
	if (overflow || amount > DURATION_MAX_AMOUNT) {
		msg = "duration is too large (at most 1000000000 of a unit)";
		goto fail;
	}

	out->amount = amount;
	out->unit = unit_names[i].unit;
	return true;

fail:
	if (err)
		*err = msg;
	return false;
}

bool
duration_is_calendar(const struct duration *d)
{
	return d->unit == DUR_MONTH || d->unit == DUR_YEAR;
}

int64_t
duration_ms(const struct duration *d)
{
	if (duration_is_calendar(d))
		return -1;
	/* amount <= DURATION_MAX_AMOUNT keeps weeks well inside int64 */
	return d->amount * unit_ms[d->unit];
}

void
duration_to_interval(const struct duration *d, char *buf, size_t len)
{
	snprintf(buf, len, "%lld %s%s", (long long)d->amount,
		 interval_words[d->unit], d->amount == 1 ? "" : "s");
}
