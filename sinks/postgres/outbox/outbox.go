// Package outbox is sensorhub's transactional outbox over watermill-sql v4
// with native pgx/v5: Insert adds events to the outbox inside the caller's
// transaction, and a Forwarder moves committed events to a Redis stream
// (through any Watermill publisher), at least once and in transaction
// order, then deletes what it forwarded once Retention has passed.
//
// The tables are created by package migrations (0002_outbox.sql), never at
// run time: the names below must match them.
//
//	// in the sink's transaction:
//	err := outbox.Insert(ctx, tx, events)
//
//	// in the service:
//	fwd, err := outbox.NewForwarder(outbox.Config{DB: pool, Publisher: redisPublisher})
//	err = fwd.Start(ctx)
//	defer fwd.Stop(ctx)
//	fmt.Println(fwd.Stats().Lag)
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// Names of the outbox in PostgreSQL. They are a contract with migration
// 0002_outbox.sql and with rows already in the table: do not rename them.
const (
	// Topic is the watermill-sql topic the events are enveloped to; the
	// adapters derive the table names from it.
	Topic = "sensorhub_outbox"
	// MessagesTable is the outbox table, quoted, as DefaultPostgreSQLSchema
	// names it for Topic.
	MessagesTable = `"watermill_sensorhub_outbox"`
	// OffsetsTable holds how far each consumer group has forwarded, as
	// DefaultPostgreSQLOffsetsAdapter names it for Topic.
	OffsetsTable = `"watermill_offsets_sensorhub_outbox"`
	// ConsumerGroup is the forwarders' consumer group: replicas share it, so
	// one of them forwards at a time and each event leaves once.
	ConsumerGroup = "sensorhub_forwarder"
)

// schema is watermill-sql's PostgreSQL layout, its table names derived from
// Topic. Auto-initialisation stays off everywhere: the migrations own the
// tables.
var (
	schema  = wsql.DefaultPostgreSQLSchema{}
	offsets = wsql.DefaultPostgreSQLOffsetsAdapter{}
)

// Insert adds events to the outbox within tx, in order. They become visible
// to the Forwarder when tx commits and vanish with it when it rolls back.
// No events is a no-op. watermill-sql inserts the messages of one Publish
// with one statement; more events than one statement can carry (see
// eventsPerInsert) are inserted with several, in the same transaction.
func Insert(ctx context.Context, tx pgx.Tx, events []sensorhub.Event) error {
	if len(events) == 0 {
		return nil
	}
	pub, err := wsql.NewPublisher(wsql.TxFromPgx(tx), wsql.PublisherConfig{SchemaAdapter: schema}, watermill.NopLogger{})
	if err != nil {
		return fmt.Errorf("outbox: new publisher: %w", err)
	}
	msgs := make([]*message.Message, len(events))
	for i, e := range events {
		if msgs[i], err = e.Message(); err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		msgs[i].SetContext(ctx)
	}
	// The envelope's destination is informational: the Forwarder publishes
	// every event to its own Stream, so that renaming the stream also moves
	// events written before the rename.
	envelope := forwarder.NewPublisher(pub, forwarder.PublisherConfig{ForwarderTopic: Topic})
	for chunk := range slices.Chunk(msgs, eventsPerInsert) {
		if err := envelope.Publish(sensorhub.DefaultEventsStream, chunk...); err != nil {
			return fmt.Errorf("outbox: insert %d of %d events: %w", len(chunk), len(events), err)
		}
	}
	return nil
}

// maxQueryParams is the most parameters one statement can bind: PostgreSQL's
// extended protocol counts them in 16 bits, and pgx refuses more before
// sending, with an error that retrying cannot fix.
const maxQueryParams = 1<<16 - 1

// eventsPerInsert is how many events one INSERT of watermill-sql carries:
// maxQueryParams over the parameters its schema adapter binds per message
// (three in watermill-sql v4: uuid, payload, metadata), asked of the adapter
// so that an upgrade that binds more cannot overflow the statement.
var eventsPerInsert = func() int {
	q, err := schema.InsertQuery(wsql.InsertQueryParams{Topic: Topic, Msgs: message.Messages{message.NewMessage(watermill.NewUUID(), nil)}})
	if err != nil || len(q.Args) == 0 {
		panic(fmt.Sprintf("outbox: watermill-sql's insert query for one message: %d parameters, error %v", len(q.Args), err))
	}
	return maxQueryParams / len(q.Args)
}()

// Querier runs a query; *pgxpool.Pool, *pgx.Conn and pgx.Tx satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// List returns up to limit events in the outbox, forwarded or not, in the
// order the Forwarder takes them: for inspection and tests.
func List(ctx context.Context, q Querier, limit int) ([]sensorhub.Event, error) {
	rows, err := q.Query(ctx, `SELECT payload::text FROM `+MessagesTable+` ORDER BY transaction_id, "offset" LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: list: %w", err)
	}
	var out []sensorhub.Event
	var envelope struct {
		UUID     string            `json:"uuid"`
		Payload  []byte            `json:"payload"`
		Metadata map[string]string `json:"metadata"`
	}
	var raw string
	_, err = pgx.ForEachRow(rows, []any{&raw}, func() error {
		if err := json.Unmarshal([]byte(raw), &envelope); err != nil {
			return fmt.Errorf("envelope: %w", err)
		}
		msg := message.NewMessage(envelope.UUID, envelope.Payload)
		msg.Metadata = envelope.Metadata
		e, err := sensorhub.ParseEvent(msg)
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: list: %w", err)
	}
	return out, nil
}
