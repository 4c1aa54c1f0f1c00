/*
 * secret: passwords and keys come from private files or systemd
 * credentials, and their content never appears in a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "secret.h"

/* Content no message may ever show. */
#define SECRET_TEXT "S3cr3t-Pa55w0rd-do-not-log"

struct tmp {
	char dir[64];		/* files */
	char creds[80];		/* a credentials directory inside it */
};

static char *
tmp_path(const struct tmp *t, const char *name)
{
	char *p = malloc(strlen(t->dir) + strlen(name) + 2);

	assert_non_null(p);
	sprintf(p, "%s/%s", t->dir, name);
	return p;
}

static void
write_bytes(const char *path, const void *data, size_t len, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void
write_text(const char *path, const char *text, mode_t mode)
{
	write_bytes(path, text, strlen(text), mode);
}

static int
setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	strcpy(t->dir, "/tmp/retentiond-secret-XXXXXX");
	if (!mkdtemp(t->dir))
		return -1;
	snprintf(t->creds, sizeof(t->creds), "%s/creds", t->dir);
	if (mkdir(t->creds, 0700) != 0)
		return -1;
	unsetenv("CREDENTIALS_DIRECTORY");
	*state = t;
	return 0;
}

static const char *const tmp_names[] = {
	"pw", "key", "big", "empty", "other", "conf", "sub",
	"creds/db-password", "creds/smtp-password", "creds/pseudonym-key",
};

static int
teardown(void **state)
{
	struct tmp *t = *state;

	for (size_t i = 0; i < sizeof(tmp_names) / sizeof(tmp_names[0]); i++) {
		char *p = tmp_path(t, tmp_names[i]);
		if (unlink(p) != 0)
			rmdir(p);
		free(p);
	}
	rmdir(t->creds);
	rmdir(t->dir);
	unsetenv("CREDENTIALS_DIRECTORY");
	free(t);
	return 0;
}

static void
print_diag(const struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		print_error("    %s\n", d->entries[i].text);
}

/* The promise that matters most: checked after every failure below. */
static void
assert_no_secret_in(const struct diag *d)
{
	for (size_t i = 0; i < d->n; i++) {
		if (strstr(d->entries[i].text, SECRET_TEXT) ||
		    strstr(d->entries[i].text, "hunter2")) {
			print_diag(d);
			fail_msg("a message shows the secret");
		}
	}
}

static bool
has_error(const struct diag *d, const char *a, const char *b)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->entries[i].level == DIAG_ERROR &&
		    strstr(d->entries[i].text, a) &&
		    (!b || strstr(d->entries[i].text, b)))
			return true;
	return false;
}

static void
test_file_is_read_and_one_trailing_newline_dropped(void **state)
{
	struct tmp *t = *state;
	static const struct {
		const char *content;
		const char *value;
	} cases[] = {
		{SECRET_TEXT "\n", SECRET_TEXT},
		{SECRET_TEXT "\r\n", SECRET_TEXT},
		{SECRET_TEXT, SECRET_TEXT},
		{SECRET_TEXT "\n\n", SECRET_TEXT "\n"},
		{" spaced out \n", " spaced out "},
	};
	char *path = tmp_path(t, "pw");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct secret s;
		struct diag d;

		write_text(path, cases[i].content, 0600);
		diag_init(&d);
		assert_true(secret_load(SECRET_CRED_DB, path, &s, &d));
		assert_int_equal(d.n, 0);
		assert_string_equal((const char *)s.data, cases[i].value);
		assert_int_equal(s.len, strlen(cases[i].value));
		assert_string_equal(s.source, path);
		secret_clear(&s);
		assert_null(s.data);
		assert_int_equal(s.len, 0);
		assert_null(s.source);
		diag_fini(&d);
	}
	free(path);
}

static void
test_binary_key_keeps_its_bytes(void **state)
{
	struct tmp *t = *state;
	static const unsigned char key[] = {0, 1, 2, 0xff, 0, 'a', '\n', 7};
	char *path = tmp_path(t, "key");
	struct secret s;
	struct diag d;

	write_bytes(path, key, sizeof(key), 0400);
	diag_init(&d);
	assert_true(secret_load(NULL, path, &s, &d));
	assert_int_equal(s.len, sizeof(key));
	assert_memory_equal(s.data, key, sizeof(key));
	secret_clear(&s);
	diag_fini(&d);
	free(path);
}

