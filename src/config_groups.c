/*
 * The groups of the config file (SPEC §3) other than the rules: database,
 * schedule, limits, mail, report and the top-level keys.
 */
#include "config_parse.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "util.h"

static const char *const top_keys[] = {
	"database", "schedule", "limits", "pseudonym_key_file", "mail",
	"report", "metrics_file", "rules", "state_directory", "coverage",
	"subjects", "requests",
};
static const char *const database_keys[] = {
	"conninfo", "password_file", "schema", "statement_timeout",
	"lock_timeout", "connect_timeout",
};
static const char *const schedule_keys[] = {"interval", "window"};
static const char *const mail_keys[] = {
	"url", "tls", "username", "password_file", "ca_file", "from", "to",
	"send", "timeout",
};
static const char *const report_keys[] = {"directory", "formats"};

static const char *const tls_names[] = {
	[MAIL_TLS_STARTTLS] = "starttls",
	[MAIL_TLS_IMPLICIT] = "implicit",
	[MAIL_TLS_NONE] = "none",
};
static const char *const send_names[] = {
	[MAIL_SEND_ALWAYS] = "always",
	[MAIL_SEND_CHANGES] = "changes",
	[MAIL_SEND_ERRORS] = "errors",
	[MAIL_SEND_NEVER] = "never",
};
static const struct {
	const char *name;
	enum report_format bit;
} format_names[] = {
	{"text", REPORT_TEXT},
	{"csv", REPORT_CSV},
	{"json", REPORT_JSON},
	{"html", REPORT_HTML},
};

