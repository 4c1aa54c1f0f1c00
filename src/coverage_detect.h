/*
 * coverage_detect: the pure half of `coverage` (SPEC §9). Decides from a
 * column's name and type (coverage_names.c) and sampled values
 * (coverage_detect.c) whether it holds personal data; matches
 * `coverage.ignore` patterns. No database, no I/O, so every decision is
 * unit-tested (tests/unit/test_coverage.c).
 *
 * Values handed to these functions are never copied, kept or printed:
 * the caller learns only which kinds matched.
 */
#ifndef RETENTIOND_COVERAGE_DETECT_H
#define RETENTIOND_COVERAGE_DETECT_H

#include <stdbool.h>
#include <stddef.h>

/* What a column name says. */
enum cov_category {
	COV_NONE = 0,
	COV_EMAIL,
	COV_PHONE,
	COV_PERSON_NAME,
	COV_ADDRESS,
	COV_BIRTH_DATE,
	COV_NATIONAL_ID,
	COV_PASSPORT,
	COV_CARD,
	COV_BANK,
	COV_IP,
	COV_USER_AGENT,
	COV_DEVICE_ID,
	COV_GEO,
	COV_FREE_TEXT,
	COV_N_CATEGORIES
};

enum cov_confidence {
	COV_CONF_NONE = 0,
	COV_CONF_MEDIUM,
	COV_CONF_HIGH
};

/* Kinds of value found in a sample (bits). */
enum cov_value_kind {
	COV_VAL_EMAIL = 1 << 0,
	COV_VAL_PHONE = 1 << 1,
	COV_VAL_IP = 1 << 2,
	COV_VAL_CARD = 1 << 3,
	COV_VAL_IBAN = 1 << 4,
	COV_VAL_KEY = 1 << 5	/* a JSON key from the name dictionary */
};
#define COV_N_VALUE_KINDS 6

/* "e-mail", "phone", "name", ... */
const char *cov_category_name(enum cov_category c);
/* "e-mail", "phone", "IP address", "card number", "IBAN", "json key" for
 * one bit of enum cov_value_kind. */
const char *cov_value_kind_name(unsigned kind);
const char *cov_confidence_name(enum cov_confidence c);

/*
 * Match COLUMN (any case style: snake_case, camelCase, kebab, squashed)
 * against the dictionary. TABLE (may be NULL) is the second signal for
 * ambiguous words such as "name" and "address": a table of people makes
 * them high, a table of things (products, countries) rules them out,
 * anything else leaves them medium. Returns the confidence; *cat is set
 * when it is not COV_CONF_NONE.
 */
enum cov_confidence cov_name_match(const char *column, const char *table,
				   enum cov_category *cat);

/* inet, cidr, macaddr, macaddr8 (the base type name). */
bool cov_type_match(const char *base_type);

/* Types whose values are sampled: text, varchar, bpchar, json, jsonb. */
bool cov_type_sampled(const char *base_type);
bool cov_type_json(const char *base_type);

/* The checks on one candidate, exposed for tests. */
bool cov_luhn(const char *digits);	/* only digits */
bool cov_iban(const char *s, size_t len);	/* spaces allowed */
bool cov_email(const char *s, size_t len);
bool cov_phone(const char *s, size_t len);	/* the whole value */
bool cov_ip(const char *s, size_t len);	/* one IPv4 or IPv6 token */

/* Which kinds occur in one text value (LEN bytes, not NUL-terminated
 * necessarily). JSON: when IS_JSON, string keys are looked up in the name
 * dictionary (COV_VAL_KEY) and keys and values are scanned. */
unsigned cov_scan_value(const char *s, size_t len, bool is_json);

/*
 * Counts for one sampled column, and the verdict for one kind (bit K of
 * enum cov_value_kind) from them: the share of non-null values with that
 * kind; at least half is high, at least a tenth medium, less is none.
 * *percent is the share, rounded down.
 */
struct cov_sample {
	unsigned long nonnull;
	unsigned long hits[COV_N_VALUE_KINDS];
};
void cov_sample_add(struct cov_sample *s, unsigned kinds);
enum cov_confidence cov_sample_verdict(const struct cov_sample *s, int k,
				       int *percent);

/*
 * An ignore pattern: "schema.table" or "schema.table.column", each part
 * an identifier or "*"-wildcarded text ("*" matches any run of
 * characters, within one part). Quoted parts ("My Schema") are honoured.
 * COLUMN NULL asks about the table as a whole: only a two-part pattern
 * matches then; a two-part pattern also matches every column.
 */
bool cov_pattern_valid(const char *pattern);
bool cov_ignore_match(const char *pattern, const char *schema,
		      const char *table, const char *column);

#endif
