package outbox

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/sensorhub/sensorhub/internal/syncbuf"
)

func TestQuietOnStopDemotesErrorsAfterStop(t *testing.T) {
	t.Parallel()
	var logs syncbuf.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	l := quietOnStop{watermill.NewSlogLogger(slog.New(slog.NewTextHandler(&logs, nil))), ctx}.
		With(watermill.LogFields{"topic": "outbox"})

	l.Error("query failed", errors.New("connection refused"), nil)
	cancel()
	l.Error("could not commit tx", errors.New("conn closed"), nil)

	out := logs.String()
	if !strings.Contains(out, `level=ERROR msg="query failed"`) {
		t.Errorf("an error while running is not logged as one:\n%s", out)
	}
	if strings.Contains(out, `level=ERROR msg="could not commit tx"`) || strings.Contains(out, "conn closed") {
		t.Errorf("an error after stop reached Info or above:\n%s", out)
	}
}
