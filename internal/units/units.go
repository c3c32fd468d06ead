// Package units formats quantities for people: sizes in binary units, as
// df -h prints them. It knows nothing of pgtwin.
package units

import "fmt"

// IEC is n bytes in binary units: "512 B", "1.5 GiB", "120 MiB" (no decimal
// from 100 up).
func IEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	prec := 1
	if v >= 100 {
		prec = 0
	}
	return fmt.Sprintf("%.*f %ciB", prec, v, "KMGTPE"[exp])
}
