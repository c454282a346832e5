package postgrestest

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestNew(t *testing.T) {
	t.Parallel()
	var schema string
	t.Run("test", func(t *testing.T) {
		db := New(t)
		schema = db.Schema
		conn, err := pgx.Connect(t.Context(), db.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close(t.Context()) }()

		const q = "SELECT current_schema(), 'readings'::regclass::text"
		for name, row := range map[string]pgx.Row{"Pool": db.Pool.QueryRow(t.Context(), q), "URL": conn.QueryRow(t.Context(), q)} {
			var current, table string
			if err := row.Scan(&current, &table); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if current != db.Schema || table != "readings" {
				t.Errorf("%s: current_schema() = %s, readings resolves to %s; want %s and readings", name, current, table, db.Schema)
			}
		}
	})

	db := NewEmpty(t)
	var exists bool
	if err := db.Pool.QueryRow(t.Context(), "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("schema %s still exists after its test ended", schema)
	}
}

func TestWithSearchPath(t *testing.T) {
	t.Parallel()
	for dsn, want := range map[string]string{
		"postgres://postgres@127.0.0.1:5432/test?sslmode=disable": "postgres://postgres@127.0.0.1:5432/test?search_path=t_1&sslmode=disable",
		"postgresql://u:p@h/db":                                   "postgresql://u:p@h/db?search_path=t_1",
		"host=127.0.0.1 user=postgres dbname=test":                "host=127.0.0.1 user=postgres dbname=test search_path=t_1",
	} {
		if got := withSearchPath(dsn, "t_1"); got != want {
			t.Errorf("withSearchPath(%q) = %q, want %q", dsn, got, want)
		}
	}
}
