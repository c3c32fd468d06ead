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

func squeeze(v []byte, drop string) []byte {
	if len(v) > 24 {
		return nil // longer than any id these checks know
	}
	out := make([]byte, 0, len(v))
	for _, c := range v {
		if strings.IndexByte(drop, c) < 0 {
			out = append(out, c)
		}
	}
	return out
}

func allDigits(v []byte) bool {
	for _, c := range v {
		if !isDigit(c) {
			return false
		}
	}
	return len(v) > 0
}

// isNINO: a UK National Insurance number, QQ 12 34 56 C, with the prefixes
// HMRC never issues excluded.
func isNINO(v []byte) bool {
	s := squeeze(v, " ")
	if len(s) != 9 || !isUpperLetter(s[0]) || !isUpperLetter(s[1]) || !allDigits(s[2:8]) || s[8] < 'A' || s[8] > 'D' {
		return false
	}
	if strings.IndexByte("DFIQUV", s[0]) >= 0 || strings.IndexByte("DFIOQUV", s[1]) >= 0 {
		return false
	}
	switch string(s[:2]) {
	case "BG", "GB", "NK", "KN", "TN", "NT", "ZZ":
		return false
	}
	return true
}

// isNIR: a French social security number (NIR), 13 digits and a two-digit
// key, 97 - (number mod 97).
func isNIR(v []byte) bool {
	s := squeeze(v, " ")
	if len(s) != 15 || !allDigits(s) || strings.IndexByte("12378", s[0]) < 0 {
		return false
	}
	m := 0
	for _, c := range s[:13] {
		m = (m*10 + int(c-'0')) % 97
	}
	return 97-m == int(s[13]-'0')*10+int(s[14]-'0')
}

// isSteuerID: a German tax identification number, 11 digits, ISO 7064
// MOD 11,10 check digit.
func isSteuerID(v []byte) bool {
	s := squeeze(v, " ")
	if len(s) != 11 || !allDigits(s) || s[0] == '0' {
		return false
	}
	product := 10
	for _, c := range s[:10] {
		sum := (int(c-'0') + product) % 10
		if sum == 0 {
			sum = 10
		}
		product = sum * 2 % 11
	}
	check := 11 - product
	if check == 10 {
		check = 0
	}
	return check == int(s[10]-'0')
}

// isBSN: a Dutch citizen service number, 9 digits passing the 11-test.
func isBSN(v []byte) bool {
	s := squeeze(v, " .")
	if len(s) != 9 || !allDigits(s) {
		return false
	}
	sum := 0
	for i := 0; i < 8; i++ {
		sum += (9 - i) * int(s[i]-'0')
	}
	sum -= int(s[8] - '0')
	return sum != 0 && sum%11 == 0
}

// isDNI: a Spanish DNI (8 digits and the letter of the number mod 23) or
// NIE (X, Y or Z, 7 digits, letter).
func isDNI(v []byte) bool {
	s := squeeze(v, " -")
	if len(s) != 9 || !isUpperLetter(s[8]) {
		return false
	}
	num := append([]byte{}, s[:8]...)
	switch num[0] {
	case 'X':
		num[0] = '0'
	case 'Y':
		num[0] = '1'
	case 'Z':
		num[0] = '2'
	}
	if !allDigits(num) {
		return false
	}
	n := 0
	for _, c := range num {
		n = n*10 + int(c-'0')
	}
	return "TRWAGMYFPDXBNJZSQVHLCKE"[n%23] == s[8]
}

// isCPF: a Brazilian CPF, 11 digits with two mod-11 check digits.
func isCPF(v []byte) bool {
	s := squeeze(v, ".-")
	if len(s) != 11 || !allDigits(s) || bytes.Count(s, s[:1]) == 11 {
		return false
	}
	for k := 9; k <= 10; k++ {
		sum := 0
		for i := 0; i < k; i++ {
			sum += int(s[i]-'0') * (k + 1 - i)
		}
		d := sum * 10 % 11 % 10
		if d != int(s[k]-'0') {
			return false
		}
	}
	return true
}

func isCPFFormatted(v []byte) bool {
	return len(v) == 14 && v[3] == '.' && v[7] == '.' && v[11] == '-' && isCPF(v)
}

