package anonymize

import (
	"fmt"
	"strings"
)

// textual types can hold any PII; detection reads their sampled values.
func textual(base string) bool {
	switch strings.TrimPrefix(base, "_") {
	case "text", "varchar", "bpchar", "citext", "name", "json", "jsonb", "xml", "char":
		return true
	}
	return false
}

func isJSONType(base string) bool { return base == "json" || base == "jsonb" }

// kindFits says whether a name-detected kind can live in a column of this
// type: "email_verified boolean" is not an email, "birth_date date" is a
// date of birth, "api_key uuid" is a credential.
func kindFits(kind, base string) bool {
	if textual(base) {
		return true
	}
	base = strings.TrimPrefix(base, "_")
	switch base {
	case "date", "timestamp", "timestamptz":
		return kind == KindBirthDate
	case "inet", "cidr":
		return kind == KindIP
	case "macaddr", "macaddr8":
		return kind == KindMAC
	case "int2", "int4", "int8", "numeric":
		switch kind {
		case KindPhone, KindCard, KindNationalID, KindIBAN, KindLocation, KindDeviceID, KindBirthDate:
			return true
		}
	case "float4", "float8", "point", "geometry", "geography":
		return kind == KindLocation
	case "bytea":
		return kind == KindSecret || kind == KindDocument
	case "uuid":
		return kind == KindSecret || kind == KindDeviceID
	}
	return false
}

// detection is what the detectors conclude about one column. A detection
// with no kind carries the reason a PII-looking column is not PII (seeded
// test data, a company's switchboard number).
type detection struct {
	kind    string
	reasons []string
	// jsonPaths: for json columns, the PII found at each path (path → kind).
	jsonPaths map[string]string
	w         words
}

func (d *detection) reason() string { return strings.Join(d.reasons, "; ") }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// detect classifies a column of a table seen on its own (no FKs to other
// tables known).
func detect(t *Table, c *Column) *detection {
	d := detectColumn(newTableContext(t), c)
	if d == nil || d.kind == "" {
		return nil
	}
	return d
}

// detectColumn classifies a column from all the evidence: its name read as
// words (with the table's context), its type, and its sampled values. nil
// means no sign of PII.
func detectColumn(x *tableContext, c *Column) *detection {
	w := readName(c.Name)
	h := nameHint(x, w, c)
	if h.kind != "" && (!kindFits(h.kind, c.Base) || surrogateKey(c, w)) {
		h = hint{notPII: h.notPII}
	}
	d := &detection{w: w}
	switch strings.TrimPrefix(c.Base, "_") {
	case "inet", "cidr":
		d.kind = KindIP
		if h.kind != "" {
			d.reasons = append(d.reasons, h.why)
		}
		d.reasons = append(d.reasons, "type "+c.Type+" holds IP addresses")
		return d
	case "macaddr", "macaddr8":
		d.kind = KindMAC
		d.reasons = append(d.reasons, "type "+c.Type+" holds MAC addresses")
		return d
	}
	if isJSONType(c.Base) {
		return detectJSON(x, c, h, d)
	}
	samples := c.Samples
	if !textual(c.Base) && strings.TrimPrefix(c.Base, "_") != "bytea" {
		// Dates, numbers and uuids are sampled to test rules on; their
		// text says nothing about PII.
		samples = nil
	}
	if strings.HasPrefix(c.Base, "_") && samples != nil {
		samples = nil
		for _, s := range c.Samples {
			samples = append(samples, arrayElements(s)...)
		}
	}
	vs := analyse(samples, strings.TrimPrefix(c.Base, "_") == "bytea")
	if h.kind == "" && h.notPII == "" && w.has(cKey) && vs.n >= 3 && vs.tokens*5 >= vs.n*4 {
		h = hint{kind: KindSecret, why: "name says key and the sampled values are random tokens"}
	}
	return decide(x, h, vs, d, textual(c.Base) || c.Base == "bytea")
}

