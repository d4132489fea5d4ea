// Package keyring stores named ML-DSA-65 keys in a node home: one JSON file
// per key under keys/ (mode 0600) and the node's own key in node_key.json.
// Keys are kept as their 32-byte seed; encryption at rest is not done yet,
// so the files must stay readable by the operator only: as ssh does, a key
// file with any group or other permission is refused (ErrKeyFileMode, with
// the chmod that fixes it).
package keyring

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"github.com/sos-kernel/sos/internal/fsutil"
	"github.com/sos-kernel/sos/ledger"
)

// ErrNotFound is returned for a key name that does not exist.
var ErrNotFound = errors.New("key not found")

// ErrExists is returned when adding a name that is taken.
var ErrExists = errors.New("key already exists")

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// keyFile is the on-disk form.
type keyFile struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Address string `json:"address"`
	Seed    string `json:"seed"`
}

// Entry is a named key.
type Entry struct {
	Name    string             `json:"name"`
	Address string             `json:"address"`
	Key     *ledger.PrivateKey `json:"-"`
}

// Keyring is the keys/ directory of a home.
type Keyring struct {
	dir  string
	rand io.Reader
}

// Open returns the keyring of home (the directory is created on first add).
func Open(home string) *Keyring { return &Keyring{dir: filepath.Join(home, "keys"), rand: rand.Reader} }

// WithRand returns a keyring that draws new keys from r (tests, devnets with seeds).
func (k *Keyring) WithRand(r io.Reader) *Keyring { c := *k; c.rand = r; return &c }

func (k *Keyring) path(name string) string { return filepath.Join(k.dir, name+".json") }

// Add creates a new key called name.
func (k *Keyring) Add(name string) (*Entry, error) {
	key, err := ledger.GenerateKey(k.rand)
	if err != nil {
		return nil, err
	}
	return k.Import(name, key)
}

// Import stores an existing key under name.
func (k *Keyring) Import(name string, key *ledger.PrivateKey) (*Entry, error) {
	if !namePattern.MatchString(name) {
		return nil, fmt.Errorf("keyring: name %q: use letters, digits, '_', '.', '-' (max 64)", name)
	}
	if _, err := os.Stat(k.path(name)); err == nil {
		return nil, fmt.Errorf("keyring: %q: %w", name, ErrExists)
	}
	if err := os.MkdirAll(k.dir, 0o700); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if err := WriteKeyFile(k.path(name), name, key); err != nil {
		return nil, err
	}
	return &Entry{Name: name, Address: key.Address().String(), Key: key}, nil
}

// WriteKeyFile writes a key file with mode 0600 (set before the seed is
// written), refusing to overwrite one (ErrExists). The file is synced and
// linked into place and the directory synced, so a crash leaves the whole
// key or none.
func WriteKeyFile(path, name string, key *ledger.PrivateKey) error {
	b, err := json.MarshalIndent(keyFile{Name: name, Type: "ml-dsa-65", Address: key.Address().String(), Seed: hex.EncodeToString(key.Seed())}, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteNew(path, append(b, '\n'), 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("keyring: %s: %w", path, ErrExists)
		}
		return fmt.Errorf("keyring: write %s: %w", path, err)
	}
	return nil
}

// ErrKeyFileMode is returned for a key file that users other than its
// owner may read or write: like ssh, the keyring will not use a key that
// may have leaked.
var ErrKeyFileMode = errors.New("key file is accessible by other users")

// checkPrivate refuses a key file with any group or other permission bit.
// (Windows permissions are not Unix mode bits: not checked there.)
func checkPrivate(path string, f *os.File) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("keyring: %s has mode %04o, so other users can read or change the key: run chmod 600 %s: %w", path, perm, path, ErrKeyFileMode)
	}
	return nil
}

// ReadKeyFile loads a key file. It refuses a file other users can access
// (ErrKeyFileMode).
func ReadKeyFile(path string) (*ledger.PrivateKey, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("keyring: %w", err)
	}
	defer f.Close()
	if err := checkPrivate(path, f); err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, "", fmt.Errorf("keyring: %w", err)
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, "", fmt.Errorf("keyring: %s: %w", path, err)
	}
	if kf.Type != "ml-dsa-65" {
		return nil, "", fmt.Errorf("keyring: %s: key type %q, want ml-dsa-65", path, kf.Type)
	}
	seed, err := hex.DecodeString(kf.Seed)
	if err != nil {
		return nil, "", fmt.Errorf("keyring: %s: seed is not hex", path)
	}
	key, err := ledger.PrivateKeyFromSeed(seed)
	if err != nil {
		return nil, "", fmt.Errorf("keyring: %s: %w", path, err)
	}
	if kf.Address != "" && kf.Address != key.Address().String() {
		return nil, "", fmt.Errorf("keyring: %s: address does not match the seed (file damaged?)", path)
	}
	return key, kf.Name, nil
}

// Get loads a named key.
func (k *Keyring) Get(name string) (*Entry, error) {
	if !namePattern.MatchString(name) {
		return nil, k.notFound(name)
	}
	key, _, err := ReadKeyFile(k.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, k.notFound(name)
	}
	if err != nil {
		return nil, err
	}
	return &Entry{Name: name, Address: key.Address().String(), Key: key}, nil
}

// notFound says which keyring was searched, since the usual cause is a
// command run without the --home that holds the key.
func (k *Keyring) notFound(name string) error {
	dir := k.dir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return fmt.Errorf("keyring: %w: no key %q in %s (is it in another home? pass its --home; 'sos keys list --home %s' lists this one)",
		ErrNotFound, name, dir, filepath.Dir(dir))
}

// Dir is the keyring's directory (HOME/keys).
func (k *Keyring) Dir() string { return k.dir }

// List returns all keys sorted by name.
func (k *Keyring) List() ([]Entry, error) {
	des, err := os.ReadDir(k.dir)
	if errors.Is(err, os.ErrNotExist) {
		return []Entry{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	out := []Entry{}
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), ".json")
		if !ok || de.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		e, err := k.Get(name)
		if err != nil {
			return nil, err
		}
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Resolve accepts a key name or a bech32 address and returns the address.
func (k *Keyring) Resolve(nameOrAddr string) (ledger.Address, error) {
	if strings.HasPrefix(nameOrAddr, ledger.AddressPrefix+"1") {
		return ledger.ParseAddress(nameOrAddr)
	}
	e, err := k.Get(nameOrAddr)
	if err != nil {
		return ledger.Address{}, err
	}
	return e.Key.Address(), nil
}
