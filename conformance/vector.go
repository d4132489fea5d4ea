package conformance

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sos-kernel/sos/kernel"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome"
	"github.com/sos-kernel/sos/vm"
)

// Vector is one golden scenario.
type Vector struct {
	Name        string        `json:"name"`
	Description string        `json:"description"`
	ChainID     string        `json:"chain_id"`
	GenesisTime time.Time     `json:"genesis_time"`
	Accounts    []AccountSpec `json:"accounts"`
	Blocks      []BlockSpec   `json:"blocks"`
	Expect      *Expectation  `json:"expect,omitempty"`
	// Extra becomes genesis extra (rome, gov sections); the strings
	// "$address:NAME" and "$pubkey:NAME" in it stand for a key's address
	// and public key (hex).
	Extra  map[string]any `json:"genesis_extra,omitempty"`
	Params *ledger.Params `json:"params,omitempty"`
	// Nodes are genesis validator keys, by key name (KeyFor): with no
	// issuers or members in genesis_extra they issue certificates and
	// govern (weight 1 each), as "sos init" makes its node.
	Nodes []string          `json:"nodes,omitempty"`
	Notes []string          `json:"notes,omitempty"`
	raw   map[string][]byte // wasm by name, loaded by the runner
}

// AccountSpec funds a named key at genesis.
type AccountSpec struct {
	Key      string `json:"key"`
	Balances string `json:"balances"` // "1000000TFLP,5000KWTT"
}

// BlockSpec is one block: its time offset and transactions.
type BlockSpec struct {
	TimeMs int64    `json:"time_ms"` // milliseconds after genesis_time
	Txs    []TxSpec `json:"txs"`
	// SignCertificates names node keys: the block starts with each node's
	// cert_sign transactions for the certificate statements waiting for it
	// in the state before the block, as a node submits them after a commit
	// (rome.PendingSignatures, rome.SignPayload; gas 1000000 at
	// 0.01uTFLP, paid by the node's account).
	SignCertificates []string `json:"sign_certificates,omitempty"`
}

// TxSpec describes a transaction to sign (exactly one payload field set).
type TxSpec struct {
	From        string           `json:"from"`
	Gas         uint64           `json:"gas"`
	GasPrice    string           `json:"gas_price,omitempty"` // default 0.01uTFLP
	Transfer    *TransferSpec    `json:"transfer,omitempty"`
	Upload      string           `json:"upload,omitempty"` // name of testdata/wasm/<name>.wasm.gz
	Instantiate *InstantiateSpec `json:"instantiate,omitempty"`
	Execute     *ExecuteSpec     `json:"execute,omitempty"`
	Migrate     *MigrateSpec     `json:"migrate,omitempty"`
	// ROME market and governance payloads (see market.go).
	RomeOffer    *OfferSpec        `json:"rome_offer,omitempty"`
	RomeRequest  *RequestSpec      `json:"rome_request,omitempty"`
	RomeCancel   *IDSpec           `json:"rome_cancel,omitempty"`
	RomeUsage    *UsageSpec        `json:"rome_usage,omitempty"`
	PolicyUpload *PolicyUploadSpec `json:"policy_upload,omitempty"`
	CertSign     *CertSignSpec     `json:"cert_sign,omitempty"`
	CertRevoke   *CertRevokeSpec   `json:"cert_revoke,omitempty"`
	GovPropose   *ProposeSpec      `json:"gov_propose,omitempty"`
	GovVote      *VoteSpec         `json:"gov_vote,omitempty"`
	// Jobs (see market.go).
	JobSubmit    *JobSubmitSpec  `json:"job_submit,omitempty"`
	JobResult    *JobResultSpec  `json:"job_result,omitempty"`
	JobChallenge *JobOutcomeSpec `json:"job_challenge,omitempty"`
	JobVerdict   *JobOutcomeSpec `json:"job_verdict,omitempty"`
	// Cluster membership: node keys by name.
	MemberAdd     *MemberAddSpec `json:"member_add,omitempty"`
	MemberPromote string         `json:"member_promote,omitempty"`
	MemberRemove  string         `json:"member_remove,omitempty"`
}

