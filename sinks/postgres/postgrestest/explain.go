package postgrestest

import (
	"encoding/json"
	"strings"
	"testing"
)

// Scan is a node of a query plan that reads a relation.
type Scan struct{ Node, Relation string }

func (s Scan) String() string { return s.Node + " on " + s.Relation }

// Scans returns the relation scans of sql's plan for args, bound (a custom
// plan), or, with generic, of its generic plan: the one a statement pgx
// caches may end up with, planned with NULLs standing in for args
// (PostgreSQL 16's EXPLAIN (GENERIC_PLAN) does this). The table a
// statement modifies is not listed, the scans that find its rows are. It
// fails t on a plan that scans nothing.
func (db *DB) Scans(t testing.TB, generic bool, sql string, args ...any) []Scan {
	t.Helper()
	ctx := t.Context()
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var plan []map[string]any
	if !generic {
		if err := tx.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+sql, args...).Scan(&plan); err != nil {
			t.Fatalf("explain: %v", err)
		}
	} else {
		if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_generic_plan"); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "PREPARE explained AS "+sql); err != nil {
			t.Fatal(err)
		}
		nulls := strings.TrimSuffix(strings.Repeat("NULL, ", len(args)), ", ")
		if err := tx.QueryRow(ctx, "EXPLAIN (FORMAT JSON) EXECUTE explained("+nulls+")").Scan(&plan); err != nil {
			t.Fatalf("explain: %v", err)
		}
		if _, err := tx.Exec(ctx, "DEALLOCATE explained"); err != nil { // PREPARE outlives a rollback
			t.Fatal(err)
		}
	}
	var scans []Scan
	var walk func(node map[string]any)
	walk = func(node map[string]any) {
		if rel, ok := node["Relation Name"].(string); ok && node["Node Type"] != "ModifyTable" {
			scans = append(scans, Scan{node["Node Type"].(string), rel})
		}
		children, _ := node["Plans"].([]any)
		for _, c := range children {
			walk(c.(map[string]any))
		}
	}
	walk(plan[0]["Plan"].(map[string]any))
	if len(scans) == 0 {
		b, _ := json.Marshal(plan)
		t.Fatalf("a plan that scans nothing: %s", b)
	}
	return scans
}
