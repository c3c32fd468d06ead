package anonymize

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/brianvoe/gofakeit/v7"
)

// The labelled corpus is generated: schemas modelled on real application
// domains, each column labelled with the PII kind a privacy reviewer would
// give it ("" for not PII), with values from gofakeit and the generators
// below. Nothing is copied from a public dataset.
//
// Labelling policy: PII is anything that identifies or reaches a natural
// person: names and usernames, contact data, every part of a person's
// address (street, second line, house number, district, city, region,
// postal code), national, tax and health ids, dates of birth, bank and card
// numbers, IP and MAC addresses, device ids, plates and VINs, a person's
// location, photos, scans and documents about people, free text written by
// or about people, and credentials and secrets of any kind (password
// hashes, API keys, tokens, TOTP secrets). Not PII: keys and references
// (they inherit their target's treatment), timestamps other than birth
// dates, amounts, statuses, reference data (cities, countries, products,
// companies and their role mailboxes), the country of a person (too
// coarse), checksums, and seeded test data in test schemas.

// G generates one value of one row.
type G struct {
	f   *gofakeit.Faker
	row int
}

type gen func(g *G) string

func pick(g *G, xs ...string) string { return xs[g.f.IntN(len(xs))] }

func digits(g *G, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.f.IntN(10))
	}
	return string(b)
}

func letters(g *G, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('A' + g.f.IntN(26))
	}
	return string(b)
}

