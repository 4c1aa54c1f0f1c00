/*
 * Loading the config file: reading it (once, so the digest is of exactly
 * what is parsed), permissions, @include, and the public entry points. The
 * keys themselves are checked in config_groups.c and config_rules.c.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_parse.h"
#include "secret.h"
#include "sha256.h"
#include "util.h"

/* Refuse absurd files before reading them into memory. */
#define CONFIG_MAX_BYTES (16 * 1024 * 1024)

static void
set_defaults(struct config *cfg)
{
	cfg->database.schema = xstrdup("retention");
	cfg->database.statement_timeout = (struct duration){30, DUR_SECOND};
	cfg->database.lock_timeout = (struct duration){2, DUR_SECOND};
	cfg->database.connect_timeout = (struct duration){10, DUR_SECOND};
	cfg->schedule.interval = (struct duration){1, DUR_HOUR};
	cfg->limits.batch_size = 10000;
	cfg->coverage.sample_rows = 1000;
	cfg->limits.batch_target = (struct duration){200, DUR_MILLISECOND};
	cfg->limits.pause = (struct duration){10, DUR_MILLISECOND};
	cfg->limits.busy_batch_target = (struct duration){3, DUR_MILLISECOND};
	cfg->limits.max_runtime = (struct duration){1, DUR_HOUR};
	cfg->limits.max_fraction = 0.5;
	cfg->mail.tls = MAIL_TLS_STARTTLS;
	cfg->mail.send = MAIL_SEND_CHANGES;
	cfg->mail.timeout = (struct duration){30, DUR_SECOND};
	cfg->state_directory = xstrdup(config_default_state_directory());
	/* beside the ledger: under systemd the one directory the unit may
	 * write (retentiond@NAME: /var/lib/retentiond/NAME/requests) */
	cfg->requests.directory = xasprintf("%s/requests", cfg->state_directory);
}

const char *
config_default_state_directory(void)
{
	/* systemd's StateDirectory=, so that retentiond@NAME gets its own
	 * /var/lib/retentiond/NAME; a list (several directories) or a
	 * relative path is not ours */
	const char *env = getenv("STATE_DIRECTORY");

	if (env && env[0] == '/' && !strchr(env, ':'))
		return env;
	return CONFIG_STATE_DIRECTORY;
}

static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

static char *
join_path(const char *dir, const char *name)
{
	if (name[0] == '/' || strcmp(dir, ".") == 0)
		return xstrdup(name);
	if (strcmp(dir, "/") == 0)
		return xasprintf("/%s", name);
	return xasprintf("%s/%s", dir, name);
}

/* The quoted path of an "@include" directive starting line LINE of text,
 * into buf; false if that line holds none. */
static bool
include_at(const char *text, int line, char *buf, size_t len)
{
	const char *p = text;

	for (int n = 1; n < line && p; n++)
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	if (!p)
		return false;
	p += strspn(p, " \t");
	if (strncmp(p, "@include", 8) != 0)
		return false;
	p += 8;
	p += strspn(p, " \t");
	if (*p++ != '"')
		return false;
	size_t n = strcspn(p, "\"\n");
	if (p[n] != '"' || n >= len)
		return false;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return true;
}

/* The entry of cfg->files for a name as libconfig gives it. */
static const char *
file_named(struct cfg_ctx *c, const char *name)
{
	const struct config *cfg = c->cfg;
	char *path;

	if (!name)
		return cfg->files[0];
	path = join_path(c->include_dir, name);
	for (size_t i = 1; i < cfg->n_files; i++) {
		if (strcmp(cfg->files[i], path) == 0) {
			free(path);
			return cfg->files[i];
		}
	}
	free(path);
	return cfg->files[0];
}

static int
count_lines(const char *text)
{
	int n = 0;

	for (const char *p = text; *p; p++)
		if (*p == '\n' || p[1] == '\0')
			n++;
	return n;
}

static void
syntax_error(struct cfg_ctx *c, const config_t *lc, const char *text)
{
	const char *efile = config_error_file(lc);
	const char *etext = config_error_text(lc);
	const char *file = file_named(c, efile);
	int line = config_error_line(lc);
	char inc[512], q[128];

	if (!etext)
		etext = "unknown error";
	if (strcmp(etext, "cannot open include file") == 0) {
		/* libconfig names neither the file nor where it looked; the
		 * name is the file's text, so it is quoted (a CR in it
		 * would break the message's one line) */
		if (!efile && include_at(text, line, inc, sizeof(inc)))
			cfg_report(c, DIAG_ERROR, file, line, "@include: cannot "
				   "open \"%s\" (looked in %s)",
				   cfg_quote(inc, q, sizeof(q)), c->include_dir);
		else
			cfg_report(c, DIAG_ERROR, file, line, "@include: cannot "
				   "open the file (relative paths start at %s)",
				   c->include_dir);
	} else if (strcmp(etext, "syntax error") == 0 && !efile &&
		   line > count_lines(text)) {
		cfg_report(c, DIAG_ERROR, file, line, "syntax error at the end "
			   "of the file: is a bracket, brace or quote left "
			   "open?");
	} else if (strcmp(etext, "syntax error") == 0)
		cfg_report(c, DIAG_ERROR, file, line, "syntax error");
	else if (strcmp(etext, "memory exhausted") == 0)
		/* bison's message when its stack reaches YYMAXDEPTH */
		cfg_report(c, DIAG_ERROR, file, line, "syntax error: lists or "
			   "groups nested too deep for the parser");
	else if (strcmp(etext, "include file nesting too deep") == 0)
		/* libconfig's own limit, which also ends include loops */
		cfg_report(c, DIAG_ERROR, file, line, "@include nested too "
			   "deep: does a file include itself, directly or "
			   "through another?");
	else
		cfg_report(c, DIAG_ERROR, file, line, "syntax error: %s", etext);
}

