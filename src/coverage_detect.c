/*
 * coverage_detect: what sampled values say (e-mail, phone, IP, card and
 * IBAN checks, in text and json), the verdict of a sample, and ignore
 * patterns (SPEC §9). Column names are judged in coverage_names.c.
 */
#include "coverage_detect.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

/* Longest json key looked up in the dictionary. */
#define MAX_KEY 128

/* --- single checks ---------------------------------------------------------- */

bool
cov_luhn(const char *d)
{
	size_t n = strlen(d);
	int sum = 0;

	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		int v = d[n - 1 - i] - '0';
		if (v < 0 || v > 9)
			return false;
		if (i % 2 == 1) {
			v *= 2;
			if (v > 9)
				v -= 9;
		}
		sum += v;
	}
	return sum % 10 == 0;
}

bool
cov_iban(const char *s, size_t len)
{
	char c[40];
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == ' ')
			continue;
		if (n >= 34 || !isalnum((unsigned char)s[i]))
			return false;
		c[n++] = (char)toupper((unsigned char)s[i]);
	}
	if (n < 15 || !isalpha((unsigned char)c[0]) ||
	    !isalpha((unsigned char)c[1]) || !isdigit((unsigned char)c[2]) ||
	    !isdigit((unsigned char)c[3]))
		return false;
	/* move the first four to the end, letters as 10..35, mod 97 */
	unsigned rem = 0;
	for (size_t k = 0; k < n; k++) {
		char ch = c[(k + 4) % n];
		if (isdigit((unsigned char)ch))
			rem = (rem * 10 + (unsigned)(ch - '0')) % 97;
		else
			rem = (rem * 100 + (unsigned)(ch - 'A' + 10)) % 97;
	}
	return rem == 1;
}

static bool
email_local(int c)
{
	return isalnum(c) || strchr("._%+-", c);
}

static bool
email_domain(int c)
{
	return isalnum(c) || c == '.' || c == '-';
}

bool
cov_email(const char *s, size_t len)
{
	const char *at = memchr(s, '@', len);
	size_t i;

	if (!at || at == s)
		return false;
	for (const char *p = s; p < at; p++)
		if (!email_local((unsigned char)*p))
			return false;
	const char *d = at + 1, *end = s + len;
	if (d >= end || *d == '.' || *d == '-')
		return false;
	const char *dot = NULL;
	for (const char *p = d; p < end; p++) {
		if (!email_domain((unsigned char)*p))
			return false;
		if (*p == '.') {
			if (p[-1] == '.')
				return false;
			dot = p;
		}
	}
	if (!dot)
		return false;
	/* a top-level domain of letters */
	for (i = 0; dot + 1 + i < end; i++)
		if (!isalpha((unsigned char)dot[1 + i]))
			return false;
	return i >= 2;
}

bool
cov_phone(const char *s, size_t len)
{
	size_t b = 0, e = len, digits = 0, seps = 0;
	bool lead;

	while (b < e && isspace((unsigned char)s[b]))
		b++;
	while (e > b && isspace((unsigned char)s[e - 1]))
		e--;
	if (b == e)
		return false;
	lead = s[b] == '+' || s[b] == '0' || s[b] == '(';
	for (size_t i = b; i < e; i++) {
		char c = s[i];
		if (isdigit((unsigned char)c))
			digits++;
		else if (c == ' ' || c == '-' || c == '.' || c == '/')
			seps++;
		else if (!(c == '+' && i == b) && c != '(' && c != ')')
			return false;
	}
	if (digits < 7 || digits > 15)
		return false;
	if (s[b] == '+')
		return isdigit((unsigned char)s[b + 1]) || s[b + 1] == ' ' ||
		       s[b + 1] == '(';
	if (lead)
		return true;
	/* North American style without a prefix: 555-123-4567 */
	return digits == 10 && seps == 2 && e - b == 12 &&
	       (s[b + 3] == '-' || s[b + 3] == '.' || s[b + 3] == ' ') &&
	       s[b + 7] == s[b + 3];
}

bool
cov_ip(const char *s, size_t len)
{
	char buf[64];
	unsigned char a[16];

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (memchr(s, ':', len))
		return len >= 6 && inet_pton(AF_INET6, buf, a) == 1;
	return inet_pton(AF_INET, buf, a) == 1;
}

/* --- scanning a value --------------------------------------------------------- */

