package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"otrdesk.im/otrdesk/admin"
	"otrdesk.im/otrdesk/store"
)

const skinUsage = `usage: otrdesk skin add NAME --title T --operators a@x,b@y [--policy require|opportunistic|plaintext]
                        [--greeting TEXT] [--origin https://site.example]... [--color #RRGGBB]
                        [--operator-name JID=NAME]...
       otrdesk skin list
       otrdesk skin show NAME [--json]
       otrdesk skin remove NAME
       otrdesk skin set NAME [--title T] [--operators ...] [--policy ...] [--greeting ...] [--origin ...] [--color ...]
       otrdesk skin stats NAME [--days N] [--json]`

// skinFlags are the fields add and set share; set applies only those given.
type skinFlags struct {
	fs                             *flag.FlagSet
	title, greeting, color, policy *string
	operators, origins, names      listFlag
}

func newSkinFlags(fs *flag.FlagSet) *skinFlags {
	f := &skinFlags{fs: fs}
	f.title = fs.String("title", "", "title shown at the top of the chat box")
	f.greeting = fs.String("greeting", "", "first line the visitor reads")
	f.color = fs.String("color", "", "accent colour, #RRGGBB")
	f.policy = fs.String("policy", "", "OTR policy: require, opportunistic (default) or plaintext")
	fs.Var(&f.operators, "operators", "operators' bare JIDs, comma-separated")
	fs.Var(&f.origins, "origin", "a site allowed to embed the chat box, https://site.example (repeatable)")
	fs.Var(&f.names, "operator-name", "display name of an operator, JID=NAME (repeatable)")
	return f
}

func (f *skinFlags) given(name string) bool {
	seen := false
	f.fs.Visit(func(fl *flag.Flag) { seen = seen || fl.Name == name })
	return seen
}

func (f *skinFlags) operatorNames() (map[string]string, error) {
	if len(f.names) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range f.names {
		j, n, ok := strings.Cut(kv, "=")
		if !ok || j == "" {
			return nil, usagef("--operator-name %q: write it as JID=NAME, e.g. ann@example.org=Ann", kv)
		}
		m[j] = n
	}
	return m, nil
}

func (f *skinFlags) patch() (admin.SkinPatch, error) {
	var p admin.SkinPatch
	if f.given("title") {
		p.Title = f.title
	}
	if f.given("greeting") {
		p.Greeting = f.greeting
	}
	if f.given("color") {
		p.Color = f.color
	}
	if f.given("policy") {
		pol := store.Policy(*f.policy)
		p.Policy = &pol
	}
	if f.given("operators") {
		ops := []string(f.operators)
		p.Operators = &ops
	}
	if f.given("origin") {
		o := []string(f.origins)
		p.Origins = &o
	}
	names, err := f.operatorNames()
	p.OperatorNames = names
	return p, err
}

