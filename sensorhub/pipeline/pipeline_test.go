package pipeline_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sensorhub/sensorhub/handlers/temperature"
	"github.com/sensorhub/sensorhub/migrations"
	"github.com/sensorhub/sensorhub/sensorhub/pipeline"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestMain fails the tests when a goroutine outlives them: a pipeline that
// failed to start must have closed what it opened.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestStartRefusesUnmigratedDatabase checks that a database that was never
// migrated stops start-up with an error naming the missing migrations,
// instead of a service that retries "relation does not exist" forever.
func TestStartRefusesUnmigratedDatabase(t *testing.T) {
	t.Parallel()
	db := postgrestest.NewEmpty(t)
	p, err := pipeline.New(pipeline.Config{DB: db.Pool, Redis: redistest.Options(t), Stream: redistest.Name(t, "unmigrated"), Events: true,
		Logger: slog.New(slog.DiscardHandler)}, temperature.Type())
	if err != nil {
		t.Fatal(err)
	}
	// Without the check, Run would start and block until ctx ends.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err = p.Run(ctx)
	if !errors.Is(err, migrations.ErrNotMigrated) || !strings.Contains(err.Error(), "0001_readings.sql") {
		t.Fatalf("Run = %v, want ErrNotMigrated naming 0001_readings.sql", err)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	_, err := pipeline.New(pipeline.Config{})
	if err == nil || !strings.Contains(err.Error(), "Config.DB") || !strings.Contains(err.Error(), "Config.Redis") {
		t.Fatalf("New(Config{}) = %v, want both DB and Redis named", err)
	}
}
