package anonymize

import (
	"strings"

	"github.com/brianvoe/gofakeit/v7/data"
)

// tableContext is what detection knows about a table as a whole: a city
// column is a person's address in a table of passengers or of a customer's
// invoices, and a reference list in a table of cities or warehouses.
type tableContext struct {
	t *Table
	w words
	// person: the rows are people (by the table's name, or by its columns:
	// a first name and a date of birth make a person whatever the table is
	// called).
	person bool
	// related: the rows belong to a person: a FK to a person table, a
	// customer_id column, "user_sessions", "addresses".
	related bool
	// entity: the rows are things: products, companies, warehouses.
	entity bool
	// thingRelated: the rows belong to things only (every FK references a
	// table of things): product_images, a pet's visits.
	thingRelated bool
	// test: the schema or table says test, seed, fixture or demo data.
	test bool
	why  string
}

// personal says whether a bare address part or contact column of this
// table belongs to a person, and why.
func (x *tableContext) personal() (bool, string) {
	switch {
	case x.entity && !x.person:
		return false, ""
	case x.person || x.related:
		return true, x.why
	}
	return false, ""
}

// catalogContexts classifies every table: first by its name and columns,
// then by what its foreign keys reference.
func catalogContexts(cat *Catalog) map[string]*tableContext {
	out := make(map[string]*tableContext, len(cat.Tables))
	for i := range cat.Tables {
		t := &cat.Tables[i]
		out[t.QualifiedName()] = newTableContext(t)
	}
	// Two passes: a row of a table that references a customer's order
	// belongs to the customer too.
	for pass := 0; pass < 2; pass++ {
		relate(cat, out)
	}
	return out
}

func relate(cat *Catalog, out map[string]*tableContext) {
	for i := range cat.Tables {
		t := &cat.Tables[i]
		x := out[t.QualifiedName()]
		if x.person || x.related {
			continue
		}
		things := len(t.ForeignKeys) > 0
		for _, fk := range t.ForeignKeys {
			if ref := out[fk.RefSchema+"."+fk.RefTable]; ref == nil || !ref.entity || ref.person {
				things = false
			}
		}
		x.thingRelated = things && !x.entity
		for _, fk := range t.ForeignKeys {
			ref := out[fk.RefSchema+"."+fk.RefTable]
			if ref == nil {
				// A FK to a partitioned parent names the parent; any leaf
				// stands for it.
				for j := range cat.Tables {
					if cat.Tables[j].Parent == fk.RefSchema+"."+fk.RefTable {
						ref = out[cat.Tables[j].QualifiedName()]
						break
					}
				}
			}
			if ref != nil && ref.person {
				x.related, x.thingRelated = true, false
				x.why = "table " + t.Name + " references " + ref.t.Name + " (FK " + fk.Name + "), which holds people"
				break
			}
			if ref != nil && ref.related && !ref.entity && !x.entity {
				x.related, x.thingRelated = true, false
				x.why = "table " + t.Name + " references " + ref.t.Name + " (FK " + fk.Name + "), whose rows belong to people"
				break
			}
		}
	}
}

