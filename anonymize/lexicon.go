package anonymize

import (
	"strings"
	"unicode"
)

// Column and table names are read as words: snake_case, kebab-case,
// camelCase and digits split ("billingAddress2" → billing address 2),
// lower-cased, accents folded ("prénom" → prenom, "straße" → strasse).
// Each word maps to a concept; other languages and common abbreviations map
// to the same concepts as their English words.

// Concepts name words can carry.
const (
	cEmail    = "email"
	cPhone    = "phone"
	cFirst    = "first"
	cLast     = "last"
	cMiddle   = "middle"
	cName     = "name"
	cFull     = "full" // full, display, legal: qualifies name
	cFullName = "fullname"
	cUsername = "username"
	cPerson   = "person" // a person noun: customer, passenger, driver
	cStreet   = "street"
	cAddress  = "address"
	cAddrLine = "addrline" // house number, apartment, suite
	cCity     = "city"
	cPostcode = "postcode"
	cRegion   = "region" // state, province, county
	cDistrict = "district"
	cBirth    = "birth"
	cNatID    = "natid"
	cTaxID    = "taxid"
	cPassport = "passport"
	cLicense  = "license"
	cDriving  = "driving"
	cCard     = "card"
	cCredit   = "credit"
	cIBAN     = "iban"
	cBank     = "bank"
	cAccount  = "account"
	cIP       = "ip"
	cMAC      = "mac"
	cDevice   = "device"
	cPlate    = "plate"
	cVehicle  = "vehicle"
	cVIN      = "vin"
	cLat      = "lat"
	cLng      = "lng"
	cGeo      = "geo"
	cLocation = "location"
	cPassword = "password"
	cSecret   = "secret" // token, secret, otp: a credential on its own
	cKey      = "key"    // a credential only when qualified (api key)
	cKeyQual  = "keyqual"
	cHash     = "hash"
	cSalt     = "salt"
	cPhoto    = "photo"
	cImage    = "image" // image, picture: a photo only of a person
	cDocument = "document"
	cNote     = "note" // free text by name
	cText     = "text" // free text only if the values mention people
	cNumber   = "number"
	cCode     = "code"
	cID       = "id"
	cQualPers = "qualperson" // billing, shipping, home: a person's
	cEntity   = "entity"     // company, product, warehouse: not a person
	cTest     = "test"       // test, seed, fixture, demo
	cNotPII   = "notpii"     // checksum, etag, slug: never PII by name
	cMedical  = "medical"
	cNumberID = "numberid" // nr, no, num
	cCert     = "cert"     // a certificate: a person's when numbered
)

var lexicon = map[string]string{}

func lex(concept string, words ...string) {
	for _, w := range words {
		lexicon[w] = concept
	}
}

