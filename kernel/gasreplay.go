package kernel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sos-kernel/sos/contracts"
	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
)

// GasCallsVersion is the version of the calls file the SDK test harness
// writes (sdktest.CallsFile) and ReplayGas reads.
const GasCallsVersion = 1

// GasCalls is the calls file: the top-level calls a test made on the
// SDK harness, in order.
type GasCalls struct {
	Version int       `json:"version"`
	ChainID string    `json:"chain_id"` // the harness's chain id (contracts read it; it is part of every tx)
	Calls   []GasCall `json:"calls"`
}

// GasCall is one call a test made. Addresses are the harness's own: the
// replay maps them (and every bech32 occurrence of them in messages) to
// its accounts and contract instances.
type GasCall struct {
	Entry    string       `json:"entry"`               // instantiate, execute, query or migrate
	Sender   string       `json:"sender,omitempty"`    // bech32 (none for a query)
	Contract string       `json:"contract"`            // bech32 of the instance (instantiate: the one it created)
	Code     int          `json:"code"`                // instantiate, migrate: the module, as an index in the replay's list
	Msg      string       `json:"msg"`                 // JSON text
	Funds    ledger.Coins `json:"funds,omitempty"`     // sent with the call
	TimeMs   int64        `json:"time_ms,omitempty"`   // the harness's block time
	Force    bool         `json:"force,omitempty"`     // migrate without the contract name check
	Failed   bool         `json:"failed,omitempty"`    // the call returned an error in the harness
	Handler  string       `json:"handler,omitempty"`   // the message's key ({"increment":{}}: increment), as the harness names it
	Height   uint64       `json:"height,omitempty"`    // the harness's block height (informative: the replay's heights are its own)
	Label    string       `json:"label,omitempty"`     // instantiate: the instance's label ("sdktest" when empty)
	GasLimit uint64       `json:"gas_limit,omitempty"` // 0: as the CLI picks it (simulated gas + txbuild.GasWithMargin)
}

// GasReplay is ReplayGas's result.
type GasReplay struct {
	ChainID string          `json:"chain_id"`
	Uploads []GasReplayCode `json:"uploads"`
	Calls   []GasReplayCall `json:"calls"`
	Notes   []string        `json:"notes"`
}

// GasReplayCode is one module as uploaded.
type GasReplayCode struct {
	CodeID  string `json:"code_id"`
	Size    int    `json:"size"`
	GasUsed uint64 `json:"gas_used"`
}

// GasReplayCall is the node's figures for one call.
type GasReplayCall struct {
	Entry    string      `json:"entry"`
	Handler  string      `json:"handler"`
	Sender   string      `json:"sender,omitempty"` // the replay's account
	Contract string      `json:"contract"`         // the replay's instance
	Code     ledger.Code `json:"code"`             // the receipt's result code (a query: 0 or the error's)
	Error    string      `json:"error,omitempty"`
	// GasUsed is the receipt's gas_used (intrinsic + the call + the
	// transaction's own charges); for a query, the query's gas.
	GasUsed  uint64 `json:"gas_used"`
	GasLimit uint64 `json:"gas_limit,omitempty"` // the transaction's limit (0 for a query)
	// CallGas is the top-level contract call's gas (call base, load,
	// instructions, host functions, nested calls).
	CallGas uint64 `json:"call_gas"`
	// LoadGas is the module load the call paid: 0 when the code was warm.
	LoadGas     uint64 `json:"load_gas"`
	LoadCharged bool   `json:"load_charged"`
	// HarnessFailed is the harness's verdict; it differs from Code != 0
	// when the harness and the chain disagree.
	HarnessFailed bool `json:"harness_failed,omitempty"`
}

// ErrBadCalls marks a calls file ReplayGas cannot run.
var ErrBadCalls = errors.New("kernel: bad gas calls")

