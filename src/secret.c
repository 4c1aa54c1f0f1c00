#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

/* Passwords and keys are short; anything larger is the wrong file. */
#define SECRET_MAX_BYTES (64 * 1024)

/* Read FD (opened from PATH) into out. Messages name PATH, never content. */
static bool
read_secret(int fd, const char *path, bool check_mode, struct secret *out,
	    struct diag *diag)
{
	struct stat st;
	unsigned char *buf;
	size_t n = 0;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		diag_error(diag, path, 0, "secret is not a regular file");
		return false;
	}
	if (check_mode &&
	    (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH))) {
		diag_error(diag, path, 0, "secret file is readable or writable "
			   "by group or others; refusing to use it (chmod 600 "
			   "%s)", path);
		return false;
	}

	/* one byte more than allowed, to tell "too large" from "just fits" */
	buf = xmalloc(SECRET_MAX_BYTES + 2);
	for (;;) {
		ssize_t r = read(fd, buf + n, SECRET_MAX_BYTES + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			diag_error(diag, path, 0, "cannot read secret: %s",
				   strerror(errno));
			secure_free(buf, SECRET_MAX_BYTES + 2);
			return false;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > SECRET_MAX_BYTES)
			break;
	}
	if (n > SECRET_MAX_BYTES) {
		diag_error(diag, path, 0, "secret is larger than %d bytes; is "
			   "it the right file?", SECRET_MAX_BYTES);
		secure_free(buf, SECRET_MAX_BYTES + 2);
		return false;
	}

	/* editors add a final newline; it is not part of the secret */
	if (n >= 2 && buf[n - 2] == '\r' && buf[n - 1] == '\n')
		n -= 2;
	else if (n >= 1 && buf[n - 1] == '\n')
		n -= 1;
	if (n == 0) {
		diag_error(diag, path, 0, "secret file is empty");
		secure_free(buf, SECRET_MAX_BYTES + 2);
		return false;
	}

	out->data = xmalloc(n + 1);
	memcpy(out->data, buf, n);
	out->data[n] = '\0';
	out->len = n;
	out->source = xstrdup(path);
	secure_free(buf, SECRET_MAX_BYTES + 2);
	return true;
}

static bool
load_from(const char *path, bool check_mode, struct secret *out,
	  struct diag *diag)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	bool ok;

	if (fd < 0) {
		diag_error(diag, path, 0, "cannot open secret file: %s",
			   strerror(errno));
		return false;
	}
	ok = read_secret(fd, path, check_mode, out, diag);
	close(fd);
	return ok;
}

bool
secret_load(const char *cred, const char *path, struct secret *out,
	    struct diag *diag)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");

	memset(out, 0, sizeof(*out));
	if (cred && dir && *dir) {
		char *cpath = xasprintf("%s/%s", dir, cred);

		/* a credential that is not there is not an error: the
		 * configured file, or none, is used instead. Its mode is not
		 * checked: systemd keeps credentials in a directory only the
		 * service can enter, and grants the service user read access
		 * by an ACL, which shows as group bits in the mode. */
		if (access(cpath, F_OK) == 0 || errno != ENOENT) {
			bool ok = load_from(cpath, false, out, diag);
			free(cpath);
			return ok;
		}
		free(cpath);
	}
	if (!path)
		return true;
	return load_from(path, true, out, diag);
}

void
secret_clear(struct secret *s)
{
	if (!s)
		return;
	if (s->data)
		secure_free(s->data, s->len + 1);
	free(s->source);
	memset(s, 0, sizeof(*s));
}

/* libpq stops reading a password at the first NUL; a NUL inside one is a
 * damaged file, not a shorter password. */
static bool
text_secret(const struct secret *s, struct diag *diag)
{
	if (!s->data || memchr(s->data, '\0', s->len) == NULL)
		return true;
	diag_error(diag, s->source, 0, "password contains a NUL byte");
	return false;
}

static const struct rule *
first_hashing_rule(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_rules; i++)
		for (size_t j = 0; j < cfg->rules[i].n_deidentify; j++)
			if (cfg->rules[i].deidentify[j].method == METHOD_HASH)
				return &cfg->rules[i];
	return NULL;
}

bool
secret_load_all(struct config *cfg, struct diag *diag)
{
	size_t errors_before = diag->n_errors;
	const struct rule *hashing = first_hashing_rule(cfg);

	/* a reload may call this again on the same config */
	secret_clear(&cfg->database.password);
	secret_clear(&cfg->mail.password);
	secret_clear(&cfg->pseudonym_key);

	if (secret_load(SECRET_CRED_DB, cfg->database.password_file,
			&cfg->database.password, diag))
		(void)text_secret(&cfg->database.password, diag);

	if (cfg->mail.configured &&
	    secret_load(SECRET_CRED_SMTP, cfg->mail.password_file,
			&cfg->mail.password, diag))
		(void)text_secret(&cfg->mail.password, diag);

	if (secret_load(SECRET_CRED_PSEUDONYM, cfg->pseudonym_key_file,
			&cfg->pseudonym_key, diag)) {
		const struct secret *key = &cfg->pseudonym_key;

		if (key->data && key->len < SECRET_PSEUDONYM_MIN)
			diag_error(diag, key->source, 0, "pseudonym key is %zu "
				   "bytes; at least %d are needed (make one: "
				   "umask 077; head -c 32 /dev/urandom | base64 "
				   "> %s)", key->len,
				   SECRET_PSEUDONYM_MIN, key->source);
		else if (!key->data && hashing)
			diag_error(diag, hashing->file, hashing->line,
				   "rule \"%s\" uses \"hash\", which needs a "
				   "pseudonym key: set \"pseudonym_key_file\" or "
				   "provide the systemd credential \"%s\"",
				   hashing->name ? hashing->name : "?",
				   SECRET_CRED_PSEUDONYM);
	}

	if (diag->n_errors == errors_before)
		return true;
	secret_clear(&cfg->database.password);
	secret_clear(&cfg->mail.password);
	secret_clear(&cfg->pseudonym_key);
	return false;
}

bool
secret_conninfo_has_password(const char *conninfo)
{
	PQconninfoOption *opts;
	char *err = NULL;
	bool found = false;

	if (!conninfo)
		return false;
	opts = PQconninfoParse(conninfo, &err);
	PQfreemem(err);
	if (!opts)
		return false;
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
			found = true;
	/* the parsed options hold the password too */
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val)
			explicit_bzero(o->val, strlen(o->val));
	PQconninfoFree(opts);
	return found;
}
