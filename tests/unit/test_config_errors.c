/*
 * config: every mistake in a config file is reported as "FILE:LINE: message"
 * with the right line, and all of them in one pass. (Valid configs, files
 * and includes are in test_config.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

/* Line 1 of most test configs. */
#define DB "database: { conninfo = \"dbname=shop\"; };\n"
/* A valid rules list, for configs whose mistake is elsewhere. */
#define RULES "rules = ( { name = \"r\"; policy = \"p\"; table = \"t\"; " \
	      "age_column = \"c\"; retain = \"1d\"; } );\n"
/* A rule opened on line 2 with its required keys on lines 3-4: the key
 * under test goes on line 5, then RULE_CLOSE. */
#define RULE_OPEN DB "rules = ( {\n" \
	"name = \"r\"; policy = \"p\"; table = \"t\";\n" \
	"age_column = \"c\"; retain = \"1d\";\n"
#define RULE_CLOSE "} );\n"

static void
print_diag(const struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		print_error("    %s\n", d->entries[i].text);
}

/* The entry that starts with "test.conf:LINE: " (or "test.conf: " for
 * line 0) and contains phrase, or NULL. */
static const char *
find_entry(const struct diag *d, const char *file, int line,
	   const char *phrase)
{
	char prefix[512];

	if (line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%d: ", file, line);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", file);
	for (size_t i = 0; i < d->n; i++)
		if (strncmp(d->entries[i].text, prefix, strlen(prefix)) == 0 &&
		    strstr(d->entries[i].text, phrase))
			return d->entries[i].text;
	return NULL;
}

/* ---- each mistake, its line and its message --------------------------- */