// replayKey derives the replay's key for a harness address: stable, so
// two replays of one file sign the same transactions.
func replayKey(what string) (*ledger.PrivateKey, error) {
	seed := sha256.Sum256([]byte("sos/gas-replay/" + what))
	return ledger.PrivateKeyFromSeed(seed[:ledger.SeedSize])
}

// ReplayGas runs calls on a scratch chain in dir (an empty directory the
// caller removes) that executes exactly as a node does: the chain's
// genesis gas schedule and default parameters, the binary's cost table,
// the warm code set. Each module of wasms is uploaded first, in its own
// block (an upload makes its code warm, as on a node); every sender's
// public key is put on chain by a setup transfer, so no call pays for
// storing it. Each call is then one transaction in its own block, signed
// as the CLI signs it (gas limit from a simulation plus
// txbuild.GasWithMargin, txbuild.DefaultGasPrice, no memo), and a query
// runs with vm.DefaultQueryGas as a node's query API does. The result
// gives every call's receipt gas, call gas and whether it paid the module
// load.
func ReplayGas(ctx context.Context, dir string, wasms [][]byte, calls GasCalls) (*GasReplay, error) {
	if calls.Version != GasCallsVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrBadCalls, calls.Version, GasCallsVersion)
	}
	if len(wasms) == 0 {
		return nil, fmt.Errorf("%w: no module to upload", ErrBadCalls)
	}
	chainID := calls.ChainID
	if chainID == "" {
		chainID = "sos-test"
	}
	r := &replayer{ctx: ctx, senders: map[string]*ledger.PrivateKey{}, contracts: map[string]ledger.Address{}, nonces: map[ledger.Address]uint64{}}
	var err error
	if r.deployer, err = replayKey("deployer"); err != nil {
		return nil, err
	}
	need := map[string]uint64{}
	var order []string
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	for i, c := range calls.Calls {
		switch c.Entry {
		case "instantiate", "migrate":
			if c.Code < 0 || c.Code >= len(wasms) {
				return nil, fmt.Errorf("%w: call %d (%s): module %d of %d", ErrBadCalls, i, c.Entry, c.Code, len(wasms))
			}
		case "execute", "query":
		default:
			return nil, fmt.Errorf("%w: call %d: entry %q", ErrBadCalls, i, c.Entry)
		}
		if c.TimeMs > 0 && c.TimeMs < start {
			start = c.TimeMs
		}
		if c.Entry == "query" {
			continue
		}
		if _, err := ledger.ParseAddress(c.Sender); err != nil {
			return nil, fmt.Errorf("%w: call %d: sender %q: %v", ErrBadCalls, i, c.Sender, err)
		}
		if _, ok := r.senders[c.Sender]; !ok {
			k, err := replayKey(c.Sender)
			if err != nil {
				return nil, err
			}
			r.senders[c.Sender] = k
			order = append(order, c.Sender)
		}
		for _, f := range c.Funds {
			need[c.Sender+"/"+f.Denom] += f.Amount
		}
	}

	denoms := ledger.DefaultDenoms()
	known, err := ledger.NewDenoms(denoms)
	if err != nil {
		return nil, err
	}
	const feeMoney = 1 << 60 // every call's maximum fee, many times over
	accs := []ledger.GenesisAccount{{Address: r.deployer.Address(), Balances: ledger.Coins{{Denom: ledger.DefaultFeeDenom, Amount: feeMoney}}}}
	for _, s := range order {
		bal := ledger.Coins{{Denom: ledger.DefaultFeeDenom, Amount: feeMoney}}
		for _, c := range calls.Calls {
			for _, f := range c.Funds {
				if c.Sender != s || f.Denom == ledger.DefaultFeeDenom || bal.AmountOf(f.Denom) > 0 {
					continue
				}
				if !known.IsBase(f.Denom) {
					// A denom the harness made up: declare it, so funds move.
					denoms = append(denoms, ledger.Denom{Display: "x" + f.Denom, Base: f.Denom, Exponent: 0, Description: "declared by the gas replay"})
					if known, err = ledger.NewDenoms(denoms); err != nil {
						return nil, fmt.Errorf("%w: denom %q: %v", ErrBadCalls, f.Denom, err)
					}
				}
				bal = append(bal, ledger.Coin{Denom: f.Denom, Amount: need[s+"/"+f.Denom]})
			}
		}
		slices.SortFunc(bal, func(x, y ledger.Coin) int { return strings.Compare(x.Denom, y.Denom) })
		accs = append(accs, ledger.GenesisAccount{Address: r.senders[s].Address(), Balances: bal})
	}
	g := &ledger.Genesis{
		ChainID: chainID, GenesisTime: time.UnixMilli(start - 60_000).UTC(),
		Denoms: denoms, Params: ledger.DefaultParams(), Accounts: accs,
	}
	doc, err := g.Marshal()
	if err != nil {
		return nil, fmt.Errorf("kernel: gas replay genesis: %w", err)
	}
	if g, err = ledger.ParseGenesis(doc); err != nil {
		return nil, fmt.Errorf("kernel: gas replay genesis: %w", err)
	}
	store, err := ledger.Open(dir, ledger.StoreOptions{})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	vms, err := NewVMs(ctx, vm.Config{ModuleCacheSize: ModuleCacheSize(g.Params)})
	if err != nil {
		return nil, err
	}
	defer vms.Close(context.WithoutCancel(ctx))
	r.chain = NewChainWithVM(store, g, vms)
	if err := r.chain.InitGenesis(doc); err != nil {
		return nil, err
	}
	out := &GasReplay{ChainID: chainID, Notes: []string{
		"each call is one transaction in its own block, signed as the CLI signs it (simulated gas + margin, default gas price, no memo); its sender's key was already on chain",
		"gas_used is the receipt's; call_gas the top-level contract call's; load_charged says whether the call paid the module load (uploaded code is warm)",
		"block heights are the replay's own; block times are the harness's",
	}}

	// Put every sender's key on chain.
	var setup []*PendingTx
	for _, s := range order {
		k := r.senders[s]
		ptx, err := r.sign(k, &ledger.Transfer{To: r.deployer.Address(), Amount: ledger.Coins{{Denom: ledger.DefaultFeeDenom, Amount: 1}}}, 100_000)
		if err != nil {
			return nil, err
		}
		setup = append(setup, ptx)
	}
	if len(setup) > 0 {
		if _, err := r.block(setup, 0); err != nil {
			return nil, fmt.Errorf("kernel: gas replay: registering senders: %w", err)
		}
	}
	codes := make([]ledger.Hash, len(wasms))
	for i, w := range wasms {
		rc, _, err := r.run(r.deployer, &ledger.ContractUpload{Wasm: w}, 0, 0)
		if err != nil {
			return nil, fmt.Errorf("kernel: gas replay: upload %d: %w", i, err)
		}
		if rc.Code != ledger.CodeOK {
			return nil, fmt.Errorf("kernel: gas replay: upload %d: %s: %s", i, rc.Code, rc.Error)
		}
		codes[i] = ledger.HashBytes(w)
		out.Uploads = append(out.Uploads, GasReplayCode{CodeID: codes[i].String(), Size: len(w), GasUsed: rc.GasUsed})
	}

	for i, c := range calls.Calls {
		res, err := r.call(c, codes)
		if err != nil {
			return nil, fmt.Errorf("kernel: gas replay: call %d (%s %s): %w", i, c.Entry, c.Msg, err)
		}
		out.Calls = append(out.Calls, *res)
	}
	return out, nil
}