func shape(g *G, s string) string {
	b := []byte(s)
	for i, c := range b {
		switch c {
		case '#':
			b[i] = byte('0' + g.f.IntN(10))
		case '?':
			b[i] = byte('A' + g.f.IntN(26))
		case '*':
			b[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[g.f.IntN(36)]
		}
	}
	return string(b)
}

// Names of people in other languages: own lists, not in the detector's
// dictionaries, so those columns are found by their names or not at all.
var (
	deFirst = []string{"Jürgen", "Klaus", "Dieter", "Uwe", "Sabine", "Ursula", "Heike", "Birgit", "Andreas", "Stefan", "Monika", "Petra", "Wolfgang", "Günter", "Anja", "Katrin", "Lukas", "Leonie", "Finn", "Jonas", "Lena", "Felix", "Maximilian", "Tobias", "Hannelore"}
	deLast  = []string{"Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann", "Krüger", "Hartmann", "Lange", "Krause", "Meier"}
	frFirst = []string{"Jean", "Pierre", "Michel", "André", "Philippe", "Nathalie", "Isabelle", "Sylvie", "Catherine", "Françoise", "Camille", "Léa", "Manon", "Chloé", "Hugo", "Théo", "Louis", "Élodie", "Aurélie", "Julien", "Sébastien", "Mathilde", "Margaux", "Inès", "Clément"}
	frLast  = []string{"Martin", "Bernard", "Dubois", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "Simon", "Laurent", "Lefebvre", "Bertrand", "Roux", "Vincent", "Fournier", "Morel", "Girard", "Lefèvre", "Mercier", "Dupont", "Lambert", "Bonnet", "François", "Rousseau"}
	esFirst = []string{"José", "Antonio", "Manuel", "Francisco", "Javier", "Carmen", "María", "Lucía", "Pilar", "Dolores", "Isabel", "Rocío", "Alejandro", "Pablo", "Sergio", "Marta", "Elena", "Raquel", "Nuria", "Álvaro", "Iñaki", "Begoña", "Montserrat", "Jordi", "Ximena"}
	esLast  = []string{"García", "Rodríguez", "González", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Muñoz", "Álvarez", "Romero", "Alonso", "Gutiérrez", "Navarro", "Torres", "Domínguez", "Vázquez", "Serrano", "Molina"}
	ptFirst = []string{"João", "Maria", "Ana", "Antônio", "Carlos", "Paulo", "Pedro", "Luiz", "Marcos", "Rafael", "Mariana", "Juliana", "Fernanda", "Patrícia", "Aline", "Camila", "Bruna", "Letícia", "Thiago", "Gustavo", "Rodrigo", "Felipe", "Beatriz", "Larissa", "Conceição"}
	ptLast  = []string{"Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima", "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Soares", "Vieira", "Barbosa", "Rocha", "Nascimento", "Andrade", "Moreira", "Nunes", "Machado"}
	nlFirst = []string{"Jan", "Pieter", "Kees", "Henk", "Willem", "Sanne", "Femke", "Anouk", "Lotte", "Daan", "Sem", "Bram", "Thijs", "Joost", "Maarten", "Ingrid", "Marieke", "Noor", "Ruben", "Lars", "Niels", "Wouter", "Floor", "Roos", "Gerrit"}
	nlLast  = []string{"de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser", "Smit", "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen", "Dekker", "Brouwer", "de Wit", "Dijkstra", "de Graaf", "van der Meer", "Vermeulen"}
	deCity  = []string{"Berlin", "Hamburg", "München", "Köln", "Frankfurt am Main", "Stuttgart", "Düsseldorf", "Leipzig", "Dortmund", "Essen", "Bremen", "Dresden", "Hannover", "Nürnberg", "Bochum"}
	frCity  = []string{"Paris", "Lyon", "Marseille", "Toulouse", "Nice", "Nantes", "Strasbourg", "Montpellier", "Bordeaux", "Lille", "Rennes", "Reims", "Grenoble", "Dijon", "Angers"}
	esCity  = []string{"Madrid", "Barcelona", "Valencia", "Sevilla", "Zaragoza", "Málaga", "Murcia", "Palma", "Bilbao", "Alicante", "Córdoba", "Valladolid", "Vigo", "Gijón", "Granada"}
	ptCity  = []string{"São Paulo", "Rio de Janeiro", "Belo Horizonte", "Salvador", "Fortaleza", "Curitiba", "Recife", "Porto Alegre", "Manaus", "Belém", "Goiânia", "Campinas", "Lisboa", "Porto", "Braga"}
	nlCity  = []string{"Amsterdam", "Rotterdam", "Den Haag", "Utrecht", "Eindhoven", "Groningen", "Tilburg", "Almere", "Breda", "Nijmegen", "Haarlem", "Arnhem", "Zaandam", "Leiden", "Delft"}
	deStr   = []string{"Hauptstraße", "Schulstraße", "Gartenweg", "Bahnhofstraße", "Dorfstraße", "Lindenallee", "Bergstraße", "Kirchplatz"}
	frStr   = []string{"rue de la Paix", "avenue Victor Hugo", "boulevard Voltaire", "rue du Moulin", "place de la République", "rue des Lilas"}
	esStr   = []string{"Calle Mayor", "Avenida de la Constitución", "Calle Real", "Paseo de Gracia", "Calle del Sol", "Plaza de España"}
	ptStr   = []string{"Rua das Flores", "Avenida Paulista", "Rua Augusta", "Rua XV de Novembro", "Avenida Brasil", "Travessa do Carmo"}
	nlStr   = []string{"Kerkstraat", "Dorpsstraat", "Molenweg", "Stationsweg", "Prinsengracht", "Julianalaan", "Beatrixstraat"}
	hon     = []string{"Mr.", "Mrs.", "Miss", "Master", "Dr.", "Rev."}
)

func fullName(g *G) string { return g.f.FirstName() + " " + g.f.LastName() }

// titanic: "Braund, Mr. Owen Harris".
func titanic(g *G) string {
	s := g.f.LastName() + ", " + pick(g, hon...) + " " + g.f.FirstName()
	if g.f.IntN(2) == 0 {
		s += " " + g.f.MiddleName()
	}
	return s
}

func foreignName(first, last []string) gen {
	return func(g *G) string { return pick(g, first...) + " " + pick(g, last...) }
}
func from(xs ...string) gen { return func(g *G) string { return pick(g, xs...) } }
func lit(s string) gen      { return func(*G) string { return s } }

func personalEmail(g *G) string {
	f, l := strings.ToLower(g.f.FirstName()), strings.ToLower(g.f.LastName())
	dom := pick(g, "gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "proton.me", "gmx.de", "web.de", "orange.fr", "uol.com.br", "ziggo.nl", "corp-mail.io")
	switch g.f.IntN(4) {
	case 0:
		return f + "." + l + "@" + dom
	case 1:
		return f[:1] + l + digits(g, 2) + "@" + dom
	case 2:
		return f + "_" + l + "@" + dom
	}
	return l + "." + f + digits(g, 1) + "@" + dom
}

func foreignEmail(first, last []string, dom string) gen {
	return func(g *G) string {
		return strings.ToLower(foldASCII(pick(g, first...))+"."+strings.ReplaceAll(foldASCII(pick(g, last...)), " ", "")) + "@" + dom
	}
}

func foldASCII(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteString(string(foldRune(r)))
	}
	return b.String()
}

func roleEmailGen(g *G) string {
	return pick(g, "info", "sales", "support", "contact", "hello", "office", "billing") + "@" + strings.ToLower(strings.Fields(g.f.Company())[0]) + ".com"
}

func phoneUS(g *G) string {
	return shape(g, pick(g, "+1 (###) ###-####", "(###) ###-####", "###-###-####", "+1 ### ### ####"))
}
func phoneIntl(g *G) string {
	return shape(g, pick(g, "+44 20 #### ####", "+49 30 ########", "+33 6 ## ## ## ##", "+31 6 ########", "+55 11 9####-####", "+34 6## ### ###", "+61 4## ### ###"))
}
func phoneDE(g *G) string {
	return shape(g, pick(g, "+49 30 #######", "0171 #######", "+49 (0)89 ######"))
}
func phoneFR(g *G) string {
	return shape(g, pick(g, "06 ## ## ## ##", "+33 1 ## ## ## ##", "07 ## ## ## ##"))
}
func phoneES(g *G) string { return shape(g, pick(g, "+34 6## ### ###", "91 ### ## ##")) }
func phoneBR(g *G) string { return shape(g, pick(g, "(11) 9####-####", "+55 21 9####-####")) }
func phoneNL(g *G) string { return shape(g, pick(g, "06-########", "+31 20 ### ####")) }

func street(g *G) string { return g.f.Street() }
func address2(g *G) string {
	return shape(g, pick(g, "Apt ##", "Suite ###", "Unit #?", "Floor #", "Apartment ###", "PO Box ####"))
}
func zipUS(g *G) string  { return shape(g, pick(g, "#####", "#####-####")) }
func postUK(g *G) string { return shape(g, pick(g, "??# #??", "??## #??", "?# #??")) }
func postNL(g *G) string { return shape(g, "#### ??") }
func cepBR(g *G) string  { return shape(g, "#####-###") }
func city(g *G) string   { return g.f.City() }
func district(g *G) string {
	return pick(g, "Kreuzberg", "Mitte", "Le Marais", "Montmartre", "Brooklyn", "Queens", "Shoreditch", "Camden", "Jordaan", "De Pijp", "Vila Madalena", "Lapa", "Gràcia", "Triana", "Schwabing")
}

func dob(g *G) string {
	t := time.Date(1940+g.f.IntN(65), time.Month(1+g.f.IntN(12)), 1+g.f.IntN(28), 0, 0, 0, 0, time.UTC)
	return t.Format("2006-01-02")
}
func dobDE(g *G) string { d := dob(g); return d[8:10] + "." + d[5:7] + "." + d[:4] }
func dobUS(g *G) string { d := dob(g); return d[5:7] + "/" + d[8:10] + "/" + d[:4] }
func pastTS(g *G) string {
	return time.Date(2019+g.f.IntN(6), time.Month(1+g.f.IntN(12)), 1+g.f.IntN(28), g.f.IntN(24), g.f.IntN(60), g.f.IntN(60), 0, time.UTC).Format("2006-01-02 15:04:05+00")
}
func pastDate(g *G) string { return pastTS(g)[:10] }

func ssn(g *G) string { return shape(g, fmt.Sprintf("%03d-##-####", 100+g.f.IntN(565))) }
func nino(g *G) string {
	return pick(g, "AB", "CE", "JK", "PR", "SW", "HT", "MA", "YZ") + shape(g, " ## ## ## ") + pick(g, "A", "B", "C", "D")
}
func nir(g *G) string {
	n := fmt.Sprintf("%d%02d%02d%02d%03d%03d", 1+g.f.IntN(2), g.f.IntN(100), 1+g.f.IntN(12), 1+g.f.IntN(95), 1+g.f.IntN(999), 1+g.f.IntN(999))
	m := 0
	for _, c := range n {
		m = (m*10 + int(c-'0')) % 97
	}
	return n + fmt.Sprintf("%02d", 97-m)
}
func steuerID(g *G) string {
	for {
		s := strconv.Itoa(1+g.f.IntN(9)) + digits(g, 9)
		product := 10
		for _, c := range s {
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
		return s + strconv.Itoa(check)
	}
}
func bsn(g *G) string {
	for {
		s := digits(g, 8)
		sum := 0
		for i := 0; i < 8; i++ {
			sum += (9 - i) * int(s[i]-'0')
		}
		if d := sum % 11; d < 10 && sum != 0 {
			return s + strconv.Itoa(d)
		}
	}
}
func dni(g *G) string {
	n := 10000000 + g.f.IntN(89999999)
	return strconv.Itoa(n) + string("TRWAGMYFPDXBNJZSQVHLCKE"[n%23])
}
func cpf(g *G) string {
	s := []byte(digits(g, 9))
	for k := 9; k <= 10; k++ {
		sum := 0
		for i := 0; i < k; i++ {
			sum += int(s[i]-'0') * (k + 1 - i)
		}
		s = append(s, byte('0'+sum*10%11%10))
	}
	return string(s[:3]) + "." + string(s[3:6]) + "." + string(s[6:9]) + "-" + string(s[9:])
}
func passport(g *G) string { return shape(g, pick(g, "?########", "??#######", "#########")) }
func driversLicense(g *G) string {
	return shape(g, pick(g, "?###-####-####", "?#######", "MORGA######??#??"))
}
func nhs(g *G) string { return shape(g, "### ### ####") }
func mrn(g *G) string { return shape(g, "MRN-#######") }

func card(g *G) string {
	n := g.f.CreditCardNumber(&gofakeit.CreditCardOptions{Types: []string{"visa", "mastercard", "american-express", "discover"}})
	if g.f.IntN(3) == 0 && len(n) == 16 {
		return n[:4] + " " + n[4:8] + " " + n[8:12] + " " + n[12:]
	}
	return n
}

func iban(g *G) string {
	cc := pick(g, "DE", "GB", "NL", "FR", "ES")
	var bban string
	switch cc {
	case "DE":
		bban = digits(g, 18)
	case "GB":
		bban = letters(g, 4) + digits(g, 14)
	case "NL":
		bban = letters(g, 4) + digits(g, 10)
	case "FR":
		bban = digits(g, 23)
	default:
		bban = digits(g, 20)
	}
	m := 0
	for _, c := range bban + cc + "00" {
		if c >= 'A' && c <= 'Z' {
			m = (m*100 + int(c-'A'+10)) % 97
		} else {
			m = (m*10 + int(c-'0')) % 97
		}
	}
	s := cc + fmt.Sprintf("%02d", 98-m) + bban
	if g.f.IntN(2) == 0 {
		var b strings.Builder
		for i, c := range s {
			if i > 0 && i%4 == 0 {
				b.WriteByte(' ')
			}
			b.WriteRune(c)
		}
		return b.String()
	}
	return s
}

func ipv4(g *G) string { return g.f.IPv4Address() }
func ipv6(g *G) string { return g.f.IPv6Address() }
func mac(g *G) string  { return g.f.MacAddress() }
func uuid(g *G) string { return g.f.UUID() }
func imei(g *G) string {
	for {
		s := digits(g, 15)
		if luhn([]byte(s)) {
			return s
		}
	}
}
func idfa(g *G) string      { return strings.ToUpper(g.f.UUID()) }
func androidID(g *G) string { return hexN(g, 16) }
func hexN(g *G, n int) string {
	b := make([]byte, (n+1)/2)
	for i := range b {
		b[i] = byte(g.f.IntN(256))
	}
	return hex.EncodeToString(b)[:n]
}
func b64url(g *G, n int) string {
	const a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := make([]byte, n)
	for i := range b {
		b[i] = a[g.f.IntN(64)]
	}
	return string(b)
}
func base32N(g *G, n int) string {
	const a = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, n)
	for i := range b {
		b[i] = a[g.f.IntN(32)]
	}
	return string(b)
}
func bcrypt(g *G) string { return "$2b$12$" + strings.ReplaceAll(b64url(g, 53), "-", ".") }
func argon2(g *G) string {
	return "$argon2id$v=19$m=65536,t=3,p=4$" + b64url(g, 22) + "$" + b64url(g, 43)
}
func pbkdf2(g *G) string  { return "pbkdf2_sha256$600000$" + b64url(g, 22) + "$" + b64url(g, 44) + "=" }
func sha256h(g *G) string { return hexN(g, 64) }
func apiKey(g *G) string  { return pick(g, "sk_live_", "sk_test_", "rk_live_") + b64url(g, 24) }
func ghToken(g *G) string { return "ghp_" + b64url(g, 36) }
func awsKey(g *G) string  { return "AKIA" + strings.ToUpper(base32N(g, 16)) }
func jwt(g *G) string {
	return "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + "eyJzdWIiOi" + b64url(g, 40) + "." + b64url(g, 43)
}
func totp(g *G) string { return base32N(g, 32) }

func latG(g *G) string   { return strconv.FormatFloat(g.f.Latitude(), 'f', 6, 64) }
func lngG(g *G) string   { return strconv.FormatFloat(g.f.Longitude(), 'f', 6, 64) }
func geoTxt(g *G) string { return latG(g) + "," + lngG(g) }

func plateUK(g *G) string { return shape(g, "??## ???") }
func plateDE(g *G) string { return shape(g, pick(g, "B-?? ####", "M-? ###", "HH-?? ###")) }
func plateNL(g *G) string { return shape(g, pick(g, "##-???-#", "?-###-??", "??-##-??")) }
func plateUS(g *G) string { return shape(g, pick(g, "#???###", "???-####")) }
func vin(g *G) string {
	const a = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
	b := make([]byte, 17)
	for i := range b {
		b[i] = a[g.f.IntN(len(a))]
	}
	return string(b)
}

// bytea samples: the first 160 bytes in PostgreSQL's hex output, as
// ReadCatalog samples them.
func bytea(magic string) gen {
	return func(g *G) string {
		b := []byte(magic)
		for len(b) < 160 {
			b = append(b, byte(g.f.IntN(256)))
		}
		return `\x` + hex.EncodeToString(b)
	}
}

var (
	pngG   = bytea("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	jpegG  = bytea("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01")
	pdfG   = bytea("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
	docxG  = bytea("PK\x03\x04\x14\x00\x06\x00\x08\x00")
	dicomG = bytea(strings.Repeat("\x00", 128) + "DICM\x02\x00\x00\x00UL")
	randB  = bytea("")
	protoB = bytea("\x0a\x10")
)

func sentence(g *G) string { return g.f.Sentence(8 + g.f.IntN(8)) }

// noteAbout is free text about a person: a name, sometimes a phone or an
// email.
func noteAbout(g *G) string {
	switch g.f.IntN(5) {
	case 0:
		return "Called " + fullName(g) + " about the refund, will follow up on " + phoneUS(g)
	case 1:
		return "Customer asked to send the invoice to " + personalEmail(g) + " instead"
	case 2:
		return pick(g, "Spoke with ", "Met ", "Left a voicemail for ", "Escalated by ") + fullName(g) + ", " + strings.ToLower(g.f.Sentence(6))
	case 3:
		return g.f.Sentence(7) + " Contact " + pick(g, "Mr. ", "Mrs. ", "Dr. ") + g.f.LastName() + " before delivery."
	}
	return "Prefers morning appointments. " + g.f.Sentence(5)
}

func ticketBody(g *G) string {
	return "Hi, this is " + fullName(g) + ". " + g.f.Sentence(10) + " You can reach me at " + pick(g, personalEmail(g), phoneIntl(g)) + ". Thanks"
}

func review(g *G) string {
	return pick(g, "Great product! ", "Not what I expected. ", "Arrived late. ") + g.f.Sentence(9) + pick(g, " - "+g.f.FirstName(), " Thanks to "+fullName(g)+" in support.", "")
}

func money(g *G) string { return strconv.FormatFloat(g.f.Price(1, 2000), 'f', 2, 64) }
func intS(g *G) string  { return strconv.Itoa(g.f.IntN(100000)) }
func boolS(g *G) string { return pick(g, "t", "f") }
func status(xs ...string) gen {
	return func(g *G) string { return pick(g, xs...) }
}
func sku(g *G) string     { return shape(g, "SKU-?????-###") }
func orderNo(g *G) string { return shape(g, pick(g, "ORD-2024-######", "2024-######", "INV/####/##")) }
func tracking(g *G) string {
	return shape(g, pick(g, "1Z###??##########", "JD0000########", "?? ### ### ###??"))
}
func company(g *G) string     { return g.f.Company() }
func product(g *G) string     { return g.f.ProductName() }
func productDesc(g *G) string { return g.f.ProductDescription() }
func url(g *G) string         { return g.f.URL() }
func slug(g *G) string        { return g.f.UrlSlug(3) }
func currency(g *G) string    { return g.f.CurrencyShort() }
func country(g *G) string     { return g.f.Country() }
func countryCode(g *G) string { return g.f.CountryAbr() }
func jobTitle(g *G) string    { return g.f.JobTitle() }
func color(g *G) string       { return g.f.Color() }
func gitSHA(g *G) string      { return hexN(g, 40) }
func mime(g *G) string        { return g.f.FileMimeType() }
func userAgentless(g *G) string {
	return pick(g, "web", "ios", "android", "api")
}
func username(g *G) string { return g.f.Username() }
func locale(g *G) string   { return pick(g, "en-US", "de-DE", "fr-FR", "es-ES", "pt-BR", "nl-NL") }
func tz(g *G) string {
	return pick(g, "Europe/Berlin", "America/New_York", "Europe/Paris", "America/Sao_Paulo", "Asia/Tokyo")
}

// pgArray writes a text[] literal.
func pgArray(n int, g gen) gen {
	return func(x *G) string {
		k := 1 + x.f.IntN(n)
		parts := make([]string, k)
		for i := range parts {
			v := g(x)
			if strings.ContainsAny(v, " ,{}\"\\") {
				v = `"` + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), `"`, `\"`) + `"`
			}
			parts[i] = v
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
}

// jsonObj writes a JSON object from key generators (values as JSON).
func jsonObj(kv ...any) gen {
	return func(g *G) string {
		var b strings.Builder
		b.WriteByte('{')
		for i := 0; i+1 < len(kv); i += 2 {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q: ", kv[i].(string))
			switch v := kv[i+1].(type) {
			case gen:
				fmt.Fprintf(&b, "%q", v(g))
			case func(*G) string:
				fmt.Fprintf(&b, "%q", v(g))
			case rawJSON:
				b.WriteString(v(g))
			}
		}
		b.WriteByte('}')
		return b.String()
	}
}

type rawJSON func(*G) string

func jnum(g gen) rawJSON { return func(x *G) string { return g(x) } }
func jobj(o gen) rawJSON { return func(x *G) string { return o(x) } }
func jbool() rawJSON     { return func(x *G) string { return pick(x, "true", "false") } }
func jarr(g gen) rawJSON {
	return func(x *G) string {
		return fmt.Sprintf("[%q, %q]", g(x), g(x))
	}
}