static void
test_credential_wins_over_the_configured_file(void **state)
{
	struct tmp *t = *state;
	char *file = tmp_path(t, "pw");
	char *cred = tmp_path(t, "creds/db-password");
	struct secret s;
	struct diag d;

	write_text(file, "from-file\n", 0600);
	write_text(cred, "from-credential\n", 0400);
	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", t->creds, 1), 0);
	diag_init(&d);
	assert_true(secret_load(SECRET_CRED_DB, file, &s, &d));
	assert_string_equal((const char *)s.data, "from-credential");
	assert_string_equal(s.source, cred);
	secret_clear(&s);

	/* without that credential the file is used */
	assert_int_equal(unlink(cred), 0);
	assert_true(secret_load(SECRET_CRED_DB, file, &s, &d));
	assert_string_equal((const char *)s.data, "from-file");
	secret_clear(&s);

	/* and with neither, there is simply no secret */
	assert_true(secret_load(SECRET_CRED_DB, NULL, &s, &d));
	assert_null(s.data);
	assert_int_equal(d.n, 0);
	diag_fini(&d);
	free(file);
	free(cred);
}

static void
test_missing_configured_file_is_named(void **state)
{
	struct tmp *t = *state;
	char *path = tmp_path(t, "other");
	struct secret s;
	struct diag d;

	diag_init(&d);
	assert_false(secret_load(SECRET_CRED_DB, path, &s, &d));
	assert_null(s.data);
	assert_true(has_error(&d, path, "No such file"));
	diag_fini(&d);
	free(path);
}

static void
test_file_others_can_read_or_write_is_refused(void **state)
{
	struct tmp *t = *state;
	static const mode_t modes[] = {0644, 0640, 0604, 0620, 0602, 0660};
	char *path = tmp_path(t, "pw");

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct secret s;
		struct diag d;

		write_text(path, SECRET_TEXT "\n", modes[i]);
		diag_init(&d);
		assert_false(secret_load(SECRET_CRED_DB, path, &s, &d));
		assert_null(s.data);
		assert_true(has_error(&d, path, "chmod 600"));
		assert_no_secret_in(&d);
		diag_fini(&d);
	}
	free(path);
}

/* systemd grants the service user read access to a credential with an ACL,
 * which stat shows as group bits: refusing those would refuse systemd. */
static void
test_credential_is_accepted_whatever_its_mode(void **state)
{
	struct tmp *t = *state;
	char *cred = tmp_path(t, "creds/db-password");
	struct secret s;
	struct diag d;

	write_text(cred, SECRET_TEXT, 0440);
	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", t->creds, 1), 0);
	diag_init(&d);
	assert_true(secret_load(SECRET_CRED_DB, NULL, &s, &d));
	assert_string_equal((const char *)s.data, SECRET_TEXT);
	assert_int_equal(d.n, 0);
	secret_clear(&s);
	diag_fini(&d);
	free(cred);
}

static void
test_empty_too_large_and_odd_files_are_refused(void **state)
{
	struct tmp *t = *state;
	char *empty = tmp_path(t, "empty");
	char *big = tmp_path(t, "big");
	char *sub = tmp_path(t, "sub");
	size_t big_len = 64 * 1024 + 1;
	char *big_text = malloc(big_len);
	struct secret s;
	struct diag d;

	assert_non_null(big_text);
	memset(big_text, 'x', big_len);
	memcpy(big_text, SECRET_TEXT, strlen(SECRET_TEXT));
	write_bytes(big, big_text, big_len, 0600);
	write_text(empty, "\n", 0600);
	assert_int_equal(mkdir(sub, 0700), 0);

	diag_init(&d);
	assert_false(secret_load(NULL, empty, &s, &d));
	assert_true(has_error(&d, empty, "is empty"));
	assert_false(secret_load(NULL, big, &s, &d));
	assert_true(has_error(&d, big, "larger than"));
	assert_false(secret_load(NULL, sub, &s, &d));
	assert_true(has_error(&d, sub, "not a regular file"));
	assert_null(s.data);
	assert_no_secret_in(&d);
	diag_fini(&d);

	/* exactly the limit is fine */
	write_bytes(big, big_text, big_len - 1, 0600);
	diag_init(&d);
	assert_true(secret_load(NULL, big, &s, &d));
	assert_int_equal(s.len, big_len - 1);
	secret_clear(&s);
	diag_fini(&d);

	free(big_text);
	free(empty);
	free(big);
	free(sub);
}

