/*
 * daemon: `retentiond daemon` — enforcement cycles on the schedule, in the
 * foreground, until SIGTERM or SIGINT.
 *
 * One loop does everything: it acts on the flags the signal handlers set
 * (stop, reload, wake up), keeps the one database connection (reconnecting
 * with capped exponential backoff when the server goes away), starts a
 * cycle when one is due and the window is open, and sleeps in poll() on
 * the signal self-pipe and the connection's socket, so a signal or a
 * server that closes the connection wakes it at once. It tells systemd
 * what it is doing over $NOTIFY_SOCKET (notify.h).
 *
 * Cycles are due every schedule.interval, start to start, on the monotonic
 * clock (a clock step never shifts the schedule); with schedule.window set
 * they only start inside it, in local time. SIGUSR1 starts a cycle at once,
 * window or not — an operator who asks for a cycle means it — and the
 * interval counts from that cycle. A SIGUSR1 that arrives during a cycle
 * starts another when it ends. A cycle cut short by a lost connection is
 * retried as soon as the connection is back.
 *
 * A reload (SIGHUP) waits for the cycle in flight, which keeps the config
 * it started with; then the file is parsed and validated into a fresh
 * config that replaces the old one only when valid (and, when the database
 * settings changed, only when the new ones connect).
 */
#ifndef RETENTIOND_DAEMON_H
#define RETENTIOND_DAEMON_H

#include "config.h"

/* How long SIGTERM waits for the statement in flight before cancelling it. */
#define DAEMON_STOP_GRACE_SECONDS 5

/* Run until stopped. Takes ownership of CFG (heap-allocated, loaded and
 * validated, secrets included) and frees it. PATH is reread on SIGHUP.
 * Returns the process exit status. */
int daemon_run(const char *path, struct config *cfg);

#endif
