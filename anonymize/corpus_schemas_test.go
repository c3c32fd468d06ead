package anonymize

import (
	"fmt"
	"strings"
)

// Corpus schemas. The held-out split (heldOut: true) was chosen before any
// tuning and is never used for it: the measuring test reports its figures
// separately and prints no per-column misses for it.

type cs struct {
	name, typ, kind string
	g               gen
	nullPct         int
}

type fkSpec struct {
	cols    []string
	ref     string
	refCols []string
}

type ts struct {
	name string
	cols []cs
	uniq [][]string
	fks  []fkSpec
}

type ss struct {
	name    string
	heldOut bool
	tables  []ts
}

const (
	kE    = KindEmail
	kP    = KindPhone
	kN    = KindName
	kU    = KindUsername
	kA    = KindAddress
	kIP   = KindIP
	kMAC  = KindMAC
	kDev  = KindDeviceID
	kCard = KindCard
	kIBAN = KindIBAN
	kNID  = KindNationalID
	kDOB  = KindBirthDate
	kFT   = KindFreeText
	kSec  = KindSecret
	kLoc  = KindLocation
	kVeh  = KindVehicle
	kDoc  = KindDocument
)

func c(name, typ, kind string, g gen) cs { return cs{name: name, typ: typ, kind: kind, g: g} }
func cn(name, typ, kind string, g gen, nullPct int) cs {
	return cs{name: name, typ: typ, kind: kind, g: g, nullPct: nullPct}
}

var idCol = c("id", "bigint", "", nil)

func ref(col, table string) fkSpec {
	return fkSpec{cols: []string{col}, ref: table, refCols: []string{"id"}}
}

var created = c("created_at", "timestamptz", "", nil)
var updated = c("updated_at", "timestamptz", "", nil)