static const struct error_case {
	const char *promise;
	const char *text;
	int line;		/* 0: about the file as a whole */
	const char *phrase;
	const char *absent;	/* must not be in the message (or NULL) */
} error_cases[] = {
	{"unknown key in a group suggests the nearest one",
	 DB "limits: { batchsize = 5; };\n" RULES, 2,
	 "unknown key \"batchsize\" in \"limits\"; did you mean \"batch_size\"?",
	 NULL},
	{"unknown top-level key suggests the nearest one",
	 DB "rule = 5;\n" RULES, 2,
	 "unknown key \"rule\"; did you mean \"rules\"?", NULL},
	{"unknown key far from every key gets no suggestion",
	 DB "colour = \"red\";\n" RULES, 2, "unknown key \"colour\"",
	 "did you mean"},
	{"a group key at the top level says where it belongs",
	 DB "batch_size = 5;\n" RULES, 2,
	 "belongs in the \"limits\" group", NULL},
	{"unknown key in database", DB "database2 = 1;\n" RULES, 2,
	 "did you mean \"database\"?", NULL},
	{"unknown key in a database group",
	 "database: { conninfo = \"dbname=x\";\n lock_timout = \"1s\"; };\n"
	 RULES, 2, "did you mean \"lock_timeout\"?", NULL},
	{"unknown key in mail",
	 DB "mail: { url = \"smtp://m.example\"; from = \"a@b\"; to = [\"c@d\"];"
	 "\n sennd = \"always\"; };\n" RULES, 3, "did you mean \"send\"?", NULL},
	{"unknown key in report", DB "report: { dir = \"/x\"; };\n" RULES, 2,
	 "unknown key \"dir\" in \"report\"", NULL},
	{"unknown key in schedule", DB "schedule: { intervall = \"1h\"; };\n"
	 RULES, 2, "did you mean \"interval\"?", NULL},
	{"unknown key in a rule suggests a rule key",
	 RULE_OPEN "retian = \"1d\";\n" RULE_CLOSE, 5,
	 "rule \"r\": unknown key \"retian\"; did you mean \"retain\"?", NULL},
	{"unknown key in a rule suggests a limits key",
	 RULE_OPEN "batchsize = 5;\n" RULE_CLOSE, 5,
	 "did you mean \"batch_size\"?", NULL},

	{"wrong type names the expected type",
	 DB "limits: { batch_size = \"10\"; };\n" RULES, 2,
	 "\"batch_size\" must be an integer", NULL},
	{"batch_size below range", DB "limits: { batch_size = 0; };\n" RULES, 2,
	 "\"batch_size\" must be between 1 and 10000000", NULL},
	{"batch_size above range",
	 DB "limits: { batch_size = 10000001; };\n" RULES, 2,
	 "must be between 1 and 10000000", NULL},
	{"batch_size as a 64-bit integer is range checked",
	 DB "limits: { batch_size = 20000000000L; };\n" RULES, 2,
	 "must be between 1 and 10000000", NULL},
	{"max_fraction zero", DB "limits: { max_fraction = 0; };\n" RULES, 2,
	 "\"max_fraction\" must be greater than 0 and at most 1", NULL},
	{"max_fraction above one", DB "limits: { max_fraction = 1.5; };\n"
	 RULES, 2, "\"max_fraction\" must be greater than 0", NULL},
	{"max_fraction as a string",
	 DB "limits: { max_fraction = \"0.5\"; };\n" RULES, 2,
	 "\"max_fraction\" must be a number", NULL},
	{"bad duration names the unit",
	 DB "limits: { pause = \"10 fortnights\"; };\n" RULES, 2,
	 "\"pause\": unknown unit \"fortnights\"", NULL},
	{"duration as a number", DB "limits: { pause = 10; };\n" RULES, 2,
	 "\"pause\" must be a duration string", NULL},
	{"month in batch_target", DB "limits: { batch_target = \"1 month\"; };\n"
	 RULES, 2, "\"batch_target\": months and years have no fixed length; "
	 "use days", NULL},
	{"month in busy_batch_target",
	 DB "limits: { busy_batch_target = \"1 month\"; };\n" RULES, 2,
	 "\"busy_batch_target\": months and years have no fixed length", NULL},
	{"busy_batch_target as a number",
	 DB "limits: { busy_batch_target = 5; };\n" RULES, 2,
	 "\"busy_batch_target\" must be a duration string", NULL},
	{"month in max_replica_lag",
	 DB "limits: { max_replica_lag = \"1 month\"; };\n" RULES, 2,
	 "\"max_replica_lag\": months and years have no fixed length", NULL},
	{"max_replica_lag as a number",
	 DB "limits: { max_replica_lag = 5; };\n" RULES, 2,
	 "\"max_replica_lag\" must be a duration string", NULL},
	{"zero max_replica_lag",
	 DB "limits: { max_replica_lag = \"0s\"; };\n" RULES, 2,
	 "\"max_replica_lag\" must be greater than zero", NULL},
	{"max_replica_lag in a rule", RULE_OPEN "max_replica_lag = \"soon\";\n"
	 RULE_CLOSE, 5, "\"max_replica_lag\"", NULL},
	{"zero batch_target", DB "limits: { batch_target = \"0ms\"; };\n" RULES,
	 2, "\"batch_target\" must be greater than zero", NULL},
	{"zero max_runtime", DB "limits: { max_runtime = \"0 s\"; };\n" RULES,
	 2, "\"max_runtime\" must be greater than zero", NULL},
	{"negative pause", DB "limits: { pause = \"-1s\"; };\n" RULES, 2,
	 "durations cannot be negative", NULL},
	{"year in statement_timeout",
	 "database: { conninfo = \"dbname=x\";\n statement_timeout = \"1y\"; };\n"
	 RULES, 2, "\"statement_timeout\": months and years", NULL},
	{"zero lock_timeout",
	 "database: { conninfo = \"dbname=x\";\n lock_timeout = \"0s\"; };\n"
	 RULES, 2, "\"lock_timeout\" must be greater than zero", NULL},
	{"fraction in connect_timeout",
	 "database: { conninfo = \"dbname=x\";\n connect_timeout = \"1.5s\"; };\n"
	 RULES, 2, "\"connect_timeout\": fractions are not allowed", NULL},
	{"month in interval", DB "schedule: { interval = \"1 month\"; };\n"
	 RULES, 2, "\"interval\": months and years", NULL},
	{"zero interval", DB "schedule: { interval = \"0h\"; };\n" RULES, 2,
	 "\"interval\" must be greater than zero", NULL},
	{"month in mail timeout",
	 DB "mail: { url = \"smtp://m.example\"; from = \"a@b\"; to = [\"c@d\"];"
	 "\n timeout = \"1 mon\"; };\n" RULES, 3, "\"timeout\": months", NULL},

	{"window hour out of range",
	 DB "schedule: { window = \"25:00-01:00\"; };\n" RULES, 2,
	 "times must be between 00:00 and 23:59", NULL},
	{"window minute out of range",
	 DB "schedule: { window = \"01:60-02:00\"; };\n" RULES, 2,
	 "between 00:00 and 23:59", NULL},
	{"window without a range", DB "schedule: { window = \"01:00\"; };\n"
	 RULES, 2, "\"window\" must look like \"01:00-05:00\"", NULL},
	{"window with trailing text",
	 DB "schedule: { window = \"01:00-05:00 daily\"; };\n" RULES, 2,
	 "must look like", NULL},
	{"window of no length", DB "schedule: { window = \"03:00-03:00\"; };\n"
	 RULES, 2, "starts and ends at the same time", NULL},

	{"schema with capitals", "database: { conninfo = \"dbname=x\";\n"
	 "schema = \"Retention\"; };\n" RULES, 2,
	 "\"schema\" must be a plain identifier", NULL},
	{"schema longer than 63 bytes", "database: { conninfo = \"dbname=x\";\n"
	 "schema = \"a234567890123456789012345678901234567890123456789012345678901234\"; };\n"
	 RULES, 2, "must be a plain identifier", NULL},
	{"no database group", RULES, 0, "no \"database\" group", NULL},
	{"database group without conninfo",
	 "\ndatabase: { schema = \"x\"; };\n" RULES, 2,
	 "\"database\" has no \"conninfo\"", NULL},
	{"database that is not a group", "database = \"dbname=x\";\n" RULES, 1,
	 "\"database\" must be a group", NULL},
	{"empty conninfo", "database: { conninfo = \"\"; };\n" RULES, 1,
	 "\"conninfo\" must not be empty", NULL},
	{"unparsable conninfo does not echo it",
	 "database: { conninfo = \"host=x password 's3cret\"; };\n" RULES, 1,
	 "not a valid libpq connection string", "s3cret"},

	{"mail url of another scheme",
	 DB "mail: { url = \"http://m.example\"; from = \"a@b\"; to = [\"c@d\"]; };\n"
	 RULES, 2, "\"url\" must start with smtp:// or smtps://", NULL},
	{"mail url holding a password does not echo it",
	 DB "mail: { url = \"smtp://me:hunter2@m.example\"; from = \"a@b\";"
	 " to = [\"c@d\"]; };\n" RULES, 2,
	 "\"url\" must not hold a password", "hunter2"},
	{"mail url without a host",
	 DB "mail: { url = \"smtp://\"; from = \"a@b\"; to = [\"c@d\"]; };\n"
	 RULES, 2, "\"url\" names no host", NULL},
	{"implicit TLS on smtp://",
	 DB "mail: { url = \"smtp://m.example\";\n tls = \"implicit\"; "
	 "from = \"a@b\"; to = [\"c@d\"]; };\n" RULES, 3,
	 "\"implicit\" needs an smtps:// url", NULL},
	{"STARTTLS on smtps://",
	 DB "mail: { url = \"smtps://m.example\";\n tls = \"starttls\"; "
	 "from = \"a@b\"; to = [\"c@d\"]; };\n" RULES, 3,
	 "\"starttls\" needs an smtp:// url", NULL},
	{"tls none on a non-loopback host says why",
	 DB "mail: { url = \"smtp://mail.example.com\";\n tls = \"none\"; "
	 "from = \"a@b\"; to = [\"c@d\"]; };\n" RULES, 3,
	 "clear text; it is only allowed to a loopback host", NULL},
	{"tls none to a host named like loopback",
	 DB "mail: { url = \"smtp://localhost.evil.example\";\n tls = \"none\"; "
	 "from = \"a@b\"; to = [\"c@d\"]; };\n" RULES, 3,
	 "only allowed to a loopback host", NULL},
	{"tls none to a routable IPv4 address",
	 DB "mail: { url = \"smtp://192.0.2.1:25\";\n tls = \"none\"; "
	 "from = \"a@b\"; to = [\"c@d\"]; };\n" RULES, 3,
	 "not \"192.0.2.1\"", NULL},
	{"tls none to a routable IPv6 address",
	 DB "mail: { url = \"smtp://[2001:db8::1]:25\";\n tls = \"none\"; "
	 "from = \"a@b\"; to = [\"c@d\"]; };\n" RULES, 3,
	 "not \"2001:db8::1\"", NULL},
	{"unknown tls mode",
	 DB "mail: { url = \"smtp://m.example\";\n tls = \"ssl\"; "
	 "from = \"a@b\"; to = [\"c@d\"]; };\n" RULES, 3,
	 "\"tls\" must be \"starttls\", \"implicit\" or \"none\"", NULL},
	{"CR/LF in from",
	 DB "mail: { url = \"smtp://m.example\"; to = [\"c@d\"];\n"
	 " from = \"a@b\\r\\nBcc: x@evil.example\"; };\n" RULES, 3,
	 "\"from\" must not contain control characters", NULL},
	{"from without @",
	 DB "mail: { url = \"smtp://m.example\"; to = [\"c@d\"];\n"
	 " from = \"retention\"; };\n" RULES, 3,
	 "\"from\": \"retention\" is not a mail address", NULL},
	{"LF in a to address",
	 DB "mail: { url = \"smtp://m.example\"; from = \"a@b\";\n"
	 " to = [\"c@d\",\n \"e@f\\nBcc: x@y\"]; };\n" RULES, 4,
	 "\"to\" must not contain control characters", NULL},
	{"empty to list",
	 DB "mail: { url = \"smtp://m.example\"; from = \"a@b\";\n to = []; };\n"
	 RULES, 3, "\"to\" must name at least one address", NULL},
	{"to as a single string",
	 DB "mail: { url = \"smtp://m.example\"; from = \"a@b\";\n to = \"c@d\"; };\n"
	 RULES, 3, "\"to\" must be a list of addresses", NULL},
	{"unknown send mode",
	 DB "mail: { url = \"smtp://m.example\"; from = \"a@b\"; to = [\"c@d\"];\n"
	 " send = \"sometimes\"; };\n" RULES, 3,
	 "\"send\" must be \"always\", \"changes\", \"errors\" or \"never\", "
	 "not \"sometimes\"", NULL},
	{"mail without url", DB "mail: { from = \"a@b\"; to = [\"c@d\"]; };\n"
	 RULES, 2, "\"mail\" has no \"url\"", NULL},
	{"mail without from",
	 DB "mail: { url = \"smtp://m.example\"; to = [\"c@d\"]; };\n" RULES, 2,
	 "\"mail\" has no \"from\"", NULL},
	{"mail without to",
	 DB "mail: { url = \"smtp://m.example\"; from = \"a@b\"; };\n" RULES, 2,
	 "\"mail\" has no \"to\"", NULL},

	{"unknown report format",
	 DB "report: { directory = \"/r\";\n formats = [\"html\", \"pdf\"]; };\n"
	 RULES, 3, "unknown format \"pdf\"", NULL},
	{"report format listed twice",
	 DB "report: { directory = \"/r\";\n formats = [\"csv\", \"csv\"]; };\n"
	 RULES, 3, "\"csv\" is listed twice", NULL},
	{"empty report formats",
	 DB "report: { directory = \"/r\";\n formats = []; };\n" RULES, 3,
	 "\"formats\" must name at least one format", NULL},
	{"empty report directory", DB "report: { directory = \"\"; };\n" RULES,
	 2, "\"directory\" must not be empty", NULL},

	{"no rules at all", DB, 0, "no \"rules\": a configuration without rules "
	 "does nothing", NULL},
	{"empty rules list", DB "rules = ( );\n", 2, "\"rules\" is empty", NULL},
	{"rules as a group", DB "rules = { name = \"r\"; };\n", 2,
	 "\"rules\" must be a list", NULL},
	{"a rule that is not a group", DB "rules = ( 5 );\n", 2,
	 "rule #1 must be a group", NULL},

	{"missing required key, at the rule's line",
	 DB "rules = ( {\n name = \"r\"; policy = \"p\"; table = \"t\";\n"
	 " age_column = \"c\"; } );\n", 2,
	 "rule \"r\": missing required key \"retain\"", NULL},
	{"unknown key after the rules suggests the nearest one",
	 DB RULES "\n rules2 = 1;\n", 4, "did you mean \"rules\"?", NULL},
	{"missing name", DB "rules = ( {\n policy = \"p\"; table = \"t\";\n"
	 " age_column = \"c\"; retain = \"1d\"; } );\n", 2,
	 "rule #1: missing required key \"name\"", NULL},
	{"duplicate rule name names the first one's line",
	 DB "rules = (\n { name = \"r\"; policy = \"p\"; table = \"t\";"
	 " age_column = \"c\"; retain = \"1d\"; },\n"
	 " { name = \"r\"; policy = \"p\"; table = \"u\";"
	 " age_column = \"c\"; retain = \"1d\"; } );\n", 4,
	 "rule \"r\": duplicate rule name; the first rule \"r\" is at "
	 "test.conf:3", NULL},
	{"rule name with a space",
	 DB "rules = ( {\n name = \"my rule\"; policy = \"p\"; table = \"t\";\n"
	 " age_column = \"c\"; retain = \"1d\"; } );\n", 3,
	 "rule #1: \"name\" must start with a letter or digit", NULL},
	{"empty policy", RULE_OPEN "} , { name = \"s\"; table = \"t\";\n"
	 " policy = \"\"; age_column = \"c\"; retain = \"1d\"; } );\n", 6,
	 "rule \"s\": \"policy\" must not be empty", NULL},
	{"bad action", RULE_OPEN "action = \"delet\";\n" RULE_CLOSE, 5,
	 "rule \"r\": \"action\" must be \"delete\" or \"deidentify\", not "
	 "\"delet\"", NULL},
	{"keep is not an action", RULE_OPEN "action = \"keep\";\n" RULE_CLOSE, 5,
	 "\"action\" must be \"delete\" or \"deidentify\"", NULL},
	{"bad on_erasure", RULE_OPEN "subject = \"c\"; subject_column = \"id\";\n"
	 "on_erasure = \"forget\";\n" RULE_CLOSE, 6,
	 "\"on_erasure\" must be \"delete\", \"deidentify\" or \"keep\"", NULL},
	{"bad retain names the rule and the unit",
	 DB "rules = ( {\n name = \"invoices\"; policy = \"p\"; table = \"t\";\n"
	 " age_column = \"c\";\n retain = \"7 yeers\"; } );\n", 5,
	 "rule \"invoices\": \"retain\": unknown unit \"yeers\"", NULL},
	{"zero retain",
	 DB "rules = ( {\n name = \"r\"; policy = \"p\"; table = \"t\";\n"
	 " age_column = \"c\";\n retain = \"0 days\"; } );\n", 5,
	 "\"retain\" must be greater than zero", NULL},
	{"retain beyond PostgreSQL's timestamps",
	 DB "rules = ( {\n name = \"r\"; policy = \"p\"; table = \"t\";\n"
	 " age_column = \"c\";\n retain = \"300000 years\"; } );\n", 5,
	 "\"retain\" must be at most 1000 years", NULL},
	{"retain of more than 1000 years in days",
	 DB "rules = ( {\n name = \"r\"; policy = \"p\"; table = \"t\";\n"
	 " age_column = \"c\";\n retain = \"400000 days\"; } );\n", 5,
	 "\"retain\" must be at most 1000 years", NULL},
	{"table with three parts",
	 DB "rules = ( {\n name = \"r\"; policy = \"p\"; retain = \"1d\";\n"
	 " age_column = \"c\";\n table = \"db.s.t\"; } );\n", 5,
	 "\"table\": \"db.s.t\" is not \"schema.table\" or \"table\"", NULL},
	{"table with an unterminated quote",
	 DB "rules = ( {\n name = \"r\"; policy = \"p\"; retain = \"1d\";\n"
	 " age_column = \"c\";\n table = \"s.\\\"t\"; } );\n", 5,
	 "is not \"schema.table\"", NULL},
	{"empty age_column",
	 DB "rules = ( {\n name = \"r\"; policy = \"p\"; retain = \"1d\";\n"
	 " table = \"t\";\n age_column = \"\"; } );\n", 5,
	 "\"age_column\" must not be empty", NULL},
	{"age_column longer than PostgreSQL keeps",
	 DB "rules = ( {\n name = \"r\"; policy = \"p\"; retain = \"1d\";\n"
	 " table = \"t\";\n age_column = "
	 "\"c234567890123456789012345678901234567890123456789012345678901234\";"
	 " } );\n", 5, "\"age_column\" is longer than 63 bytes", NULL},
	{"enabled as a string", RULE_OPEN "enabled = \"yes\";\n" RULE_CLOSE, 5,
	 "\"enabled\" must be a boolean", NULL},
	{"empty where", RULE_OPEN "where = \"\";\n" RULE_CLOSE, 5,
	 "\"where\" must not be empty", NULL},
	{"unknown partitions mode", RULE_OPEN "partitions = \"truncate\";\n"
	 RULE_CLOSE, 5, "\"partitions\" must be \"drop\", \"detach\" or \"rows\"",
	 NULL},
	{"rule limit override is checked like the global one",
	 RULE_OPEN "batch_target = \"1 month\";\n" RULE_CLOSE, 5,
	 "rule \"r\": \"batch_target\": months and years have no fixed length",
	 NULL},
	{"rule batch_size override out of range",
	 RULE_OPEN "batch_size = -1;\n" RULE_CLOSE, 5,
	 "rule \"r\": \"batch_size\" must be between 1 and 10000000", NULL},

	{"unknown de-identification method lists the valid ones",
	 RULE_OPEN "action = \"deidentify\";\n deidentify = { email = \"hsh\"; };\n"
	 RULE_CLOSE, 6, "column \"email\": unknown method \"hsh\" (valid: "
	 "\"null\", \"redact\", \"hash\", \"mask_email\", \"truncate_ip\", "
	 "\"year\")", NULL},
	{"de-identification method that is not a string",
	 RULE_OPEN "action = \"deidentify\";\n deidentify = { email = 5; };\n"
	 RULE_CLOSE, 6, "column \"email\" needs a method as a string", NULL},
	{"empty deidentify group",
	 RULE_OPEN "action = \"deidentify\";\n deidentify = { };\n" RULE_CLOSE, 6,
	 "\"deidentify\" lists no columns", NULL},
	{"deidentify list element without a method",
	 RULE_OPEN "action = \"deidentify\";\n deidentify = ( { column = \"x\"; } );\n"
	 RULE_CLOSE, 6, "column = \"...\"; method = \"...\";", NULL},
	{"deidentify list naming a column twice",
	 RULE_OPEN "action = \"deidentify\";\n deidentify = ("
	 " { column = \"x\"; method = \"null\"; },\n"
	 " { column = \"x\"; method = \"redact\"; } );\n" RULE_CLOSE, 7,
	 "column \"x\" is listed twice", NULL},
	{"hash without marker_column says why",
	 RULE_OPEN "action = \"deidentify\";\n deidentify = { a = \"null\";\n"
	 " email = \"hash\"; };\n" RULE_CLOSE, 7,
	 "\"marker_column\" is required when a column uses \"hash\": a hashed "
	 "value cannot be told apart from a raw one", NULL},
	{"hash on erasure needs a marker too",
	 RULE_OPEN "subject = \"c\"; subject_column = \"id\";\n"
	 " on_erasure = \"deidentify\"; deidentify = {\n email = \"hash\"; };\n"
	 RULE_CLOSE, 7, "\"marker_column\" is required", NULL},
	{"marker_column that is also de-identified",
	 RULE_OPEN "action = \"deidentify\"; deidentify = { m = \"null\"; };\n"
	 " marker_column = \"m\";\n" RULE_CLOSE, 6,
	 "\"marker_column\" is also listed in \"deidentify\"", NULL},
	{"action deidentify without a deidentify group",
	 RULE_OPEN "action = \"deidentify\";\n" RULE_CLOSE, 5,
	 "\"action\" is \"deidentify\" but there is no \"deidentify\" group",
	 NULL},
	{"on_erasure deidentify without a deidentify group",
	 RULE_OPEN "subject = \"c\"; subject_column = \"id\";\n"
	 " on_erasure = \"deidentify\";\n" RULE_CLOSE, 6,
	 "\"on_erasure\" is \"deidentify\" but there is no \"deidentify\" group",
	 NULL},
	{"deidentify group on a rule that only deletes",
	 RULE_OPEN "deidentify = { email = \"null\"; };\n" RULE_CLOSE, 5,
	 "\"deidentify\" has no effect", NULL},
	{"subject without subject_column",
	 RULE_OPEN "subject = \"customer\";\n" RULE_CLOSE, 5,
	 "\"subject\" needs \"subject_column\"", NULL},
	{"subject_column without subject",
	 RULE_OPEN "subject_column = \"customer_id\";\n" RULE_CLOSE, 5,
	 "\"subject_column\" needs \"subject\"", NULL},
	{"subject that cannot be typed as SUBJECT:ID",
	 RULE_OPEN "subject = \"cust:omer\"; subject_column = \"id\";\n"
	 RULE_CLOSE, 5, "(it is typed as SUBJECT:ID)", NULL},

	{"syntax error reports its line",
	 DB "limits: {\n batch_size = ;\n};\n" RULES, 3, "syntax error", NULL},
	{"syntax error in a rule reports its line",
	 DB "rules = ( {\n name = \"r\" policy = ; } );\n", 3,
	 "syntax error", NULL},
	{"unclosed list is reported at the end of the file",
	 DB "rules = ( {\n name = \"r\";\n", 4,
	 "syntax error at the end of the file", NULL},
	{"duplicate key is a syntax error",
	 DB "limits: { pause = \"1s\";\n pause = \"2s\"; };\n" RULES, 3,
	 "syntax error: duplicate setting name", NULL},
	{"missing include names the file", DB "@include \"nowhere.conf\"\n" RULES,
	 2, "@include: cannot open \"nowhere.conf\"", NULL},
	{"a missing include's name is printed without its control characters",
	 DB "@include \"no\rwhere.conf\"\n" RULES, 2,
	 "@include: cannot open \"no?where.conf\"", "\r"},
};

