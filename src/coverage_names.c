/*
 * coverage_names: what a column's name and type say (SPEC §9). Names are
 * split into lower-case words (snake_case, camelCase, kebab, digits:
 * "billingAddr1" -> billing addr 1); each word, and each run of two or
 * three adjacent words glued together ("birth date" -> "birthdate"), is
 * looked up in one dictionary. Glued spellings ("customeremail") are
 * found by a long unambiguous word at the start or the end of the whole
 * name. The value checks are in coverage_detect.c.
 */
#include "coverage_detect.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MAX_WORDS 12
#define MAX_WORD 64

struct word {
	const char *w;
	enum cov_category cat;
	bool ambiguous;		/* needs a second signal for "high" */
};

/* English, German, French, Spanish and Dutch; glued forms of the common
 * multi-word names are listed as such. */
static const struct word dictionary[] = {
	/* e-mail */
	{"email", COV_EMAIL, false}, {"emails", COV_EMAIL, false},
	{"emailaddress", COV_EMAIL, false}, {"mail", COV_EMAIL, true},
	{"emailadresse", COV_EMAIL, false}, {"courriel", COV_EMAIL, false},
	{"correo", COV_EMAIL, false}, {"correoelectronico", COV_EMAIL, false},
	{"emailadres", COV_EMAIL, false}, {"mailadres", COV_EMAIL, false},
	{"mailadresse", COV_EMAIL, false},
	/* phone */
	{"phone", COV_PHONE, false}, {"phonenumber", COV_PHONE, false},
	{"phoneno", COV_PHONE, false}, {"tel", COV_PHONE, false},
	{"telno", COV_PHONE, false}, {"telephone", COV_PHONE, false},
	{"telefon", COV_PHONE, false}, {"telefonnummer", COV_PHONE, false},
	{"telefono", COV_PHONE, false}, {"telefoon", COV_PHONE, false},
	{"telefoonnummer", COV_PHONE, false}, {"telephonenumber", COV_PHONE, false},
	{"mobile", COV_PHONE, true}, {"mobil", COV_PHONE, true},
	{"mobilephone", COV_PHONE, false}, {"mobilenumber", COV_PHONE, false},
	{"cell", COV_PHONE, true}, {"cellphone", COV_PHONE, false},
	{"msisdn", COV_PHONE, false}, {"fax", COV_PHONE, false},
	{"handy", COV_PHONE, true}, {"handynummer", COV_PHONE, false},
	{"movil", COV_PHONE, true}, {"celular", COV_PHONE, false},
	{"mobiel", COV_PHONE, true}, {"gsm", COV_PHONE, true},
	{"numerotelephone", COV_PHONE, false},
	/* names */
	{"name", COV_PERSON_NAME, true}, {"names", COV_PERSON_NAME, true},
	{"firstname", COV_PERSON_NAME, false}, {"lastname", COV_PERSON_NAME, false},
	{"fullname", COV_PERSON_NAME, false}, {"givenname", COV_PERSON_NAME, false},
	{"familyname", COV_PERSON_NAME, false}, {"surname", COV_PERSON_NAME, false},
	{"middlename", COV_PERSON_NAME, false}, {"maidenname", COV_PERSON_NAME, false},
	{"forename", COV_PERSON_NAME, false}, {"fname", COV_PERSON_NAME, false},
	{"lname", COV_PERSON_NAME, false}, {"username", COV_PERSON_NAME, false},
	{"nickname", COV_PERSON_NAME, false}, {"displayname", COV_PERSON_NAME, true},
	{"vorname", COV_PERSON_NAME, false}, {"nachname", COV_PERSON_NAME, false},
	{"familienname", COV_PERSON_NAME, false}, {"prenom", COV_PERSON_NAME, false},
	{"nom", COV_PERSON_NAME, true}, {"nomdefamille", COV_PERSON_NAME, false},
	{"nombre", COV_PERSON_NAME, true}, {"apellido", COV_PERSON_NAME, false},
	{"apellidos", COV_PERSON_NAME, false}, {"voornaam", COV_PERSON_NAME, false},
	{"achternaam", COV_PERSON_NAME, false}, {"naam", COV_PERSON_NAME, true},
	{"contactname", COV_PERSON_NAME, false},
	/* address parts */
	{"address", COV_ADDRESS, true}, {"addr", COV_ADDRESS, true},
	{"addr1", COV_ADDRESS, false}, {"addr2", COV_ADDRESS, false},
	{"address1", COV_ADDRESS, false}, {"address2", COV_ADDRESS, false},
	{"addressline", COV_ADDRESS, false}, {"addressline1", COV_ADDRESS, false},
	{"addressline2", COV_ADDRESS, false}, {"street", COV_ADDRESS, false},
	{"streetaddress", COV_ADDRESS, false}, {"housenumber", COV_ADDRESS, false},
	{"zip", COV_ADDRESS, false}, {"zipcode", COV_ADDRESS, false},
	{"postcode", COV_ADDRESS, false}, {"postalcode", COV_ADDRESS, false},
	{"plz", COV_ADDRESS, false}, {"postleitzahl", COV_ADDRESS, false},
	{"strasse", COV_ADDRESS, false}, {"hausnummer", COV_ADDRESS, false},
	{"adresse", COV_ADDRESS, true}, {"anschrift", COV_ADDRESS, false},
	{"rue", COV_ADDRESS, false}, {"codepostal", COV_ADDRESS, false},
	{"direccion", COV_ADDRESS, true}, {"calle", COV_ADDRESS, false},
	{"codigopostal", COV_ADDRESS, false}, {"adres", COV_ADDRESS, true},
	{"straat", COV_ADDRESS, false}, {"huisnummer", COV_ADDRESS, false},
	{"city", COV_ADDRESS, true}, {"town", COV_ADDRESS, true},
	{"ort", COV_ADDRESS, true}, {"wohnort", COV_ADDRESS, false},
	{"ville", COV_ADDRESS, true}, {"ciudad", COV_ADDRESS, true},
	{"woonplaats", COV_ADDRESS, false},
	/* birth dates */
	{"dob", COV_BIRTH_DATE, false}, {"birthdate", COV_BIRTH_DATE, false},
	{"dateofbirth", COV_BIRTH_DATE, false}, {"birthday", COV_BIRTH_DATE, false},
	{"birthdt", COV_BIRTH_DATE, false}, {"bday", COV_BIRTH_DATE, false},
	{"born", COV_BIRTH_DATE, false}, {"bornon", COV_BIRTH_DATE, false},
	{"birthyear", COV_BIRTH_DATE, false}, {"birthplace", COV_BIRTH_DATE, false},
	{"geburtsdatum", COV_BIRTH_DATE, false}, {"geburtstag", COV_BIRTH_DATE, false},
	{"datenaissance", COV_BIRTH_DATE, false},
	{"datedenaissance", COV_BIRTH_DATE, false},
	{"fechanacimiento", COV_BIRTH_DATE, false},
	{"fechadenacimiento", COV_BIRTH_DATE, false},
	{"geboortedatum", COV_BIRTH_DATE, false},
	/* national and tax identifiers */
	{"ssn", COV_NATIONAL_ID, false}, {"socialsecurity", COV_NATIONAL_ID, false},
	{"socialsecuritynumber", COV_NATIONAL_ID, false},
	{"sin", COV_NATIONAL_ID, false}, {"nino", COV_NATIONAL_ID, false},
	{"nationalid", COV_NATIONAL_ID, false}, {"taxid", COV_NATIONAL_ID, false},
	{"tin", COV_NATIONAL_ID, false}, {"taxnumber", COV_NATIONAL_ID, false},
	{"steuerid", COV_NATIONAL_ID, false}, {"steuernummer", COV_NATIONAL_ID, false},
	{"nir", COV_NATIONAL_ID, false}, {"insee", COV_NATIONAL_ID, false},
	{"dni", COV_NATIONAL_ID, false}, {"nie", COV_NATIONAL_ID, false},
	{"nif", COV_NATIONAL_ID, false}, {"bsn", COV_NATIONAL_ID, false},
	{"burgerservicenummer", COV_NATIONAL_ID, false},
	{"personalausweis", COV_NATIONAL_ID, false},
	{"idcard", COV_NATIONAL_ID, false}, {"personnummer", COV_NATIONAL_ID, false},
	{"pesel", COV_NATIONAL_ID, false}, {"cpf", COV_NATIONAL_ID, false},
	{"driverslicense", COV_NATIONAL_ID, false},
	{"driverlicense", COV_NATIONAL_ID, false},
	/* passport */
	{"passport", COV_PASSPORT, false}, {"passportnumber", COV_PASSPORT, false},
	{"passportno", COV_PASSPORT, false}, {"reisepass", COV_PASSPORT, false},
	{"passeport", COV_PASSPORT, false}, {"pasaporte", COV_PASSPORT, false},
	{"paspoort", COV_PASSPORT, false},
	/* payment cards */
	{"cardnumber", COV_CARD, false}, {"creditcard", COV_CARD, false},
	{"creditcardnumber", COV_CARD, false}, {"ccnumber", COV_CARD, false},
	{"ccnum", COV_CARD, false}, {"cardno", COV_CARD, false},
	{"cc", COV_CARD, true}, {"pan", COV_CARD, true},
	{"cvv", COV_CARD, false}, {"cvc", COV_CARD, false},
	{"kreditkarte", COV_CARD, false}, {"kartennummer", COV_CARD, false},
	{"cartebancaire", COV_CARD, false}, {"tarjeta", COV_CARD, false},
	/* bank accounts */
	{"iban", COV_BANK, false}, {"accountnumber", COV_BANK, false},
	{"bankaccount", COV_BANK, false}, {"acct", COV_BANK, false},
	{"acctno", COV_BANK, false}, {"accountno", COV_BANK, false},
	{"kontonummer", COV_BANK, false}, {"bankverbindung", COV_BANK, false},
	{"rib", COV_BANK, false}, {"cuenta", COV_BANK, false},
	{"rekeningnummer", COV_BANK, false}, {"sortcode", COV_BANK, false},
	{"routingnumber", COV_BANK, false},
	/* IP addresses */
	{"ip", COV_IP, false}, {"ipaddr", COV_IP, false},
	{"ipaddress", COV_IP, false}, {"ipv4", COV_IP, false},
	{"ipv6", COV_IP, false}, {"remoteaddr", COV_IP, false},
	{"remoteip", COV_IP, false}, {"clientip", COV_IP, false},
	{"xforwardedfor", COV_IP, false}, {"ipadresse", COV_IP, false},
	{"ipadres", COV_IP, false},
	/* user agents */
	{"useragent", COV_USER_AGENT, false}, {"ua", COV_USER_AGENT, true},
	{"browser", COV_USER_AGENT, true},
	/* device and cookie identifiers */
	{"deviceid", COV_DEVICE_ID, false}, {"devicetoken", COV_DEVICE_ID, false},
	{"idfa", COV_DEVICE_ID, false}, {"gaid", COV_DEVICE_ID, false},
	{"adid", COV_DEVICE_ID, false}, {"advertisingid", COV_DEVICE_ID, false},
	{"imei", COV_DEVICE_ID, false}, {"udid", COV_DEVICE_ID, false},
	{"cookie", COV_DEVICE_ID, false}, {"cookieid", COV_DEVICE_ID, false},
	{"cookies", COV_DEVICE_ID, false}, {"sessionid", COV_DEVICE_ID, false},
	{"macaddress", COV_DEVICE_ID, false}, {"macaddr", COV_DEVICE_ID, false},
	{"pushtoken", COV_DEVICE_ID, false}, {"fingerprint", COV_DEVICE_ID, true},
	{"visitorid", COV_DEVICE_ID, false}, {"clientid", COV_DEVICE_ID, true},
	/* geolocation */
	{"latitude", COV_GEO, false}, {"longitude", COV_GEO, false},
	{"lat", COV_GEO, false}, {"lng", COV_GEO, false}, {"lon", COV_GEO, false},
	{"geolocation", COV_GEO, false}, {"location", COV_GEO, true},
	{"coordinates", COV_GEO, false}, {"geo", COV_GEO, false},
	{"gps", COV_GEO, false}, {"geopoint", COV_GEO, false},
	{"latlng", COV_GEO, false}, {"latlon", COV_GEO, false},
	/* free text */
	{"note", COV_FREE_TEXT, false}, {"notes", COV_FREE_TEXT, false},
	{"comment", COV_FREE_TEXT, false}, {"comments", COV_FREE_TEXT, false},
	{"message", COV_FREE_TEXT, false}, {"messages", COV_FREE_TEXT, false},
	{"remark", COV_FREE_TEXT, false}, {"remarks", COV_FREE_TEXT, false},
	{"bemerkung", COV_FREE_TEXT, false}, {"notiz", COV_FREE_TEXT, false},
	{"kommentar", COV_FREE_TEXT, false}, {"nachricht", COV_FREE_TEXT, false},
	{"commentaire", COV_FREE_TEXT, false}, {"mensaje", COV_FREE_TEXT, false},
	{"comentario", COV_FREE_TEXT, false}, {"opmerking", COV_FREE_TEXT, false},
	{"bericht", COV_FREE_TEXT, false}, {"body", COV_FREE_TEXT, true},
	{"feedback", COV_FREE_TEXT, false}, {"freetext", COV_FREE_TEXT, false},
	{"chat", COV_FREE_TEXT, false},
};