// MemberAddSpec admits the node key named Node, reachable at Addr; AsVoter
// records the intent that it be promoted once caught up.
type MemberAddSpec struct {
	Node    string `json:"node"`
	Addr    string `json:"p2p_addr"`
	AsVoter bool   `json:"as_voter,omitempty"`
}

// TransferSpec: to is a key name.
type TransferSpec struct {
	To     string `json:"to"`
	Amount string `json:"amount"`
}

// InstantiateSpec: code names a wasm; admin a key name ("" none).
type InstantiateSpec struct {
	Code  string          `json:"code"`
	Msg   json.RawMessage `json:"msg"`
	Label string          `json:"label"`
	Admin string          `json:"admin,omitempty"`
	Funds string          `json:"funds,omitempty"`
}

// ExecuteSpec: contract is "@label" of an instance made earlier in the vector.
type ExecuteSpec struct {
	Contract string          `json:"contract"`
	Msg      json.RawMessage `json:"msg"`
	Funds    string          `json:"funds,omitempty"`
}

// MigrateSpec moves "@label" to the code named Code.
type MigrateSpec struct {
	Contract string          `json:"contract"`
	Code     string          `json:"code"`
	Msg      json.RawMessage `json:"msg"`
}

// Expectation is what the vector must produce. With market activity,
// Balances also holds the escrow module account ("@rome_escrow") and
// Market the market's final state.
type Expectation struct {
	Blocks   []BlockResult            `json:"blocks"`
	Balances map[string][]ledger.Coin `json:"balances"`
	Market   *MarketResult            `json:"market,omitempty"`
}

// BlockResult is one block's outcome.
type BlockResult struct {
	Height    uint64          `json:"height"`
	StateRoot string          `json:"state_root"`
	Included  int             `json:"included"`
	Receipts  []ReceiptResult `json:"receipts"`
	// Epoch is the record of the ROME epoch this block ended, if any.
	Epoch *rome.EpochRecord `json:"epoch,omitempty"`
}

// ReceiptResult is the consensus part of a receipt (the error text is not
// consensus; see kernel's receipt root).
type ReceiptResult struct {
	Code    uint32         `json:"code"`
	GasUsed uint64         `json:"gas_used"`
	Fee     string         `json:"fee"`
	Events  []ledger.Event `json:"events,omitempty"`
	Data    string         `json:"data,omitempty"`
}

// KeyFor is the deterministic key of a name in vectors.
func KeyFor(name string) *ledger.PrivateKey {
	seed := sha256.Sum256([]byte("sos-conformance/key/" + name))
	k, err := ledger.PrivateKeyFromSeed(seed[:])
	if err != nil {
		panic(err) // 32-byte seed: cannot fail
	}
	return k
}

// LoadVector reads a vector and the wasm files it names from dir.
func LoadVector(path string) (*Vector, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var v Vector
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("conformance: %s: %w", path, err)
	}
	v.raw = map[string][]byte{}
	names := map[string]bool{}
	for _, bl := range v.Blocks {
		for _, tx := range bl.Txs {
			for _, n := range tx.wasmNames() {
				names[n] = true
			}
		}
	}
	for n := range names {
		w, err := readWasm(filepath.Join(filepath.Dir(path), "wasm", n+".wasm.gz"))
		if err != nil {
			return nil, fmt.Errorf("conformance: %s: %w", path, err)
		}
		v.raw[n] = w
	}
	return &v, nil
}

func readWasm(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(zr, 16<<20))
}

