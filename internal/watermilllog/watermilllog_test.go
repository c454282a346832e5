package watermilllog_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/sensorhub/sensorhub/internal/watermilllog"
)

func TestLevels(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		level    slog.Level
		wantInfo bool // Watermill's Info and Debug lines, both at Debug
	}{
		{slog.LevelInfo, false},
		{slog.LevelDebug, true},
	} {
		var out bytes.Buffer
		l := watermilllog.New(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: tt.level}))).
			With(watermill.LogFields{"handler": "h"})
		l.Info("info line", nil)
		l.Debug("debug line", watermill.LogFields{"message_uuid": "1"})
		l.Trace("trace line", nil)
		l.Error("error line", nil, nil)
		got := out.String()
		if strings.Contains(got, "info line") != tt.wantInfo || strings.Contains(got, "debug line") != tt.wantInfo {
			t.Errorf("level %s: info or debug shown, want %v:\n%s", tt.level, tt.wantInfo, got)
		}
		if strings.Contains(got, "level=INFO") {
			t.Errorf("level %s: a Watermill line at Info:\n%s", tt.level, got)
		}
		if strings.Contains(got, "trace line") {
			t.Errorf("level %s: trace shown:\n%s", tt.level, got)
		}
		if !strings.Contains(got, `level=ERROR msg="error line"`) || !strings.Contains(got, "handler=h") {
			t.Errorf("level %s: error or With fields lost:\n%s", tt.level, got)
		}
	}
}
