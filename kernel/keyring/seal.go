package keyring

import (
	"crypto/cipher"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"

	"github.com/sos-kernel/sos/ledger"
)

// KDF is the cost of the scrypt key derivation that turns a passphrase into
// the key that seals a seed: N (CPU and memory, a power of two), r (block
// size) and p (parallelism). It takes 128·N·r bytes of memory.
type KDF struct {
	N, R, P int
}

// DefaultKDF is what new key files and exports use: scrypt N=2^17, r=8, p=1
// (128 MiB, about a third of a second on one core of a 2020s server), the
// OWASP recommendation for scrypt. Each command that signs with an
// encrypted key pays it once.
func DefaultKDF() KDF { return KDF{N: 1 << 17, R: 8, P: 1} }

// Limits a key file's KDF parameters must lie within. The upper bounds keep
// a hostile or damaged file (an imported export, say) from making the
// keyring allocate gigabytes or spin for minutes before the passphrase is
// even checked; the lower bound on N lets tests run fast and is still a
// real KDF.
const (
	minLogN      = 10
	maxLogN      = 20
	maxR         = 32
	maxP         = 16
	maxKDFMemory = 1 << 30 // bytes: 128·N·r
	saltSize     = 32
	minSaltSize  = 16
	maxSaltSize  = 64
	minPassLen   = 8
)

// Names written in the files (and checked when reading them).
const (
	cipherName = "xchacha20-poly1305"
	kdfName    = "scrypt"
	keyType    = "ml-dsa-65"
)

// ErrWrongPassphrase is returned when a sealed seed does not open: the
// passphrase is wrong or the file was changed (the AEAD cannot tell which).
var ErrWrongPassphrase = errors.New("wrong passphrase (or the key file was altered)")

// ErrWeakPassphrase is returned for a new passphrase shorter than 8 bytes.
var ErrWeakPassphrase = errors.New("passphrase must be at least 8 characters")

// ErrCorrupt is returned for a key file or an export that is not well formed.
var ErrCorrupt = errors.New("malformed key file")

// Validate reports whether the parameters are within the limits the
// keyring accepts.
func (p KDF) Validate() error {
	if p.N <= 0 || p.N&(p.N-1) != 0 {
		return fmt.Errorf("scrypt N=%d is not a power of two: %w", p.N, ErrCorrupt)
	}
	if logN := bits.TrailingZeros(uint(p.N)); logN < minLogN || logN > maxLogN {
		return fmt.Errorf("scrypt N=2^%d outside 2^%d..2^%d: %w", logN, minLogN, maxLogN, ErrCorrupt)
	}
	if p.R < 1 || p.R > maxR || p.P < 1 || p.P > maxP {
		return fmt.Errorf("scrypt r=%d p=%d outside 1..%d and 1..%d: %w", p.R, p.P, maxR, maxP, ErrCorrupt)
	}
	if 128*int64(p.N)*int64(p.R) > maxKDFMemory {
		return fmt.Errorf("scrypt N=%d r=%d needs more than 1 GiB: %w", p.N, p.R, ErrCorrupt)
	}
	return nil
}

// sealed is an encrypted seed as key files and exports store it.
type sealed struct {
	Cipher     string       `json:"cipher"`
	Nonce      string       `json:"nonce"`      // hex, 24 bytes
	Ciphertext string       `json:"ciphertext"` // hex, the 32-byte seed and the 16-byte tag
	KDF        string       `json:"kdf"`
	KDFParams  sealedParams `json:"kdfparams"`
}

type sealedParams struct {
	N    int    `json:"n"`
	R    int    `json:"r"`
	P    int    `json:"p"`
	Salt string `json:"salt"` // hex
}

// sealedBytes is a validated sealed with its fields decoded.
type sealedBytes struct {
	kdf        KDF
	salt       []byte
	nonce      []byte
	ciphertext []byte
}

