package twinsync

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgtwin/pgtwin/anonymize"
)

// planMasker masks with an anonymize plan and key. Table refuses tables
// with unclassified PII, so even a plan nobody checked copies no such row.
func planMasker(plan *anonymize.Plan, key []byte) masker {
	return maskerFunc(func(schema, table string, _ []string) (rowMasker, error) {
		tm, err := plan.Table(schema, table, key)
		if err != nil {
			return nil, err
		}
		return tm, nil
	})
}

// anonymizePlan is the Dumper.Plan hook for the config's [anonymize]: it
// reads the source catalog (with samples) through the run's connection,
// builds the plan, stops on unclassified PII with anonymize's sentence
// naming each column and the rule to add, and masks with key.
func anonymizePlan(rules anonymize.Rules, policy string, key []byte, sel selection) func(context.Context, *pgx.Conn) (masker, error) {
	return func(ctx context.Context, src *pgx.Conn) (masker, error) {
		cat, err := ReadCatalog(ctx, src, sel)
		if err != nil {
			return nil, fmt.Errorf("read source catalog: %w", redact(err))
		}
		plan, err := anonymize.BuildPlan(cat, rules, policy)
		if err != nil {
			return nil, err
		}
		if err := plan.UnclassifiedError(); err != nil {
			return nil, newUnclassifiedPlan(plan, key, err)
		}
		return planMasker(plan, key), nil
	}
}