type replayer struct {
	ctx       context.Context
	chain     *Chain
	deployer  *ledger.PrivateKey
	senders   map[string]*ledger.PrivateKey // harness bech32 → key
	contracts map[string]ledger.Address     // harness bech32 → instance
	nonces    map[ledger.Address]uint64
}

// sign signs p from k with its next nonce (the first carries the key).
func (r *replayer) sign(k *ledger.PrivateKey, p ledger.Payload, gasLimit uint64) (*PendingTx, error) {
	codec := r.chain.codec
	n := r.nonces[k.Address()]
	tx := &ledger.Tx{Version: ledger.TxVersion, ChainID: r.chain.genesis.ChainID, Nonce: n, GasLimit: gasLimit,
		GasPrice: txbuild.DefaultGasPrice, Payload: p}
	if n == 0 {
		tx.PubKey = k.Public().Bytes()
	}
	if err := codec.SignTx(tx, k); err != nil {
		return nil, err
	}
	raw, err := codec.EncodeTx(tx)
	if err != nil {
		return nil, err
	}
	dec, err := codec.DecodeTx(raw)
	if err != nil {
		return nil, err
	}
	return &PendingTx{Tx: dec, Raw: raw, Hash: ledger.HashBytes(raw)}, nil
}

// block commits txs as one block at timeMs (0: just after the head).
func (r *replayer) block(txs []*PendingTx, timeMs int64) (*BuiltBlock, error) {
	bb, err := r.chain.BuildBlock(r.ctx, txs, timeMs, r.deployer)
	if err != nil {
		return nil, err
	}
	if len(bb.Rejected) > 0 {
		return nil, bb.Rejected[0].Err
	}
	if err := r.chain.Commit(bb); err != nil {
		return nil, err
	}
	for _, p := range txs {
		r.nonces[p.Tx.Sender]++
	}
	return bb, nil
}