/* Words that make an ambiguous word a person's ("billing address") ... */
static const char *const person_words[] = {
	"customer", "user", "person", "people", "contact", "employee",
	"member", "patient", "student", "client", "subscriber", "account",
	"applicant", "candidate", "guest", "visitor", "author", "owner",
	"recipient", "sender", "signup", "lead", "driver", "passenger",
	"traveler", "traveller", "buyer", "seller", "profile", "first", "last",
	"full", "given", "family", "middle", "billing", "shipping", "home",
	"postal", "mailing", "delivery", "private", "personal", "kunde",
	"benutzer", "mitarbeiter", "cliente", "klant", "gebruiker", "persoon",
	"usuario", "utilisateur", "personne", "staff", "tenant", "resident",
	"citizen", "volunteer", "donor", "borrower", "partner", "spouse",
	"child", "parent", "participant", "attendee", "registration",
	"newsletter", "lid", "leden", "mitglied", "adherent", "socio",
};

/* ... and these make it a thing's ("product name", "web address"). */
static const char *const thing_words[] = {
	"product", "company", "file", "host", "domain", "brand", "category",
	"item", "country", "state", "region", "event", "app", "application",
	"server", "service", "table", "schema", "column", "shop", "store",
	"project", "plan", "tag", "group", "role", "team", "org",
	"organization", "organisation", "business", "department", "feature",
	"model", "web", "url", "setting", "config", "configuration", "job",
	"task", "queue", "error", "log", "status", "commit", "system",
	"template", "release", "version", "migration", "currency", "language",
	"locale", "unit", "warehouse", "sku", "catalog", "catalogue",
	"inventory", "asset", "metric", "flag", "permission", "option",
	"mac", "email", "attribute", "field", "index", "key", "bucket",
	"channel", "topic", "page", "article", "post", "game", "level",
	"vendor", "supplier", "manufacturer", "carrier", "city", "airport",
	"holiday", "tax", "rate", "price", "plugin", "package", "document",
	"report", "lookup", "reference", "enum", "type", "kind", "color",
	"colour", "size", "label", "title", "coupon", "promotion", "campaign",
	"segment", "content", "media", "image", "video", "build", "deploy",
	"pipeline", "cron", "stage", "step", "workflow", "rule", "policy",
	"bank", "branch", "location", "site", "venue", "room", "building",
	"zone", "network", "subnet", "cluster", "node", "pod", "container",
	"device", "printer", "sensor",
};

