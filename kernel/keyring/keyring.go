package keyring

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/sos-kernel/sos/internal/fsutil"
	"github.com/sos-kernel/sos/ledger"
)

// ErrNotFound is returned for a key name that does not exist.
var ErrNotFound = errors.New("key not found")

// ErrExists is returned when adding a name that is taken, or a key whose
// address the keyring already holds under another name.
var ErrExists = errors.New("key already exists")

// ErrNoPassphrase is returned when an encrypted key must be read or written
// and the keyring was given no way to get the passphrase.
var ErrNoPassphrase = errors.New("no keyring passphrase")

// ErrBackend is returned for an unknown backend name.
var ErrBackend = errors.New("unknown keyring backend")

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Backend is how new keys are stored. Either kind of file is read whatever
// the backend: the backend decides what Add, Recover and Import write and
// what Migrate converts to.
type Backend string

// The backends, named as in Cosmos SDK.
const (
	// BackendTest stores the seed in plaintext (mode 0600): for scripts,
	// devnets and tests, which must run without a passphrase.
	BackendTest Backend = "test"
	// BackendFile seals the seed with a passphrase (scrypt and
	// XChaCha20-Poly1305).
	BackendFile Backend = "file"
)

// ParseBackend accepts "test" or "file".
func ParseBackend(s string) (Backend, error) {
	switch b := Backend(s); b {
	case BackendTest, BackendFile:
		return b, nil
	}
	return "", fmt.Errorf("keyring: backend %q: want file (encrypted) or test (plaintext): %w", s, ErrBackend)
}

// PassphraseRequest tells a Passphrase.Get what the passphrase is for.
type PassphraseRequest struct {
	// Dir is the keyring directory.
	Dir string
	// New is true when the passphrase will protect the keyring's first
	// encrypted key, so there is nothing to check it against: a prompt
	// should ask for it twice.
	New bool
	// Retry is true when the previous passphrase was wrong.
	Retry bool
}

// Passphrase supplies the keyring passphrase: one for every encrypted key
// of a keyring (a new encrypted key is sealed only after the passphrase
// opened an existing one).
type Passphrase struct {
	Get func(PassphraseRequest) ([]byte, error)
	// Tries is how many passphrases Get may supply before a wrong one is
	// final: 1 for a file or an environment variable, 3 for a prompt.
	Tries int
}

// Entry is a named key. Key is set by Get (and by Add, Recover, Import);
// List and Info leave it nil, since reading an encrypted key's address
// needs no passphrase.
type Entry struct {
	Name    string             `json:"name"`
	Address string             `json:"address"`
	Key     *ledger.PrivateKey `json:"-"`
	// Mnemonic is set by Add only: the phrase that recovers the key,
	// shown once.
	Mnemonic string `json:"mnemonic,omitempty"`
	// Encrypted reports whether the key file is sealed with the keyring
	// passphrase.
	Encrypted bool `json:"-"`
}

// Keyring is the keys/ directory of a home. It is safe for concurrent use;
// the passphrase, once it opened a key, is kept for the keyring's lifetime
// (one command).
type Keyring struct {
	home    string
	dir     string
	rand    io.Reader
	backend Backend
	pass    *Passphrase
	kdf     KDF
	cache   *passCache
}

type passCache struct {
	mu sync.Mutex
	b  []byte
}

// Open returns the keyring of home (the directory is created on first
// add), with backend test and no passphrase: it reads plaintext keys, lists
// and resolves every key, and reports ErrNoPassphrase when it must open an
// encrypted one. Use WithBackend and WithPassphrase for the rest.
func Open(home string) *Keyring {
	return &Keyring{home: home, dir: filepath.Join(home, "keys"), rand: rand.Reader, backend: BackendTest,
		kdf: DefaultKDF(), cache: &passCache{}}
}

// WithRand returns a keyring that draws new keys, salts and nonces from r
// (tests, devnets with seeds).
func (k *Keyring) WithRand(r io.Reader) *Keyring { c := *k; c.rand = r; return &c }

// WithBackend returns a keyring that writes new keys as backend b.
func (k *Keyring) WithBackend(b Backend) *Keyring { c := *k; c.backend = b; return &c }

// WithPassphrase returns a keyring that asks p for the passphrase.
func (k *Keyring) WithPassphrase(p *Passphrase) *Keyring {
	c := *k
	c.pass, c.cache = p, &passCache{}
	return &c
}

// WithKDF returns a keyring that seals new keys with scrypt cost p (tests
// use a cheap one; the default is DefaultKDF).
func (k *Keyring) WithKDF(p KDF) *Keyring { c := *k; c.kdf = p; return &c }

