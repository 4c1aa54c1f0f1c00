#include "daemon.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "diag.h"
#include "engine.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "postcycle.h"
#include "schedule.h"
#include "secret.h"
#include "signals.h"

/* Re-read the wall clock at least this often while idle: the window is in
 * local time, and the clock may be stepped or change to daylight time. */
#define MAX_SLEEP_MS 60000
/* Progress lines from the engine go to STATUS= at most once a second. */
#define STATUS_GAP_MS 1000
/* An outage shorter than this (a PostgreSQL restart) is not mailed. */
#define ALERT_AFTER_MS 60000

struct daemon {
	const char *path;
	struct config *cfg;
	PGconn *conn;
	bool ready;		/* READY=1 sent */
	bool stopping;		/* STOPPING=1 sent */

	/* schedule */
	bool ran;		/* a cycle has started */
	int64_t last_start;	/* monotonic ms of its start */
	bool wakeup;		/* SIGUSR1: a cycle now */
	bool retry;		/* the last cycle lost the connection */
	int day;		/* local year * 1000 + day of year ... */
	int cycles_today;	/* ... and the cycles started on it */
	char last_result[160];	/* for the idle status line */
	int64_t last_status;	/* when a progress line was last sent */

	/* the database connection; while it is NULL, the outage */
	bool down_logged;
	bool connected_once;
	int64_t connected_at;
	bool alerted;
	int64_t down_since;
	time_t down_since_wall;
	int64_t backoff;
	int64_t next_retry;
	long attempts;
	char *down_error;
};

static long
local_now(struct tm *tm)
{
	time_t now = time(NULL);
	localtime_r(&now, tm);
	return (long)tm->tm_hour * 3600 + tm->tm_min * 60 + tm->tm_sec;
}

static struct schedule_window
window_of(const struct config *cfg)
{
	return (struct schedule_window){
		.set = cfg->schedule.has_window,
		.start = cfg->schedule.window_start,
		.end = cfg->schedule.window_end,
	};
}

static int64_t
interval_ms(const struct config *cfg)
{
	return duration_ms(&cfg->schedule.interval);
}

/* A statement that runs longer than half the watchdog timeout could get a
 * busy daemon killed: between batches is the only place it pings. */
static void
check_watchdog(const struct config *cfg)
{
	int64_t half = notify_watchdog_interval_ms();
	if (half == 0)
		return;
	struct {
		const char *key;
		const struct duration *d;
	} t[] = {
		{ "database.statement_timeout", &cfg->database.statement_timeout },
		{ "database.connect_timeout", &cfg->database.connect_timeout },
	};
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		int64_t ms = duration_ms(t[i].d);
		if (ms >= half)
			log_warning("%s (%lld ms) is not below half the watchdog "
				    "timeout (%lld ms): one slow statement could "
				    "get the daemon killed by the service manager; "
				    "lower %s or raise WatchdogSec=",
				    t[i].key, (long long)ms, (long long)half * 2,
				    t[i].key);
	}
}

/* --- the connection ----------------------------------------------------- */

/* libpq prints server messages that arrive outside a query (the FATAL of
 * a server shutting down, a NOTICE) straight to stderr; route them through
 * the log so they keep its format and priority prefix. */
static void
on_notice(void *arg, const char *message)
{
	char line[512];
	size_t n = 0;

	(void)arg;
	/* one line, runs of white space as one space ("FATAL:  ...") */
	for (const char *p = message; *p && n < sizeof(line) - 1; p++) {
		bool space = *p == ' ' || *p == '\n' || *p == '\t' || *p == '\r';
		if (space && (n == 0 || line[n - 1] == ' '))
			continue;
		line[n++] = space ? ' ' : *p;
	}
	while (n > 0 && line[n - 1] == ' ')
		n--;
	line[n] = '\0';
	log_notice("database server: %s", line);
}

static void
set_conn(struct daemon *d, PGconn *conn)
{
	d->conn = conn;
	if (conn)
		PQsetNoticeProcessor(conn, on_notice, NULL);
	/* the cancel key changes with every backend */
	signals_set_cancel(conn ? PQgetCancel(conn) : NULL);
}

/* The backoff grows with every failed attempt and with every connection
 * lost soon after it was made, so a server that drops us in a loop (a
 * crash our own statement triggers) is not hammered; it starts over once a
 * cycle completes or the connection has held for a while. */
