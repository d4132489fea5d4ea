package keyring

import (
	"crypto/hkdf"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tyler-smith/go-bip39"
	"golang.org/x/text/unicode/norm"

	"github.com/sos-kernel/sos/ledger"
)

// MnemonicWords is the length of every mnemonic the keyring makes or
// accepts: 24 BIP-39 words, 256 bits of entropy. ML-DSA-65 is a NIST
// category 3 scheme; a 12-word (128-bit) phrase would be the weakest link.
const MnemonicWords = 24

// ErrInvalidMnemonic is returned for a phrase that is not 24 words of the
// BIP-39 English list with a correct checksum.
var ErrInvalidMnemonic = errors.New("invalid mnemonic")

// mnemonicSalt and mnemonicInfo domain-separate the ML-DSA seed from any
// other key derived from the same BIP-39 seed (a BIP-32 wallet of another
// chain using the same words gets unrelated keys, and vice versa).
const (
	mnemonicSalt = "sos/mnemonic/v1"
	mnemonicInfo = "ml-dsa-65/index/"
)

// NewMnemonic draws 256 bits from rand and returns them as 24 words.
func NewMnemonic(rand io.Reader) (string, error) {
	entropy := make([]byte, 32)
	if _, err := io.ReadFull(rand, entropy); err != nil {
		return "", fmt.Errorf("keyring: mnemonic entropy: %w", err)
	}
	m, err := bip39.NewMnemonic(entropy)
	if err != nil {
		return "", fmt.Errorf("keyring: %w", err)
	}
	return m, nil
}

// NormalizeMnemonic returns the phrase in its canonical form (lower case,
// words separated by one space), or an error naming what is wrong with it:
// the word count, a word not in the list (and its position), or the
// checksum (a word mistyped into another valid word, or words swapped).
func NormalizeMnemonic(phrase string) (string, error) {
	words := strings.Fields(strings.ToLower(norm.NFKD.String(phrase)))
	if len(words) != MnemonicWords {
		return "", fmt.Errorf("keyring: the mnemonic has %d words, want %d: %w", len(words), MnemonicWords, ErrInvalidMnemonic)
	}
	for i, w := range words {
		if _, ok := bip39.GetWordIndex(w); !ok {
			return "", fmt.Errorf("keyring: word %d (%q) is not in the BIP-39 English word list: %w", i+1, w, ErrInvalidMnemonic)
		}
	}
	m := strings.Join(words, " ")
	if _, err := bip39.EntropyFromMnemonic(m); err != nil {
		return "", fmt.Errorf("keyring: the mnemonic's checksum does not match (a word is wrong or words are out of order): %w", ErrInvalidMnemonic)
	}
	return m, nil
}

// SeedFromMnemonic derives the 32-byte ML-DSA-65 seed of key number index
// from a mnemonic and an optional BIP-39 passphrase:
//
//	s    = PBKDF2-HMAC-SHA512(NFKD(mnemonic), "mnemonic" || NFKD(passphrase), 2048, 64)   (BIP-39)
//	seed = HKDF-SHA512(ikm = s, salt = "sos/mnemonic/v1", info = "ml-dsa-65/index/" || uint32be(index), 32)
//
// There are no BIP-32 paths: ML-DSA has no public-key derivation, so each
// index is simply another independent output of the KDF (docs/keys.md).
func SeedFromMnemonic(phrase, passphrase string, index uint32) ([]byte, error) {
	m, err := NormalizeMnemonic(phrase)
	if err != nil {
		return nil, err
	}
	s := bip39.NewSeed(m, norm.NFKD.String(passphrase))
	info := binary.BigEndian.AppendUint32([]byte(mnemonicInfo), index)
	seed, err := hkdf.Key(sha512.New, s, []byte(mnemonicSalt), string(info), ledger.SeedSize)
	clear(s)
	if err != nil {
		return nil, fmt.Errorf("keyring: hkdf: %w", err)
	}
	return seed, nil
}

// KeyFromMnemonic is the key SeedFromMnemonic's seed expands to.
func KeyFromMnemonic(phrase, passphrase string, index uint32) (*ledger.PrivateKey, error) {
	seed, err := SeedFromMnemonic(phrase, passphrase, index)
	if err != nil {
		return nil, err
	}
	defer clear(seed)
	return ledger.PrivateKeyFromSeed(seed)
}