func init() {
	lex(cEmail, "email", "mail", "emails", "emailaddress", "courriel", "correo", "correio", "mailadres", "mailadresse", "epost")
	lex(cPhone, "phone", "phones", "telephone", "tel", "tele", "mobile", "mob", "cell", "cellphone", "fax", "msisdn", "handy",
		"telefon", "telefono", "telefone", "telefoon", "movil", "celular", "cellulare", "gsm", "landline", "whatsapp", "portable", "mobiel",
		"phonenumber", "mobilnummer", "telefonnummer", "telefoonnummer", "telefonica")
	lex(cFirst, "first", "given", "fname", "firstname", "forename", "forenames", "vorname", "prenom", "voornaam", "primeiro", "givenname")
	lex(cLast, "last", "family", "surname", "lname", "lastname", "nachname", "familienname", "apellido", "apellidos", "achternaam",
		"sobrenome", "familyname", "maiden", "nom", "cognome", "cognomi")
	lex(cMiddle, "middle", "middlename", "mname", "initials")
	lex(cName, "name", "names", "naam", "nome", "nombre", "nm")
	lex(cFull, "full", "display", "legal", "complete", "completo")
	lex(cFullName, "fullname", "displayname", "legalname", "nomecompleto", "nombrecompleto")
	lex(cUsername, "username", "login", "handle", "screenname", "nickname", "gamertag", "alias", "benutzername", "gebruikersnaam", "userlogin")
	lex(cPerson, "user", "customer", "client", "person", "people", "individual", "contact", "recipient", "sender", "consignee", "addressee",
		"passenger", "guest", "driver", "owner", "holder", "cardholder", "signatory", "signer", "witness", "beneficiary", "patient",
		"member", "employee", "staff", "manager", "emergency", "kin", "guardian", "parent", "mother", "father", "spouse", "tenant",
		"landlord", "applicant", "candidate", "student", "pupil", "teacher", "doctor", "physician", "nurse", "author", "reviewer",
		"assignee", "requester", "reporter", "buyer", "seller", "traveler", "traveller", "attendee", "participant", "referrer",
		"subscriber", "lead", "prospect", "insured", "policyholder", "claimant", "donor", "volunteer", "visitor", "rider", "courier",
		"caregiver", "dependent", "dependant", "caller", "callee", "worker", "agent", "account", "profile", "players", "player", "lessee", "lessor",
		"borrower", "lender", "investor", "shareholder", "director", "officer", "hire", "cosigner", "payee", "payer", "customers",
		"users", "persons", "kunde", "kunden", "mitarbeiter", "benutzer", "ansprechpartner", "empfaenger", "fahrer", "gast", "mieter",
		"patienten", "personal", "personne", "utilisateur", "destinataire", "titulaire", "salarie", "employe", "passager", "voyageur",
		"cliente", "clientes", "usuario", "usuarios", "paciente", "pacientes", "empleado", "empleados", "destinatario", "titular",
		"conductor", "huesped", "funcionario", "passageiro", "hospede", "motorista", "klant", "klanten", "gebruiker", "medewerker",
		"ontvanger", "bestuurder", "huurder", "reiziger", "leerling", "persoon", "pessoa", "persona", "personas", "socio", "lid",
		"cittadino", "cittadini", "utente", "utenti", "paziente", "pazienti", "dipendente", "dipendenti", "anagrafica", "volunteer_ref")
	lex(cStreet, "street", "strasse", "straat", "rue", "calle", "rua", "road", "avenue", "strase", "str")
	lex(cAddress, "address", "addr", "adresse", "adres", "direccion", "endereco", "domicile", "domicilio", "residence", "anschrift",
		"addresses", "address1", "address2", "address3", "postal_address", "morada", "logradouro", "indirizzo", "recapito")
	lex(cAddrLine, "unit", "line1", "line2", "line3", "house", "hausnummer", "huisnummer", "apartment", "apt", "suite", "flat",
		"pobox", "complemento", "numero_casa", "piso", "toevoeging", "building")
	lex(cCity, "city", "town", "village", "locality", "ort", "stadt", "ville", "ciudad", "cidade", "woonplaats", "plaats",
		"municipality", "gemeente", "wohnort", "localidad", "localidade", "municipio", "commune", "comune", "citta", "localita")
	lex(cPostcode, "zip", "zipcode", "postcode", "postal", "plz", "postleitzahl", "cep", "postalcode", "cp", "codpostal", "cap")
	lex(cRegion, "state", "province", "region", "county", "prefecture", "bundesland", "provincia", "estado", "departement", "oblast", "uf")
	lex(cDistrict, "district", "neighbourhood", "neighborhood", "borough", "suburb", "quarter", "barrio", "bairro", "wijk",
		"colonia", "stadtteil", "arrondissement")
	lex(cBirth, "birth", "birthday", "birthdate", "dob", "born", "geburtsdatum", "geburtstag", "geburt", "naissance", "nacimiento",
		"nascimento", "geboortedatum", "geboorte", "geboren", "birthyear", "natalicio", "nascita")
	lex(cNatID, "ssn", "sin", "nin", "nino", "nir", "insee", "national", "nationalid", "dni", "nie", "cpf", "rg", "bsn", "cuil",
		"curp", "rut", "aadhaar", "pesel", "personnummer", "svnr", "sozialversicherungsnummer", "securite", "seguridad", "nhs",
		"medicare", "mrn", "idcard", "personalausweis", "identity", "identidade", "identidad", "burgerservicenummer", "socialsecurity",
		"ausweis", "ausweisnummer", "cedula", "nss", "identification")
	lex(cTaxID, "tax", "tin", "taxid", "steuer", "steuerid", "steuernummer", "nif", "fiscal", "vat_personal", "itin", "codicefiscale")
	lex(cPassport, "passport", "reisepass", "pasaporte", "passaporte", "paspoort", "passeport", "passportnumber")
	lex(cLicense, "license", "licence", "permis", "fuehrerschein", "fuhrerschein", "rijbewijs", "licencia", "carteira", "cnh")
	lex(cDriving, "driving", "drivers", "conduire", "conducir")
	lex(cCard, "card", "cardnumber", "pan", "cc", "ccnum", "kreditkarte", "tarjeta", "cartao", "carte", "cvv", "cvc")
	lex(cCredit, "credit", "debit")
	lex(cIBAN, "iban", "rekeningnummer", "kontonummer")
	lex(cBank, "bank", "konto", "cuenta", "conta", "rekening", "compte")
	lex(cAccount, "acct", "acc")
	lex(cIP, "ip", "ipaddr", "ipv4", "ipv6", "ipaddress", "remote", "forwarded")
	lex(cMAC, "mac", "macaddr", "macaddress", "bssid", "hwaddr")
	lex(cDevice, "imsi", "iccid", "meid", "esn", "device", "idfa", "idfv", "gaid", "aaid", "advertising", "adid", "imei", "udid", "android", "fcm", "apns", "installation",
		"deviceid", "geraet")
	lex(cPlate, "plate", "plates", "numberplate", "kennzeichen", "kenteken", "immatriculation", "matricula", "placa", "registration", "rego", "nummernschild", "vrm", "vrn")
	lex(cVehicle, "vehicle", "car", "auto", "fahrzeug", "voertuig", "vehiculo", "veiculo")
	lex(cVIN, "vin", "chassis", "fin")
	lex(cLat, "lat", "latitude", "breitengrad")
	lex(cLng, "lng", "lon", "longitude", "laengengrad")
	lex(cGeo, "geo", "geolocation", "coordinates", "coords", "gps", "geopoint", "latlng", "latlon", "polyline", "geohash", "geom", "geometry",
		"geography", "trajectory", "waypoints", "gpx")
	lex(cLocation, "location", "standort", "ubicacion", "localizacao", "locatie", "checkin", "whereabouts")
	lex(cPassword, "password", "passwd", "pwd", "pass", "passphrase", "pin", "wachtwoord", "passwort", "kennwort", "contrasena", "senha",
		"motdepasse", "pw", "pword", "puk")
	lex(cSecret, "secret", "secrets", "token", "tokens", "otp", "totp", "hotp", "mfa", "2fa", "twofa", "recovery", "bearer", "jwt",
		"session", "cookie", "credential", "credentials", "apikey", "privatekey", "nonce", "passcode", "webhooksecret", "oauth",
		"rfid", "nfc")
	lex(cKey, "key", "keys", "qr", "qrcode", "barcode")
	lex(cKeyQual, "api", "private", "access", "signing", "encryption", "master", "auth", "client", "refresh", "reset", "verification",
		"activation", "magic", "invite", "confirmation", "unlock", "ssh", "pgp", "gpg", "hmac", "aws", "stripe", "push")
	lex(cHash, "hash", "hashed", "digest", "crypt", "encrypted")
	lex(cSalt, "salt")
	lex(cPhoto, "photo", "photos", "avatar", "portrait", "headshot", "selfie", "foto", "lichtbild", "mugshot", "passbild", "fotografia",
		"xray", "scan", "scans", "signature", "handtekening", "unterschrift", "firma_img")
	lex(cImage, "image", "img", "picture", "pic", "bild", "imagen", "imagem", "afbeelding", "thumbnail", "thumb")
	lex(cDocument, "document", "documents", "doc", "attachment", "attachments", "pdf", "file", "upload", "contract", "dokument",
		"documento", "bijlage", "anhang", "cv", "resume")
	lex(cNote, "note", "notes", "comment", "comments", "bio", "biography", "remark", "remarks", "memo", "about", "feedback",
		"complaint", "diagnosis", "diagnoses", "symptoms", "symptom", "history", "anamnesis", "allergies", "medications", "prescription",
		"notiz", "notizen", "bemerkung", "bemerkungen", "kommentar", "anmerkung", "anmerkungen", "remarque", "commentaire",
		"commentaires", "nota", "notas", "comentario", "comentarios", "observacion", "observaciones", "observacao", "observacoes",
		"opmerking", "opmerkingen", "toelichting", "aantekening", "transcript", "dictation", "freetext", "annotation", "alergias",
		"alergia", "allergien", "allergieen", "alergias_conocidas", "diagnostico", "sintomas", "anamnese", "befund", "diagnose")
	lex(cText, "description", "body", "content", "text", "subject", "summary", "details", "detail", "message", "messages", "msg",
		"reason", "review", "reply", "response", "answer", "caption", "post", "chat", "descripcion", "beschreibung", "omschrijving",
		"descricao", "mensaje", "mensagem", "bericht", "nachricht", "story", "instructions", "inhalt", "motivo", "motif", "grund", "reden")
	lex(cNumber, "number", "nummer", "numero", "num", "nr", "no", "nro", "numer", "serial", "sn")
	lex(cCode, "code", "codigo", "code_postal")
	lex(cID, "id", "ids", "uuid", "guid", "pk", "fk", "ref", "identifier")
	lex(cQualPers, "billing", "shipping", "ship", "home", "mailing", "delivery", "residential", "personal", "private_addr", "invoice",
		"primary", "secondary", "alt", "alternate", "work", "business_contact", "next", "bill", "permanent", "current", "previous",
		"pickup", "dropoff", "origin_addr", "lieferadresse", "rechnungsadresse", "wohn", "facturacion", "envio", "entrega", "cobranca")
	lex(cEntity, "company", "companies", "organization", "organisation", "org", "orgs", "vendor", "supplier", "manufacturer", "brand",
		"merchant", "store", "shop", "branch", "office", "warehouse", "depot", "hub", "facility", "venue", "hotel", "airport",
		"airline", "station", "port", "terminal", "product", "products", "item", "items", "sku", "variant", "category", "catalog",
		"inventory", "country", "countries", "cities", "currency", "currencies", "language", "languages", "locale", "timezone",
		"plan", "plans", "feature", "features", "setting", "settings", "config", "template", "templates", "lookup", "reference", "enum",
		"industry", "department", "departments", "team", "teams", "project", "projects", "campaign", "campaigns", "course", "courses",
		"room", "rooms", "route", "routes", "fleet", "carrier", "carriers", "firm", "employer", "hospital", "clinic", "school", "university",
		"bank_branch", "agency", "restaurant", "partner_company", "firma", "empresa", "bedrijf", "unternehmen", "entreprise", "societe",
		"lager", "filiale", "produkt", "producto", "produto", "geo_ref", "region_ref", "tenant_org", "workspace", "workspaces",
		"integration", "integrations", "webhook", "app", "apps", "repository", "repo", "service", "services", "insurer", "lab",
		"artikel", "article", "articles", "produkte", "ware", "waren", "pet", "pets", "animal", "animals", "dog", "dogs", "cat", "cats", "horse", "horses", "livestock", "herd", "tier", "tiere")
	lex(cTest, "test", "tests", "seed", "seeds", "fixture", "fixtures", "demo", "sample", "samples", "dummy", "mock", "fake", "qa", "sandbox")
	lex(cNotPII, "checksum", "etag", "sha", "sha1", "sha256", "md5", "crc", "crc32", "slug", "commit", "revision", "version", "mime",
		"mimetype", "sku", "isbn", "ean", "upc", "gtin", "color", "colour", "currency", "locale", "timezone", "tz", "lang", "status",
		"state_code_ref", "type", "kind", "category", "tag", "tags", "label", "labels", "flag", "flags", "url", "uri", "domain", "host",
		"hostname", "path", "filename", "extension", "width", "height", "size", "bytes", "duration", "price", "amount", "total", "qty",
		"quantity", "count", "score", "rating", "rank", "priority", "severity", "level", "tier", "weight", "sequence", "position_idx",
		"template", "format", "encoding", "algorithm", "alg", "algo", "cipher", "job", "title", "industry", "verified", "enabled", "confirmed",
		"optin", "consent", "attempts", "method", "provider", "strategy", "scope", "scopes", "expires", "expiry", "expiration",
		"rate", "ratio", "percent", "pct", "source", "channel", "medium", "preference", "preferences", "frequency", "visibility",
		"visible", "public", "hint_type", "model", "os", "brand", "make", "manufacturer_name", "prefix", "suffix_type", "mode",
		"length", "last4", "bin", "masked", "fingerprint_type", "updated", "created", "deleted", "sent", "opened", "clicked",
		"bounced", "unsubscribed", "valid", "validated", "blocked", "banned", "locked", "required", "index", "order", "sort")
	lex(cCert, "certificate", "certificates", "cert", "zertifikat", "certificado", "certificat", "attestato")
	lex(cMedical, "medical", "health", "clinical", "insurance", "policy")
	lex(cNumberID, "nr", "no")
}