// Genesis builds the vector's genesis document.
func (v *Vector) Genesis() ([]byte, error) {
	g := &ledger.Genesis{ChainID: v.ChainID, GenesisTime: v.GenesisTime, Denoms: ledger.DefaultDenoms(), Params: ledger.DefaultParams()}
	if v.Params != nil {
		g.Params = *v.Params
	}
	d := g.DenomSet()
	for _, a := range v.Accounts {
		coins, err := d.ParseCoins(a.Balances)
		if err != nil {
			return nil, fmt.Errorf("conformance: account %s: %w", a.Key, err)
		}
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: KeyFor(a.Key).Address(), Balances: coins})
	}
	for _, n := range v.Nodes {
		g.Nodes = append(g.Nodes, ledger.GenesisNode{PubKey: hex.EncodeToString(KeyFor(n).Public().Bytes())})
	}
	if len(v.Extra) > 0 {
		g.Extra = map[string]json.RawMessage{}
		for k, x := range v.Extra {
			b, err := json.Marshal(substituteKeys(x))
			if err != nil {
				return nil, err
			}
			g.Extra[k] = b
		}
	}
	return g.Marshal()
}

// Options tune how vectors run, never what they compute.
type Options struct {
	// CacheDir is a wazero compilation cache shared between runs ("": none):
	// compiled machine code only, so results do not depend on it.
	CacheDir string
}

// Run executes a vector on a fresh chain in dir and returns what happened.
func Run(ctx context.Context, v *Vector, dir string) (*Expectation, error) {
	return RunWith(ctx, v, dir, Options{})
}

