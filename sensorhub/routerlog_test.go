package sensorhub

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
)

func TestRouterLoggerPassesOnlyEnabledLevels(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		level     slog.Level
		wantDebug bool
	}{
		{slog.LevelInfo, false},
		{slog.LevelDebug, true},
	} {
		var out bytes.Buffer
		log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: tt.level}))
		l := routerLogger{watermill.NewSlogLogger(log), log}.With(watermill.LogFields{"handler": "h"})
		l.Debug("debug line", watermill.LogFields{"message_uuid": "1"})
		l.Trace("trace line", nil)
		l.Info("info line", nil)
		l.Error("error line", nil, nil)
		got := out.String()
		if strings.Contains(got, "debug line") != tt.wantDebug || strings.Contains(got, "trace line") {
			t.Errorf("level %s: debug shown %v (want %v), trace shown %v:\n%s",
				tt.level, strings.Contains(got, "debug line"), tt.wantDebug, strings.Contains(got, "trace line"), got)
		}
		if !strings.Contains(got, "info line") || !strings.Contains(got, "error line") || !strings.Contains(got, "handler=h") {
			t.Errorf("level %s: info, error or With fields lost:\n%s", tt.level, got)
		}
	}
}
