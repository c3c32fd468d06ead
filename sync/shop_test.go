package twinsync

// shopSchema is the small shop both the dump and the logical tests start from:
// FKs, a UNIQUE citext email (an extension), jsonb, arrays, an enum, a
// generated and an identity column, a free-standing sequence and a trigger.
// Each test adds the tables its own mode must get right.
const shopSchema = `
CREATE EXTENSION citext;
CREATE TYPE mood AS ENUM ('happy', 'sad', 'meh');
CREATE TABLE customers (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	email citext NOT NULL UNIQUE,
	full_name text NOT NULL,
	phone text,
	profile jsonb,
	tags text[],
	mood mood,
	name_upper text GENERATED ALWAYS AS (upper(full_name)) STORED,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE addresses (
	id serial PRIMARY KEY,
	customer_id bigint NOT NULL REFERENCES customers (id),
	street text, city text, postcode text
);
CREATE SEQUENCE order_no_seq START 1000;
CREATE TABLE orders (
	id bigserial PRIMARY KEY,
	customer_id bigint NOT NULL REFERENCES customers (id),
	order_no bigint NOT NULL DEFAULT nextval('order_no_seq') UNIQUE,
	total numeric(12,2) NOT NULL,
	ratio double precision,
	placed_at timestamptz NOT NULL,
	status text NOT NULL,
	updated_at timestamptz
);
CREATE TABLE payments (
	id bigserial PRIMARY KEY,
	order_id bigint NOT NULL REFERENCES orders (id),
	card_number text NOT NULL,
	amount numeric(12,2),
	meta jsonb
);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.updated_at = now(); RETURN NEW; END$$;
CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch();
`

// shopFill fills shopSchema's tables; it is a fmt format whose %[1]d is the
// number of customers. Values include tabs, newlines, backslashes and unicode.
const shopFill = `
INSERT INTO customers (email, full_name, phone, profile, tags, mood)
SELECT 'user' || i || '@example.com',
	'Name ' || i || CASE i %% 7 WHEN 0 THEN E'\ttab' WHEN 1 THEN E'\nnewline' WHEN 2 THEN E'back\\slash' WHEN 3 THEN ' Zoë 東京' ELSE '' END,
	CASE WHEN i %% 5 = 0 THEN NULL ELSE '+1 555 ' || lpad(i::text, 7, '0') END,
	jsonb_build_object('dob', '1980-01-01'::date + i, 'notes', E'line1\nline2\t"q"'),
	ARRAY['a' || i, NULL, E'x\\y'],
	(ARRAY['happy', 'sad', 'meh'])[1 + i %% 3]::mood
FROM generate_series(1, %[1]d) i;
INSERT INTO addresses (customer_id, street, city, postcode)
SELECT 1 + i %% %[1]d, i || ' Main St', 'City ' || i %% 50, lpad(i::text, 5, '0') FROM generate_series(1, %[1]d * 3 / 2) i;
INSERT INTO orders (customer_id, total, ratio, placed_at, status)
SELECT 1 + i %% %[1]d, (i * 1.37)::numeric(12,2), 1.0 / (i + 3), '2024-01-01'::timestamptz + i * interval '37 minutes', 'paid'
FROM generate_series(1, %[1]d * 5) i;
INSERT INTO payments (order_id, card_number, amount, meta)
SELECT i, '4111 1111 ' || lpad(i::text, 8, '0'), (i * 1.37)::numeric(12,2), '{"via": "card"}' FROM generate_series(1, %[1]d * 5) i;
`