// nameTokens splits an identifier into lower-case words.
func nameTokens(s string) []string {
	var toks []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			toks = append(toks, string(cur))
			cur = cur[:0]
		}
	}
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case unicode.IsLetter(r):
			if len(cur) > 0 {
				prev := rs[i-1]
				// camelCase: a lower letter then an upper one; ABCDef: the
				// last upper of a run starts the next word.
				if unicode.IsUpper(r) && (unicode.IsLower(prev) || unicode.IsDigit(prev)) ||
					unicode.IsUpper(r) && unicode.IsUpper(prev) && i+1 < len(rs) && unicode.IsLower(rs[i+1]) ||
					unicode.IsDigit(prev) {
					flush()
				}
			}
			cur = append(cur, foldRune(r)...)
		case unicode.IsDigit(r):
			if len(cur) > 0 && !unicode.IsDigit(rs[i-1]) {
				// address2, line1 stay one word; 2fa too
				cur = append(cur, r)
				continue
			}
			cur = append(cur, r)
		default:
			flush()
		}
	}
	flush()
	return toks
}

// foldRune lower-cases and strips accents from the letters column names
// commonly use.
func foldRune(r rune) []rune {
	r = unicode.ToLower(r)
	switch r {
	case 'à', 'á', 'â', 'ã', 'å', 'ā':
		return []rune{'a'}
	case 'ä', 'æ':
		return []rune{'a', 'e'}
	case 'ç':
		return []rune{'c'}
	case 'è', 'é', 'ê', 'ë':
		return []rune{'e'}
	case 'ì', 'í', 'î', 'ï':
		return []rune{'i'}
	case 'ñ':
		return []rune{'n'}
	case 'ò', 'ó', 'ô', 'õ', 'ø':
		return []rune{'o'}
	case 'ö', 'œ':
		return []rune{'o', 'e'}
	case 'ù', 'ú', 'û':
		return []rune{'u'}
	case 'ü':
		return []rune{'u', 'e'}
	case 'ß':
		return []rune{'s', 's'}
	}
	return []rune{r}
}