static bool
plain_identifier(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > CFG_NAME_MAX)
		return false;
	if (!(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z')))
		return false;
	for (; *s; s++)
		if (!(*s == '_' || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

static void
parse_database(struct cfg_ctx *c, const config_setting_t *g)
{
	struct config *cfg = c->cfg;
	const config_setting_t *conninfo = NULL;

	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, i);
		const char *k = config_setting_name(s);

		if (strcmp(k, "conninfo") == 0)
			conninfo = s;
		else if (strcmp(k, "password_file") == 0)
			(void)cfg_dup_string(c, s, &cfg->database.password_file);
		else if (strcmp(k, "schema") == 0) {
			const char *v;
			if (!cfg_string(c, s, &v))
				continue;
			if (!plain_identifier(v)) {
				cfg_error(c, s, "\"schema\" must be a plain "
					  "identifier: lower-case letters, "
					  "digits and \"_\", not starting with "
					  "a digit, at most 63 bytes");
				continue;
			}
			free(cfg->database.schema);
			cfg->database.schema = xstrdup(v);
		} else if (strcmp(k, "statement_timeout") == 0)
			(void)cfg_duration(c, s, CFG_DUR_FIXED | CFG_DUR_POSITIVE |
					   CFG_DUR_PG_TIMEOUT,
					   &cfg->database.statement_timeout);
		else if (strcmp(k, "lock_timeout") == 0)
			(void)cfg_duration(c, s, CFG_DUR_FIXED | CFG_DUR_POSITIVE |
					   CFG_DUR_PG_TIMEOUT,
					   &cfg->database.lock_timeout);
		else if (strcmp(k, "connect_timeout") == 0)
			(void)cfg_duration(c, s, CFG_DUR_FIXED | CFG_DUR_POSITIVE |
					   CFG_DUR_PG_TIMEOUT,
					   &cfg->database.connect_timeout);
		else
			cfg_unknown_key(c, s, "database", database_keys,
					ARRAY_SIZE(database_keys), NULL, 0);
	}

	if (!conninfo) {
		cfg_error(c, g, "\"database\" has no \"conninfo\"; it is "
			  "required");
		return;
	}
	if (!cfg_dup_string(c, conninfo, &cfg->database.conninfo))
		return;
	c->conninfo_file = cfg_file(c, conninfo);
	c->conninfo_line = cfg_line(conninfo);
	cfg->database.conninfo_file = c->conninfo_file;
	cfg->database.conninfo_line = c->conninfo_line;

	/* libpq's own message is not shown: for a URI it quotes the whole
	 * string, password included. */
	char *errmsg = NULL;
	PQconninfoOption *opts = PQconninfoParse(cfg->database.conninfo,
						 &errmsg);
	if (!opts)
		cfg_error(c, conninfo, "\"conninfo\" is not a valid libpq "
			  "connection string or URI");
	PQconninfoFree(opts);
	PQfreemem(errmsg);
}

/* "HH:MM" at p: minutes after midnight, -1 when malformed, -2 when out of
 * range; *end is set past it on success. */
static int
clock_time(const char *p, const char **end)
{
	int h = 0, m, digits = 0;

	for (; *p >= '0' && *p <= '9' && digits < 2; p++, digits++)
		h = h * 10 + (*p - '0');
	if (digits == 0 || *p != ':')
		return -1;
	p++;
	if (!(p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9'))
		return -1;
	m = (p[0] - '0') * 10 + (p[1] - '0');
	*end = p + 2;
	if (h > 23 || m > 59)
		return -2;
	return h * 60 + m;
}

static void
parse_window(struct cfg_ctx *c, const config_setting_t *s)
{
	const char *v, *p;
	int start, end;

	if (!cfg_string(c, s, &v))
		return;
	p = v;
	while (*p == ' ')
		p++;
	start = clock_time(p, &p);
	if (start >= 0) {
		while (*p == ' ')
			p++;
		if (*p != '-')
			start = -1;
		else
			for (p++; *p == ' '; p++)
				;
	}
	end = start >= 0 ? clock_time(p, &p) : -1;
	if (end >= 0) {
		while (*p == ' ')
			p++;
		if (*p)
			end = -1;
	}
	if (start == -2 || end == -2) {
		cfg_error(c, s, "\"window\": times must be between 00:00 and "
			  "23:59");
		return;
	}
	if (start < 0 || end < 0) {
		cfg_error(c, s, "\"window\" must look like \"01:00-05:00\" "
			  "(local start and end times)");
		return;
	}
	if (start == end) {
		cfg_error(c, s, "\"window\" starts and ends at the same time; "
			  "leave \"window\" out to allow any time");
		return;
	}
	c->cfg->schedule.has_window = true;
	c->cfg->schedule.window_start = start;
	c->cfg->schedule.window_end = end;
}

static void
parse_schedule(struct cfg_ctx *c, const config_setting_t *g)
{
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, i);
		const char *k = config_setting_name(s);

		if (strcmp(k, "interval") == 0)
			(void)cfg_duration(c, s, CFG_DUR_FIXED | CFG_DUR_POSITIVE,
					   &c->cfg->schedule.interval);
		else if (strcmp(k, "window") == 0)
			parse_window(c, s);
		else
			cfg_unknown_key(c, s, "schedule", schedule_keys,
					ARRAY_SIZE(schedule_keys), NULL, 0);
	}
}

static void
parse_limits(struct cfg_ctx *c, const config_setting_t *g)
{
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, i);

		if (!cfg_limit_key(c, s, &c->cfg->limits))
			cfg_unknown_key(c, s, "limits", cfg_limit_keys,
					CFG_N_LIMIT_KEYS, NULL, 0);
	}
}

/* A value that ends up in a mail header: no CR/LF to inject headers. */
static bool
mail_address(struct cfg_ctx *c, const config_setting_t *s, const char *key,
	     const char *v)
{
	char quoted[48];

	if (!*v) {
		cfg_error(c, s, "\"%s\" must not be empty", key);
		return false;
	}
	if (str_has_ctl(v)) {
		cfg_error(c, s, "\"%s\" must not contain control characters "
			  "(a CR or LF would add mail headers)", key);
		return false;
	}
	if (!strchr(v, '@')) {
		cfg_error(c, s, "\"%s\": \"%s\" is not a mail address", key,
			  cfg_quote(v, quoted, sizeof(quoted)));
		return false;
	}
	return true;
}

