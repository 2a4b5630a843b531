package web

import (
	"testing"
	"testing/fstest"
)

func TestAccepts(t *testing.T) {
	for _, c := range []struct {
		header, name string
		want         bool
	}{
		{"", "br", false},
		{"gzip, deflate, br, zstd", "br", true},
		{"gzip, deflate, br, zstd", "gzip", true},
		{"gzip", "br", false},
		{"BR", "br", true},
		{"br;q=0", "br", false},
		{"br; q=0.0, gzip", "br", false},
		{"br;q=0.5", "br", true},
		{"*", "br", true},
		{"*;q=0", "gzip", false},
		{"*, br;q=0", "br", false},
		{"br;q=0, *", "br", false},
		{"gzip;q=bogus", "gzip", true}, // an unreadable weight is the default
		{" , ;;, =", "br", false},
	} {
		if got := accepts(c.header, c.name); got != c.want {
			t.Errorf("accepts(%q, %q) = %v, want %v", c.header, c.name, got, c.want)
		}
	}
}

func FuzzAccepts(f *testing.F) {
	for _, s := range []string{"gzip, deflate, br", "br;q=0", "*;q=0.1", ";;,,=q", "br;q=1e400"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		got := accepts(header, "br")
		if accepts(header+",", "br") != got {
			t.Fatalf("accepts(%q) changed with an empty item at the end", header)
		}
		// The first mention of a coding by name decides.
		if accepts("br;q=0, "+header, "br") || !accepts("br, "+header, "br") {
			t.Fatalf("accepts(%q) let a later item override the first mention of br", header)
		}
	})
}

// TestPrecompressed: a browser that accepts brotli or gzip gets the
// build's precompressed file with Content-Encoding; one that accepts
// neither gets the file itself; the variants have no URL of their own.
func TestPrecompressed(t *testing.T) {
	js := []byte("console.log('launcher')")
	srv, _, _, _ := newTestServer(t, fstest.MapFS{
		"widget.js":             {Data: js},
		"widget.js.br":          {Data: []byte("BR(widget)")},
		"widget.js.gz":          {Data: []byte("GZ(widget)")},
		"assets/otr-ab.wasm":    {Data: []byte("\x00asm-raw")},
		"assets/otr-ab.wasm.br": {Data: []byte("BR(wasm)")},
		"assets/otr-ab.wasm.gz": {Data: []byte("GZ(wasm)")},
		"assets/chat-cd.js":     {Data: []byte("chat")},
		"assets/chat-cd.js.gz":  {Data: []byte("GZ(chat)")},
		"assets/worker-ef.js":   {Data: []byte("worker")},
	})
	w, err := LoadWidget(fstest.MapFS{"widget.js": {Data: js}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, accept         string
		wantBody, wantCoding string
		wantCache            string
	}{
		{"/assets/otr-ab.wasm", "gzip, deflate, br, zstd", "BR(wasm)", "br", "public, max-age=31536000, immutable"},
		{"/assets/otr-ab.wasm", "gzip", "GZ(wasm)", "gzip", "public, max-age=31536000, immutable"},
		{"/assets/otr-ab.wasm", "identity", "\x00asm-raw", "", "public, max-age=31536000, immutable"},
		{"/assets/otr-ab.wasm", "br;q=0, gzip;q=0", "\x00asm-raw", "", "public, max-age=31536000, immutable"},
		{"/assets/chat-cd.js", "br, gzip", "GZ(chat)", "gzip", "public, max-age=31536000, immutable"}, // no .br: the next one
		{"/assets/worker-ef.js", "br, gzip", "worker", "", "public, max-age=31536000, immutable"},
		{"/widget.js", "br", "BR(widget)", "br", "public, max-age=300"},
		{"/widget-" + w.Hash + ".js", "gzip", "GZ(widget)", "gzip", "public, max-age=31536000, immutable"},
		{"/widget.js", "", string(js), "", "public, max-age=300"},
	} {
		resp, body := get(t, srv.URL+c.path, "Accept-Encoding", c.accept)
		if resp.StatusCode != 200 || body != c.wantBody || resp.Header.Get("Content-Encoding") != c.wantCoding {
			t.Errorf("%s (Accept-Encoding %q): %d %q Content-Encoding %q; want %q %q", c.path, c.accept, resp.StatusCode, body, resp.Header.Get("Content-Encoding"), c.wantBody, c.wantCoding)
		}
		if got := resp.Header.Get("Cache-Control"); got != c.wantCache {
			t.Errorf("%s: Cache-Control %q, want %q", c.path, got, c.wantCache)
		}
		if got := resp.Header.Values("Vary"); len(got) != 1 || got[0] != "Accept-Encoding" {
			t.Errorf("%s: Vary %q, want Accept-Encoding (caches must keep the forms apart)", c.path, got)
		}
	}
	for _, p := range []string{"/assets/otr-ab.wasm.br", "/assets/otr-ab.wasm.gz", "/assets/chat-cd.js.gz"} {
		if resp, _ := get(t, srv.URL+p, "Accept-Encoding", "br, gzip"); resp.StatusCode != 404 {
			t.Errorf("%s answered %d: a compressed variant is not an asset of its own", p, resp.StatusCode)
		}
	}
}