static bool
word_char(int c)
{
	return isalnum(c) || c == '_';
}

static unsigned
scan_emails(const char *s, size_t len)
{
	for (const char *at = memchr(s, '@', len); at;
	     at = memchr(at + 1, '@', len - (size_t)(at + 1 - s))) {
		const char *b = at, *e = at + 1;
		while (b > s && email_local((unsigned char)b[-1]))
			b--;
		while (e < s + len && email_domain((unsigned char)*e))
			e++;
		while (e > at + 1 && (e[-1] == '.' || e[-1] == '-'))
			e--;
		if (cov_email(b, (size_t)(e - b)))
			return COV_VAL_EMAIL;
		if (at + 1 >= s + len)
			break;
	}
	return 0;
}

static bool
ip_char(int c)
{
	return isxdigit(c) || c == '.' || c == ':';
}

static unsigned
scan_ips(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		if (!ip_char((unsigned char)s[i]) ||
		    (i > 0 && (word_char((unsigned char)s[i - 1]) ||
			       s[i - 1] == '.'))) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < len && ip_char((unsigned char)s[j]))
			j++;
		size_t e = j;
		while (e > i && s[e - 1] == '.')
			e--;
		bool ok_end = j >= len || !word_char((unsigned char)s[j]);
		if (ok_end && (memchr(s + i, '.', e - i) ||
			       memchr(s + i, ':', e - i)) &&
		    cov_ip(s + i, e - i))
			return COV_VAL_IP;
		i = j;
	}
	return 0;
}

/* Card numbers: 13-19 digits, maybe in groups split by single spaces or
 * dashes, starting with 2-6 (the card networks), passing Luhn. */
static unsigned
scan_cards(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		if (!isdigit((unsigned char)s[i]) ||
		    (i > 0 && word_char((unsigned char)s[i - 1]))) {
			i++;
			continue;
		}
		char d[24];
		size_t n = 0, j = i;
		bool too_long = false;
		while (j < len) {
			if (isdigit((unsigned char)s[j])) {
				if (n < 20)
					d[n++] = s[j];
				else
					too_long = true;
				j++;
			} else if ((s[j] == ' ' || s[j] == '-') && j + 1 < len &&
				   isdigit((unsigned char)s[j + 1])) {
				j++;
			} else {
				break;
			}
		}
		d[n] = '\0';
		bool ok_end = j >= len || !word_char((unsigned char)s[j]);
		if (ok_end && !too_long && n >= 13 && n <= 19 && d[0] >= '2' &&
		    d[0] <= '6' && cov_luhn(d))
			return COV_VAL_CARD;
		i = j;
	}
	return 0;
}

static unsigned
scan_ibans(const char *s, size_t len)
{
	for (size_t i = 0; i + 15 <= len; i++) {
		if (!isupper((unsigned char)s[i]) ||
		    !isupper((unsigned char)s[i + 1]) ||
		    !isdigit((unsigned char)s[i + 2]) ||
		    !isdigit((unsigned char)s[i + 3]) ||
		    (i > 0 && word_char((unsigned char)s[i - 1])))
			continue;
		/* try each end at a word boundary, longest first */
		size_t j = i, alnum = 0;
		size_t ends[16];
		int n_ends = 0;
		while (j < len && alnum < 34) {
			if (isalnum((unsigned char)s[j])) {
				alnum++;
				j++;
				if ((j >= len || !isalnum((unsigned char)s[j])) &&
				    alnum >= 15 && n_ends < 16)
					ends[n_ends++] = j;
			} else if (s[j] == ' ' && j + 1 < len &&
				   isalnum((unsigned char)s[j + 1])) {
				j++;
			} else {
				break;
			}
		}
		for (int k = n_ends - 1; k >= 0; k--)
			if (cov_iban(s + i, ends[k] - i))
				return COV_VAL_IBAN;
	}
	return 0;
}

static unsigned
scan_text(const char *s, size_t len)
{
	unsigned kinds = 0;

	if (cov_phone(s, len))
		kinds |= COV_VAL_PHONE;
	kinds |= scan_emails(s, len);
	kinds |= scan_ips(s, len);
	kinds |= scan_cards(s, len);
	kinds |= scan_ibans(s, len);
	return kinds;
}

/* JSON text: each string is a key (a ':' follows) or a value; numbers
 * are checked as card numbers. Malformed JSON is scanned as far as it
 * goes. */
