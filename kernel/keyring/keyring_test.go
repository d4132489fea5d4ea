package keyring

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/internal/failpoint"
	"github.com/sos-kernel/sos/ledger"
)

type zeroReader struct{ b byte }

func (z *zeroReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = z.b
	}
	z.b++
	return len(p), nil
}

func TestKeyFilesAreWrittenPrivate(t *testing.T) {
	home := t.TempDir()
	kr := Open(home).WithRand(&zeroReader{})
	e, err := kr.Add("alice")
	if err != nil {
		t.Fatal(err)
	}
	key, err := ledger.PrivateKeyFromSeed(bytes.Repeat([]byte{7}, ledger.SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	node := filepath.Join(home, "node_key.json")
	if err := WriteKeyFile(node, "node", key); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{kr.path("alice"), node} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %04o, want 0600", p, fi.Mode().Perm())
		}
	}
	got, err := kr.Get("alice")
	if err != nil || got.Address != e.Address {
		t.Fatalf("get: %v %v", got, err)
	}
	// No temporary files are left behind.
	des, _ := os.ReadDir(filepath.Join(home, "keys"))
	if len(des) != 1 {
		t.Fatalf("keys/ holds %d entries, want 1", len(des))
	}
}

// TestKeyFileOthersCanReadIsRefused: as ssh does with private keys, a key
// file that other users may read or write is not used, and the error says
// how to fix it.
func TestKeyFileOthersCanReadIsRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	home := t.TempDir()
	kr := Open(home).WithRand(&zeroReader{})
	if _, err := kr.Add("alice"); err != nil {
		t.Fatal(err)
	}
	p := kr.path("alice")
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620, 0o660} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		_, err := kr.Get("alice")
		if !errors.Is(err, ErrKeyFileMode) || !strings.Contains(err.Error(), "chmod 600 "+p) {
			t.Fatalf("mode %04o: %v, want ErrKeyFileMode naming 'chmod 600 %s'", mode, err, p)
		}
		if _, _, err := ReadKeyFile(p); !errors.Is(err, ErrKeyFileMode) {
			t.Fatalf("ReadKeyFile, mode %04o: %v", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := kr.Get("alice"); err != nil {
			t.Fatalf("mode %04o: %v", mode, err)
		}
	}
}

func TestWriteKeyFileNeverOverwrites(t *testing.T) {
	p := filepath.Join(t.TempDir(), "node_key.json")
	k1, _ := ledger.PrivateKeyFromSeed(bytes.Repeat([]byte{1}, ledger.SeedSize))
	k2, _ := ledger.PrivateKeyFromSeed(bytes.Repeat([]byte{2}, ledger.SeedSize))
	if err := WriteKeyFile(p, "node", k1); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFile(p, "node", k2); !errors.Is(err, ErrExists) {
		t.Fatalf("second write: %v, want ErrExists", err)
	}
	got, _, err := ReadKeyFile(p)
	if err != nil || got.Address() != k1.Address() {
		t.Fatalf("the first key was replaced or damaged: %v", err)
	}
}

// TestWriteKeyFileSyncsDirectory: the new name is made durable by syncing
// the directory; a failure there is reported, not ignored.
func TestWriteKeyFileSyncsDirectory(t *testing.T) {
	disable, err := failpoint.Enable(failpoint.SyncDir, `return("disk gone")`)
	if err != nil {
		t.Fatal(err)
	}
	defer disable()
	k, _ := ledger.PrivateKeyFromSeed(bytes.Repeat([]byte{3}, ledger.SeedSize))
	err = WriteKeyFile(filepath.Join(t.TempDir(), "k.json"), "k", k)
	if err == nil || !strings.Contains(err.Error(), "disk gone") {
		t.Fatalf("write with a failing directory sync: %v", err)
	}
	if failpoint.Count(failpoint.SyncDir) != 1 {
		t.Fatalf("directory synced %d times, want 1", failpoint.Count(failpoint.SyncDir))
	}
}

// cheapKDF keeps tests fast; TestDefaultKDFIsWritten checks the default.
var cheapKDF = KDF{N: 1 << 10, R: 8, P: 1}

// fixedPass supplies the same passphrase and counts the requests.
type fixedPass struct {
	p    string
	reqs []PassphraseRequest
}

func (f *fixedPass) passphrase(tries int) *Passphrase {
	return &Passphrase{Tries: tries, Get: func(r PassphraseRequest) ([]byte, error) {
		f.reqs = append(f.reqs, r)
		return []byte(f.p), nil
	}}
}

