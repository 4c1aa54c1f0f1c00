/* Placeholder until reports and mail land (issue: mail and reports). */
#include "postcycle.h"

void
postcycle(PGconn *conn, const struct config *cfg, const struct run_result *res)
{
	(void)conn;
	(void)cfg;
	(void)res;
}

void
postcycle_alert_direct(const struct config *cfg, const char *subject,
		       const char *body)
{
	(void)cfg;
	(void)subject;
	(void)body;
}