// RunWith is Run with options.
func RunWith(ctx context.Context, v *Vector, dir string, opts Options) (*Expectation, error) {
	doc, err := v.Genesis()
	if err != nil {
		return nil, err
	}
	g, err := ledger.ParseGenesis(doc)
	if err != nil {
		return nil, err
	}
	store, err := ledger.Open(filepath.Join(dir, "data"), ledger.StoreOptions{NoSync: true})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	machine, err := kernel.NewVMs(ctx, vm.Config{CacheDir: opts.CacheDir})
	if err != nil {
		return nil, err
	}
	defer machine.Close(ctx)
	chain := kernel.NewChainWithVM(store, g, machine)
	if err := chain.InitGenesis(doc); err != nil {
		return nil, err
	}
	market := chain.Market()
	codec := store.Codec()
	proposer := KeyFor("proposer")
	nonces := map[string]uint64{}
	keyNames := map[ledger.Address]string{}
	for _, a := range v.Accounts {
		keyNames[KeyFor(a.Key).Address()] = a.Key
	}
	for _, n := range v.Nodes {
		keyNames[KeyFor(n).Address()] = n
	}
	labels := map[string]ledger.Address{}
	out := &Expectation{Balances: map[string][]ledger.Coin{}}
	for bi, bl := range v.Blocks {
		before := ledger.NewState(store)
		clock, err := market.Clock(before)
		if err != nil {
			return nil, err
		}
		var txs []*kernel.PendingTx
		add := func(from string, gasLimit uint64, price ledger.GasPrice, p ledger.Payload) error {
			key := KeyFor(from)
			keyNames[key.Address()] = from
			n := nonces[from]
			tx := &ledger.Tx{Version: ledger.TxVersion, ChainID: v.ChainID, Nonce: n, GasLimit: gasLimit, GasPrice: price, Payload: p}
			if n == 0 {
				tx.PubKey = key.Public().Bytes()
			}
			if err := codec.SignTx(tx, key); err != nil {
				return err
			}
			raw, err := codec.EncodeTx(tx)
			if err != nil {
				return err
			}
			dec, err := codec.DecodeTx(raw)
			if err != nil {
				return err
			}
			ptx := &kernel.PendingTx{Tx: dec, Raw: raw, Hash: ledger.HashBytes(raw)}
			if err := chain.Verify(before, ptx); err != nil {
				return err
			}
			txs = append(txs, ptx)
			nonces[from] = n + 1
			return nil
		}
		for _, node := range bl.SignCertificates {
			key := KeyFor(node)
			pend, err := rome.PendingSignatures(before, codec, key.Public(), 64)
			if err != nil {
				return nil, err
			}
			for i := range pend {
				p, err := rome.SignPayload(codec, key, &pend[i])
				if err != nil {
					return nil, err
				}
				if err := add(node, 1_000_000, ledger.GasPrice{Denom: ledger.DefaultFeeDenom, Micro: 10_000}, p); err != nil {
					return nil, fmt.Errorf("conformance: block %d: sign certificate %d: %w", bi+1, p.CertID, err)
				}
			}
		}
		cert := func(id uint64) (*rome.Certificate, error) { return market.Certificate(before, id) }
		for ti, ts := range bl.Txs {
			p, err := v.payload(ts, g.DenomSet(), codec, labels, cert)
			if err != nil {
				return nil, fmt.Errorf("conformance: block %d tx %d: %w", bi+1, ti, err)
			}
			price := ledger.GasPrice{Denom: "uTFLP", Micro: 10_000}
			if ts.GasPrice != "" {
				if price, err = g.DenomSet().ParseGasPrice(ts.GasPrice); err != nil {
					return nil, err
				}
			}
			if err := add(ts.From, ts.Gas, price, p); err != nil {
				return nil, fmt.Errorf("conformance: block %d tx %d: %w", bi+1, ti, err)
			}
		}
		bb, err := chain.BuildBlock(ctx, txs, v.GenesisTime.UnixMilli()+bl.TimeMs, proposer)
		if err != nil {
			return nil, fmt.Errorf("conformance: block %d: %w", bi+1, err)
		}
		for _, r := range bb.Rejected {
			nonces[keyNames[r.Tx.Tx.Sender]]--
		}
		if err := chain.Commit(bb); err != nil {
			return nil, err
		}
		br := BlockResult{Height: bb.Block.Header.Height, StateRoot: bb.Block.Header.StateRoot.String(), Included: len(bb.Included)}
		for i, r := range bb.Receipts {
			rr := ReceiptResult{Code: uint32(r.Code), GasUsed: r.GasUsed, Fee: r.Fee.String(), Events: r.Events}
			if len(r.Data) > 0 {
				rr.Data = string(r.Data)
			}
			br.Receipts = append(br.Receipts, rr)
			if p, ok := bb.Included[i].Tx.Payload.(*ledger.ContractInstantiate); ok && r.Code == ledger.CodeOK {
				var d struct {
					Address ledger.Address `json:"address"`
				}
				if json.Unmarshal(r.Data, &d) == nil {
					labels[p.Label] = d.Address
				}
			}
		}
		after := ledger.NewState(store)
		now, err := market.Clock(after)
		if err != nil {
			return nil, err
		}
		if now.Epoch != clock.Epoch {
			if br.Epoch, err = market.Epoch(after, clock.Epoch); err != nil {
				return nil, fmt.Errorf("conformance: block %d: epoch %d record: %w", bi+1, clock.Epoch, err)
			}
		}
		out.Blocks = append(out.Blocks, br)
	}
	st := ledger.NewState(store)
	acc := &ledger.Accounts{St: st, Codec: codec}
	for _, a := range v.Accounts {
		got, _, err := acc.Get(KeyFor(a.Key).Address())
		if err != nil {
			return nil, err
		}
		out.Balances[a.Key] = append([]ledger.Coin{}, got.Balances...)
	}
	name := func(a ledger.Address) string {
		if n, ok := keyNames[a]; ok {
			return n
		}
		return a.String()
	}
	if out.Market, err = marketResult(market, st, name); err != nil {
		return nil, err
	}
	if out.Market != nil {
		got, _, err := acc.Get(rome.EscrowAccount)
		if err != nil {
			return nil, err
		}
		out.Balances[escrowName] = append([]ledger.Coin{}, got.Balances...)
		// Bonds and challenge deposits, once a vector uses them.
		for n, a := range map[string]ledger.Address{bondName: rome.BondAccount, depositName: rome.DepositAccount} {
			got, ok, err := acc.Get(a)
			if err != nil {
				return nil, err
			}
			if ok {
				out.Balances[n] = append([]ledger.Coin{}, got.Balances...)
			}
		}
	}
	return out, nil
}

