#include "mail.h"

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "log.h"
#include "mailmsg.h"

static mail_transport_fn transport;

void
mail_set_transport(mail_transport_fn fn)
{
	transport = fn;
}

const char *
mail_send_name(enum mail_send policy)
{
	switch (policy) {
	case MAIL_SEND_ALWAYS:
		return "always";
	case MAIL_SEND_CHANGES:
		return "changes";
	case MAIL_SEND_ERRORS:
		return "errors";
	case MAIL_SEND_NEVER:
		return "never";
	}
	return "?";
}

bool
mail_should_send(enum mail_send policy, bool changed, bool alert)
{
	switch (policy) {
	case MAIL_SEND_ALWAYS:
		return true;
	case MAIL_SEND_CHANGES:
		return changed || alert;
	case MAIL_SEND_ERRORS:
		return alert;
	case MAIL_SEND_NEVER:
		return false;
	}
	return false;
}

struct upload {
	const char *data;
	size_t len, pos;
};

static size_t
read_message(char *buf, size_t size, size_t nitems, void *arg)
{
	struct upload *u = arg;
	size_t n = size * nitems;

	if (n > u->len - u->pos)
		n = u->len - u->pos;
	memcpy(buf, u->data + u->pos, n);
	u->pos += n;
	return n;
}

/* Blank out every copy of SECRET in MSG: libcurl's messages do not carry
 * the password today, but a log line is the wrong place to find out. */
static void
scrub(char *msg, const struct secret *secret)
{
	if (!secret->data || secret->len < 3)
		return;
	const char *s = (const char *)secret->data;
	for (char *p = strstr(msg, s); p; p = strstr(p, s))
		memset(p, '*', secret->len);
}

static void
curl_init_once(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	/* before any thread exists; retentiond has none */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK)
		atexit(curl_global_cleanup);
}

bool
mail_transport_curl(const struct config *cfg, const struct mail_envelope *env,
		    char **err)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct upload up = { env->data, env->len, 0 };
	struct curl_slist *rcpt = NULL;
	CURLcode rc = CURLE_OK;
	long ms = (long)duration_ms(&cfg->mail.timeout);
	char *from = xasprintf("<%s>", env->from);
	bool ok = false;

	curl_init_once();
	CURL *c = curl_easy_init();
	if (!c) {
		*err = xstrdup("could not start libcurl");
		free(from);
		return false;
	}
	for (size_t i = 0; i < env->n_rcpt; i++) {
		char *r = xasprintf("<%s>", env->rcpt[i]);
		struct curl_slist *next = curl_slist_append(rcpt, r);
		free(r);
		if (!next) {
			*err = xstrdup("out of memory listing the recipients");
			goto out;
		}
		rcpt = next;
	}

#define SET(opt, val) \
	do { \
		if ((rc = curl_easy_setopt(c, opt, val)) != CURLE_OK) \
			goto setopt_failed; \
	} while (0)

	SET(CURLOPT_ERRORBUFFER, errbuf);
	/* Never on: verbose output shows the AUTH exchange, i.e. the
	 * password in base64, and would show it on our stderr. */
	SET(CURLOPT_VERBOSE, 0L);
	SET(CURLOPT_URL, cfg->mail.url);
	/* the URL comes from the config; make sure it cannot turn into
	 * another protocol, however it is spelled */
#if LIBCURL_VERSION_NUM >= 0x075500
	SET(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
#else
	SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_SMTP | CURLPROTO_SMTPS));
#endif
	SET(CURLOPT_NOSIGNAL, 1L);
	/* CURLUSESSL_ALL: STARTTLS or fail, never a plaintext fallback;
	 * "none" passes the config loader for loopback hosts only */
	SET(CURLOPT_USE_SSL, cfg->mail.tls == MAIL_TLS_NONE
				     ? (long)CURLUSESSL_NONE : (long)CURLUSESSL_ALL);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (cfg->mail.ca_file)
		SET(CURLOPT_CAINFO, cfg->mail.ca_file);
	if (cfg->mail.username) {
		SET(CURLOPT_USERNAME, cfg->mail.username);
		SET(CURLOPT_PASSWORD, cfg->mail.password.data
				      ? (const char *)cfg->mail.password.data : "");
	}
	SET(CURLOPT_CONNECTTIMEOUT_MS, ms);
	SET(CURLOPT_TIMEOUT_MS, ms);
	SET(CURLOPT_MAIL_FROM, from);
	SET(CURLOPT_MAIL_RCPT, rcpt);
	/* libcurl does the SMTP dot-stuffing ("." at the start of a line
	 * becomes "..") and ends the data with CRLF.CRLF itself */
	SET(CURLOPT_UPLOAD, 1L);
	SET(CURLOPT_READFUNCTION, read_message);
	SET(CURLOPT_READDATA, &up);
	SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)env->len);
#undef SET

	rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		ok = true;
		goto out;
	}
	long reply = 0;
	(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply);
	char code[48] = "";
	if (reply >= 400)
		snprintf(code, sizeof(code), " (server replied %ld)", reply);
	*err = xasprintf("%s: %s%s", cfg->mail.url,
			 errbuf[0] ? errbuf : curl_easy_strerror(rc), code);
	scrub(*err, &cfg->mail.password);
	goto out;

setopt_failed:
	*err = xasprintf("%s: libcurl refused an option: %s", cfg->mail.url,
			 curl_easy_strerror(rc));
out:
	curl_easy_cleanup(c);
	curl_slist_free_all(rcpt);
	free(from);
	return ok;
}

bool
mail_send(const struct config *cfg, const struct mail_content *m, char **err)
{
	char *from = mailmsg_address(cfg->mail.from);
	char **rcpt = xcalloc(cfg->mail.n_to, sizeof(*rcpt));
	char *data = NULL;
	size_t len = 0;
	bool ok = false;

	if (!cfg->mail.configured) {
		*err = xstrdup("no \"mail\" group in the config");
		goto out;
	}
	if (!from) {
		*err = xasprintf("\"from\" holds no usable address");
		goto out;
	}
	for (size_t i = 0; i < cfg->mail.n_to; i++) {
		rcpt[i] = mailmsg_address(cfg->mail.to[i]);
		if (!rcpt[i]) {
			*err = xasprintf("\"to\" entry %zu holds no usable "
					 "address", i + 1);
			goto out;
		}
	}
	struct mailmsg msg = {
		.from = cfg->mail.from,
		.to = (const char *const *)cfg->mail.to,
		.n_to = cfg->mail.n_to,
		.subject = m->subject,
		.text = m->text,
		.html = m->html,
		.message_id = m->message_id,
	};
	data = mailmsg_build(&msg, &len, err);
	if (!data)
		goto out;
	struct mail_envelope env = {
		.from = from,
		.rcpt = (const char *const *)rcpt,
		.n_rcpt = cfg->mail.n_to,
		.data = data,
		.len = len,
	};
	ok = (transport ? transport : mail_transport_curl)(cfg, &env, err);
	if (ok)
		log_debug("mail \"%s\" accepted by %s for %zu recipient%s",
			  m->subject, cfg->mail.url, cfg->mail.n_to,
			  cfg->mail.n_to == 1 ? "" : "s");
out:
	for (size_t i = 0; i < cfg->mail.n_to; i++)
		free(rcpt[i]);
	free(rcpt);
	free(from);
	free(data);
	return ok;
}
