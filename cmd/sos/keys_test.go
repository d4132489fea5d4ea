package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/kernel"
	"github.com/sos-kernel/sos/kernel/keyring"
)

// keyCLI runs sos commands in-process with a cheap KDF and a scripted prompt
// (a test never reaches the real terminal).
type keyCLI struct {
	t       *testing.T
	answers []string // what the prompt answers, in order
	prompts []string // what it was asked
}

func newCLI(t *testing.T) *keyCLI {
	t.Helper()
	for _, env := range []string{envKeyringPassphrase, envBIP39Passphrase, "SOS_HOME"} {
		t.Setenv(env, "")
		os.Unsetenv(env)
	}
	return &keyCLI{t: t}
}

func (c *keyCLI) run(stdin string, args ...string) (stdout, stderr string, err error) {
	c.t.Helper()
	g := &globals{keys: keyringFlags{kdf: keyring.KDF{N: 1 << 10, R: 8, P: 1}, prompt: func(msg string) ([]byte, error) {
		c.prompts = append(c.prompts, msg)
		if len(c.answers) == 0 {
			return nil, errNoTerminal
		}
		a := c.answers[0]
		c.answers = c.answers[1:]
		return []byte(a), nil
	}}}
	root := newRoot(g)
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

func (c *keyCLI) ok(stdin string, args ...string) (string, string) {
	c.t.Helper()
	out, errOut, err := c.run(stdin, args...)
	if err != nil {
		c.t.Fatalf("sos %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out, errOut
}

func privateFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKeysAddRecoverDelete: 'keys add' prints the address on stdout and
// the mnemonic once (stderr, or the JSON), --no-backup hides it, 'keys add
// --recover' reads it from stdin and gets the same address, 'keys delete'
// asks first.
func TestKeysAddRecoverDelete(t *testing.T) {
	c := newCLI(t)
	home := t.TempDir()
	out, errOut := c.ok("", "keys", "add", "alice", "--home", home)
	f := strings.Fields(out)
	if len(f) != 2 || f[0] != "alice" || !strings.HasPrefix(f[1], "sos1") {
		t.Fatalf("stdout %q, want 'alice sos1...'", out)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	mnemonic := lines[len(lines)-1]
	if n := len(strings.Fields(mnemonic)); n != 24 || !strings.Contains(errOut, "Important") {
		t.Fatalf("stderr %q: want the warning and 24 words", errOut)
	}
	var j keyring.Entry
	out, _ = c.ok("", "keys", "add", "bob", "--home", home, "-o", "json")
	if err := json.Unmarshal([]byte(out), &j); err != nil || len(strings.Fields(j.Mnemonic)) != 24 {
		t.Fatalf("json %s: %v", out, err)
	}
	out, errOut = c.ok("", "keys", "add", "carol", "--home", home, "--no-backup", "-o", "json")
	if strings.Contains(out, "mnemonic") || errOut != "" {
		t.Fatalf("--no-backup printed %q / %q", out, errOut)
	}
	// show/list JSON are as before: name and address only.
	out, _ = c.ok("", "keys", "show", "alice", "--home", home, "-o", "json")
	if out != "{\n  \"name\": \"alice\",\n  \"address\": \""+f[1]+"\"\n}\n" {
		t.Fatalf("show -o json: %q", out)
	}
	if out, _ = c.ok("", "keys", "show", "alice", "--home", home); out != f[1]+"\n" {
		t.Fatalf("show: %q", out)
	}

	// delete asks; no answer (stdin empty) deletes nothing.
	if _, errOut, err := c.run("", "keys", "delete", "alice", "--home", home); err == nil || !strings.Contains(err.Error(), "pass -y") || !strings.Contains(errOut, "[y/N]") {
		t.Fatalf("delete without confirmation: %v %q", err, errOut)
	}
	if _, err := os.Stat(filepath.Join(home, "keys", "alice.json")); err != nil {
		t.Fatal("an unconfirmed delete removed the key")
	}
	c.ok("y\n", "keys", "delete", "alice", "--home", home)
	if _, _, err := c.run("", "keys", "show", "alice", "--home", home); !errors.Is(err, keyring.ErrNotFound) {
		t.Fatalf("show after delete: %v", err)
	}
	out, _ = c.ok("  "+strings.ToUpper(mnemonic)+"\n", "keys", "add", "alice", "--recover", "--home", home)
	if out != "alice "+f[1]+"\n" {
		t.Fatalf("recover: %q, want the address %s", out, f[1])
	}
	c.ok("", "keys", "delete", "alice", "-y", "--home", home)

	for _, bad := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"keys", "add", "x", "--recover"}, "stdin, which is empty"},
		{"abandon art\n", []string{"keys", "add", "x", "--recover"}, "has 2 words, want 24"},
		{"", []string{"keys", "add", "x", "--index", "2"}, "--index goes with --recover"},
		{"", []string{"keys", "add", "x", "--hd-path", "m/44'/118'/0'/0/0"}, "no BIP-32 HD paths"},
		{mnemonic, []string{"keys", "add", "bob", "--recover"}, "already exists"},
		{"", []string{"keys", "add", "x", "--keyring-backend", "os"}, "want file (encrypted) or test"},
	} {
		if _, _, err := c.run(bad.stdin, append(bad.args, "--home", home)...); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v: %v, want %q", bad.args, err, bad.want)
		}
	}
	// --index picks another key of the same mnemonic.
	out, _ = c.ok(mnemonic, "keys", "add", "alice1", "--recover", "--index", "1", "--home", home)
	if strings.Contains(out, f[1]) {
		t.Fatal("index 1 gave index 0's address")
	}
	t.Setenv(envBIP39Passphrase, "twenty-fifth")
	out, _ = c.ok(mnemonic, "keys", "add", "alicep", "--recover", "--bip39-passphrase", "--home", home)
	if strings.Contains(out, f[1]) {
		t.Fatal("a BIP-39 passphrase gave the same address")
	}
}

