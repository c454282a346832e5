package postgrestest

import (
	"encoding/json"
	"fmt"
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
	walkScans(plan[0]["Plan"].(map[string]any), func(s Scan, _ map[string]any) { scans = append(scans, s) })
	if len(scans) == 0 {
		b, _ := json.Marshal(plan)
		t.Fatalf("a plan that scans nothing: %s", b)
	}
	return scans
}

// Run is a scan that a plan ran.
type Run struct {
	Scan
	// Loops is how many times it ran: once per row of the outer side of
	// the nested loop it is the inner side of, say.
	Loops int
}

func (r Run) String() string { return fmt.Sprintf("%s ×%d", r.Scan, r.Loops) }

// Ran returns the relation scans that sql's custom plan for args ran, with
// how many times each did, as EXPLAIN ANALYZE reports them; sql runs in a
// transaction that is rolled back. A scan that never ran (partition
// pruning at run time skipped it, or the node above it needed no row from
// it) is not listed. It fails t on a run that scanned nothing.
func (db *DB) Ran(t testing.TB, sql string, args ...any) []Run {
	t.Helper()
	ctx := t.Context()
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var plan []map[string]any
	if err := tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+sql, args...).Scan(&plan); err != nil {
		t.Fatalf("explain analyze: %v", err)
	}
	var runs []Run
	walkScans(plan[0]["Plan"].(map[string]any), func(s Scan, node map[string]any) {
		if loops, _ := node["Actual Loops"].(float64); loops > 0 {
			runs = append(runs, Run{s, int(loops)})
		}
	})
	if len(runs) == 0 {
		b, _ := json.Marshal(plan)
		t.Fatalf("a run that scanned nothing: %s", b)
	}
	return runs
}

// walkScans calls visit for every node of plan that reads a relation, but
// the table a statement modifies.
func walkScans(node map[string]any, visit func(Scan, map[string]any)) {
	if rel, ok := node["Relation Name"].(string); ok && node["Node Type"] != "ModifyTable" {
		visit(Scan{node["Node Type"].(string), rel}, node)
	}
	children, _ := node["Plans"].([]any)
	for _, c := range children {
		walkScans(c.(map[string]any), visit)
	}
}
