/*
 * mail: send one message to the configured recipients over SMTP with
 * libcurl (SPEC §5, §6), and the send policy (mail.send).
 *
 * Transport security follows the config and never degrades: STARTTLS is
 * required for smtp:// (CURLUSESSL_ALL: no plaintext fallback when the
 * server does not offer it), smtps:// is TLS from the first byte, and the
 * peer certificate and host name are always verified. "none" is allowed
 * by the config loader for loopback hosts only.
 *
 * The password goes to libcurl and nowhere else: curl's verbose output is
 * never turned on (it would print the AUTH exchange), and error messages
 * are scrubbed of it before they reach a log or the outbox.
 *
 * The transport is a seam: unit tests swap it for one that records the
 * envelope (mail_set_transport).
 */
#ifndef RETENTIOND_MAIL_H
#define RETENTIOND_MAIL_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "util.h"

/* What goes into a message; see mailmsg.h for the format. */
struct mail_content {
	const char *subject;
	const char *text;
	const char *html;		/* NULL: text only */
	const char *message_id;		/* NULL: random */
};

/* What the transport delivers: envelope and the finished message. */
struct mail_envelope {
	const char *from;		/* addr-spec, no <> */
	const char *const *rcpt;	/* addr-specs */
	size_t n_rcpt;
	const char *data;		/* the RFC 5322 message, CRLF */
	size_t len;
};

/* Deliver ENV per CFG->mail. Returns false with *err (malloc'd, no
 * secrets) on failure. */
typedef bool (*mail_transport_fn)(const struct config *cfg,
				  const struct mail_envelope *env, char **err);

/* Replace the transport (NULL: libcurl again). For tests. */
void mail_set_transport(mail_transport_fn fn);

/* The libcurl SMTP transport. */
bool mail_transport_curl(const struct config *cfg,
			 const struct mail_envelope *env, char **err) MUSTCHECK;

/*
 * Build the message for CFG->mail (From, To) and hand it to the
 * transport. Returns false with *err (malloc'd) when the message cannot
 * be built (a header refused) or delivered.
 */
bool mail_send(const struct config *cfg, const struct mail_content *m,
	       char **err) MUSTCHECK;

/*
 * The send policy: "always" mails after every cycle, "changes" when a
 * cycle changed rows or anything is alarming, "errors" only for alerts,
 * "never" never.
 */
bool mail_should_send(enum mail_send policy, bool changed, bool alert);

const char *mail_send_name(enum mail_send policy);

#endif
