// Package testserver runs throwaway Redis and PostgreSQL servers for the
// tests that fault them: each on a free port of 127.0.0.1 with a directory
// of its own, killed, stopped and restarted at will, and removed when the
// test ends, so that the shared servers of the other tests are never
// touched.
//
// The servers are the locally installed redis-server and PostgreSQL's
// initdb and pg_ctl (found through pg_config, PATH or Debian's
// /usr/lib/postgresql/*/bin). A test that needs one fails when it is not
// installed, and is skipped under go test -short.
//
//	srv := testserver.StartPostgres(t)
//	db := srv.New(t) // a migrated schema on the throwaway cluster
//	if err := srv.Restart("immediate"); err != nil { // a crash, WAL replay on start
//		t.Fatal(err)
//	}
package testserver
