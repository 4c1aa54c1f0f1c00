/*
 * mailmsg: an RFC 5322 / MIME message as bytes, built from plain strings.
 * Pure: no network, no database, no clock unless the caller leaves the
 * date out. mail.c hands the result to the SMTP transport.
 *
 * The message has CRLF line ends throughout, no line longer than 78
 * octets in the headers and 76 in the bodies (quoted-printable), a Subject
 * that is RFC 2047 encoded when it is not plain ASCII, and a
 * multipart/alternative body with a text/plain and a text/html part.
 *
 * No header is built from unchecked data: a header value with a CR, LF
 * or any other control character is refused, never cleaned up, because
 * it means something upstream put data where it does not belong.
 * SMTP dot-stuffing is not done here: libcurl does it while sending.
 */
#ifndef RETENTIOND_MAILMSG_H
#define RETENTIOND_MAILMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "strbuf.h"
#include "util.h"

/* "Thu, 13 Feb 2025 14:03:00 +0100" plus NUL, with room to spare. */
#define MAILMSG_DATE_MAX 40

/* An encoded word is at most 75 characters (RFC 2047 §2). */
#define MAILMSG_WORD_MAX 75

struct mailmsg {
	const char *from;		/* "Name <addr>" or "addr" */
	const char *const *to;		/* same forms */
	size_t n_to;
	const char *subject;		/* UTF-8, any length up to 900 bytes */
	const char *text;		/* UTF-8, "\n" or "\r\n" line ends */
	const char *html;		/* NULL: a text/plain message only */
	time_t date;			/* 0: now */
	const char *message_id;		/* without <>; NULL: random@host */
};

/*
 * Build the message. Returns the bytes (malloc'd, NUL-terminated, *len
 * without the NUL) or NULL with *err (malloc'd) saying which header was
 * refused and why.
 */
char *mailmsg_build(const struct mailmsg *m, size_t *len, char **err) MUSTCHECK;

/* NULL when V may be a header value, else why not (static text). */
const char *mailmsg_check_value(const char *v);

/*
 * Append V as a header value that starts at column COLUMN (the length of
 * "Name: "): unchanged when it is printable ASCII, else as RFC 2047
 * "=?UTF-8?B?...?=" words of at most 75 characters, each on its own
 * folded line and never splitting a UTF-8 sequence. V must have passed
 * mailmsg_check_value.
 */
void mailmsg_encode_header(struct strbuf *b, const char *v, size_t column);

/* RFC 5322 date-time of T in the local time zone, with its UTC offset. */
void mailmsg_date(time_t t, char out[MAILMSG_DATE_MAX]);

/* The addr-spec of "Name <addr>" or "addr" (malloc'd); NULL when there is
 * none or it holds spaces, control characters or non-ASCII. */
char *mailmsg_address(const char *v) MUSTCHECK;

/* This host's name as a dot-atom for Message-IDs: characters other than
 * letters, digits, '.' and '-' become '-'; "localhost" when unknown. */
void mailmsg_host(char *out, size_t size);

/* Quoted-printable body (RFC 2045 §6.7): CRLF line ends, lines of at most
 * 76 characters, "\n" and "\r\n" in TEXT both become line breaks. */
void mailmsg_qp(struct strbuf *b, const char *text);

#endif