static void
retry_later(struct daemon *d, int64_t now, char *err)
{
	d->attempts++;
	d->backoff = schedule_backoff_next(d->backoff);
	d->next_retry = now + d->backoff;
	if (!d->down_logged) {
		/* once per outage, not once per retry */
		log_error("could not connect to the database: %s; retrying "
			  "with backoff (from %lld s up to %lld min)", err,
			  SCHEDULE_BACKOFF_MIN_MS / 1000,
			  SCHEDULE_BACKOFF_MAX_MS / 60000);
		d->down_logged = true;
	} else {
		log_debug("database still unreachable (attempt %ld, next in "
			  "%lld s): %s", d->attempts,
			  (long long)d->backoff / 1000, err);
	}
	free(d->down_error);
	d->down_error = err;
}

/* DURING names what broke (a run), since libpq then only says "no
 * connection to the server"; NULL: libpq's message is the news. */
static void
lose_conn(struct daemon *d, int64_t now, const char *during)
{
	char *err = during ? xasprintf("the connection broke during %s", during)
			   : db_error(d->conn, NULL);

	signals_set_cancel(NULL);
	PQfinish(d->conn);	/* nothing to cancel on a dead connection */
	d->conn = NULL;
	d->down_since = now;
	d->down_since_wall = time(NULL);
	d->attempts = 0;
	d->alerted = false;
	if (now - d->connected_at > SCHEDULE_BACKOFF_MAX_MS)
		d->backoff = 0;
	/* the first attempt comes at once (after a restart the server is
	 * often back before the loss is noticed), unless the last
	 * connection was lost soon after it was made */
	d->next_retry = now + d->backoff;
	log_error("lost the connection to the database: %s; reconnecting "
		  "with backoff (from %lld s up to %lld min)", err,
		  SCHEDULE_BACKOFF_MIN_MS / 1000, SCHEDULE_BACKOFF_MAX_MS / 60000);
	d->down_logged = true;
	free(d->down_error);
	d->down_error = err;
}

static void
try_connect(struct daemon *d, int64_t now)
{
	char *err = NULL;
	PGconn *conn = db_connect(d->cfg, &err);

	if (!conn) {
		retry_later(d, now, err);
		return;
	}
	set_conn(d, conn);
	if (d->down_logged)
		log_notice("database connection %s after %.0f s (%ld failed "
			   "attempt%s)", d->connected_once ? "restored" : "made",
			   (double)(now - d->down_since) / 1000.0, d->attempts,
			   d->attempts == 1 ? "" : "s");
	d->down_logged = false;
	d->connected_once = true;
	d->connected_at = now;
	free(d->down_error);
	d->down_error = NULL;
}

/* The idle connection's socket is readable: the server said something,
 * which while idle is mostly that it is going away. */
static void
check_conn(struct daemon *d, int64_t now)
{
	if (!PQconsumeInput(d->conn) || PQstatus(d->conn) == CONNECTION_BAD) {
		lose_conn(d, now, NULL);
		return;
	}
	PGnotify *n;
	while ((n = PQnotifies(d->conn)) != NULL)
		PQfreemem(n);
}

/* Once per outage, when it keeps a due cycle from running for long: the
 * outbox is in the unreachable database, so the alert goes directly. */
static void
maybe_alert(struct daemon *d, int64_t now)
{
	if (d->alerted || now - d->down_since < ALERT_AFTER_MS)
		return;
	char host[256] = "this host", since[64];
	struct tm tm;
	if (gethostname(host, sizeof(host) - 1) != 0)
		strcpy(host, "this host");
	host[sizeof(host) - 1] = '\0';
	localtime_r(&d->down_since_wall, &tm);
	strftime(since, sizeof(since), "%Y-%m-%d %H:%M:%S %z", &tm);
	char *body = xasprintf(
		"retentiond on %s cannot reach its database since %s:\n\n"
		"  %s\n\n"
		"No retention cycle runs until it can. It keeps retrying (at "
		"least every %lld minutes) and logs when the connection is "
		"back.\n", host, since, d->down_error ? d->down_error : "",
		SCHEDULE_BACKOFF_MAX_MS / 60000);
	postcycle_alert_direct(d->cfg, "retentiond: database unreachable", body);
	free(body);
	d->alerted = true;
}

/* --- a cycle ------------------------------------------------------------- */