// TestKeysFileBackend: 'sos init --keyring-backend file' records the
// backend, keys added to that home are encrypted (the passphrase asked
// twice at a prompt, or read from $SOS_KEYRING_PASSPHRASE or a 0600 file),
// a wrong passphrase writes nothing, and --from decrypts.
func TestKeysFileBackend(t *testing.T) {
	c := newCLI(t)
	home := filepath.Join(t.TempDir(), "n1")
	c.ok("", "init", "--home", home, "--keyring-backend", "file")
	cfg, err := kernel.LoadConfig(home)
	if err != nil || cfg.KeyringBackend != "file" {
		t.Fatalf("config: %+v %v", cfg.KeyringBackend, err)
	}
	// No terminal, no env, no file: a clear error, nothing written.
	if _, _, err := c.run("", "keys", "add", "alice", "--home", home); !errors.Is(err, keyring.ErrNoPassphrase) ||
		!strings.Contains(err.Error(), envKeyringPassphrase) || !strings.Contains(err.Error(), "--keyring-passphrase-file") {
		t.Fatalf("no passphrase: %v", err)
	}
	// A prompt asks twice for a new keyring's passphrase; a mismatch writes nothing.
	c.answers = []string{"correct horse", "correct hose"}
	if _, _, err := c.run("", "keys", "add", "alice", "--home", home); err == nil || !strings.Contains(err.Error(), "differ") {
		t.Fatalf("mismatch: %v", err)
	}
	c.answers, c.prompts = []string{"correct horse", "correct horse"}, nil
	out, _ := c.ok("", "keys", "add", "alice", "--home", home)
	addr := strings.Fields(out)[1]
	if len(c.prompts) != 2 || !strings.Contains(c.prompts[0], filepath.Join(home, "keys")) {
		t.Fatalf("prompts %q", c.prompts)
	}
	b, _ := os.ReadFile(filepath.Join(home, "keys", "alice.json"))
	if !bytes.Contains(b, []byte(`"crypto"`)) || bytes.Contains(b, []byte(`"seed"`)) {
		t.Fatalf("alice.json is not encrypted: %s", b)
	}
	// list/show need no passphrase.
	c.prompts = nil
	if out, _ := c.ok("", "keys", "list", "--home", home); !strings.Contains(out, addr) || len(c.prompts) != 0 {
		t.Fatalf("list: %q, prompts %q", out, c.prompts)
	}
	// A wrong passphrase (env) fails and writes nothing.
	t.Setenv(envKeyringPassphrase, "wrong horse")
	if _, _, err := c.run("", "keys", "add", "bob", "--home", home); !errors.Is(err, keyring.ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "keys", "bob.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("bob.json written with a wrong passphrase")
	}
	// A prompt gets three tries.
	os.Unsetenv(envKeyringPassphrase)
	c.answers, c.prompts = []string{"nope", "correct horse"}, nil
	g := &globals{home: home, keys: keyringFlags{prompt: func(msg string) ([]byte, error) {
		c.prompts = append(c.prompts, msg)
		a := c.answers[0]
		c.answers = c.answers[1:]
		return []byte(a), nil
	}}}
	key, err := g.signingKey("alice")
	if err != nil || key.Address().String() != addr || len(c.prompts) != 2 || !strings.Contains(c.prompts[1], "Wrong passphrase") {
		t.Fatalf("--from alice: %v, prompts %q", err, c.prompts)
	}
	// A passphrase file others can read is refused; a private one works.
	pf := privateFile(t, "correct horse\n")
	if err := os.Chmod(pf, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.run("", "keys", "add", "bob", "--home", home, "--keyring-passphrase-file", pf); !errors.Is(err, keyring.ErrKeyFileMode) {
		t.Fatalf("0644 passphrase file: %v", err)
	}
	if err := os.Chmod(pf, 0o600); err != nil {
		t.Fatal(err)
	}
	c.ok("", "keys", "add", "bob", "--home", home, "--keyring-passphrase-file", pf)
	// --keyring-backend test overrides the home's file for one key.
	c.ok("", "keys", "add", "scratch", "--home", home, "--keyring-backend", "test")
	if b, _ := os.ReadFile(filepath.Join(home, "keys", "scratch.json")); !bytes.Contains(b, []byte(`"seed"`)) {
		t.Fatalf("scratch.json: %s", b)
	}
	// --from node is the home's plaintext node key, whatever the backend.
	g = &globals{home: home}
	if _, err := g.signingKey("node"); err != nil {
		t.Fatalf("--from node: %v", err)
	}
}

// TestKeysExportImport: an export from an encrypted home imports into a
// plaintext one with the same address; a wrong passphrase imports nothing.
func TestKeysExportImport(t *testing.T) {
	c := newCLI(t)
	src, dst := t.TempDir(), t.TempDir()
	t.Setenv(envKeyringPassphrase, "keyring passphrase")
	out, _ := c.ok("", "keys", "add", "alice", "--home", src, "--keyring-backend", "file")
	addr := strings.Fields(out)[1]
	ap := privateFile(t, "export passphrase\n")
	armor, _ := c.ok("", "keys", "export", "alice", "--home", src, "--armor-passphrase-file", ap)
	if !strings.HasPrefix(armor, "-----BEGIN SOS PRIVATE KEY-----") {
		t.Fatalf("export: %q", armor)
	}
	exported := filepath.Join(t.TempDir(), "alice.key")
	c.ok("", "keys", "export", "alice", "--home", src, "--armor-passphrase-file", ap, "--out", exported)
	if fi, err := os.Stat(exported); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("--out: %v", err)
	}
	if _, _, err := c.run("", "keys", "import", "alice", exported, "--home", dst, "--armor-passphrase-file", privateFile(t, "not the passphrase")); !errors.Is(err, keyring.ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "keys", "alice.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a failed import wrote the key")
	}
	out, _ = c.ok(armor, "keys", "import", "alice", "-", "--home", dst, "--armor-passphrase-file", ap)
	if out != "alice "+addr+"\n" {
		t.Fatalf("import: %q, want %s", out, addr)
	}
	// At a prompt, export asks twice.
	c.answers = []string{"export passphrase", "export passphrase"}
	c.ok("", "keys", "export", "alice", "--home", dst)
	if len(c.answers) != 0 {
		t.Fatal("export did not ask twice")
	}
}