static void
parse_to(struct cfg_ctx *c, const config_setting_t *s)
{
	struct config *cfg = c->cfg;
	int n = config_setting_length(s);

	if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
		cfg_error(c, s, "\"to\" must be a list of addresses such as "
			  "[ \"dpo@example.com\" ]");
		return;
	}
	if (n == 0) {
		cfg_error(c, s, "\"to\" must name at least one address");
		return;
	}
	cfg->mail.to = xcalloc((size_t)n, sizeof(*cfg->mail.to));
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);
		const char *v = config_setting_get_string(e);

		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			cfg_error(c, e, "\"to\" must list strings only");
			continue;
		}
		if (!str_is_utf8(v)) {
			cfg_error(c, e, "\"to\" is not valid UTF-8; save the "
				  "file as UTF-8");
			continue;
		}
		if (mail_address(c, e, "to", v))
			cfg->mail.to[cfg->mail.n_to++] = xstrdup(v);
	}
}

/* smtp://user:password@host: a secret in a file that may be readable by
 * others, and one that libcurl would put in its error messages. */
static bool
url_has_password(const char *url)
{
	const char *p = strstr(url, "://") + 3;
	const char *end = p + strcspn(p, "/?#");
	const char *at = NULL;

	for (const char *q = p; q < end; q++)
		if (*q == '@')
			at = q;
	return at && memchr(p, ':', (size_t)(at - p)) != NULL;
}

/* The host of smtp[s]://[user@]host[:port][/...]; NULL if there is none. */
static char *
url_host(const char *url)
{
	const char *p = strstr(url, "://") + 3;
	const char *end = p + strcspn(p, "/?#");
	const char *at;

	for (at = end; at > p; at--)
		if (at[-1] == '@')
			break;
	if (at > p)
		p = at;
	if (*p == '[') {
		const char *close = memchr(p, ']', (size_t)(end - p));
		if (!close)
			return NULL;
		return close > p + 1 ? xstrndup(p + 1, (size_t)(close - p - 1))
				     : NULL;
	}
	size_t len = strcspn(p, ":/?#");
	return len ? xstrndup(p, len) : NULL;
}

static bool
loopback_host(const char *host)
{
	unsigned char a[sizeof(struct in6_addr)];

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, host, a) == 1)
		return IN6_IS_ADDR_LOOPBACK((struct in6_addr *)a);
	return false;
}

static void
check_mail_transport(struct cfg_ctx *c, const config_setting_t *url_s,
		     const config_setting_t *tls_s)
{
	struct config *cfg = c->cfg;
	bool smtps = strncmp(cfg->mail.url, "smtps://", 8) == 0;
	char *host = url_host(cfg->mail.url);

	if (!host) {
		cfg_error(c, url_s, "\"url\" names no host");
		return;
	}
	if (!tls_s)
		/* the scheme already says which TLS the admin means */
		cfg->mail.tls = smtps ? MAIL_TLS_IMPLICIT : MAIL_TLS_STARTTLS;
	else if (cfg->mail.tls == MAIL_TLS_IMPLICIT && !smtps)
		cfg_error(c, tls_s, "\"tls\" = \"implicit\" needs an smtps:// "
			  "url");
	else if (cfg->mail.tls == MAIL_TLS_STARTTLS && smtps)
		cfg_error(c, tls_s, "\"tls\" = \"starttls\" needs an smtp:// "
			  "url; smtps:// is \"implicit\"");
	else if (cfg->mail.tls == MAIL_TLS_NONE && smtps)
		cfg_error(c, tls_s, "\"tls\" = \"none\" contradicts an "
			  "smtps:// url");
	else if (cfg->mail.tls == MAIL_TLS_NONE && !loopback_host(host)) {
		char quoted[48];
		cfg_error(c, tls_s, "\"tls\" = \"none\" would send the SMTP "
			  "password and the reports in clear text; it is only "
			  "allowed to a loopback host (localhost, 127.0.0.1, "
			  "::1), not \"%s\"",
			  cfg_quote(host, quoted, sizeof(quoted)));
	}
	free(host);
}