/* A config that names the given secret files; a rule hashes if asked. */
static void
load_config(struct config *cfg, const char *db_pw, const char *key,
	    const char *hash_on)
{
	char text[2048];
	struct diag d;
	int n;

	n = snprintf(text, sizeof(text), "database: { conninfo = \"dbname=x\";"
		     "%s%s%s };\n", db_pw ? " password_file = \"" : "",
		     db_pw ? db_pw : "", db_pw ? "\";" : "");
	if (key)
		n += snprintf(text + n, sizeof(text) - (size_t)n,
			      "pseudonym_key_file = \"%s\";\n", key);
	n += snprintf(text + n, sizeof(text) - (size_t)n,
		      "rules = ( { name = \"plain\"; policy = \"p\"; "
		      "table = \"t\"; age_column = \"c\"; retain = \"1d\"; }");
	if (hash_on && strcmp(hash_on, "action") == 0)
		n += snprintf(text + n, sizeof(text) - (size_t)n,
			      ",\n { name = \"hashing\"; policy = \"p\"; "
			      "table = \"u\"; age_column = \"c\"; "
			      "retain = \"1d\"; action = \"deidentify\"; "
			      "deidentify = { email = \"hash\"; }; "
			      "marker_column = \"m\"; }");
	else if (hash_on)
		n += snprintf(text + n, sizeof(text) - (size_t)n,
			      ",\n { name = \"hashing\"; policy = \"p\"; "
			      "table = \"u\"; age_column = \"c\"; "
			      "retain = \"1d\"; subject = \"s\"; "
			      "subject_column = \"id\"; "
			      "on_erasure = \"deidentify\"; "
			      "deidentify = { email = \"hash\"; }; "
			      "marker_column = \"m\"; }");
	snprintf(text + n, sizeof(text) - (size_t)n, " );\n");

	diag_init(&d);
	if (!config_load_string(text, "test.conf", cfg, &d)) {
		print_diag(&d);
		fail_msg("test config refused");
	}
	diag_fini(&d);
}

static void
test_pseudonym_key_is_required_when_a_rule_hashes(void **state)
{
	static const char *const where[] = {"action", "on_erasure"};

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct config cfg;
		struct diag d;

		load_config(&cfg, NULL, NULL, where[i]);
		diag_init(&d);
		assert_false(secret_load_all(&cfg, &d));
		/* located at the rule, line 3 of the generated config */
		if (!has_error(&d, "test.conf:3: ", "rule \"hashing\" uses "
			       "\"hash\", which needs a pseudonym key")) {
			print_diag(&d);
			fail();
		}
		assert_true(has_error(&d, "pseudonym_key_file", "pseudonym-key"));
		config_free(&cfg);
		diag_fini(&d);
	}
}

static void
test_no_key_needed_when_no_rule_hashes(void **state)
{
	struct config cfg;
	struct diag d;

	(void)state;
	load_config(&cfg, NULL, NULL, NULL);
	diag_init(&d);
	assert_true(secret_load_all(&cfg, &d));
	assert_int_equal(d.n, 0);
	assert_null(cfg.pseudonym_key.data);
	assert_null(cfg.database.password.data);
	config_free(&cfg);
	diag_fini(&d);
}

static void
test_short_pseudonym_key_is_refused(void **state)
{
	struct tmp *t = *state;
	char *key = tmp_path(t, "key");
	struct config cfg;
	struct diag d;

	write_text(key, "S3cr3t-15-bytes\n", 0600);	/* 15 bytes */
	load_config(&cfg, NULL, key, "action");
	diag_init(&d);
	assert_false(secret_load_all(&cfg, &d));
	assert_true(has_error(&d, key, "is 15 bytes; at least 16"));
	assert_null(strstr(d.entries[0].text, "S3cr3t-15-bytes"));
	assert_null(cfg.pseudonym_key.data);
	config_free(&cfg);
	diag_fini(&d);

	write_text(key, "S3cr3t-16-bytes!\n", 0600);
	load_config(&cfg, NULL, key, "action");
	diag_init(&d);
	assert_true(secret_load_all(&cfg, &d));
	assert_int_equal(cfg.pseudonym_key.len, 16);
	config_free(&cfg);
	diag_fini(&d);
	free(key);
}

