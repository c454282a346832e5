package alarms

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sensorhub/sensorhub/sensorhub/threshold"
)

// DB is what the rule functions need: *pgxpool.Pool, *pgx.Conn and pgx.Tx
// satisfy it.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// StoredRule is a rule of the table threshold_rules.
type StoredRule struct {
	// ID identifies the rule and its alarms; a rule removed and added again
	// gets a new ID and starts with every alarm cleared.
	ID int64
	threshold.Rule
}

// String returns the rule as "ID SPEC".
func (r StoredRule) String() string { return fmt.Sprintf("%d %s", r.ID, r.Rule) }

// ErrRuleExists is returned (wrapped) by AddRule for a rule whose sensor
// type, station and direction already have one.
var ErrRuleExists = errors.New("a rule for this sensor type, station and direction exists")

// ErrNoRule is returned (wrapped) by RemoveRule for an unknown ID.
var ErrNoRule = errors.New("no such rule")

// Table threshold_rules of migration 0004_processing.sql. A null station is
// a rule for every station. Do not rename the table or its columns.
const (
	insertRule = `INSERT INTO threshold_rules (sensor, station, op, threshold, clear)
VALUES ($1, nullif($2, ''), $3, $4, $5)
ON CONFLICT (sensor, coalesce(station, ''), op) DO NOTHING
RETURNING id`
	selectRules = `SELECT id, sensor, coalesce(station, ''), op = '>', threshold, clear FROM threshold_rules ORDER BY id`
	deleteRule  = `DELETE FROM threshold_rules WHERE id = $1`
)

// AddRule stores rule, validated beforehand (threshold.Parse does), and
// returns it with its ID. A rule for the same sensor type, station (or
// every station) and direction is an error wrapping ErrRuleExists that
// names it: remove that one first.
func AddRule(ctx context.Context, db DB, rule threshold.Rule) (StoredRule, error) {
	if err := rule.Validate(); err != nil {
		return StoredRule{}, fmt.Errorf("alarms: add rule %s: %w", rule, err)
	}
	var id int64
	err := db.QueryRow(ctx, insertRule, ruleArgs(rule)...).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return StoredRule{}, existing(ctx, db, rule)
	}
	if err != nil {
		return StoredRule{}, fmt.Errorf("alarms: add rule %s: %w", rule, err)
	}
	return StoredRule{ID: id, Rule: rule}, nil
}

// existing returns the ErrRuleExists error naming the rule that takes the
// place of rule.
func existing(ctx context.Context, db DB, rule threshold.Rule) error {
	rules, err := ListRules(ctx, db)
	if err != nil {
		return err
	}
	for _, r := range rules {
		if r.Sensor == rule.Sensor && r.Station == rule.Station && r.Above == rule.Above {
			return fmt.Errorf("alarms: add rule %s: %w: %s (remove it first)", rule, ErrRuleExists, r)
		}
	}
	return fmt.Errorf("alarms: add rule %s: %w", rule, ErrRuleExists)
}

// SeedRules adds each rule that has no rule for its sensor type, station
// and direction yet, and leaves the others as they are: the database wins
// over the seed, so that rules changed with `sensorhub rule` survive a
// restart. It returns the rules it added.
func SeedRules(ctx context.Context, db DB, rules []threshold.Rule) ([]StoredRule, error) {
	var added []StoredRule
	for _, rule := range rules {
		r, err := AddRule(ctx, db, rule)
		if errors.Is(err, ErrRuleExists) {
			continue
		}
		if err != nil {
			return added, err
		}
		added = append(added, r)
	}
	return added, nil
}

// ListRules returns every stored rule, by ID.
func ListRules(ctx context.Context, db DB) ([]StoredRule, error) {
	rows, err := db.Query(ctx, selectRules)
	if err != nil {
		return nil, fmt.Errorf("alarms: list rules: %w", err)
	}
	var (
		r   StoredRule
		out []StoredRule
	)
	_, err = pgx.ForEachRow(rows, []any{&r.ID, &r.Sensor, &r.Station, &r.Above, &r.Threshold, &r.Clear}, func() error {
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("alarms: list rules: %w", err)
	}
	return out, nil
}

// RemoveRule deletes the rule with the given ID; its alarms are forgotten
// without a clear event. An unknown ID is an error wrapping ErrNoRule.
func RemoveRule(ctx context.Context, db DB, id int64) error {
	tag, err := db.Exec(ctx, deleteRule, id)
	if err != nil {
		return fmt.Errorf("alarms: remove rule %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("alarms: remove rule %d: %w", id, ErrNoRule)
	}
	return nil
}

func ruleArgs(r threshold.Rule) []any {
	op := "<"
	if r.Above {
		op = ">"
	}
	return []any{r.Sensor, r.Station, op, r.Threshold, r.Clear}
}