static const char *const category_names[] = {
	[COV_NONE] = "none",
	[COV_EMAIL] = "e-mail",
	[COV_PHONE] = "phone",
	[COV_PERSON_NAME] = "person name",
	[COV_ADDRESS] = "address",
	[COV_BIRTH_DATE] = "birth date",
	[COV_NATIONAL_ID] = "national id",
	[COV_PASSPORT] = "passport",
	[COV_CARD] = "payment card",
	[COV_BANK] = "bank account",
	[COV_IP] = "IP address",
	[COV_USER_AGENT] = "user agent",
	[COV_DEVICE_ID] = "device id",
	[COV_GEO] = "geolocation",
	[COV_FREE_TEXT] = "free text",
};

const char *
cov_category_name(enum cov_category c)
{
	return (unsigned)c < COV_N_CATEGORIES ? category_names[c] : "none";
}

const char *
cov_value_kind_name(unsigned kind)
{
	switch (kind) {
	case COV_VAL_EMAIL: return "e-mail";
	case COV_VAL_PHONE: return "phone";
	case COV_VAL_IP: return "IP address";
	case COV_VAL_CARD: return "card number";
	case COV_VAL_IBAN: return "IBAN";
	case COV_VAL_KEY: return "personal json keys";
	default: return "?";
	}
}