static void
test_load_all_reads_every_secret_from_its_source(void **state)
{
	struct tmp *t = *state;
	char *pw = tmp_path(t, "pw");
	char *key = tmp_path(t, "key");
	char *smtp = tmp_path(t, "creds/smtp-password");
	struct config cfg;
	struct diag d;

	write_text(pw, "db-secret\n", 0600);
	write_text(key, "0123456789abcdef0123456789abcdef\n", 0600);
	write_text(smtp, "smtp-secret", 0400);
	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", t->creds, 1), 0);

	/* no mail group: the SMTP credential is not read */
	load_config(&cfg, pw, key, "action");
	diag_init(&d);
	assert_true(secret_load_all(&cfg, &d));
	assert_string_equal((const char *)cfg.database.password.data,
			    "db-secret");
	assert_int_equal(cfg.pseudonym_key.len, 32);
	assert_null(cfg.mail.password.data);

	/* with it, it is */
	cfg.mail.configured = true;
	assert_true(secret_load_all(&cfg, &d));
	assert_string_equal((const char *)cfg.mail.password.data,
			    "smtp-secret");
	assert_string_equal(cfg.mail.password.source, smtp);
	assert_int_equal(d.n, 0);
	config_free(&cfg);
	diag_fini(&d);
	free(pw);
	free(key);
	free(smtp);
}

/* Every way a read secret can be refused, each checked for leaks. */
static void
test_no_message_ever_contains_the_secret(void **state)
{
	struct tmp *t = *state;
	char *pw = tmp_path(t, "pw");
	char *key = tmp_path(t, "key");
	struct config cfg;
	struct diag d;

	diag_init(&d);

	/* a password with a NUL byte inside */
	write_bytes(pw, SECRET_TEXT "\0x", sizeof(SECRET_TEXT) + 1, 0600);
	write_text(key, SECRET_TEXT "\n", 0600);
	load_config(&cfg, pw, key, "action");
	assert_false(secret_load_all(&cfg, &d));
	assert_true(has_error(&d, pw, "NUL"));
	config_free(&cfg);

	/* a key too short, holding the secret */
	write_text(pw, SECRET_TEXT, 0600);
	write_text(key, "hunter2", 0600);
	load_config(&cfg, pw, key, "action");
	assert_false(secret_load_all(&cfg, &d));
	/* a failed load keeps no secret in memory */
	assert_null(cfg.database.password.data);
	assert_null(cfg.pseudonym_key.data);
	config_free(&cfg);

	/* world-readable files */
	write_text(pw, SECRET_TEXT "\n", 0644);
	write_text(key, SECRET_TEXT "\n", 0644);
	load_config(&cfg, pw, key, "action");
	assert_false(secret_load_all(&cfg, &d));
	config_free(&cfg);

	assert_true(d.n_errors >= 4);
	assert_no_secret_in(&d);
	diag_fini(&d);
	free(pw);
	free(key);
}

static void
test_conninfo_password_detection(void **state)
{
	static const struct {
		const char *conninfo;
		bool has;
	} cases[] = {
		{"host=db dbname=shop password=hunter2", true},
		{"password='with space' dbname=x", true},
		{"postgresql://app:hunter2@db.example/shop", true},
		{"postgres://app:hunter2@db.example:5432/shop?sslmode=require", true},
		{"postgresql://db.example/shop?password=hunter2", true},
		{"host=db dbname=shop user=retentiond", false},
		{"postgresql://app@db.example/shop", false},
		/* libpq skips the space: the password is "dbname=x" */
		{"password= dbname=x", true},
		{"password='' dbname=x", false},
		{"", false},
		{"this is not a conninfo", false},
		{"passfile=/etc/pgpass dbname=x", false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (secret_conninfo_has_password(cases[i].conninfo) !=
		    cases[i].has)
			fail_msg("\"%s\": expected %d", cases[i].conninfo,
				 cases[i].has);
	assert_false(secret_conninfo_has_password(NULL));
}

static void
test_clearing_an_empty_secret_is_safe(void **state)
{
	struct secret s = {0};

	(void)state;
	secret_clear(&s);
	secret_clear(NULL);
	assert_null(s.data);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_file_is_read_and_one_trailing_newline_dropped),
		T(test_binary_key_keeps_its_bytes),
		T(test_credential_wins_over_the_configured_file),
		T(test_missing_configured_file_is_named),
		T(test_file_others_can_read_or_write_is_refused),
		T(test_credential_is_accepted_whatever_its_mode),
		T(test_empty_too_large_and_odd_files_are_refused),
		T(test_pseudonym_key_is_required_when_a_rule_hashes),
		T(test_no_key_needed_when_no_rule_hashes),
		T(test_short_pseudonym_key_is_refused),
		T(test_load_all_reads_every_secret_from_its_source),
		T(test_no_message_ever_contains_the_secret),
		T(test_conninfo_password_detection),
		T(test_clearing_an_empty_secret_is_safe),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