// TestKeysMigrate: a plaintext home is encrypted by 'keys migrate
// --keyring-backend file', which records the backend in config.toml;
// decrypting needs --keyring-backend test said explicitly.
func TestKeysMigrate(t *testing.T) {
	c := newCLI(t)
	home := filepath.Join(t.TempDir(), "n1")
	if _, _, err := c.run("", "init", "--home", home, "--keyring-backend", "os"); !errors.Is(err, keyring.ErrBackend) {
		t.Fatalf("init --keyring-backend os: %v", err)
	}
	if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("init with a bad backend created the home")
	}
	c.ok("", "init", "--home", home)
	if cfg, _ := kernel.LoadConfig(home); cfg.KeyringBackend != "test" {
		t.Fatalf("init default backend %q, want test", cfg.KeyringBackend)
	}
	out, _ := c.ok("", "keys", "add", "alice", "--home", home)
	addr := strings.Fields(out)[1]
	if out, _ := c.ok("", "keys", "migrate", "--home", home); !strings.Contains(out, "already stored as test") {
		t.Fatalf("migrate with nothing to do: %q", out)
	}
	t.Setenv(envKeyringPassphrase, "keyring passphrase")
	out, _ = c.ok("", "keys", "migrate", "--home", home, "--keyring-backend", "file")
	if !strings.Contains(out, addr+" -> file") || !strings.Contains(out, `keyring_backend = "file"`) {
		t.Fatalf("migrate: %q", out)
	}
	if cfg, _ := kernel.LoadConfig(home); cfg.KeyringBackend != "file" {
		t.Fatalf("config not updated: %q", cfg.KeyringBackend)
	}
	// A new key in that home is encrypted now, with the same passphrase.
	c.ok("", "keys", "add", "bob", "--home", home)
	if b, _ := os.ReadFile(filepath.Join(home, "keys", "bob.json")); !bytes.Contains(b, []byte(`"crypto"`)) {
		t.Fatalf("bob.json: %s", b)
	}
	// Back to test: refused unless said explicitly.
	cfg, _ := kernel.LoadConfig(home)
	cfg.KeyringBackend = "test"
	if err := kernel.SaveConfig(home, cfg); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.run("", "keys", "migrate", "--home", home); err == nil || !strings.Contains(err.Error(), "would decrypt 2 key(s)") {
		t.Fatalf("implicit decrypt: %v", err)
	}
	out, _ = c.ok("", "keys", "migrate", "--home", home, "--keyring-backend", "test", "-o", "json")
	var res struct {
		Migrated []keyring.Migrated `json:"migrated"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Migrated) != 2 {
		t.Fatalf("migrate -o json: %s %v", out, err)
	}
}

// TestKeysHomeWithoutConfig: a keys-only home (~/.sos) has no config.toml:
// once it holds an encrypted key, new keys are encrypted too.
func TestKeysHomeWithoutConfig(t *testing.T) {
	c := newCLI(t)
	home := t.TempDir()
	t.Setenv(envKeyringPassphrase, "keyring passphrase")
	c.ok("", "keys", "add", "plain", "--home", home)
	c.ok("", "keys", "add", "vault", "--home", home, "--keyring-backend", "file")
	c.ok("", "keys", "add", "next", "--home", home)
	if b, _ := os.ReadFile(filepath.Join(home, "keys", "next.json")); !bytes.Contains(b, []byte(`"crypto"`)) {
		t.Fatalf("next.json stored in plaintext in a keyring with encrypted keys: %s", b)
	}
}

// TestKeysErrorsSayWhere: a missing key names the keyring directory and
// how to list it; 'keys --help' states the default home.
func TestKeysErrorsSayWhere(t *testing.T) {
	c := newCLI(t)
	home := t.TempDir()
	_, _, err := c.run("", "keys", "show", "alice", "--home", home)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(home, "keys")) || !strings.Contains(err.Error(), "--home") {
		t.Fatalf("missing key: %v", err)
	}
	g := &globals{home: home}
	if _, err := g.signingKey("alice"); !errors.Is(err, keyring.ErrNotFound) || !strings.Contains(err.Error(), filepath.Join(home, "keys")) {
		t.Fatalf("--from alice: %v", err)
	}
	out, _ := c.ok("", "keys", "--help")
	if !strings.Contains(out, "~/.sos") || !strings.Contains(out, "$SOS_HOME") {
		t.Fatalf("keys --help does not state the default home:\n%s", out)
	}
}
