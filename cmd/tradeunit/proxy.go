package main

import (
	"context"
	"flag"
	"fmt"

	"tradeunit/daemon/proxyd"
)

var proxyCmd = &command{
	name:  "proxy",
	usage: "--routes FILE|etcd://HOST:PORT/PREFIX --merchants FILE [--listen ADDR] [--health URL] [flags]",
	short: "run the stateless proxy: the public REST API, routing to the units of the routing table",
	run:   runProxy,
}

func runProxy(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	m := proxyd.NewMain()
	if err := parseProgram(e, fs, args, m.Config.Flags, m.ParseFlags); err != nil {
		return err
	}
	if err := m.Run(ctx); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "proxy listening on %s\n", m.URL())
	return closeAfter(m.Wait(ctx), m.Close)
}

// parseProgram parses the flags of a program's Main: help on stdout (exit
// status 0), mistakes on stderr.
func parseProgram(e *env, fs *flag.FlagSet, args []string, flags func(*flag.FlagSet), parse func(*flag.FlagSet, []string) error) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if isHelp(a) && a != "help" {
			flags(fs)
			fs.SetOutput(e.stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	fs.SetOutput(e.stderr)
	return parse(fs, args)
}

// closeAfter closes a program once it stopped serving, and returns the
// first error.
func closeAfter(err error, close func() error) error {
	if cerr := close(); err == nil {
		err = cerr
	}
	return err
}
