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
	KindUsername   = "username"
	KindAddress    = "address"
	KindIP         = "ip"
	KindMAC        = "mac address"
	KindDeviceID   = "device id"
	KindCard       = "card number"
	KindIBAN       = "iban"
	KindNationalID = "national id"
	KindBirthDate  = "date of birth"
	KindFreeText   = "free text"
	KindSecret     = "credential"
	KindLocation   = "location"
	KindVehicle    = "license plate"
	KindDocument   = "photo or document"
)

// Kinds lists every kind, for reports.
var Kinds = []string{KindEmail, KindPhone, KindName, KindUsername, KindAddress, KindIP, KindMAC, KindDeviceID, KindCard, KindIBAN,
	KindNationalID, KindBirthDate, KindFreeText, KindSecret, KindLocation, KindVehicle, KindDocument}

// valueKind classifies one whole value by its shape alone (the strong
// shapes: a lone value of these is evidence on its own).
func valueKind(v []byte) string {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0:
		return ""
	case len(v) > 64:
		// No card, IBAN, id, address or phone is this long.
		if isEmail(v) {
			return KindEmail
		}
		if isSecretValue(v) {
			return KindSecret
		}
		return ""
	case isEmail(v):
		return KindEmail
	case isCard(v):
		return KindCard
	case isIBAN(v):
		return KindIBAN
	case isSSN(v) || isNINO(v) || isDNI(v) || isCPFFormatted(v):
		return KindNationalID
	case isIP(v):
		return KindIP
	case isMAC(v):
		return KindMAC
	case isSecretValue(v):
		return KindSecret
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
		if c <= ' ' || c == '<' || c == '>' || c == ',' || c == ';' || c == '"' || c == '/' || c == ':' {
			return false
		}
	}
	return true
}

// roleLocal are mailbox names of a function, not a person.
var roleLocal = map[string]bool{"info": true, "sales": true, "support": true, "contact": true, "hello": true, "admin": true,
	"office": true, "billing": true, "accounts": true, "noreply": true, "no-reply": true, "help": true, "team": true, "hr": true,
	"jobs": true, "careers": true, "press": true, "marketing": true, "service": true, "orders": true, "enquiries": true,
	"inquiries": true, "mail": true, "webmaster": true, "postmaster": true, "reservations": true, "booking": true, "bookings": true,
	"kontakt": true, "contato": true, "contacto": true, "finance": true, "legal": true, "privacy": true, "security": true, "ops": true}