// stems are word parts that carry a concept inside compounds, as German and
// Dutch write them ("Telefonnummer", "woonplaats", "Geburtsdatum") or as
// run-together English does ("billingaddress"). Longest first.
var stems = []struct{ stem, concept string }{
	{"geburts", cBirth}, {"geboorte", cBirth}, {"birth", cBirth}, {"nascimento", cBirth}, {"nacimiento", cBirth}, {"naissance", cBirth},
	{"postleitzahl", cPostcode}, {"postcode", cPostcode}, {"zipcode", cPostcode}, {"postal", cPostcode},
	{"telefon", cPhone}, {"telefoon", cPhone}, {"telephone", cPhone}, {"phone", cPhone}, {"mobil", cPhone},
	{"email", cEmail}, {"e_mail", cEmail},
	{"vorname", cFirst}, {"voornaam", cFirst}, {"firstname", cFirst}, {"prenom", cFirst},
	{"nachname", cLast}, {"achternaam", cLast}, {"lastname", cLast}, {"surname", cLast}, {"familienname", cLast},
	{"strasse", cStreet}, {"straat", cStreet}, {"street", cStreet},
	{"adresse", cAddress}, {"address", cAddress}, {"anschrift", cAddress},
	{"hausnummer", cAddrLine}, {"huisnummer", cAddrLine},
	{"woonplaats", cCity}, {"wohnort", cCity},
	{"kennzeichen", cPlate}, {"kenteken", cPlate}, {"nummernschild", cPlate},
	{"passwort", cPassword}, {"wachtwoord", cPassword}, {"password", cPassword}, {"kennwort", cPassword},
	{"steuer", cTaxID}, {"sozialversicherung", cNatID}, {"personalausweis", cNatID}, {"burgerservice", cNatID}, {"ausweis", cNatID},
	{"reisepass", cPassport}, {"paspoort", cPassport}, {"passport", cPassport},
	{"fuehrerschein", cLicense}, {"rijbewijs", cLicense},
	{"username", cUsername}, {"benutzername", cUsername}, {"gebruikersnaam", cUsername},
	{"kreditkarte", cCard}, {"cardnumber", cCard}, {"creditcard", cCard},
	{"kontonummer", cIBAN}, {"rekeningnummer", cIBAN},
	{"lichtbild", cPhoto}, {"passbild", cPhoto}, {"unterschrift", cPhoto}, {"handtekening", cPhoto},
	{"bemerkung", cNote}, {"opmerking", cNote}, {"anmerkung", cNote}, {"notiz", cNote},
	{"ansprechpartner", cPerson}, {"mitarbeiter", cPerson}, {"empfaenger", cPerson}, {"medewerker", cPerson},
}

