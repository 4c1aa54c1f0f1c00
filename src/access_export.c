/*
 * The export files of an access request: access-ID.json (portable,
 * "retentiond-access/1") and access-ID.html (for the person). Rows are
 * read through a cursor a batch at a time and written as they come, so
 * memory does not grow with the subject's rows.
 */
#include "access.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "duration.h"
#include "file.h"
#include "log.h"
#include "report.h"
#include "strbuf.h"

#define FETCH_ROWS 1000
#define FETCH_SQL "FETCH 1000 FROM access_rows"
#define FLUSH_BYTES (64 * 1024)

/* PostgreSQL's json and jsonb type oids: embedded as JSON, not as text. */
#define OID_JSON 114
#define OID_JSONB 3802

/* A file being written: buffered, hashed and counted on the way out. */
struct writer {
	struct file_stream fs;
	struct strbuf b;
	struct sha256_ctx sha;
	long long bytes;
	char *err;		/* the first write error */
	bool open;
};

static bool
w_open(struct writer *w, const char *path, char **err)
{
	memset(w, 0, sizeof(*w));
	w->fs.fd = -1;
	sha256_init(&w->sha);
	if (!file_stream_open(&w->fs, path, 0600, err))
		return false;
	w->open = true;
	return true;
}

static void
w_flush(struct writer *w)
{
	if (w->b.len && !w->err) {
		sha256_update(&w->sha, w->b.s, w->b.len);
		w->bytes += (long long)w->b.len;
		if (!file_stream_write(&w->fs, w->b.s, w->b.len, &w->err))
			log_debug("export: %s", w->err);
	}
	w->b.len = 0;
	if (w->b.s)
		w->b.s[0] = '\0';
}

static void
w_maybe_flush(struct writer *w)
{
	if (w->b.len >= FLUSH_BYTES)
		w_flush(w);
}

static bool
w_commit(struct writer *w, struct access_file *f, char **err)
{
	unsigned char d[SHA256_DIGEST_LEN];

	w_flush(w);
	sb_free(&w->b);
	if (w->err) {
		*err = w->err;
		w->err = NULL;
		file_stream_abort(&w->fs);
		w->open = false;
		return false;
	}
	f->path = xstrdup(w->fs.path);
	w->open = false;
	if (!file_stream_commit(&w->fs, err)) {
		free(f->path);
		f->path = NULL;
		return false;
	}
	sha256_final(&w->sha, d);
	sha256_hex(d, f->sha256);
	f->bytes = w->bytes;
	return true;
}

static void
w_abort(struct writer *w)
{
	sb_free(&w->b);
	free(w->err);
	w->err = NULL;
	if (w->open)
		file_stream_abort(&w->fs);
	w->open = false;
}

char *
access_rule_when(const struct rule *r)
{
	char iv[DURATION_TEXT_MAX];
	struct strbuf b = STRBUF_INIT;

	duration_to_interval(&r->retain, iv, sizeof(iv));
	if (r->action == ACTION_DEIDENTIFY) {
		sb_add(&b, "de-identified (");
		for (size_t i = 0; i < r->n_deidentify; i++)
			sb_printf(&b, "%s%s: %s", i ? ", " : "",
				  r->deidentify[i].column,
				  deid_method_name(r->deidentify[i].method));
		sb_add(&b, ")");
	} else {
		sb_add(&b, "deleted");
	}
	sb_printf(&b, " %s after %s", iv, r->age_column);
	if (r->where)
		sb_printf(&b, ", for rows where %s", r->where);
	return sb_take(&b);
}

/* The rules that govern a table, as three texts (NULL when none). */
static void
governance(const struct sg_table *t, char **rule, char **policy, char **when)
{
	struct strbuf r = STRBUF_INIT, p = STRBUF_INIT, w = STRBUF_INIT;

	*rule = *policy = *when = NULL;
	for (size_t i = 0; i < t->n_rules; i++) {
		char *one = access_rule_when(t->rules[i]);
		sb_printf(&r, "%s%s", i ? ", " : "", t->rules[i]->name);
		sb_printf(&p, "%s%s", i ? " / " : "", t->rules[i]->policy);
		sb_printf(&w, "%s%s", i ? "; " : "", one);
		free(one);
	}
	if (t->n_rules) {
		*rule = sb_take(&r);
		*policy = sb_take(&p);
		*when = sb_take(&w);
	}
}

