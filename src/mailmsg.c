#include "mailmsg.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* RFC 5322 allows 998; far less keeps every header on a few lines. */
#define MAX_HEADER_VALUE 900
/* RFC 2047 §2: a line holding encoded words is at most 76 characters. */
#define ENCODED_LINE_MAX 76
/* RFC 2045 §6.7: encoded lines are at most 76 characters, the soft line
 * break's "=" included. */
#define QP_LINE_MAX 76

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void
base64(struct strbuf *b, const unsigned char *p, size_t n)
{
	char out[4];

	for (; n >= 3; p += 3, n -= 3) {
		out[0] = b64chars[p[0] >> 2];
		out[1] = b64chars[((p[0] & 3) << 4) | (p[1] >> 4)];
		out[2] = b64chars[((p[1] & 15) << 2) | (p[2] >> 6)];
		out[3] = b64chars[p[2] & 63];
		sb_addn(b, out, 4);
	}
	if (n == 0)
		return;
	out[0] = b64chars[p[0] >> 2];
	if (n == 1) {
		out[1] = b64chars[(p[0] & 3) << 4];
		out[2] = '=';
	} else {
		out[1] = b64chars[((p[0] & 3) << 4) | (p[1] >> 4)];
		out[2] = b64chars[(p[1] & 15) << 2];
	}
	out[3] = '=';
	sb_addn(b, out, 4);
}

const char *
mailmsg_check_value(const char *v)
{
	if (!v)
		return "is missing";
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return "contains a control character (a CR or LF "
			       "would start a new header)";
	if (strlen(v) > MAX_HEADER_VALUE)
		return "is too long";
	return NULL;
}

static bool
plain_ascii(const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p >= 0x80)
			return false;
	/* "=?" would be read as the start of an encoded word */
	return strstr(v, "=?") == NULL;
}

void
mailmsg_encode_header(struct strbuf *b, const char *v, size_t column)
{
	const unsigned char *p = (const unsigned char *)v;
	size_t left = strlen(v);
	bool first = true;

	if (plain_ascii(v)) {
		sb_add(b, v);
		return;
	}
	while (left > 0) {
		/* later words start a folded line after one space */
		size_t start = first ? column : 1;
		size_t room = ENCODED_LINE_MAX > start + 20
				      ? ENCODED_LINE_MAX - start : 20;
		if (room > MAILMSG_WORD_MAX)
			room = MAILMSG_WORD_MAX;
		/* "=?UTF-8?B?" and "?=" take 12; base64 comes in fours */
		size_t max_bytes = (room - 12) / 4 * 3;
		size_t take = 0;

		while (take < left) {
			/* whole UTF-8 sequences per word; a byte that
			 * starts none goes alone, carried through as is */
			size_t n = utf8_seq_len((const char *)p + take);
			if (n == 0)
				n = 1;
			if (take + n > max_bytes)
				break;
			take += n;
		}
		if (!first)
			sb_add(b, "\r\n ");
		sb_add(b, "=?UTF-8?B?");
		base64(b, p, take);
		sb_add(b, "?=");
		p += take;
		left -= take;
		first = false;
	}
}

void
mailmsg_date(time_t t, char out[MAILMSG_DATE_MAX])
{
	/* Fixed English names: RFC 5322 wants these, not the locale's. */
	static const char *const days[] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
	};
	static const char *const months[] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
	};
	struct tm tm;

	if (!localtime_r(&t, &tm)) {
		t = 0;
		(void)gmtime_r(&t, &tm);
		tm.tm_gmtoff = 0;
	}
	long off = tm.tm_gmtoff / 60;
	char sign = off < 0 ? '-' : '+';
	if (off < 0)
		off = -off;
	/* the compiler cannot know the fields' ranges; a roomy buffer
	 * first keeps -Wformat-truncation quiet without casts */
	char tmp[160];
	snprintf(tmp, sizeof(tmp), "%s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld",
		 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
		 off / 60, off % 60);
	size_t n = strnlen(tmp, MAILMSG_DATE_MAX - 1);
	memcpy(out, tmp, n);
	out[n] = '\0';
}

char *
mailmsg_address(const char *v)
{
	const char *start = v, *end;
	const char *lt = strrchr(v, '<');

	if (lt) {
		start = lt + 1;
		end = strchr(start, '>');
		if (!end)
			return NULL;
	} else {
		while (*start == ' ')
			start++;
		end = start + strlen(start);
		while (end > start && end[-1] == ' ')
			end--;
	}
	if (end == start || !memchr(start, '@', (size_t)(end - start)))
		return NULL;
	for (const char *p = start; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == ',')
			return NULL;
	}
	return xstrndup(start, (size_t)(end - start));
}

void
mailmsg_qp(struct strbuf *b, const char *text)
{
	size_t col = 0;

	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		char tok[4];
		size_t n;

		if (*p == '\r' && p[1] == '\n')
			continue;	/* the '\n' makes the break */
		if (*p == '\n') {
			sb_add(b, "\r\n");
			col = 0;
			continue;
		}
		bool at_eol = p[1] == '\0' || p[1] == '\n' ||
			      (p[1] == '\r' && p[2] == '\n');
		if ((*p == ' ' || *p == '\t') && !at_eol) {
			tok[0] = (char)*p;
			n = 1;
		} else if (*p >= 33 && *p <= 126 && *p != '=') {
			tok[0] = (char)*p;
			n = 1;
		} else {
			/* whitespace before a break would be stripped in
			 * transit; '=', controls and 8-bit bytes must be */
			snprintf(tok, sizeof(tok), "=%02X", *p);
			n = 3;
		}
		if (col + n > QP_LINE_MAX - 1) {
			sb_add(b, "=\r\n");
			col = 0;
		}
		sb_addn(b, tok, n);
		col += n;
	}
}

