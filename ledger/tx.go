package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// TxVersion is the only transaction encoding version accepted today.
const TxVersion = 1

// MaxTxBytes caps an encoded transaction. Contract uploads are the largest
// (a Go contract is ≈2.4 MB); everything else is a few kilobytes.
const MaxTxBytes = 4 << 20

// MaxMemoBytes caps the free-text memo.
const MaxMemoBytes = 256

// Errors classifying bad transactions (matched with errors.Is).
var (
	ErrTxTooLarge   = errors.New("transaction too large")
	ErrWrongChain   = errors.New("wrong chain id")
	ErrUnknownKind  = errors.New("unknown payload kind")
	ErrBadPublicKey = errors.New("public key does not match sender")
)

// Tx is a signed transaction. The wire form is a CBOR array in core
// deterministic encoding:
//
//	[version, chain_id, sender, pubkey, nonce, gas_limit, gas_price, kind, body, memo, signature]
//
// body is the canonical CBOR of the payload for kind. The signature covers
// the same array with an empty signature, under the FIPS 204 context
// "sos/v1/tx/<chain id>". PubKey travels with an account's first transaction
// (the chain stores it) and may be empty afterwards.
type Tx struct {
	Version   uint8
	ChainID   string
	Sender    Address
	PubKey    []byte
	Nonce     uint64
	GasLimit  uint64
	GasPrice  GasPrice
	Payload   Payload
	Memo      string
	Signature []byte
}

type txWire struct {
	_         struct{} `cbor:",toarray"`
	Version   uint8
	ChainID   string
	Sender    Address
	PubKey    []byte
	Nonce     uint64
	GasLimit  uint64
	GasPrice  GasPrice
	Kind      PayloadKind
	Body      cbor.RawMessage
	Memo      string
	Signature []byte
}

func (c *Codec) txToWire(tx *Tx, withSig bool) (*txWire, error) {
	if tx.Payload == nil {
		return nil, fmt.Errorf("ledger: tx: no payload")
	}
	body, err := c.Marshal(tx.Payload)
	if err != nil {
		return nil, fmt.Errorf("ledger: tx: encode payload: %w", err)
	}
	w := &txWire{
		Version: tx.Version, ChainID: tx.ChainID, Sender: tx.Sender, PubKey: tx.PubKey,
		Nonce: tx.Nonce, GasLimit: tx.GasLimit, GasPrice: tx.GasPrice,
		Kind: tx.Payload.Kind(), Body: body, Memo: tx.Memo,
	}
	if withSig {
		w.Signature = tx.Signature
	}
	return w, nil
}

// SignBytes is what the sender signs: the encoding with an empty signature.
func (c *Codec) SignBytes(tx *Tx) ([]byte, error) {
	w, err := c.txToWire(tx, false)
	if err != nil {
		return nil, err
	}
	return c.Marshal(w)
}

// EncodeTx returns the canonical wire bytes of a signed transaction.
func (c *Codec) EncodeTx(tx *Tx) ([]byte, error) {
	w, err := c.txToWire(tx, true)
	if err != nil {
		return nil, err
	}
	b, err := c.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("ledger: tx: encode: %w", err)
	}
	if len(b) > MaxTxBytes {
		return nil, fmt.Errorf("ledger: tx: %d bytes > %d: %w", len(b), MaxTxBytes, ErrTxTooLarge)
	}
	return b, nil
}

// DecodeTx parses untrusted bytes. It checks size, canonical form, version,
// the payload kind and the stateless rules (ValidateBasic); it does not
// verify the signature (see VerifyTx) or anything that needs state.
func (c *Codec) DecodeTx(b []byte) (*Tx, error) {
	if len(b) > MaxTxBytes {
		return nil, fmt.Errorf("ledger: tx: %d bytes > %d: %w", len(b), MaxTxBytes, ErrTxTooLarge)
	}
	w, err := c.decodeTxWire(b)
	if err != nil {
		return nil, fmt.Errorf("ledger: tx: %w", err)
	}
	if w.Version != TxVersion {
		return nil, fmt.Errorf("ledger: tx: version %d not supported (want %d): %w", w.Version, TxVersion, ErrMalformed)
	}
	p := newPayload(w.Kind)
	if p == nil {
		return nil, fmt.Errorf("ledger: tx: kind %d: %w", w.Kind, ErrUnknownKind)
	}
	if err := c.decodeBody(w.Body, p); err != nil {
		return nil, fmt.Errorf("ledger: tx: %s body: %w", w.Kind, err)
	}
	tx := &Tx{
		Version: w.Version, ChainID: w.ChainID, Sender: w.Sender, PubKey: w.PubKey,
		Nonce: w.Nonce, GasLimit: w.GasLimit, GasPrice: w.GasPrice,
		Payload: p, Memo: w.Memo, Signature: w.Signature,
	}
	if err := tx.ValidateBasic(); err != nil {
		return nil, err
	}
	return tx, nil
}