func corpusSchemas() []ss {
	return []ss{
		{name: "commerce", tables: []ts{
			{name: "customers", cols: []cs{idCol, c("email", "citext", kE, personalEmail), c("first_name", "text", kN, func(g *G) string { return g.f.FirstName() }),
				c("last_name", "text", kN, func(g *G) string { return g.f.LastName() }), cn("phone", "text", kP, phoneUS, 20), cn("date_of_birth", "date", kDOB, dob, 30),
				c("marketing_opt_in", "boolean", "", nil), c("loyalty_points", "integer", "", nil), c("preferred_locale", "text", "", locale), created},
				uniq: [][]string{{"email"}}},
			{name: "addresses", cols: []cs{idCol, c("customer_id", "bigint", "", nil), c("line1", "text", kA, street), cn("line2", "text", kA, address2, 50),
				c("city", "text", kA, city), c("region", "text", kA, func(g *G) string { return g.f.State() }), c("postal_code", "varchar(10)", kA, zipUS),
				c("country_code", "char(2)", "", countryCode), c("is_default", "boolean", "", nil)},
				fks: []fkSpec{ref("customer_id", "customers")}},
			{name: "products", cols: []cs{idCol, c("sku", "text", "", sku), c("name", "text", "", product), c("description", "text", "", productDesc),
				c("price", "numeric(10,2)", "", money), c("currency", "char(3)", "", currency), c("image", "bytea", "", pngG), c("color", "text", "", color),
				c("weight_grams", "integer", "", nil), c("slug", "text", "", slug)}, uniq: [][]string{{"sku"}}},
			{name: "orders", cols: []cs{idCol, c("customer_id", "bigint", "", nil), c("order_number", "text", "", orderNo), c("status", "text", "", status("new", "paid", "shipped", "cancelled")),
				c("total", "numeric(12,2)", "", money), c("ship_name", "text", kN, fullName), c("ship_address", "text", kA, street), c("ship_city", "text", kA, city),
				c("ship_zip", "text", kA, zipUS), c("billing_email", "text", kE, personalEmail), c("client_ip", "inet", kIP, ipv4), c("gift_message", "text", kFT, noteAbout), created},
				fks: []fkSpec{ref("customer_id", "customers")}},
			{name: "payments", cols: []cs{idCol, c("order_id", "bigint", "", nil), c("card_number", "text", kCard, card), c("card_holder_name", "text", kN, fullName),
				c("card_brand", "text", "", status("visa", "mastercard", "amex")), c("card_last4", "char(4)", "", func(g *G) string { return digits(g, 4) }),
				c("amount", "numeric(12,2)", "", money), c("provider_ref", "text", "", func(g *G) string { return "ch_" + b64url(g, 24) }), c("paid_at", "timestamptz", "", nil)},
				fks: []fkSpec{ref("order_id", "orders")}},
			{name: "reviews", cols: []cs{idCol, c("product_id", "bigint", "", nil), c("customer_id", "bigint", "", nil), c("rating", "smallint", "", nil),
				c("title", "text", "", func(g *G) string { return g.f.Sentence(3) }), c("body", "text", kFT, review), c("reviewer_nickname", "text", kU, username), created},
				fks: []fkSpec{ref("product_id", "products"), ref("customer_id", "customers")}},
			{name: "carts", cols: []cs{idCol, c("session_token", "text", kSec, func(g *G) string { return hexN(g, 64) }), c("items", "jsonb", "", jsonObj("sku", gen(sku), "qty", jnum(func(g *G) string { return "2" }))),
				c("coupon_code", "text", "", func(g *G) string { return shape(g, "SAVE##") }), c("abandoned", "boolean", "", nil), updated}},
		}},
		{name: "saas", tables: []ts{
			{name: "accounts", cols: []cs{idCol, c("display_name", "text", kN, fullName), c("email", "text", kE, personalEmail), c("username", "text", kU, username),
				c("password_hash", "text", kSec, bcrypt), c("avatar", "bytea", kDoc, jpegG), c("timezone", "text", "", tz), c("plan", "text", "", status("free", "pro", "team")),
				c("last_login_ip", "inet", kIP, ipv4), c("last_login_at", "timestamptz", "", nil), c("email_verified", "boolean", "", nil), created},
				uniq: [][]string{{"email"}, {"username"}}},
			{name: "organizations", cols: []cs{idCol, c("name", "text", "", company), c("slug", "text", "", slug), c("billing_email", "text", "", roleEmailGen),
				c("vat_number", "text", "", func(g *G) string { return "DE" + digits(g, 9) }), c("seats", "integer", "", nil), c("website", "text", "", url), created}},
			{name: "memberships", cols: []cs{idCol, c("account_id", "bigint", "", nil), c("organization_id", "bigint", "", nil), c("role", "text", "", status("owner", "admin", "member")),
				c("invited_by_email", "text", kE, personalEmail), c("invite_token", "uuid", kSec, uuid)},
				fks: []fkSpec{ref("account_id", "accounts"), ref("organization_id", "organizations")}},
			{name: "api_keys", cols: []cs{idCol, c("account_id", "bigint", "", nil), c("api_key", "uuid", kSec, uuid), c("label", "text", "", status("ci", "laptop", "zapier")),
				c("prefix", "text", "", func(g *G) string { return b64url(g, 6) }), c("scopes", "text[]", "", pgArray(3, status("read", "write", "admin"))), c("last_used_ip", "inet", kIP, ipv4), created},
				fks: []fkSpec{ref("account_id", "accounts")}},
			{name: "webhooks", cols: []cs{idCol, c("organization_id", "bigint", "", nil), c("url", "text", "", url), c("signing_secret", "text", kSec, func(g *G) string { return "whsec_" + b64url(g, 32) }),
				c("events", "text[]", "", pgArray(3, status("invoice.paid", "user.created", "job.failed"))), c("active", "boolean", "", nil)},
				fks: []fkSpec{ref("organization_id", "organizations")}},
			{name: "audit_log", cols: []cs{idCol, c("actor_id", "bigint", "", nil), c("action", "text", "", status("login", "update", "delete", "export")),
				c("ip_address", "text", kIP, ipv4), c("user_agent", "text", "", userAgentless), c("details", "jsonb", kFT, jsonObj("changed_by", gen(personalEmail), "field", gen(status("plan", "seats")))), created},
				fks: []fkSpec{ref("actor_id", "accounts")}},
			{name: "feature_flags", cols: []cs{idCol, c("key", "text", "", status("new_editor", "dark_mode", "beta_export")), c("enabled", "boolean", "", nil), c("rollout_pct", "integer", "", nil), c("description", "text", "", sentence)}},
		}},
		{name: "healthcare", tables: []ts{
			{name: "patients", cols: []cs{idCol, c("mrn", "text", kNID, mrn), c("given_name", "text", kN, func(g *G) string { return g.f.FirstName() }),
				c("family_name", "text", kN, func(g *G) string { return g.f.LastName() }), c("birth_date", "date", kDOB, dob), c("sex", "char(1)", "", status("F", "M", "X")),
				c("nhs_number", "text", kNID, nhs), c("ssn", "text", kNID, ssn), c("phone_mobile", "text", kP, phoneUS), c("email", "text", kE, personalEmail),
				c("address", "text", kA, street), c("city", "text", kA, city), c("zip", "text", kA, zipUS), c("photo", "bytea", kDoc, jpegG), created}},
			{name: "emergency_contacts", cols: []cs{idCol, c("patient_id", "bigint", "", nil), c("name", "text", kN, fullName), c("relationship", "text", "", status("spouse", "parent", "sibling", "friend")),
				c("phone", "text", kP, phoneUS)}, fks: []fkSpec{ref("patient_id", "patients")}},
			{name: "encounters", cols: []cs{idCol, c("patient_id", "bigint", "", nil), c("practitioner_id", "bigint", "", nil), c("admitted_at", "timestamptz", "", nil),
				c("diagnosis_code", "text", "", func(g *G) string { return shape(g, "?##.#") }), c("clinical_notes", "text", kFT, noteAbout), c("ward", "text", "", status("A1", "B2", "ICU")),
				c("discharge_summary", "bytea", kDoc, pdfG)},
				fks: []fkSpec{ref("patient_id", "patients"), ref("practitioner_id", "practitioners")}},
			{name: "practitioners", cols: []cs{idCol, c("full_name", "text", kN, func(g *G) string { return "Dr. " + fullName(g) }), c("npi", "text", "", func(g *G) string { return digits(g, 10) }),
				c("specialty", "text", "", status("cardiology", "oncology", "pediatrics")), c("pager", "text", kP, func(g *G) string { return shape(g, "(###) ###-####") })}},
			{name: "imaging_studies", cols: []cs{idCol, c("encounter_id", "bigint", "", nil), c("modality", "text", "", status("CT", "MR", "XR")), c("dicom_file", "bytea", kDoc, dicomG),
				c("body_part", "text", "", status("chest", "knee", "head")), c("performed_at", "timestamptz", "", nil)},
				fks: []fkSpec{ref("encounter_id", "encounters")}},
			{name: "lab_results", cols: []cs{idCol, c("encounter_id", "bigint", "", nil), c("loinc", "text", "", func(g *G) string { return shape(g, "####-#") }), c("value_numeric", "numeric", "", money),
				c("unit", "text", "", status("mg/dL", "mmol/L", "%")), c("flag", "text", "", status("H", "L", "N"))},
				fks: []fkSpec{ref("encounter_id", "encounters")}},
		}},
		{name: "travel", tables: []ts{
			{name: "passengers", cols: []cs{c("passenger_id", "integer", "", nil), c("survived", "smallint", "", nil), c("pclass", "smallint", "", nil), c("name", "text", kN, titanic),
				c("sex", "text", "", status("male", "female")), c("age", "numeric", "", func(g *G) string { return intS(g)[:2] }), c("ticket", "text", "", func(g *G) string { return shape(g, pick(g, "A/5 #####", "PC #####", "######")) }),
				c("fare", "numeric", "", money), c("cabin", "text", "", func(g *G) string { return shape(g, "?##") }), c("embarked", "char(1)", "", status("S", "C", "Q"))}},
			{name: "bookings", cols: []cs{idCol, c("record_locator", "text", "", func(g *G) string { return letters(g, 6) }), c("booker_email", "text", kE, personalEmail),
				c("booker_phone", "text", kP, phoneIntl), c("total_fare", "numeric(10,2)", "", money), c("currency", "char(3)", "", currency), created}},
			{name: "travelers", cols: []cs{idCol, c("booking_id", "bigint", "", nil), c("title", "text", "", status("MR", "MRS", "MS")), c("first_name", "text", kN, func(g *G) string { return g.f.FirstName() }),
				c("surname", "text", kN, func(g *G) string { return g.f.LastName() }), c("dob", "date", kDOB, dob), c("passport_number", "text", kNID, passport),
				c("passport_expiry", "date", "", nil), c("nationality", "char(2)", "", countryCode), c("frequent_flyer_no", "text", "", func(g *G) string { return shape(g, "??#########") }),
				c("seat", "text", "", func(g *G) string { return g.f.AirlineSeat() }), c("meal_preference", "text", "", status("VGML", "KSML", "none"))},
				fks: []fkSpec{ref("booking_id", "bookings")}},
			{name: "flights", cols: []cs{idCol, c("flight_number", "text", "", func(g *G) string { return g.f.AirlineFlightNumber() }), c("origin", "char(3)", "", func(g *G) string { return g.f.AirlineAirportIATA() }),
				c("destination", "char(3)", "", func(g *G) string { return g.f.AirlineAirportIATA() }), c("departs_at", "timestamptz", "", nil), c("aircraft", "text", "", func(g *G) string { return g.f.AirlineAirplane() })}},
			{name: "airports", cols: []cs{c("iata", "char(3)", "", func(g *G) string { return g.f.AirlineAirportIATA() }), c("name", "text", "", func(g *G) string { return g.f.AirlineAirport() }),
				c("city", "text", "", city), c("country", "text", "", country), c("latitude", "double precision", "", nil), c("longitude", "double precision", "", nil)}},
			{name: "loyalty_members", cols: []cs{idCol, c("member_number", "text", "", func(g *G) string { return digits(g, 10) }), c("full_name", "text", kN, fullName),
				c("home_airport", "char(3)", "", func(g *G) string { return g.f.AirlineAirportIATA() }), c("tier", "text", "", status("silver", "gold")), c("mailing_address", "text", kA, street),
				c("mailing_city", "text", kA, city), c("mailing_postcode", "text", kA, postUK), c("signature", "bytea", kDoc, pngG)}},
		}},
		{name: "personal", tables: []ts{
			{name: "mitarbeiter", cols: []cs{idCol, c("personalnummer", "text", "", func(g *G) string { return "P" + digits(g, 5) }), c("vorname", "text", kN, from(deFirst...)),
				c("nachname", "text", kN, from(deLast...)), c("geburtsdatum", "date", kDOB, dob), c("strasse", "text", kA, func(g *G) string { return pick(g, deStr...) }),
				c("hausnummer", "text", kA, func(g *G) string { return intS(g)[:2] }), c("plz", "char(5)", kA, func(g *G) string { return digits(g, 5) }), c("ort", "text", kA, from(deCity...)),
				c("telefonnummer", "text", kP, phoneDE), c("email_privat", "text", kE, foreignEmail(deFirst, deLast, "gmx.de")), c("steuer_id", "text", kNID, steuerID),
				c("sozialversicherungsnummer", "text", kNID, func(g *G) string { return shape(g, "## ###### ? ###") }), c("iban", "text", kIBAN, iban), c("gehalt", "numeric(10,2)", "", money),
				c("abteilung", "text", "", status("Vertrieb", "Einkauf", "IT", "Personal")), c("eintrittsdatum", "date", "", nil), c("lichtbild", "bytea", kDoc, jpegG)}},
			{name: "abteilungen", cols: []cs{idCol, c("name", "text", "", status("Vertrieb", "Einkauf", "IT", "Personal", "Buchhaltung")), c("kostenstelle", "text", "", func(g *G) string { return digits(g, 4) }),
				c("standort", "text", "", from(deCity...))}},
			{name: "urlaubsantraege", cols: []cs{idCol, c("mitarbeiter_id", "bigint", "", nil), c("von", "date", "", nil), c("bis", "date", "", nil), c("grund", "text", kFT, func(g *G) string {
				return pick(g, "Hochzeit von ", "Beerdigung von ", "Umzug mit ") + pick(g, deFirst...) + " " + pick(g, deLast...)
			}), c("genehmigt", "boolean", "", nil), c("bemerkung", "text", kFT, func(g *G) string { return "Vertretung durch " + pick(g, deFirst...) + " " + pick(g, deLast...) })},
				fks: []fkSpec{ref("mitarbeiter_id", "mitarbeiter")}},
			{name: "dienstwagen", cols: []cs{idCol, c("mitarbeiter_id", "bigint", "", nil), c("kennzeichen", "text", kVeh, plateDE), c("fahrzeug_modell", "text", "", func(g *G) string { return g.f.CarModel() }),
				c("leasing_ende", "date", "", nil), c("fin", "text", kVeh, vin)}, fks: []fkSpec{ref("mitarbeiter_id", "mitarbeiter")}},
		}},
		{name: "crm_fr", tables: []ts{
			{name: "clients", cols: []cs{idCol, c("prenom", "text", kN, from(frFirst...)), c("nom", "text", kN, from(frLast...)), c("courriel", "text", kE, foreignEmail(frFirst, frLast, "orange.fr")),
				c("telephone_portable", "text", kP, phoneFR), c("adresse", "text", kA, func(g *G) string { return intS(g)[:2] + " " + pick(g, frStr...) }), c("code_postal", "char(5)", kA, func(g *G) string { return digits(g, 5) }),
				c("ville", "text", kA, from(frCity...)), c("date_naissance", "date", kDOB, dob), c("numero_securite_sociale", "text", kNID, nir), c("segment", "text", "", status("PME", "Grand compte", "Particulier")),
				c("commentaire", "text", kFT, func(g *G) string {
					return "Rappeler " + pick(g, frFirst...) + " " + pick(g, frLast...) + " au " + phoneFR(g)
				})}},
			{name: "opportunites", cols: []cs{idCol, c("client_id", "bigint", "", nil), c("montant", "numeric(12,2)", "", money), c("etape", "text", "", status("prospect", "negociation", "gagne", "perdu")),
				c("date_cloture", "date", "", nil), c("libelle", "text", "", func(g *G) string { return "Projet " + g.f.BuzzWord() })}, fks: []fkSpec{ref("client_id", "clients")}},
			{name: "societes", cols: []cs{idCol, c("raison_sociale", "text", "", company), c("siret", "text", "", func(g *G) string { return digits(g, 14) }), c("ville", "text", "", from(frCity...)),
				c("secteur", "text", "", status("industrie", "services", "commerce"))}},
			{name: "contacts_societe", cols: []cs{idCol, c("societe_id", "bigint", "", nil), c("prenom", "text", kN, from(frFirst...)), c("nom", "text", kN, from(frLast...)),
				c("fonction", "text", "", status("Directeur", "Acheteur", "Comptable")), c("courriel", "text", kE, foreignEmail(frFirst, frLast, "entreprise.fr")), c("ligne_directe", "text", kP, phoneFR)},
				fks: []fkSpec{ref("societe_id", "societes")}},
		}},
		{name: "logistics", tables: []ts{
			{name: "drivers", cols: []cs{idCol, c("name", "text", kN, fullName), c("license_number", "text", kNID, driversLicense), c("mobile", "text", kP, phoneUS),
				c("home_district", "text", kA, district), c("hired_on", "date", "", nil), c("rating", "numeric(3,2)", "", func(g *G) string { return "4.5" })}},
			{name: "vehicles", cols: []cs{idCol, c("driver_id", "bigint", "", nil), c("plate", "text", kVeh, plateUK), c("vin", "text", kVeh, vin), c("make", "text", "", func(g *G) string { return g.f.CarMaker() }),
				c("model", "text", "", func(g *G) string { return g.f.CarModel() }), c("owner_name", "text", kN, fullName), c("capacity_kg", "integer", "", nil)},
				fks: []fkSpec{ref("driver_id", "drivers")}},
			{name: "warehouses", cols: []cs{idCol, c("code", "text", "", func(g *G) string { return letters(g, 3) + digits(g, 2) }), c("name", "text", "", func(g *G) string { return city(g) + " DC" }),
				c("address", "text", "", street), c("city", "text", "", city), c("postcode", "text", "", zipUS), c("phone", "text", "", phoneUS), c("manager_id", "bigint", "", nil)},
				fks: []fkSpec{ref("manager_id", "drivers")}},
			{name: "shipments", cols: []cs{idCol, c("tracking_number", "text", "", tracking), c("recipient_name", "text", kN, fullName), c("recipient_phone", "text", kP, phoneIntl),
				c("delivery_address", "text", kA, street), c("address2", "text", kA, address2), c("district", "text", kA, district), c("city", "text", kA, city),
				c("postal_code", "text", kA, postUK), c("weight_kg", "numeric(8,2)", "", money), c("delivery_instructions", "text", kFT, func(g *G) string {
					return pick(g, "Leave with neighbour ", "Ring twice, ask for ", "Call ") + fullName(g)
				}), c("proof_of_delivery", "bytea", kDoc, jpegG), c("status", "text", "", status("in_transit", "delivered")), c("warehouse_id", "bigint", "", nil)},
				fks: []fkSpec{ref("warehouse_id", "warehouses")}},
			{name: "delivery_events", cols: []cs{idCol, c("shipment_id", "bigint", "", nil), c("driver_id", "bigint", "", nil), c("lat", "double precision", kLoc, nil), c("lng", "double precision", kLoc, nil),
				c("event", "text", "", status("picked_up", "out_for_delivery", "delivered")), c("signed_by", "text", kN, fullName), c("recorded_at", "timestamptz", "", nil)},
				fks: []fkSpec{ref("shipment_id", "shipments"), ref("driver_id", "drivers")}},
		}},
		{name: "support", tables: []ts{
			{name: "tickets", cols: []cs{idCol, c("requester_email", "text", kE, personalEmail), c("subject", "text", "", func(g *G) string { return g.f.Sentence(5) }),
				c("body", "text", kFT, ticketBody), c("priority", "text", "", status("low", "normal", "high")), c("status", "text", "", status("open", "pending", "solved")),
				c("assignee", "text", kN, fullName), c("tags", "text[]", "", pgArray(3, status("billing", "bug", "refund"))), c("attachment", "bytea", kDoc, pngG), c("channel", "text", "", status("email", "chat", "phone")), created}},
			{name: "ticket_comments", cols: []cs{idCol, c("ticket_id", "bigint", "", nil), c("author_name", "text", kN, fullName), c("message", "text", kFT, ticketBody),
				c("public", "boolean", "", nil), created}, fks: []fkSpec{ref("ticket_id", "tickets")}},
			{name: "agents", cols: []cs{idCol, c("handle", "text", kU, username), c("full_name", "text", kN, fullName), c("team", "text", "", status("tier1", "tier2")), c("extension", "text", "", func(g *G) string { return digits(g, 4) })}},
			{name: "macros", cols: []cs{idCol, c("title", "text", "", func(g *G) string { return g.f.Sentence(3) }), c("content", "text", "", sentence), c("usage_count", "integer", "", nil)}},
			{name: "satisfaction_surveys", cols: []cs{idCol, c("ticket_id", "bigint", "", nil), c("score", "smallint", "", nil), c("comment", "text", kFT, review)},
				fks: []fkSpec{ref("ticket_id", "tickets")}},
		}},
		{name: "social", tables: []ts{
			{name: "users", cols: []cs{idCol, c("handle", "text", kU, username), c("display_name", "text", kN, fullName), c("bio", "text", kFT, func(g *G) string { return g.f.JobTitle() + " at " + g.f.Company() + ". " + g.f.Hobby() + " fan." }),
				c("email", "text", kE, personalEmail), c("phone", "text", kP, phoneIntl), c("birthday", "date", kDOB, dob), c("profile_photo", "bytea", kDoc, jpegG), c("follower_count", "integer", "", nil), created}},
			{name: "posts", cols: []cs{idCol, c("user_id", "bigint", "", nil), c("text", "text", kFT, func(g *G) string { return g.f.Sentence(8) + " with " + fullName(g) + " #" + g.f.Noun() }),
				c("media", "bytea[]", kDoc, pgArray(2, jpegG)), c("geo", "point", kLoc, nil), c("visibility", "text", "", status("public", "friends")), c("like_count", "integer", "", nil), created},
				fks: []fkSpec{ref("user_id", "users")}},
			{name: "direct_messages", cols: []cs{idCol, c("sender_id", "bigint", "", nil), c("recipient_id", "bigint", "", nil), c("content", "text", kFT, noteAbout), c("read_at", "timestamptz", "", nil)},
				fks: []fkSpec{ref("sender_id", "users"), ref("recipient_id", "users")}},
			{name: "check_ins", cols: []cs{idCol, c("user_id", "bigint", "", nil), c("place_name", "text", "", func(g *G) string { return g.f.Company() + " Cafe" }), c("location", "text", kLoc, geoTxt),
				c("checked_in_at", "timestamptz", "", nil)}, fks: []fkSpec{ref("user_id", "users")}},
			{name: "hashtags", cols: []cs{idCol, c("tag", "text", "", func(g *G) string { return g.f.Noun() }), c("post_count", "integer", "", nil)}},
			{name: "user_devices", cols: []cs{idCol, c("user_id", "bigint", "", nil), c("push_token", "text", kDev, func(g *G) string { return b64url(g, 22) + ":APA91b" + b64url(g, 60) }),
				c("platform", "text", "", status("ios", "android")), c("app_version", "text", "", func(g *G) string { return g.f.AppVersion() })},
				fks: []fkSpec{ref("user_id", "users")}},
		}},
		{name: "finance", tables: []ts{
			{name: "account_holders", cols: []cs{idCol, c("legal_name", "text", kN, fullName), c("tax_id", "text", kNID, ssn), c("dob", "date", kDOB, dob), c("residential_address", "text", kA, street),
				c("city", "text", kA, city), c("state", "char(2)", kA, func(g *G) string { return g.f.StateAbr() }), c("zip", "text", kA, zipUS), c("kyc_document", "bytea", kDoc, pdfG),
				c("risk_score", "integer", "", nil), c("pep", "boolean", "", nil)}},
			{name: "bank_accounts", cols: []cs{idCol, c("holder_id", "bigint", "", nil), c("iban", "text", kIBAN, iban), c("bic", "text", "", func(g *G) string { return letters(g, 6) + "2X" }),
				c("account_type", "text", "", status("checking", "savings")), c("balance", "numeric(14,2)", "", money), c("currency", "char(3)", "", currency), c("opened_on", "date", "", nil)},
				fks: []fkSpec{ref("holder_id", "account_holders")}},
			{name: "cards", cols: []cs{idCol, c("account_id", "bigint", "", nil), c("pan", "text", kCard, card), c("cvv", "char(3)", kCard, func(g *G) string { return digits(g, 3) }),
				c("expiry", "char(5)", "", func(g *G) string { return shape(g, "##/##") }), c("embossed_name", "text", kN, func(g *G) string { return stringsUpper(fullName(g)) }), c("status", "text", "", status("active", "blocked"))},
				fks: []fkSpec{ref("account_id", "bank_accounts")}},
			{name: "transactions", cols: []cs{idCol, c("account_id", "bigint", "", nil), c("amount", "numeric(14,2)", "", money), c("merchant_name", "text", "", company),
				c("merchant_category", "text", "", status("5411", "5812", "4111")), c("counterparty_iban", "text", kIBAN, iban), c("reference", "text", "", func(g *G) string { return "INV " + digits(g, 6) }),
				c("booked_at", "timestamptz", "", nil)}, fks: []fkSpec{ref("account_id", "bank_accounts")}},
			{name: "exchange_rates", cols: []cs{c("base", "char(3)", "", currency), c("quote", "char(3)", "", currency), c("rate", "numeric(12,6)", "", money), c("as_of", "date", "", nil)}},
			{name: "loan_applications", cols: []cs{idCol, c("applicant_name", "text", kN, fullName), c("applicant_email", "text", kE, personalEmail), c("annual_income", "numeric(12,2)", "", money),
				c("employer", "text", "", company), c("ssn_last4", "char(4)", kNID, func(g *G) string { return digits(g, 4) }), c("decision", "text", "", status("approved", "declined")),
				c("underwriter_notes", "text", kFT, noteAbout)}},
		}},
		{name: "clinica", tables: []ts{
			{name: "pacientes", cols: []cs{idCol, c("nombre", "text", kN, from(esFirst...)), c("apellidos", "text", kN, from(esLast...)), c("dni", "text", kNID, dni),
				c("fecha_nacimiento", "date", kDOB, dob), c("direccion", "text", kA, func(g *G) string { return pick(g, esStr...) + " " + intS(g)[:2] }), c("ciudad", "text", kA, from(esCity...)),
				c("codigo_postal", "char(5)", kA, func(g *G) string { return digits(g, 5) }), c("telefono", "text", kP, phoneES), c("correo_electronico", "text", kE, foreignEmail(esFirst, esLast, "telefonica.es")),
				c("numero_seguridad_social", "text", kNID, func(g *G) string { return digits(g, 12) }), c("alergias", "text", kFT, from("penicilina", "ninguna", "polen, gatos")), c("aseguradora", "text", "", status("Sanitas", "Adeslas", "DKV"))}},
			{name: "citas", cols: []cs{idCol, c("paciente_id", "bigint", "", nil), c("medico_id", "bigint", "", nil), c("fecha", "timestamptz", "", nil), c("motivo", "text", kFT, func(g *G) string {
				return "Revisión, acompañada por " + pick(g, esFirst...) + " " + pick(g, esLast...)
			}),
				c("sala", "text", "", status("1A", "2B"))}, fks: []fkSpec{ref("paciente_id", "pacientes"), ref("medico_id", "medicos")}},
			{name: "medicos", cols: []cs{idCol, c("nombre_completo", "text", kN, foreignName(esFirst, esLast)), c("especialidad", "text", "", status("cardiología", "pediatría")), c("colegiado", "text", "", func(g *G) string { return digits(g, 9) })}},
			{name: "facturas", cols: []cs{idCol, c("paciente_id", "bigint", "", nil), c("importe", "numeric(10,2)", "", money), c("iva", "numeric(5,2)", "", money), c("pagada", "boolean", "", nil), c("pdf", "bytea", kDoc, pdfG)},
				fks: []fkSpec{ref("paciente_id", "pacientes")}},
		}},
		{name: "loja", tables: []ts{
			{name: "clientes", cols: []cs{idCol, c("nome", "text", kN, from(ptFirst...)), c("sobrenome", "text", kN, from(ptLast...)), c("cpf", "text", kNID, cpf),
				c("data_nascimento", "date", kDOB, dob), c("email", "text", kE, foreignEmail(ptFirst, ptLast, "uol.com.br")), c("celular", "text", kP, phoneBR), c("cep", "text", kA, cepBR),
				c("logradouro", "text", kA, func(g *G) string { return pick(g, ptStr...) + ", " + intS(g)[:3] }), c("bairro", "text", kA, from("Vila Madalena", "Pinheiros", "Lapa", "Copacabana", "Savassi")),
				c("cidade", "text", kA, from(ptCity...)), c("uf", "char(2)", kA, from("SP", "RJ", "MG", "BA")), c("senha", "text", kSec, pbkdf2)}},
			{name: "pedidos", cols: []cs{idCol, c("cliente_id", "bigint", "", nil), c("valor_total", "numeric(10,2)", "", money), c("situacao", "text", "", status("pago", "enviado", "cancelado")),
				c("endereco_entrega", "jsonb", kA, jsonObj("logradouro", gen(func(g *G) string { return pick(g, ptStr...) }), "cidade", gen(from(ptCity...)), "cep", gen(cepBR))),
				c("observacoes", "text", kFT, func(g *G) string {
					return "Entregar para " + pick(g, ptFirst...) + " " + pick(g, ptLast...) + " na portaria"
				})},
				fks: []fkSpec{ref("cliente_id", "clientes")}},
			{name: "produtos", cols: []cs{idCol, c("nome", "text", "", product), c("descricao", "text", "", productDesc), c("preco", "numeric(10,2)", "", money), c("estoque", "integer", "", nil), c("foto", "bytea", "", pngG)}},
		}},
		{name: "hospitality", tables: []ts{
			{name: "hotels", cols: []cs{idCol, c("name", "text", "", func(g *G) string { return g.f.Company() + " Hotel" }), c("street", "text", "", street), c("city", "text", "", city),
				c("phone", "text", "", phoneIntl), c("stars", "smallint", "", nil), c("email", "text", "", roleEmailGen)}},
			{name: "guests", cols: []cs{idCol, c("name", "text", kN, fullName), c("email", "text", kE, personalEmail), c("phone", "text", kP, phoneIntl), c("nationality", "text", "", country),
				c("id_document_type", "text", "", status("passport", "id_card")), c("id_document_number", "text", kNID, passport), c("id_scan", "bytea", kDoc, jpegG),
				c("home_address", "text", kA, street), c("vip", "boolean", "", nil)}},
			{name: "reservations", cols: []cs{idCol, c("hotel_id", "bigint", "", nil), c("guest_id", "bigint", "", nil), c("check_in", "date", "", nil), c("check_out", "date", "", nil),
				c("room_type", "text", "", status("double", "suite")), c("special_requests", "text", kFT, func(g *G) string { return "Late arrival, " + fullName(g) + " will collect the key" }),
				c("card_on_file", "text", kCard, card), c("rate", "numeric(8,2)", "", money), c("guest_names", "text[]", kN, pgArray(3, fullName))},
				fks: []fkSpec{ref("hotel_id", "hotels"), ref("guest_id", "guests")}},
			{name: "rooms", cols: []cs{idCol, c("hotel_id", "bigint", "", nil), c("number", "text", "", func(g *G) string { return digits(g, 3) }), c("floor", "smallint", "", nil), c("key_card_code", "text", kSec, func(g *G) string { return hexN(g, 32) })},
				fks: []fkSpec{ref("hotel_id", "hotels")}},
		}},
		{name: "identity", tables: []ts{
			{name: "credentials", cols: []cs{idCol, c("user_id", "bigint", "", nil), c("password_hash", "text", kSec, argon2), c("password_algo", "text", "", status("argon2id")),
				c("totp_secret", "text", kSec, totp), c("recovery_codes", "text[]", kSec, pgArray(4, func(g *G) string { return shape(g, "****-****") })), c("webauthn_public_key", "bytea", "", randB), c("totp_seed", "bytea", kSec, randB),
				c("encrypted_private_key", "bytea", kSec, randB), updated},
				fks: []fkSpec{ref("user_id", "users")}},
			{name: "users", cols: []cs{idCol, c("login", "text", kU, username), c("email", "text", kE, personalEmail), c("locale", "text", "", locale), c("mfa_enabled", "boolean", "", nil), created}},
			{name: "sessions", cols: []cs{c("id", "uuid", kSec, uuid), c("user_id", "bigint", "", nil), c("refresh_token", "text", kSec, func(g *G) string { return b64url(g, 43) }), c("ip", "inet", kIP, ipv6),
				c("user_agent", "text", "", userAgentless), c("expires_at", "timestamptz", "", nil)}, fks: []fkSpec{ref("user_id", "users")}},
			{name: "oauth_clients", cols: []cs{idCol, c("client_id", "text", "", func(g *G) string { return hexN(g, 24) }), c("client_secret", "text", kSec, func(g *G) string { return b64url(g, 40) }),
				c("redirect_uri", "text", "", url), c("name", "text", "", func(g *G) string { return g.f.AppName() })}},
			{name: "access_tokens", cols: []cs{idCol, c("token", "text", kSec, jwt), c("scopes", "text[]", "", pgArray(2, status("read", "write"))), c("issued_at", "timestamptz", "", nil)}},
			{name: "integrations", cols: []cs{idCol, c("provider", "text", "", status("github", "aws", "stripe")), c("config", "jsonb", kSec, jsonObj("access_key_id", gen(awsKey), "region", gen(status("eu-west-1", "us-east-1")))),
				c("github_token", "text", kSec, ghToken), c("stripe_key", "text", kSec, apiKey)}},
			{name: "password_resets", cols: []cs{idCol, c("user_id", "bigint", "", nil), c("reset_token", "text", kSec, func(g *G) string { return sha256h(g) }), c("requested_ip", "inet", kIP, ipv4), created},
				fks: []fkSpec{ref("user_id", "users")}},
		}},
		{name: "telemetry", tables: []ts{
			{name: "devices", cols: []cs{idCol, c("device_id", "uuid", kDev, uuid), c("advertising_id", "text", kDev, idfa), c("android_id", "text", kDev, androidID), c("imei", "text", kDev, imei),
				c("wifi_mac", "macaddr", kMAC, mac), c("bluetooth_address", "text", kMAC, mac), c("model", "text", "", status("Pixel 8", "iPhone 15", "Galaxy S23")), c("os_version", "text", "", func(g *G) string { return g.f.AppVersion() }),
				c("owner_user_id", "bigint", "", nil), c("registered_at", "timestamptz", "", nil)}},
			{name: "location_pings", cols: []cs{idCol, c("device_id", "bigint", "", nil), c("latitude", "double precision", kLoc, nil), c("longitude", "double precision", kLoc, nil),
				c("accuracy_m", "real", "", nil), c("coords", "text", kLoc, geoTxt), c("wifi_bssid", "text", kMAC, mac), c("recorded_at", "timestamptz", "", nil)},
				fks: []fkSpec{ref("device_id", "devices")}},
			{name: "app_events", cols: []cs{idCol, c("device_id", "bigint", "", nil), c("event_name", "text", "", status("app_open", "purchase", "share")), c("client_ip", "text", kIP, ipv4),
				c("properties", "jsonb", kFT, jsonObj("screen", gen(status("home", "cart")), "email_entered", gen(personalEmail))), c("build_sha", "text", "", gitSHA), c("occurred_at", "timestamptz", "", nil)},
				fks: []fkSpec{ref("device_id", "devices")}},
			{name: "crash_reports", cols: []cs{idCol, c("device_id", "bigint", "", nil), c("stack_trace", "text", "", func(g *G) string { return "panic: " + g.f.HackerPhrase() + "\n\tat main.go:" + intS(g)[:2] }),
				c("checksum", "text", "", sha256h), c("app_version", "text", "", func(g *G) string { return g.f.AppVersion() }), c("minidump", "bytea", "", protoB)},
				fks: []fkSpec{ref("device_id", "devices")}},
		}},
		{name: "reference", tables: []ts{
			{name: "countries", cols: []cs{c("code", "char(2)", "", countryCode), c("name", "text", "", country), c("phone_prefix", "text", "", func(g *G) string { return "+" + intS(g)[:2] }),
				c("currency", "char(3)", "", currency), c("capital", "text", "", city)}},
			{name: "cities", cols: []cs{idCol, c("name", "text", "", city), c("country_code", "char(2)", "", countryCode), c("population", "integer", "", nil), c("latitude", "double precision", "", nil),
				c("longitude", "double precision", "", nil), c("timezone", "text", "", tz)}},
			{name: "postal_codes", cols: []cs{c("postcode", "text", "", zipUS), c("city", "text", "", city), c("state", "text", "", func(g *G) string { return g.f.State() })}},
			{name: "currencies", cols: []cs{c("code", "char(3)", "", currency), c("name", "text", "", func(g *G) string { return g.f.CurrencyLong() }), c("symbol", "text", "", from("$", "€", "£"))}},
			{name: "companies", cols: []cs{idCol, c("name", "text", "", company), c("legal_form", "text", "", status("Inc", "GmbH", "SAS", "BV")), c("industry", "text", "", status("retail", "software", "logistics")),
				c("website", "text", "", url), c("headquarters_city", "text", "", city), c("founded_year", "smallint", "", nil), c("ticker", "text", "", func(g *G) string { return letters(g, 4) }),
				c("logo", "bytea", "", pngG)}},
			{name: "product_categories", cols: []cs{idCol, c("name", "text", "", func(g *G) string { return g.f.ProductCategory() }), c("parent_id", "bigint", "", nil), c("slug", "text", "", slug)}},
			{name: "holidays", cols: []cs{c("day", "date", "", nil), c("country_code", "char(2)", "", countryCode), c("name", "text", "", from("New Year", "Labour Day", "Christmas Day"))}},
			{name: "mime_types", cols: []cs{c("extension", "text", "", func(g *G) string { return g.f.FileExtension() }), c("mime", "text", "", mime)}},
		}},
		{name: "seed_demo", tables: []ts{
			{name: "demo_users", cols: []cs{idCol, c("email", "text", "", func(g *G) string { return "demo" + digits(g, 3) + "@example.com" }), c("name", "text", "", func(g *G) string { return "Test User " + digits(g, 3) }),
				c("phone", "text", "", func(g *G) string { return "+1 555-01" + digits(g, 2) }), c("role", "text", "", status("admin", "viewer"))}},
			{name: "fixtures", cols: []cs{idCol, c("contact_email", "text", "", func(g *G) string { return "qa+" + digits(g, 4) + "@test.example" }), c("label", "text", "", func(g *G) string { return "fixture-" + digits(g, 3) }),
				c("payload", "jsonb", "", jsonObj("kind", gen(status("order", "refund")), "amount", jnum(intS)))}},
			{name: "sample_orders", cols: []cs{idCol, c("customer_email", "text", "", func(g *G) string { return "jane.doe" + digits(g, 2) + "@example.org" }), c("total", "numeric(10,2)", "", money)}},
		}},
		// Second tuning round: written before running the detector on them.
		{name: "marketplace", tables: []ts{
			{name: "couriers", cols: []cs{idCol, c("firstName", "text", kN, func(g *G) string { return g.f.FirstName() }), c("lastName", "text", kN, func(g *G) string { return g.f.LastName() }),
				c("phoneNumber", "text", kP, phoneIntl), c("vehiclePlate", "text", kVeh, plateUK), c("bankIban", "text", kIBAN, iban), c("currentLat", "double precision", kLoc, nil),
				c("currentLng", "double precision", kLoc, nil), c("onboardedAt", "timestamptz", "", nil), c("isActive", "boolean", "", nil), c("selfieCheck", "bytea", kDoc, jpegG)}},
			{name: "merchants", cols: []cs{idCol, c("business_name", "text", "", company), c("support_email", "text", "", roleEmailGen), c("storefront_address", "text", "", street),
				c("storefront_city", "text", "", city), c("commission_pct", "numeric(5,2)", "", money), c("owner_full_name", "text", kN, fullName), c("owner_mobile", "text", kP, phoneUS), c("logo_png", "bytea", "", pngG)}},
			{name: "menu_items", cols: []cs{idCol, c("merchant_id", "bigint", "", nil), c("title", "text", "", func(g *G) string { return g.f.Dinner() }), c("price", "numeric(8,2)", "", money),
				c("allergens", "text[]", "", pgArray(2, status("gluten", "nuts", "dairy"))), c("photo", "bytea", "", jpegG)}, fks: []fkSpec{ref("merchant_id", "merchants")}},
			{name: "deliveries", cols: []cs{idCol, c("courier_id", "bigint", "", nil), c("merchant_id", "bigint", "", nil), c("dropoff_address", "text", kA, street), c("dropoff_unit", "text", kA, address2),
				c("dropoff_zip", "text", kA, zipUS), c("customer_first_name", "text", kN, func(g *G) string { return g.f.FirstName() }), c("customer_phone", "text", kP, phoneUS),
				c("tip", "numeric(6,2)", "", money), c("route_polyline", "text", kLoc, func(g *G) string { return b64url(g, 60) }), c("note_for_courier", "text", kFT, noteAbout), c("delivered_at", "timestamptz", "", nil)},
				fks: []fkSpec{ref("courier_id", "couriers"), ref("merchant_id", "merchants")}},
			{name: "payouts", cols: []cs{idCol, c("courier_id", "bigint", "", nil), c("amount", "numeric(10,2)", "", money), c("period", "text", "", func(g *G) string { return "2024-W" + digits(g, 2) }),
				c("statement", "bytea", kDoc, pdfG)}, fks: []fkSpec{ref("courier_id", "couriers")}},
		}},
		{name: "dating", tables: []ts{
			{name: "profiles", cols: []cs{idCol, c("nickname", "text", kU, username), c("real_name", "text", kN, fullName), c("birth_year", "smallint", kDOB, nil), c("gender", "text", "", status("f", "m", "nb")),
				c("about_me", "text", kFT, func(g *G) string {
					return "I'm " + g.f.FirstName() + ", " + g.f.Hobby() + " and " + g.f.Hobby() + ". Text me on " + phoneUS(g)
				}),
				c("email", "text", kE, personalEmail), c("home_geo", "point", kLoc, nil), c("verified_selfie", "bytea", kDoc, jpegG), c("last_seen_ip", "inet", kIP, ipv4), c("premium", "boolean", "", nil)}},
			{name: "photos", cols: []cs{idCol, c("profile_id", "bigint", "", nil), c("image_data", "bytea", kDoc, jpegG), c("caption", "text", kFT, func(g *G) string { return "Me and " + fullName(g) + " in " + city(g) }),
				c("position", "smallint", "", nil)}, fks: []fkSpec{ref("profile_id", "profiles")}},
			{name: "matches", cols: []cs{idCol, c("profile_a", "bigint", "", nil), c("profile_b", "bigint", "", nil), c("score", "real", "", nil), c("matched_at", "timestamptz", "", nil)},
				fks: []fkSpec{ref("profile_a", "profiles"), ref("profile_b", "profiles")}},
			{name: "chat_messages", cols: []cs{idCol, c("match_id", "bigint", "", nil), c("sender_profile_id", "bigint", "", nil), c("msg", "text", kFT, ticketBody), c("sent_at", "timestamptz", "", nil)},
				fks: []fkSpec{ref("match_id", "matches"), ref("sender_profile_id", "profiles")}},
			{name: "reports", cols: []cs{idCol, c("reporter_id", "bigint", "", nil), c("reported_id", "bigint", "", nil), c("reason_code", "text", "", status("spam", "abuse", "fake")),
				c("evidence_screenshot", "bytea", kDoc, pngG), c("moderator_note", "text", kFT, noteAbout)}, fks: []fkSpec{ref("reporter_id", "profiles"), ref("reported_id", "profiles")}},
		}},
		{name: "pharmacy", tables: []ts{
			{name: "customers", cols: []cs{idCol, c("name_first", "text", kN, func(g *G) string { return g.f.FirstName() }), c("name_last", "text", kN, func(g *G) string { return g.f.LastName() }),
				c("dob", "text", kDOB, dobUS), c("insurance_member_id", "text", kNID, func(g *G) string { return shape(g, "???#########") }), c("addr_street", "text", kA, street),
				c("addr_city", "text", kA, city), c("addr_state", "text", kA, func(g *G) string { return g.f.StateAbr() }), c("addr_zip", "text", kA, zipUS), c("contact_pref", "text", "", status("sms", "email", "none")),
				c("cell", "text", kP, phoneUS)}},
			{name: "prescriptions", cols: []cs{idCol, c("customer_id", "bigint", "", nil), c("drug_ndc", "text", "", func(g *G) string { return shape(g, "#####-####-##") }), c("drug_name", "text", "", from("Atorvastatin", "Metformin", "Lisinopril", "Amoxicillin")),
				c("sig", "text", "", from("1 tab PO daily", "2 tabs PO BID", "apply topically")), c("prescriber_name", "text", kN, func(g *G) string { return "Dr. " + g.f.LastName() }),
				c("prescriber_dea", "text", "", func(g *G) string { return letters(g, 2) + digits(g, 7) }), c("refills", "smallint", "", nil), c("scanned_rx", "bytea", kDoc, pdfG), c("filled_at", "timestamptz", "", nil)},
				fks: []fkSpec{ref("customer_id", "customers")}},
			{name: "inventory", cols: []cs{idCol, c("ndc", "text", "", func(g *G) string { return shape(g, "#####-####-##") }), c("lot", "text", "", func(g *G) string { return shape(g, "??####") }),
				c("expires_on", "date", "", nil), c("quantity", "integer", "", nil), c("supplier", "text", "", company)}},
			{name: "store_locations", cols: []cs{idCol, c("store_name", "text", "", func(g *G) string { return city(g) + " Pharmacy" }), c("street", "text", "", street), c("city", "text", "", city),
				c("zip", "text", "", zipUS), c("phone", "text", "", phoneUS), c("pharmacist_in_charge", "text", kN, fullName)}},
		}},
		{name: "events", tables: []ts{
			{name: "attendees", cols: []cs{idCol, c("full_name", "text", kN, fullName), c("company", "text", "", company), c("job_title", "text", "", jobTitle), c("work_email", "text", kE, personalEmail),
				c("badge_qr", "text", kSec, func(g *G) string { return b64url(g, 32) }), c("dietary_needs", "text", "", status("vegan", "none", "halal")), c("tshirt_size", "text", "", status("S", "M", "L")),
				c("linkedin_url", "text", kU, func(g *G) string {
					return "https://www.linkedin.com/in/" + strings.ToLower(g.f.FirstName()+"-"+g.f.LastName())
				})}},
			{name: "tickets", cols: []cs{idCol, c("attendee_id", "bigint", "", nil), c("ticket_code", "text", "", func(g *G) string { return shape(g, "EVT-????-####") }), c("price_paid", "numeric(8,2)", "", money),
				c("buyer_email", "text", kE, personalEmail), c("purchased_from_ip", "inet", kIP, ipv4)}, fks: []fkSpec{ref("attendee_id", "attendees")}},
			{name: "sessions", cols: []cs{c("id", "bigint", "", nil), c("title", "text", "", func(g *G) string { return g.f.BuzzWord() + " in practice" }), c("speaker", "text", kN, fullName),
				c("room", "text", "", status("Hall A", "Room 2")), c("abstract", "text", "", productDesc), c("starts_at", "timestamptz", "", nil)}},
			{name: "venues", cols: []cs{idCol, c("name", "text", "", func(g *G) string { return g.f.Company() + " Center" }), c("address", "text", "", street), c("city", "text", "", city), c("capacity", "integer", "", nil)}},
			{name: "check_ins", cols: []cs{idCol, c("ticket_id", "bigint", "", nil), c("scanned_at", "timestamptz", "", nil), c("gate", "text", "", status("N1", "S2")), c("scanner_device", "text", "", status("ipad-01", "ipad-02"))},
				fks: []fkSpec{ref("ticket_id", "tickets")}},
		}},
		{name: "permits", tables: []ts{
			{name: "applicants", cols: []cs{idCol, c("surname", "text", kN, func(g *G) string { return g.f.LastName() }), c("forenames", "text", kN, func(g *G) string { return g.f.FirstName() + " " + g.f.MiddleName() }),
				c("ni_number", "text", kNID, nino), c("date_of_birth", "date", kDOB, dob), c("correspondence_address", "text", kA, street), c("town", "text", kA, city),
				c("postcode", "text", kA, postUK), c("daytime_tel", "text", kP, phoneIntl), c("signature_img", "bytea", kDoc, pngG)}},
			{name: "applications", cols: []cs{idCol, c("applicant_id", "bigint", "", nil), c("reference", "text", "", func(g *G) string { return shape(g, "PA/####/####") }),
				c("site_address", "text", kA, street), c("proposal", "text", "", func(g *G) string { return "Single storey rear extension. " + g.f.Sentence(6) }),
				c("officer_comments", "text", kFT, noteAbout), c("decision", "text", "", status("granted", "refused")), c("plans_pdf", "bytea", kDoc, pdfG)},
				fks: []fkSpec{ref("applicant_id", "applicants")}},
			{name: "wards", cols: []cs{idCol, c("name", "text", "", district), c("councillor", "text", kN, fullName), c("population", "integer", "", nil)}},
			{name: "fees", cols: []cs{idCol, c("category", "text", "", status("householder", "commercial")), c("amount", "numeric(8,2)", "", money), c("valid_from", "date", "", nil)}},
		}},
		// Third tuning round: written before running the detector on them.
		{name: "gym", tables: []ts{
			{name: "members", cols: []cs{idCol, c("membership_no", "text", "", func(g *G) string { return "M" + digits(g, 6) }), c("forename", "text", kN, func(g *G) string { return g.f.FirstName() }),
				c("surname", "text", kN, func(g *G) string { return g.f.LastName() }), c("dob", "date", kDOB, dob), c("mobile_no", "text", kP, phoneIntl), c("e_mail", "text", kE, personalEmail),
				c("emergency_contact_name", "text", kN, fullName), c("emergency_contact_phone", "text", kP, phoneIntl), c("photo_id", "bytea", kDoc, jpegG),
				c("health_declaration", "text", kFT, from("knee surgery 2021, cleared by GP", "asthma", "none declared", "high blood pressure, on medication")), c("direct_debit_iban", "text", kIBAN, iban)}},
			{name: "workouts", cols: []cs{idCol, c("member_id", "bigint", "", nil), c("started_at", "timestamptz", "", nil), c("avg_heart_rate", "smallint", "", nil), c("calories", "integer", "", nil),
				c("gps_track", "jsonb", kLoc, func(g *G) string {
					return fmt.Sprintf(`[{"lat": %s, "lon": %s}, {"lat": %s, "lon": %s}]`, latG(g), lngG(g), latG(g), lngG(g))
				}),
				c("device_serial", "text", kDev, func(g *G) string { return strings.ToUpper(hexN(g, 16)) })}, fks: []fkSpec{ref("member_id", "members")}},
			{name: "classes", cols: []cs{idCol, c("name", "text", "", from("Spin 45", "Yoga Flow", "HIIT", "Pilates")), c("instructor", "text", kN, fullName), c("studio", "text", "", status("A", "B")), c("capacity", "smallint", "", nil)}},
			{name: "bookings", cols: []cs{idCol, c("class_id", "bigint", "", nil), c("member_id", "bigint", "", nil), c("attended", "boolean", "", nil), c("waitlist_position", "smallint", "", nil)},
				fks: []fkSpec{ref("class_id", "classes"), ref("member_id", "members")}},
			{name: "door_access", cols: []cs{idCol, c("member_id", "bigint", "", nil), c("rfid_uid", "text", kSec, func(g *G) string { return strings.ToUpper(hexN(g, 14)) }), c("door", "text", "", status("main", "pool")), c("at", "timestamptz", "", nil)},
				fks: []fkSpec{ref("member_id", "members")}},
		}},
		{name: "recruiting", tables: []ts{
			{name: "candidates", cols: []cs{idCol, c("name", "text", kN, fullName), c("email", "text", kE, personalEmail), c("phone", "text", kP, phoneUS), c("linkedin", "text", kU, func(g *G) string { return "linkedin.com/in/" + g.f.Username() }),
				c("current_employer", "text", "", company), c("expected_salary", "numeric(10,2)", "", money), c("resume_pdf", "bytea", kDoc, pdfG), c("cover_letter", "text", kFT, func(g *G) string { return "Dear hiring manager, my name is " + fullName(g) + ". " + g.f.Sentence(12) }),
				c("source", "text", "", status("referral", "linkedin", "careers page")), c("referred_by", "text", kN, fullName), c("cc_emails", "text[]", kE, pgArray(3, personalEmail))}},
			{name: "jobs", cols: []cs{idCol, c("title", "text", "", jobTitle), c("department", "text", "", status("Engineering", "Sales")), c("location", "text", "", city), c("description", "text", "", productDesc), c("salary_band", "text", "", status("L3", "L4", "L5"))}},
			{name: "interviews", cols: []cs{idCol, c("candidate_id", "bigint", "", nil), c("job_id", "bigint", "", nil), c("interviewer_emails", "text[]", kE, pgArray(2, personalEmail)), c("scheduled_for", "timestamptz", "", nil),
				c("feedback", "text", kFT, noteAbout), c("panel", "jsonb", kN, func(g *G) string {
					return fmt.Sprintf(`[{"name": %q, "email": %q}, {"name": %q, "email": %q}]`, fullName(g), personalEmail(g), fullName(g), personalEmail(g))
				}),
				c("recording", "bytea", "", randB), c("score", "smallint", "", nil)}, fks: []fkSpec{ref("candidate_id", "candidates"), ref("job_id", "jobs")}},
			{name: "offer_letters", cols: []cs{idCol, c("candidate_id", "bigint", "", nil), c("signed_docx", "bytea", kDoc, docxG), c("start_date", "date", "", nil), c("base_salary", "numeric(10,2)", "", money)},
				fks: []fkSpec{ref("candidate_id", "candidates")}},
		}},
		{name: "utility", tables: []ts{
			{name: "account_holders", cols: []cs{idCol, c("account_number", "text", "", func(g *G) string { return digits(g, 10) }), c("holder_name", "text", kN, fullName), c("supply_address", "text", kA, street),
				c("supply_postcode", "text", kA, postUK), c("billing_address", "text", kA, street), c("priority_services", "text", kFT, from("uses oxygen concentrator", "hearing impaired, contact by text", "none")),
				c("payment_method", "text", "", status("direct_debit", "card")), c("sort_code", "text", "", func(g *G) string { return shape(g, "##-##-##") }), c("bank_account_no", "text", kIBAN, func(g *G) string { return digits(g, 8) })}},
			{name: "meters", cols: []cs{idCol, c("holder_id", "bigint", "", nil), c("mpan", "text", "", func(g *G) string { return digits(g, 13) }), c("serial", "text", "", func(g *G) string { return shape(g, "##?#######") }), c("type", "text", "", status("smart", "legacy"))},
				fks: []fkSpec{ref("holder_id", "account_holders")}},
			{name: "readings", cols: []cs{idCol, c("meter_id", "bigint", "", nil), c("read_at", "timestamptz", "", nil), c("kwh", "numeric(10,3)", "", money), c("estimated", "boolean", "", nil)},
				fks: []fkSpec{ref("meter_id", "meters")}},
			{name: "tariffs", cols: []cs{idCol, c("name", "text", "", from("Fixed 12M", "Variable", "EV Night")), c("unit_rate", "numeric(8,4)", "", money), c("standing_charge", "numeric(8,4)", "", money), c("region", "text", "", from("North West", "London", "Scotland"))}},
			{name: "field_visits", cols: []cs{idCol, c("holder_id", "bigint", "", nil), c("engineer", "text", kN, fullName), c("visit_notes", "text", kFT, noteAbout), c("photo", "bytea", kDoc, jpegG), c("gps", "point", kLoc, nil)},
				fks: []fkSpec{ref("holder_id", "account_holders")}},
		}},
		{name: "vet", tables: []ts{
			{name: "owners", cols: []cs{idCol, c("full_name", "text", kN, fullName), c("phone", "text", kP, phoneUS), c("email", "text", kE, personalEmail), c("address", "text", kA, street), c("city", "text", kA, city)}},
			{name: "pets", cols: []cs{idCol, c("owner_id", "bigint", "", nil), c("name", "text", "", func(g *G) string { return g.f.PetName() }), c("species", "text", "", func(g *G) string { return g.f.AnimalType() }),
				c("breed", "text", "", func(g *G) string { return g.f.Dog() }), c("microchip", "text", "", func(g *G) string { return digits(g, 15) }), c("born_on", "date", "", nil), c("photo", "bytea", "", jpegG)},
				fks: []fkSpec{ref("owner_id", "owners")}},
			{name: "visits", cols: []cs{idCol, c("pet_id", "bigint", "", nil), c("vet_name", "text", kN, func(g *G) string { return "Dr " + fullName(g) }), c("reason", "text", "", from("vaccination", "limping", "dental check")),
				c("notes", "text", kFT, noteAbout), c("invoice_total", "numeric(8,2)", "", money), c("xray", "bytea", "", dicomG)}, fks: []fkSpec{ref("pet_id", "pets")}},
			{name: "medications", cols: []cs{idCol, c("name", "text", "", from("Carprofen", "Apoquel", "Bravecto")), c("dose_mg", "numeric(6,2)", "", money), c("stock", "integer", "", nil)}},
		}},
		// Fourth tuning round: written before running the detector on them.
		{name: "telecom", tables: []ts{
			{name: "subscribers", cols: []cs{idCol, c("msisdn", "text", kP, func(g *G) string { return "49" + digits(g, 11) }), c("imsi", "text", kDev, func(g *G) string { return "26201" + digits(g, 10) }),
				c("iccid", "text", kDev, func(g *G) string { return "8949" + digits(g, 15) }), c("subscriber_name", "text", kN, fullName), c("contract_type", "text", "", status("prepaid", "postpaid")),
				c("id_check_document", "bytea", kDoc, jpegG), c("billing_street", "text", kA, street), c("puk", "text", kSec, func(g *G) string { return digits(g, 8) }), c("activated_on", "date", "", nil)}},
			{name: "call_detail_records", cols: []cs{idCol, c("caller_msisdn", "text", kP, func(g *G) string { return "+49" + digits(g, 11) }), c("callee_number", "text", kP, func(g *G) string { return "+44" + digits(g, 10) }),
				c("cell_id", "integer", "", nil), c("duration_s", "integer", "", nil), c("started_at", "timestamptz", "", nil), c("roaming", "boolean", "", nil)}},
			{name: "cell_towers", cols: []cs{idCol, c("cell_id", "integer", "", nil), c("lat", "double precision", "", nil), c("lon", "double precision", "", nil), c("operator", "text", "", status("T-Mobile", "Vodafone", "O2")), c("band", "text", "", status("B3", "B20"))}},
			{name: "support_calls", cols: []cs{idCol, c("subscriber_id", "bigint", "", nil), c("transcript", "text", kFT, ticketBody), c("agent", "text", kN, fullName), c("sentiment", "real", "", nil)},
				fks: []fkSpec{ref("subscriber_id", "subscribers")}},
			{name: "plans", cols: []cs{idCol, c("name", "text", "", from("Unlimited 5G", "Basic 10GB")), c("monthly_fee", "numeric(8,2)", "", money), c("data_gb", "integer", "", nil)}},
		}},
		{name: "parking", tables: []ts{
			{name: "residents", cols: []cs{idCol, c("resident_name", "text", kN, fullName), c("flat_number", "text", kA, func(g *G) string { return shape(g, "Flat ##") }), c("street", "text", kA, street),
				c("postcode", "text", kA, postUK), c("contact_email", "text", kE, personalEmail), c("blue_badge", "boolean", "", nil)}},
			{name: "permits", cols: []cs{idCol, c("resident_id", "bigint", "", nil), c("vrm", "text", kVeh, plateUK), c("zone", "text", "", status("A", "B", "C")), c("valid_until", "date", "", nil), c("permit_code", "text", "", func(g *G) string { return shape(g, "PZ-#####") })},
				fks: []fkSpec{ref("resident_id", "residents")}},
			{name: "penalty_notices", cols: []cs{idCol, c("vehicle_registration", "text", kVeh, plateUK), c("officer_badge", "text", "", func(g *G) string { return "CEO" + digits(g, 4) }), c("issued_at", "timestamptz", "", nil),
				c("location_desc", "text", "", func(g *G) string { return "Outside " + street(g) }), c("photo_evidence", "bytea", kDoc, jpegG), c("amount", "numeric(8,2)", "", money), c("appeal_text", "text", kFT, ticketBody)}},
			{name: "car_parks", cols: []cs{idCol, c("name", "text", "", func(g *G) string { return g.f.LastName() + " Street Car Park" }), c("spaces", "integer", "", nil), c("latitude", "double precision", "", nil), c("longitude", "double precision", "", nil)}},
		}},
		{name: "shop_de", tables: []ts{
			{name: "kunden", cols: []cs{idCol, c("anrede", "text", "", status("Herr", "Frau")), c("vorname", "text", kN, from(deFirst...)), c("nachname", "text", kN, from(deLast...)),
				c("email", "text", kE, foreignEmail(deFirst, deLast, "web.de")), c("passwort_hash", "text", kSec, bcrypt), c("geburtstag", "date", kDOB, dob), c("newsletter", "boolean", "", nil),
				c("kundennummer", "text", "", func(g *G) string { return "K" + digits(g, 7) })}},
			{name: "bestellungen", cols: []cs{idCol, c("kunde_id", "bigint", "", nil), c("bestellnummer", "text", "", func(g *G) string { return "B-" + digits(g, 8) }), c("summe", "numeric(10,2)", "", money),
				c("lieferadresse", "jsonb", kA, jsonObj("name", gen(foreignName(deFirst, deLast)), "strasse", gen(from(deStr...)), "plz", gen(func(g *G) string { return digits(g, 5) }), "ort", gen(from(deCity...)))),
				c("zahlungsart", "text", "", status("Rechnung", "PayPal", "Kreditkarte")), c("kommentar", "text", kFT, func(g *G) string { return "Bitte bei " + pick(g, deLast...) + " im 2. OG abgeben" })},
				fks: []fkSpec{ref("kunde_id", "kunden")}},
			{name: "artikel", cols: []cs{idCol, c("bezeichnung", "text", "", product), c("preis", "numeric(10,2)", "", money), c("hersteller", "text", "", company), c("ean", "text", "", func(g *G) string { return digits(g, 13) }), c("bild", "bytea", "", pngG)}},
			{name: "retouren", cols: []cs{idCol, c("bestellung_id", "bigint", "", nil), c("grund", "text", "", from("zu groß", "defekt", "gefällt nicht")), c("iban_erstattung", "text", kIBAN, iban)},
				fks: []fkSpec{ref("bestellung_id", "bestellungen")}},
		}},
		// Fifth tuning round: written before running the detector on them.
		{name: "charity", tables: []ts{
			{name: "donors", cols: []cs{idCol, c("title", "text", "", status("Mr", "Mrs", "Dr")), c("initials", "text", kN, func(g *G) string { return letters(g, 2) }), c("surname", "text", kN, func(g *G) string { return g.f.LastName() }),
				c("house_name_number", "text", kA, func(g *G) string { return intS(g)[:2] }), c("address_line_1", "text", kA, street), c("town_city", "text", kA, city), c("post_code", "text", kA, postUK),
				c("tel_home", "text", kP, phoneIntl), c("email_addr", "text", kE, personalEmail), c("gift_aid_declared", "boolean", "", nil), c("do_not_contact", "boolean", "", nil)}},
			{name: "donations", cols: []cs{idCol, c("donor_id", "bigint", "", nil), c("amount", "numeric(10,2)", "", money), c("campaign", "text", "", status("Winter Appeal", "Marathon 2024")), c("in_memory_of", "text", kN, fullName),
				c("card_token", "text", kSec, func(g *G) string { return "tok_" + b64url(g, 24) }), c("received_on", "date", "", nil)}, fks: []fkSpec{ref("donor_id", "donors")}},
			{name: "campaigns", cols: []cs{idCol, c("name", "text", "", status("Winter Appeal", "Marathon 2024")), c("target", "numeric(12,2)", "", money), c("starts_on", "date", "", nil)}},
			{name: "volunteer_shifts", cols: []cs{idCol, c("volunteer_name", "text", kN, fullName), c("dbs_certificate_no", "text", kNID, func(g *G) string { return digits(g, 12) }), c("shift_start", "timestamptz", "", nil),
				c("shop_branch", "text", "", city)}},
		}},
		{name: "legal", tables: []ts{
			{name: "clients", cols: []cs{idCol, c("client_name", "text", kN, fullName), c("client_type", "text", "", status("individual", "company")), c("dob", "date", kDOB, dob), c("passport_scan", "bytea", kDoc, pdfG),
				c("correspondence_email", "text", kE, personalEmail), c("conflict_check_notes", "text", kFT, noteAbout)}},
			{name: "matters", cols: []cs{idCol, c("client_id", "bigint", "", nil), c("matter_ref", "text", "", func(g *G) string { return shape(g, "M-####/##") }), c("practice_area", "text", "", status("family", "employment", "property")),
				c("opposing_party", "text", kN, fullName), c("summary", "text", kFT, func(g *G) string { return "Divorce proceedings between " + fullName(g) + " and " + fullName(g) }), c("hourly_rate", "numeric(8,2)", "", money)},
				fks: []fkSpec{ref("client_id", "clients")}},
			{name: "time_entries", cols: []cs{idCol, c("matter_id", "bigint", "", nil), c("fee_earner", "text", kN, fullName), c("minutes", "integer", "", nil), c("narrative", "text", kFT, noteAbout)},
				fks: []fkSpec{ref("matter_id", "matters")}},
			{name: "courts", cols: []cs{idCol, c("name", "text", "", func(g *G) string { return city(g) + " County Court" }), c("address", "text", "", street), c("dx_number", "text", "", func(g *G) string { return "DX " + digits(g, 5) })}},
		}},
		{name: "ridehail", tables: []ts{
			{name: "riders", cols: []cs{idCol, c("display_name", "text", kN, fullName), c("phone_e164", "text", kP, func(g *G) string { return "+1" + digits(g, 10) }), c("rating", "numeric(3,2)", "", money),
				c("home_location", "point", kLoc, nil), c("referral_code", "text", "", func(g *G) string { return shape(g, "??##??") })}},
			{name: "trips", cols: []cs{idCol, c("rider_id", "bigint", "", nil), c("pickup_lat", "double precision", kLoc, nil), c("pickup_lng", "double precision", kLoc, nil),
				c("dropoff_address", "text", kA, street), c("fare", "numeric(8,2)", "", money), c("surge", "real", "", nil), c("driver_license_plate", "text", kVeh, plateUS), c("requested_at", "timestamptz", "", nil)},
				fks: []fkSpec{ref("rider_id", "riders")}},
			{name: "trip_receipts", cols: []cs{idCol, c("trip_id", "bigint", "", nil), c("receipt_html", "text", kFT, func(g *G) string {
				return "<p>Thanks for riding, " + g.f.FirstName() + "!</p><p>Billed to " + personalEmail(g) + "</p>"
			})},
				fks: []fkSpec{ref("trip_id", "trips")}},
			{name: "surge_zones", cols: []cs{idCol, c("city", "text", "", city), c("polygon", "text", "", func(g *G) string { return "POLYGON((" + lngG(g) + " " + latG(g) + ", ...))" }), c("multiplier", "real", "", nil)}},
		}},
		{name: "anagrafe", tables: []ts{
			{name: "cittadini", cols: []cs{idCol, c("nome", "text", kN, from("Giuseppe", "Maria", "Giovanni", "Anna", "Luca", "Francesca")), c("cognome", "text", kN, from("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano")),
				c("codice_fiscale", "text", kNID, func(g *G) string { return shape(g, "??????##?##?###?") }), c("data_di_nascita", "date", kDOB, dob), c("luogo_di_nascita", "text", kDOB, from("Roma", "Milano", "Napoli")),
				c("indirizzo", "text", kA, from("Via Roma 12", "Corso Italia 5", "Piazza Garibaldi 3")), c("cap", "char(5)", kA, func(g *G) string { return digits(g, 5) }), c("comune", "text", kA, from("Roma", "Milano", "Torino")),
				c("telefono", "text", kP, func(g *G) string { return shape(g, "+39 3## ### ####") }), c("pec", "text", kE, func(g *G) string { return "m.rossi" + digits(g, 2) + "@pec.it" })}},
			{name: "certificati", cols: []cs{idCol, c("cittadino_id", "bigint", "", nil), c("tipo", "text", "", status("residenza", "nascita")), c("documento_pdf", "bytea", kDoc, pdfG), c("rilasciato_il", "date", "", nil)},
				fks: []fkSpec{ref("cittadino_id", "cittadini")}},
			{name: "comuni", cols: []cs{idCol, c("nome", "text", "", from("Roma", "Milano", "Torino", "Napoli")), c("provincia", "char(2)", "", from("RM", "MI", "TO", "NA")), c("abitanti", "integer", "", nil)}},
		}},
		// Held out: chosen before tuning; never looked at while tuning.
		{name: "insurance", heldOut: true, tables: []ts{
			{name: "policyholders", cols: []cs{idCol, c("first_name", "text", kN, func(g *G) string { return g.f.FirstName() }), c("last_name", "text", kN, func(g *G) string { return g.f.LastName() }),
				c("birthdate", "date", kDOB, dob), c("ssn", "text", kNID, ssn), c("email_address", "text", kE, personalEmail), c("home_phone", "text", kP, phoneUS), c("street_address", "text", kA, street),
				c("apt", "text", kA, address2), c("city", "text", kA, city), c("state", "char(2)", kA, func(g *G) string { return g.f.StateAbr() }), c("zip_code", "text", kA, zipUS),
				c("customer_since", "date", "", nil), c("credit_tier", "text", "", status("A", "B", "C"))}},
			{name: "policies", cols: []cs{idCol, c("holder_id", "bigint", "", nil), c("policy_number", "text", "", func(g *G) string { return shape(g, "POL-########") }), c("product", "text", "", status("auto", "home", "life")),
				c("premium", "numeric(10,2)", "", money), c("starts_on", "date", "", nil), c("signed_contract", "bytea", kDoc, pdfG)}, fks: []fkSpec{ref("holder_id", "policyholders")}},
			{name: "beneficiaries", cols: []cs{idCol, c("policy_id", "bigint", "", nil), c("full_name", "text", kN, fullName), c("relationship", "text", "", status("child", "spouse")), c("share_pct", "numeric(5,2)", "", money),
				c("contact_number", "text", kP, phoneUS)}, fks: []fkSpec{ref("policy_id", "policies")}},
			{name: "claims", cols: []cs{idCol, c("policy_id", "bigint", "", nil), c("incident_date", "date", "", nil), c("amount_claimed", "numeric(12,2)", "", money), c("description", "text", kFT, noteAbout),
				c("adjuster", "text", kN, fullName), c("incident_location", "text", kLoc, geoTxt), c("vehicle_plate", "text", kVeh, plateUS), c("photos", "bytea", kDoc, jpegG), c("state", "text", "", status("open", "paid", "denied"))},
				fks: []fkSpec{ref("policy_id", "policies")}},
			{name: "agents", cols: []cs{idCol, c("name", "text", kN, fullName), c("license_no", "text", "", func(g *G) string { return shape(g, "??-######") }), c("office_city", "text", "", city), c("agent_email", "text", kE, personalEmail)}},
			{name: "products", cols: []cs{idCol, c("name", "text", "", status("Auto Basic", "Home Plus", "Term Life 20")), c("base_rate", "numeric(8,4)", "", money), c("terms_pdf", "bytea", "", pdfG)}},
		}},
		{name: "education", heldOut: true, tables: []ts{
			{name: "students", cols: []cs{idCol, c("student_number", "text", "", func(g *G) string { return "S" + digits(g, 7) }), c("legal_first_name", "text", kN, func(g *G) string { return g.f.FirstName() }),
				c("legal_last_name", "text", kN, func(g *G) string { return g.f.LastName() }), c("preferred_name", "text", kN, func(g *G) string { return g.f.FirstName() }), c("date_of_birth", "date", kDOB, dob),
				c("school_email", "text", kE, personalEmail), c("photo", "bytea", kDoc, jpegG), c("grade_level", "smallint", "", nil), c("home_address", "text", kA, street), c("postal_code", "text", kA, postUK),
				c("medical_notes", "text", kFT, from("asthma, inhaler in bag", "peanut allergy", "none")), c("enrolled_on", "date", "", nil)}},
			{name: "guardians", cols: []cs{idCol, c("student_id", "bigint", "", nil), c("name", "text", kN, fullName), c("relationship", "text", "", status("mother", "father", "guardian")),
				c("mobile", "text", kP, phoneIntl), c("email", "text", kE, personalEmail), c("employer", "text", "", company), c("custody_notes", "text", kFT, noteAbout)},
				fks: []fkSpec{ref("student_id", "students")}},
			{name: "courses", cols: []cs{idCol, c("code", "text", "", func(g *G) string { return letters(g, 3) + digits(g, 3) }), c("title", "text", "", func(g *G) string { return g.f.BuzzWord() + " Studies" }), c("credits", "smallint", "", nil), c("room", "text", "", func(g *G) string { return shape(g, "?-###") })}},
			{name: "grades", cols: []cs{idCol, c("student_id", "bigint", "", nil), c("course_id", "bigint", "", nil), c("grade", "text", "", status("A", "B", "C", "F")), c("teacher_comment", "text", kFT, noteAbout)},
				fks: []fkSpec{ref("student_id", "students"), ref("course_id", "courses")}},
			{name: "lms_sessions", cols: []cs{idCol, c("student_id", "bigint", "", nil), c("session_key", "text", kSec, func(g *G) string { return hexN(g, 48) }), c("remote_addr", "text", kIP, ipv4), c("started_at", "timestamptz", "", nil)},
				fks: []fkSpec{ref("student_id", "students")}},
			{name: "schools", cols: []cs{idCol, c("name", "text", "", func(g *G) string { return g.f.School() }), c("district", "text", "", district), c("address", "text", "", street), c("main_phone", "text", "", phoneUS)}},
		}},
		{name: "realestate", heldOut: true, tables: []ts{
			{name: "landlords", cols: []cs{idCol, c("name", "text", kN, fullName), c("company", "text", "", company), c("email", "text", kE, personalEmail), c("phone", "text", kP, phoneIntl), c("bank_iban", "text", kIBAN, iban)}},
			{name: "properties", cols: []cs{idCol, c("landlord_id", "bigint", "", nil), c("street", "text", kA, street), c("unit", "text", kA, address2), c("city", "text", kA, city), c("postcode", "text", kA, postUK),
				c("bedrooms", "smallint", "", nil), c("monthly_rent", "numeric(10,2)", "", money), c("geo", "point", kLoc, nil), c("listing_photo", "bytea", "", jpegG)},
				fks: []fkSpec{ref("landlord_id", "landlords")}},
			{name: "tenants", cols: []cs{idCol, c("full_name", "text", kN, fullName), c("date_of_birth", "date", kDOB, dob), c("email", "text", kE, personalEmail), c("phone", "text", kP, phoneUS),
				c("previous_address", "text", kA, street), c("employer", "text", "", company), c("annual_income", "numeric(12,2)", "", money), c("national_insurance_number", "text", kNID, nino)}},
			{name: "leases", cols: []cs{idCol, c("property_id", "bigint", "", nil), c("tenant_id", "bigint", "", nil), c("starts_on", "date", "", nil), c("deposit", "numeric(10,2)", "", money),
				c("signatory_name", "text", kN, fullName), c("signed_pdf", "bytea", kDoc, pdfG), c("cosigners", "jsonb", kN, jsonObj("name", gen(fullName), "phone", gen(phoneUS)))},
				fks: []fkSpec{ref("property_id", "properties"), ref("tenant_id", "tenants")}},
			{name: "maintenance_requests", cols: []cs{idCol, c("property_id", "bigint", "", nil), c("category", "text", "", status("plumbing", "heating")), c("details", "text", kFT, ticketBody), c("contractor", "text", "", company)},
				fks: []fkSpec{ref("property_id", "properties")}},
			{name: "neighbourhoods", cols: []cs{idCol, c("name", "text", "", district), c("city", "text", "", city), c("median_rent", "numeric(10,2)", "", money)}},
		}},
		{name: "verhuur", heldOut: true, tables: []ts{
			{name: "klanten", cols: []cs{idCol, c("voornaam", "text", kN, from(nlFirst...)), c("achternaam", "text", kN, from(nlLast...)), c("geboortedatum", "date", kDOB, dob),
				c("bsn", "text", kNID, bsn), c("straat", "text", kA, from(nlStr...)), c("huisnummer", "text", kA, func(g *G) string { return intS(g)[:2] }), c("postcode", "text", kA, postNL),
				c("woonplaats", "text", kA, from(nlCity...)), c("telefoonnummer", "text", kP, phoneNL), c("emailadres", "text", kE, foreignEmail(nlFirst, nlLast, "ziggo.nl")),
				c("rijbewijsnummer", "text", kNID, func(g *G) string { return digits(g, 10) }), c("klantsegment", "text", "", status("zakelijk", "particulier"))}},
			{name: "voertuigen", cols: []cs{idCol, c("kenteken", "text", "", plateNL), c("merk", "text", "", func(g *G) string { return g.f.CarMaker() }), c("model", "text", "", func(g *G) string { return g.f.CarModel() }),
				c("bouwjaar", "smallint", "", nil), c("dagprijs", "numeric(8,2)", "", money)}},
			{name: "huurcontracten", cols: []cs{idCol, c("klant_id", "bigint", "", nil), c("voertuig_id", "bigint", "", nil), c("van", "date", "", nil), c("tot", "date", "", nil),
				c("bestuurder_naam", "text", kN, foreignName(nlFirst, nlLast)), c("opmerkingen", "text", kFT, func(g *G) string { return "Sleutel ophalen door " + pick(g, nlFirst...) + " " + pick(g, nlLast...) }),
				c("handtekening", "bytea", kDoc, pngG), c("borg", "numeric(8,2)", "", money)},
				fks: []fkSpec{ref("klant_id", "klanten"), ref("voertuig_id", "voertuigen")}},
			{name: "vestigingen", cols: []cs{idCol, c("naam", "text", "", func(g *G) string { return pick(g, nlCity...) + " Centrum" }), c("adres", "text", "", from(nlStr...)), c("plaats", "text", "", from(nlCity...)), c("telefoon", "text", "", phoneNL)}},
			{name: "ritten", cols: []cs{idCol, c("contract_id", "bigint", "", nil), c("start_lat", "double precision", kLoc, nil), c("start_lng", "double precision", kLoc, nil), c("km", "integer", "", nil)},
				fks: []fkSpec{ref("contract_id", "huurcontracten")}},
		}},
	}
}

func stringsUpper(s string) string {
	b := []byte(s)
	upperASCII(b)
	return string(b)
}
