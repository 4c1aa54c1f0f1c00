/* mail: the send policy, the transport seam (what reaches the transport),
 * header refusal before anything is sent, and the outbox backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "diag.h"
#include "mail.h"
#include "outbox.h"
#include "postcycle.h"

static void
test_send_policy(void **state)
{
	static const struct {
		enum mail_send policy;
		bool changed, alert, want;
	} cases[] = {
		{ MAIL_SEND_ALWAYS, false, false, true },
		{ MAIL_SEND_ALWAYS, true, true, true },
		{ MAIL_SEND_CHANGES, false, false, false },
		{ MAIL_SEND_CHANGES, true, false, true },
		{ MAIL_SEND_CHANGES, false, true, true },
		{ MAIL_SEND_ERRORS, true, false, false },
		{ MAIL_SEND_ERRORS, false, true, true },
		{ MAIL_SEND_ERRORS, false, false, false },
		{ MAIL_SEND_NEVER, true, true, false },
		{ MAIL_SEND_NEVER, false, false, false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(mail_should_send(cases[i].policy, cases[i].changed,
						  cases[i].alert),
				 cases[i].want);
	assert_string_equal(mail_send_name(MAIL_SEND_CHANGES), "changes");
}

static void
test_backoff_doubles_and_is_capped(void **state)
{
	(void)state;
	assert_int_equal(outbox_backoff_seconds(1), 60);
	assert_int_equal(outbox_backoff_seconds(2), 120);
	assert_int_equal(outbox_backoff_seconds(3), 240);
	assert_int_equal(outbox_backoff_seconds(6), 1920);
	assert_int_equal(outbox_backoff_seconds(7), 3600);
	assert_int_equal(outbox_backoff_seconds(1000), 3600);
}

/* ---- the transport seam --------------------------------------------------- */

static struct {
	int calls;
	char *from;
	char *rcpt[4];
	size_t n_rcpt;
	char *data;
	bool fail;
} seen;

static bool
fake_transport(const struct config *cfg, const struct mail_envelope *env,
	       char **err)
{
	(void)cfg;
	seen.calls++;
	seen.from = strdup(env->from);
	seen.n_rcpt = env->n_rcpt;
	for (size_t i = 0; i < env->n_rcpt && i < 4; i++)
		seen.rcpt[i] = strdup(env->rcpt[i]);
	seen.data = strndup(env->data, env->len);
	if (seen.fail) {
		*err = strdup("smtp://mail.example.com:587: Login denied");
		return false;
	}
	return true;
}

static void
seen_reset(void)
{
	free(seen.from);
	for (size_t i = 0; i < 4; i++)
		free(seen.rcpt[i]);
	free(seen.data);
	memset(&seen, 0, sizeof(seen));
}

static const char mail_config[] =
	"database: { conninfo = \"dbname=x\"; };\n"
	"mail: {\n"
	"  url = \"smtp://mail.example.com:587\";\n"
	"  from = \"Retention <retention@example.com>\";\n"
	"  to = [ \"dpo@example.com\", \"Ops <ops@example.com>\" ];\n"
	"};\n"
	"rules = ( { name = \"r\"; policy = \"p\"; table = \"t\";\n"
	"  age_column = \"c\"; retain = \"1d\"; } );\n";

static int
setup(void **state)
{
	static struct config cfg;
	struct diag d;

	diag_init(&d);
	if (!config_load_string(mail_config, "test.conf", &cfg, &d)) {
		diag_print(&d);
		diag_fini(&d);
		return -1;
	}
	diag_fini(&d);
	mail_set_transport(fake_transport);
	*state = &cfg;
	return 0;
}

static int
teardown(void **state)
{
	config_free(*state);
	mail_set_transport(NULL);
	seen_reset();
	return 0;
}

static void
test_transport_gets_bare_addresses_and_a_crlf_message(void **state)
{
	const struct config *cfg = *state;
	struct mail_content m = {
		.subject = "retentiond: run 1 on h: ok, 3 rows changed",
		.text = "rule \"a\": 3 rows\n", .html = "<p>3 rows</p>",
	};
	char *err = NULL;

	seen_reset();
	assert_true(mail_send(cfg, &m, &err));
	assert_int_equal(seen.calls, 1);
	assert_string_equal(seen.from, "retention@example.com");
	assert_int_equal(seen.n_rcpt, 2);
	assert_string_equal(seen.rcpt[0], "dpo@example.com");
	assert_string_equal(seen.rcpt[1], "ops@example.com");
	assert_non_null(strstr(seen.data, "\r\nTo: dpo@example.com,\r\n Ops <ops@example.com>\r\n"));
	for (const char *p = seen.data; *p; p++)
		if (*p == '\n')
			assert_true(p > seen.data && p[-1] == '\r');
}

static void
test_transport_failure_is_reported(void **state)
{
	const struct config *cfg = *state;
	struct mail_content m = { .subject = "s", .text = "t" };
	char *err = NULL;

	seen_reset();
	seen.fail = true;
	assert_false(mail_send(cfg, &m, &err));
	assert_non_null(strstr(err, "Login denied"));
	free(err);
}

static void
test_injected_subject_never_reaches_the_transport(void **state)
{
	const struct config *cfg = *state;
	struct mail_content m = {
		.subject = "ok\r\nBcc: everyone@example.com", .text = "t",
	};
	char *err = NULL;

	seen_reset();
	assert_false(mail_send(cfg, &m, &err));
	assert_int_equal(seen.calls, 0);
	assert_non_null(strstr(err, "Subject"));
	free(err);
}

/* The daemon's "database unreachable" alert quotes libpq's message, which
 * has newlines: they must end up in the body, never in the Subject. */
static void
test_direct_alert_keeps_newlines_out_of_the_header(void **state)
{
	struct config *cfg = *state;

	seen_reset();
	postcycle_alert_direct(cfg, "database unreachable: connection refused\n"
			       "\tIs the server running?",
			       "could not connect:\nconnection refused\n");
	assert_int_equal(seen.calls, 1);
	assert_non_null(strstr(seen.data, "\r\nSubject: retentiond ALERT: database "
				       "unreachable: connection refused  Is the "
				       "server running?\r\n"));
	assert_non_null(strstr(seen.data, "could not connect:\r\nconnection refused"));
	assert_int_equal(seen.n_rcpt, 2);

	seen_reset();
	cfg->mail.send = MAIL_SEND_NEVER;
	postcycle_alert_direct(cfg, "database unreachable", "x");
	assert_int_equal(seen.calls, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_send_policy),
		cmocka_unit_test(test_backoff_doubles_and_is_capped),
		cmocka_unit_test_setup_teardown(
			test_transport_gets_bare_addresses_and_a_crlf_message,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_transport_failure_is_reported,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_injected_subject_never_reaches_the_transport,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_direct_alert_keeps_newlines_out_of_the_header,
			setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
