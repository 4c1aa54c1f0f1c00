/*
 * Fuzz duration_parse (src/duration.c) with arbitrary text.
 *
 * Invariants: an accepted duration is in range, its interval literal fits
 * the documented 48 bytes and parses back to the same value, and its
 * length in milliseconds does not overflow; a refused one always says why,
 * in printable ASCII (the message is quoted back to the user).
 */
#include "fuzz.h"

#include "duration.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	struct duration d, again;
	const char *err = NULL;

	if (duration_parse(text, &d, &err)) {
		char buf[DURATION_TEXT_MAX];

		FUZZ_CHECK(d.amount >= 0 && d.amount <= DURATION_MAX_AMOUNT,
			   "amount %lld", (long long)d.amount);
		FUZZ_CHECK(d.unit >= DUR_MILLISECOND && d.unit <= DUR_YEAR,
			   "unit %d", (int)d.unit);
		duration_to_interval(&d, buf, sizeof(buf));
		FUZZ_CHECK(strlen(buf) < sizeof(buf) - 1, "\"%s\" may be cut",
			   buf);
		err = NULL;
		FUZZ_CHECK(duration_parse(buf, &again, &err),
			   "\"%s\" does not parse back: %s", buf, err);
		FUZZ_CHECK(again.amount == d.amount && again.unit == d.unit,
			   "\"%s\" parses back to %lld/%d, not %lld/%d", buf,
			   (long long)again.amount, (int)again.unit,
			   (long long)d.amount, (int)d.unit);
		if (duration_is_calendar(&d))
			FUZZ_CHECK(duration_ms(&d) == -1, "calendar unit in ms");
		else
			FUZZ_CHECK(duration_ms(&d) >= d.amount,
				   "%lld ms for %s", (long long)duration_ms(&d),
				   buf);
	} else {
		FUZZ_CHECK(err && *err, "refused without a message");
		for (const unsigned char *p = (const unsigned char *)err; *p;
		     p++)
			FUZZ_CHECK(*p >= 0x20 && *p < 0x7f,
				   "byte 0x%02x in the message", *p);
	}
	free(text);
	return 0;
}