// canonicalDecoder is a payload with a hand-written decoder that accepts
// exactly what Codec.Unmarshal accepts, faster (no re-encoding to
// compare, byte strings aliasing the input).
type canonicalDecoder interface {
	decodeCanonical(b []byte) error
}

// decodeBody decodes a transaction body into p canonically.
func (c *Codec) decodeBody(b []byte, p Payload) error {
	if d, ok := p.(canonicalDecoder); ok {
		return d.decodeCanonical(b)
	}
	return c.Unmarshal(b, p)
}

// decodeTxWire parses the transaction envelope by hand, accepting exactly
// its canonical encoding (what Codec.Unmarshal into txWire accepts: shortest
// heads, definite lengths, valid UTF-8, no trailing bytes) without copying
// the signature and key or re-encoding the whole transaction to compare.
// The fields alias b. The body is returned raw; DecodeTx decodes it
// canonically.
func (c *Codec) decodeTxWire(b []byte) (txWire, error) {
	var w txWire
	n, r, err := cborHead(b, 4)
	if err != nil {
		return w, err
	}
	if n != 11 {
		return w, fmt.Errorf("envelope of %d fields, want 11: %w", n, ErrMalformed)
	}
	var v uint64
	if v, r, err = cborHead(r, 0); err != nil || v > 0xff {
		return w, fmt.Errorf("version: %w", errors.Join(err, ErrMalformed))
	}
	w.Version = uint8(v)
	if w.ChainID, r, err = cborText(r); err != nil {
		return w, fmt.Errorf("chain id: %w", err)
	}
	var sender []byte
	if sender, r, err = cborBytesOrNull(r); err != nil || len(sender) != AddressSize {
		return w, fmt.Errorf("sender: %w", errors.Join(err, ErrMalformed))
	}
	copy(w.Sender[:], sender)
	if w.PubKey, r, err = cborBytesOrNull(r); err != nil {
		return w, fmt.Errorf("public key: %w", err)
	}
	if w.Nonce, r, err = cborHead(r, 0); err != nil {
		return w, fmt.Errorf("nonce: %w", err)
	}
	if w.GasLimit, r, err = cborHead(r, 0); err != nil {
		return w, fmt.Errorf("gas limit: %w", err)
	}
	if n, r, err = cborHead(r, 4); err != nil || n != 2 {
		return w, fmt.Errorf("gas price: %w", errors.Join(err, ErrMalformed))
	}
	if w.GasPrice.Denom, r, err = cborText(r); err != nil {
		return w, fmt.Errorf("gas price denom: %w", err)
	}
	if w.GasPrice.Micro, r, err = cborHead(r, 0); err != nil {
		return w, fmt.Errorf("gas price amount: %w", err)
	}
	if v, r, err = cborHead(r, 0); err != nil || v > 0xffff {
		return w, fmt.Errorf("kind: %w", errors.Join(err, ErrMalformed))
	}
	w.Kind = PayloadKind(v)
	rest, err := c.dec.UnmarshalFirst(r, &w.Body)
	if err != nil {
		return w, fmt.Errorf("body: %w: %v", ErrMalformed, err)
	}
	r = rest
	if w.Memo, r, err = cborText(r); err != nil {
		return w, fmt.Errorf("memo: %w", err)
	}
	if w.Signature, r, err = cborBytesOrNull(r); err != nil {
		return w, fmt.Errorf("signature: %w", err)
	}
	if len(r) != 0 {
		return w, fmt.Errorf("%d trailing bytes: %w", len(r), ErrMalformed)
	}
	return w, nil
}

// cborText reads a definite-length, valid UTF-8 text string.
func cborText(b []byte) (string, []byte, error) {
	n, rest, err := cborHead(b, 3)
	if err != nil {
		return "", nil, err
	}
	if n > uint64(len(rest)) {
		return "", nil, fmt.Errorf("text of %d bytes, %d left: %w", n, len(rest), ErrMalformed)
	}
	if !utf8.Valid(rest[:n]) {
		return "", nil, fmt.Errorf("text is not UTF-8: %w", ErrMalformed)
	}
	return string(rest[:n]), rest[n:], nil
}

