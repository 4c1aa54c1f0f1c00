#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static int verbosity;
static int journal;

/* JOURNAL_STREAM is "DEV:INODE" of the stream systemd connected; it only
 * counts when stderr still is that stream (not redirected by a shell). */
static int
detect_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(fileno(stderr), &st) != 0)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void
log_init(int v)
{
	verbosity = v;
	journal = detect_journal();
}

void
log_fini(void)
{
	fflush(stderr);
}

int
log_to_journal(void)
{
	return journal;
}

static const char *
level_name(enum log_level level)
{
	switch (level) {
	case LOG_LVL_ERROR:
		return "error";
	case LOG_LVL_WARNING:
		return "warning";
	case LOG_LVL_NOTICE:
		return "notice";
	case LOG_LVL_INFO:
		return "info";
	case LOG_LVL_DEBUG:
		return "debug";
	}
	return "?";
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	if (level == LOG_LVL_DEBUG && verbosity < 1)
		return;
	if (level > LOG_LVL_WARNING && verbosity < 0)
		return;

	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) >= (int)sizeof(msg))
		utf8_trim_cut(msg);	/* a long database error, cut */
	va_end(ap);

	/* A multi-line message stays one journal entry per line, each with
	 * its priority. */
	char *line = msg, *nl;
	do {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (journal) {
			fprintf(stderr, "<%d>%s\n", (int)level, line);
		} else {
			char ts[32];
			time_t now = time(NULL);
			struct tm tm;
			localtime_r(&now, &tm);
			strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
			fprintf(stderr, "%s retentiond[%ld]: %s: %s\n", ts,
				(long)getpid(), level_name(level), line);
		}
		line = nl ? nl + 1 : NULL;
	} while (line && *line);
	fflush(stderr);
}
