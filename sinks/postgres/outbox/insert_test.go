package outbox_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sinks/postgres/outbox"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// eventsPerStatement is how many events one INSERT of watermill-sql's
// PostgreSQL schema can carry within the protocol's 65,535 parameters,
// from the parameters the adapter really binds for one message.
func eventsPerStatement(t *testing.T) int {
	t.Helper()
	q, err := wsql.DefaultPostgreSQLSchema{}.InsertQuery(wsql.InsertQueryParams{
		Topic: outbox.Topic, Msgs: message.Messages{message.NewMessage("id", nil)},
	})
	if err != nil || len(q.Args) == 0 {
		t.Fatalf("InsertQuery for one message: %d args, %v", len(q.Args), err)
	}
	return (1<<16 - 1) / len(q.Args)
}

// TestInsertMoreEventsThanOneStatementCarries inserts, in one transaction,
// one event more than fits one INSERT: all are committed, in order, instead
// of an error that would be retried forever.
func TestInsertMoreEventsThanOneStatementCarries(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	n := eventsPerStatement(t) + 1
	events := make([]sensorhub.Event, n)
	for i := range events {
		e, err := sensorhub.NewEventAt(fmtUUID(i), "test.many", 1, time.Now(), i)
		if err != nil {
			t.Fatal(err)
		}
		events[i] = e
	}
	tx, err := db.Pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if err := outbox.Insert(t.Context(), tx, events); err != nil {
		t.Fatalf("Insert of %d events: %v", n, err)
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, err := outbox.List(t.Context(), db.Pool, n+1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("outbox holds %d events, want %d", len(got), n)
	}
	for i, e := range got {
		var p int
		if err := e.Decode(&p); err != nil || p != i || e.UUID != events[i].UUID {
			t.Fatalf("event %d is %s with payload %d (%v), want %s with %d: order lost", i, e.UUID, p, err, events[i].UUID, i)
		}
	}
}

// fmtUUID returns a distinct UUID for i.
func fmtUUID(i int) string {
	return fmt.Sprintf("00000000-0000-4000-8000-%012x", i)
}
