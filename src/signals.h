/*
 * signals: handlers only set flags (and write a byte to a self-pipe, so a
 * poll() in the main loop wakes up); the main loop acts on them.
 * SIGTERM/SIGINT ask for a stop after the batch in flight; a second SIGINT
 * exits at once. SIGHUP asks for a reload, SIGUSR1 for a cycle now.
 *
 * With a grace period set (the daemon), a stop request also arms alarm():
 * if the statement in flight is still running when it fires, SIGALRM
 * cancels it with PQcancel, which libpq documents as safe in a signal
 * handler.
 */
#ifndef RETENTIOND_SIGNALS_H
#define RETENTIOND_SIGNALS_H

#include <stdbool.h>

#include <libpq-fe.h>

void signals_init(void);
/* Close the pipe, free the cancel object, disarm the alarm. */
void signals_fini(void);
bool signals_stop_requested(void);
/* Test-and-clear. */
bool signals_take_reload(void);
bool signals_take_wakeup(void);

/* The read end of the self-pipe (non-blocking), -1 before signals_init.
 * Readable after any handled signal; signals_drain() empties it. */
int signals_fd(void);
void signals_drain(void);

/* Seconds a stop request waits for the statement in flight before it is
 * cancelled; 0 (the default) never cancels. */
void signals_set_grace(unsigned seconds);

/* The connection whose statements a late stop cancels: takes ownership of
 * CANCEL (from PQgetCancel; NULL to forget), frees the previous one. */
void signals_set_cancel(PGcancel *cancel);

/* Whether work is in flight that the grace alarm may cancel. */
void signals_set_busy(bool busy);

/* Test-and-clear: the alarm fired and a cancel request was sent. */
bool signals_take_cancelled(void);

#endif
