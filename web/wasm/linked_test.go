//go:build !js

package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"otrdesk.im/otrdesk/web/wasm/internal/nodewasm"
)

// The visitor downloads this module before the first chat, so what it
// links is watched: each entry below once cost kilobytes of brotli and
// was taken out (package fmt and the reflect machinery it brings, about
// 64 KB; the Unicode case tables behind strings.ToUpper). Nothing the
// engine does needs them; a new use of one usually means fmt.Errorf or
// Sprintf slipped into otr or here (use otr's wrap and strconv), or
// big.Int.SetString, encoding/hex.Decode or DecodeString, whose error
// paths format with fmt.
var unwanted = []string{
	"fmt.",
	"internal/fmtsort.",
	"reflect.Value.Call",
	"reflect.callMethod",
	"unicode.ToUpper",
}

func TestLinksNoUnwantedPackages(t *testing.T) {
	// The flags the widget ships with (nodewasm.OTR), with the linker
	// also listing why each symbol is linked.
	args := []string{"build"}
	for _, f := range nodewasm.OTR.Flags {
		if strings.HasPrefix(f, "-ldflags=") {
			f += " -dumpdep"
		}
		args = append(args, f)
	}
	cmd := exec.Command("go", append(args, "-o", os.DevNull, ".")...)
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("GOOS=js GOARCH=wasm go build -ldflags=-dumpdep: %v\n%s", err, out.Bytes())
	}
	// Each line is "from -> to": to is linked because from is. Function
	// metadata (to ending in .arginfo1 and the like) is shared between
	// functions of the same shape under the name of whichever came first,
	// so it names a package that may not be linked at all: skip it.
	found := map[string]string{}
	edges := 0
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		from, to, ok := strings.Cut(sc.Text(), " -> ")
		if !ok {
			continue
		}
		edges++
		if metadata(to) || packageInit(from, to) {
			continue
		}
		for _, u := range unwanted {
			if strings.HasPrefix(to, u) && !strings.HasPrefix(from, u) {
				if _, seen := found[u]; !seen {
					found[u] = from + " -> " + to
				}
			}
		}
	}
	if edges < 1000 {
		t.Fatalf("the linker listed %d dependencies; is -dumpdep still its flag?", edges)
	}
	for _, u := range unwanted {
		if e, ok := found[u]; ok {
			t.Errorf("the wasm engine links %s…, first through %s", u, e)
		}
	}
}

// packageInit reports whether the edge only runs a package's
// initialisation: built without inlining, an imported package's init
// task stays linked (fmt's sets two error values) even when none of its
// functions is; the functions are what the guard is about.
func packageInit(from, to string) bool {
	if strings.HasSuffix(to, "..inittask") {
		return true
	}
	if pkg, ok := strings.CutSuffix(from, "..inittask"); ok {
		return to == pkg+".init"
	}
	if pkg, ok := strings.CutSuffix(from, ".init"); ok {
		// the init's own package-level values, not calls elsewhere
		return strings.HasPrefix(to, pkg+".err")
	}
	return false
}

// metadata reports whether sym is data the compiler attaches to a function
// (argument and liveness info, stack objects) rather than code or a type.
func metadata(sym string) bool {
	i := strings.LastIndexByte(sym, '.')
	suffix := strings.TrimRight(sym[i+1:], "0123456789")
	switch suffix {
	case "arginfo", "argliveinfo", "stkobj", "opendefer", "args_stackmap", "wrapinfo":
		return true
	}
	return false
}
