// Package sensorhubfx wires a sensorhub.Hub into an fx application. It is
// the only package of the library that imports fx: everything it does can be
// done with plain constructors, as examples/embedded shows.
//
//	fx.New(
//		fx.Supply(cfg), // a sensorhub.Config
//		sensorhubfx.SensorTypes(handlers.Builtin()...),
//		sensorhubfx.Module,
//	)
package sensorhubfx

import (
	"fmt"

	"go.uber.org/fx"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// Group is the fx value group sensor types are collected from.
const Group = "sensorhub.types"

// Module provides a *sensorhub.Hub built from the sensorhub.Config in the
// container with every sensor type of Group, and starts and stops it with
// the application (non-blocking hooks).
var Module = fx.Module("sensorhub",
	fx.Provide(New),
	fx.Invoke(func(*sensorhub.Hub) {}),
)

// Params are New's dependencies.
type Params struct {
	fx.In

	Config    sensorhub.Config
	Types     []sensorhub.SensorType `group:"sensorhub.types"`
	Lifecycle fx.Lifecycle
}

// New builds the hub of Params.Types and appends its Start and Stop to the
// lifecycle.
func New(p Params) (*sensorhub.Hub, error) {
	hub, err := sensorhub.New(p.Config, p.Types...)
	if err != nil {
		return nil, fmt.Errorf("sensorhubfx: %w", err)
	}
	p.Lifecycle.Append(fx.StartStopHook(hub.Start, hub.Stop))
	return hub, nil
}

// SensorTypes adds types to Group.
func SensorTypes(types ...sensorhub.SensorType) fx.Option {
	opts := make([]fx.Option, len(types))
	for i, t := range types {
		opts[i] = fx.Supply(fx.Annotated{Group: Group, Target: t})
	}
	return fx.Options(opts...)
}

// AsSensorType annotates a constructor that returns a sensorhub.SensorType
// so that its result joins Group: fx.Provide(sensorhubfx.AsSensorType(newSoilPH)).
func AsSensorType(constructor any) any {
	return fx.Annotate(constructor, fx.ResultTags(`group:"`+Group+`"`))
}