// checksumID says which national number with a check digit a bare run of
// digits passes. Random digits pass one of them by chance (the BSN's
// 11-test one time in 11), so columns need most samples to pass.
func checksumID(v []byte) string {
	switch {
	case isNIR(v):
		return "French NIR"
	case isSteuerID(v):
		return "German Steuer-ID"
	case isBSN(v):
		return "Dutch BSN"
	case isCPF(v):
		return "Brazilian CPF"
	}
	return ""
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

func isUUIDValue(v []byte) bool {
	var u [16]byte
	return len(v) == 36 && parseUUID(&u, v)
}

// isIMEI: 15 digits with a Luhn check digit.
func isIMEI(v []byte) bool {
	s := squeeze(v, " -")
	return len(s) == 15 && allDigits(s) && luhn(s)
}

// isSecretValue: password hashes, tokens and keys in the formats that say
// so themselves.
func isSecretValue(v []byte) bool {
	s := string(v)
	for _, p := range []string{"$2a$", "$2b$", "$2y$", "$argon2", "$scrypt$", "$pbkdf2", "$5$", "$6$", "$1$", "pbkdf2_sha256$", "pbkdf2_sha1$",
		"bcrypt$", "argon2$", "sha1$", "{SSHA}", "{SHA}", "sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_", "ghp_", "gho_", "ghs_", "ghu_",
		"github_pat_", "glpat-", "xoxb-", "xoxp-", "xoxa-", "npm_", "shpat_", "shpss_", "SG.", "AIza", "otpauth://", "-----BEGIN", "Bearer ", "ya29."} {
		if strings.HasPrefix(s, p) && len(s) >= len(p)+12 {
			return true
		}
	}
	if len(s) == 20 && (strings.HasPrefix(s, "AKIA") || strings.HasPrefix(s, "ASIA")) && isUpperAlnum(s[4:]) {
		return true
	}
	return isJWT(v)
}

func isUpperAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isUpperLetter(s[i]) && !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func isJWT(v []byte) bool {
	if !bytes.HasPrefix(v, []byte("eyJ")) || bytes.Count(v, []byte(".")) != 2 {
		return false
	}
	for _, c := range v {
		if !(c == '.' || c == '-' || c == '_' || isDigit(c) || c >= 'a' && c <= 'z' || isUpperLetter(c)) {
			return false
		}
	}
	return len(v) > 30
}

// isBase32Secret: an RFC 4648 base32 string of 16-64 characters mixing
// letters and digits: how TOTP secrets are stored.
func isBase32Secret(v []byte) bool {
	s := bytes.TrimRight(v, "=")
	if len(s) < 16 || len(s) > 64 {
		return false
	}
	letters, digits := 0, 0
	for _, c := range s {
		switch {
		case isUpperLetter(c):
			letters++
		case c >= '2' && c <= '7':
			digits++
		default:
			return false
		}
	}
	return letters > 0 && digits > 0
}

// isRandomToken: 20+ characters of hex or base64/url alphabet with both
// letters and digits and no word structure: what session ids, API keys and
// hashes look like (and checksums: the column name decides).
func isRandomToken(v []byte) bool {
	if len(v) < 20 {
		return false
	}
	letters, digits := 0, 0
	for _, c := range v {
		switch {
		case isDigit(c):
			digits++
		case c >= 'a' && c <= 'z' || isUpperLetter(c):
			letters++
		case c == '-' || c == '_' || c == '+' || c == '/' || c == '=' || c == '.' || c == '$':
		default:
			return false
		}
	}
	return letters > 0 && digits > 0
}

// isGeoPair: "48.8566,2.3522", "48.8566 2.3522", "(2.35,48.85)",
// "POINT(2.35 48.85)".
func isGeoPair(v []byte) bool {
	s := strings.TrimSpace(string(v))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "SRID=4326;"), "POINT")
	s = strings.Trim(s, "() ")
	var parts []string
	if strings.Contains(s, ",") {
		parts = strings.Split(s, ",")
	} else {
		parts = strings.Fields(s)
	}
	if len(parts) != 2 {
		return false
	}
	for _, p := range parts {
		p = strings.TrimSpace(p)
		dot := strings.IndexByte(p, '.')
		if dot < 1 || len(p)-dot-1 < 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if !(isDigit(p[i]) || p[i] == '.' || i == 0 && p[i] == '-') {
				return false
			}
		}
	}
	return true
}

// byteaKind reads the magic bytes of a bytea sample in PostgreSQL's hex
// output (\x89504e47...): "image" or "document", "" if neither.
func byteaKind(v []byte) string {
	if !bytes.HasPrefix(v, []byte(`\x`)) {
		return ""
	}
	h := v[2:]
	b := make([]byte, 0, min(len(h)/2, 140))
	for i := 0; i+1 < len(h) && len(b) < 140; i += 2 {
		if !isHex(h[i]) || !isHex(h[i+1]) {
			return ""
		}
		b = append(b, unhex(h[i])<<4|unhex(h[i+1]))
	}
	has := func(off int, magic string) bool {
		return len(b) >= off+len(magic) && string(b[off:off+len(magic)]) == magic
	}
	switch {
	case has(0, "\x89PNG\r\n\x1a\n"), has(0, "\xff\xd8\xff"), has(0, "GIF87a"), has(0, "GIF89a"), has(0, "BM") && len(b) > 14,
		has(0, "II*\x00"), has(0, "MM\x00*"), has(0, "RIFF") && has(8, "WEBP"), has(4, "ftypheic"), has(4, "ftypheix"),
		has(4, "ftypmif1"), has(4, "ftypavif"), has(128, "DICM"):
		return "image"
	case has(0, "%PDF-"), has(0, "PK\x03\x04"), has(0, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"), has(0, `{\rtf`):
		return "document"
	}
	return ""
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
