package keyring

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"

	"github.com/sos-kernel/sos/internal/fsutil"
	"github.com/sos-kernel/sos/ledger"
)

// keyFile is the on-disk form of a key: the public part in the clear and
// either the seed (plaintext, backend test, the node key) or the sealed
// seed (backend file).
type keyFile struct {
	Name    string  `json:"name"`
	Type    string  `json:"type"`
	Address string  `json:"address"`
	Seed    string  `json:"seed,omitempty"`
	Crypto  *sealed `json:"crypto,omitempty"`
}

// maxKeyFileSize bounds what is read of a key file (a real one is < 1 KiB).
const maxKeyFileSize = 64 << 10

// Encrypted reports whether the seed is sealed.
func (kf *keyFile) Encrypted() bool { return kf.Crypto != nil }

// decodeKeyFile parses and checks a key file's bytes: the key type, an
// address that parses, and exactly one of a hex seed and a well-formed
// sealed seed. It does not decrypt, so it never needs the passphrase.
func decodeKeyFile(b []byte) (*keyFile, error) {
	if len(b) > maxKeyFileSize {
		return nil, fmt.Errorf("%d bytes, more than a key file holds: %w", len(b), ErrCorrupt)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var kf keyFile
	if err := dec.Decode(&kf); err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrCorrupt)
	}
	if dec.More() {
		return nil, fmt.Errorf("data after the key: %w", ErrCorrupt)
	}
	if kf.Type != keyType {
		return nil, fmt.Errorf("key type %q, want %s: %w", kf.Type, keyType, ErrCorrupt)
	}
	switch {
	case kf.Crypto != nil && kf.Seed != "":
		return nil, fmt.Errorf("both a plaintext and an encrypted seed: %w", ErrCorrupt)
	case kf.Crypto != nil:
		if _, err := kf.Crypto.decode(); err != nil {
			return nil, err
		}
		// The address of an encrypted key is all 'keys show' has: it must parse.
		if _, err := ledger.ParseAddress(kf.Address); err != nil {
			return nil, fmt.Errorf("address: %v: %w", err, ErrCorrupt)
		}
	default:
		if s, err := hex.DecodeString(kf.Seed); err != nil || len(s) != ledger.SeedSize {
			return nil, fmt.Errorf("seed is not %d hex bytes: %w", ledger.SeedSize, ErrCorrupt)
		}
		if kf.Address != "" {
			if _, err := ledger.ParseAddress(kf.Address); err != nil {
				return nil, fmt.Errorf("address: %v: %w", err, ErrCorrupt)
			}
		}
	}
	return &kf, nil
}

// plaintextKey expands the seed of a plaintext key file and checks it
// matches the stated address.
func (kf *keyFile) plaintextKey() (*ledger.PrivateKey, error) {
	seed, err := hex.DecodeString(kf.Seed)
	if err != nil {
		return nil, fmt.Errorf("seed is not hex: %w", ErrCorrupt)
	}
	defer clear(seed)
	return keyFromSeed(seed, kf.Address)
}

// keyFromSeed expands seed and checks it against the stated address (empty:
// not checked, as in files written before addresses were stored).
func keyFromSeed(seed []byte, address string) (*ledger.PrivateKey, error) {
	key, err := ledger.PrivateKeyFromSeed(seed)
	if err != nil {
		return nil, err
	}
	if address != "" && address != key.Address().String() {
		return nil, fmt.Errorf("address %s does not match the seed (file damaged?): %w", address, ErrCorrupt)
	}
	return key, nil
}

func encodeKeyFile(kf *keyFile) ([]byte, error) {
	b, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func plaintextFile(name string, key *ledger.PrivateKey) *keyFile {
	return &keyFile{Name: name, Type: keyType, Address: key.Address().String(), Seed: hex.EncodeToString(key.Seed())}
}

// WriteKeyFile writes a plaintext key file with mode 0600 (set before the
// seed is written), refusing to overwrite one (ErrExists). The file is
// synced and linked into place and the directory synced, so a crash leaves
// the whole key or none. The node key is written this way: a node must
// start unattended, so its key is never encrypted.
func WriteKeyFile(path, name string, key *ledger.PrivateKey) error {
	return writeNew(path, plaintextFile(name, key))
}

func writeNew(path string, kf *keyFile) error {
	b, err := encodeKeyFile(kf)
	if err != nil {
		return err
	}
	if err := fsutil.WriteNew(path, b, 0o600); err != nil {
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
var ErrKeyFileMode = errors.New("a secret file is accessible by other users")

// CheckPrivate refuses a file with any group or other permission bit (key
// files, passphrase files), naming the chmod that fixes it. (Windows
// permissions are not Unix mode bits: not checked there.)
func CheckPrivate(path string, fi fs.FileInfo) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("keyring: %s has mode %04o, so other users can read or change it: run chmod 600 %s: %w", path, perm, path, ErrKeyFileMode)
	}
	return nil
}

// readKeyFile reads and decodes a key file, refusing one other users can
// access (ErrKeyFileMode).
func readKeyFile(path string) (*keyFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if err := CheckPrivate(path, fi); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	kf, err := decodeKeyFile(b)
	if err != nil {
		return nil, fmt.Errorf("keyring: %s: %w", path, err)
	}
	return kf, nil
}

// ErrEncrypted is returned by ReadKeyFile for an encrypted key file.
var ErrEncrypted = errors.New("key file is encrypted")

// ReadKeyFile loads a plaintext key file (the node key; keyring keys go
// through Keyring.Get, which also decrypts). It refuses a file other users
// can access (ErrKeyFileMode) and an encrypted one (ErrEncrypted).
func ReadKeyFile(path string) (*ledger.PrivateKey, string, error) {
	kf, err := readKeyFile(path)
	if err != nil {
		return nil, "", err
	}
	if kf.Encrypted() {
		return nil, "", fmt.Errorf("keyring: %s: %w: a node key must stay plaintext, the node starts unattended", path, ErrEncrypted)
	}
	key, err := kf.plaintextKey()
	if err != nil {
		return nil, "", fmt.Errorf("keyring: %s: %w", path, err)
	}
	return key, kf.Name, nil
}
