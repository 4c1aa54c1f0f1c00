#include "signals.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t reload_flag;
static volatile sig_atomic_t wakeup_flag;

static void
on_signal(int sig)
{
	switch (sig) {
	case SIGINT:
		if (stop_flag) {
			/* the operator pressed ^C twice: leave now; the
			 * database rolls back the batch in flight */
			static const char msg[] = "retentiond: interrupted again, exiting now\n";
			(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
			_exit(130);
		}
		stop_flag = 1;
		break;
	case SIGTERM:
		stop_flag = 1;
		break;
	case SIGHUP:
		reload_flag = 1;
		break;
	case SIGUSR1:
		wakeup_flag = 1;
		break;
	default:
		break;
	}
}

void
signals_init(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: a sleep or a wait on the server should wake up */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

bool
signals_stop_requested(void)
{
	return stop_flag != 0;
}

bool
signals_take_reload(void)
{
	bool r = reload_flag != 0;
	reload_flag = 0;
	return r;
}

bool
signals_take_wakeup(void)
{
	bool r = wakeup_flag != 0;
	wakeup_flag = 0;
	return r;
}