func fileKeyring(home, pass string) (*Keyring, *fixedPass) {
	f := &fixedPass{p: pass}
	return Open(home).WithBackend(BackendFile).WithKDF(cheapKDF).WithPassphrase(f.passphrase(1)), f
}

func readRaw(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dirSnapshot maps each file of dir to its bytes.
func dirSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		out[de.Name()] = string(readRaw(t, filepath.Join(dir, de.Name())))
	}
	return out
}

// TestMnemonicRoundTrip: the mnemonic Add prints recovers the same
// address, in this keyring after a delete and in another home.
func TestMnemonicRoundTrip(t *testing.T) {
	for _, backend := range []Backend{BackendTest, BackendFile} {
		t.Run(string(backend), func(t *testing.T) {
			home := t.TempDir()
			kr, _ := fileKeyring(home, "correct horse battery")
			kr = kr.WithBackend(backend)
			e, err := kr.Add("alice")
			if err != nil {
				t.Fatal(err)
			}
			if n := len(strings.Fields(e.Mnemonic)); n != 24 {
				t.Fatalf("mnemonic of %d words", n)
			}
			if e.Encrypted != (backend == BackendFile) {
				t.Fatalf("encrypted=%v with backend %s", e.Encrypted, backend)
			}
			if _, err := kr.Delete("alice"); err != nil {
				t.Fatal(err)
			}
			r, err := kr.Recover("alice", e.Mnemonic, "", 0)
			if err != nil || r.Address != e.Address {
				t.Fatalf("recovered %v %v, want %s", r, err, e.Address)
			}
			other, err := Open(t.TempDir()).Recover("alice2", e.Mnemonic, "", 0)
			if err != nil || other.Address != e.Address {
				t.Fatalf("recovered elsewhere %v %v", other, err)
			}
			if got, err := kr.Get("alice"); err != nil || got.Key.Address().String() != e.Address {
				t.Fatalf("get after recover: %v %v", got, err)
			}
			// Another index or a BIP-39 passphrase is another key.
			i1, err := Open(t.TempDir()).Recover("a", e.Mnemonic, "", 1)
			if err != nil || i1.Address == e.Address {
				t.Fatalf("index 1: %v %v", i1, err)
			}
			pp, err := Open(t.TempDir()).Recover("a", e.Mnemonic, "extra words", 0)
			if err != nil || pp.Address == e.Address {
				t.Fatalf("bip39 passphrase: %v %v", pp, err)
			}
		})
	}
}

func TestAddMnemonicWithBIP39Passphrase(t *testing.T) {
	kr := Open(t.TempDir())
	e, err := kr.AddMnemonic("alice", "twenty-fifth word")
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := Open(t.TempDir()).Recover("a", e.Mnemonic, "", 0); r.Address == e.Address {
		t.Fatal("recovered without the BIP-39 passphrase")
	}
	if r, err := Open(t.TempDir()).Recover("a", e.Mnemonic, "twenty-fifth word", 0); err != nil || r.Address != e.Address {
		t.Fatalf("recover with the passphrase: %v %v", r, err)
	}
}