// ValidateBasic checks the stateless rules of a transaction.
func (tx *Tx) ValidateBasic() error {
	switch {
	case tx.Sender.IsZero():
		return fmt.Errorf("ledger: tx: zero sender: %w", ErrMalformed)
	case len(tx.PubKey) != 0 && len(tx.PubKey) != PublicKeySize:
		return fmt.Errorf("ledger: tx: public key is %d bytes, want %d: %w", len(tx.PubKey), PublicKeySize, ErrMalformed)
	case len(tx.PubKey) != 0 && AddressFromPublicKey(tx.PubKey) != tx.Sender:
		return fmt.Errorf("ledger: tx: %w", ErrBadPublicKey)
	case len(tx.Signature) != SignatureSize:
		return fmt.Errorf("ledger: tx: signature is %d bytes, want %d: %w", len(tx.Signature), SignatureSize, ErrInvalidSignature)
	case tx.GasLimit == 0:
		return fmt.Errorf("ledger: tx: gas limit is zero")
	case tx.GasPrice.Denom == "":
		return fmt.Errorf("ledger: tx: gas price has no denom")
	case len(tx.Memo) > MaxMemoBytes:
		return fmt.Errorf("ledger: tx: memo %d bytes > %d", len(tx.Memo), MaxMemoBytes)
	}
	if _, err := tx.GasPrice.Fee(tx.GasLimit); err != nil {
		return fmt.Errorf("ledger: tx: max fee: %w", err)
	}
	if err := tx.Payload.ValidateBasic(); err != nil {
		return err
	}
	return nil
}

// MaxFee is gas_limit × gas_price, the amount reserved before execution.
func (tx *Tx) MaxFee() uint64 {
	f, _ := tx.GasPrice.Fee(tx.GasLimit) // checked in ValidateBasic
	return f
}

// SignTx fills in Sender (from key) and Signature.
func (c *Codec) SignTx(tx *Tx, key *PrivateKey) error {
	tx.Sender = key.Address()
	sb, err := c.SignBytes(tx)
	if err != nil {
		return err
	}
	sig, err := key.Sign(PurposeTx, tx.ChainID, sb)
	if err != nil {
		return err
	}
	tx.Signature = sig
	return nil
}

// signBytesFromRaw derives the signed bytes from a canonical encoding
// without re-encoding: the signature is the array's last element, so the
// signed form is the same bytes with that element replaced by CBOR null
// (0xf6), which is how SignBytes encodes the nil signature. The array header
// is unchanged (same element count).
func signBytesFromRaw(raw, sig []byte) ([]byte, bool) {
	var hdr int
	switch n := len(sig); {
	case n < 24:
		hdr = 1
	case n < 1<<8:
		hdr = 2
	case n < 1<<16:
		hdr = 3
	default:
		return nil, false
	}
	cut := len(raw) - len(sig) - hdr
	if cut < 1 || !bytes.Equal(raw[cut+hdr:], sig) || raw[cut]>>5 != 2 {
		return nil, false
	}
	out := make([]byte, cut+1)
	copy(out, raw[:cut])
	out[cut] = 0xf6 // SignBytes encodes the absent signature as CBOR null
	return out, true
}

// VerifyTxRaw is VerifyTx for a tx decoded from raw (by DecodeTx), which it
// uses to avoid encoding the tx again.
func (c *Codec) VerifyTxRaw(tx *Tx, raw []byte, chainID string, pub PublicKey) error {
	if tx.ChainID != chainID {
		return fmt.Errorf("ledger: tx: chain id %q, this chain is %q: %w", tx.ChainID, chainID, ErrWrongChain)
	}
	if pub.Address() != tx.Sender {
		return fmt.Errorf("ledger: tx: %w", ErrBadPublicKey)
	}
	sb, ok := signBytesFromRaw(raw, tx.Signature)
	if !ok {
		var err error
		if sb, err = c.SignBytes(tx); err != nil {
			return err
		}
	}
	if err := pub.Verify(PurposeTx, chainID, sb, tx.Signature); err != nil {
		return fmt.Errorf("ledger: tx from %s nonce %d: %w", tx.Sender, tx.Nonce, err)
	}
	return nil
}

// VerifyTx checks the chain id and the signature against pub (the key in the
// tx or the one stored on chain for the sender).
func (c *Codec) VerifyTx(tx *Tx, chainID string, pub PublicKey) error {
	if tx.ChainID != chainID {
		return fmt.Errorf("ledger: tx: chain id %q, this chain is %q: %w", tx.ChainID, chainID, ErrWrongChain)
	}
	if pub.Address() != tx.Sender {
		return fmt.Errorf("ledger: tx: %w", ErrBadPublicKey)
	}
	sb, err := c.SignBytes(tx)
	if err != nil {
		return err
	}
	if err := pub.Verify(PurposeTx, chainID, sb, tx.Signature); err != nil {
		return fmt.Errorf("ledger: tx from %s nonce %d: %w", tx.Sender, tx.Nonce, err)
	}
	return nil
}
