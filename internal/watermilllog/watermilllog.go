// Package watermilllog adapts a *slog.Logger to Watermill's logger for the
// library's own routers, subscribers and forwarders. Watermill logs its
// lifecycle at Info, some twenty lines as a hub starts; in a program that
// embeds sensorhub those would flood the user's default logger, so they go
// to Debug, and sensorhub's own lifecycle records stay the Info ones.
// Records below the logger's level are dropped before their fields are
// built: the router logs several times per message.
package watermilllog

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
)

// New returns a Watermill logger writing to log: Watermill's Error at
// Error, its Info and Debug at Debug, its Trace at watermill.LevelTrace.
func New(log *slog.Logger) watermill.LoggerAdapter {
	inner := watermill.NewSlogLoggerWithLevelMapping(log, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	return adapter{inner, log}
}

type adapter struct {
	watermill.LoggerAdapter
	log *slog.Logger
}

func (a adapter) Info(msg string, fields watermill.LogFields) {
	if a.log.Enabled(context.Background(), slog.LevelDebug) {
		a.LoggerAdapter.Info(msg, fields)
	}
}

func (a adapter) Debug(msg string, fields watermill.LogFields) {
	if a.log.Enabled(context.Background(), slog.LevelDebug) {
		a.LoggerAdapter.Debug(msg, fields)
	}
}

func (a adapter) Trace(msg string, fields watermill.LogFields) {
	if a.log.Enabled(context.Background(), watermill.LevelTrace) {
		a.LoggerAdapter.Trace(msg, fields)
	}
}

func (a adapter) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return adapter{a.LoggerAdapter.With(fields), a.log}
}
