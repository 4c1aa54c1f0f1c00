/*
 * postcycle: the run's report files, the summary mail (through the
 * outbox), and delivery of whatever the outbox holds.
 *
 * The mail's alerts: a rule that failed or that a guard refused, an error
 * that stopped the cycle, a broken audit chain, and erasure and access
 * requests that are due within 7 days or overdue. Each request is mentioned
 * once for "due soon" and once for "overdue", not every cycle: the
 * request's due_soon_mailed_at / overdue_mailed_at (sql/003_mail.sql,
 * sql/004_access.sql) are
 * set in the same transaction that queues the mail, so the marks and the
 * mail commit together or not at all.
 */
#include "postcycle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "mail.h"
#include "outbox.h"
#include "report.h"
#include "restore.h"
#include "strbuf.h"

/* Erasure requests named one by one in a mail; the rest are counted. */
#define MAX_LISTED 50
/* A subject longer than this is cut: it is a summary, not the body. */
#define MAX_SUBJECT 200

struct alerts {
	struct report *rep;	/* where alert lines go */
	int failed, refused, due_soon, overdue;
	int access_due_soon, access_overdue;	/* access requests (SPEC §8) */
	bool cycle_error, audit_broken;
};

/* Text that will be part of a header: control characters become spaces
 * and it is cut at MAX_SUBJECT bytes (at a character boundary). */