// escrowName, bondName and depositName are the balances entries of the
// market's module accounts.
const (
	escrowName  = "@rome_escrow"
	bondName    = "@rome_bond"
	depositName = "@rome_deposit"
)

func (v *Vector) payload(ts TxSpec, d *ledger.Denoms, codec *ledger.Codec, labels map[string]ledger.Address,
	cert func(uint64) (*rome.Certificate, error)) (ledger.Payload, error) {
	if n := ts.payloadFields(); n != 1 {
		return nil, fmt.Errorf("transaction sets %d payloads, want exactly one", n)
	}
	if p, err := v.marketPayload(ts, d, codec, cert); p != nil || err != nil {
		return p, err
	}
	contract := func(ref string) (ledger.Address, error) {
		if a, ok := labels[strings.TrimPrefix(ref, "@")]; ok && strings.HasPrefix(ref, "@") {
			return a, nil
		}
		if strings.HasPrefix(ref, "@") {
			return ledger.Address{}, fmt.Errorf("no instance labelled %s yet", ref)
		}
		return ledger.ParseAddress(ref)
	}
	funds := func(s string) (ledger.Coins, error) {
		if s == "" {
			return nil, nil
		}
		return d.ParseCoins(s)
	}
	switch {
	case ts.MemberAdd != nil:
		return &ledger.MemberAdd{PubKey: KeyFor(ts.MemberAdd.Node).Public().Bytes(), Addr: ts.MemberAdd.Addr, AsVoter: ts.MemberAdd.AsVoter}, nil
	case ts.MemberPromote != "":
		return &ledger.MemberPromote{NodeID: KeyFor(ts.MemberPromote).Public().Fingerprint()}, nil
	case ts.MemberRemove != "":
		return &ledger.MemberRemove{NodeID: KeyFor(ts.MemberRemove).Public().Fingerprint()}, nil
	case ts.Transfer != nil:
		c, err := d.ParseCoins(ts.Transfer.Amount)
		if err != nil {
			return nil, err
		}
		return &ledger.Transfer{To: KeyFor(ts.Transfer.To).Address(), Amount: c}, nil
	case ts.Upload != "":
		return &ledger.ContractUpload{Wasm: v.raw[ts.Upload]}, nil
	case ts.Instantiate != nil:
		in := ts.Instantiate
		f, err := funds(in.Funds)
		if err != nil {
			return nil, err
		}
		p := &ledger.ContractInstantiate{CodeID: ledger.HashBytes(v.raw[in.Code]), Msg: compact(in.Msg), Label: in.Label, Funds: f}
		if in.Admin != "" {
			p.Admin = KeyFor(in.Admin).Address()
		}
		return p, nil
	case ts.Execute != nil:
		a, err := contract(ts.Execute.Contract)
		if err != nil {
			return nil, err
		}
		f, err := funds(ts.Execute.Funds)
		if err != nil {
			return nil, err
		}
		return &ledger.ContractExecute{Contract: a, Msg: substitute(compact(ts.Execute.Msg), labels), Funds: f}, nil
	case ts.Migrate != nil:
		a, err := contract(ts.Migrate.Contract)
		if err != nil {
			return nil, err
		}
		return &ledger.ContractMigrate{Contract: a, CodeID: ledger.HashBytes(v.raw[ts.Migrate.Code]), Msg: substitute(compact(ts.Migrate.Msg), labels)}, nil
	}
	return nil, errors.New("transaction has no payload")
}

func compact(m json.RawMessage) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, m); err != nil {
		return m
	}
	return b.Bytes()
}