func newTableContext(t *Table) *tableContext {
	x := &tableContext{t: t, w: readName(t.Name)}
	head := x.w.last()
	x.test = x.w.has(cTest) || readName(t.Schema).has(cTest)
	switch {
	case head == cPerson && x.w.raw[len(x.w.raw)-1] != "" && strings.HasPrefix(x.w.raw[len(x.w.raw)-1], "client") && x.w.has(cSecret, cKeyQual):
		// oauth_clients, api_clients: software, not people.
		x.entity = true
	case head == cPerson || x.w.has(cPerson) && strings.HasPrefix(head, "="):
		x.person = true
		x.why = "table " + t.Name + " holds people"
	case head == cEntity || head == cLocation:
		// products, companies, store_locations: places and things
		x.entity = true
	case x.w.has(cPerson):
		x.related = true
		x.why = "table " + t.Name + " belongs to a person"
	case head == cAddress:
		x.related = true
		x.why = "table " + t.Name + " holds addresses"
	}
	if x.entity || x.person {
		return x
	}
	// By the columns: two person attributes (a first name, a date of
	// birth, a passport number) make a table of people.
	n, q := 0, ""
	for i := range t.Columns {
		w := readName(t.Columns[i].Name)
		switch {
		case w.has(cFirst, cLast, cFullName, cBirth, cPassport, cNatID):
			n++
		case w.last() == cPerson && !w.has(cID):
			n++
		case w.has(cPerson) && (w.last() == cName || w.last() == cEmail || w.last() == cPhone || w.last() == cAddress),
			w.last() == cEmail || w.last() == cPhone:
			// an email or phone column: the rows concern someone reachable
			q = t.Columns[i].Name
		}
		if w.has(cPerson) && w.last() == cID && !w.hasWord("parent", "child") {
			x.related = true
			if x.why == "" {
				x.why = "table " + t.Name + " has " + t.Columns[i].Name
			}
		}
	}
	switch {
	case n >= 2:
		x.person, x.related = true, false
		x.why = "table " + t.Name + " has columns of a person"
	case n+len(q) > 0 && !x.related:
		x.related = true
		x.why = "table " + t.Name + " has " + q
		if q == "" {
			x.why = "table " + t.Name + " has a person's name"
		}
	}
	return x
}

// Dictionaries for sampled values: gofakeit's first and last names and
// places. Only whole-word, case-insensitive look-ups.
var (
	firstSet  = wordSet(data.Person["first"])
	lastSet   = wordSet(data.Person["last"])
	placeSet  = wordSet(append(append(append([]string{}, data.Address["city"]...), data.Address["state"]...), data.Address["country"]...))
	honorific = wordSet([]string{"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "master", "rev", "sir", "madam", "lady", "lord",
		"herr", "frau", "mme", "mlle", "sr", "sra", "srta", "dhr", "mevr", "don", "dona", "col", "capt", "major"})
	// nameParticle: "de Vries", "van der Berg", "dos Santos", "von Braun".
	nameParticle = wordSet([]string{"van", "de", "der", "den", "von", "da", "dos", "das", "del", "la", "le", "di", "du", "ter", "ten", "zu", "bin", "al", "y"})
	nameSuffix   = wordSet([]string{"jr", "sr", "ii", "iii", "iv", "phd", "md", "esq"})
	companyWords = wordSet([]string{"inc", "llc", "ltd", "gmbh", "corp", "corporation", "co", "company", "group", "sons", "partners",
		"plc", "sa", "ag", "bv", "nv", "limited", "holdings", "industries", "solutions", "technologies", "services", "international",
		"systems", "labs", "studio", "studios", "associates", "enterprises", "foundation", "bank", "university", "hotel", "airlines",
		"the", "of", "and", "&", "pro", "plus", "mini", "edition", "set", "kit", "pack"})
)

func wordSet(ws []string) map[string]bool {
	m := make(map[string]bool, len(ws))
	for _, w := range ws {
		m[strings.ToLower(w)] = true
	}
	return m
}

// personNameScore: 2 for a value that reads as a person's name with a
// first name or honorific from the dictionaries ("Owen Harris",
// "Braund, Mr. Owen Harris", "SMITH, John"), 1 for the shape alone (two or
// three capitalised words), 0 otherwise.
func personNameScore(v []byte) int {
	s := strings.TrimSpace(string(v))
	if len(s) < 3 || len(s) > 80 {
		return 0
	}
	comma := strings.IndexByte(s, ',')
	if comma >= 0 && strings.Count(s, ",") > 1 {
		return 0
	}
	var toks []string
	hon := false
	firstTok, lastTok := "", ""
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
		p := strings.TrimRight(part, ".")
		l := strings.ToLower(p)
		if honorific[l] {
			hon = true
			continue
		}
		if nameSuffix[l] || nameParticle[l] {
			continue
		}
		if companyWords[l] || !nameWord(p) {
			return 0
		}
		toks = append(toks, l)
	}
	if len(toks) == 0 || len(toks) > 5 || len(toks) == 1 && !hon {
		return 0
	}
	if comma >= 0 {
		// "Last, [Title] First Middle"
		lastTok = strings.ToLower(strings.TrimSpace(s[:comma]))
		rest := strings.Fields(s[comma+1:])
		for _, r := range rest {
			if l := strings.ToLower(strings.TrimRight(r, ".")); !honorific[l] {
				firstTok = l
				break
			}
		}
	} else {
		firstTok, lastTok = toks[0], toks[len(toks)-1]
	}
	switch {
	case firstSet[firstTok] && (lastSet[lastTok] || len(toks) >= 2), hon:
		return 2
	case lastSet[lastTok] && len(toks) >= 2 && len(firstTok) <= 2:
		return 2 // "J. Smith"
	}
	return 1
}