const char *
cov_confidence_name(enum cov_confidence c)
{
	return c == COV_CONF_HIGH ? "high" : c == COV_CONF_MEDIUM ? "medium"
								  : "none";
}

/* --- names ---------------------------------------------------------------- */

/* Lower-case words of NAME into words[][MAX_WORD]; returns how many. */
static int
split_words(const char *name, char words[][MAX_WORD], int max)
{
	int n = 0;
	size_t len = 0;
	const unsigned char *p = (const unsigned char *)name;

	for (; *p && n < max; p++) {
		bool alnum = isalnum(*p) && *p < 0x80;
		bool boundary = false;

		if (alnum && len > 0) {
			unsigned char prev = p[-1];
			/* camelCase, and letters against digits ("addr1"
			 * stays one word: digits end a word only after them) */
			if (isupper(*p) && islower(prev))
				boundary = true;
			else if (isalpha(*p) && isdigit(prev))
				boundary = true;
		}
		if (!alnum || boundary) {
			if (len > 0) {
				words[n][len] = '\0';
				n++;
				len = 0;
			}
			if (!alnum || n >= max)
				continue;
		}
		if (len < MAX_WORD - 1)
			words[n][len++] = (char)tolower(*p);
	}
	if (len > 0 && n < max) {
		words[n][len] = '\0';
		n++;
	}
	return n;
}