// run executes p from k in its own block: simulated first (latest state,
// nothing written) unless gasLimit is set, then signed with the CLI's
// margin and committed.
func (r *replayer) run(k *ledger.PrivateKey, p ledger.Payload, gasLimit uint64, timeMs int64) (ledger.Receipt, *PendingTx, error) {
	if gasLimit == 0 {
		sim, err := r.sign(k, p, r.chain.params.MaxGas(p))
		if err != nil {
			return ledger.Receipt{}, nil, err
		}
		bb, err := r.chain.BuildBlock(r.ctx, []*PendingTx{sim}, timeMs, r.deployer)
		if err != nil {
			return ledger.Receipt{}, nil, err
		}
		if len(bb.Rejected) > 0 {
			return ledger.Receipt{}, nil, bb.Rejected[0].Err
		}
		gasLimit = min(txbuild.GasWithMargin(bb.Receipts[0].GasUsed), r.chain.params.MaxGas(p))
	}
	ptx, err := r.sign(k, p, gasLimit)
	if err != nil {
		return ledger.Receipt{}, nil, err
	}
	bb, err := r.block([]*PendingTx{ptx}, timeMs)
	if err != nil {
		return ledger.Receipt{}, nil, err
	}
	return bb.Receipts[0], ptx, nil
}

// rewrite replaces the harness's addresses in a message with the replay's
// (both are bech32 of 32 bytes: the message keeps its length).
func (r *replayer) rewrite(msg string) string {
	for h, k := range r.senders {
		msg = strings.ReplaceAll(msg, h, k.Address().String())
	}
	for h, a := range r.contracts {
		msg = strings.ReplaceAll(msg, h, a.String())
	}
	return msg
}

func (r *replayer) instance(c GasCall) (ledger.Address, error) {
	a, ok := r.contracts[c.Contract]
	if !ok {
		return ledger.Address{}, fmt.Errorf("%w: contract %q was not instantiated by an earlier call", ErrBadCalls, c.Contract)
	}
	return a, nil
}

