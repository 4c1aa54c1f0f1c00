/*
 * notify: the systemd service notification protocol (sd_notify(3)) spoken
 * directly — one AF_UNIX datagram per message to $NOTIFY_SOCKET — so the
 * daemon needs no libsystemd and works the same under any supervisor that
 * implements the protocol.
 *
 * Without $NOTIFY_SOCKET every call is a no-op. A message that cannot be
 * sent is logged once at debug level: supervision is a convenience, never a
 * reason to stop enforcing retention.
 */
#ifndef RETENTIOND_NOTIFY_H
#define RETENTIOND_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include "util.h"

/* STATUS= lines longer than this are cut: systemctl shows one line. */
#define NOTIFY_STATUS_MAX 200

/* Read $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID. */
void notify_init(void);
void notify_fini(void);

/* Send one message ("READY=1", "STATUS=...\nREADY=1"). False on failure or
 * when there is no socket. */
bool notify_send(const char *msg);

void notify_ready(void);
/* RELOADING=1 with MONOTONIC_USEC, as systemd 253+ expects for
 * Type=notify-reload; older versions ignore the extra field. */
void notify_reloading(void);
void notify_stopping(void);
/* STATUS=LINE; identical consecutive lines are sent once. */
void notify_status(const char *line);

/* Watchdog: half of $WATCHDOG_USEC, in milliseconds; 0 when off (also
 * when there is no $NOTIFY_SOCKET to ping). */
int64_t notify_watchdog_interval_ms(void);
/* Send WATCHDOG=1 if half the watchdog time has passed since the last one;
 * NOW_MS is CLOCK_MONOTONIC in milliseconds. */
void notify_watchdog_tick(int64_t now_ms);
/* Milliseconds from NOW_MS until the next ping is due (0: now); -1 when
 * the watchdog is off. For poll timeouts. */
int64_t notify_watchdog_wait_ms(int64_t now_ms);

/* --- pure helpers, exposed for unit tests ---------------------------- */

/*
 * The socket address for PATH: an absolute path, or "@name" for the
 * abstract namespace. False for anything else (relative, empty, too long).
 */
bool notify_address(const char *path, struct sockaddr_un *sa,
		    socklen_t *len) MUSTCHECK;

/* "STATUS=" + LINE with control characters turned into spaces (a newline
 * would start a new assignment) and cut at NOTIFY_STATUS_MAX bytes on a
 * UTF-8 character boundary. */
void notify_format_status(char *buf, size_t len, const char *line);

/* "RELOADING=1\nMONOTONIC_USEC=N" */
void notify_format_reloading(char *buf, size_t len, uint64_t monotonic_usec);

/* The watchdog timeout in microseconds from the two variables, 0 when
 * off: unset, not a positive number, or WATCHDOG_PID naming another
 * process (the variables were inherited, not meant for us). */
uint64_t notify_parse_watchdog(const char *usec, const char *pid, pid_t self);

#endif
