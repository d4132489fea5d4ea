package conformance

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/sos-kernel/sos/ledger"
)

// KAT is the known-answer file (testdata/kat.json): our key format, address
// derivation, domain-separated signatures and transaction encoding.
type KAT struct {
	Keys       []KeyKAT `json:"keys"`
	Signatures []SigKAT `json:"signatures"`
	Txs        []TxKAT  `json:"txs"`
}

// KeyKAT: seed → public key (by hash), address, node id.
type KeyKAT struct {
	Seed          string `json:"seed"`
	PublicKeyHash string `json:"public_key_sha256"`
	Address       string `json:"address"`
	NodeID        string `json:"node_id"`
}

// SigKAT: a deterministic signature (by hash) that must verify.
type SigKAT struct {
	Seed          string `json:"seed"`
	Purpose       string `json:"purpose"`
	ChainID       string `json:"chain_id"`
	Message       string `json:"message"`
	SignatureHash string `json:"signature_sha256"`
}

// TxKAT: a transaction's canonical encoding and hash.
type TxKAT struct {
	Description string `json:"description"`
	Seed        string `json:"seed"`
	Encoding    string `json:"encoding_sha256"`
	Size        int    `json:"size"`
	Hash        string `json:"tx_hash"`
}

func keyFromHex(s string) (*ledger.PrivateKey, error) {
	seed, err := hex.DecodeString(s)
	if err != nil {
		return nil, err
	}
	return ledger.PrivateKeyFromSeed(seed)
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func katTxs(k *ledger.PrivateKey) ([]*ledger.Tx, []string) {
	to := KeyFor("kat-recipient").Address()
	return []*ledger.Tx{
			{Version: 1, ChainID: "kat", PubKey: k.Public().Bytes(), Nonce: 0, GasLimit: 200_000, GasPrice: ledger.GasPrice{Denom: "uTFLP", Micro: 10_000},
				Payload: &ledger.Transfer{To: to, Amount: ledger.Coins{{Denom: "uTFLP", Amount: 25_000_000}}}},
			{Version: 1, ChainID: "kat", Nonce: 7, GasLimit: 1_000_000, GasPrice: ledger.GasPrice{Denom: "uKWTT", Micro: 20_000}, Memo: "memo",
				Payload: &ledger.ContractExecute{Contract: to, Msg: []byte(`{"increment":{}}`), Funds: ledger.Coins{{Denom: "uKWTT", Amount: 5}}}},
		}, []string{
			"first transfer (public key attached)",
			"contract execute with funds and memo, fees in KWTT",
		}
}

// GenerateKAT computes the known answers with this implementation.
func GenerateKAT() (*KAT, error) {
	codec := ledger.NewCodec()
	out := &KAT{}
	for i := 0; i < 3; i++ {
		seed := sha256.Sum256([]byte(fmt.Sprintf("sos-kat-%d", i)))
		k, err := ledger.PrivateKeyFromSeed(seed[:])
		if err != nil {
			return nil, err
		}
		sh := hex.EncodeToString(seed[:])
		out.Keys = append(out.Keys, KeyKAT{Seed: sh, PublicKeyHash: sha(k.Public().Bytes()), Address: k.Address().String(), NodeID: k.Public().Fingerprint()})
		for _, p := range []ledger.Purpose{ledger.PurposeTx, ledger.PurposeBlock, ledger.PurposeHandshake} {
			msg := []byte(fmt.Sprintf("known answer %d", i))
			sig, err := k.Sign(p, "kat", msg)
			if err != nil {
				return nil, err
			}
			out.Signatures = append(out.Signatures, SigKAT{Seed: sh, Purpose: string(p), ChainID: "kat", Message: hex.EncodeToString(msg), SignatureHash: sha(sig)})
		}
		txs, descs := katTxs(k)
		for j, tx := range txs {
			if err := codec.SignTx(tx, k); err != nil {
				return nil, err
			}
			raw, err := codec.EncodeTx(tx)
			if err != nil {
				return nil, err
			}
			out.Txs = append(out.Txs, TxKAT{Description: descs[j], Seed: sh, Encoding: sha(raw), Size: len(raw), Hash: ledger.HashBytes(raw).String()})
		}
	}
	return out, nil
}

// CheckKATFile recomputes the known answers and compares them with path;
// every signature must also verify.
func CheckKATFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var want KAT
	if err := json.Unmarshal(b, &want); err != nil {
		return fmt.Errorf("conformance: %s: %w", path, err)
	}
	got, err := GenerateKAT()
	if err != nil {
		return err
	}
	wj, _ := json.Marshal(&want)
	gj, _ := json.Marshal(got)
	if !bytes.Equal(wj, gj) {
		return fmt.Errorf("conformance: known answers differ from %s (keys, addresses, signatures or tx encoding changed)", path)
	}
	for _, s := range want.Signatures {
		k, err := keyFromHex(s.Seed)
		if err != nil {
			return err
		}
		msg, _ := hex.DecodeString(s.Message)
		sig, err := k.Sign(ledger.Purpose(s.Purpose), s.ChainID, msg)
		if err != nil {
			return err
		}
		if err := k.Public().Verify(ledger.Purpose(s.Purpose), s.ChainID, msg, sig); err != nil {
			return fmt.Errorf("conformance: known-answer signature does not verify: %w", err)
		}
	}
	return nil
}