static void
json_head(struct writer *j, const struct access_request *rq, const char *gen)
{
	sb_add(&j->b, "{\n\"format\": \"retentiond-access/1\",\n\"request\": ");
	sb_printf(&j->b, "{\"id\": %lld, \"subject\": ", rq->id);
	sb_json_str(&j->b, rq->subject);
	sb_add(&j->b, ", \"subject_id\": ");
	sb_json_str(&j->b, rq->subject_id);
	sb_add(&j->b, ", \"requested_at\": ");
	sb_json_str(&j->b, rq->requested_at);
	sb_add(&j->b, ", \"due_at\": ");
	sb_json_str(&j->b, rq->due_at);
	sb_add(&j->b, "},\n\"generated_at\": ");
	sb_json_str(&j->b, gen);
	sb_add(&j->b, ",\n\"tables\": [");
}

static const char HTML_STYLE[] =
	"body{font-family:sans-serif;margin:2em;max-width:72em}"
	"table{border-collapse:collapse;margin:.5em 0}"
	"td,th{border:1px solid #999;padding:.2em .5em;text-align:left;"
	"vertical-align:top;white-space:pre-wrap}"
	"th{background:#eee}.meta{color:#333}";

static void
html_head(struct writer *h, const struct access_request *rq, const char *gen)
{
	sb_printf(&h->b, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
		  "<meta charset=\"utf-8\"><title>Your personal data "
		  "(request %lld)</title><style>%s</style></head><body>\n"
		  "<h1>The personal data we hold about you</h1>\n"
		  "<p class=\"meta\">Access request %lld for ", rq->id,
		  HTML_STYLE, rq->id);
	report_html_escape(&h->b, rq->subject);
	sb_add(&h->b, " ");
	report_html_escape(&h->b, rq->subject_id);
	sb_add(&h->b, ", received ");
	report_html_escape(&h->b, rq->requested_at);
	sb_add(&h->b, ", due ");
	report_html_escape(&h->b, rq->due_at);
	sb_add(&h->b, ". Generated ");
	report_html_escape(&h->b, gen);
	sb_add(&h->b, ". Each section below is one table of our database: "
	       "how it relates to you, the policy that governs it, when its "
	       "data is deleted or de-identified, and the data itself. The "
	       "same data, machine-readable, is in the JSON file that "
	       "comes with this page.</p>\n");
}

static void
table_head(struct writer *j, struct writer *h, const struct sg_table *t,
	   bool first)
{
	char *name = xasprintf("%s.%s", t->schema, t->table);
	char *rule, *policy, *when;

	governance(t, &rule, &policy, &when);
	sb_add(&j->b, first ? "\n {\"table\": " : ",\n {\"table\": ");
	sb_json_str(&j->b, name);
	sb_add(&j->b, ", \"reached_by\": ");
	sb_json_str(&j->b, t->reached_by);
	sb_add(&j->b, ", \"rule\": ");
	sb_json_str(&j->b, rule);
	sb_add(&j->b, ", \"policy\": ");
	sb_json_str(&j->b, policy);
	sb_add(&j->b, ", \"deleted\": ");
	sb_json_str(&j->b, when);
	sb_add(&j->b, ",\n  \"rows\": [");

	sb_add(&h->b, "<section>\n<h2>");
	report_html_escape(&h->b, name);
	sb_add(&h->b, "</h2>\n<p>How it relates to you: ");
	report_html_escape(&h->b, t->reached_by);
	sb_add(&h->b, ".</p>\n<p>Policy: ");
	if (policy)
		report_html_escape(&h->b, policy);
	else
		sb_add(&h->b, "no retention rule covers this table.");
	sb_add(&h->b, "</p>\n<p>When it goes: ");
	if (when)
		report_html_escape(&h->b, when);
	else
		sb_add(&h->b, "kept until the application removes it.");
	sb_add(&h->b, "</p>\n");
	free(name);
	free(rule);
	free(policy);
	free(when);
}