// Dir is the keyring directory (home/keys).
func (k *Keyring) Dir() string { return k.dir }

// Backend is how the keyring writes new keys.
func (k *Keyring) Backend() Backend { return k.backend }

func (k *Keyring) path(name string) string { return filepath.Join(k.dir, name+".json") }

func checkName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("keyring: name %q: use letters, digits, '_', '.', '-' (max 64)", name)
	}
	return nil
}

// notFound says where the key was looked for and how to see what is there.
func (k *Keyring) notFound(name string) error {
	if _, err := os.Stat(k.dir); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("keyring: %q: %w: %s does not exist (no key was ever added to home %s: pass the --home that holds the key, or create it with 'sos keys add %s --home %s')",
			name, ErrNotFound, k.dir, k.home, name, k.home)
	}
	return fmt.Errorf("keyring: %q: %w in %s (list the keys there with 'sos keys list --home %s', or pass the --home that holds it)", name, ErrNotFound, k.dir, k.home)
}

// Add creates a key from a new 24-word mnemonic (Entry.Mnemonic) with no
// BIP-39 passphrase.
func (k *Keyring) Add(name string) (*Entry, error) { return k.AddMnemonic(name, "") }

// AddMnemonic creates a key from a new 24-word mnemonic and the BIP-39
// passphrase bip39Pass ("" for none), key index 0.
func (k *Keyring) AddMnemonic(name, bip39Pass string) (*Entry, error) {
	if err := k.checkFree(name, ""); err != nil {
		return nil, err
	}
	m, err := NewMnemonic(k.rand)
	if err != nil {
		return nil, err
	}
	key, err := KeyFromMnemonic(m, bip39Pass, 0)
	if err != nil {
		return nil, err
	}
	e, err := k.Import(name, key)
	if err != nil {
		return nil, err
	}
	e.Mnemonic = m
	return e, nil
}

// Recover stores under name the key a mnemonic derives (SeedFromMnemonic):
// the same address it had when it was made.
func (k *Keyring) Recover(name, mnemonic, bip39Pass string, index uint32) (*Entry, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	key, err := KeyFromMnemonic(mnemonic, bip39Pass, index)
	if err != nil {
		return nil, err
	}
	return k.Import(name, key)
}

// Import stores an existing key under name, as the keyring's backend
// writes keys. It refuses a taken name and a key the keyring already holds
// under another name (ErrExists).
func (k *Keyring) Import(name string, key *ledger.PrivateKey) (*Entry, error) {
	addr := key.Address().String()
	if err := k.checkFree(name, addr); err != nil {
		return nil, err
	}
	kf := plaintextFile(name, key)
	if k.backend == BackendFile {
		pass, err := k.newKeyPassphrase()
		if err != nil {
			return nil, err
		}
		seed := key.Seed()
		s, err := sealSeed(seed, pass, addr, k.kdf, k.rand)
		clear(seed)
		if err != nil {
			return nil, err
		}
		kf.Seed, kf.Crypto = "", s
	}
	if err := os.MkdirAll(k.dir, 0o700); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if err := writeNew(k.path(name), kf); err != nil {
		return nil, err
	}
	return &Entry{Name: name, Address: addr, Key: key, Encrypted: kf.Encrypted()}, nil
}

// Available reports whether a new key may be called name: nil, or why not
// (a bad name, or ErrExists).
func (k *Keyring) Available(name string) error { return k.checkFree(name, "") }

// checkFree refuses a bad or taken name and, when address is set, a key
// the keyring already holds under another name.
func (k *Keyring) checkFree(name, address string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if _, err := os.Lstat(k.path(name)); err == nil {
		return fmt.Errorf("keyring: %q in %s: %w (delete it first with 'sos keys delete %s', or pick another name)", name, k.dir, ErrExists, name)
	}
	if address == "" {
		return nil
	}
	files, err := k.files()
	if err != nil {
		return err
	}
	for _, f := range files {
		if f.kf.Address == address {
			return fmt.Errorf("keyring: %s is already in %s as %q: %w", address, k.dir, f.name, ErrExists)
		}
	}
	return nil
}

// namedFile is a decoded key file and the name it is stored under.
type namedFile struct {
	name string
	kf   *keyFile
}

// files decodes every key file, sorted by name.
func (k *Keyring) files() ([]namedFile, error) {
	des, err := os.ReadDir(k.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	var out []namedFile
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), ".json")
		if !ok || de.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		kf, err := readKeyFile(k.path(name))
		if err != nil {
			return nil, err
		}
		out = append(out, namedFile{name, kf})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func (k *Keyring) read(name string) (*keyFile, error) {
	if !namePattern.MatchString(name) {
		return nil, k.notFound(name)
	}
	kf, err := readKeyFile(k.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, k.notFound(name)
	}
	return kf, err
}

