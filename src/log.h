/*
 * log: messages for operators. Under systemd (JOURNAL_STREAM set and
 * matching stderr) each line carries a "<N>" syslog priority prefix so the
 * journal keeps levels; otherwise lines are timestamped.
 */
#ifndef RETENTIOND_LOG_H
#define RETENTIOND_LOG_H

enum log_level {
	LOG_LVL_ERROR = 3,
	LOG_LVL_WARNING = 4,
	LOG_LVL_NOTICE = 5,
	LOG_LVL_INFO = 6,
	LOG_LVL_DEBUG = 7
};

/* verbosity: -1 quiet (errors only), 0 normal (info and up), 1 debug */
void log_init(int verbosity);
void log_fini(void);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LVL_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/* True when stderr is connected to the journal (JOURNAL_STREAM matches). */
int log_to_journal(void);

#endif
