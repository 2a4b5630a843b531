package xmpptest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"embed"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"mellium.im/xmpp/jid"
)

// Fixed domains of every harness server.
const (
	Domain     = "example.org"       // c2s host with registered accounts
	AnonDomain = "guest.example.org" // SASL ANONYMOUS host
)

// Errors of the server side.
var (
	// ErrNotInstalled is wrapped when a server binary is missing; the text
	// names the Debian package to install.
	ErrNotInstalled = errors.New("xmpptest: server not installed")
)

//go:embed prosody.cfg.lua.tmpl ejabberd.yml.tmpl
var templates embed.FS

// Options configure a server.
type Options struct {
	// Components maps component domains (e.g. "chat.example.org") to their
	// XEP-0114 secrets.
	Components map[string]string
	// Dir is the instance directory (config, data, logs). Empty means a new
	// temporary directory, removed by Close.
	Dir string
	// Logf, when set, receives progress lines (never passwords or secrets).
	Logf func(format string, args ...any)
	// C2SPort, ComponentPort and HTTPPort fix the listeners' ports (on
	// 127.0.0.1), for a demo that wants stable addresses; 0 (the default,
	// and what tests should use) picks a free port.
	C2SPort, ComponentPort, HTTPPort int
	// NoArchive leaves the message archive (XEP-0313) out. Benchmarks want
	// it: Prosody's file-backed archive grows with every message and slows
	// every later one, whoever sends it.
	NoArchive bool
	// Debug sets the server's log level to debug (in Server.LogFile). With
	// these configs neither server logs stanza contents even then.
	Debug bool

	// Prosody only (ejabberd refuses them): PluginPaths are added to
	// plugin_paths, HostModules are enabled on the operators' host
	// (Domain) only, and HostOptions are set there as string options
	// (names must be Lua identifiers), for tests of a module of our own
	// such as contrib/prosody/mod_otrdesk.lua.
	PluginPaths []string
	HostModules []string
	HostOptions map[string]string
}

// Server is a private XMPP server on loopback.
type Server struct {
	Kind          string // "prosody" or "ejabberd"
	Domain        string // "example.org"
	AnonDomain    string // "guest.example.org"
	C2SAddr       string // host:port of the c2s listener (STARTTLS)
	ComponentAddr string // host:port of the XEP-0114 listener
	BOSHURL       string // http://127.0.0.1:PORT/http-bind
	Dir           string // instance directory
	LogFile       string // the server's log
	CertFile      string // the throwaway certificate (PEM) c2s presents

	opts      Options
	ownDir    bool
	backend   backend
	certDER   []byte // this instance's certificate, checked by the probe
	readyLine string // a log line that says the server has started ("" for none)
	logOffset int64  // size of LogFile when the current start began

	mu   sync.Mutex
	proc *process
}

// backend is what differs between Prosody and ejabberd.
type backend interface {
	command() (*exec.Cmd, error)
	register(ctx context.Context, user, password string) error
	stop(p *process) error
}

// ComponentSecret returns the secret configured for a component domain.
func (s *Server) ComponentSecret(domain string) string { return s.opts.Components[domain] }

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// templateData is what the config templates see.
type templateData struct {
	Dir, LogLevel, LogFile           string
	PidFile, DataPath, CertDir       string
	CertFile, KeyFile                string
	Domain, AnonDomain               string
	C2SPort, ComponentPort, HTTPPort int
	Components                       []component
	Archive                          bool
	PluginPaths, HostModules         []string
	HostOptions                      []hostOption
}

type hostOption struct{ Name, Value string }

type component struct{ Domain, Secret string }

var funcs = template.FuncMap{
	"lua": luaQuote,
	// yaml quotes a string as a YAML double-quoted scalar.
	"yaml": func(s string) string { return strconv.Quote(s) },
}