static char *
header_text(const char *s)
{
	size_t n = strlen(s);
	char *out;

	if (n > MAX_SUBJECT) {
		n = MAX_SUBJECT;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	out = xstrndup(s, n);
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return out;
}

static char *
host_name(void)
{
	char host[256];

	if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
		snprintf(host, sizeof(host), "unknown host");
	host[sizeof(host) - 1] = '\0';
	return header_text(host);
}

static void
rule_alerts(const struct run_result *res, struct alerts *a)
{
	for (size_t i = 0; i < res->n_rules; i++) {
		const struct rule_result *rr = &res->rules[i];
		if (!rule_outcome_is_failure(rr->outcome))
			continue;
		if (rr->outcome == OUTCOME_FAILED)
			a->failed++;
		else
			a->refused++;
		char *line = xasprintf("rule \"%s\" (%s.%s): %s: %s",
				       rr->rule->name, rr->rule->schema,
				       rr->rule->table,
				       rule_outcome_name(rr->outcome),
				       rr->message ? rr->message : "");
		report_add_alert(a->rep, line);
		free(line);
	}
	if (res->error) {
		char *line = xasprintf("run %lld: %s", res->run_id, res->error);
		report_add_alert(a->rep, line);
		free(line);
		a->cycle_error = true;
	}
	if (a->rep->audit.status == REPORT_AUDIT_BROKEN) {
		char *line = xasprintf("the audit trail is BROKEN at action "
				       "%lld: %s; run `retentiond verify`",
				       a->rep->audit.first_bad_id,
				       a->rep->audit.reason ? a->rep->audit.reason : "");
		report_add_alert(a->rep, line);
		free(line);
		a->audit_broken = true;
	}
}

/* Mark and list the requests of one kind (erasure, access: TABLE, whose
 * unfinished ones match OPEN) that newly became due soon or overdue. In
 * the caller's transaction. */
static bool
request_alerts(PGconn *conn, const struct config *cfg, struct alerts *a,
	       const char *table, const char *open, const char *kind,
	       int *due_soon, int *overdue, char **err)
{
	char *t = db_qualified(conn, cfg->database.schema, table);
	char *sql[2];
	sql[0] = xasprintf(
		"UPDATE %s SET overdue_mailed_at = now()"
		" WHERE %s AND due_at < now()"
		" AND overdue_mailed_at IS NULL"
		" RETURNING id, subject, subject_id,"
		" date_trunc('second', due_at)::text, status", t, open);
	sql[1] = xasprintf(
		"UPDATE %s SET due_soon_mailed_at = now()"
		" WHERE %s AND due_at >= now()"
		" AND due_at < now() + interval '%d days'"
		" AND due_soon_mailed_at IS NULL"
		" RETURNING id, subject, subject_id,"
		" date_trunc('second', due_at)::text, status",
		t, open, REPORT_DUE_SOON_DAYS);
	free(t);

	bool ok = true;
	for (int k = 0; k < 2 && ok; k++) {
		PGresult *res = db_query(conn, sql[k], 0, NULL, err);
		if (!res) {
			ok = false;
			break;
		}
		int n = PQntuples(res);
		for (int i = 0; i < n; i++) {
			if (i == MAX_LISTED) {
				char *more = xasprintf("... and %d more %s "
						       "request%s %s", n - i, kind,
						       n - i == 1 ? "" : "s",
						       k ? "due soon" : "overdue");
				report_add_alert(a->rep, more);
				free(more);
				break;
			}
			char *line = xasprintf(
				"%s request %s (%s:%s, %s) %s %s", kind,
				PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
				PQgetvalue(res, i, 2), PQgetvalue(res, i, 4),
				k ? "is due within 7 days, on" : "is OVERDUE: it was due",
				PQgetvalue(res, i, 3));
			report_add_alert(a->rep, line);
			free(line);
		}
		if (k)
			*due_soon += n;
		else
			*overdue += n;
		PQclear(res);
	}
	free(sql[0]);
	free(sql[1]);
	return ok;
}

static bool
any_alert(const struct alerts *a)
{
	return a->failed || a->refused || a->due_soon || a->overdue ||
	       a->access_due_soon || a->access_overdue ||
	       a->cycle_error || a->audit_broken;
}

static void
plural(struct strbuf *b, int n, const char *one, const char *many)
{
	if (n)
		sb_printf(b, ", %d %s", n, n == 1 ? one : many);
}

static char *
subject_line(const struct run_result *res, const struct alerts *a)
{
	struct strbuf b = STRBUF_INIT;
	char *host = host_name();

	sb_printf(&b, "retentiond%s: run %lld on %s: %s, %lld row%s changed",
		  any_alert(a) ? " ALERT" : "", res->run_id, host,
		  run_status_name(res->status), res->changed,
		  res->changed == 1 ? "" : "s");
	plural(&b, a->failed, "rule failed", "rules failed");
	plural(&b, a->refused, "rule refused", "rules refused");
	plural(&b, a->overdue, "erasure request overdue",
	       "erasure requests overdue");
	plural(&b, a->due_soon, "erasure request due soon",
	       "erasure requests due soon");
	plural(&b, a->access_overdue, "access request overdue",
	       "access requests overdue");
	plural(&b, a->access_due_soon, "access request due soon",
	       "access requests due soon");
	if (a->audit_broken)
		sb_add(&b, ", audit trail BROKEN");
	free(host);
	char *s = header_text(b.s);
	sb_free(&b);
	return s;
}

static void
mail_bodies(const struct config *cfg, const struct report *rep,
	    long long run_id, char **text, char **html)
{
	struct strbuf t = STRBUF_INIT, h = STRBUF_INIT;

	report_render_text(rep, &t);
	if (cfg->report.directory)
		sb_printf(&t, "\nReport files: %s/run-%lld.*\n",
			  cfg->report.directory, run_id);
	report_render_html(rep, &h);
	*text = sb_take(&t);
	*html = sb_take(&h);
}

static void
rollback(PGconn *conn)
{
	char *e = NULL;
	if (!db_exec(conn, "ROLLBACK", &e))
		free(e);
}

/* Queue the summary mail if mail.send asks for one. */
static void
queue_summary(PGconn *conn, const struct config *cfg,
	      const struct run_result *res, struct report *rep)
{
	struct alerts a = { .rep = rep };
	char *err = NULL;
	long long id = 0;

	if (!db_exec(conn, "BEGIN", &err)) {
		log_error("run %lld: could not queue the mail: %s", res->run_id,
			  err);
		free(err);
		return;
	}
	rule_alerts(res, &a);
	if (!request_alerts(conn, cfg, &a, "erasure_requests",
			    REPORT_ERASURE_OPEN, "erasure", &a.due_soon,
			    &a.overdue, &err) ||
	    !request_alerts(conn, cfg, &a, "access_requests",
			    REPORT_ACCESS_OPEN, "access", &a.access_due_soon,
			    &a.access_overdue, &err)) {
		log_error("run %lld: could not check erasure requests for the "
			  "mail: %s", res->run_id, err);
		free(err);
		rollback(conn);
		return;
	}
	if (!mail_should_send(cfg->mail.send, res->changed > 0, any_alert(&a))) {
		log_debug("run %lld: no mail (mail.send = \"%s\")", res->run_id,
			  mail_send_name(cfg->mail.send));
		rollback(conn);
		return;
	}
	char *subject = subject_line(res, &a);
	char *text, *html;
	mail_bodies(cfg, rep, res->run_id, &text, &html);
	if (!outbox_add(conn, cfg->database.schema, subject, text, html, &id,
			&err) || !db_exec(conn, "COMMIT", &err)) {
		log_error("run %lld: could not queue the mail \"%s\": %s",
			  res->run_id, subject, err);
		free(err);
		rollback(conn);
	} else {
		log_debug("run %lld: mail \"%s\" queued as outbox %lld",
			  res->run_id, subject, id);
	}
	free(subject);
	free(text);
	free(html);
}

int
postcycle(PGconn *conn, const struct config *cfg, const struct run_result *res,
	  const struct coverage_cycle *cov)
{
	struct report rep;
	struct report_query q = { .run_id = res->run_id };
	char *err = NULL;

	bool mail = cfg->mail.configured && cfg->mail.send != MAIL_SEND_NEVER;

	if (res->run_id <= 0)
		return -1;
	/* the ledger first: what it records survives a restore of the
	 * database, which the report and mail below do not */
	struct audit_verify_result av;
	q.audit_status = restore_record_cycle(conn, cfg, res, &av);
	q.audit = &av;
	if (!cfg->report.directory && !mail)
		return q.audit_status;
	switch (report_load(conn, cfg, &q, &rep, &err)) {
	case REPORT_LOADED:
		break;
	default:
		/* without the report there is nothing to write or mail but
		 * what the outbox already holds */
		log_error("run %lld: could not load its report: %s",
			  res->run_id, err);
		free(err);
		goto deliver;
	}
	if (cov && cov->ran)
		rep.coverage = &cov->result;
	else if (cov && cov->error)
		rep.coverage_error = cov->error;
	if (cfg->report.directory)
		(void)report_write_dir(&rep, cfg->report.directory,
				       cfg->report.formats, res->run_id);
	if (mail)
		queue_summary(conn, cfg, res, &rep);
	report_free(&rep);

deliver:
	if (mail) {
		struct outbox_result r;
		if (!outbox_deliver(conn, cfg, &r, &err)) {
			log_error("could not deliver the outbox: %s", err);
			free(err);
		}
	}
	return q.audit_status;
}

void
postcycle_alert_direct(const struct config *cfg, const char *subject,
		       const char *body)
{
	struct strbuf html = STRBUF_INIT;
	char *err = NULL;

	if (!cfg->mail.configured || cfg->mail.send == MAIL_SEND_NEVER)
		return;
	/* the caller's text may quote a libpq error, which has newlines:
	 * they go to the body, never into the header */
	char *s = strncmp(subject, "retentiond", 10) == 0
			  ? header_text(subject)
			  : NULL;
	if (!s) {
		char *full = xasprintf("retentiond ALERT: %s", subject);
		s = header_text(full);
		free(full);
	}
	sb_add(&html, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
		      "charset=\"utf-8\"><title>");
	report_html_escape(&html, s);
	sb_add(&html, "</title></head><body><h1>");
	report_html_escape(&html, s);
	sb_add(&html, "</h1><pre>");
	report_html_escape(&html, body);
	sb_add(&html, "</pre></body></html>\n");

	struct mail_content m = { .subject = s, .text = body, .html = html.s };
	if (mail_send(cfg, &m, &err)) {
		log_notice("alert \"%s\" mailed directly, without the outbox", s);
	} else {
		log_error("could not mail the alert \"%s\": %s", s, err);
		free(err);
	}
	free(s);
	sb_free(&html);
}
