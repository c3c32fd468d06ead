package anonymize

import "strings"

// hint is what a column's name (read as words, in its table's context)
// says about it.
type hint struct {
	kind string
	why  string
	// weak: the name only suggests the kind; the values must agree
	// ("description" is free text only if it mentions people).
	weak bool
	// person: the name names a person ("owner", "recipient"), so
	// name-shaped values are enough.
	person bool
	// personQualified: a person's ("customer_phone", "billing_city"), even
	// in a table of things.
	personQualified bool
	// personNamed: the qualifier is a person noun ("contact_email" of a
	// supplier is a person's; "billing_email" of a company is not).
	personNamed bool
	// notPII: the name says what the column is, and it is not PII
	// ("checksum", "status", "product_name"); only values that are PII on
	// their own (an email, a card number) override it.
	notPII string
	// numberish: "invoice_number", "order_ref": digits and dashes there are
	// not phone numbers.
	numberish bool
	// thing: the column belongs to a thing (a product image).
	thing bool
}

// nameHint reads a column's name. Kinds that need a person around them
// (a city, a bare "name", a photo) are decided here from the table's
// context.
func nameHint(x *tableContext, w words, c *Column) hint {
	head := w.last()
	qualified := w.has(cPerson, cQualPers)
	h := hint{personQualified: qualified, personNamed: w.has(cPerson), numberish: w.has(cNumber, cNumberID, cCode, cID) || w.hasWord("ref", "reference", "sku", "invoice", "order", "tracking")}
	h.thing = (x.entity || x.thingRelated) && !x.person || w.has(cEntity)
	strongH := func(kind, why string) hint {
		h.kind, h.why = kind, why
		return h
	}
	weakH := func(kind, why string) hint {
		h.kind, h.why, h.weak = kind, why, true
		return h
	}
	personal, ctxWhy := x.personal()
	if qualified {
		var q []string
		for i, con := range w.cons {
			if con == cPerson || con == cQualPers {
				q = append(q, w.raw[i])
			}
		}
		personal, ctxWhy = true, strings.Join(q, " ")
	}
	if w.hasWord("linkedin", "twitter", "instagram", "facebook", "tiktok", "mastodon", "github", "xing", "snapchat") && !w.has(cSecret, cPassword, cKey, cID) {
		return strongH(KindUsername, "name looks like a social network profile")
	}
	if head == cNotPII && !w.has(cNatID) {
		h.notPII = "name says " + c.Name
		return h
	}
	switch {
	case w.has(cPassword, cSecret, cSalt) || w.has(cKey) && w.has(cKeyQual) || head == cHash && w.has(cKeyQual):
		return strongH(KindSecret, "name looks like a credential")
	case w.has(cEmail):
		if head == cText {
			return weakH(KindFreeText, "email text")
		}
		return strongH(KindEmail, "name looks like an email")
	case w.has(cPhone) && head != cCode:
		return strongH(KindPhone, "name looks like a phone number")
	case w.has(cIP):
		return strongH(KindIP, "name looks like an IP address")
	case w.has(cMAC):
		return strongH(KindMAC, "name looks like a MAC address")
	case w.has(cBirth) && h.thing && !qualified:
		h.notPII = "birth date of a thing, not a person (" + x.t.Name + ")"
		return h
	case w.has(cBirth):
		return strongH(KindBirthDate, "name looks like a date of birth")
	case len(w.raw) == 1 && w.raw[0] == "id" && x.w.last() == cSecret && (c.Base == "uuid" || textual(c.Base)):
		return strongH(KindSecret, "the id of a "+strings.TrimSuffix(x.t.Name, "s")+" is its bearer credential")
	case w.has(cCert) && personal && (head == cNumber || head == cNumberID || head == cID || head == cCert):
		return strongH(KindNationalID, "a person's certificate number ("+ctxWhy+")")
	case w.has(cNatID, cPassport) || idNumber(w) ||
		w.has(cTaxID) && (w.has(cID, cNumber, cNumberID, cCode) || head == cTaxID && !w.hasWord("tax", "steuer", "fiscal")) ||
		w.has(cLicense) && (w.has(cDriving) || w.hasWord("driver") || x.w.hasWord("driver", "drivers")) ||
		w.hasWord("social") && w.hasWord("security") || w.hasWord("insurance", "versicherung") && w.has(cNumber, cNumberID, cID):
		return strongH(KindNationalID, "name looks like a national id")
	case w.has(cCard) && (head == cCard || head == cNumber || head == cNumberID || w.has(cCredit)):
		return strongH(KindCard, "name looks like a card number")
	case w.has(cIBAN) || w.has(cBank) && (head == cNumber || head == cNumberID || head == cAccount || w.hasWord("account")) ||
		w.hasWord("account", "acct") && (head == cNumber || head == cNumberID):
		return strongH(KindIBAN, "name looks like a bank account")
	case w.hasWord("imei", "imsi", "iccid", "meid", "esn", "idfa", "idfv", "gaid", "udid", "aaid", "adid", "deviceid") || w.has(cDevice) && (head == cID || head == cNumber || head == cNumberID || c.Base == "uuid"):
		return strongH(KindDeviceID, "name looks like a device identifier")
	case w.has(cDevice) && head == cDevice:
		// "scanner_device" = "ipad-01" names a device, "device" = a uuid
		// identifies one: the values say which.
		return weakH(KindDeviceID, "name looks like a device")
	case w.has(cVIN) || w.has(cPlate) && (head == cPlate || head == cNumber || head == cNumberID || w.has(cVehicle, cLicense)):
		return strongH(KindVehicle, "name looks like a vehicle's plate or VIN")
	case w.has(cLat, cLng, cGeo) && (personal || !sampledValuesOnly(c)):
		if !personal {
			// Coordinates of a car park or a cell tower are a place's.
			h.notPII = "location of a place, not a person (" + x.t.Name + ")"
			return h
		}
		return strongH(KindLocation, "location of a person ("+ctxWhy+")")
	case w.has(cLat, cLng, cGeo):
		return strongH(KindLocation, "name looks like a location")
	case head == cLocation:
		if personal {
			return strongH(KindLocation, "location of a person ("+ctxWhy+")")
		}
		if x.entity {
			return h
		}
		return weakH(KindLocation, "name looks like a location")
	case w.has(cPhoto) && !h.thing:
		return strongH(KindDocument, "name looks like a photo or scan of a person")
	case w.has(cPhoto):
		return weakH(KindDocument, "name looks like a photo")
	case w.has(cImage, cDocument) && !w.has(cNotPII):
		if personal && !w.has(cEntity) {
			return strongH(KindDocument, "image or document of a person ("+ctxWhy+")")
		}
		return weakH(KindDocument, "name looks like an image or document")
	}
	// Names.
	switch head {
	case cFirst, cLast, cMiddle, cFullName:
		return strongH(KindName, "name looks like a person's name")
	case cUsername:
		return strongH(KindUsername, "name looks like a username")
	case cName:
		switch {
		case w.has(cStreet, cAddrLine, cAddress):
			return strongH(KindAddress, "name looks like a street or house")
		case w.has(cEntity, cBank, cDocument, cImage, cCity, cRegion, cDistrict) && !qualified:
			h.notPII = "name of a thing (" + c.Name + ")"
			return h
		case w.has(cFirst, cLast, cMiddle, cFull, cPerson, cQualPers):
			return strongH(KindName, "name looks like a person's name")
		case len(w.raw) == 1 && x.person:
			// Only where the rows are people: the name of a user's
			// project, or of a customer's pet, is not theirs.
			return strongH(KindName, "name column of a person table ("+x.why+")")
		case len(w.raw) == 1 && x.entity:
			h.notPII = "name of a " + strings.TrimSuffix(x.t.Name, "s")
			return h
		}
		h = weakH(KindName, "column holds names")
		return h
	case cPerson:
		h = weakH(KindName, "column names a person ("+strings.Join(w.raw, " ")+")")
		h.person = true
		return h
	case cNote:
		return strongH(KindFreeText, "free-text column")
	case cText:
		return weakH(KindFreeText, "text column")
	}
	if w.hasWord("health", "medical", "clinical") && (head == cMedical || strings.HasPrefix(head, "=")) && textual(c.Base) && !strings.HasPrefix(c.Base, "_") {
		// health_declaration, medical_conditions: special-category data.
		return strongH(KindFreeText, "health information")
	}
	// Address parts.
	street := w.has(cStreet, cAddress) || head == cAddrLine
	area := head == cCity || head == cPostcode || head == cRegion || head == cDistrict
	if head == cAddrLine && !w.has(cStreet, cAddress) && w.hasWord("unit", "flat", "building", "house") {
		// "unit" is also a unit of measure: an address line only of a
		// person's address, and the values must carry a number.
		if !personal {
			h.notPII = "not an address line here (" + c.Name + ")"
			return h
		}
		return weakH(KindAddress, "address line of a person's address ("+ctxWhy+")")
	}
	if street || area {
		if w.has(cEntity) && !qualified {
			h.notPII = "address of a thing (" + c.Name + ")"
			return h
		}
		part := "postal address"
		switch head {
		case cCity:
			part = "city"
		case cPostcode:
			part = "postal code"
		case cRegion:
			part = "region"
		case cDistrict:
			part = "district"
		}
		switch {
		case personal && area && head != cPostcode:
			// "state" can be an order's state: let the values say if they
			// are places.
			h = weakH(KindAddress, part+" of a person's address ("+ctxWhy+")")
			return h
		case personal && part == "postal address":
			return strongH(KindAddress, "a person's street address ("+ctxWhy+")")
		case personal:
			return strongH(KindAddress, part+" of a person's address ("+ctxWhy+")")
		}
		// Neither the table nor the column says whose address it is, and
		// nothing in the table points at a person: a court's, a depot's.
		h.notPII = part + " of a place, not a person (" + x.t.Name + ")"
		return h
	}
	return h
}

// idNumber: "id_number", "id_document_number", "id_no": an identity
// document's number.
func idNumber(w words) bool {
	for i, t := range w.raw {
		if t == "id" && i+1 < len(w.raw) && (w.cons[len(w.cons)-1] == cNumber || w.cons[len(w.cons)-1] == cNumberID) {
			return true
		}
	}
	return false
}

// sampledValuesOnly: a leaf of a JSON document (its "column" is made up):
// context from the table does not apply to it the same way.
func sampledValuesOnly(c *Column) bool { return c.Type == "json leaf" }
