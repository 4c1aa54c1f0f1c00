-- demo-shop.sql: the demo shop database that etc/retentiond.conf is written
-- against.
--
-- A made-up jewellery shop with bespoke CAD design work, an online shop, a
-- public API and web analytics. Its tables hold the kinds of data that the five
-- customer privacy policies in shared/policies talk about: 247CadControl
-- (247 Diamonds Ltd), 7 Diamonds, JewelryODM, 7Dxperts and Je t'aime. Each
-- table's comment names the policy that it comes from.
--
-- Load it into an empty database (scripts/demo does this):
--
--     createdb shop && psql -X -v ON_ERROR_STOP=1 -d shop -f scripts/demo-shop.sql
--
-- Running it again starts over: it drops and recreates its own schemas
-- (shop, billing, crm, web, api). It leaves retentiond's schema (retention)
-- alone.
--
-- Every time is relative to now(), so each table has rows well inside and well
-- outside its rule's retention period whenever the script runs, and some rows
-- whose age column is NULL (never expires). A few tables also hold rows that
-- "an earlier run" already de-identified, with their marker set, as in a
-- shop where retentiond has been running for a while; so a first cycle has
-- a realistic amount of work and no safety guard (max_fraction) trips.
--
-- Contents are deterministic: "random" choices are a hash of a label and a
-- row number (pg_temp.u below), never random(). Names, e-mail addresses,
-- phone numbers and IP addresses are fictitious, drawn from reserved ranges:
-- example.com/.org/.net, Ofcom's drama numbers (07700 900xxx) and the
-- documentation networks 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 and
-- 2001:db8::/32.
--
-- Every table with personal data has a customer_id: that is how an erasure
-- request for "customer:ID" finds the rows (rule keys subject and
-- subject_column).
--
-- The age column of every rule has an index except crm.contact_history's
-- occurred_at, left without one on purpose so that `retentiond check` shows
-- its warning.

\set ON_ERROR_STOP 1

BEGIN;

SET LOCAL client_min_messages = warning;

DROP SCHEMA IF EXISTS api, web, crm, billing, shop CASCADE;

CREATE SCHEMA shop;
CREATE SCHEMA billing;
CREATE SCHEMA crm;
CREATE SCHEMA web;
CREATE SCHEMA api;

COMMENT ON SCHEMA shop IS 'Customer accounts, orders and CAD design work';
COMMENT ON SCHEMA billing IS 'Invoices and payment cards';
COMMENT ON SCHEMA crm IS 'Contact history, support, surveys and competitions, marketing consent';
COMMENT ON SCHEMA web IS 'Web analytics and log-file events';
COMMENT ON SCHEMA api IS 'Public API: request log, usage figures, SaaS end users';

-- Deterministic pseudo-random helpers, for this session only.

-- A number in [0, 1) from a label and a row number. hashtextextended() is
-- PostgreSQL's own hash function for hash partitioning, so its values do
-- not change between runs or releases; it is ten times faster than md5().
CREATE FUNCTION pg_temp.u(salt text, i bigint) RETURNS double precision
LANGUAGE sql IMMUTABLE AS
$$ SELECT (hashtextextended(salt, i) & 4294967295)::float8 / 4294967296.0::float8 $$;

