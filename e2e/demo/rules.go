package main

// demoRules masks every PII column of the sample shop. Columns left out
// (ids, totals, statuses, timestamps) are kept as they are; the plan shows
// why each needs no rule.
const demoRules = `"public.customers.email" = { transform = "email" }
"public.customers.full_name" = { transform = "name" }
"public.customers.phone" = { transform = "phone", keep_prefix = 1 }
"public.customers.birth_date" = { transform = "date", keep_year = true }
"public.customers.notes" = { transform = "null" }
"public.customers.profile" = { transform = "json", paths = { "contact.email" = { transform = "email" }, "contact.phone" = { transform = "phone", keep_prefix = 1 }, "last_login_ip" = { transform = "ip" } } }
"public.addresses.street" = { transform = "address", part = "street" }
"public.addresses.city" = { transform = "address", part = "city" }
"public.addresses.postcode" = { transform = "address", part = "postcode" }
"public.orders.contact_email" = { transform = "email" }
"public.payments.card_number" = { transform = "partial", keep_last = 4 }
"public.payments.client_ip" = { transform = "ip" }
`
