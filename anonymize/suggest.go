package anonymize

import "strings"

// defaultRule is the transformer the "mask" policy applies to a column
// detected as PII, and the rule `mask plan` suggests: by kind and type.
// unique asks for a uniqueness-preserving one.
func defaultRule(c *Column, d *detection, unique bool) Rule {
	r := func(t string, kv ...any) Rule {
		p := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			p[kv[i].(string)] = kv[i+1]
		}
		return Rule{Transform: t, Params: p}
	}
	base := c.Base
	switch {
	case isJSONType(base):
		paths := map[string]any{}
		for _, p := range sortedKeys(d.jsonPaths) {
			paths[p] = map[string]any{"transform": jsonLeafTransform(d.jsonPaths[p])}
		}
		if len(paths) == 0 {
			return r("null")
		}
		return r("json", "paths", paths)
	case base == "inet" || base == "cidr":
		return r("ip")
	case base == "date" || base == "timestamp" || base == "timestamptz":
		return r("date")
	case base == "uuid":
		return r("uuid")
	case base == "int2" || base == "int4" || base == "int8" || base == "numeric" || base == "float4" || base == "float8":
		return r("number")
	case !textual(base) || base == "_json" || base == "_jsonb" || base == "_xml" || base == "xml":
		// bytea photos, documents and secrets, macaddr, point: nothing to
		// imitate, and a photo cannot be faked: empty it.
		return r("null")
	}
	w := d.w
	switch d.kind {
	case KindEmail:
		return r("email")
	case KindPhone:
		return r("phone")
	case KindName:
		part := ""
		switch w.last() {
		case cFirst:
			part = "first"
		case cLast:
			part = "last"
		}
		switch {
		case part != "" && unique:
			return r("name", "part", part, "unique", true)
		case part != "":
			return r("name", "part", part)
		case unique:
			return r("name", "unique", true)
		}
		return r("name")
	case KindAddress:
		part := "street"
		switch w.last() {
		case cCity, cDistrict:
			part = "city"
		case cPostcode:
			part = "postcode"
		case cRegion:
			part = "state"
		}
		if strings.Contains(strings.ToLower(c.Name), "zip") || strings.Contains(strings.ToLower(c.Name), "post") && part == "street" {
			part = "postcode"
		}
		switch {
		case unique:
			return r("address", "part", part, "unique", true)
		case part == "street":
			return r("address")
		}
		return r("address", "part", part)
	case KindIP:
		return r("ip")
	case KindBirthDate:
		for _, s := range c.Samples {
			if _, _, _, _, ok := parseISODate(string(s)); !ok {
				return r("null")
			}
		}
		return r("date")
	case KindFreeText, KindDocument, KindLocation:
		// Free text has no shape to imitate; emptying it is the honest mask.
		return r("null")
	}
	return r("hash")
}

func jsonLeafTransform(kind string) string {
	switch kind {
	case KindEmail:
		return "email"
	case KindPhone:
		return "phone"
	case KindName:
		return "name"
	case KindAddress:
		return "address"
	case KindIP:
		return "ip"
	}
	return "hash"
}

// sampleErrors runs a transformer over a column's samples so type problems
// (a date rule on a text column in another DateStyle) fail at plan time.
func sampleErrors(t Transformer, c *Column) (failed int, first error) {
	var buf []byte
	for _, s := range c.Samples {
		var err error
		buf, _, err = t.Append(buf[:0], s)
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	return failed, first
}