// decide combines what the name says (h) with what the values say (vs).
func decide(x *tableContext, h hint, vs *valueStats, d *detection, sampled bool) *detection {
	strong := vs.strongKinds()
	switch {
	case h.kind != "" && !h.weak:
		if x.test && vs.n >= 3 && vs.test == vs.n {
			d.reasons = append(d.reasons, h.why, fmt.Sprintf("but %s is test data and all %d sampled values are placeholders (reserved domains, 555-01xx, \"test\")", x.t.Name, vs.n))
			return d
		}
		if (h.kind == KindEmail || h.kind == KindPhone || h.kind == KindLocation) && x.entity && !x.person && !h.personNamed {
			if h.kind != KindEmail || vs.email > 0 && vs.emailRole+vs.emailReserved == vs.email {
				d.reasons = append(d.reasons, fmt.Sprintf("%s of a %s, not a person (table %s holds things, not people)", h.kind, strings.TrimSuffix(x.t.Name, "s"), x.t.Name))
				return d
			}
		}
		d.kind = h.kind
		if len(strong) > 0 && strong[0].kind != h.kind && (h.kind == KindAddress || h.kind == KindName || h.kind == KindDocument) {
			// "bluetooth_address" of MAC addresses: the values say which.
			d.kind = strong[0].kind
		}
		d.reasons = append(d.reasons, h.why)
		for _, e := range vs.evidence() {
			if e.kind == d.kind || e.kind == h.kind {
				d.reasons = append(d.reasons, e.why)
			}
		}
		return d
	case len(strong) > 0:
		// Values speak for themselves whatever the name says.
		d.kind = strong[0].kind
		for _, e := range vs.evidence() {
			d.reasons = append(d.reasons, e.why)
		}
		return d
	case h.notPII != "":
		return nil
	}
	ev := vs.evidence()
	if h.weak {
		switch h.kind {
		case KindName:
			if vs.n == 0 && sampled {
				d.kind = KindName
				d.reasons = append(d.reasons, h.why+" (no sampled values to say otherwise)")
				return d
			}
			if vs.n > 0 && (vs.person*2 >= vs.n || h.person && vs.nameShaped*2 >= vs.n) {
				d.kind = KindName
				d.reasons = append(d.reasons, h.why, fmt.Sprintf("%d/%d sampled values read as person names", max(vs.person, vs.nameShaped), vs.n))
				return d
			}
		case KindFreeText:
			if !vs.freeText() && vs.n > 0 && vs.capPairs*2 >= vs.n {
				d.kind = KindFreeText
				d.reasons = append(d.reasons, h.why, fmt.Sprintf("%d/%d sampled values name someone (capitalised names mid-sentence)", vs.capPairs, vs.n))
				return d
			}
			if vs.freeText() {
				d.kind = KindFreeText
				d.reasons = append(d.reasons, h.why)
				for _, e := range ev {
					d.reasons = append(d.reasons, e.why)
				}
				return d
			}
		case KindDocument:
			if vs.document > 0 || vs.image > 0 && !h.thing {
				d.kind = KindDocument
				d.reasons = append(d.reasons, h.why, vs.byteaWhy())
				return d
			}
		case KindDeviceID:
			if vs.n == 0 && sampled || vs.n > 0 && vs.idLike*2 >= vs.n {
				d.kind = KindDeviceID
				d.reasons = append(d.reasons, h.why, vs.are(vs.idLike, "identifiers (uuid, hex, IMEI)"))
				return d
			}
		case KindAddress:
			if vs.n == 0 || vs.placeLike*2 >= vs.n && (!strings.HasPrefix(h.why, "address line") || vs.withDigit*2 >= vs.n) {
				d.kind = h.kind
				d.reasons = append(d.reasons, h.why)
				return d
			}
		case KindLocation:
			if vs.geo*2 >= vs.n && vs.geo > 0 {
				d.kind = h.kind
				d.reasons = append(d.reasons, h.why, vs.are(vs.geo, "coordinates"))
				return d
			}
		}
	}
	for _, e := range ev {
		switch e.kind {
		case KindPhone:
			if h.numberish && vs.phonePlus*2 < vs.n {
				continue // "invoice_number" of digits and dashes; +44... is a phone
			}
		case KindDocument:
			if h.thing {
				continue // a product's photo
			}
		}
		d.kind = e.kind
		for _, e := range ev {
			d.reasons = append(d.reasons, e.why)
		}
		return d
	}
	return nil
}

// surrogateKey: phone_id integer, email_id uuid are references, not PII;
// device_id uuid and national_id int8 are the identifiers themselves.
func surrogateKey(c *Column, w words) bool {
	if len(w.raw) < 2 {
		return false
	}
	last := w.raw[len(w.raw)-1]
	if last != "id" && last != "ids" && last != "uuid" && last != "guid" {
		return false
	}
	if w.has(cDevice, cNatID, cTaxID, cPassport, cSecret) {
		return false
	}
	switch strings.TrimPrefix(c.Base, "_") {
	case "int2", "int4", "int8", "uuid", "numeric":
		return true
	}
	return false
}