static bool
hook_stop(void *arg)
{
	struct daemon *d = arg;
	if (!signals_stop_requested())
		return false;
	if (!d->stopping) {
		notify_stopping();
		d->stopping = true;
		log_notice("stopping after the batch in flight");
	}
	return true;
}

static void
hook_status(void *arg, const char *line)
{
	struct daemon *d = arg;
	int64_t now = (int64_t)monotonic_ms();
	notify_watchdog_tick(now);
	if (now - d->last_status < STATUS_GAP_MS)
		return;
	d->last_status = now;
	char buf[512];		/* notify_status cuts it to length */
	snprintf(buf, sizeof(buf), "%s, cycle %d of today", line,
		 d->cycles_today);
	notify_status(buf);
}

static void
count_today(struct daemon *d)
{
	struct tm tm;
	(void)local_now(&tm);
	int day = (tm.tm_year + 1900) * 1000 + tm.tm_yday;
	if (day != d->day) {
		d->day = day;
		d->cycles_today = 0;
	}
	d->cycles_today++;
}

static void
log_rules(const struct run_result *res)
{
	for (size_t i = 0; i < res->n_rules; i++) {
		const struct rule_result *rr = &res->rules[i];
		if (!rr->rule)
			continue;
		const struct rule *r = rr->rule;
		if (rule_outcome_is_failure(rr->outcome))
			log_warning("rule \"%s\" (%s.%s): %s: %s", r->name,
				    r->schema, r->table,
				    rule_outcome_name(rr->outcome),
				    rr->message ? rr->message : "");
		else if (rr->changed > 0 || rr->outcome == OUTCOME_STOPPED ||
			 rr->outcome == OUTCOME_TIME || rr->outcome == OUTCOME_LOCKED)
			log_info("rule \"%s\" (%s.%s): %s %lld rows in %lld "
				 "batch%s (%s)", r->name, r->schema, r->table,
				 r->action == ACTION_DELETE ? "deleted"
							    : "de-identified",
				 rr->changed, rr->batches,
				 rr->batches == 1 ? "" : "es",
				 rule_outcome_name(rr->outcome));
	}
}

static void
run_cycle(struct daemon *d, int64_t now)
{
	struct engine_options opt = { .command = "daemon" };
	struct engine_hooks hooks = {
		.should_stop = hook_stop,
		.status = hook_status,
		.arg = d,
	};
	struct run_result res;

	d->wakeup = false;
	d->retry = false;
	d->ran = true;
	d->last_start = now;
	d->last_status = 0;
	count_today(d);
	log_debug("cycle %d of today starting", d->cycles_today);

	signals_set_busy(true);
	enum engine_status es = engine_cycle(d->conn, d->cfg, &opt, &hooks, &res);
	signals_set_busy(false);
	if (signals_take_cancelled())
		log_notice("cancelled the statement still running %d s after "
			   "the stop request", DAEMON_STOP_GRACE_SECONDS);

	bool lost = PQstatus(d->conn) == CONNECTION_BAD;
	switch (es) {
	case ENGINE_LOCKED:
		log_warning("%s; trying again next cycle", res.error);
		snprintf(d->last_result, sizeof(d->last_result),
			 "last cycle skipped: another instance holds the lock");
		break;
	case ENGINE_ERROR:
		if (!lost)
			log_error("%s", res.error ? res.error
						  : "the cycle could not run");
		snprintf(d->last_result, sizeof(d->last_result),
			 "last cycle could not run");
		break;
	case ENGINE_OK:
		log_rules(&res);
		if (res.error && !lost)
			log_error("%s", res.error);
		if (lost)
			log_warning("run %lld cut short; %lld row%s changed and "
				    "audited before that", res.run_id, res.changed,
				    res.changed == 1 ? "" : "s");
		else
			log_info("run %lld: %s, %lld row%s changed in %.2f s",
				 res.run_id, run_status_name(res.status),
				 res.changed, res.changed == 1 ? "" : "s",
				 res.seconds);
		snprintf(d->last_result, sizeof(d->last_result),
			 "last cycle %s (%lld row%s changed)",
			 run_status_name(res.status), res.changed,
			 res.changed == 1 ? "" : "s");
		break;
	}
	if (lost) {
		/* the batches committed so far are audited; the run row stays
		 * "running" and the next cycle marks it interrupted */
		char run[64];
		snprintf(run, sizeof(run), "run %lld", res.run_id);
		lose_conn(d, (int64_t)monotonic_ms(), run);
		d->retry = !signals_stop_requested();
		snprintf(d->last_result, sizeof(d->last_result),
			 "last cycle cut short: database connection lost");
	} else {
		d->backoff = 0;	/* the connection held for a whole cycle */
	}
	if (!lost && res.run_id) {
		struct coverage_cycle cov;
		coverage_cycle_run(d->conn, d->cfg, &cov);
		int audit = postcycle(d->conn, d->cfg, &res, &cov);
		(void)metrics_write(d->conn, d->cfg, &res, &cov, audit);
		coverage_cycle_free(&cov);
	}
	run_result_free(&res);
}