/* The dictionary in strcmp order, built on first use: a json column asks
 * for every key of every sampled row, so lookups must be cheap.
 * retentiond is single-threaded; the index never changes once built. */
static const struct word *sorted_words[ARRAY_SIZE(dictionary)];
static size_t longest_word;

static int
word_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct word *const *)a)->w,
		      (*(const struct word *const *)b)->w);
}

static void
sort_dictionary(void)
{
	if (longest_word)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(dictionary); i++) {
		sorted_words[i] = &dictionary[i];
		if (strlen(dictionary[i].w) > longest_word)
			longest_word = strlen(dictionary[i].w);
	}
	qsort(sorted_words, ARRAY_SIZE(sorted_words), sizeof(*sorted_words),
	      word_cmp);
}

static int
key_cmp(const void *key, const void *elem)
{
	return strcmp(key, (*(const struct word *const *)elem)->w);
}

static const struct word *
lookup(const char *w)
{
	const struct word *const *found;

	sort_dictionary();
	found = bsearch(w, sorted_words, ARRAY_SIZE(sorted_words),
			sizeof(*sorted_words), key_cmp);
	return found ? *found : NULL;
}

/* "customers" -> "customer", "categories" -> "category". */
static void
singular(char *w)
{
	size_t n = strlen(w);

	if (n > 4 && strcmp(w + n - 3, "ies") == 0)
		strcpy(w + n - 3, "y");
	else if (n > 3 && w[n - 1] == 's' && w[n - 2] != 's')
		w[n - 1] = '\0';
}

