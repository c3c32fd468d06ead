package anonymize

import (
	"bytes"
	"strings"
)

// National identifiers, by shape and, where they have one, check digit.

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