// TestBackendsWriteTheirFormat: test writes the seed in the clear, file
// writes no byte of it; both files are mode 0600; Info, List and Resolve
// read an encrypted key's address without the passphrase.
func TestBackendsWriteTheirFormat(t *testing.T) {
	home := t.TempDir()
	plain, err := Open(home).Add("plain")
	if err != nil {
		t.Fatal(err)
	}
	kr, f := fileKeyring(home, "correct horse battery")
	enc, err := kr.Add("enc")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.reqs) != 1 || !f.reqs[0].New {
		t.Fatalf("passphrase requests %+v, want one for a new keyring", f.reqs)
	}
	pb, eb := readRaw(t, kr.path("plain")), readRaw(t, kr.path("enc"))
	if !bytes.Contains(pb, []byte(hex.EncodeToString(plain.Key.Seed()))) {
		t.Fatalf("test backend file lacks the seed: %s", pb)
	}
	seed := enc.Key.Seed()
	if bytes.Contains(eb, []byte(hex.EncodeToString(seed))) || bytes.Contains(eb, seed) || bytes.Contains(eb, []byte(`"seed"`)) {
		t.Fatalf("file backend wrote the seed: %s", eb)
	}
	for _, p := range []string{kr.path("plain"), kr.path("enc")} {
		if fi, _ := os.Stat(p); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %04o", p, fi.Mode().Perm())
		}
	}
	noPass := Open(home)
	es, err := noPass.List()
	if err != nil || len(es) != 2 || es[0].Name != "enc" || es[0].Address != enc.Address || es[1].Address != plain.Address {
		t.Fatalf("list without passphrase: %+v %v", es, err)
	}
	if a, err := noPass.Resolve("enc"); err != nil || a.String() != enc.Address {
		t.Fatalf("resolve: %v %v", a, err)
	}
	if _, err := noPass.Get("enc"); !errors.Is(err, ErrNoPassphrase) {
		t.Fatalf("get without passphrase: %v, want ErrNoPassphrase", err)
	}
	if _, err := noPass.WithBackend(BackendFile).Add("x"); !errors.Is(err, ErrNoPassphrase) {
		t.Fatalf("file add without passphrase: %v", err)
	}
	if _, err := os.Stat(kr.path("x")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a failed add left a file")
	}
	// A second key reuses the passphrase once it opened the first.
	kr2, f2 := fileKeyring(home, "correct horse battery")
	if _, err := kr2.Add("enc2"); err != nil {
		t.Fatal(err)
	}
	if len(f2.reqs) != 1 || f2.reqs[0].New {
		t.Fatalf("requests %+v, want one checked against the existing key", f2.reqs)
	}
	if got, err := kr2.Get("enc2"); err != nil || len(f2.reqs) != 1 || got.Address == "" {
		t.Fatalf("get with the cached passphrase: %v, %d requests", err, len(f2.reqs))
	}
}

// TestWrongPassphraseChangesNothing: a wrong passphrase fails Get, Add,
// Migrate and Export with ErrWrongPassphrase and leaves keys/ as it was.
func TestWrongPassphraseChangesNothing(t *testing.T) {
	home := t.TempDir()
	kr, _ := fileKeyring(home, "correct horse battery")
	if _, err := kr.Add("alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(home).Add("plain"); err != nil {
		t.Fatal(err)
	}
	before := dirSnapshot(t, kr.Dir())
	bad, _ := fileKeyring(home, "wrong horse battery")
	if _, err := bad.Get("alice"); !errors.Is(err, ErrWrongPassphrase) || !strings.Contains(err.Error(), "alice") {
		t.Fatalf("get: %v", err)
	}
	if _, err := bad.Add("bob"); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("add: %v", err)
	}
	if _, err := bad.Migrate(); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("migrate to file: %v", err)
	}
	if _, err := bad.WithBackend(BackendTest).Migrate(); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("migrate to test: %v", err)
	}
	if _, err := bad.Export("alice", []byte("export passphrase")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("export: %v", err)
	}
	if after := dirSnapshot(t, kr.Dir()); !reflect.DeepEqual(before, after) {
		t.Fatalf("keys/ changed:\nbefore %v\nafter  %v", before, after)
	}
}

// TestPassphraseRetries: a prompt may be wrong Tries-1 times; the request
// says when the previous answer was wrong.
func TestPassphraseRetries(t *testing.T) {
	home := t.TempDir()
	kr, _ := fileKeyring(home, "correct horse battery")
	if _, err := kr.Add("alice"); err != nil {
		t.Fatal(err)
	}
	answers := []string{"nope", "still nope", "correct horse battery"}
	var reqs []PassphraseRequest
	p := &Passphrase{Tries: 3, Get: func(r PassphraseRequest) ([]byte, error) {
		reqs = append(reqs, r)
		a := answers[0]
		answers = answers[1:]
		return []byte(a), nil
	}}
	if _, err := Open(home).WithPassphrase(p).Get("alice"); err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 3 || reqs[0].Retry || !reqs[1].Retry || !reqs[2].Retry || reqs[0].Dir != kr.Dir() {
		t.Fatalf("requests %+v", reqs)
	}
	answers = []string{"a", "b", "c", "correct horse battery"}
	if _, err := Open(home).WithPassphrase(p).Get("alice"); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("three wrong: %v", err)
	}
	gone := errors.New("tty gone")
	p.Get = func(PassphraseRequest) ([]byte, error) { return nil, gone }
	if _, err := Open(home).WithPassphrase(p).Get("alice"); !errors.Is(err, gone) {
		t.Fatalf("source error: %v", err)
	}
}