/* --- reload -------------------------------------------------------------- */

static bool
same_secret(const struct secret *a, const struct secret *b)
{
	if (!a->data || !b->data)
		return a->data == b->data;
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static bool
same_database(const struct config *a, const struct config *b)
{
	return strcmp(a->database.conninfo, b->database.conninfo) == 0 &&
	       same_secret(&a->database.password, &b->database.password) &&
	       duration_ms(&a->database.statement_timeout) ==
		       duration_ms(&b->database.statement_timeout) &&
	       duration_ms(&a->database.lock_timeout) ==
		       duration_ms(&b->database.lock_timeout) &&
	       duration_ms(&a->database.connect_timeout) ==
		       duration_ms(&b->database.connect_timeout);
}

static void
log_diag(const struct diag *dg)
{
	for (size_t i = 0; i < dg->n; i++)
		log_msg(dg->entries[i].level == DIAG_ERROR ? LOG_LVL_ERROR
			: dg->entries[i].level == DIAG_WARNING ? LOG_LVL_WARNING
							       : LOG_LVL_INFO,
			"%s", dg->entries[i].text);
}

/* Parse and validate into a fresh config; swap only when it is good. */
static void
reload(struct daemon *d, int64_t now)
{
	struct config *fresh = xcalloc(1, sizeof(*fresh));
	struct diag dg;
	bool ok;

	notify_reloading();
	notify_status("reloading the configuration");
	log_info("reloading the configuration from %s", d->path);
	diag_init(&dg);
	ok = config_load(d->path, fresh, &dg);
	if (ok && !secret_load_all(fresh, &dg)) {
		config_free(fresh);
		ok = false;
	}
	log_diag(&dg);
	if (!ok)
		log_error("%s: %zu error%s in the new configuration; no changes "
			  "were applied", d->path, dg.n_errors,
			  dg.n_errors == 1 ? "" : "s");
	diag_fini(&dg);

	if (ok && !same_database(d->cfg, fresh)) {
		if (d->conn) {
			/* a typo in the new conninfo must not cost the
			 * working connection */
			char *err = NULL;
			PGconn *conn = db_connect(fresh, &err);
			if (!conn) {
				log_error("could not connect with the new database "
					  "settings: %s; no changes were applied",
					  err);
				free(err);
				config_free(fresh);
				ok = false;
			} else {
				db_close(d->conn);
				set_conn(d, conn);
				d->connected_at = now;
			}
		} else {
			/* not connected anyway: try the new settings now */
			d->next_retry = now;
			d->backoff = 0;
		}
	}
	if (ok) {
		config_free(d->cfg);
		free(d->cfg);
		d->cfg = fresh;
		log_info("configuration reloaded: %zu rule%s, sha256 %.12s",
			 fresh->n_rules, fresh->n_rules == 1 ? "" : "s",
			 fresh->sha256);
		check_watchdog(fresh);
	} else {
		free(fresh);
	}
	notify_ready();
}

/* --- the loop ------------------------------------------------------------ */

/* Milliseconds until a cycle may start (0: now). */
static int64_t
cycle_wait(struct daemon *d, int64_t now)
{
	if (d->wakeup)
		return 0;
	struct tm tm;
	long sec = local_now(&tm);
	struct schedule_window w = window_of(d->cfg);
	int64_t due = (!d->ran || d->retry)
		? now
		: schedule_next_due(d->last_start, interval_ms(d->cfg), now);
	return schedule_wait_ms(due, now, &w, sec);
}

static void
idle_status(struct daemon *d, int64_t now, int64_t wait)
{
	char line[512];		/* notify_status cuts it to length */

	if (!d->conn) {
		long s = (long)((d->next_retry - now + 999) / 1000);
		snprintf(line, sizeof(line), "database unreachable, retrying in %ld s",
			 s > 0 ? s : 0);
		notify_status(line);
		return;
	}
	time_t at = time(NULL) + (time_t)((wait + 999) / 1000);
	struct tm tm_at, tm_now;
	char when[32];
	(void)local_now(&tm_now);
	localtime_r(&at, &tm_at);
	if (tm_at.tm_yday == tm_now.tm_yday && tm_at.tm_year == tm_now.tm_year)
		strftime(when, sizeof(when), "%H:%M", &tm_at);
	else
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm_at);
	snprintf(line, sizeof(line), "idle%s%s, next cycle at %s",
		 d->last_result[0] ? ", " : "", d->last_result, when);
	notify_status(line);
}

