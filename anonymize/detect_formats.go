package anonymize

import (
	"bytes"
	"strings"
)

// Formats that say what a value is: identifiers, secrets, coordinates and
// the magic bytes of photos and documents.

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