// decode checks every field of s.
func (s *sealed) decode() (*sealedBytes, error) {
	if s.Cipher != cipherName {
		return nil, fmt.Errorf("cipher %q, want %s: %w", s.Cipher, cipherName, ErrCorrupt)
	}
	if s.KDF != kdfName {
		return nil, fmt.Errorf("kdf %q, want %s: %w", s.KDF, kdfName, ErrCorrupt)
	}
	kdf := KDF{N: s.KDFParams.N, R: s.KDFParams.R, P: s.KDFParams.P}
	if err := kdf.Validate(); err != nil {
		return nil, err
	}
	salt, err := hex.DecodeString(s.KDFParams.Salt)
	if err != nil || len(salt) < minSaltSize || len(salt) > maxSaltSize {
		return nil, fmt.Errorf("salt is not %d to %d hex bytes: %w", minSaltSize, maxSaltSize, ErrCorrupt)
	}
	nonce, err := hex.DecodeString(s.Nonce)
	if err != nil || len(nonce) != chacha20poly1305.NonceSizeX {
		return nil, fmt.Errorf("nonce is not %d hex bytes: %w", chacha20poly1305.NonceSizeX, ErrCorrupt)
	}
	ct, err := hex.DecodeString(s.Ciphertext)
	if err != nil || len(ct) != ledger.SeedSize+chacha20poly1305.Overhead {
		return nil, fmt.Errorf("ciphertext is not %d hex bytes: %w", ledger.SeedSize+chacha20poly1305.Overhead, ErrCorrupt)
	}
	return &sealedBytes{kdf: kdf, salt: salt, nonce: nonce, ciphertext: ct}, nil
}

// associatedData binds the public part of a key file to its ciphertext: a
// file whose address was edited (to make 'sos keys show' print someone
// else's) no longer opens.
func associatedData(address string) []byte {
	return []byte("sos/keyring/v1\x00" + keyType + "\x00" + address)
}

// sealSeed encrypts seed under passphrase with a fresh salt and nonce from
// rand.
func sealSeed(seed, passphrase []byte, address string, kdf KDF, rand io.Reader) (*sealed, error) {
	if err := kdf.Validate(); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	salt := make([]byte, saltSize)
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return nil, fmt.Errorf("keyring: salt: %w", err)
	}
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("keyring: nonce: %w", err)
	}
	aead, err := aeadFor(passphrase, salt, kdf)
	if err != nil {
		return nil, err
	}
	ct := aead.Seal(nil, nonce, seed, associatedData(address))
	return &sealed{
		Cipher: cipherName, Nonce: hex.EncodeToString(nonce), Ciphertext: hex.EncodeToString(ct),
		KDF: kdfName, KDFParams: sealedParams{N: kdf.N, R: kdf.R, P: kdf.P, Salt: hex.EncodeToString(salt)},
	}, nil
}

// openSeed decrypts a sealed seed (ErrWrongPassphrase when it does not open).
func openSeed(s *sealed, passphrase []byte, address string) ([]byte, error) {
	b, err := s.decode()
	if err != nil {
		return nil, err
	}
	aead, err := aeadFor(passphrase, b.salt, b.kdf)
	if err != nil {
		return nil, err
	}
	seed, err := aead.Open(nil, b.nonce, b.ciphertext, associatedData(address))
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	return seed, nil
}

func aeadFor(passphrase, salt []byte, kdf KDF) (cipher.AEAD, error) {
	key, err := scrypt.Key(passphrase, salt, kdf.N, kdf.R, kdf.P, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("keyring: scrypt: %w", err)
	}
	aead, err := chacha20poly1305.NewX(key)
	clear(key)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return aead, nil
}

// checkNewPassphrase refuses a passphrase too short to protect a key.
func checkNewPassphrase(p []byte) error {
	if len(p) < minPassLen {
		return ErrWeakPassphrase
	}
	return nil
}