// luaQuote quotes s as a Lua string literal: printable ASCII as is, quote
// and backslash escaped, every other byte as a decimal escape.
func luaQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "\\%03d", c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func renderTemplate(name string, data templateData) ([]byte, error) {
	t, err := template.New(name).Funcs(funcs).ParseFS(templates, name)
	if err != nil {
		return nil, fmt.Errorf("xmpptest: parsing %s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("xmpptest: rendering %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// newServer prepares what both kinds share: the directory, the ports, the
// certificate and the template data.
func newServer(kind string, opts Options, dirMode os.FileMode) (*Server, templateData, error) {
	for d, secret := range opts.Components {
		if _, err := jid.Parse(d); err != nil || strings.ContainsAny(d, "@/") {
			return nil, templateData{}, fmt.Errorf("xmpptest: invalid component domain %q", d)
		}
		if secret == "" || strings.ContainsAny(secret, "\x00\n\r") {
			return nil, templateData{}, fmt.Errorf("xmpptest: invalid secret for component %q", d)
		}
	}
	hostOptions, err := prosodyExtras(kind, opts)
	if err != nil {
		return nil, templateData{}, err
	}
	s := &Server{Kind: kind, Domain: Domain, AnonDomain: AnonDomain, opts: opts, Dir: opts.Dir}
	if s.Dir == "" {
		d, err := os.MkdirTemp("", "xmpptest-"+kind+"-")
		if err != nil {
			return nil, templateData{}, fmt.Errorf("xmpptest: making instance directory: %w", err)
		}
		s.Dir, s.ownDir = d, true
	} else if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, templateData{}, fmt.Errorf("xmpptest: making instance directory: %w", err)
	}
	if err := os.Chmod(s.Dir, dirMode); err != nil {
		s.cleanupDir()
		return nil, templateData{}, fmt.Errorf("xmpptest: instance directory: %w", err)
	}
	ports, err := freePorts(3)
	if err != nil {
		s.cleanupDir()
		return nil, templateData{}, err
	}
	for i, fixed := range []int{opts.C2SPort, opts.ComponentPort, opts.HTTPPort} {
		if fixed < 0 || fixed > 65535 {
			s.cleanupDir()
			return nil, templateData{}, fmt.Errorf("xmpptest: invalid port %d", fixed)
		}
		if fixed != 0 {
			ports[i] = fixed
		}
	}
	data := templateData{
		Dir:           s.Dir,
		LogLevel:      "info",
		Domain:        Domain,
		AnonDomain:    AnonDomain,
		C2SPort:       ports[0],
		ComponentPort: ports[1],
		HTTPPort:      ports[2],
		Archive:       !opts.NoArchive,
		PluginPaths:   opts.PluginPaths,
		HostModules:   opts.HostModules,
		HostOptions:   hostOptions,
	}
	if opts.Debug {
		data.LogLevel = "debug"
	}
	for d, secret := range opts.Components {
		data.Components = append(data.Components, component{Domain: d, Secret: secret})
	}
	sort.Slice(data.Components, func(i, j int) bool { return data.Components[i].Domain < data.Components[j].Domain })
	hosts := []string{Domain, AnonDomain, "localhost"}
	for _, c := range data.Components {
		hosts = append(hosts, c.Domain)
	}
	data.CertDir = filepath.Join(s.Dir, "certs")
	data.PidFile = filepath.Join(s.Dir, kind+".pid")
	data.DataPath = filepath.Join(s.Dir, "data")
	data.LogFile = filepath.Join(s.Dir, kind+".log")
	data.CertFile, data.KeyFile, s.certDER, err = writeCertificate(data.CertDir, hosts)
	s.CertFile = data.CertFile
	if err != nil {
		s.cleanupDir()
		return nil, templateData{}, err
	}
	s.C2SAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(data.C2SPort))
	s.ComponentAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(data.ComponentPort))
	s.BOSHURL = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(data.HTTPPort)) + "/http-bind"
	return s, data, nil
}