#if LIBCONFIG_VER_MAJOR == 1 && LIBCONFIG_VER_MINOR < 7
/* libconfig before 1.7 glues the include directory in front of every
 * @include path, so an absolute one can never be found. Say so, rather
 * than "cannot open include file". */
static bool
absolute_includes(struct cfg_ctx *c, const char *text)
{
	const char *p = text;
	char inc[512], q[128];
	bool found = false;

	for (int line = 1; p; line++) {
		if (include_at(p, 1, inc, sizeof(inc)) && inc[0] == '/') {
			cfg_report(c, DIAG_ERROR, c->cfg->files[0], line,
				   "@include \"%s\": this libconfig (%d.%d) "
				   "only resolves paths relative to %s; "
				   "write the path relative to it",
				   cfg_quote(inc, q, sizeof(q)),
				   LIBCONFIG_VER_MAJOR, LIBCONFIG_VER_MINOR,
				   c->include_dir);
			found = true;
		}
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	}
	return found;
}
#else
static bool
absolute_includes(struct cfg_ctx *c, const char *text)
{
	(void)c;
	(void)text;
	return false;
}
#endif

static void
record_files(struct cfg_ctx *c, const config_t *lc)
{
	struct config *cfg = c->cfg;

	cfg->files = xreallocarray(cfg->files, 1 + lc->num_filenames,
				   sizeof(*cfg->files));
	for (unsigned i = 0; i < lc->num_filenames; i++)
		cfg->files[cfg->n_files++] = join_path(c->include_dir,
							lc->filenames[i]);
}

/* Parse TEXT, read from NAME, into c->cfg. */
static void
parse_text(struct cfg_ctx *c, const char *text)
{
	config_t lc;

	if (absolute_includes(c, text))
		return;
	config_init(&lc);
	config_set_include_dir(&lc, c->include_dir);
	int ok = config_read_string(&lc, text);
	/* also after an error: it may be in an included file */
	record_files(c, &lc);
	if (!ok) {
		syntax_error(c, &lc, text);
	} else {
		c->lc = &lc;
		cfg_parse_root(c, config_root_setting(&lc));
		c->lc = NULL;
	}
	config_destroy(&lc);
}

static void
start(struct cfg_ctx *c, struct config *cfg, struct diag *diag,
      const char *name)
{
	memset(c, 0, sizeof(*c));
	c->cfg = cfg;
	c->diag = diag;
	c->include_dir = dir_of(name);
	set_defaults(cfg);
	cfg->path = xstrdup(name);
	cfg->files = xcalloc(1, sizeof(*cfg->files));
	cfg->files[0] = xstrdup(name);
	cfg->n_files = 1;
}

static bool
finish(struct cfg_ctx *c)
{
	bool ok = c->n_errors == 0;

	cfg_flush(c);
	free(c->include_dir);
	if (!ok)
		config_free(c->cfg);
	return ok;
}

bool
config_load_string(const char *text, const char *name, struct config *out,
		   struct diag *diag)
{
	struct cfg_ctx c;
	unsigned char digest[SHA256_DIGEST_LEN];

	memset(out, 0, sizeof(*out));
	start(&c, out, diag, name);
	sha256(text, strlen(text), digest);
	sha256_hex(digest, out->sha256);
	parse_text(&c, text);
	return finish(&c);
}