// substitute replaces "@label" strings in a message with the instance's
// address, so vectors can pass contract addresses to contracts.
func substitute(m []byte, labels map[string]ledger.Address) []byte {
	for l, a := range labels {
		m = bytes.ReplaceAll(m, []byte(`"@`+l+`"`), []byte(`"`+a.String()+`"`))
	}
	return m
}

// Diff lists the differences between want and got ("" when equal).
func Diff(want, got *Expectation) string {
	var sb strings.Builder
	if want == nil {
		return "vector has no expectations (run the test with -update)\n"
	}
	if len(want.Blocks) != len(got.Blocks) {
		fmt.Fprintf(&sb, "blocks: want %d, got %d\n", len(want.Blocks), len(got.Blocks))
	}
	for i := 0; i < len(want.Blocks) && i < len(got.Blocks); i++ {
		w, g := want.Blocks[i], got.Blocks[i]
		if w.StateRoot != g.StateRoot {
			fmt.Fprintf(&sb, "block %d: state root want %s got %s\n", w.Height, w.StateRoot, g.StateRoot)
		}
		if w.Included != g.Included || len(w.Receipts) != len(g.Receipts) {
			fmt.Fprintf(&sb, "block %d: included want %d got %d\n", w.Height, w.Included, g.Included)
			continue
		}
		for j := range w.Receipts {
			wj, _ := json.Marshal(w.Receipts[j])
			gj, _ := json.Marshal(g.Receipts[j])
			if !bytes.Equal(wj, gj) {
				fmt.Fprintf(&sb, "block %d receipt %d:\n  want %s\n  got  %s\n", w.Height, j, wj, gj)
			}
		}
		if wj, gj := jsonOf(w.Epoch), jsonOf(g.Epoch); !bytes.Equal(wj, gj) {
			fmt.Fprintf(&sb, "block %d epoch record:\n  want %s\n  got  %s\n", w.Height, wj, gj)
		}
	}
	if wj, gj := jsonOf(want.Market), jsonOf(got.Market); !bytes.Equal(wj, gj) {
		fmt.Fprintf(&sb, "market:\n  want %s\n  got  %s\n", wj, gj)
	}
	keys := make([]string, 0, len(want.Balances))
	for k := range want.Balances {
		keys = append(keys, k)
	}
	for k := range got.Balances {
		if _, ok := want.Balances[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		wj, _ := json.Marshal(want.Balances[k])
		gj, _ := json.Marshal(got.Balances[k])
		if !bytes.Equal(wj, gj) {
			fmt.Fprintf(&sb, "balances of %s: want %s got %s\n", k, wj, gj)
		}
	}
	return sb.String()
}

func jsonOf(x any) []byte {
	b, _ := json.Marshal(x)
	return b
}

// RunDir checks every vector in dir; it reports per-vector lines through
// report and returns the number passed and failed.
func RunDir(ctx context.Context, dir string, report func(name string, err error)) (passed, failed int, err error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return 0, 0, err
	}
	if len(files) == 0 {
		return 0, 0, fmt.Errorf("conformance: no vectors (*.json) in %s", dir)
	}
	sort.Strings(files)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		if name == "kat" {
			if kerr := CheckKATFile(f); kerr != nil {
				failed++
				report(name, kerr)
			} else {
				passed++
				report(name, nil)
			}
			continue
		}
		v, lerr := LoadVector(f)
		if lerr != nil {
			failed++
			report(name, lerr)
			continue
		}
		tmp, terr := os.MkdirTemp("", "sos-conformance")
		if terr != nil {
			return passed, failed, terr
		}
		got, rerr := Run(ctx, v, tmp)
		os.RemoveAll(tmp)
		switch {
		case rerr != nil:
			failed++
			report(name, rerr)
		case Diff(v.Expect, got) != "":
			failed++
			report(name, errors.New(Diff(v.Expect, got)))
		default:
			passed++
			report(name, nil)
		}
	}
	return passed, failed, nil
}
