// Command otrdesk is an end-to-end-encrypted live-chat service: an XMPP
// external component (XEP-0114) that routes anonymous website visitors to
// operators who answer with OTR from Pidgin, Profanity or mcabber, plus the
// HTTP server for the chat widget, the skin JSON and the admin API.
//
// Usage:
//
//	otrdesk serve      -config FILE
//	otrdesk skin add   NAME --title T --operators a@x,b@y [--policy require|opportunistic|plaintext] ...
//	otrdesk skin list | show NAME | remove NAME | set NAME [--title ...] ...
//	otrdesk keys generate (--skin NAME | --all) --format pidgin|profanity|mcabber|otrjs|age ...
//	otrdesk keys fingerprint FILE
//	otrdesk keys install --client pidgin|profanity|mcabber --account JID --key FILE [--dir D]
//	otrdesk keys revoke (--skin NAME | --all)
//	otrdesk keys register (--skin NAME | --all) --public-key FILE
//	otrdesk keys add-device --skin NAME --account JID --device ID [--fingerprint FP]
//	otrdesk keys revoke-device --skin NAME --account JID --device ID
//	otrdesk operator devices JID
//	otrdesk signer generate --out FILE [--passphrase-file F]
//	otrdesk keyring sign (--skin NAME | --all) --signer FILE [--valid 336h]
//	otrdesk keyring show NAME [--signer FILE|otrdesk-signer:...]
//	otrdesk snippet    NAME [--floating] [--signer FILE|otrdesk-signer:...]
//	otrdesk backup     FILE
//	otrdesk health
//	otrdesk version
//
// Every subcommand takes -config FILE (default ./otrdesk.toml, then
// /etc/otrdesk/otrdesk.toml). While serve runs, the others act through its
// admin API; otherwise they open the store themselves.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "devel"

const usage = `usage: otrdesk COMMAND [flags]

commands:
  serve      run the component, the HTTP server and the store
  skin       add | list | show | remove | set  chat boxes
  keys       generate | fingerprint | install | revoke | register  OTR keys of skins
             add-device | revoke-device  operators' OMEMO devices a skin trusts
  operator   devices  an operator's OMEMO devices and fingerprints (serve must run)
  signer     generate  the admin's offline key that signs keyrings
  keyring    sign | show  signed lists of a skin's keys, for pages that pin the signer
  snippet    print the HTML that embeds a skin's chat box
  backup     write a consistent copy of the store
  health     exit 0 when /healthz answers
  version    print the version

Run 'otrdesk COMMAND -h' for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code, writes results
// to stdout and one-line errors to stderr.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	c := &cli{stdout: stdout, stderr: stderr}
	cmds := map[string]func(*cli, []string) error{
		"serve":    cmdServe,
		"skin":     cmdSkin,
		"keys":     cmdKeys,
		"operator": cmdOperator,
		"snippet":  cmdSnippet,
		"signer":   cmdSigner,
		"keyring":  cmdKeyring,
		"backup":   cmdBackup,
		"health":   cmdHealth,
		"version":  func(c *cli, _ []string) error { fmt.Fprintln(c.stdout, "otrdesk", version); return nil },
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "otrdesk: unknown command %q: run 'otrdesk help' for the list\n", args[0])
		return 2
	}
	if err := cmd(c, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "otrdesk %s: %s\n", args[0], oneLine(err.Error()))
		var u usageError
		if errors.As(err, &u) {
			return 2
		}
		return 1
	}
	return 0
}

// cli is where a command writes: results to stdout, flag help and errors to
// stderr.
type cli struct {
	stdout, stderr io.Writer
}

type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// newFlags returns a flag set with the -config flag every subcommand takes.
func (c *cli) newFlags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("otrdesk "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	cfg := fs.String("config", "", "configuration file (default ./otrdesk.toml, then /etc/otrdesk/otrdesk.toml)")
	return fs, cfg
}

// parse parses flags that may stand before, between or after positional
// arguments, and returns the positional arguments in order.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// listFlag collects a repeatable flag; commas also separate values.
// skinTargets are the --skin NAME (repeatable) and --all flags of the
// commands that act on some skins or on every one.
type skinTargets struct {
	skins listFlag
	all   *bool
}

func addSkinTargets(fs *flag.FlagSet, skinUsage, allUsage string) *skinTargets {
	t := &skinTargets{}
	fs.Var(&t.skins, "skin", skinUsage)
	t.all = fs.Bool("all", false, allUsage)
	return t
}

// check refuses positional arguments and asks for exactly one of --skin
// and --all.
func (t *skinTargets) check(cmd string, pos []string) error {
	if len(pos) > 0 {
		return usagef("%s takes flags only (use --skin NAME), got %q", cmd, pos[0])
	}
	if *t.all == (len(t.skins) > 0) {
		return usagef("%s needs --skin NAME or --all, not both or neither", cmd)
	}
	return nil
}

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}