static void
columns_head(struct writer *h, const PGresult *res)
{
	sb_add(&h->b, "<table>\n<tr>");
	for (int c = 0; c < PQnfields(res); c++) {
		sb_add(&h->b, "<th>");
		report_html_escape(&h->b, PQfname(res, c));
		sb_add(&h->b, "</th>");
	}
	sb_add(&h->b, "</tr>\n");
}

static void
write_row(struct writer *j, struct writer *h, const PGresult *res, int i,
	  bool first)
{
	sb_add(&j->b, first ? "\n   {" : ",\n   {");
	sb_add(&h->b, "<tr>");
	for (int c = 0; c < PQnfields(res); c++) {
		bool null = PQgetisnull(res, i, c);
		const char *v = PQgetvalue(res, i, c);
		Oid type = PQftype(res, c);

		sb_add(&j->b, c ? ", " : "");
		sb_json_str(&j->b, PQfname(res, c));
		sb_add(&j->b, ": ");
		if (null)
			sb_add(&j->b, "null");
		else if (type == OID_JSON || type == OID_JSONB)
			sb_add(&j->b, v);	/* the server checked it is JSON */
		else
			sb_json_str(&j->b, v);
		sb_add(&h->b, "<td>");
		if (null)
			sb_add(&h->b, "<i>(none)</i>");
		else
			report_html_escape(&h->b, v);
		sb_add(&h->b, "</td>");
	}
	sb_add(&j->b, "}");
	sb_add(&h->b, "</tr>\n");
	w_maybe_flush(j);
	w_maybe_flush(h);
}

static enum access_status
check_stop(const struct access_hooks *hooks)
{
	if (!hooks)
		return ACCESS_OK;
	if (hooks->should_stop && hooks->should_stop(hooks->arg))
		return ACCESS_STOPPED;
	if (hooks->deadline_ms > 0 && monotonic_ms() >= hooks->deadline_ms)
		return ACCESS_TIME;
	return ACCESS_OK;
}

/* Stream one table's rows through a cursor into both files. */
static enum access_status
export_table(PGconn *conn, const struct sg_table *t, const char *subject_id,
	     struct writer *j, struct writer *h,
	     const struct access_hooks *hooks, long long *rows, char **err)
{
	char *qt = db_qualified(conn, t->schema, t->table);
	char *e = NULL;
	if (!qt) {
		*err = db_error(conn, NULL);
		return ACCESS_FAILED;
	}
	char *sql = xasprintf("DECLARE access_rows NO SCROLL CURSOR FOR"
			      " SELECT t.* FROM %s t WHERE %s", qt,
			      t->predicate);
	const char *p[] = { subject_id };
	PGresult *res = db_query(conn, sql, 1, p, &e);
	free(sql);
	free(qt);
	if (!res) {
		*err = xasprintf("table %s.%s: %s", t->schema, t->table, e);
		free(e);
		return ACCESS_FAILED;
	}
	PQclear(res);

	enum access_status st = ACCESS_OK;
	bool header = false;
	*rows = 0;
	for (;;) {
		res = db_query(conn, FETCH_SQL, 0, NULL, &e);
		if (!res) {
			*err = xasprintf("table %s.%s: %s", t->schema, t->table,
					 e);
			free(e);
			return ACCESS_FAILED;
		}
		if (!header) {
			columns_head(h, res);
			header = true;
		}
		int n = PQntuples(res);
		for (int i = 0; i < n; i++, (*rows)++)
			write_row(j, h, res, i, *rows == 0);
		PQclear(res);
		if (j->err || h->err) {
			*err = xstrdup(j->err ? j->err : h->err);
			return ACCESS_FAILED;
		}
		if (n < FETCH_ROWS)
			break;
		if ((st = check_stop(hooks)) != ACCESS_OK)
			return st;
	}
	if (!db_exec(conn, "CLOSE access_rows", &e)) {
		*err = xasprintf("table %s.%s: %s", t->schema, t->table, e);
		free(e);
		return ACCESS_FAILED;
	}
	return ACCESS_OK;
}

/* Access exports hold personal data: the directory is the owner's alone.
 * Created 0700 when missing; one others can enter is refused, not fixed,
 * since the admin may have reasons to be told. */
