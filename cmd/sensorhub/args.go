package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"
)

// parseArgs parses args with fs, flags before, between and after the
// positional arguments (flag.FlagSet.Parse stops at the first of them),
// and returns the positional ones. "--" ends the flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
}

// problems collects what is wrong with a command's arguments, so that it
// names every bad value at once.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// float parses the value of flag name, if given (nil otherwise).
func (p *problems) float(name string, v *string) *float64 {
	if v == nil {
		return nil
	}
	f, err := strconv.ParseFloat(*v, 64)
	if err != nil {
		p.add("--%s %q is not a number", name, *v)
		return nil
	}
	return &f
}

// time parses the value of flag name as RFC 3339, if given (the zero time
// otherwise).
func (p *problems) time(name string, v *string) time.Time {
	if v == nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, *v)
	if err != nil {
		p.add("--%s %q is not an RFC 3339 time such as 2024-12-01T00:00:00Z", name, *v)
	}
	return t
}

// err returns the problems, and invalid if it is not nil, as one usage
// error naming them all; nil when there are none.
func (p problems) err(cmd string, invalid error) error {
	if invalid != nil {
		p = append(p, invalid.Error())
	}
	if len(p) == 0 {
		return nil
	}
	errs := make([]error, len(p))
	for i, msg := range p {
		errs[i] = errors.New(msg)
	}
	return fmt.Errorf("%w: %s:\n%w", errUsage, cmd, errors.Join(errs...))
}

// stringFlag defines flag name on fs, whose value is nil until given.
func stringFlag(fs *flag.FlagSet, name, usage string) **string {
	v := new(*string)
	fs.Func(name, usage, func(s string) error { *v = &s; return nil })
	return v
}