func (r *replayer) call(c GasCall, codes []ledger.Hash) (*GasReplayCall, error) {
	msg := []byte(r.rewrite(c.Msg))
	c.Funds = normCoins(c.Funds)
	res := &GasReplayCall{Entry: c.Entry, Handler: c.Handler, HarnessFailed: c.Failed}
	if res.Handler == "" {
		res.Handler = HandlerName(c.Entry, msg)
	}
	if c.Entry == "query" {
		a, err := r.instance(c)
		if err != nil {
			return nil, err
		}
		head := r.chain.store.Head()
		_, gas, qerr := r.chain.engine.Query(r.ctx, ledger.NewState(r.chain.store), contracts.Env{ChainID: head.ChainID, Height: head.Height, TimeMs: head.Time}, a, msg, vm.DefaultQueryGas)
		res.Contract, res.GasUsed, res.CallGas = a.String(), gas, gas
		if qerr != nil {
			res.Code, res.Error = codeOf(qerr), qerr.Error()
			if res.Code == ledger.CodeInternal {
				return nil, qerr
			}
		}
		return res, nil
	}
	k := r.senders[c.Sender]
	res.Sender = k.Address().String()
	var p ledger.Payload
	switch c.Entry {
	case "instantiate":
		label := c.Label
		if label == "" {
			label = "sdktest"
		}
		p = &ledger.ContractInstantiate{CodeID: codes[c.Code], Msg: msg, Label: label, Admin: k.Address(), Funds: c.Funds}
	case "execute":
		a, err := r.instance(c)
		if err != nil {
			return nil, err
		}
		p = &ledger.ContractExecute{Contract: a, Msg: msg, Funds: c.Funds}
	case "migrate":
		a, err := r.instance(c)
		if err != nil {
			return nil, err
		}
		p = &ledger.ContractMigrate{Contract: a, CodeID: codes[c.Code], Msg: msg, Force: c.Force}
	}
	rc, ptx, err := r.run(k, p, c.GasLimit, c.TimeMs)
	if err != nil {
		return nil, err
	}
	res.Code, res.Error, res.GasUsed, res.GasLimit = rc.Code, rc.Error, rc.GasUsed, ptx.Tx.GasLimit
	if c.Entry == "instantiate" && rc.Code == ledger.CodeOK {
		var d struct {
			Address ledger.Address `json:"address"`
		}
		if err := json.Unmarshal(rc.Data, &d); err != nil {
			return nil, fmt.Errorf("kernel: gas replay: instantiate result %q: %w", rc.Data, err)
		}
		r.contracts[c.Contract] = d.Address
	}
	if a, ok := r.contracts[c.Contract]; ok {
		res.Contract = a.String()
	}
	tr, err := r.chain.Trace(r.ctx, ptx.Hash)
	if err != nil {
		return nil, err
	}
	if len(tr.Calls) > 0 {
		res.CallGas, res.LoadGas = tr.Calls[0].GasUsed, tr.Calls[0].LoadGas
		res.LoadCharged = res.LoadGas > 0
	}
	return res, nil
}

// HandlerName names a call in a gas report: instantiate and migrate by
// their entry, execute and query by their message's single key
// ({"increment":{}}: increment), "?" for any other message.
func HandlerName(entry string, msg []byte) string {
	if entry == "instantiate" || entry == "migrate" {
		return entry
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(bytes.TrimSpace(msg), &m) == nil && len(m) == 1 {
		for k := range m {
			return k
		}
	}
	return "?"
}

// normCoins is cs as a transaction carries coins: sorted by denom, each
// denom once, no zero amounts (the harness takes them in any order).
func normCoins(cs ledger.Coins) ledger.Coins {
	var out ledger.Coins
	for _, c := range cs {
		if c.Amount == 0 {
			continue
		}
		i := slices.IndexFunc(out, func(o ledger.Coin) bool { return o.Denom == c.Denom })
		if i >= 0 {
			out[i].Amount += c.Amount
			continue
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y ledger.Coin) int { return strings.Compare(x.Denom, y.Denom) })
	return out
}
