package anonymize

import (
	"bytes"
	"fmt"
)

// valueStats counts what a column's sampled values look like.
type valueStats struct {
	n, distinct int
	// whole-value shapes
	email, emailRole, emailReserved   int
	card, iban, natShape, checksum    int
	checksumName                      string
	phone, ip, mac, secret, base32    int
	geo, imei, person, nameShaped     int
	placeLike, test, tokens, capPairs int
	idLike, withDigit, phonePlus      int
	image, document                   int
	// inside text
	embedded map[string]int
	mentions int
}

// analyse reads sampled values (array elements already split).
func analyse(samples [][]byte, bytea bool) *valueStats {
	vs := &valueStats{embedded: map[string]int{}}
	seen := map[string]bool{}
	for _, s := range samples {
		s = bytes.TrimSpace(s)
		if len(s) == 0 {
			continue
		}
		vs.n++
		if k := string(s[:min(len(s), 64)]); !seen[k] {
			seen[k] = true
			vs.distinct++
		}
		if bytea {
			switch byteaKind(s) {
			case "image":
				vs.image++
			case "document":
				vs.document++
			}
			continue
		}
		if testValue(s) {
			vs.test++
		}
		if isRandomToken(s) {
			vs.tokens++
		}
		if isUUIDValue(s) || isIMEI(s) || len(s) >= 12 && isRandomToken(s) || len(s) >= 12 && allHex(s) {
			vs.idLike++
		}
		if bytes.ContainsAny(s, "0123456789") {
			vs.withDigit++
		}
		if placeLike(s) {
			vs.placeLike++
		}
		switch valueKind(s) {
		case KindEmail:
			vs.email++
			if reservedEmail(s) {
				vs.emailReserved++
			} else if roleEmail(s) {
				vs.emailRole++
			}
			continue
		case KindCard:
			vs.card++
			continue
		case KindIBAN:
			vs.iban++
			continue
		case KindNationalID:
			vs.natShape++
			continue
		case KindIP:
			vs.ip++
			continue
		case KindMAC:
			vs.mac++
			continue
		case KindSecret:
			vs.secret++
			continue
		case KindPhone:
			if !isDateLike(s) {
				vs.phone++
				if s[0] == '+' {
					vs.phonePlus++
				}
				continue
			}
		}
		if len(s) > 80 {
			// Long text: only what can hide inside it.
			if k := embeddedKind(s); k != "" && (wordy(s) || k != KindPhone && k != KindIP) {
				vs.embedded[k]++
			} else if mentionsPerson(s) {
				vs.mentions++
			}
			if capitalisedPair(s) {
				vs.capPairs++
			}
			continue
		}
		if name := checksumID(s); name != "" {
			vs.checksum++
			vs.checksumName = name
			if isIMEI(s) {
				vs.imei++
			}
			continue
		}
		if isIMEI(s) {
			vs.imei++
			continue
		}
		if isBase32Secret(s) {
			vs.base32++
			continue
		}
		if isGeoPair(s) {
			vs.geo++
			continue
		}
		switch personNameScore(s) {
		case 2:
			vs.person++
			vs.nameShaped++
			continue
		case 1:
			vs.nameShaped++
		}
		if capitalisedPair(s) {
			vs.capPairs++
		}
		if k := embeddedKind(s); k != "" && (wordy(s) || k != KindPhone && k != KindIP) {
			vs.embedded[k]++
		} else if mentionsPerson(s) {
			vs.mentions++
		}
	}
	return vs
}

// isDateLike: 2024-01-05, 05.01.2024: digits and separators that are a
// date, not a phone.
func isDateLike(v []byte) bool {
	if len(v) < 8 || len(v) > 10 {
		return false
	}
	var groups []int
	n := 0
	for _, c := range v {
		switch {
		case isDigit(c):
			n++
		case c == '-' || c == '.' || c == '/':
			groups = append(groups, n)
			n = 0
		default:
			return false
		}
	}
	groups = append(groups, n)
	return len(groups) == 3 && (groups[0] == 4 && groups[1] <= 2 && groups[2] <= 2 || groups[0] <= 2 && groups[1] <= 2 && groups[2] == 4)
}

type evidence struct {
	kind, why string
}

func (vs *valueStats) frac(k int, num, den int) bool { return k > 0 && k*den >= vs.n*num }

func (vs *valueStats) are(k int, noun string) string {
	return fmt.Sprintf("%d/%d sampled values %s %s", k, vs.n, plural(k, "is", "are"), noun)
}

