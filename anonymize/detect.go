package anonymize

import (
	"bytes"
	"net/netip"
	"strings"
)

// PII kinds the detectors know.
const (
	KindEmail      = "email"
	KindPhone      = "phone"
	KindName       = "name"
	KindAddress    = "address"
	KindIP         = "ip"
	KindCard       = "card number"
	KindIBAN       = "iban"
	KindNationalID = "national id"
	KindBirthDate  = "date of birth"
	KindFreeText   = "free text"
	KindSecret     = "credential"
	KindLocation   = "location"
)

// personTables hint that a bare "name" column is a person's name.
var personTables = []string{"user", "customer", "person", "people", "employee", "contact", "member", "account", "patient", "student", "author", "client", "profile", "staff", "subscriber"}

// nameKind classifies a column (or JSON key) by its name alone.
func nameKind(table, col string) (kind, reason string) {
	n := strings.ToLower(col)
	toks := strings.FieldsFunc(n, func(r rune) bool { return r == '_' || r == '-' || r == ' ' || r == '.' })
	has := func(words ...string) bool {
		for _, t := range toks {
			for _, w := range words {
				if t == w {
					return true
				}
			}
		}
		return false
	}
	is := func(words ...string) bool {
		for _, w := range words {
			if n == w {
				return true
			}
		}
		return false
	}
	switch {
	case strings.Contains(n, "email") || has("mail"):
		return KindEmail, "name looks like an email"
	case has("phone", "mobile", "cell", "tel", "telephone", "fax", "msisdn") || strings.Contains(n, "phone"):
		return KindPhone, "name looks like a phone number"
	case has("ssn", "passport", "nin", "tin", "sin") || strings.Contains(n, "social_security") || strings.Contains(n, "national_id") ||
		strings.Contains(n, "tax_id") || (strings.Contains(n, "driv") && (strings.Contains(n, "license") || strings.Contains(n, "licence"))):
		return KindNationalID, "name looks like a national id"
	case has("iban", "bic") || strings.Contains(n, "bank_account") || strings.Contains(n, "account_number"):
		return KindIBAN, "name looks like a bank account"
	case has("pan", "cc") || strings.Contains(n, "card_number") || strings.Contains(n, "cardnumber") || strings.Contains(n, "credit_card"):
		return KindCard, "name looks like a card number"
	case has("dob", "birthday", "birthdate", "born") || strings.Contains(n, "birth"):
		return KindBirthDate, "name looks like a date of birth"
	case has("password", "passwd", "secret", "token", "otp") || strings.Contains(n, "api_key") || strings.Contains(n, "password"):
		return KindSecret, "name looks like a credential"
	case has("ip", "ipaddr", "ipv4", "ipv6") || is("ip_address", "remote_addr", "client_addr"):
		return KindIP, "name looks like an IP address"
	case has("firstname", "lastname", "surname", "fullname", "fname", "lname", "middlename", "nickname", "username") ||
		has("name") && has("first", "last", "full", "given", "family", "middle", "maiden", "contact", "customer", "person", "display", "legal", "nick", "user", "billing", "shipping", "recipient", "holder"):
		return KindName, "name looks like a person's name"
	case n == "name" && personTable(table):
		return KindName, "name column of a person table"
	case has("street", "address", "addr", "city", "zip", "zipcode", "postcode", "postal", "addressline", "line1", "line2"):
		return KindAddress, "name looks like a postal address"
	case has("lat", "lng", "lon", "latitude", "longitude", "geo", "geolocation", "location", "coordinates"):
		return KindLocation, "name looks like a location"
	case has("note", "notes", "comment", "comments", "bio", "remark", "remarks", "memo", "message", "about"):
		return KindFreeText, "free-text column"
	}
	return "", ""
}

func personTable(table string) bool {
	t := strings.ToLower(table)
	for _, p := range personTables {
		if strings.Contains(t, p) {
			return true
		}
	}
	return false
}

// valueKind classifies one whole value.
func valueKind(v []byte) string {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0:
		return ""
	case isEmail(v):
		return KindEmail
	case isCard(v):
		return KindCard
	case isIBAN(v):
		return KindIBAN
	case isSSN(v):
		return KindNationalID
	case isIP(v):
		return KindIP
	case isPhone(v):
		return KindPhone
	}
	return ""
}