static void
test_each_mistake_is_reported_at_its_line(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]);
	     i++) {
		const struct error_case *ec = &error_cases[i];
		struct config cfg;
		struct diag d;
		const char *hit;

		memset(&cfg, 0x5a, sizeof(cfg));
		diag_init(&d);
		bool ok = config_load_string(ec->text, "test.conf", &cfg, &d);
		hit = find_entry(&d, "test.conf", ec->line, ec->phrase);
		if (ok || d.n_errors != 1 || !hit ||
		    (ec->absent && strstr(hit, ec->absent))) {
			print_error("case \"%s\": loaded=%d, %zu error(s):\n",
				    ec->promise, ok, d.n_errors);
			print_diag(&d);
			fail_msg("expected exactly one error, at test.conf:%d, "
				 "with \"%s\"", ec->line, ec->phrase);
		}
		/* a failed load leaves nothing behind */
		static const struct config zero;
		assert_memory_equal(&cfg, &zero, sizeof(cfg));
		diag_fini(&d);
	}
}

static void
test_five_mistakes_are_all_reported_in_one_pass(void **state)
{
	static const char text[] =
		"database: { conninfo = \"dbname=shop\"; };\n"
		"limits: { batch_size = \"many\"; };\n"		/* 2 */
		"schedule: { window = \"1-5\"; };\n"		/* 3 */
		"rules = (\n"
		"  { name = \"a\"; policy = \"p\"; table = \"t\";\n"
		"    age_column = \"c\";\n"
		"    retain = \"7 yeers\";\n"			/* 7 */
		"    action = \"erase\"; },\n"			/* 8 */
		"  { name = \"b\"; policy = \"p\"; table = \"t\";\n"
		"    age_column = \"c\"; retain = \"1d\";\n"
		"    subject = \"customer\"; }\n"		/* 11 */
		");\n";
	static const struct {
		int line;
		const char *phrase;
	} expect[] = {
		{2, "\"batch_size\" must be an integer"},
		{3, "\"window\" must look like"},
		{7, "rule \"a\": \"retain\": unknown unit \"yeers\""},
		{8, "rule \"a\": \"action\" must be"},
		{11, "rule \"b\": \"subject\" needs \"subject_column\""},
	};
	struct config cfg;
	struct diag d;

	(void)state;
	diag_init(&d);
	assert_false(config_load_string(text, "test.conf", &cfg, &d));
	if (d.n_errors != 5)
		print_diag(&d);
	assert_int_equal(d.n_errors, 5);
	for (size_t i = 0; i < 5; i++) {
		/* in file order, so the admin can fix them top to bottom */
		char prefix[32];
		snprintf(prefix, sizeof(prefix), "test.conf:%d: ",
			 expect[i].line);
		assert_true(strncmp(d.entries[i].text, prefix,
				    strlen(prefix)) == 0);
		assert_non_null(strstr(d.entries[i].text, expect[i].phrase));
	}
	diag_fini(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_mistake_is_reported_at_its_line),
		cmocka_unit_test(test_five_mistakes_are_all_reported_in_one_pass),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