static void
random_hex(char *out, size_t nbytes)
{
	unsigned char r[32];

	if (nbytes > sizeof(r))
		nbytes = sizeof(r);
	if (getrandom(r, nbytes, GRND_NONBLOCK) != (ssize_t)nbytes) {
		/* uniqueness, not secrecy, is what is needed here */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
			     ((uint64_t)getpid() << 40);
		for (size_t i = 0; i < nbytes; i++) {
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			r[i] = (unsigned char)(x >> 56);
		}
	}
	for (size_t i = 0; i < nbytes; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

void
mailmsg_host(char *out, size_t size)
{
	if (gethostname(out, size - 1) != 0 || !*out)
		snprintf(out, size, "localhost");
	out[size - 1] = '\0';
	for (char *p = out; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
			*p = '-';
}

static bool
valid_message_id(const char *id)
{
	const char *at = strchr(id, '@');

	if (!at || at == id || !at[1] || mailmsg_check_value(id))
		return false;
	for (const char *p = id; *p; p++)
		if (*p == ' ' || *p == '<' || *p == '>' || (unsigned char)*p >= 0x80)
			return false;
	return true;
}

/* "Name: VALUE\r\n" with VALUE checked; an address header may carry a
 * non-ASCII display name, encoded, but never a non-ASCII address. */
static bool
add_address_header(struct strbuf *b, const char *name, const char *const *v,
		   size_t n, char **err)
{
	sb_printf(b, "%s: ", name);
	for (size_t i = 0; i < n; i++) {
		const char *why = mailmsg_check_value(v[i]);
		char *addr = why ? NULL : mailmsg_address(v[i]);

		if (!why && !addr)
			why = "is not a mail address (non-ASCII, spaces or "
			      "no '@')";
		if (why) {
			*err = xasprintf("mail header \"%s\" %s", name, why);
			free(addr);
			return false;
		}
		if (i > 0)
			sb_add(b, ",\r\n ");
		const char *lt = strrchr(v[i], '<');
		if (plain_ascii(v[i]) || !lt) {
			sb_add(b, v[i]);
		} else {
			char *display = xstrndup(v[i], (size_t)(lt - v[i]));
			size_t len = strlen(display);
			while (len > 0 && display[len - 1] == ' ')
				display[--len] = '\0';
			mailmsg_encode_header(b, display, strlen(name) + 2);
			sb_printf(b, " <%s>", addr);
			free(display);
		}
		free(addr);
	}
	sb_add(b, "\r\n");
	return true;
}

static void
add_part(struct strbuf *b, const char *type, const char *body)
{
	sb_printf(b, "Content-Type: %s; charset=UTF-8\r\n"
		  "Content-Transfer-Encoding: quoted-printable\r\n\r\n", type);
	mailmsg_qp(b, body);
	sb_add(b, "\r\n");
}

char *
mailmsg_build(const struct mailmsg *m, size_t *len, char **err)
{
	struct strbuf b = STRBUF_INIT;
	char date[MAILMSG_DATE_MAX], host[256], rnd[65];
	const char *why;

	if (m->n_to == 0) {
		*err = xstrdup("mail has no recipient");
		return NULL;
	}
	if ((why = mailmsg_check_value(m->subject))) {
		*err = xasprintf("mail header \"Subject\" %s", why);
		return NULL;
	}
	if (m->message_id && !valid_message_id(m->message_id)) {
		*err = xstrdup("mail header \"Message-ID\" is not of the form "
			       "left@right");
		return NULL;
	}
	mailmsg_date(m->date ? m->date : time(NULL), date);
	sb_printf(&b, "Date: %s\r\n", date);
	if (!add_address_header(&b, "From", &m->from, 1, err) ||
	    !add_address_header(&b, "To", m->to, m->n_to, err)) {
		sb_free(&b);
		return NULL;
	}
	sb_add(&b, "Subject: ");
	mailmsg_encode_header(&b, m->subject, strlen("Subject: "));
	sb_add(&b, "\r\n");
	if (m->message_id) {
		sb_printf(&b, "Message-ID: <%s>\r\n", m->message_id);
	} else {
		random_hex(rnd, 16);
		mailmsg_host(host, sizeof(host));
		sb_printf(&b, "Message-ID: <%s.%lld@%s>\r\n", rnd,
			  (long long)time(NULL), host);
	}
	sb_add(&b, "MIME-Version: 1.0\r\n"
		   /* RFC 3834: no vacation replies to a robot */
		   "Auto-Submitted: auto-generated\r\n");
	if (!m->html) {
		add_part(&b, "text/plain", m->text ? m->text : "");
	} else {
		/* "=_" never occurs in quoted-printable text, so the
		 * boundary cannot collide with the bodies */
		random_hex(rnd, 12);
		sb_printf(&b, "Content-Type: multipart/alternative;\r\n"
			  " boundary=\"=_rtd_%s\"\r\n\r\n"
			  "This is a MIME message with a text and an HTML "
			  "version of the same content.\r\n", rnd);
		sb_printf(&b, "\r\n--=_rtd_%s\r\n", rnd);
		add_part(&b, "text/plain", m->text ? m->text : "");
		sb_printf(&b, "--=_rtd_%s\r\n", rnd);
		add_part(&b, "text/html", m->html);
		sb_printf(&b, "--=_rtd_%s--\r\n", rnd);
	}
	*len = b.len;
	return sb_take(&b);
}