// prosodyExtras checks Options.PluginPaths, HostModules and HostOptions
// and returns the options sorted by name.
func prosodyExtras(kind string, opts Options) ([]hostOption, error) {
	if len(opts.PluginPaths)+len(opts.HostModules)+len(opts.HostOptions) == 0 {
		return nil, nil
	}
	if kind != "prosody" {
		return nil, fmt.Errorf("xmpptest: plugin paths, host modules and host options are for prosody, not %s", kind)
	}
	for _, d := range opts.PluginPaths {
		if !filepath.IsAbs(d) {
			return nil, fmt.Errorf("xmpptest: plugin path %q is not absolute", d)
		}
	}
	var out []hostOption
	for name, v := range opts.HostOptions {
		if !isLuaName(name) {
			return nil, fmt.Errorf("xmpptest: host option name %q is not a Lua identifier", name)
		}
		out = append(out, hostOption{Name: name, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func isLuaName(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

func (s *Server) cleanupDir() {
	if s.ownDir {
		os.RemoveAll(s.Dir)
	}
}

// freePorts asks the kernel for n free loopback ports. They are released
// before the server binds them; the readiness probe then checks that it is
// our server that answers.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("xmpptest: finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// writeCertificate makes a throwaway self-signed ECDSA certificate for hosts
// (and 127.0.0.1) valid for a week, and writes cert.pem and key.pem.
func writeCertificate(dir string, hosts []string) (certFile, keyFile string, der []byte, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", nil, fmt.Errorf("xmpptest: making certificate directory: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, fmt.Errorf("xmpptest: generating certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return "", "", nil, fmt.Errorf("xmpptest: generating certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"otrdesk xmpptest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              hosts,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", nil, fmt.Errorf("xmpptest: creating certificate: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", nil, fmt.Errorf("xmpptest: encoding certificate key: %w", err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", nil, fmt.Errorf("xmpptest: writing certificate: %w", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		return "", "", nil, fmt.Errorf("xmpptest: writing certificate key: %w", err)
	}
	return certFile, keyFile, der, nil
}

// process is a running server process.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, set before done is closed
}

func startProcess(cmd *exec.Cmd, outPath string) (*process, error) {
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("xmpptest: opening %s: %w", outPath, err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("xmpptest: starting %s: %w", cmd.Path, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// terminate sends SIGTERM to the process group, waits up to grace, then
// kills the group.
func (p *process) terminate(grace time.Duration) error {
	if p.exited() {
		return nil
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("xmpptest: %s did not stop within %v; killed", filepath.Base(p.cmd.Path), grace)
}

// tail returns the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// Start starts the server (after Stop, or again after Restart failed).
// Readiness is bounded (30 s for Prosody, 90 s for ejabberd) besides ctx.
func (s *Server) Start(ctx context.Context) error {
	timeout := s.startTimeout()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil && !s.proc.exited() {
		return fmt.Errorf("xmpptest: %s already running", s.Kind)
	}
	cmd, err := s.backend.command()
	if err != nil {
		return err
	}
	began := time.Now()
	s.logOffset = 0
	if fi, err := os.Stat(s.LogFile); err == nil {
		s.logOffset = fi.Size()
	}
	p, err := startProcess(cmd, filepath.Join(s.Dir, s.Kind+".out"))
	if err != nil {
		return err
	}
	s.proc = p
	if err := s.waitReady(ctx, p, timeout); err != nil {
		_ = s.backend.stop(p)
		return err
	}
	s.logf("xmpptest: %s ready in %v: c2s %s, component %s, bosh %s", s.Kind, time.Since(began).Round(time.Millisecond), s.C2SAddr, s.ComponentAddr, s.BOSHURL)
	return nil
}

// waitReady polls until the c2s listener answers a stream for Domain with
// STARTTLS, the component listener accepts connections and BOSH answers, or
// until the process exits or timeout passes.
func (s *Server) waitReady(ctx context.Context, p *process, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("xmpptest: %s exited during start (%v); output:\n%s\nlog:\n%s", s.Kind, p.err,
				tail(filepath.Join(s.Dir, s.Kind+".out"), 2000), tail(s.LogFile, 3000))
		}
		if last = s.probe(ctx); last == nil {
			return nil
		} else if errors.Is(last, errPortInUse) {
			return last
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("xmpptest: %s not ready after %v: %w; log:\n%s", s.Kind, timeout, last, tail(s.LogFile, 3000))
		case <-p.done:
		case <-tick.C:
		}
	}
}

// errPortInUse marks a start that failed because a port picked as free was
// taken in the meantime; the first start then retries with new ports.
var errPortInUse = errors.New("xmpptest: a port picked for the server is in use")

// Log lines that mean a listener could not bind (Prosody carries on
// without it; ejabberd exits).
var bindFailures = []string{"Failed to open server port", "Not listening on any ports", "eaddrinuse"}

// checkLog fails fast on a bind failure and, for servers that log one,
// waits for the line saying the server has started.
func (s *Server) checkLog() (started bool, err error) {
	b, _ := os.ReadFile(s.LogFile)
	if int64(len(b)) >= s.logOffset {
		b = b[s.logOffset:]
	}
	for _, f := range bindFailures {
		if bytes.Contains(b, []byte(f)) {
			return false, fmt.Errorf("%w (%q in %s)", errPortInUse, f, s.LogFile)
		}
	}
	return s.readyLine == "" || bytes.Contains(b, []byte(s.readyLine)), nil
}

// probe checks once that the listeners answer as this server would: c2s
// must present this instance's certificate after STARTTLS (another
// harness server on a stolen port would present its own), the component
// port must accept, BOSH must answer.
func (s *Server) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	started, err := s.checkLog()
	if err != nil {
		return err
	}
	if !started {
		return fmt.Errorf("no %q in the log yet", s.readyLine)
	}
	if err := probeC2S(ctx, s.C2SAddr, s.Domain, s.certDER); err != nil {
		return err
	}
	if len(s.opts.Components) > 0 {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", s.ComponentAddr)
		if err != nil {
			return fmt.Errorf("component listener: %w", err)
		}
		c.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.BOSHURL, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("bosh: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusMethodNotAllowed {
		return fmt.Errorf("bosh: %s", resp.Status)
	}
	// A listener that failed to bind while the others came up.
	_, err = s.checkLog()
	return err
}

// probeC2S opens a stream to domain, negotiates STARTTLS and checks that the
// server presents the certificate cert.
func probeC2S(ctx context.Context, addr, domain string, cert []byte) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("c2s listener: %w", err)
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	_ = c.SetDeadline(dl)
	sr, f, err := openStream(c, domain)
	if err != nil {
		return fmt.Errorf("c2s listener: %w", err)
	}
	if f.StartTLS == nil {
		return errors.New("c2s listener: no STARTTLS offered")
	}
	if _, err := c.Write([]byte("<starttls xmlns='" + nsTLS + "'/>")); err != nil {
		return fmt.Errorf("c2s listener: %w", err)
	}
	if st, err := sr.next(); err != nil || st.Name != "proceed" {
		return fmt.Errorf("c2s listener: starttls: %s %v", st.Name, err)
	}
	tc := tls.Client(c, &tls.Config{ServerName: domain, InsecureSkipVerify: true})
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("c2s listener: tls: %w", err)
	}
	defer tc.Close()
	peer := tc.ConnectionState().PeerCertificates
	if len(peer) == 0 || !bytes.Equal(peer[0].Raw, cert) {
		return fmt.Errorf("%w: the c2s port answers with another server's certificate", errPortInUse)
	}
	return nil
}

// Stop stops the server and keeps its directory (Start or Restart reuse it).
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	err := s.backend.stop(s.proc)
	s.proc = nil
	return err
}

// Restart stops the server and starts it again with the same ports,
// configuration and data.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return fmt.Errorf("xmpptest: restarting %s: %w", s.Kind, err)
	}
	return s.Start(ctx)
}

func (s *Server) startTimeout() time.Duration {
	if s.Kind == "ejabberd" {
		return 90 * time.Second
	}
	return 30 * time.Second
}

// Close stops the server and removes the instance directory if the harness
// made it.
func (s *Server) Close() error {
	err := s.Stop()
	s.cleanupDir()
	return err
}

// Register creates an account user@example.org and returns its bare JID.
// Registering an existing account changes nothing and is not an error.
func (s *Server) Register(ctx context.Context, user, password string) (jid.JID, error) {
	j, err := jid.New(user, s.Domain, "")
	if err != nil {
		return jid.JID{}, fmt.Errorf("xmpptest: registering %q: %w", user, err)
	}
	if err := s.backend.register(ctx, j.Localpart(), password); err != nil {
		return jid.JID{}, fmt.Errorf("xmpptest: registering %s: %w", j, err)
	}
	return j, nil
}

// Dial logs in as user@example.org over c2s (STARTTLS, SCRAM-SHA-1 or
// PLAIN), binds resource (the server picks one when empty) and sends initial
// presence.
func (s *Server) Dial(ctx context.Context, user, password, resource string) (*Client, error) {
	return dial(ctx, s.C2SAddr, s.Domain, &credentials{user: user, password: password}, resource, s.opts.Logf)
}

// DialAnonymous logs in on guest.example.org with SASL ANONYMOUS.
func (s *Server) DialAnonymous(ctx context.Context) (*Client, error) {
	return dial(ctx, s.C2SAddr, s.AnonDomain, nil, "", s.opts.Logf)
}

// startWithRetry runs a first start up to three times while it fails
// because a port picked as free was taken before the server bound it.
func startWithRetry(once func() (*Server, error)) (*Server, error) {
	for attempt := 1; ; attempt++ {
		s, err := once()
		if err == nil || !errors.Is(err, errPortInUse) || attempt == 3 {
			return s, err
		}
	}
}

// lookPath finds a server binary or names the Debian package to install.
func lookPath(name, pkg string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %s not found (install the Debian package: apt-get install %s)", ErrNotInstalled, name, pkg)
	}
	return p, nil
}