func TestWeakPassphraseRefused(t *testing.T) {
	kr, _ := fileKeyring(t.TempDir(), "short")
	if _, err := kr.Add("alice"); !errors.Is(err, ErrWeakPassphrase) {
		t.Fatalf("add with a 5-character passphrase: %v", err)
	}
	if des, _ := os.ReadDir(kr.Dir()); len(des) != 0 {
		t.Fatalf("%d files written", len(des))
	}
}

// TestTamperedKeyFile: changing any byte of the ciphertext, nonce or salt,
// the KDF cost or the stated address makes the key refuse to open (the
// address is bound as associated data), and a damaged field is ErrCorrupt.
func TestTamperedKeyFile(t *testing.T) {
	home := t.TempDir()
	kr, _ := fileKeyring(home, "correct horse battery")
	if _, err := kr.Add("alice"); err != nil {
		t.Fatal(err)
	}
	other, _ := Open(t.TempDir()).Add("x")
	orig := readRaw(t, kr.path("alice"))
	flipHex := func(s string) string {
		b, _ := hex.DecodeString(s)
		b[len(b)/2] ^= 1
		return hex.EncodeToString(b)
	}
	cases := []struct {
		name   string
		mutate func(kf *keyFile)
		want   error
	}{
		{"ciphertext", func(kf *keyFile) { kf.Crypto.Ciphertext = flipHex(kf.Crypto.Ciphertext) }, ErrWrongPassphrase},
		{"nonce", func(kf *keyFile) { kf.Crypto.Nonce = flipHex(kf.Crypto.Nonce) }, ErrWrongPassphrase},
		{"salt", func(kf *keyFile) { kf.Crypto.KDFParams.Salt = flipHex(kf.Crypto.KDFParams.Salt) }, ErrWrongPassphrase},
		{"kdf cost", func(kf *keyFile) { kf.Crypto.KDFParams.N *= 2 }, ErrWrongPassphrase},
		{"address", func(kf *keyFile) { kf.Address = other.Address }, ErrWrongPassphrase},
		{"truncated ciphertext", func(kf *keyFile) { kf.Crypto.Ciphertext = kf.Crypto.Ciphertext[2:] }, ErrCorrupt},
		{"cipher", func(kf *keyFile) { kf.Crypto.Cipher = "aes-128-ctr" }, ErrCorrupt},
		{"huge N", func(kf *keyFile) { kf.Crypto.KDFParams.N = 1 << 24 }, ErrCorrupt},
		{"seed and crypto", func(kf *keyFile) { kf.Seed = strings.Repeat("00", 32) }, ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kf, err := decodeKeyFile(orig)
			if err != nil {
				t.Fatal(err)
			}
			c.mutate(kf)
			b, _ := encodeKeyFile(kf)
			if err := os.WriteFile(kr.path("alice"), b, 0o600); err != nil {
				t.Fatal(err)
			}
			fresh, _ := fileKeyring(home, "correct horse battery")
			if _, err := fresh.Get("alice"); !errors.Is(err, c.want) {
				t.Fatalf("get: %v, want %v", err, c.want)
			}
		})
	}
	if err := os.WriteFile(kr.path("alice"), orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Get("alice"); err != nil {
		t.Fatalf("the untouched file: %v", err)
	}
}

// TestExportImportRoundTrip: an export from an encrypted keyring imports
// into another home, plaintext or encrypted, with the same address; a
// wrong export passphrase, a damaged export or a taken name or address
// writes nothing.
func TestExportImportRoundTrip(t *testing.T) {
	src, _ := fileKeyring(t.TempDir(), "keyring passphrase")
	e, err := src.Add("alice")
	if err != nil {
		t.Fatal(err)
	}
	exportPass := []byte("export passphrase")
	armor, err := src.Export("alice", exportPass)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(armor, []byte("-----BEGIN SOS PRIVATE KEY-----\n")) || !bytes.Contains(armor, []byte("address: "+e.Address)) {
		t.Fatalf("armor:\n%s", armor)
	}
	if bytes.Contains(armor, []byte(hex.EncodeToString(e.Key.Seed()))) {
		t.Fatal("the export holds the seed in the clear")
	}
	if _, err := src.Export("alice", []byte("short")); !errors.Is(err, ErrWeakPassphrase) {
		t.Fatalf("short export passphrase: %v", err)
	}
	for _, backend := range []Backend{BackendTest, BackendFile} {
		dst, _ := fileKeyring(t.TempDir(), "another keyring passphrase")
		dst = dst.WithBackend(backend)
		if _, err := dst.ImportArmor("alice", armor, []byte("wrong passphrase")); !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("wrong export passphrase: %v", err)
		}
		damaged := bytes.Replace(armor, []byte("kdf: scrypt"), []byte("kdf: bcrypt"), 1)
		if _, err := dst.ImportArmor("alice", damaged, exportPass); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("damaged export: %v", err)
		}
		if des, _ := os.ReadDir(dst.Dir()); len(des) != 0 {
			t.Fatal("a failed import wrote a file")
		}
		got, err := dst.ImportArmor("alice", armor, exportPass)
		if err != nil || got.Address != e.Address || got.Encrypted != (backend == BackendFile) {
			t.Fatalf("%s import: %+v %v", backend, got, err)
		}
		if _, err := dst.ImportArmor("alice", armor, exportPass); !errors.Is(err, ErrExists) {
			t.Fatalf("same name again: %v", err)
		}
		if _, err := dst.ImportArmor("alice2", armor, exportPass); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), `as "alice"`) {
			t.Fatalf("same address under another name: %v", err)
		}
	}
}