// concepts maps each word to its concept; a word not in the lexicon is
// tried as a compound, and otherwise stands for itself.
func concepts(toks []string) []string {
	out := make([]string, 0, len(toks))
	for _, t := range toks {
		if c, ok := lexicon[t]; ok {
			out = append(out, c)
			continue
		}
		if c, ok := lexicon[singular(t)]; ok {
			out = append(out, c)
			continue
		}
		found := ""
		if len(t) >= 6 {
			for _, s := range stems {
				if strings.Contains(t, s.stem) {
					found = s.concept
					break
				}
			}
		}
		if found == "" {
			found = "=" + t
		}
		out = append(out, found)
	}
	return out
}

func singular(t string) string {
	switch {
	case strings.HasSuffix(t, "ies") && len(t) > 4:
		return t[:len(t)-3] + "y"
	case strings.HasSuffix(t, "sses"), strings.HasSuffix(t, "xes"):
		return t[:len(t)-2]
	case strings.HasSuffix(t, "s") && !strings.HasSuffix(t, "ss") && len(t) > 3:
		return t[:len(t)-1]
	}
	return t
}

// words is an identifier read as concepts, with helpers to ask about them.
type words struct {
	raw  []string // tokens
	cons []string // concept per token
}

func readName(s string) words {
	toks := nameTokens(s)
	// Words written apart that the lexicon knows together: user_name,
	// post_code, e_mail, pass_word, ip_address.
	for i := 0; i+1 < len(toks); i++ {
		if _, ok := lexicon[toks[i]+toks[i+1]]; ok && joinable[toks[i]+toks[i+1]] {
			toks = append(toks[:i], append([]string{toks[i] + toks[i+1]}, toks[i+2:]...)...)
		}
	}
	return words{raw: toks, cons: concepts(toks)}
}