func cmdSkin(c *cli, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(c.stderr, skinUsage)
		if len(args) == 0 {
			return usagef("name a subcommand: add, list, show, remove or set")
		}
		return flag.ErrHelp
	}
	sub, args := pickSubcommand(args, "add", "list", "show", "remove", "set", "stats")
	fs, cfgPath := c.newFlags("skin " + sub)
	var sf *skinFlags
	if sub == "add" || sub == "set" {
		sf = newSkinFlags(fs)
	}
	asJSON := false
	if sub == "show" || sub == "list" || sub == "stats" {
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	}
	days := fs.Int("days", 30, "with stats: how many days back")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	want := map[string]int{"add": 1, "list": 0, "show": 1, "remove": 1, "set": 1, "stats": 1}
	n, ok := want[sub]
	if !ok {
		return usagef("unknown subcommand %q: use add, list, show, remove, set or stats", sub)
	}
	if len(pos) != n {
		if n == 0 {
			return usagef("skin %s takes no arguments", sub)
		}
		return usagef("skin %s needs the skin's NAME", sub)
	}
	cfg, svc, done, err := openServiceFlag(*cfgPath)
	if err != nil {
		return err
	}
	defer done()

	switch sub {
	case "add":
		if *sf.title == "" {
			return usagef("skin add needs --title: the title visitors see on the chat box")
		}
		if len(sf.operators) == 0 {
			return usagef("skin add needs --operators: the bare JIDs of the people who answer, e.g. --operators ann@example.org,bob@example.org")
		}
		names, err := sf.operatorNames()
		if err != nil {
			return err
		}
		s, err := svc.CreateSkin(store.Skin{
			Name: pos[0], Title: *sf.title, Greeting: *sf.greeting, Color: *sf.color,
			Policy: store.Policy(*sf.policy), Operators: sf.operators, OperatorNames: names, Origins: sf.origins,
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "added skin %s (%s@%s); next: otrdesk keys generate --skin %s --format pidgin --account OPERATOR-JID\n",
			s.Name, s.Name, cfg.Component.Domain, s.Name)
	case "set":
		p, err := sf.patch()
		if err != nil {
			return err
		}
		s, err := svc.UpdateSkin(pos[0], p)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "updated skin %s\n", s.Name)
	case "remove":
		if err := svc.DeleteSkin(pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "removed skin %s\n", pos[0])
	case "list":
		skins, err := svc.Skins()
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(c, skins)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tTITLE\tPOLICY\tOPERATORS\tFINGERPRINT")
		for _, s := range skins {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", s.Name, s.Title, s.Policy, len(s.Operators), currentFingerprint(s))
		}
		return tw.Flush()
	case "stats":
		st, err := svc.Stats(pos[0], *days)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(c, st)
		}
		if len(st.Days) == 0 {
			fmt.Fprintf(c.stdout, "no chats in skin %s in the last %d days\n", pos[0], *days)
			return nil
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "DAY (UTC)\tCHATS\tMEDIAN WAIT\tMEDIAN LENGTH\tENCRYPTED\t")
		for _, d := range st.Days {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%.0f%%\t\n", d.Day, d.Chats, d.MedianWait.Round(time.Second), d.MedianDuration.Round(time.Second), 100*d.EncryptedShare)
		}
		return tw.Flush()
	case "show":
		s, err := svc.Skin(pos[0])
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(c, s)
		}
		printSkin(c, s, cfg)
	}
	return nil
}

func currentFingerprint(s store.Skin) string {
	for _, k := range s.Keys {
		if k.Retired.IsZero() && !k.Revoked {
			return k.Fingerprint.String()
		}
	}
	return "-"
}

func printSkin(c *cli, s store.Skin, cfg *Config) {
	w := c.stdout
	fmt.Fprintf(w, "name:       %s\njid:        %s@%s\ntitle:      %s\n", s.Name, s.Name, cfg.Component.Domain, s.Title)
	fmt.Fprintf(w, "greeting:   %s\ncolor:      %s\npolicy:     %s\n", s.Greeting, s.Color, s.Policy)
	ops := append([]string(nil), s.Operators...)
	sort.Strings(ops)
	for i, o := range ops {
		label := "operators:"
		if i > 0 {
			label = ""
		}
		if n := s.OperatorNames[o]; n != "" {
			o += " (" + n + ")"
		}
		fmt.Fprintf(w, "%-11s %s\n", label, o)
	}
	fmt.Fprintf(w, "origins:    %s\n", strings.Join(s.Origins, " "))
	for _, k := range s.Keys {
		state := "current"
		switch {
		case k.Revoked:
			state = "revoked " + k.Retired.Format(time.DateOnly)
		case !k.Retired.IsZero():
			state = "retired " + k.Retired.Format(time.DateOnly)
		}
		fmt.Fprintf(w, "key:        %s  created %s  %s\n", k.Fingerprint, k.Created.Format(time.DateOnly), state)
	}
	fmt.Fprintf(w, "created:    %s\nupdated:    %s\n", s.Created.Format(time.RFC3339), s.Updated.Format(time.RFC3339))
}

func printJSON(c *cli, v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// pickSubcommand takes the subcommand out of args, so flags may come before
// it too ("otrdesk skin -config F list").
func pickSubcommand(args []string, subs ...string) (string, []string) {
	for i, a := range args {
		for _, s := range subs {
			if a == s {
				rest := append(append([]string(nil), args[:i]...), args[i+1:]...)
				return s, rest
			}
		}
	}
	return args[0], args[1:]
}