// Get loads a named key, decrypting it if it is sealed (which asks for the
// passphrase).
func (k *Keyring) Get(name string) (*Entry, error) {
	kf, err := k.read(name)
	if err != nil {
		return nil, err
	}
	key, err := k.open(name, kf)
	if err != nil {
		return nil, err
	}
	return &Entry{Name: name, Address: key.Address().String(), Key: key, Encrypted: kf.Encrypted()}, nil
}

// Info returns a named key's address without the private key: an
// encrypted key needs no passphrase for it. A plaintext key's seed is
// checked against its address.
func (k *Keyring) Info(name string) (*Entry, error) {
	kf, err := k.read(name)
	if err != nil {
		return nil, err
	}
	return k.info(name, kf)
}

func (k *Keyring) info(name string, kf *keyFile) (*Entry, error) {
	if kf.Encrypted() {
		return &Entry{Name: name, Address: kf.Address, Encrypted: true}, nil
	}
	key, err := kf.plaintextKey()
	if err != nil {
		return nil, fmt.Errorf("keyring: %s: %w", k.path(name), err)
	}
	return &Entry{Name: name, Address: key.Address().String()}, nil
}

// open returns the private key of a key file, asking for the passphrase
// if it is sealed.
func (k *Keyring) open(name string, kf *keyFile) (*ledger.PrivateKey, error) {
	if !kf.Encrypted() {
		key, err := kf.plaintextKey()
		if err != nil {
			return nil, fmt.Errorf("keyring: %s: %w", k.path(name), err)
		}
		return key, nil
	}
	seed, err := k.unseal(name, kf)
	if err != nil {
		return nil, err
	}
	defer clear(seed)
	key, err := keyFromSeed(seed, kf.Address)
	if err != nil {
		return nil, fmt.Errorf("keyring: %s: %w", k.path(name), err)
	}
	return key, nil
}

// unseal opens a sealed seed with the cached passphrase, else with the
// ones Passphrase.Get supplies (up to Tries), caching the one that works.
func (k *Keyring) unseal(name string, kf *keyFile) ([]byte, error) {
	k.cache.mu.Lock()
	defer k.cache.mu.Unlock()
	if k.cache.b != nil {
		seed, err := openSeed(kf.Crypto, k.cache.b, kf.Address)
		if err != nil {
			return nil, fmt.Errorf("keyring: %q (%s): %w", name, k.path(name), err)
		}
		return seed, nil
	}
	if k.pass == nil || k.pass.Get == nil {
		return nil, fmt.Errorf("keyring: %q in %s is encrypted: %w", name, k.dir, ErrNoPassphrase)
	}
	var err error
	for try := 0; try < max(1, k.pass.Tries); try++ {
		var p []byte
		if p, err = k.pass.Get(PassphraseRequest{Dir: k.dir, Retry: try > 0}); err != nil {
			return nil, err
		}
		var seed []byte
		if seed, err = openSeed(kf.Crypto, p, kf.Address); err == nil {
			k.cache.b = p
			return seed, nil
		}
		clear(p)
		if !errors.Is(err, ErrWrongPassphrase) {
			break
		}
	}
	return nil, fmt.Errorf("keyring: %q (%s): %w", name, k.path(name), err)
}

// newKeyPassphrase returns the passphrase to seal a new key with: the one
// that opens the keyring's existing encrypted keys (checked by opening the
// first), or, in a keyring with none, a new one (asked with New set, and
// at least 8 characters).
func (k *Keyring) newKeyPassphrase() ([]byte, error) {
	if p := k.cache.get(); p != nil {
		return p, nil // it opened a key of this keyring, or sealed its first
	}
	files, err := k.files()
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if f.kf.Encrypted() {
			seed, err := k.unseal(f.name, f.kf)
			if err != nil {
				return nil, err
			}
			clear(seed)
			return k.cache.get(), nil
		}
	}
	k.cache.mu.Lock()
	defer k.cache.mu.Unlock()
	if k.cache.b != nil {
		return k.cache.b, nil
	}
	if k.pass == nil || k.pass.Get == nil {
		return nil, fmt.Errorf("keyring: %s: a new encrypted key needs a passphrase: %w", k.dir, ErrNoPassphrase)
	}
	p, err := k.pass.Get(PassphraseRequest{Dir: k.dir, New: true})
	if err != nil {
		return nil, err
	}
	if err := checkNewPassphrase(p); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	k.cache.b = p
	return p, nil
}

func (c *passCache) get() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b
}