static void
sleep_for(struct daemon *d, int64_t ms)
{
	struct pollfd p[2];
	int n = 0, sig = -1, db = -1;

	if (ms > MAX_SLEEP_MS)
		ms = MAX_SLEEP_MS;
	if (ms < 0)
		ms = 0;
	if (signals_fd() >= 0) {
		sig = n;
		p[n++] = (struct pollfd){ .fd = signals_fd(), .events = POLLIN };
	}
	if (d->conn && PQsocket(d->conn) >= 0) {
		db = n;
		p[n++] = (struct pollfd){ .fd = PQsocket(d->conn), .events = POLLIN };
	}
	int r = poll(p, (nfds_t)n, (int)ms);
	if (r < 0) {
		if (errno != EINTR)
			log_warning("poll: %s", strerror(errno));
		return;
	}
	if (sig >= 0 && p[sig].revents)
		signals_drain();
	if (db >= 0 && p[db].revents)
		check_conn(d, (int64_t)monotonic_ms());
}

int
daemon_run(const char *path, struct config *cfg)
{
	struct daemon d = { .path = path, .cfg = cfg };
	char interval[DURATION_TEXT_MAX];

	signals_init();
	signals_set_grace(DAEMON_STOP_GRACE_SECONDS);
	notify_init();
	duration_to_interval(&cfg->schedule.interval, interval, sizeof(interval));
	if (cfg->schedule.has_window)
		log_info("daemon starting: %s, %zu rules, a cycle every %s between "
			 "%02d:%02d and %02d:%02d", path, cfg->n_rules, interval,
			 cfg->schedule.window_start / 60,
			 cfg->schedule.window_start % 60,
			 cfg->schedule.window_end / 60,
			 cfg->schedule.window_end % 60);
	else
		log_info("daemon starting: %s, %zu rules, a cycle every %s",
			 path, cfg->n_rules, interval);
	check_watchdog(cfg);
	d.next_retry = (int64_t)monotonic_ms();
	d.down_since = d.next_retry;
	d.down_since_wall = time(NULL);

	for (;;) {
		int64_t now = (int64_t)monotonic_ms();

		if (signals_stop_requested())
			break;
		if (signals_take_reload())
			reload(&d, now);
		if (signals_take_wakeup()) {
			log_info("SIGUSR1: starting a cycle now");
			d.wakeup = true;
			if (!d.conn)
				d.next_retry = now;
		}
		if (!d.conn && now >= d.next_retry)
			try_connect(&d, now);
		if (d.conn && !d.ready) {
			/* config and database are up */
			notify_ready();
			d.ready = true;
		}
		int64_t wait = cycle_wait(&d, now);
		if (d.conn && wait == 0) {
			run_cycle(&d, now);
			continue;
		}
		if (!d.conn && wait == 0)
			maybe_alert(&d, now);
		idle_status(&d, now, wait);
		notify_watchdog_tick(now);

		int64_t sleep = d.conn ? wait : d.next_retry - now;
		int64_t wd = notify_watchdog_wait_ms(now);
		if (wd >= 0 && wd < sleep)
			sleep = wd;
		sleep_for(&d, sleep);
	}

	if (!d.stopping)
		notify_stopping();
	notify_status("stopping");
	log_info("daemon stopped");
	db_close(d.conn);
	signals_fini();
	notify_fini();
	config_free(d.cfg);
	free(d.cfg);
	free(d.down_error);
	return 0;
}