func TestDelete(t *testing.T) {
	home := t.TempDir()
	kr := Open(home)
	e, err := kr.Add("alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Add("bob"); err != nil {
		t.Fatal(err)
	}
	d, err := kr.Delete("alice")
	if err != nil || d.Address != e.Address {
		t.Fatalf("delete: %v %v", d, err)
	}
	if _, err := kr.Get("alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if _, err := kr.Delete("alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if es, _ := kr.List(); len(es) != 1 || es[0].Name != "bob" {
		t.Fatalf("list after delete: %+v", es)
	}
	// A damaged key file can still be deleted.
	if err := os.WriteFile(kr.path("broken"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Delete("broken"); err != nil {
		t.Fatalf("delete a damaged file: %v", err)
	}
	if _, err := kr.Delete("../node_key"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a path as a name: %v", err)
	}
}

// legacyFile is a key file exactly as versions before encryption wrote it.
const legacyFile = `{
  "name": "old",
  "type": "ml-dsa-65",
  "address": "%s",
  "seed": "%s"
}
`

// TestMigrateLegacyPlaintext: a plaintext key file from before this
// version loads as it is under either backend (transparent read), and
// Migrate encrypts it (and back) keeping the address and mode 0600.
func TestMigrateLegacyPlaintext(t *testing.T) {
	home := t.TempDir()
	key, _ := ledger.PrivateKeyFromSeed(bytes.Repeat([]byte{5}, ledger.SeedSize))
	if err := os.MkdirAll(filepath.Join(home, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(home, "keys", "old.json")
	if err := os.WriteFile(p, fmt.Appendf(nil, legacyFile, key.Address(), hex.EncodeToString(key.Seed())), 0o600); err != nil {
		t.Fatal(err)
	}
	kr, f := fileKeyring(home, "correct horse battery")
	if e, err := kr.Get("old"); err != nil || e.Address != key.Address().String() || len(f.reqs) != 0 {
		t.Fatalf("legacy file under backend file: %v %v (%d passphrase requests)", e, err, len(f.reqs))
	}
	if ms, err := kr.WithBackend(BackendTest).Migrate(); err != nil || len(ms) != 0 {
		t.Fatalf("migrate to test with nothing to do: %v %v", ms, err)
	}
	ms, err := kr.Migrate()
	if err != nil || len(ms) != 1 || ms[0].Name != "old" || ms[0].To != BackendFile {
		t.Fatalf("migrate: %+v %v", ms, err)
	}
	kf, err := readKeyFile(p)
	if err != nil || !kf.Encrypted() {
		t.Fatalf("after migrate: %+v %v", kf, err)
	}
	if fi, _ := os.Stat(p); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o", fi.Mode().Perm())
	}
	again, _ := fileKeyring(home, "correct horse battery")
	if e, err := again.Get("old"); err != nil || e.Address != key.Address().String() {
		t.Fatalf("get after migrate: %v %v", e, err)
	}
	if ms, err := again.Migrate(); err != nil || len(ms) != 0 {
		t.Fatalf("second migrate: %v %v", ms, err)
	}
	ms, err = again.WithBackend(BackendTest).Migrate()
	if err != nil || len(ms) != 1 || ms[0].To != BackendTest {
		t.Fatalf("migrate back: %v %v", ms, err)
	}
	if got, _, err := ReadKeyFile(p); err != nil || got.Address() != key.Address() {
		t.Fatalf("plaintext again: %v", err)
	}
	if des, _ := os.ReadDir(filepath.Join(home, "keys")); len(des) != 1 {
		t.Fatalf("%d files in keys/, want 1 (temporary files left?)", len(des))
	}
}

func TestReadKeyFileRefusesEncrypted(t *testing.T) {
	kr, _ := fileKeyring(t.TempDir(), "correct horse battery")
	if _, err := kr.Add("alice"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadKeyFile(kr.path("alice")); !errors.Is(err, ErrEncrypted) {
		t.Fatalf("ReadKeyFile of an encrypted key: %v", err)
	}
}

// TestNotFoundSaysWhere: a missing key names the keyring directory that
// was searched and how to list it.
func TestNotFoundSaysWhere(t *testing.T) {
	home := t.TempDir()
	kr := Open(home)
	_, err := kr.Get("alice")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), kr.Dir()+" does not exist") || !strings.Contains(err.Error(), "--home") {
		t.Fatalf("empty home: %v", err)
	}
	if _, err := kr.Add("bob"); err != nil {
		t.Fatal(err)
	}
	for _, get := range []func() error{
		func() error { _, err := kr.Get("alice"); return err },
		func() error { _, err := kr.Info("alice"); return err },
		func() error { _, err := kr.Resolve("alice"); return err },
	} {
		err := get()
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "in "+kr.Dir()) || !strings.Contains(err.Error(), "sos keys list --home "+home) {
			t.Fatalf("missing key: %v", err)
		}
	}
}

// TestDefaultKDFIsWritten: new keys are sealed with DefaultKDF unless told
// otherwise (one real scrypt, about a third of a second).
func TestDefaultKDFIsWritten(t *testing.T) {
	if err := DefaultKDF().Validate(); err != nil {
		t.Fatal(err)
	}
	f := &fixedPass{p: "correct horse battery"}
	kr := Open(t.TempDir()).WithBackend(BackendFile).WithPassphrase(f.passphrase(1))
	if _, err := kr.Add("alice"); err != nil {
		t.Fatal(err)
	}
	kf, err := readKeyFile(kr.path("alice"))
	if err != nil {
		t.Fatal(err)
	}
	d := DefaultKDF()
	if p := kf.Crypto.KDFParams; p.N != d.N || p.R != d.R || p.P != d.P || len(p.Salt) != 2*saltSize || kf.Crypto.Cipher != cipherName {
		t.Fatalf("written %+v %s, want %+v", p, kf.Crypto.Cipher, d)
	}
}

func TestKDFLimits(t *testing.T) {
	for _, c := range []struct {
		k  KDF
		ok bool
	}{
		{KDF{1 << 10, 8, 1}, true},
		{KDF{1 << 20, 8, 1}, true},
		{KDF{1 << 9, 8, 1}, false},
		{KDF{1 << 21, 8, 1}, false},
		{KDF{3 << 10, 8, 1}, false},
		{KDF{1 << 20, 16, 1}, false}, // 2 GiB
		{KDF{1 << 10, 0, 1}, false},
		{KDF{1 << 10, 8, 17}, false},
		{KDF{0, 8, 1}, false},
	} {
		if err := c.k.Validate(); (err == nil) != c.ok {
			t.Errorf("%+v: %v", c.k, err)
		}
	}
}

func TestParseBackend(t *testing.T) {
	for _, s := range []string{"test", "file"} {
		if b, err := ParseBackend(s); err != nil || string(b) != s {
			t.Fatalf("%s: %v", s, err)
		}
	}
	for _, s := range []string{"", "os", "FILE", "memory"} {
		if _, err := ParseBackend(s); !errors.Is(err, ErrBackend) {
			t.Fatalf("%q: %v", s, err)
		}
	}
}

// BenchmarkUnsealDefaultKDF is what each command signing with an
// encrypted key pays once: scrypt at DefaultKDF and the AEAD open.
func BenchmarkUnsealDefaultKDF(b *testing.B) {
	seed := bytes.Repeat([]byte{1}, ledger.SeedSize)
	s, err := sealSeed(seed, []byte("correct horse battery"), "sos1x", DefaultKDF(), &zeroReader{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := openSeed(s, []byte("correct horse battery"), "sos1x"); err != nil {
			b.Fatal(err)
		}
	}
}