static char *
read_all(int fd, size_t *len, const char *path, struct diag *diag)
{
	size_t cap = 8192, n = 0;
	char *buf = xmalloc(cap);

	for (;;) {
		if (n + 1 == cap) {
			cap *= 2;
			buf = xreallocarray(buf, cap, 1);
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			diag_error(diag, path, 0, "cannot read: %s",
				   strerror(errno));
			free(buf);
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		/* checked on every read: doubling alone let files up to
		 * twice the limit through */
		if (n > CONFIG_MAX_BYTES) {
			diag_error(diag, path, 0, "is larger than %d bytes; is "
				   "it the right file?", CONFIG_MAX_BYTES);
			free(buf);
			return NULL;
		}
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

static void
check_writable(struct cfg_ctx *c, const char *file, const struct stat *st)
{
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		cfg_report(c, DIAG_ERROR, file, 0, "is writable by group or "
			   "others; refusing to trust it (chmod go-w %s)", file);
}

/* Included files get the same scrutiny as the main one. */
static void
check_included(struct cfg_ctx *c)
{
	const struct config *cfg = c->cfg;
	struct stat st;

	for (size_t i = 1; i < cfg->n_files; i++) {
		if (stat(cfg->files[i], &st) != 0)
			cfg_report(c, DIAG_ERROR, cfg->files[i], 0, "cannot "
				   "stat: %s", strerror(errno));
		else
			check_writable(c, cfg->files[i], &st);
	}
}

/* The only secret a config can hold inline is a password in conninfo. */
static void
check_inline_secret(struct cfg_ctx *c, const struct stat *main_st)
{
	struct stat st;

	if (!c->cfg->database.conninfo || !c->conninfo_file ||
	    !secret_conninfo_has_password(c->cfg->database.conninfo))
		return;
	if (c->conninfo_file != c->cfg->files[0]) {
		if (stat(c->conninfo_file, &st) != 0)
			return;		/* reported by check_included */
		main_st = &st;
	}
	if (main_st->st_mode & S_IROTH)
		cfg_report(c, DIAG_ERROR, c->conninfo_file, c->conninfo_line,
			   "\"conninfo\" holds a password and this file is "
			   "readable by others; move the password to "
			   "\"password_file\" or the systemd credential \"%s\", "
			   "or chmod o-r %s", SECRET_CRED_DB, c->conninfo_file);
}

bool
config_load(const char *path, struct config *out, struct diag *diag)
{
	unsigned char digest[SHA256_DIGEST_LEN];
	struct cfg_ctx c;
	struct stat st;
	size_t len;
	char *text;
	int fd;

	memset(out, 0, sizeof(*out));
	/* fstat the descriptor that is read: nothing can swap the file
	 * between the check and the use */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		diag_error(diag, path, 0, "cannot open: %s", strerror(errno));
		return false;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		diag_error(diag, path, 0, "is not a regular file");
		close(fd);
		return false;
	}
	text = read_all(fd, &len, path, diag);
	close(fd);
	if (!text)
		return false;
	if (strlen(text) != len) {
		diag_error(diag, path, 0, "contains a NUL byte; is it a text "
			   "file?");
		free(text);
		return false;
	}

	start(&c, out, diag, path);
	/* the digest is of exactly the bytes parsed */
	sha256(text, len, digest);
	sha256_hex(digest, out->sha256);
	check_writable(&c, out->files[0], &st);
	parse_text(&c, text);
	check_included(&c);
	check_inline_secret(&c, &st);
	free(text);
	return finish(&c);
}

static void
free_rule(struct rule *r)
{
	free(r->name);
	free(r->policy);
	free(r->schema);
	free(r->table);
	free(r->age_column);
	free(r->where);
	free(r->subject);
	free(r->subject_column);
	free(r->marker_column);
	for (size_t i = 0; i < r->n_deidentify; i++)
		free(r->deidentify[i].column);
	free(r->deidentify);
}

void
config_free(struct config *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	/* it may hold a password, in a 0600 file */
	secure_free_str(cfg->database.conninfo);
	free(cfg->database.password_file);
	free(cfg->database.schema);
	secret_clear(&cfg->database.password);
	free(cfg->pseudonym_key_file);
	secret_clear(&cfg->pseudonym_key);
	free(cfg->mail.url);
	free(cfg->mail.username);
	free(cfg->mail.password_file);
	free(cfg->mail.ca_file);
	free(cfg->mail.from);
	for (size_t i = 0; i < cfg->mail.n_to; i++)
		free(cfg->mail.to[i]);
	free(cfg->mail.to);
	secret_clear(&cfg->mail.password);
	free(cfg->report.directory);
	free(cfg->metrics_file);
	free(cfg->state_directory);
	for (size_t i = 0; i < cfg->coverage.n_ignore; i++) {
		free(cfg->coverage.ignore[i].match);
		free(cfg->coverage.ignore[i].reason);
	}
	free(cfg->coverage.ignore);
	for (size_t i = 0; i < cfg->n_subjects; i++) {
		free(cfg->subjects[i].name);
		free(cfg->subjects[i].schema);
		free(cfg->subjects[i].table);
		free(cfg->subjects[i].key);
	}
	free(cfg->subjects);
	free(cfg->requests.directory);
	for (size_t i = 0; i < cfg->n_rules; i++)
		free_rule(&cfg->rules[i]);
	free(cfg->rules);
	for (size_t i = 0; i < cfg->n_files; i++)
		free(cfg->files[i]);
	free(cfg->files);
	memset(cfg, 0, sizeof(*cfg));
}

const struct rule *
config_find_rule(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_rules; i++)
		if (cfg->rules[i].name && strcmp(cfg->rules[i].name, name) == 0)
			return &cfg->rules[i];
	return NULL;
}

const struct subject *
config_find_subject(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_subjects; i++)
		if (cfg->subjects[i].name &&
		    strcmp(cfg->subjects[i].name, name) == 0)
			return &cfg->subjects[i];
	return NULL;
}

bool
config_subject_allowed(const struct config *cfg, const char *kind)
{
	return !cfg->has_subjects || config_find_subject(cfg, kind) != NULL;
}