static bool
prepare_directory(const char *dir, char **err)
{
	struct stat st;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		*err = xasprintf("requests.directory \"%s\": could not create "
				 "it: %s", dir, strerror(errno));
		return false;
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		*err = xasprintf("requests.directory \"%s\" is not a directory",
				 dir);
		return false;
	}
	if (st.st_mode & 077) {
		*err = xasprintf("requests.directory \"%s\" has mode %04o: "
				 "exports hold personal data, so it must not be "
				 "open to group or others (chmod 0700 it)", dir,
				 (unsigned)(st.st_mode & 07777));
		return false;
	}
	return true;
}

static void
rollback(PGconn *conn)
{
	char *e = NULL;
	if (PQtransactionStatus(conn) != PQTRANS_IDLE &&
	    !db_exec(conn, "ROLLBACK", &e)) {
		log_debug("rollback: %s", e);
		free(e);
	}
}

enum access_status
access_export_write(PGconn *conn, const struct config *cfg,
		    const struct access_request *rq,
		    const struct subject_graph *g,
		    const struct access_hooks *hooks, struct access_export *out,
		    char **err)
{
	struct writer j, h;
	enum access_status st = ACCESS_FAILED;
	char *e = NULL;

	memset(out, 0, sizeof(*out));
	memset(&j, 0, sizeof(j));
	memset(&h, 0, sizeof(h));
	if (!prepare_directory(cfg->requests.directory, err))
		return ACCESS_FAILED;
	char *jpath = xasprintf("%s/access-%lld.json", cfg->requests.directory,
				rq->id);
	char *hpath = xasprintf("%s/access-%lld.html", cfg->requests.directory,
				rq->id);
	bool opened = w_open(&j, jpath, err) && w_open(&h, hpath, err);
	free(jpath);
	free(hpath);
	if (!opened)
		goto fail;

	/* one snapshot for every table: a row moved from one table to
	 * another meanwhile is exported once */
	if (!db_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", &e))
		goto fail_e;
	/* the files say UTF-8, whatever the database's encoding */
	if (!db_exec(conn, "SET LOCAL client_encoding = 'UTF8'", &e))
		goto fail_e;
	PGresult *res = db_query(conn, "SELECT pg_catalog.to_char(pg_catalog.now()"
		" AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')", 0, NULL, &e);
	if (!res)
		goto fail_e;
	out->generated_at = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);

	json_head(&j, rq, out->generated_at);
	html_head(&h, rq, out->generated_at);
	out->table_rows = xcalloc(g->n ? g->n : 1, sizeof(*out->table_rows));
	out->n_tables = g->n;
	for (size_t i = 0; i < g->n; i++) {
		long long n = 0;
		table_head(&j, &h, &g->tables[i], i == 0);
		st = export_table(conn, &g->tables[i], rq->subject_id, &j, &h,
				  hooks, &n, err);
		if (st != ACCESS_OK)
			goto fail;
		sb_printf(&j.b, "%s],\n  \"row_count\": %lld}", n ? "\n  " : "", n);
		sb_printf(&h.b, "</table>\n<p>%lld row%s.</p>\n</section>\n", n,
			  n == 1 ? "" : "s");
		out->table_rows[i] = n;
		out->rows += n;
	}
	if (g->n == 0)
		sb_add(&h.b, "<p>We hold no data about you.</p>\n");
	sb_add(&j.b, g->n ? "\n]\n}\n" : "]\n}\n");
	sb_add(&h.b, "</body></html>\n");
	if (!db_exec(conn, "COMMIT", &e))
		goto fail_e;
	st = ACCESS_FAILED;
	if (!w_commit(&j, &out->json, err))
		goto fail;
	if (!w_commit(&h, &out->html, err))
		goto fail;
	return ACCESS_OK;

fail_e:
	*err = e;
	st = ACCESS_FAILED;
fail:
	rollback(conn);
	w_abort(&j);
	w_abort(&h);
	/* a half-written pair must not look like a finished export */
	if (out->json.path)
		(void)unlink(out->json.path);
	access_export_free(out);
	return st;
}

void
access_export_free(struct access_export *e)
{
	free(e->json.path);
	free(e->html.path);
	free(e->generated_at);
	free(e->table_rows);
	memset(e, 0, sizeof(*e));
}