func roleEmail(v []byte) bool {
	at := bytes.IndexByte(v, '@')
	return at > 0 && roleLocal[strings.ToLower(string(v[:at]))]
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

// isCard: 13-19 digits, Luhn, an issuer prefix cards use (2-6: Mastercard,
// Amex, Diners, JCB, Visa, Discover, UnionPay, Maestro), written as one run
// or in the groups cards are printed in (4-4-4-4, 4-6-5, ...). Phone
// numbers fail the prefix or the grouping, which is what keeps a masked
// phone from passing for a card.
func isCard(v []byte) bool {
	_, ok := cardDigits(v)
	return ok
}

func cardDigits(v []byte) ([]byte, bool) {
	var d []byte
	var groups []int
	var sep byte
	n := 0
	for i, c := range v {
		switch {
		case isDigit(c):
			d = append(d, c)
			n++
		case (c == ' ' || c == '-') && n > 0 && i+1 < len(v) && isDigit(v[i+1]):
			if sep != 0 && c != sep {
				return nil, false
			}
			sep = c
			groups = append(groups, n)
			n = 0
		default:
			return nil, false
		}
	}
	groups = append(groups, n)
	return d, cardGroups(groups) && validCard(d)
}

func validCard(d []byte) bool {
	return len(d) >= 13 && len(d) <= 19 && d[0] >= '2' && d[0] <= '6' && luhn(d)
}

func cardGroups(g []int) bool {
	if len(g) == 1 {
		return true
	}
	if len(g) == 3 && g[0] == 4 && g[1] == 6 && (g[2] == 5 || g[2] == 4) {
		return true
	}
	for i, n := range g {
		if i < len(g)-1 && n != 4 || i == len(g)-1 && (n < 1 || n > 4) {
			return false
		}
	}
	return true
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

func isIP(v []byte) bool {
	s := string(v)
	if i := strings.IndexByte(s, '/'); i > 0 {
		s = s[:i]
	}
	if strings.Count(s, ".") != 3 && !strings.Contains(s, ":") {
		return false
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

func isMAC(v []byte) bool {
	if len(v) != 17 {
		return false
	}
	for i, c := range v {
		if i%3 == 2 {
			if c != ':' && c != '-' {
				return false
			}
		} else if !isHex(c) {
			return false
		}
	}
	return true
}

func isPhone(v []byte) bool {
	d, ok := digitsOf(v, " -+().")
	if !ok || len(d) < 7 || len(d) > 15 {
		return false
	}
	// A bare run of digits is as likely an order number as a phone.
	if !(v[0] == '+' || v[0] == '(' || bytes.ContainsAny(v, " -.()")) {
		return false
	}
	if v[0] == '+' || v[0] == '(' || v[0] == '0' {
		return true
	}
	// Without a prefix, the groups must be a phone's: a last group of 3+
	// digits (555-0101) or groups of 2-3 (91 234 56 78), not a drug code
	// (12345-6789-01) or an ISBN.
	var groups []int
	n := 0
	for _, c := range v {
		if isDigit(c) {
			n++
		} else if n > 0 {
			groups = append(groups, n)
			n = 0
		}
	}
	groups = append(groups, n)
	maxG := 0
	for _, g := range groups {
		maxG = max(maxG, g)
	}
	return groups[len(groups)-1] >= 3 || maxG <= 3
}

func isDigit(c byte) bool       { return c >= '0' && c <= '9' }
func isUpperLetter(c byte) bool { return c >= 'A' && c <= 'Z' }

// embeddedKind finds PII inside free text: emails, card numbers, IBANs,
// national ids and phone numbers appearing as words.
func embeddedKind(v []byte) string {
	for _, w := range bytes.FieldsFunc(v, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == ',' || r == ';' || r == '(' || r == ')' || r == '"' || r == '\'' || r == '<' || r == '>' || r == ':'
	}) {
		w = bytes.TrimRight(w, ".!?")
		switch {
		case isEmail(w):
			return KindEmail
		case isSSN(w) || isNINO(w) || isDNI(w) || isCPFFormatted(w):
			return KindNationalID
		case isIBAN(w):
			return KindIBAN
		case isCard(w):
			return KindCard
		case isIP(w):
			return KindIP
		}
	}
	// Card numbers and phones written with spaces span several words.
	if _, ok := cardRun(v); ok {
		return KindCard
	}
	if phoneRun(v) {
		return KindPhone
	}
	return ""
}

// cardRun looks for 13-19 digits separated only by single spaces or dashes
// that pass isCard, standing as words of their own (not inside a hash or a
// uuid), and returns the digits.
func cardRun(v []byte) ([]byte, bool) {
	alnum := func(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'z' || isUpperLetter(c) }
	for i := 0; i < len(v); i++ {
		if !isDigit(v[i]) || i > 0 && (alnum(v[i-1]) || v[i-1] == '+' || (v[i-1] == '-' || v[i-1] == '.') && i > 1 && alnum(v[i-2])) {
			continue
		}
		j := i
		for j < len(v) && (isDigit(v[j]) || (v[j] == ' ' || v[j] == '-') && j+1 < len(v) && isDigit(v[j+1])) {
			j++
		}
		end := j < len(v) && (alnum(v[j]) || (v[j] == '-' || v[j] == '.') && j+1 < len(v) && alnum(v[j+1]))
		if !end {
			if d, ok := cardDigits(v[i:j]); ok {
				return d, true
			}
		}
		i = j
	}
	return nil, false
}

// phoneRun: a phone number inside text: "+" or "(" then 7-15 digits with
// separators, or 3-3-4 / 3-4 digit groups.
func phoneRun(v []byte) bool {
	for i := 0; i < len(v); i++ {
		if v[i] != '+' && v[i] != '(' && !(isDigit(v[i]) && (i == 0 || v[i-1] == ' ')) {
			continue
		}
		j, digits, seps := i, 0, 0
		for j < len(v) && (isDigit(v[j]) || strings.IndexByte(" -+().", v[j]) >= 0) {
			if isDigit(v[j]) {
				digits++
			} else if v[j] != '+' {
				seps++
			}
			j++
		}
		if digits >= 7 && digits <= 15 && (v[i] == '+' || v[i] == '(' || seps >= 2) && !isDateLike(bytes.TrimSpace(v[i:min(j, i+10)])) {
			return true
		}
	}
	return false
}
