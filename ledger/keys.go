package ledger

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// Sizes of ML-DSA-65 (FIPS 204) keys and signatures.
const (
	PublicKeySize = mldsa65.PublicKeySize
	SignatureSize = mldsa65.SignatureSize
	SeedSize      = mldsa65.SeedSize
)

// Purpose separates signatures by what they authorize, so a signature made
// for one purpose can never be replayed as another (a block header is never a
// transaction, a handshake never a certificate).
type Purpose string

// Signature purposes used by the kernel.
const (
	PurposeTx          Purpose = "tx"
	PurposeBlock       Purpose = "block"
	PurposeHandshake   Purpose = "handshake"
	PurposeCertificate Purpose = "certificate"
	PurposeUsage       Purpose = "usage"
	PurposeMeter       Purpose = "meter" // a metering device's reading
)

// ErrInvalidSignature is returned when a signature does not verify.
var ErrInvalidSignature = errors.New("invalid signature")

// signContext is the FIPS 204 context string: "sos/v1/<purpose>/<chain id>".
// ML-DSA binds the context into the signature, which is exactly the domain
// separation we need, at no extra hashing cost.
func signContext(p Purpose, chainID string) ([]byte, error) {
	ctx := "sos/v1/" + string(p) + "/" + chainID
	if len(ctx) > 255 {
		return nil, fmt.Errorf("ledger: signing context longer than 255 bytes (chain id %q)", chainID)
	}
	return []byte(ctx), nil
}

// PrivateKey is an ML-DSA-65 signing key. It is kept as its 32-byte seed on
// disk; the expanded key is cached in memory.
type PrivateKey struct {
	seed [SeedSize]byte
	sk   *mldsa65.PrivateKey
	pub  PublicKey
}

// PublicKey is an ML-DSA-65 verification key in its packed FIPS 204 form.
type PublicKey struct {
	raw  []byte
	pk   *mldsa65.PublicKey
	addr Address // derived once: every transaction check compares it
}

// GenerateKey makes a new key from rand (crypto/rand in production, a seeded
// reader in tests so vectors are reproducible).
func GenerateKey(rand io.Reader) (*PrivateKey, error) {
	var seed [SeedSize]byte
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return nil, fmt.Errorf("ledger: generate key: %w", err)
	}
	return PrivateKeyFromSeed(seed[:])
}

// PrivateKeyFromSeed expands a 32-byte seed deterministically.
func PrivateKeyFromSeed(seed []byte) (*PrivateKey, error) {
	if len(seed) != SeedSize {
		return nil, fmt.Errorf("ledger: key seed is %d bytes, want %d", len(seed), SeedSize)
	}
	k := &PrivateKey{}
	copy(k.seed[:], seed)
	pk, sk := mldsa65.NewKeyFromSeed(&k.seed)
	k.sk = sk
	raw := pk.Bytes()
	k.pub = PublicKey{raw: raw, pk: pk, addr: AddressFromPublicKey(raw)}
	return k, nil
}

// Seed returns the 32-byte seed the key was expanded from.
func (k *PrivateKey) Seed() []byte { return append([]byte(nil), k.seed[:]...) }

// Public returns the verification key.
func (k *PrivateKey) Public() PublicKey { return k.pub }

// Address is the account address controlled by this key.
func (k *PrivateKey) Address() Address { return AddressFromPublicKey(k.pub.raw) }

// Sign signs msg for a purpose on a chain. Signing is deterministic (the
// FIPS 204 "hedged" randomness is off) so that golden vectors reproduce.
func (k *PrivateKey) Sign(p Purpose, chainID string, msg []byte) ([]byte, error) {
	ctx, err := signContext(p, chainID)
	if err != nil {
		return nil, err
	}
	sig := make([]byte, SignatureSize)
	if err := mldsa65.SignTo(k.sk, msg, ctx, false, sig); err != nil {
		return nil, fmt.Errorf("ledger: sign %s: %w", p, err)
	}
	return sig, nil
}

