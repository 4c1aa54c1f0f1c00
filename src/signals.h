/*
 * signals: handlers only set flags; the main loop acts on them.
 * SIGTERM/SIGINT ask for a stop after the batch in flight; a second SIGINT
 * exits at once. SIGHUP asks for a reload, SIGUSR1 for a cycle now.
 */
#ifndef RETENTIOND_SIGNALS_H
#define RETENTIOND_SIGNALS_H

#include <stdbool.h>

void signals_init(void);
bool signals_stop_requested(void);
/* Test-and-clear. */
bool signals_take_reload(void);
bool signals_take_wakeup(void);

#endif
