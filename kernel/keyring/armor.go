package keyring

import (
	"bytes"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"strconv"

	"github.com/sos-kernel/sos/ledger"
)

// armorType is the PEM block type of an exported key.
const armorType = "SOS PRIVATE KEY"

// armorVersion is the "version" header of exports this package writes.
const armorVersion = "1"

// maxArmorSize bounds what DecodeArmor reads (an export is about 600 bytes).
const maxArmorSize = 16 << 10

// armored is a decoded export: the public part and the sealed seed.
type armored struct {
	address string
	sealed  *sealed
}

// encodeArmor writes an export as a PEM block whose headers carry the
// key's type and address and the parameters needed to open it, and whose
// body is the ciphertext.
func encodeArmor(address string, s *sealed) ([]byte, error) {
	ct, err := hex.DecodeString(s.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	blk := &pem.Block{Type: armorType, Headers: map[string]string{
		"version": armorVersion,
		"type":    keyType,
		"address": address,
		"cipher":  s.Cipher,
		"nonce":   s.Nonce,
		"kdf":     s.KDF,
		"kdf-n":   strconv.Itoa(s.KDFParams.N),
		"kdf-r":   strconv.Itoa(s.KDFParams.R),
		"kdf-p":   strconv.Itoa(s.KDFParams.P),
		"salt":    s.KDFParams.Salt,
	}, Bytes: ct}
	return pem.EncodeToMemory(blk), nil
}

// decodeArmor parses an export (untrusted bytes: a file someone hands over)
// and checks every field; it does not decrypt.
func decodeArmor(b []byte) (*armored, error) {
	if len(b) > maxArmorSize {
		return nil, fmt.Errorf("%d bytes, more than an exported key holds: %w", len(b), ErrCorrupt)
	}
	blk, rest := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("no -----BEGIN %s----- block: %w", armorType, ErrCorrupt)
	}
	if blk.Type != armorType {
		return nil, fmt.Errorf("a %q block, want %q: %w", blk.Type, armorType, ErrCorrupt)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("data after the key block: %w", ErrCorrupt)
	}
	h := blk.Headers
	known := map[string]bool{"version": true, "type": true, "address": true, "cipher": true, "nonce": true,
		"kdf": true, "kdf-n": true, "kdf-r": true, "kdf-p": true, "salt": true}
	for k := range h {
		if !known[k] {
			return nil, fmt.Errorf("unknown header %q: %w", k, ErrCorrupt)
		}
	}
	if h["version"] != armorVersion {
		return nil, fmt.Errorf("version %q, want %s (exported by a newer sos?): %w", h["version"], armorVersion, ErrCorrupt)
	}
	if h["type"] != keyType {
		return nil, fmt.Errorf("key type %q, want %s: %w", h["type"], keyType, ErrCorrupt)
	}
	if _, err := ledger.ParseAddress(h["address"]); err != nil {
		return nil, fmt.Errorf("address: %v: %w", err, ErrCorrupt)
	}
	var n [3]int
	for i, name := range []string{"kdf-n", "kdf-r", "kdf-p"} {
		v, err := strconv.Atoi(h[name])
		if err != nil {
			return nil, fmt.Errorf("%s %q is not a number: %w", name, h[name], ErrCorrupt)
		}
		n[i] = v
	}
	s := &sealed{Cipher: h["cipher"], Nonce: h["nonce"], Ciphertext: hex.EncodeToString(blk.Bytes), KDF: h["kdf"],
		KDFParams: sealedParams{N: n[0], R: n[1], P: n[2], Salt: h["salt"]}}
	if _, err := s.decode(); err != nil {
		return nil, err
	}
	return &armored{address: h["address"], sealed: s}, nil
}

// ExportArmor seals key under passphrase (at least 8 characters) as an
// armored text block that ImportArmor (or 'sos keys import') reads back.
// Salt and nonce come from rand.
func ExportArmor(key *ledger.PrivateKey, passphrase []byte, kdf KDF, rand io.Reader) ([]byte, error) {
	if err := checkNewPassphrase(passphrase); err != nil {
		return nil, fmt.Errorf("keyring: export: %w", err)
	}
	addr := key.Address().String()
	seed := key.Seed()
	defer clear(seed)
	s, err := sealSeed(seed, passphrase, addr, kdf, rand)
	if err != nil {
		return nil, err
	}
	return encodeArmor(addr, s)
}

// OpenArmor decrypts an export made by ExportArmor: ErrCorrupt when it is
// not one, ErrWrongPassphrase when the passphrase does not open it.
func OpenArmor(b, passphrase []byte) (*ledger.PrivateKey, error) {
	a, err := decodeArmor(b)
	if err != nil {
		return nil, fmt.Errorf("keyring: exported key: %w", err)
	}
	seed, err := openSeed(a.sealed, passphrase, a.address)
	if err != nil {
		return nil, fmt.Errorf("keyring: exported key %s: %w", a.address, err)
	}
	defer clear(seed)
	key, err := keyFromSeed(seed, a.address)
	if err != nil {
		return nil, fmt.Errorf("keyring: exported key: %w", err)
	}
	return key, nil
}