static unsigned
scan_json(const char *s, size_t len)
{
	unsigned kinds = 0;
	size_t i = 0;

	while (i < len) {
		if (s[i] == '"') {
			size_t b = ++i;
			while (i < len && s[i] != '"')
				i += s[i] == '\\' ? 2 : 1;
			size_t e = i < len ? i : len;
			i++;
			size_t k = i;
			while (k < len && isspace((unsigned char)s[k]))
				k++;
			if (k < len && s[k] == ':') {
				char key[MAX_KEY];
				enum cov_category cat;
				size_t kl = e - b < sizeof(key) ? e - b : sizeof(key) - 1;
				memcpy(key, s + b, kl);
				key[kl] = '\0';
				if (cov_name_match(key, NULL, &cat) == COV_CONF_HIGH)
					kinds |= COV_VAL_KEY;
			}
			kinds |= scan_text(s + b, e - b);
		} else if (isdigit((unsigned char)s[i])) {
			size_t b = i;
			while (i < len && (isdigit((unsigned char)s[i]) ||
					   s[i] == '.' || s[i] == 'e' ||
					   s[i] == 'E' || s[i] == '-' || s[i] == '+'))
				i++;
			kinds |= scan_cards(s + b, i - b);
		} else {
			i++;
		}
	}
	return kinds;
}

unsigned
cov_scan_value(const char *s, size_t len, bool is_json)
{
	return is_json ? scan_json(s, len) : scan_text(s, len);
}

void
cov_sample_add(struct cov_sample *s, unsigned kinds)
{
	s->nonnull++;
	for (int k = 0; k < COV_N_VALUE_KINDS; k++)
		if (kinds & (1u << k))
			s->hits[k]++;
}

enum cov_confidence
cov_sample_verdict(const struct cov_sample *s, int k, int *percent)
{
	unsigned long hits;

	if (s->nonnull == 0 || k < 0 || k >= COV_N_VALUE_KINDS)
		return COV_CONF_NONE;
	hits = s->hits[k];
	if (hits == 0 || hits * 10 < s->nonnull)
		return COV_CONF_NONE;
	*percent = (int)(hits * 100 / s->nonnull);
	return hits * 2 >= s->nonnull ? COV_CONF_HIGH : COV_CONF_MEDIUM;
}

/* --- ignore patterns ----------------------------------------------------------- */

#define MAX_PART 256

/* Split "a.b.c" (quoted parts honoured, "" inside quotes is a quote) into
 * up to 3 parts; returns the count, or -1 when malformed. */
static int
split_pattern(const char *p, char parts[3][MAX_PART])
{
	int n = 0;
	size_t len = 0;
	bool quoted = false, was_quoted = false;

	for (;; p++) {
		if (quoted) {
			if (*p == '\0')
				return -1;
			if (*p == '"' && p[1] == '"') {
				p++;
			} else if (*p == '"') {
				quoted = false;
				continue;
			}
		} else if (*p == '"') {
			if (len > 0 || was_quoted)
				return -1;
			quoted = was_quoted = true;
			continue;
		} else if (*p == '.' || *p == '\0') {
			if (len == 0 && !was_quoted)
				return -1;
			if (n == 3)
				return -1;
			parts[n][len] = '\0';
			n++;
			len = 0;
			was_quoted = false;
			if (*p == '\0')
				break;
			continue;
		} else if (was_quoted) {
			return -1;
		}
		if (len >= MAX_PART - 1)
			return -1;
		parts[n < 3 ? n : 2][len++] = *p;
	}
	return n;
}

bool
cov_pattern_valid(const char *pattern)
{
	char parts[3][MAX_PART];
	int n = split_pattern(pattern, parts);

	return n == 2 || n == 3;
}

static bool
glob(const char *p, const char *s)
{
	if (*p == '\0')
		return *s == '\0';
	if (*p == '*') {
		for (;; s++) {
			if (glob(p + 1, s))
				return true;
			if (*s == '\0')
				return false;
		}
	}
	return *s == *p && glob(p + 1, s + 1);
}

bool
cov_ignore_match(const char *pattern, const char *schema, const char *table,
		 const char *column)
{
	char parts[3][MAX_PART];
	int n = split_pattern(pattern, parts);

	if (n < 2 || !glob(parts[0], schema) || !glob(parts[1], table))
		return false;
	if (n == 2)
		return true;
	return column && glob(parts[2], column);
}