// strongKinds are value kinds that make a column PII whatever its name
// says: most values are emails (of people), card numbers, IBANs, national
// ids, IP or MAC addresses, credentials in their own formats.
func (vs *valueStats) strongKinds() []evidence {
	var out []evidence
	personal := vs.email - vs.emailReserved - vs.emailRole
	if vs.frac(vs.email, 1, 2) && personal > 0 {
		out = append(out, evidence{KindEmail, vs.are(vs.email, plural(vs.email, "an email", "emails"))})
	}
	if vs.frac(vs.card, 1, 2) {
		out = append(out, evidence{KindCard, vs.are(vs.card, plural(vs.card, "a card number (Luhn)", "card numbers (Luhn)"))})
	}
	if vs.frac(vs.iban, 1, 2) {
		out = append(out, evidence{KindIBAN, vs.are(vs.iban, plural(vs.iban, "an IBAN (mod 97)", "IBANs (mod 97)"))})
	}
	if vs.frac(vs.natShape, 1, 2) {
		out = append(out, evidence{KindNationalID, vs.are(vs.natShape, "national ids (SSN, NINO, DNI or CPF with valid check)")})
	}
	if vs.n >= 3 && vs.frac(vs.checksum, 4, 5) {
		out = append(out, evidence{KindNationalID, vs.are(vs.checksum, "valid "+vs.checksumName+" numbers (check digit)")})
	}
	if vs.frac(vs.ip, 1, 2) {
		out = append(out, evidence{KindIP, vs.are(vs.ip, "IP addresses")})
	}
	if vs.frac(vs.mac, 1, 2) {
		out = append(out, evidence{KindMAC, vs.are(vs.mac, "MAC addresses")})
	}
	if vs.frac(vs.secret, 1, 2) {
		out = append(out, evidence{KindSecret, vs.are(vs.secret, "password hashes, tokens or keys (by format)")})
	}
	if vs.n >= 3 && vs.frac(vs.imei, 4, 5) {
		out = append(out, evidence{KindDeviceID, vs.are(vs.imei, "IMEIs (Luhn)")})
	}
	if vs.frac(vs.image+vs.document, 1, 2) && vs.document > 0 {
		out = append(out, evidence{KindDocument, vs.byteaWhy()})
	}
	return out
}

// evidence is every kind the values suggest, strongest first.
func (vs *valueStats) evidence() []evidence {
	out := vs.strongKinds()
	if vs.n >= 3 && vs.frac(vs.base32, 4, 5) {
		out = append(out, evidence{KindSecret, vs.are(vs.base32, "base32 secrets (TOTP)")})
	}
	if vs.frac(vs.geo, 1, 2) {
		out = append(out, evidence{KindLocation, vs.are(vs.geo, "coordinates")})
	}
	// A lone phone-shaped value in a column of codes is noise.
	if vs.phone > 0 && vs.phone*3 >= vs.n {
		out = append(out, evidence{KindPhone, vs.are(vs.phone, plural(vs.phone, "a phone number", "phone numbers"))})
	}
	if vs.frac(vs.person, 1, 2) && vs.distinct*2 >= vs.n {
		out = append(out, evidence{KindName, vs.are(vs.person, "person names (first-name dictionary)")})
	}
	if vs.image > 0 && vs.frac(vs.image+vs.document, 1, 2) && vs.document == 0 {
		out = append(out, evidence{KindDocument, vs.byteaWhy()})
	}
	if vs.freeText() {
		for _, k := range sortedKeys(vs.embedded) {
			out = append(out, evidence{KindFreeText, fmt.Sprintf("%d/%d sampled values contain %s", vs.embedded[k], vs.n, kindNoun(k, vs.embedded[k] != 1))})
		}
		if vs.mentions > 0 {
			out = append(out, evidence{KindFreeText, fmt.Sprintf("%d/%d sampled values mention people by name", vs.mentions, vs.n)})
		}
	}
	return out
}

// freeText: the values are text with PII inside: one email, card, IBAN or
// national id is enough; phones and names need a few.
func (vs *valueStats) freeText() bool {
	for _, k := range []string{KindEmail, KindCard, KindIBAN, KindNationalID} {
		if vs.embedded[k] > 0 {
			return true
		}
	}
	others := vs.embedded[KindPhone] + vs.embedded[KindIP] + vs.mentions
	return others >= 2 && others*10 >= vs.n
}

func (vs *valueStats) byteaWhy() string {
	switch {
	case vs.image > 0 && vs.document > 0:
		return fmt.Sprintf("%d/%d sampled values are images or documents (magic bytes)", vs.image+vs.document, vs.n)
	case vs.document > 0:
		return fmt.Sprintf("%d/%d sampled values are documents (magic bytes: PDF, Office, DICOM)", vs.document, vs.n)
	}
	return fmt.Sprintf("%d/%d sampled values are images (magic bytes)", vs.image, vs.n)
}

func kindNoun(k string, many bool) string {
	noun := map[string]string{KindEmail: "an email", KindPhone: "a phone number", KindCard: "a card number (Luhn)",
		KindIBAN: "an IBAN (mod 97)", KindNationalID: "a national id", KindIP: "an IP address"}[k]
	if noun == "" {
		noun = k
	}
	if many {
		noun = trimArticle(noun)
		if i := bytes.IndexByte([]byte(noun), ' '); i > 0 && noun[i+1] == '(' {
			noun = noun[:i] + "s" + noun[i:]
		} else if !bytes.Contains([]byte(noun), []byte("(")) {
			noun += "s"
		}
	}
	return noun
}

func trimArticle(s string) string {
	for _, a := range []string{"an ", "a "} {
		if len(s) > len(a) && s[:len(a)] == a {
			return s[len(a):]
		}
	}
	return s
}

// wordy: text of at least three words of letters, where a phone-shaped run
// of digits is a phone number rather than a tracking code.
func wordy(v []byte) bool {
	n := 0
	for _, w := range bytes.Fields(v) {
		letters := 0
		for _, c := range w {
			if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c > 127 {
				letters++
			}
		}
		if letters >= 2 && letters*2 >= len(w) {
			n++
		}
	}
	return n >= 3
}

func allHex(v []byte) bool {
	for _, c := range v {
		if !isHex(c) {
			return false
		}
	}
	return len(v) > 0
}