// nameWord: a capitalised (or all upper-case) word of letters, hyphens and
// apostrophes, or an initial.
func nameWord(p string) bool {
	rs := []rune(p)
	if len(rs) == 0 {
		return false
	}
	upper := 0
	for i, r := range rs {
		switch {
		case r >= 'A' && r <= 'Z' || r > 127 && strings.ToUpper(string(r)) == string(r) && strings.ToLower(string(r)) != string(r):
			upper++
		case r >= 'a' && r <= 'z' || r > 127 && strings.ToLower(string(r)) == string(r) && strings.ToUpper(string(r)) != string(r):
			if i == 0 {
				return false
			}
		case (r == '-' || r == '\'') && i > 0:
		default:
			return false
		}
	}
	return upper >= 1
}

// mentionsPerson: free text naming someone: a dictionary first name
// followed by a capitalised word, or an honorific and a name.
func mentionsPerson(v []byte) bool {
	ws := strings.FieldsFunc(string(v), func(r rune) bool {
		return r == ' ' || r == '\n' || r == '\t' || r == ',' || r == ';' || r == ':' || r == '(' || r == ')' || r == '"'
	})
	for i := 0; i+1 < len(ws); i++ {
		a := strings.TrimRight(ws[i], ".")
		b := strings.TrimRight(ws[i+1], ".!?'s")
		if !nameWord(a) || !nameWord(b) || len(b) < 2 {
			continue
		}
		la, lb := strings.ToLower(a), strings.ToLower(b)
		if firstSet[la] && lastSet[lb] || honorific[la] && len(a) <= 4 && !companyWords[lb] {
			return true
		}
	}
	return false
}

// testValue: values seeded data is made of: reserved email domains, "test",
// "demo", "Jane Doe", the 555-01xx phone range set aside for fiction.
func testValue(v []byte) bool {
	s := strings.ToLower(string(v))
	if isEmail(v) && reservedEmail(v) {
		return true
	}
	for _, w := range []string{"test", "demo", "dummy", "sample", "fake", "example", "lorem", "qa+", "john doe", "jane doe", "555-01", "555 01", "5550"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// placeLike: a value that can be a place or a postcode ("Springfield",
// "NY", "SW1A 1AA"), not a status word ("pending").
func placeLike(v []byte) bool {
	v = []byte(strings.TrimSpace(string(v)))
	if len(v) == 0 {
		return false
	}
	if placeSet[strings.ToLower(string(v))] {
		return true
	}
	return isUpperLetter(v[0]) || isDigit(v[0]) || v[0] > 127
}

// capitalisedPair: a name inside a sentence in any language: two
// capitalised words (name particles allowed between) that do not start
// the sentence: "Hochzeit von Jürgen Müller", "acompañada por María García".
func capitalisedPair(v []byte) bool {
	ws := strings.Fields(string(v))
	for i := 1; i+1 < len(ws); i++ {
		if strings.HasSuffix(ws[i-1], ".") || strings.HasSuffix(ws[i-1], "!") || strings.HasSuffix(ws[i-1], "?") {
			continue
		}
		a := strings.TrimRight(ws[i], ".,;:!?")
		j := i + 1
		for j < len(ws)-1 && nameParticle[strings.ToLower(ws[j])] {
			j++
		}
		b := strings.TrimRight(ws[j], ".,;:!?")
		if len(a) < 2 || len(b) < 2 || !nameWord(a) || !nameWord(b) || strings.ToUpper(a) == a || strings.ToUpper(b) == b {
			continue
		}
		if companyWords[strings.ToLower(a)] || companyWords[strings.ToLower(b)] {
			continue
		}
		return true
	}
	return false
}