// isEmail is a cheap syntactic check (local@domain.tld), enough to flag a
// value; net/mail would accept display names and is slower.
func isEmail(v []byte) bool {
	at := bytes.IndexByte(v, '@')
	if at < 1 || at != bytes.LastIndexByte(v, '@') {
		return false
	}
	dom := v[at+1:]
	dot := bytes.LastIndexByte(dom, '.')
	if dot < 1 || dot >= len(dom)-2 {
		return false
	}
	for _, c := range v {
		if c <= ' ' || c == '<' || c == '>' || c == ',' || c == ';' || c == '"' {
			return false
		}
	}
	return true
}

func digitsOf(v []byte, allowed string) (d []byte, ok bool) {
	for _, c := range v {
		switch {
		case c >= '0' && c <= '9':
			d = append(d, c)
		case strings.IndexByte(allowed, c) >= 0:
		default:
			return nil, false
		}
	}
	return d, true
}

func isCard(v []byte) bool {
	d, ok := digitsOf(v, " -")
	return ok && len(d) >= 13 && len(d) <= 19 && luhn(d)
}

func luhn(d []byte) bool {
	sum := 0
	for i := 0; i < len(d); i++ {
		n := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	return sum%10 == 0
}

func isIBAN(v []byte) bool {
	var s []byte
	for _, c := range v {
		if c != ' ' {
			s = append(s, c)
		}
	}
	if len(s) < 15 || len(s) > 34 || !isUpperLetter(s[0]) || !isUpperLetter(s[1]) || !isDigit(s[2]) || !isDigit(s[3]) {
		return false
	}
	// mod 97 of the rearranged string, letters as 10..35, must be 1.
	r := append(append([]byte{}, s[4:]...), s[:4]...)
	m := 0
	for _, c := range r {
		switch {
		case isDigit(c):
			m = (m*10 + int(c-'0')) % 97
		case isUpperLetter(c):
			m = (m*100 + int(c-'A'+10)) % 97
		default:
			return false
		}
	}
	return m == 1
}

// isSSN matches a US social security number, ddd-dd-dddd, excluding the
// never-issued area numbers.
func isSSN(v []byte) bool {
	if len(v) != 11 || v[3] != '-' || v[6] != '-' {
		return false
	}
	for i, c := range v {
		if i != 3 && i != 6 && !isDigit(c) {
			return false
		}
	}
	area := string(v[:3])
	return area != "000" && area != "666" && v[0] != '9' && string(v[4:6]) != "00" && string(v[7:]) != "0000"
}

func isIP(v []byte) bool {
	s := string(v)
	if i := strings.IndexByte(s, '/'); i > 0 {
		s = s[:i]
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

func isPhone(v []byte) bool {
	d, ok := digitsOf(v, " -+().")
	if !ok || len(d) < 7 || len(d) > 15 {
		return false
	}
	// A bare run of digits is as likely an order number as a phone.
	return v[0] == '+' || v[0] == '(' || bytes.ContainsAny(v, " -.()")
}

func isDigit(c byte) bool       { return c >= '0' && c <= '9' }
func isUpperLetter(c byte) bool { return c >= 'A' && c <= 'Z' }

// embeddedKind finds PII inside free text: emails, card numbers, IBANs and
// SSNs appearing as words.
func embeddedKind(v []byte) string {
	for _, w := range bytes.FieldsFunc(v, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == ',' || r == ';' || r == '(' || r == ')' || r == '"' || r == '\'' || r == '<' || r == '>' || r == ':'
	}) {
		w = bytes.TrimRight(w, ".!?")
		switch {
		case isEmail(w):
			return KindEmail
		case isSSN(w):
			return KindNationalID
		case isIBAN(w):
			return KindIBAN
		case isCard(w):
			return KindCard
		}
	}
	// Card numbers written with spaces span several words.
	if _, ok := cardRun(v); ok {
		return KindCard
	}
	return ""
}

// cardRun looks for 13-19 digits separated only by single spaces or dashes
// that pass the Luhn check, and returns the digits.
func cardRun(v []byte) ([]byte, bool) {
	var d []byte
	flush := func() bool {
		ok := len(d) >= 13 && len(d) <= 19 && luhn(d)
		if !ok {
			d = d[:0]
		}
		return ok
	}
	for i, c := range v {
		switch {
		case isDigit(c):
			d = append(d, c)
		case (c == ' ' || c == '-') && len(d) > 0 && i+1 < len(v) && isDigit(v[i+1]):
		default:
			if flush() {
				return d, true
			}
		}
	}
	return d, flush()
}