-- One element of ARR, chosen by label and row number.
CREATE FUNCTION pg_temp.pick(arr text[], salt text, i bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS
$$ SELECT arr[1 + floor(pg_temp.u(salt, i) * array_length(arr, 1))::int] $$;

-- An address in one of the IPv4 documentation networks, or now and then in
-- the IPv6 one.
CREATE FUNCTION pg_temp.ip(salt text, i bigint) RETURNS inet
LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN pg_temp.u(salt || '6', i) < 0.15
               THEN ('2001:db8:' || to_hex(floor(pg_temp.u(salt || 'a', i) * 65535)::int) || ':'
                     || to_hex(floor(pg_temp.u(salt || 'b', i) * 65535)::int) || '::'
                     || to_hex(1 + floor(pg_temp.u(salt || 'c', i) * 65534)::int))::inet
               ELSE (pg_temp.pick('{192.0.2,198.51.100,203.0.113}', salt || 'n', i) || '.'
                     || (1 + floor(pg_temp.u(salt || 'h', i) * 254)::int))::inet
          END $$;

CREATE FUNCTION pg_temp.first_name(i bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS
$$ SELECT pg_temp.pick('{Amelia,Oliver,Isla,George,Ava,Harry,Mia,Noah,Sophie,Jack,Grace,Leo,Freya,Arthur,Lily,Oscar,Ella,Charlie,Chloe,Jacob,Priya,Mohammed,Zara,Aarav,Chiara,Luca,Aoife,Tomasz,Nia,Emeka}', 'first', i) $$;

CREATE FUNCTION pg_temp.last_name(i bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS
$$ SELECT pg_temp.pick('{Smith,Jones,Taylor,Brown,Williams,Wilson,Johnson,Davies,Patel,Robinson,Wright,Thompson,Evans,Walker,White,Roberts,Green,Hall,Wood,Jackson,Clarke,Khan,Okafor,Nowak,Rossi,Murphy,Kaur,Ahmed,Lewis,Hughes}', 'last', i) $$;

CREATE FUNCTION pg_temp.email(first text, last text, i bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS
$$ SELECT lower(first || '.' || last || i) || '@'
          || pg_temp.pick('{example.com,example.org,example.net,mail.example.com,jewellers.example.org}', 'dom', i) $$;

CREATE FUNCTION pg_temp.phone(i bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS
$$ SELECT '+44 7700 900' || lpad((i % 1000)::text, 3, '0') $$;

CREATE FUNCTION pg_temp.address(i bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS
$$ SELECT (1 + i % 180) || ' '
          || pg_temp.pick('{High Street,Station Road,Church Lane,Mill Road,Victoria Road,Park Avenue,Hatton Garden,Queen Street,Bridge Street,Orchard Close}', 'street', i)
          || ', ' || split_part(town, '|', 1) || ' ' || split_part(town, '|', 2)
          || ' ' || (i % 10) || chr(65 + (i / 10 % 26)::int) || chr(65 + (i / 260 % 26)::int)
     FROM (SELECT pg_temp.pick('{London|EC1N,Birmingham|B3,Cheltenham|GL50,Bourton-on-the-Water|GL54,Manchester|M1,Leeds|LS1,Bristol|BS1,Edinburgh|EH1,Cardiff|CF10,Norwich|NR2}', 'town', i) AS town) AS t $$;

-- The user agents a browser sends; enough to fingerprint.
CREATE FUNCTION pg_temp.user_agent(i bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS
$$ SELECT pg_temp.pick(ARRAY[
     'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
     'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15',
     'Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1',
     'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0',
     'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36'],
     'ua', i) $$;

-- ===========================================================================
-- shop.customers
-- Account data: name, e-mail, phone, company, address, date of birth, last
-- IP address. Kept while the account is open (closed_at IS NULL never
-- expires), then de-identified: 7Dxperts "How we store your personal
-- information" ("as long as we have a continuing relationship with you ...
-- we will either delete or de-identify"), 247CadControl §7 ("maintain your
-- account"), JewelryODM §6. Rows are de-identified rather than deleted
-- because orders and invoices still refer to them.
-- Rule: closed-accounts.
-- ===========================================================================
CREATE TABLE shop.customers (
    id              bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    email           text NOT NULL UNIQUE,
    full_name       text NOT NULL,
    phone           text,
    company_name    text,           -- trade accounts (247CadControl)
    address         text,
    date_of_birth   date,           -- age check: no sales to children
    last_ip         inet,
    created_at      timestamptz NOT NULL,
    closed_at       timestamptz,    -- NULL: account open
    deidentified_at timestamptz     -- marker: set by retentiond when done
);
COMMENT ON TABLE shop.customers IS
    'Customer accounts. 7Dxperts / 247CadControl / JewelryODM: kept while the relationship lasts, then de-identified (rule closed-accounts)';
COMMENT ON COLUMN shop.customers.deidentified_at IS
    'Marker column: set when retentiond has de-identified the row';
CREATE INDEX customers_closed_at_idx ON shop.customers (closed_at);

-- 1,200 customers who joined over the last ten years; one in four has closed
-- the account, up to six years ago.
INSERT INTO shop.customers
    (id, email, full_name, phone, company_name, address, date_of_birth,
     last_ip, created_at, closed_at)
SELECT g,
       pg_temp.email(pg_temp.first_name(g), pg_temp.last_name(g), g),
       pg_temp.first_name(g) || ' ' || pg_temp.last_name(g),
       CASE WHEN pg_temp.u('nophone', g) < 0.1 THEN NULL ELSE pg_temp.phone(g) END,
       CASE WHEN pg_temp.u('trade', g) < 0.2
            THEN pg_temp.last_name(g + 7) || ' '
                 || pg_temp.pick('{Jewellers,Goldsmiths,"Fine Jewellery",Diamonds,"& Sons"}', 'co', g)
       END,
       pg_temp.address(g),
       CASE WHEN pg_temp.u('nodob', g) < 0.3 THEN NULL
            ELSE (date '1950-01-01' + floor(pg_temp.u('dob', g) * 18000)::int) END,
       pg_temp.ip('cust', g),
       created,
       CASE WHEN pg_temp.u('closed', g) < 0.25
            THEN created + (now() - created) * pg_temp.u('closedat', g)
       END
FROM generate_series(1, 1200) AS g,
     LATERAL (SELECT now() - (30 + pg_temp.u('joined', g) * 3620) * interval '1 day' AS created) AS c;

-- A few accounts were de-identified by an earlier run: their marker is set,
-- so retentiond leaves them alone.
UPDATE shop.customers
   SET email = encode(sha256(convert_to('earlier-run:' || email, 'UTF8')), 'hex'),
       full_name = '[redacted]',
       phone = NULL,
       company_name = NULL,
       address = '[redacted]',
       date_of_birth = date_trunc('year', date_of_birth)::date,
       last_ip = set_masklen(last_ip, CASE family(last_ip) WHEN 4 THEN 24 ELSE 48 END)::cidr::inet,
       deidentified_at = closed_at + interval '1 year 2 days'
 WHERE closed_at < now() - interval '18 months'
   AND id % 5 = 0;


-- ===========================================================================
-- shop.cad_designs
-- Bespoke design work: CAD files, renders, specifications and project data.
-- 247CadControl §7: "Design files and project data are retained for a
-- reasonable period to support ongoing service delivery and potential
-- reorders, unless you request deletion."
-- Rule: cad-design-files (age: last activity on the project).
-- ===========================================================================
CREATE TABLE shop.cad_designs (
    id               bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id      bigint NOT NULL REFERENCES shop.customers (id),
    title            text NOT NULL,
    file_name        text NOT NULL,
    file_sha256      text NOT NULL,
    spec             jsonb NOT NULL,  -- metal, stones, ring size, engraving...
    created_at       timestamptz NOT NULL,
    last_activity_at timestamptz NOT NULL
);
COMMENT ON TABLE shop.cad_designs IS
    '247CadControl §7: design files and project data, "a reasonable period ... unless you request deletion" (rule cad-design-files)';
CREATE INDEX cad_designs_last_activity_at_idx ON shop.cad_designs (last_activity_at);
CREATE INDEX cad_designs_customer_id_idx ON shop.cad_designs (customer_id);

-- 600 projects over the last eight years.
INSERT INTO shop.cad_designs
    (id, customer_id, title, file_name, file_sha256, spec, created_at, last_activity_at)
SELECT g,
       1 + floor(pg_temp.u('dcust', g) * 1200)::int,
       kind || ' for ' || pg_temp.first_name(g + 11),
       'design-' || lpad(g::text, 5, '0') || '-r' || (1 + g % 4) || '.3dm',
       encode(sha256(convert_to('design' || g, 'UTF8')), 'hex'),
       jsonb_build_object(
           'metal', pg_temp.pick('{"18ct yellow gold","18ct white gold",platinum,"9ct rose gold"}', 'metal', g),
           'stone', pg_temp.pick('{"round brilliant diamond","oval sapphire","emerald-cut diamond","pear emerald",none}', 'stone', g),
           'carat', round((0.2 + pg_temp.u('carat', g) * 2.3)::numeric, 2),
           'ring_size', pg_temp.pick('{J,K,L,M,N,O,P,Q}', 'size', g),
           'engraving', CASE WHEN g % 3 = 0 THEN 'Forever, ' || pg_temp.first_name(g + 3) END),
       created,
       created + (now() - created) * pg_temp.u('dlast', g)
FROM generate_series(1, 600) AS g,
     LATERAL (SELECT now() - (1 + pg_temp.u('dcreated', g) * 2920) * interval '1 day' AS created,
                     pg_temp.pick('{"Engagement ring","Eternity ring","Wedding band",Pendant,"Signet ring",Earrings}', 'kind', g) AS kind) AS c;


-- ===========================================================================
-- shop.orders
-- Orders with delivery details: name, address, phone, e-mail.
-- Two promises apply:
--   * the delivery details are needed only to provide the goods: Je t'aime
--     "Keeping your information", JewelryODM §6 (rule order-delivery-details,
--     age: delivered_at; NULL: not delivered yet);
--   * the order itself is part of the financial records, 7 years:
--     247CadControl §7 (rule orders-financial-records, age: placed_at).
-- ===========================================================================
CREATE TABLE shop.orders (
    id                  bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    order_no            text NOT NULL UNIQUE,
    customer_id         bigint NOT NULL REFERENCES shop.customers (id),
    status              text NOT NULL
                        CHECK (status IN ('processing', 'dispatched', 'delivered', 'cancelled', 'returned', 'disputed')),
    placed_at           timestamptz NOT NULL,
    delivered_at        timestamptz,     -- NULL: not delivered (yet)
    ship_name           text,
    ship_address        text,
    ship_phone          text,
    contact_email       text,
    total               numeric(12, 2) NOT NULL,
    currency            char(3) NOT NULL DEFAULT 'GBP',
    delivery_deidentified_at timestamptz  -- marker for rule order-delivery-details
);
COMMENT ON TABLE shop.orders IS
    'Orders. Je t''aime / JewelryODM: delivery details only while needed (rule order-delivery-details); 247CadControl §7: 7-year financial records (rule orders-financial-records)';
CREATE INDEX orders_placed_at_idx ON shop.orders (placed_at);
CREATE INDEX orders_delivered_at_idx ON shop.orders (delivered_at);
CREATE INDEX orders_customer_id_idx ON shop.orders (customer_id);

-- 3,000 orders over the last nine years; a few are disputed.
INSERT INTO shop.orders
    (id, order_no, customer_id, status, placed_at, delivered_at,
     ship_name, ship_address, ship_phone, contact_email, total)
SELECT g,
       'JT-' || to_char(placed, 'YYYY') || '-' || lpad(g::text, 6, '0'),
       cust,
       status,
       placed,
       CASE WHEN status IN ('delivered', 'returned', 'disputed')
            THEN placed + (2 + pg_temp.u('deliv', g) * 12) * interval '1 day' END,
       pg_temp.first_name(cust) || ' ' || pg_temp.last_name(cust),
       pg_temp.address(cust + CASE WHEN g % 7 = 0 THEN 5000 ELSE 0 END),
       pg_temp.phone(cust),
       pg_temp.email(pg_temp.first_name(cust), pg_temp.last_name(cust), cust),
       round((45 + pg_temp.u('total', g) ^ 3 * 14000)::numeric, 2)
FROM generate_series(1, 3000) AS g,
     LATERAL (SELECT 1 + floor(pg_temp.u('ocust', g) * 1200)::int AS cust,
                     now() - (0.2 + pg_temp.u('placed', g) * 3285) * interval '1 day' AS placed) AS p,
     LATERAL (SELECT CASE
                       WHEN now() - placed < interval '3 days' THEN
                            CASE WHEN pg_temp.u('st', g) < 0.5 THEN 'processing' ELSE 'dispatched' END
                       WHEN pg_temp.u('st', g) < 0.03 THEN 'disputed'
                       WHEN pg_temp.u('st', g) < 0.08 THEN 'cancelled'
                       WHEN pg_temp.u('st', g) < 0.12 THEN 'returned'
                       ELSE 'delivered'
                     END AS status) AS s;

-- retentiond has been running for a while: an earlier run de-identified the
-- delivery details of orders delivered more than 27 months ago and set the
-- marker, so only the last few months' backlog is left to do.
UPDATE shop.orders
   SET ship_name = '[redacted]',
       ship_address = '[redacted]',
       ship_phone = NULL,
       contact_email = '***@' || split_part(contact_email, '@', 2),
       delivery_deidentified_at = delivered_at + interval '2 years 1 day'
 WHERE delivered_at < now() - interval '27 months';


-- ===========================================================================
-- shop.order_items
-- No rule of its own: items go with their order (ON DELETE CASCADE), which
-- `retentiond check` names. The engraving text is personal data too.
-- ===========================================================================
CREATE TABLE shop.order_items (
    id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    order_id    bigint NOT NULL REFERENCES shop.orders (id) ON DELETE CASCADE,
    design_id   bigint REFERENCES shop.cad_designs (id) ON DELETE SET NULL,
    sku         text NOT NULL,
    description text NOT NULL,
    quantity    integer NOT NULL CHECK (quantity > 0),
    unit_price  numeric(12, 2) NOT NULL,
    engraving   text
);
COMMENT ON TABLE shop.order_items IS
    'Order lines; removed with their order (ON DELETE CASCADE), no rule of their own';
CREATE INDEX order_items_order_id_idx ON shop.order_items (order_id);
CREATE INDEX order_items_design_id_idx ON shop.order_items (design_id);

-- One to three lines per order; bespoke pieces point at their CAD design.
INSERT INTO shop.order_items (order_id, design_id, sku, description, quantity, unit_price, engraving)
SELECT o.id,
       CASE WHEN pg_temp.u('bespoke', o.id * 10 + n) < 0.15
            THEN 1 + floor(pg_temp.u('idesign', o.id * 10 + n) * 600)::int END,
       'SKU-' || upper(substr(md5('sku' || (o.id * 10 + n)), 1, 6)),
       pg_temp.pick('{"Solitaire ring","Diamond stud earrings","Tennis bracelet","Sapphire pendant","Gold chain","Wedding band","Cufflinks","Ring resizing","Jewellery cleaning"}', 'item', o.id * 10 + n),
       1 + floor(pg_temp.u('qty', o.id * 10 + n) * 2)::int,
       round((25 + pg_temp.u('price', o.id * 10 + n) ^ 3 * 6000)::numeric, 2),
       CASE WHEN pg_temp.u('engr', o.id * 10 + n) < 0.2
            THEN pg_temp.pick('{"Forever yours","Always & forever",Infinity,"Love you to the moon"}', 'etext', o.id * 10 + n)
                 || ', ' || pg_temp.first_name(o.customer_id + 3) END
FROM shop.orders AS o,
     generate_series(1, 1 + floor(pg_temp.u('lines', o.id) * 3)::int) AS n
ORDER BY o.id, n;

-- ===========================================================================
-- billing.invoices
-- Financial records: 247CadControl §7, "Comply with legal obligations
-- (typically 7 years for financial records)" and "Resolve disputes". A
-- disputed invoice is kept past 7 years (the rule's where); a legal hold
-- (retentiond hold add customer:ID) keeps everything of one customer.
-- Kept on erasure too: the legal duty outlives the request.
-- Rule: invoices-financial-records.
-- ===========================================================================
CREATE TABLE billing.invoices (
    id              bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    invoice_no      text NOT NULL UNIQUE,
    order_id        bigint NOT NULL REFERENCES shop.orders (id),
    customer_id     bigint NOT NULL REFERENCES shop.customers (id),
    issued_at       timestamptz NOT NULL,
    billing_name    text NOT NULL,
    billing_address text NOT NULL,
    vat_number      text,
    net             numeric(12, 2) NOT NULL,
    vat             numeric(12, 2) NOT NULL,
    total           numeric(12, 2) NOT NULL,
    status          text NOT NULL CHECK (status IN ('paid', 'refunded', 'disputed', 'written_off')),
    dispute_note    text
);
COMMENT ON TABLE billing.invoices IS
    '247CadControl §7: financial records, typically 7 years; disputed ones are kept (rule invoices-financial-records)';
CREATE INDEX invoices_issued_at_idx ON billing.invoices (issued_at);
CREATE INDEX invoices_order_id_idx ON billing.invoices (order_id);
CREATE INDEX invoices_customer_id_idx ON billing.invoices (customer_id);

-- One invoice per order that was not cancelled.
INSERT INTO billing.invoices
    (invoice_no, order_id, customer_id, issued_at, billing_name, billing_address,
     vat_number, net, vat, total, status, dispute_note)
SELECT 'INV-' || to_char(o.placed_at, 'YYYY') || '-' || lpad(o.id::text, 6, '0'),
       o.id,
       o.customer_id,
       o.placed_at + interval '10 minutes',
       pg_temp.first_name(o.customer_id) || ' ' || pg_temp.last_name(o.customer_id),
       pg_temp.address(o.customer_id),
       CASE WHEN c.company_name IS NOT NULL
            THEN 'GB' || lpad((100000000 + c.id * 7919 % 899999999)::text, 9, '0') END,
       round(o.total / 1.2, 2),
       o.total - round(o.total / 1.2, 2),
       o.total,
       CASE o.status WHEN 'disputed' THEN 'disputed'
                     WHEN 'returned' THEN 'refunded'
                     ELSE 'paid' END,
       CASE WHEN o.status = 'disputed'
            THEN pg_temp.pick('{"chargeback: item not received","customer claims stone not as described","small-claims court case pending"}', 'dispute', o.id) END
FROM shop.orders AS o
JOIN shop.customers AS c ON c.id = o.customer_id
WHERE o.status <> 'cancelled'
ORDER BY o.id;

-- ===========================================================================
-- billing.payment_cards
-- Je t'aime: "we do not keep this information, these are only used to take
-- any payments and refunds and also to prevent any fraudulent activities".
-- The payment provider's token and the card's brand, last four digits and
-- expiry: deleted soon after the last transaction, unless the card is under
-- fraud review ("prevention of fraud", Je t'aime "Keeping your information").
-- Rule: payment-cards.
-- ===========================================================================
CREATE TABLE billing.payment_cards (
    id               bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id      bigint NOT NULL REFERENCES shop.customers (id),
    psp_token        text NOT NULL UNIQUE,
    brand            text NOT NULL,
    last4            char(4) NOT NULL,
    exp_month        smallint NOT NULL CHECK (exp_month BETWEEN 1 AND 12),
    exp_year         smallint NOT NULL,
    cardholder_name  text NOT NULL,
    billing_postcode text,
    created_at       timestamptz NOT NULL,
    last_used_at     timestamptz NOT NULL,  -- last payment or refund
    fraud_review     boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE billing.payment_cards IS
    'Je t''aime: card details only to take payments and refunds and to prevent fraud (rule payment-cards)';
CREATE INDEX payment_cards_last_used_at_idx ON billing.payment_cards (last_used_at);
CREATE INDEX payment_cards_customer_id_idx ON billing.payment_cards (customer_id);

-- 900 cards last used over the last 200 days; a few are under fraud review.
INSERT INTO billing.payment_cards
    (customer_id, psp_token, brand, last4, exp_month, exp_year, cardholder_name,
     billing_postcode, created_at, last_used_at, fraud_review)
SELECT cust,
       'tok_' || substr(md5('tok' || g), 1, 24),
       pg_temp.pick('{Visa,Mastercard,Amex,Maestro}', 'brand', g),
       lpad((floor(pg_temp.u('last4', g) * 10000))::int::text, 4, '0'),
       1 + g % 12,
       (extract(year FROM now())::int + (g % 5) - 1)::smallint,
       upper(pg_temp.first_name(cust) || ' ' || pg_temp.last_name(cust)),
       split_part(split_part(pg_temp.address(cust), ', ', 2), ' ', -2) || ' ' || split_part(pg_temp.address(cust), ' ', -1),
       used - (pg_temp.u('cardage', g) * 400) * interval '1 day',
       used,
       pg_temp.u('fraud', g) < 0.02
FROM generate_series(1, 900) AS g,
     LATERAL (SELECT 1 + floor(pg_temp.u('ccust', g) * 1200)::int AS cust,
                     now() - (pg_temp.u('used', g) * 200) * interval '1 day' AS used) AS c
ORDER BY g;

-- ===========================================================================
-- crm.contact_history
-- Correspondence, calls and chats. Je t'aime: "We may also randomly store
-- your contact history with us ... over the phone, an email or chat on our
-- social media platforms ... to enhance our customer service"; 247CadControl
-- §2.1 "Records of correspondence between you and our team".
-- Rule: contact-history.
-- Deliberately no index on occurred_at: `retentiond check` warns about it.
-- ===========================================================================
CREATE TABLE crm.contact_history (
    id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES shop.customers (id),
    channel     text NOT NULL CHECK (channel IN ('phone', 'email', 'chat', 'social', 'letter')),
    direction   text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    occurred_at timestamptz NOT NULL,
    staff       text NOT NULL,
    summary     text NOT NULL,
    body        text
);
COMMENT ON TABLE crm.contact_history IS
    'Je t''aime / 247CadControl: contact history and correspondence (rule contact-history); no index on occurred_at on purpose';
CREATE INDEX contact_history_customer_id_idx ON crm.contact_history (customer_id);

-- 3,000 contacts over the last three years.
INSERT INTO crm.contact_history (customer_id, channel, direction, occurred_at, staff, summary, body)
SELECT cust,
       pg_temp.pick('{phone,email,email,chat,social,letter}', 'chan', g),
       CASE WHEN pg_temp.u('dir', g) < 0.6 THEN 'inbound' ELSE 'outbound' END,
       now() - (pg_temp.u('contact', g) * 1095) * interval '1 day',
       pg_temp.pick('{Sarah,Tom,Anika,Marcus,Helen}', 'staff', g),
       pg_temp.pick('{"Asked about ring sizing","Delivery date query","Requested a quote for a bespoke design","Complaint about late delivery","Asked for a valuation certificate","Changed delivery address","Thanked us for the service"}', 'summ', g),
       'Hello, this is ' || pg_temp.first_name(cust) || ' ' || pg_temp.last_name(cust)
           || ', you can reach me on ' || pg_temp.phone(cust) || '.'
FROM generate_series(1, 3000) AS g,
     LATERAL (SELECT 1 + floor(pg_temp.u('hcust', g) * 1200)::int AS cust) AS c
ORDER BY g;

-- ===========================================================================
-- crm.support_tickets
-- Je t'aime "Keeping your information": "for how long it is needed to assist
-- you with any support you have contacted us about". Once a ticket is
-- resolved, its text and contact address are de-identified after a while;
-- the ticket itself stays for statistics. resolved_at NULL: still open.
-- Rule: support-tickets.
-- ===========================================================================
CREATE TABLE crm.support_tickets (
    id            bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id   bigint NOT NULL REFERENCES shop.customers (id),
    contact_email text NOT NULL,
    subject       text NOT NULL,
    body          text NOT NULL,
    category      text NOT NULL,
    opened_at     timestamptz NOT NULL,
    resolved_at   timestamptz          -- NULL: open
);
COMMENT ON TABLE crm.support_tickets IS
    'Je t''aime: support requests, kept while needed to assist you (rule support-tickets)';
CREATE INDEX support_tickets_resolved_at_idx ON crm.support_tickets (resolved_at);
CREATE INDEX support_tickets_customer_id_idx ON crm.support_tickets (customer_id);

-- 800 tickets opened over the last ten months; about one in ten still open.
INSERT INTO crm.support_tickets (customer_id, contact_email, subject, body, category, opened_at, resolved_at)
SELECT cust,
       pg_temp.email(pg_temp.first_name(cust), pg_temp.last_name(cust), cust),
       subj,
       'Dear team, ' || lower(subj) || '. My order number is JT-' || (1 + g % 3000)
           || '. Please call me on ' || pg_temp.phone(cust) || '. Regards, '
           || pg_temp.first_name(cust) || ' ' || pg_temp.last_name(cust),
       pg_temp.pick('{delivery,sizing,repair,returns,valuation,account}', 'cat', g),
       opened,
       CASE WHEN pg_temp.u('open', g) < 0.1 THEN NULL
            ELSE opened + (0.1 + pg_temp.u('took', g) * 20) * interval '1 day' END
FROM generate_series(1, 800) AS g,
     LATERAL (SELECT 1 + floor(pg_temp.u('tcust', g) * 1200)::int AS cust,
                     now() - (pg_temp.u('opened', g) * 300) * interval '1 day' AS opened,
                     pg_temp.pick('{"My ring needs resizing","Where is my parcel","Clasp broken on bracelet","Return request","Insurance valuation needed","Please update my address"}', 'tsubj', g) AS subj) AS c
ORDER BY g;

-- ===========================================================================
-- crm.survey_entries
-- Je t'aime: "We may also keep your responses to any of our surveys,
-- competitions and promotions ... so we can run the survey, competition or
-- promotion effectively". Kept for a while after the campaign ends (winners
-- checked, prizes delivered), then deleted. campaign_ends_at NULL: an
-- open-ended survey. Entrants need not be customers.
-- Rule: survey-competition-entries.
-- ===========================================================================
CREATE TABLE crm.survey_entries (
    id               bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id      bigint REFERENCES shop.customers (id),  -- NULL: not a customer
    campaign         text NOT NULL,
    campaign_ends_at timestamptz,     -- NULL: open-ended
    entrant_name     text NOT NULL,
    entrant_email    text NOT NULL,
    answers          jsonb NOT NULL,
    submitted_at     timestamptz NOT NULL
);
COMMENT ON TABLE crm.survey_entries IS
    'Je t''aime: survey, competition and promotion entries (rule survey-competition-entries)';
CREATE INDEX survey_entries_campaign_ends_at_idx ON crm.survey_entries (campaign_ends_at);
CREATE INDEX survey_entries_customer_id_idx ON crm.survey_entries (customer_id);

-- Eight campaigns: three ended more than six months ago, four ended
-- recently or are still running, one is open-ended; 1,600 entries.
INSERT INTO crm.survey_entries
    (customer_id, campaign, campaign_ends_at, entrant_name, entrant_email, answers, submitted_at)
SELECT CASE WHEN pg_temp.u('iscust', g) < 0.7 THEN 1 + floor(pg_temp.u('scust', g) * 1200)::int END,
       k.campaign,
       k.ends,
       pg_temp.first_name(g + 300) || ' ' || pg_temp.last_name(g + 300),
       pg_temp.email(pg_temp.first_name(g + 300), pg_temp.last_name(g + 300), g + 300),
       jsonb_build_object(
           'q1_satisfaction', 1 + floor(pg_temp.u('q1', g) * 5)::int,
           'q2_favourite', pg_temp.pick('{rings,earrings,necklaces,bracelets}', 'q2', g),
           'tiebreaker', 'Because ' || pg_temp.pick('{"diamonds are forever","my partner deserves it","I love sparkle"}', 'tb', g)),
       coalesce(k.ends, now()) - (1 + pg_temp.u('sub', g) * 40) * interval '1 day'
FROM generate_series(1, 1600) AS g,
     LATERAL (SELECT (ARRAY['Spring sparkle competition', 'Valentine''s prize draw',
                            'Customer satisfaction survey', 'Win a diamond pendant',
                            'Christmas gift survey', 'Summer engagement promotion',
                            'Bespoke design feedback', 'Ring-size survey'])[1 + g % 8] AS campaign,
                     (ARRAY[now() - interval '14 months', now() - interval '10 months',
                            now() - interval '4 months', now() - interval '8 months',
                            now() - interval '3 weeks', now() + interval '1 month',
                            now() + interval '3 months', NULL])[1 + g % 8] AS ends) AS k
ORDER BY g;

-- ===========================================================================
-- crm.marketing_consents
-- Consent to marketing, and its withdrawal. Every policy gives the right to
-- withdraw: 7 Diamonds ("you may change your mind at any time"), JewelryODM
-- §5.2 (unsubscribe), 7Dxperts ("Opt Out"; "You are able to remove your
-- consent at any time"), Je t'aime ("The right to withdraw yourself from
-- receiving any marketing messages"), 247CadControl §8 ("Withdraw
-- Consent"). After a withdrawal the e-mail address is kept only as an HMAC
-- (a suppression list: the shop can still check "has this address opted
-- out?" without keeping the address).
-- Rule: marketing-consent-withdrawn.
-- ===========================================================================
CREATE TABLE crm.marketing_consents (
    id              bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id     bigint NOT NULL REFERENCES shop.customers (id),
    email           text NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('email', 'sms', 'post')),
    consent_text    text NOT NULL,
    given_at        timestamptz NOT NULL,
    given_ip        inet,
    withdrawn_at    timestamptz,       -- NULL: consent stands
    deidentified_at timestamptz        -- marker: set by retentiond when done
);
COMMENT ON TABLE crm.marketing_consents IS
    'All five policies: marketing consent can be withdrawn at any time (rule marketing-consent-withdrawn)';
CREATE INDEX marketing_consents_withdrawn_at_idx ON crm.marketing_consents (withdrawn_at);
CREATE INDEX marketing_consents_customer_id_idx ON crm.marketing_consents (customer_id);

-- Two in three customers opted in; a third of those withdrew later.
INSERT INTO crm.marketing_consents
    (customer_id, email, channel, consent_text, given_at, given_ip, withdrawn_at)
SELECT c.id,
       pg_temp.email(pg_temp.first_name(c.id), pg_temp.last_name(c.id), c.id),
       pg_temp.pick('{email,email,email,sms,post}', 'mchan', c.id),
       'Yes, send me news about new collections, events and offers.',
       c.created_at + interval '5 minutes',
       pg_temp.ip('consent', c.id),
       CASE WHEN pg_temp.u('withdrew', c.id) < 0.33
            THEN c.created_at + (now() - c.created_at) * pg_temp.u('wat', c.id) END
FROM shop.customers AS c
WHERE pg_temp.u('optin', c.id) < 0.66
  AND c.deidentified_at IS NULL
ORDER BY c.id;

-- ===========================================================================
-- web.analytics_events (partitioned by month on occurred_at)
-- Page views and clicks from log files, cookies and tracking: IP address,
-- browser, ISP, pages, referrer, clicks, location, device. 7Dxperts "Log
-- Files" (used "for aggregate use"; Hotjar stores IPs "only in anonymized
-- form"), 247CadControl §2.2, JewelryODM §1, Je t'aime "Cookies", 7 Diamonds
-- "COOKIES". IP addresses are truncated and user agents dropped after a
-- week (rule web-analytics-anonymise, marker anonymised_at); whole months
-- are dropped after 13 months (rule web-analytics-expiry, partition drop).
-- A real system creates next month's partition ahead of time (cron,
-- pg_partman); the demo makes 24 months back and 3 ahead.
-- ===========================================================================
CREATE TABLE web.analytics_events (
    id          bigint NOT NULL,
    occurred_at timestamptz NOT NULL,
    customer_id bigint,              -- NULL: not signed in
    session_id  text NOT NULL,
    ip          inet,
    user_agent  text,
    isp         text,
    country     char(2),
    event       text NOT NULL CHECK (event IN ('pageview', 'click')),
    page        text NOT NULL,
    referrer    text,
    screen      text,
    anonymised_at timestamptz        -- marker: set by retentiond when done
) PARTITION BY RANGE (occurred_at);
COMMENT ON TABLE web.analytics_events IS
    'Web analytics / log-file events, monthly partitions (rules web-analytics-anonymise, web-analytics-expiry)';

DO $$
DECLARE
    first_month date := date_trunc('month', now() - interval '24 months')::date;
    m date;
BEGIN
    FOR i IN 0 .. 27 LOOP
        m := first_month + make_interval(months => i);
        EXECUTE format(
            'CREATE TABLE web.%I PARTITION OF web.analytics_events FOR VALUES FROM (%L) TO (%L)',
            'analytics_events_' || to_char(m, 'YYYY_MM'),
            m::timestamptz, (m + interval '1 month')::timestamptz);
    END LOOP;
END
$$;

CREATE INDEX analytics_events_occurred_at_idx ON web.analytics_events (occurred_at);
CREATE INDEX analytics_events_customer_id_idx ON web.analytics_events (customer_id);

-- 5,000 events over the last 23 months, more of them recent.
INSERT INTO web.analytics_events
    (id, occurred_at, customer_id, session_id, ip, user_agent, isp, country, event, page, referrer, screen)
SELECT g,
       now() - (pg_temp.u('when', g) ^ 2 * 700 + 0.01) * interval '1 day',
       CASE WHEN pg_temp.u('signedin', g) < 0.3 THEN 1 + floor(pg_temp.u('wcust', g) * 1200)::int END,
       substr(md5('sess' || (g / 6)), 1, 16),
       pg_temp.ip('web', g / 6),
       pg_temp.user_agent(g / 6),
       pg_temp.pick('{BT,Sky,"Virgin Media",TalkTalk,Vodafone,EE}', 'isp', g / 6),
       pg_temp.pick('{GB,GB,GB,GB,IE,FR,US,DE}', 'cc', g / 6),
       CASE WHEN g % 3 = 0 THEN 'click' ELSE 'pageview' END,
       pg_temp.pick('{/,/engagement-rings,/wedding-bands,/bespoke,/bespoke/cad-service,/earrings,/basket,/checkout,/account,/contact}', 'page', g),
       CASE WHEN g % 6 = 0
            THEN pg_temp.pick('{https://www.example.com/search,https://social.example.net/post,https://blog.example.org/ring-guide}', 'ref', g) END,
       pg_temp.pick('{1920x1080,1440x900,390x844,412x915,2560x1440}', 'scr', g / 6)
FROM generate_series(1, 5000) AS g
ORDER BY g;

-- An earlier run anonymised everything older than ten days.
UPDATE web.analytics_events
   SET ip = set_masklen(ip, CASE family(ip) WHEN 4 THEN 24 ELSE 48 END)::cidr::inet,
       user_agent = NULL,
       anonymised_at = occurred_at + interval '7 days 1 hour'
 WHERE occurred_at < now() - interval '10 days';

-- ===========================================================================
-- api.requests
-- 7Dxperts "How we store your personal information": "For any API request
-- we store: a request body, headers, IP address, and time ... kept only as
-- long as it is necessary to create the accumulated usage figures no longer
-- than 24 hours". Plain table with an index on requested_at.
-- Rule: api-request-logs.
-- ===========================================================================
CREATE TABLE api.requests (
    id              bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id     bigint NOT NULL,  -- owner of the API key; no FK: a log outlives nothing
    api_key_id      text NOT NULL,
    method          text NOT NULL,
    path            text NOT NULL,
    status          smallint NOT NULL,
    request_headers jsonb NOT NULL,
    request_body    text,
    ip              inet NOT NULL,
    requested_at    timestamptz NOT NULL,
    duration_ms     integer NOT NULL
);
COMMENT ON TABLE api.requests IS
    '7Dxperts: API request body, headers, IP address and time, no longer than 24 hours (rule api-request-logs)';
CREATE INDEX requests_requested_at_idx ON api.requests (requested_at);
CREATE INDEX requests_customer_id_idx ON api.requests (customer_id);

-- One request every 30 seconds for the last 36 hours: 4,320 rows, a third
-- of them past 24 hours.
INSERT INTO api.requests
    (customer_id, api_key_id, method, path, status, request_headers, request_body, ip, requested_at, duration_ms)
SELECT cust,
       'key_' || substr(md5('key' || cust), 1, 12),
       CASE WHEN g % 4 = 0 THEN 'POST' ELSE 'GET' END,
       CASE WHEN g % 4 = 0 THEN '/v1/quotes'
            ELSE pg_temp.pick('{/v1/products,/v1/orders,/v1/designs,/v1/stock}', 'path', g) END,
       pg_temp.pick('{200,200,200,200,200,201,400,404,429}', 'status', g)::smallint,
       jsonb_build_object(
           'user-agent', 'shop-integration/2.1',
           'authorization', 'Bearer [hidden]',
           'x-forwarded-for', host(pg_temp.ip('api', cust))),
       CASE WHEN g % 4 = 0
            THEN jsonb_build_object('customer_name', pg_temp.first_name(cust) || ' ' || pg_temp.last_name(cust),
                                    'email', pg_temp.email(pg_temp.first_name(cust), pg_temp.last_name(cust), cust),
                                    'design', 'design-' || lpad((1 + g % 600)::text, 5, '0'))::text END,
       pg_temp.ip('api', cust),
       now() - (g - 0.5) * interval '30 seconds',
       5 + floor(pg_temp.u('ms', g) * 400)::int
FROM generate_series(1, 4320) AS g,
     LATERAL (SELECT 1 + floor(pg_temp.u('acust', g) * 40)::int * 30 AS cust) AS c
ORDER BY g DESC;

-- ===========================================================================
-- api.usage_daily
-- The "accumulated usage figures" 7Dxperts keeps: counts per API key and
-- day, no personal data, so no rule.
-- ===========================================================================
CREATE TABLE api.usage_daily (
    customer_id bigint NOT NULL,
    day         date NOT NULL,
    requests    integer NOT NULL,
    errors      integer NOT NULL,
    PRIMARY KEY (customer_id, day)
);
COMMENT ON TABLE api.usage_daily IS
    '7Dxperts: accumulated usage figures; aggregated counts, no personal data, no rule';

INSERT INTO api.usage_daily (customer_id, day, requests, errors)
SELECT customer_id, requested_at::date, count(*), count(*) FILTER (WHERE status >= 400)
FROM api.requests
GROUP BY 1, 2
ORDER BY 1, 2;

-- ===========================================================================
-- api.saas_end_users
-- 7Dxperts "Customer using SAAS Service": end users of a customer's app
-- (names, e-mail, phone, IP, device) are "stored on our systems so long as
-- you are using our SAAS services". service_ended_at is set when the
-- customer's subscription ends; NULL while it runs.
-- Rule: saas-end-user-data.
-- ===========================================================================
CREATE TABLE api.saas_end_users (
    id               bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    customer_id      bigint NOT NULL REFERENCES shop.customers (id),  -- the SaaS customer
    end_user_name    text NOT NULL,
    end_user_email   text NOT NULL,
    end_user_phone   text,
    ip               inet,
    device           text,
    created_at       timestamptz NOT NULL,
    service_ended_at timestamptz        -- NULL: subscription running
);
COMMENT ON TABLE api.saas_end_users IS
    '7Dxperts: SaaS end-user data, kept while the customer uses the service (rule saas-end-user-data)';
CREATE INDEX saas_end_users_service_ended_at_idx ON api.saas_end_users (service_ended_at);
CREATE INDEX saas_end_users_customer_id_idx ON api.saas_end_users (customer_id);

-- 25 SaaS customers with 24 end users each; eight subscriptions have ended,
-- from a week to a year ago.
INSERT INTO api.saas_end_users
    (customer_id, end_user_name, end_user_email, end_user_phone, ip, device, created_at, service_ended_at)
SELECT tenant,
       pg_temp.first_name(g + 900) || ' ' || pg_temp.last_name(g + 900),
       pg_temp.email(pg_temp.first_name(g + 900), pg_temp.last_name(g + 900), g + 900),
       pg_temp.phone(g + 900),
       pg_temp.ip('saas', g),
       pg_temp.pick('{"iPhone 15","Pixel 8","Galaxy S23","Windows laptop",MacBook}', 'dev', g),
       now() - (400 + pg_temp.u('screated', g) * 700) * interval '1 day',
       CASE (tenant / 40) % 3
            WHEN 0 THEN now() - (7 + ((tenant / 40) % 8) * 50) * interval '1 day'
       END
FROM generate_series(1, 600) AS g,
     LATERAL (SELECT 40 * (1 + (g - 1) / 24) AS tenant) AS t
ORDER BY g;

-- ===========================================================================
-- shop.newsletter_signups
-- The sign-up form of the newsletter, added by a developer after the rules
-- were written: e-mail addresses and the IP address of each sign-up, with
-- no customer_id and no rule. `retentiond coverage` finds it (SPEC §9);
-- scripts/demo shows the finding and the rule that would cover it.
-- Rule: none (on purpose).
-- ===========================================================================
CREATE TABLE shop.newsletter_signups (
    id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    email       text NOT NULL,
    signup_ip   inet,
    source      text NOT NULL,      -- which page the form was on
    signed_up_at timestamptz NOT NULL
);
CREATE INDEX newsletter_signups_signed_up_at_idx ON shop.newsletter_signups (signed_up_at);

INSERT INTO shop.newsletter_signups (email, signup_ip, source, signed_up_at)
SELECT pg_temp.email(pg_temp.first_name(g + 1500), pg_temp.last_name(g + 1500), g + 1500),
       pg_temp.ip('news', g),
       pg_temp.pick('{home,blog,checkout,footer}', 'src', g),
       now() - (pg_temp.u('news', g) * 900) * interval '1 day'
FROM generate_series(1, 300) AS g;

-- ===========================================================================
-- Keep the identity sequences ahead of the explicit ids, so that rows added
-- by hand during a demo get fresh ids; then give the planner statistics so
-- that `retentiond plan` estimates are sensible straight away.
-- ===========================================================================
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['shop.customers', 'shop.cad_designs', 'shop.orders', 'shop.order_items',
                             'billing.invoices', 'billing.payment_cards', 'crm.contact_history',
                             'crm.support_tickets', 'crm.survey_entries', 'crm.marketing_consents',
                             'api.requests', 'api.saas_end_users', 'shop.newsletter_signups']
    LOOP
        EXECUTE format('SELECT setval(pg_get_serial_sequence(%L, ''id''), (SELECT max(id) FROM %s))', t, t);
    END LOOP;
END
$$;

COMMIT;

ANALYZE shop.customers, shop.cad_designs, shop.orders, shop.order_items,
        billing.invoices, billing.payment_cards,
        crm.contact_history, crm.support_tickets, crm.survey_entries, crm.marketing_consents,
        web.analytics_events, api.requests, api.usage_daily, api.saas_end_users,
        shop.newsletter_signups;
