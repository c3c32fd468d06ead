package twinsync

import (
	"github.com/pgtwin/pgtwin/anonymize"
)

// PlanMasker masks with an anonymize plan and key. The caller has already
// refused the plan if it has unclassified PII; Table refuses such tables too.
func PlanMasker(plan *anonymize.Plan, key []byte) Masker {
	return MaskerFunc(func(schema, table string, _ []string) (RowMasker, error) {
		tm, err := plan.Table(schema, table, key)
		if err != nil {
			return nil, err
		}
		return tm, nil
	})
}