static void
parse_mail(struct cfg_ctx *c, const config_setting_t *g)
{
	struct config *cfg = c->cfg;
	const config_setting_t *url_s = NULL, *tls_s = NULL;
	const config_setting_t *from_s = NULL, *to_s = NULL;
	const char *v;
	int e;

	cfg->mail.configured = true;
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, i);
		const char *k = config_setting_name(s);

		if (strcmp(k, "url") == 0) {
			if (!cfg_string(c, s, &v))
				continue;
			if (str_has_ctl(v) || (strncmp(v, "smtp://", 7) != 0 &&
					       strncmp(v, "smtps://", 8) != 0)) {
				cfg_error(c, s, "\"url\" must start with "
					  "smtp:// or smtps://");
				continue;
			}
			if (url_has_password(v)) {
				cfg_error(c, s, "\"url\" must not hold a "
					  "password; use \"username\" and "
					  "\"password_file\"");
				continue;
			}
			cfg->mail.url = xstrdup(v);
			url_s = s;
		} else if (strcmp(k, "tls") == 0) {
			tls_s = s;
			if (cfg_enum(c, s, tls_names, ARRAY_SIZE(tls_names), &e))
				cfg->mail.tls = (enum mail_tls)e;
			else
				tls_s = NULL;
		} else if (strcmp(k, "username") == 0)
			(void)cfg_dup_string(c, s, &cfg->mail.username);
		else if (strcmp(k, "password_file") == 0)
			(void)cfg_dup_string(c, s, &cfg->mail.password_file);
		else if (strcmp(k, "ca_file") == 0)
			(void)cfg_dup_string(c, s, &cfg->mail.ca_file);
		else if (strcmp(k, "from") == 0) {
			from_s = s;
			if (cfg_string(c, s, &v) && mail_address(c, s, "from", v))
				cfg->mail.from = xstrdup(v);
		} else if (strcmp(k, "to") == 0) {
			to_s = s;
			parse_to(c, s);
		} else if (strcmp(k, "send") == 0) {
			if (cfg_enum(c, s, send_names, ARRAY_SIZE(send_names),
				     &e))
				cfg->mail.send = (enum mail_send)e;
		} else if (strcmp(k, "timeout") == 0)
			(void)cfg_duration(c, s, CFG_DUR_FIXED | CFG_DUR_POSITIVE,
					   &cfg->mail.timeout);
		else
			cfg_unknown_key(c, s, "mail", mail_keys,
					ARRAY_SIZE(mail_keys), NULL, 0);
	}

	if (!config_setting_get_member(g, "url"))
		cfg_error(c, g, "\"mail\" has no \"url\"; it is required");
	if (!from_s)
		cfg_error(c, g, "\"mail\" has no \"from\"; it is required");
	if (!to_s)
		cfg_error(c, g, "\"mail\" has no \"to\"; it is required");
	if (url_s)
		check_mail_transport(c, url_s, tls_s);
}

static void
parse_formats(struct cfg_ctx *c, const config_setting_t *s)
{
	unsigned formats = 0;
	int n = config_setting_length(s);

	if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
		cfg_error(c, s, "\"formats\" must be a list such as "
			  "[ \"html\", \"csv\" ]");
		return;
	}
	if (n == 0) {
		cfg_error(c, s, "\"formats\" must name at least one format");
		return;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);
		const char *v = config_setting_get_string(e);
		char quoted[48];
		size_t j;

		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			cfg_error(c, e, "\"formats\" must list strings only");
			continue;
		}
		for (j = 0; j < ARRAY_SIZE(format_names); j++)
			if (strcmp(v, format_names[j].name) == 0)
				break;
		if (j == ARRAY_SIZE(format_names))
			cfg_error(c, e, "\"formats\": unknown format \"%s\" "
				  "(expected \"text\", \"csv\", \"json\" or "
				  "\"html\")", cfg_quote(v, quoted, sizeof(quoted)));
		else if (formats & format_names[j].bit)
			cfg_error(c, e, "\"formats\": \"%s\" is listed twice", v);
		else
			formats |= format_names[j].bit;
	}
	c->cfg->report.formats = formats;
}

static void
parse_report(struct cfg_ctx *c, const config_setting_t *g)
{
	c->cfg->report.formats = REPORT_HTML | REPORT_CSV;
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, i);
		const char *k = config_setting_name(s);

		if (strcmp(k, "directory") == 0)
			(void)cfg_dup_string(c, s, &c->cfg->report.directory);
		else if (strcmp(k, "formats") == 0)
			parse_formats(c, s);
		else
			cfg_unknown_key(c, s, "report", report_keys,
					ARRAY_SIZE(report_keys), NULL, 0);
	}
}

