#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "mail.h"
#include "mailmsg.h"

long long
outbox_backoff_seconds(int attempts)
{
	long long s = OUTBOX_BACKOFF_FIRST_S;

	for (int i = 1; i < attempts && s < OUTBOX_BACKOFF_MAX_S; i++)
		s *= 2;
	return s < OUTBOX_BACKOFF_MAX_S ? s : OUTBOX_BACKOFF_MAX_S;
}

bool
outbox_add(PGconn *conn, const char *schema, const char *subject,
	   const char *text, const char *html, long long *id, char **err)
{
	char *t = db_qualified(conn, schema, "outbox");
	char *sql = xasprintf("INSERT INTO %s (subject, body, html_body)"
			      " VALUES ($1, $2, $3) RETURNING id", t);
	const char *p[] = { subject, text, html };
	PGresult *res = db_query(conn, sql, 3, p, err);

	free(sql);
	free(t);
	if (!res)
		return false;
	if (id)
		*id = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	return true;
}

struct pending {
	long long id;
	char *subject, *body, *html, *created_us;
	int attempts;
};

static void
pending_free(struct pending *m)
{
	free(m->subject);
	free(m->body);
	free(m->html);
	free(m->created_us);
}

/* The subject for a log line: ours, but it came back from the database. */
static const char *
loggable(const char *subject)
{
	return mailmsg_check_value(subject) ? "(subject not printable)" : subject;
}

static void
rollback(PGconn *conn)
{
	char *e = NULL;
	if (!db_exec(conn, "ROLLBACK", &e)) {
		log_debug("outbox: rollback failed: %s", e);
		free(e);
	}
}

/* Lock and fetch the oldest message that is due. Returns 1 with *m
 * filled, 0 when none is due, -1 on a database error. In a transaction. */
static int
take_next(PGconn *conn, const char *table, struct pending *m, char **err)
{
	char *sql = xasprintf(
		"SELECT id, subject, body, html_body, attempts,"
		" (extract(epoch FROM created_at) * 1000000)::bigint"
		" FROM %s WHERE sent_at IS NULL"
		" AND (next_attempt_at IS NULL OR next_attempt_at <= clock_timestamp())"
		" ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED", table);
	PGresult *res = db_query(conn, sql, 0, NULL, err);

	free(sql);
	if (!res)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	m->id = atoll(PQgetvalue(res, 0, 0));
	m->subject = xstrdup(PQgetvalue(res, 0, 1));
	m->body = xstrdup(PQgetvalue(res, 0, 2));
	m->html = PQgetisnull(res, 0, 3) ? NULL : xstrdup(PQgetvalue(res, 0, 3));
	m->attempts = atoi(PQgetvalue(res, 0, 4));
	m->created_us = xstrdup(PQgetvalue(res, 0, 5));
	PQclear(res);
	return 1;
}

static bool
record(PGconn *conn, const char *table, const struct pending *m, bool sent,
       const char *error, long long backoff, char **err)
{
	char id[32], secs[32];
	snprintf(id, sizeof(id), "%lld", m->id);
	snprintf(secs, sizeof(secs), "%lld", backoff);
	/* clock_timestamp(): the send may have taken up to mail.timeout
	 * since the transaction began */
	char *sql = sent
		? xasprintf("UPDATE %s SET sent_at = clock_timestamp(),"
			    " attempts = attempts + 1, last_error = NULL,"
			    " next_attempt_at = NULL WHERE id = $1", table)
		: xasprintf("UPDATE %s SET attempts = attempts + 1,"
			    " last_error = $2, next_attempt_at = clock_timestamp()"
			    " + make_interval(secs => $3::int) WHERE id = $1", table);
	const char *p[] = { id, error, secs };
	PGresult *res = db_query(conn, sql, sent ? 1 : 3, p, err);

	free(sql);
	if (!res)
		return false;
	PQclear(res);
	return db_exec(conn, "COMMIT", err);
}

static void
human_delay(long long s, char *out, size_t size)
{
	if (s < 3600)
		snprintf(out, size, "%lld min", s / 60);
	else
		snprintf(out, size, "%lld h", s / 3600);
}

bool
outbox_deliver(PGconn *conn, const struct config *cfg,
	       struct outbox_result *out, char **err)
{
	char *table = db_qualified(conn, cfg->database.schema, "outbox");
	char host[256];
	bool ok = true;

	memset(out, 0, sizeof(*out));
	mailmsg_host(host, sizeof(host));
	for (int i = 0; i < OUTBOX_MAX_PER_ROUND; i++) {
		struct pending m = { 0 };
		char *e = NULL;

		if (!db_exec(conn, "BEGIN", err)) {
			ok = false;
			break;
		}
		int got = take_next(conn, table, &m, err);
		if (got <= 0) {
			if (got < 0)
				ok = false;
			rollback(conn);
			break;
		}
		/* the same Message-ID on every attempt of this row */
		char *msgid = xasprintf("retentiond.%lld.%s@%s", m.id,
					m.created_us, host);
		struct mail_content mc = {
			.subject = m.subject, .text = m.body, .html = m.html,
			.message_id = msgid,
		};
		bool sent = mail_send(cfg, &mc, &e);
		long long backoff = outbox_backoff_seconds(m.attempts + 1);
		free(msgid);
		if (!record(conn, table, &m, sent,
			    e, backoff, err)) {
			if (sent)
				log_error("mail %lld (\"%s\") was sent but could "
					  "not be marked as sent; it will be "
					  "sent again: %s", m.id,
					  loggable(m.subject), *err);
			rollback(conn);
			free(e);
			pending_free(&m);
			ok = false;
			break;
		}
		if (sent) {
			log_info("mail %lld (\"%s\") sent to %zu recipient%s",
				 m.id, loggable(m.subject), cfg->mail.n_to,
				 cfg->mail.n_to == 1 ? "" : "s");
			out->sent++;
		} else {
			char delay[32];
			human_delay(backoff, delay, sizeof(delay));
			log_error("could not send mail %lld (\"%s\"), attempt %d; "
				  "it stays in the outbox, next try in %s: %s",
				  m.id, loggable(m.subject), m.attempts + 1,
				  delay, e);
			out->failed++;
		}
		free(e);
		pending_free(&m);
		if (!sent)
			break;
	}
	free(table);
	return ok;
}
