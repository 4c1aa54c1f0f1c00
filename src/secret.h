/*
 * secret: passwords and keys. Read from a file named in the config or from a
 * systemd credential ($CREDENTIALS_DIRECTORY/db-password, smtp-password,
 * pseudonym-key); the credential wins when both exist, because under systemd
 * the service user may not be able to read the file itself.
 *
 * Secret values are never logged; messages name only their source.
 */
#ifndef RETENTIOND_SECRET_H
#define RETENTIOND_SECRET_H

#include <stdbool.h>

#include "config.h"
#include "diag.h"
#include "util.h"

/* Credential names (systemd LoadCredential=). */
#define SECRET_CRED_DB "db-password"
#define SECRET_CRED_SMTP "smtp-password"
#define SECRET_CRED_PSEUDONYM "pseudonym-key"

/* Minimum length of the pseudonym key, in bytes. */
#define SECRET_PSEUDONYM_MIN 16

/*
 * Read one secret: credential CRED if $CREDENTIALS_DIRECTORY/CRED exists,
 * else PATH if not NULL. A single trailing newline is removed. Files
 * readable by group or others are refused (a warning for credentials is not
 * needed: systemd makes them private). Returns false and adds to diag on
 * error; returns true with out->data NULL when neither source exists.
 */
bool secret_load(const char *cred, const char *path, struct secret *out,
		 struct diag *diag) MUSTCHECK;

/* All secrets the config names: database password, SMTP password, the
 * pseudonym key (required when any rule uses "hash"). */
bool secret_load_all(struct config *cfg, struct diag *diag) MUSTCHECK;

void secret_clear(struct secret *s);

/* True when a libpq conninfo string carries a password inline. */
bool secret_conninfo_has_password(const char *conninfo);

#endif