/* The ledger lives there: a relative path would depend on where the daemon
 * was started. */
static void
parse_state_directory(struct cfg_ctx *c, const config_setting_t *s)
{
	const char *v;

	if (!cfg_string(c, s, &v))
		return;
	if (v[0] != '/') {
		cfg_error(c, s, "\"state_directory\" must be an absolute path");
		return;
	}
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			cfg_error(c, s, "\"state_directory\" must not hold "
				  "control characters");
			return;
		}
	free(c->cfg->state_directory);
	c->cfg->state_directory = xstrdup(v);
}

/* A group key written at the top level: say where it belongs. */
static const char *
owning_group(const char *name)
{
	static const struct {
		const char *group;
		const char *const *keys;
		size_t n;
	} groups[] = {
		{"database", database_keys, ARRAY_SIZE(database_keys)},
		{"schedule", schedule_keys, ARRAY_SIZE(schedule_keys)},
		{"limits", cfg_limit_keys, CFG_N_LIMIT_KEYS},
		{"mail", mail_keys, ARRAY_SIZE(mail_keys)},
		{"report", report_keys, ARRAY_SIZE(report_keys)},
	};

	for (size_t i = 0; i < ARRAY_SIZE(groups); i++)
		for (size_t j = 0; j < groups[i].n; j++)
			if (strcmp(name, groups[i].keys[j]) == 0)
				return groups[i].group;
	return NULL;
}

void
cfg_parse_root(struct cfg_ctx *c, const config_setting_t *root)
{
	struct config *cfg = c->cfg;
	const config_setting_t *database = NULL, *limits = NULL, *rules = NULL;
	const config_setting_t *subjects = NULL;

	for (int i = 0; i < config_setting_length(root); i++) {
		const config_setting_t *s = config_setting_get_elem(root, i);
		const char *k = config_setting_name(s);
		const char *group;

		if (strcmp(k, "database") == 0) {
			database = s;
			if (cfg_group(c, s))
				parse_database(c, s);
		} else if (strcmp(k, "schedule") == 0) {
			if (cfg_group(c, s))
				parse_schedule(c, s);
		} else if (strcmp(k, "limits") == 0)
			limits = s;
		else if (strcmp(k, "mail") == 0) {
			if (cfg_group(c, s))
				parse_mail(c, s);
		} else if (strcmp(k, "report") == 0) {
			if (cfg_group(c, s))
				parse_report(c, s);
		} else if (strcmp(k, "coverage") == 0) {
			if (cfg_group(c, s))
				cfg_parse_coverage(c, s);
		} else if (strcmp(k, "pseudonym_key_file") == 0)
			(void)cfg_dup_string(c, s, &cfg->pseudonym_key_file);
		else if (strcmp(k, "metrics_file") == 0)
			(void)cfg_dup_string(c, s, &cfg->metrics_file);
		else if (strcmp(k, "state_directory") == 0)
			parse_state_directory(c, s);
		else if (strcmp(k, "rules") == 0)
			rules = s;
		else if (strcmp(k, "subjects") == 0)
			subjects = s;
		else if (strcmp(k, "requests") == 0) {
			if (cfg_group(c, s))
				cfg_parse_requests(c, s);
		}
		else if ((group = owning_group(k)) != NULL)
			cfg_error(c, s, "unknown key \"%s\" at the top level; "
				  "it belongs in the \"%s\" group", k, group);
		else
			cfg_unknown_key(c, s, NULL, top_keys,
					ARRAY_SIZE(top_keys), NULL, 0);
	}

	if (!database)
		cfg_report(c, DIAG_ERROR, cfg->files[0], 0, "no \"database\" "
			   "group; it is required, with \"conninfo\"");
	/* rules start from the global limits, wherever "limits" stands */
	if (limits && cfg_group(c, limits))
		parse_limits(c, limits);
	if (rules)
		cfg_parse_rules(c, rules);
	else
		cfg_report(c, DIAG_ERROR, cfg->files[0], 0, "no \"rules\": a "
			   "configuration without rules does nothing");
	if (subjects && cfg_group(c, subjects))
		cfg_parse_subjects(c, subjects);
	cfg_check_rule_subjects(c);
}