static bool
in_list(const char *w, const char *const *list, size_t n)
{
	char s[MAX_WORD];

	snprintf(s, sizeof(s), "%s", w);
	singular(s);
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], w) == 0 || strcmp(list[i], s) == 0)
			return true;
	return false;
}

/* +1: words about people, -1: about things, 0: neither. SKIP is the word
 * being judged. */
static int
qualifier(char words[][MAX_WORD], int n, int skip)
{
	int verdict = 0;

	for (int i = 0; i < n; i++) {
		if (i == skip)
			continue;
		if (in_list(words[i], thing_words, ARRAY_SIZE(thing_words)))
			return -1;
		if (in_list(words[i], person_words, ARRAY_SIZE(person_words)))
			verdict = 1;
	}
	return verdict;
}

enum cov_confidence
cov_name_match(const char *column, const char *table, enum cov_category *cat)
{
	char words[MAX_WORDS][MAX_WORD];
	char glued[3 * MAX_WORD];
	int n = split_words(column, words, MAX_WORDS);
	const struct word *best = NULL;
	int best_at = -1;

	/* every word, and runs of 2 and 3 words glued together */
	for (int span = 3; span >= 1 && !(best && !best->ambiguous); span--)
		for (int i = 0; i + span <= n; i++) {
			glued[0] = '\0';
			for (int j = i; j < i + span; j++)
				strcat(glued, words[j]);
			const struct word *w = lookup(glued);
			if (w && (!best || (best->ambiguous && !w->ambiguous))) {
				best = w;
				best_at = span == 1 ? i : -1;
			}
		}

	/* "customeremail": a long, unambiguous word at either end, the
	 * longest first */
	if (!best && n > 0) {
		char all[MAX_WORDS * MAX_WORD] = "";
		char head[MAX_WORDS * MAX_WORD];
		for (int i = 0; i < n; i++)
			strcat(all, words[i]);
		size_t alen = strlen(all);
		size_t max = alen - 1 < longest_word ? alen - 1 : longest_word;
		for (size_t len = max; len >= 5 && alen > 5 && !best; len--) {
			const struct word *w;
			memcpy(head, all, len);
			head[len] = '\0';
			if ((w = lookup(head)) && !w->ambiguous)
				best = w;
			else if ((w = lookup(all + alen - len)) && !w->ambiguous)
				best = w;
		}
	}
	if (!best)
		return COV_CONF_NONE;

	int q = qualifier(words, n, best_at);
	/* "product name", and a system's "error message": not a person's */
	if (q < 0 && (best->ambiguous || best->cat == COV_FREE_TEXT))
		return COV_CONF_NONE;
	*cat = best->cat;
	if (!best->ambiguous)
		return best->cat == COV_FREE_TEXT ? COV_CONF_MEDIUM
						  : COV_CONF_HIGH;
	if (q > 0)
		return best->cat == COV_FREE_TEXT ? COV_CONF_MEDIUM
						  : COV_CONF_HIGH;
	/* the table is the second signal: "customers.name", "products.name" */
	if (table) {
		char tw[MAX_WORDS][MAX_WORD];
		int tn = split_words(table, tw, MAX_WORDS);
		int tq = qualifier(tw, tn, -1);
		if (tq < 0)
			return COV_CONF_NONE;
		if (tq > 0 && best->cat != COV_FREE_TEXT)
			return COV_CONF_HIGH;
	}
	return COV_CONF_MEDIUM;
}

bool
cov_type_match(const char *t)
{
	return strcmp(t, "inet") == 0 || strcmp(t, "cidr") == 0 ||
	       strcmp(t, "macaddr") == 0 || strcmp(t, "macaddr8") == 0;
}

bool
cov_type_json(const char *t)
{
	return strcmp(t, "json") == 0 || strcmp(t, "jsonb") == 0;
}

bool
cov_type_sampled(const char *t)
{
	return strcmp(t, "text") == 0 || strcmp(t, "varchar") == 0 ||
	       strcmp(t, "bpchar") == 0 || strcmp(t, "citext") == 0 ||
	       cov_type_json(t);
}