// List returns all keys sorted by name, without their private keys (no
// passphrase is needed).
func (k *Keyring) List() ([]Entry, error) {
	files, err := k.files()
	if err != nil {
		return nil, err
	}
	out := []Entry{}
	for _, f := range files {
		e, err := k.info(f.name, f.kf)
		if err != nil {
			return nil, err
		}
		out = append(out, *e)
	}
	return out, nil
}

// Delete removes a named key's file (and makes the removal durable). There
// is no undo: without its mnemonic or an export, the key is gone. A damaged
// key file is deleted too (its address is then not reported).
func (k *Keyring) Delete(name string) (*Entry, error) {
	if !namePattern.MatchString(name) {
		return nil, k.notFound(name)
	}
	if _, err := os.Lstat(k.path(name)); errors.Is(err, os.ErrNotExist) {
		return nil, k.notFound(name)
	}
	e, err := k.Info(name)
	if err != nil {
		e = &Entry{Name: name}
	}
	if err := os.Remove(k.path(name)); err != nil {
		return nil, fmt.Errorf("keyring: delete %q: %w", name, err)
	}
	if err := fsutil.SyncDir(k.dir); err != nil {
		return nil, fmt.Errorf("keyring: delete %q: %w", name, err)
	}
	return e, nil
}

// Export returns a named key sealed under exportPass (at least 8
// characters) as an armored block (ExportArmor); decrypting the key in the
// keyring may ask for the keyring passphrase.
func (k *Keyring) Export(name string, exportPass []byte) ([]byte, error) {
	if err := checkNewPassphrase(exportPass); err != nil {
		return nil, fmt.Errorf("keyring: export: %w", err)
	}
	e, err := k.Get(name)
	if err != nil {
		return nil, err
	}
	return ExportArmor(e.Key, exportPass, k.kdf, k.rand)
}

// ImportArmor decrypts an export with its passphrase and stores the key
// under name (Import). Nothing is written when the passphrase is wrong or
// the export is damaged.
func (k *Keyring) ImportArmor(name string, armor, exportPass []byte) (*Entry, error) {
	if err := k.checkFree(name, ""); err != nil {
		return nil, err
	}
	key, err := OpenArmor(armor, exportPass)
	if err != nil {
		return nil, err
	}
	return k.Import(name, key)
}

// Migrated is one key Migrate rewrote.
type Migrated struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// To is the backend the key is now stored as.
	To Backend `json:"to"`
}

// Migrate rewrites every key not stored as the keyring's backend: with
// BackendFile it encrypts plaintext keys, with BackendTest it decrypts
// sealed ones. Every key is converted in memory first, so a wrong
// passphrase changes nothing; each file is then replaced atomically (a
// crash leaves each key in its old or its new form, both of which load,
// and running Migrate again finishes the job).
func (k *Keyring) Migrate() ([]Migrated, error) {
	files, err := k.files()
	if err != nil {
		return nil, err
	}
	type rewrite struct {
		name string
		kf   *keyFile
	}
	var todo []rewrite
	var pass []byte
	for _, f := range files {
		if f.kf.Encrypted() == (k.backend == BackendFile) {
			continue
		}
		key, err := k.open(f.name, f.kf)
		if err != nil {
			return nil, err
		}
		kf := plaintextFile(f.name, key)
		if k.backend == BackendFile {
			if pass == nil {
				if pass, err = k.newKeyPassphrase(); err != nil {
					return nil, err
				}
			}
			seed := key.Seed()
			s, err := sealSeed(seed, pass, kf.Address, k.kdf, k.rand)
			clear(seed)
			if err != nil {
				return nil, err
			}
			kf.Seed, kf.Crypto = "", s
		}
		todo = append(todo, rewrite{f.name, kf})
	}
	out := []Migrated{}
	for _, r := range todo {
		b, err := encodeKeyFile(r.kf)
		if err != nil {
			return out, err
		}
		if err := fsutil.WriteAtomic(k.path(r.name), b, 0o600); err != nil {
			return out, fmt.Errorf("keyring: migrate %q: %w", r.name, err)
		}
		out = append(out, Migrated{Name: r.name, Address: r.kf.Address, To: k.backend})
	}
	return out, nil
}

// Resolve accepts a key name or a bech32 address and returns the address
// (no passphrase is needed).
func (k *Keyring) Resolve(nameOrAddr string) (ledger.Address, error) {
	if strings.HasPrefix(nameOrAddr, ledger.AddressPrefix+"1") {
		return ledger.ParseAddress(nameOrAddr)
	}
	e, err := k.Info(nameOrAddr)
	if err != nil {
		return ledger.Address{}, err
	}
	return ledger.ParseAddress(e.Address)
}
