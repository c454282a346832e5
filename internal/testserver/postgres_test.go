package testserver

import "testing"

func TestPostgresSurvivesRestarts(t *testing.T) {
	t.Parallel()
	srv := StartPostgres(t)
	db := srv.New(t)
	ctx := t.Context()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO readings (station, sensor, ts, value, unit) VALUES ('s', 'temperature', now(), 1, 'Cel')`); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"immediate", "fast"} {
		if err := srv.Restart(mode); err != nil {
			t.Fatalf("restart %s: %v", mode, err)
		}
		var n int
		// The pool's connections died with the server; pgxpool dials anew.
		if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM readings").Scan(&n); err != nil {
			if err = db.Pool.QueryRow(ctx, "SELECT count(*) FROM readings").Scan(&n); err != nil {
				t.Fatalf("after a %s restart: %v", mode, err)
			}
		}
		if n != 1 {
			t.Errorf("after a %s restart: %d rows, want the 1 committed before", mode, n)
		}
	}
	if err := srv.Stop("fast"); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.Ping(ctx); err == nil {
		t.Error("Ping succeeded with the cluster stopped")
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
}