var joinable = map[string]bool{"username": true, "postcode": true, "zipcode": true, "email": true, "password": true, "ipaddress": true,
	"macaddress": true, "apikey": true, "birthdate": true, "birthday": true, "surname": true, "firstname": true, "lastname": true,
	"fullname": true, "displayname": true, "nickname": true, "cardholder": true, "screenname": true, "passphrase": true,
	"privatekey": true, "cellphone": true, "postalcode": true, "deviceid": true, "numberplate": true, "macaddr": true, "ipaddr": true,
	"givenname": true, "familyname": true, "legalname": true, "passportnumber": true, "phonenumber": true, "idcard": true,
	"taxid": true, "steuerid": true, "nationalid": true, "motdepasse": true, "codicefiscale": true, "birthyear": true, "latlng": true,
	"latlon": true, "policyholder": true, "socialsecurity": true, "emailaddress": true, "nomecompleto": true, "nombrecompleto": true}

func (w words) has(cs ...string) bool {
	for _, c := range w.cons {
		for _, x := range cs {
			if c == x {
				return true
			}
		}
	}
	return false
}

func (w words) hasWord(ws ...string) bool {
	for _, t := range w.raw {
		for _, x := range ws {
			if t == x {
				return true
			}
		}
	}
	return false
}

// last is the concept of the last word that is not a number or an id
// suffix: what the column is ("customer_email" is an email).
func (w words) last() string {
	for i := len(w.cons) - 1; i >= 0; i-- {
		if w.cons[i] != cNumber && w.cons[i] != cNumberID && !isNumeric(w.raw[i]) {
			return w.cons[i]
		}
	}
	return ""
}

func isNumeric(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