// ParsePublicKey checks and unpacks a packed ML-DSA-65 public key.
func ParsePublicKey(b []byte) (PublicKey, error) {
	if len(b) != PublicKeySize {
		return PublicKey{}, fmt.Errorf("ledger: public key is %d bytes, want %d", len(b), PublicKeySize)
	}
	var pk mldsa65.PublicKey
	if err := pk.UnmarshalBinary(b); err != nil {
		return PublicKey{}, fmt.Errorf("ledger: public key: %w", err)
	}
	raw := append([]byte(nil), b...)
	return PublicKey{raw: raw, pk: &pk, addr: AddressFromPublicKey(raw)}, nil
}

// Bytes returns the packed key (do not modify).
func (p PublicKey) Bytes() []byte { return p.raw }

// IsZero reports whether p holds no key.
func (p PublicKey) IsZero() bool { return p.pk == nil }

// Address is the account address of this key.
func (p PublicKey) Address() Address { return p.addr }

// Fingerprint is a short hex id of the key (node ids use it).
func (p PublicKey) Fingerprint() string {
	h := sha256.Sum256(p.raw)
	return fmt.Sprintf("%x", h[:20])
}

// Verify checks sig over msg for a purpose on a chain.
func (p PublicKey) Verify(purpose Purpose, chainID string, msg, sig []byte) error {
	if p.pk == nil {
		return fmt.Errorf("ledger: verify %s: no public key: %w", purpose, ErrInvalidSignature)
	}
	ctx, err := signContext(purpose, chainID)
	if err != nil {
		return err
	}
	if len(sig) != SignatureSize || !mldsa65.Verify(p.pk, msg, ctx, sig) {
		return fmt.Errorf("ledger: verify %s: %w", purpose, ErrInvalidSignature)
	}
	return nil
}

// PublicKeyMemBytes is what one parsed public key holds in memory: the
// packed key (1,952 bytes), its unpacked t1 vector and the expanded 6×5
// matrix A (30 KB) that parsing derives so verification need not. Measured
// by TestPublicKeyMemBytes; KeyCache budgets in multiples of it.
const PublicKeyMemBytes = 43 << 10

// KeyCache keeps parsed public keys by address within a budget of bytes,
// dropping the least recently used first. Parsing a key costs about as
// much as a verification, so a node keeps the keys of its active senders;
// the budget is what keeps a flood of fresh keys from holding memory. Put
// only keys that verified a signature. It is safe for concurrent use.
type KeyCache struct {
	mu    sync.Mutex
	max   int // entries
	items map[Address]*keyEntry
	ring  keyEntry // sentinel: ring.next is the most recently used
}

type keyEntry struct {
	key        PublicKey
	prev, next *keyEntry
}

// NewKeyCache makes a cache holding at most maxBytes of keys (at least one
// key).
func NewKeyCache(maxBytes int64) *KeyCache {
	c := &KeyCache{max: int(max(1, maxBytes/PublicKeyMemBytes)), items: make(map[Address]*keyEntry)}
	c.ring.prev, c.ring.next = &c.ring, &c.ring
	return c
}

// Get returns the key of address a, if cached, and marks it recently used.
func (c *KeyCache) Get(a Address) (PublicKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[a]
	if !ok {
		return PublicKey{}, false
	}
	c.moveToFront(e)
	return e.key, true
}

// Put caches k under its address, dropping the least recently used keys
// beyond the budget.
func (c *KeyCache) Put(k PublicKey) {
	if k.IsZero() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k.addr]; ok {
		c.moveToFront(e)
		return
	}
	e := &keyEntry{key: k}
	c.items[k.addr] = e
	c.link(e)
	for len(c.items) > c.max {
		old := c.ring.prev
		c.unlink(old)
		delete(c.items, old.key.addr)
	}
}

// Len is the number of keys held.
func (c *KeyCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

// Bytes is the memory the held keys take (Len × PublicKeyMemBytes).
func (c *KeyCache) Bytes() int64 { return int64(c.Len()) * PublicKeyMemBytes }

func (c *KeyCache) link(e *keyEntry) {
	e.prev, e.next = &c.ring, c.ring.next
	c.ring.next.prev = e
	c.ring.next = e
}

func (c *KeyCache) unlink(e *keyEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (c *KeyCache) moveToFront(e *keyEntry) {
	if c.ring.next != e {
		c.unlink(e)
		c.link(e)
	}
}
