/*
 * report_int: helpers the report renderers share (report.c, report_text.c,
 * report_html.c); not for other modules.
 */
#ifndef RETENTIOND_REPORT_INT_H
#define RETENTIOND_REPORT_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "report.h"
#include "strbuf.h"

/* The rule failed or a guard refused it. */
bool report_rule_failed(const struct report_rule *rr);

const struct report_run *report_find_run(const struct report *r, long long id);

/* "intact", "broken", "unknown" */
const char *report_audit_name(enum report_audit a);

/* "45 s", "12 min", "5.2 h", "10.0 days", "2.1 years"; "-" when < 0. */
void report_human_age(double seconds, char *out, size_t size);

/* "compliant: all 3 rules", "NOT COMPLIANT: 1 of 3 rules (4 rows OVERDUE,
 * 1 failed)", "no rule results". */
void report_compliance(const struct report_totals *t, char *out, size_t size);

/* A timestamp without its fractional seconds; "-" for NULL. */
void report_short_ts(struct strbuf *b, const char *ts);

/* The Coverage section (report_coverage.c); nothing when the report has
 * no coverage. */
void report_coverage_text(const struct report *r, struct strbuf *out);
void report_coverage_csv(const struct report *r, struct strbuf *out);
void report_coverage_json(const struct report *r, struct strbuf *out);
void report_coverage_html(const struct report *r, struct strbuf *out);

#endif
