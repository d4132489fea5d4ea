package kernel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/sos-kernel/sos/contracts"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome"
	"github.com/sos-kernel/sos/vm"
)

// Chain executes transactions and blocks deterministically on top of the
// store. Executing the same block on the same state gives the same receipts,
// gas and state root on every node: execution reads only the state, the
// block header (height, time) and the transactions.
type Chain struct {
	store   *ledger.Store
	codec   *ledger.Codec
	genesis *ledger.Genesis
	denoms  *ledger.Denoms
	sched   ledger.GasSchedule
	params  ledger.Params
	engine  *contracts.Engine // nil: contract transactions are refused
	// market runs ROME payloads and epochs; marketErr is a bad genesis
	// rome/gov section, reported by InitGenesis.
	// verified finds a transaction this node admitted (decoded and
	// signature-checked) by hash; nil: none (see DecodeAndVerify).
	verified func(ledger.Hash) *PendingTx

	market    *rome.Market
	marketErr error
	// engineErr is a contract engine that could not be made (a VM whose
	// module cache cannot pin the warm set), reported by InitGenesis.
	engineErr error

	// execMu serializes building, executing and committing blocks: the
	// state tree must not compute a root while a commit adopts a new one.
	execMu sync.Mutex

	// keys caches the parsed public keys of senders whose signatures
	// verified (parsing expands the ML-DSA matrix, which costs about as much
	// as a verification), least recently used out, within KeyCacheBytes.
	keys *ledger.KeyCache
}

// KeyCacheBytes bounds a chain's cache of parsed public keys: ≈1,500
// senders at PublicKeyMemBytes each. A sender beyond it costs one key
// expansion per batch it appears in, not a byte more of memory.
const KeyCacheBytes = 64 << 20

// NewChain wires execution over an opened store and its genesis. engine
// runs contracts; with nil, contract transactions fail (transfer-only tests).
func NewChain(store *ledger.Store, g *ledger.Genesis, engine *contracts.Engine) *Chain {
	market, merr := rome.New(store.Codec(), g, nil) // NewChainWithVM gives it a VM for policies
	return &Chain{
		store: store, codec: store.Codec(), genesis: g, denoms: g.DenomSet(),
		sched: ledger.DefaultGasSchedule(), params: g.Params, engine: engine,
		keys: ledger.NewKeyCache(KeyCacheBytes), market: market, marketErr: merr,
	}
}

// VMs are the two VMs a chain executes with: one for contracts and one for
// ROME policies, whose limits (vm.Policies: memory, input and result size,
// gas) fit a whole market per call.
type VMs struct {
	Contracts, Policies *vm.VM
}

// NewVMs creates both VMs from one configuration (its Purpose is set for
// each). Close them with Close.
//
// A zero cfg.ModuleCacheSize pins at most the vm default's PinCapacity;
// a node sizes it with ModuleCacheSize for its chain's warm set.
func NewVMs(ctx context.Context, cfg vm.Config) (VMs, error) {
	cfg.Purpose = vm.Contracts
	c, err := vm.New(ctx, cfg)
	if err != nil {
		return VMs{}, err
	}
	cfg.Purpose = vm.Policies
	p, err := vm.New(ctx, cfg)
	if err != nil {
		c.Close(ctx)
		return VMs{}, err
	}
	return VMs{Contracts: c, Policies: p}, nil
}

// Close closes both VMs.
func (m VMs) Close(ctx context.Context) error {
	return errors.Join(m.Contracts.Close(ctx), m.Policies.Close(ctx))
}

// ModuleCacheSize is the module cache a node's VMs need for a chain with
// params p: the contracts' warm set pinned, plus vm.MinUnpinnedModules for
// everything else, and never below vm.DefaultModuleCacheSize.
func ModuleCacheSize(p ledger.Params) int {
	return max(vm.DefaultModuleCacheSize, p.WarmSetSize()+vm.MinUnpinnedModules)
}

// NewChainWithVM is the chain every node runs: contracts and policies on
// the given VMs. (The node and the conformance runner build their chains
// with it, so a vector exercises exactly what a node executes.) A VM that
// cannot pin the chain's warm set makes InitGenesis fail.
func NewChainWithVM(store *ledger.Store, g *ledger.Genesis, machines VMs) *Chain {
	engine, err := contracts.New(machines.Contracts, store.Codec(), g.DenomSet(), g.Params.WarmSetSize())
	c := NewChain(store, g, engine)
	c.engineErr = err
	c.market, c.marketErr = rome.New(store.Codec(), g, machines.Policies)
	return c
}

// syncWarm pins the committed warm code set in the contracts VM (see
// contracts.Engine.SyncWarm): after every commit, and at start.
func (c *Chain) syncWarm() error {
	if c.engine == nil {
		return nil
	}
	if err := c.engine.SyncWarm(ledger.NewState(c.store)); err != nil {
		return fmt.Errorf("kernel: %w", err)
	}
	return nil
}

// Engine returns the contract engine (nil when contracts are off).
func (c *Chain) Engine() *contracts.Engine { return c.engine }

// Store returns the ledger store.
func (c *Chain) Store() *ledger.Store { return c.store }

// Codec returns the canonical codec.
func (c *Chain) Codec() *ledger.Codec { return c.codec }

// Genesis returns the genesis document.
func (c *Chain) Genesis() *ledger.Genesis { return c.genesis }

// Denoms returns the chain's tokens.
func (c *Chain) Denoms() *ledger.Denoms { return c.denoms }

// Params returns the chain parameters.
func (c *Chain) Params() ledger.Params { return c.params }

// InitGenesis commits block 0 (the genesis state) if the store is empty, and
// checks that an existing store was made from the same genesis otherwise.
func (c *Chain) InitGenesis(doc []byte) error {
	if c.marketErr != nil {
		return c.marketErr
	}
	if c.engineErr != nil {
		return c.engineErr
	}
	head := c.store.Head()
	docHash := ledger.GenesisDocHash(doc)
	if head.ChainID != "" {
		stored, err := c.store.GenesisDoc()
		if err != nil {
			return fmt.Errorf("kernel: read stored genesis: %w", err)
		}
		if ledger.GenesisDocHash(stored) != docHash {
			return fmt.Errorf("kernel: genesis.json differs from the genesis this node's data was created with (chain %s)", head.ChainID)
		}
		// A restart: the committed warm set is pinned again; its modules
		// load on their first calls, at this node's cost.
		return c.syncWarm()
	}
	st := ledger.NewState(c.store)
	if err := ledger.ApplyGenesis(st, c.codec, c.genesis); err != nil {
		return err
	}
	prep, err := c.store.Prepare(st)
	if err != nil {
		return err
	}
	b := &ledger.Block{Header: ledger.Header{
		Version: ledger.BlockVersion, ChainID: c.genesis.ChainID, Height: 0,
		Time: c.genesis.GenesisTime.UnixMilli(), PrevHash: docHash,
		TxRoot: ledger.MerkleRoot(nil), ReceiptRoot: ledger.MerkleRoot(nil), StateRoot: prep.Root(),
	}}
	if err := c.store.SetGenesisDoc(doc); err != nil {
		return err
	}
	if err := c.store.Commit(b, nil, prep); err != nil {
		return fmt.Errorf("kernel: commit genesis: %w", err)
	}
	return nil
}

// PendingTx is a decoded transaction with its wire bytes, hash and the key
// that verified it.
type PendingTx struct {
	Tx     *ledger.Tx
	Raw    []byte
	Hash   ledger.Hash
	PubKey ledger.PublicKey
}

// ErrTxRejected marks a transaction that cannot be included at all (wrong
// nonce, cannot pay the maximum fee): it gets no receipt and pays nothing.
var ErrTxRejected = errors.New("transaction rejected")

// resolveKey returns the key that must verify tx: the cached key of its
// sender, else the key the tx carries, else the one stored on chain. It
// caches nothing: a key enters the cache only once a signature verified
// with it (verifyWith), so a refused transaction leaves nothing behind.
func (c *Chain) resolveKey(st *ledger.State, tx *ledger.Tx) (ledger.PublicKey, error) {
	if pk, ok := c.keys.Get(tx.Sender); ok {
		return pk, nil
	}
	raw := tx.PubKey
	if len(raw) == 0 {
		var err error
		acc := &ledger.Accounts{St: st, Codec: c.codec}
		if raw, err = acc.PubKey(tx.Sender); err != nil {
			return ledger.PublicKey{}, err
		}
		if raw == nil {
			return ledger.PublicKey{}, fmt.Errorf("kernel: %s has no public key on chain yet; its first transaction must carry it: %w", tx.Sender, ErrTxRejected)
		}
	}
	return ledger.ParsePublicKey(raw)
}

// batchKeys parses, once per sender and on all cores, the public keys of
// the senders of one batch that are not in the cache: the key a tx of the
// batch carries (so a sender's later transactions verify even when checked
// before or beside the one that carries it; ValidateBasic has checked that
// a carried key hashes to its sender, so it is the only key that can sign
// for it), else the key stored on chain, read from st. Reading is serial
// (a State is not safe for concurrent use), parsing parallel: a block from
// many senders beyond the cache costs one expansion per sender, spread over
// the cores. The map serves this batch only and is dropped with it; a
// sender with no key anywhere is left to resolveKey to report.
func (c *Chain) batchKeys(st *ledger.State, ptxs []*PendingTx) map[ledger.Address]ledger.PublicKey {
	type want struct {
		addr ledger.Address
		raw  []byte
	}
	var wants []want
	idx := make(map[ledger.Address]int)
	for _, p := range ptxs {
		if p == nil || !p.PubKey.IsZero() {
			continue
		}
		i, ok := idx[p.Tx.Sender]
		if !ok {
			if _, cached := c.keys.Get(p.Tx.Sender); cached {
				idx[p.Tx.Sender] = -1
				continue
			}
			i = len(wants)
			idx[p.Tx.Sender] = i
			wants = append(wants, want{addr: p.Tx.Sender})
		}
		if i >= 0 && wants[i].raw == nil && len(p.Tx.PubKey) > 0 {
			wants[i].raw = p.Tx.PubKey
		}
	}
	acc := &ledger.Accounts{St: st, Codec: c.codec}
	for i := range wants {
		if wants[i].raw == nil {
			wants[i].raw, _ = acc.PubKey(wants[i].addr) // an error or none: resolveKey reports it
		}
	}
	keys := make([]ledger.PublicKey, len(wants))
	parallel(len(wants), func(i int) {
		if wants[i].raw != nil {
			keys[i], _ = ledger.ParsePublicKey(wants[i].raw) // one that does not parse: resolveKey reports it
		}
	})
	out := make(map[ledger.Address]ledger.PublicKey, len(keys))
	for _, k := range keys {
		if !k.IsZero() {
			out[k.Address()] = k
		}
	}
	return out
}

// keyFor is resolveKey with the keys batchKeys found for the batch first.
func (c *Chain) keyFor(st *ledger.State, tx *ledger.Tx, batch map[ledger.Address]ledger.PublicKey) (ledger.PublicKey, error) {
	if pk, ok := batch[tx.Sender]; ok {
		return pk, nil
	}
	return c.resolveKey(st, tx)
}

// verifyWith checks ptx's chain id and signature against pk; only then is
// pk remembered, in the cache and on ptx.
func (c *Chain) verifyWith(ptx *PendingTx, pk ledger.PublicKey) error {
	if err := c.codec.VerifyTxRaw(ptx.Tx, ptx.Raw, c.genesis.ChainID, pk); err != nil {
		return err
	}
	ptx.PubKey = pk
	c.keys.Put(pk)
	return nil
}

// Verify decodes nothing: it checks chain id and signature of a decoded tx,
// reading the sender's key from st when the tx does not carry it.
func (c *Chain) Verify(st *ledger.State, ptx *PendingTx) error {
	pk, err := c.resolveKey(st, ptx.Tx)
	if err != nil {
		return err
	}
	return c.verifyWith(ptx, pk)
}

// IntrinsicGas is charged before the payload runs: base, bytes and the
// signature check, plus storing the public key on an account's first tx.
func (c *Chain) IntrinsicGas(ptx *PendingTx) uint64 {
	g := c.sched.TxBase + c.sched.TxPerByte*uint64(len(ptx.Raw)) + c.sched.SigVerify
	return g
}

// BlockEnv is what execution may know about the block: nothing else.
type BlockEnv struct {
	ChainID  string
	Height   uint64
	TimeMs   int64
	PrevHash ledger.Hash // the previous block's hash (draws job challenge committees)
}

// Executor applies transactions of one block to a State.
type Executor struct {
	ctx   context.Context
	chain *Chain
	st    *ledger.State
	env   BlockEnv
	names map[ledger.Address]string // bech32 forms already made in this block
	// endEvents are the events of the end of the block (job deadlines,
	// bonds returned): they belong to no transaction.
	endEvents []ledger.Event
	trace     *traceState // non-nil while applyTraced runs
	// contracts are the contracts each transaction called, by index in
	// the block, for the transaction index (ledger.Prepared.IndexContracts).
	contracts map[uint32][]ledger.Address
	index     uint32 // of the transaction Apply runs
}

// indexContracts hands the contracts each transaction called to the
// block's prepared commit.
func (e *Executor) indexContracts(p *ledger.Prepared) {
	for i, addrs := range e.contracts {
		p.IndexContracts(i, addrs)
	}
}

// addr is a's bech32 form for receipt events. A block repeats its senders,
// and encoding costs more than the rest of a transfer's event.
func (e *Executor) addr(a ledger.Address) string {
	if s, ok := e.names[a]; ok {
		return s
	}
	if e.names == nil || len(e.names) > 1<<14 {
		e.names = map[ledger.Address]string{}
	}
	s := a.String()
	e.names[a] = s
	return s
}

// NewExecutor starts executing a block at env on top of st. ctx bounds
// contract calls (cancellation only; gas bounds their length).
func (c *Chain) NewExecutor(ctx context.Context, st *ledger.State, env BlockEnv) *Executor {
	return &Executor{ctx: ctx, chain: c, st: st, env: env}
}

// State returns the executor's state buffer.
func (e *Executor) State() *ledger.State { return e.st }

// Apply executes one verified transaction. It returns ErrTxRejected (and
// changes nothing) when the tx cannot be included; otherwise a receipt,
// whose Code says whether the payload succeeded. A failed payload keeps the
// nonce increment and the fee and reverts everything else.
func (e *Executor) Apply(ptx *PendingTx, index uint32) (ledger.Receipt, error) {
	c, tx := e.chain, ptx.Tx
	free := &ledger.Accounts{St: e.st, Codec: c.codec}
	rcpt := ledger.Receipt{TxHash: ptx.Hash, Height: e.env.Height, Index: index}
	e.index = index

	acc, _, err := free.Get(tx.Sender)
	if err != nil {
		return rcpt, err
	}
	if tx.Nonce != acc.Nonce {
		return rcpt, fmt.Errorf("kernel: tx %s: nonce %d, account expects %d: %w", ptx.Hash, tx.Nonce, acc.Nonce, ErrTxRejected)
	}
	if !c.denoms.IsBase(tx.GasPrice.Denom) {
		return rcpt, fmt.Errorf("kernel: tx %s: gas price denom %q: %w: %w", ptx.Hash, tx.GasPrice.Denom, ledger.ErrUnknownDenom, ErrTxRejected)
	}
	if max := c.params.MaxGas(tx.Payload); tx.GasLimit > max {
		return rcpt, fmt.Errorf("kernel: tx %s: gas limit %d > max %d: %w", ptx.Hash, tx.GasLimit, max, ErrTxRejected)
	}
	intrinsic := c.IntrinsicGas(ptx)
	// An account's first transaction (nonce 0) stores its key whatever its
	// payload does, so nonce > 0 means the key is on chain.
	hasKey := acc.Nonce > 0
	if !hasKey {
		if len(tx.PubKey) == 0 {
			return rcpt, fmt.Errorf("kernel: tx %s: first tx of %s must carry its public key: %w", ptx.Hash, tx.Sender, ErrTxRejected)
		}
		intrinsic += c.sched.StorePubKeyPer*uint64(len(tx.PubKey)) + c.sched.WriteBase
	}
	if tx.GasLimit < intrinsic {
		return rcpt, fmt.Errorf("kernel: tx %s: gas limit %d below intrinsic gas %d: %w", ptx.Hash, tx.GasLimit, intrinsic, ErrTxRejected)
	}
	maxFee := tx.MaxFee()
	if acc.Balances.AmountOf(tx.GasPrice.Denom) < maxFee {
		return rcpt, fmt.Errorf("kernel: tx %s: balance %s cannot pay max fee %s: %w: %w", ptx.Hash,
			amountText(c.denoms, acc.Balances.AmountOf(tx.GasPrice.Denom), tx.GasPrice.Denom), amountText(c.denoms, maxFee, tx.GasPrice.Denom),
			ledger.ErrInsufficientFunds, ErrTxRejected)
	}

	// Reserve the maximum fee and consume the nonce: these survive a failed payload.
	acc.Nonce++
	if acc.Balances, err = acc.Balances.Sub(ledger.Coin{Denom: tx.GasPrice.Denom, Amount: maxFee}); err != nil {
		return rcpt, err
	}
	if err := free.Put(tx.Sender, acc); err != nil {
		return rcpt, err
	}
	if !hasKey {
		if err := free.SetPubKey(tx.Sender, tx.PubKey); err != nil {
			return rcpt, err
		}
	}

	gas := ledger.NewGasMeter(tx.GasLimit)
	if e.trace != nil {
		gas.Record()
		e.trace.meter = gas
	}
	_ = gas.Consume(intrinsic, "intrinsic") // checked above
	snap := e.st.Snapshot()
	events, data, perr := e.runPayload(ptx, gas)
	if perr != nil {
		if codeOf(perr) == ledger.CodeInternal {
			// Not the transaction's fault (storage failure, corrupt state):
			// the whole block must fail rather than record a node-specific result.
			return rcpt, fmt.Errorf("kernel: tx %s: %w", ptx.Hash, perr)
		}
		e.st.RevertTo(snap)
		rcpt.Code = codeOf(perr)
		rcpt.Error = perr.Error()
		events = nil
		data = nil
	}
	rcpt.GasUsed = gas.Used()
	fee, err := tx.GasPrice.Fee(rcpt.GasUsed)
	if err != nil {
		return rcpt, err
	}
	feeCoin := ledger.Coin{Denom: tx.GasPrice.Denom, Amount: fee}
	if refund := maxFee - fee; refund > 0 {
		if err := free.Credit(tx.Sender, ledger.Coins{{Denom: tx.GasPrice.Denom, Amount: refund}}); err != nil {
			return rcpt, err
		}
	}
	if fee > 0 {
		if err := free.Credit(ledger.FeeCollector, ledger.Coins{feeCoin}); err != nil {
			return rcpt, err
		}
	}
	rcpt.Fee = feeCoin
	rcpt.Events = append(events, ledger.NewEvent("fee", "payer", e.addr(tx.Sender), "amount", feeCoin.String(), "gas_used", fmt.Sprint(rcpt.GasUsed)))
	rcpt.Data = data
	return rcpt, nil
}

// runPayload executes the payload with metered state access.
func (e *Executor) runPayload(ptx *PendingTx, gas *ledger.GasMeter) ([]ledger.Event, []byte, error) {
	c, tx := e.chain, ptx.Tx
	acc := &ledger.Accounts{St: e.st, Codec: c.codec, Gas: gas, Sched: &c.sched}
	switch p := tx.Payload.(type) {
	case *ledger.Transfer:
		for _, coin := range p.Amount {
			if !c.denoms.IsBase(coin.Denom) {
				return nil, nil, fmt.Errorf("kernel: transfer: %w %q", ledger.ErrUnknownDenom, coin.Denom)
			}
		}
		if err := acc.Transfer(tx.Sender, p.To, p.Amount); err != nil {
			return nil, nil, err
		}
		amount := p.Amount.String()
		ev := ledger.NewEvent("transfer", "from", e.addr(tx.Sender), "to", e.addr(p.To), "amount", amount)
		if err := gas.Consume(c.sched.EventBase+c.sched.EventPerByte*uint64(len(amount)+2*64), "event"); err != nil {
			return nil, nil, err
		}
		return []ledger.Event{ev}, nil, nil
	case *ledger.ContractUpload, *ledger.ContractInstantiate, *ledger.ContractExecute, *ledger.ContractMigrate:
		return e.runContract(ptx, gas)
	}
	if rome.IsMarketPayload(tx.Payload) {
		return e.runMarket(ptx, gas)
	}
	if isClusterPayload(tx.Payload) {
		return e.runCluster(ptx, gas)
	}
	return nil, nil, fmt.Errorf("kernel: payload %s: %w", tx.Payload.Kind(), ledger.ErrUnknownKind)
}

// ErrContractsDisabled is returned for contract transactions on a chain
// built without a contract engine.
var ErrContractsDisabled = errors.New("kernel: contracts are not enabled on this node")

func (e *Executor) runContract(ptx *PendingTx, gas *ledger.GasMeter) ([]ledger.Event, []byte, error) {
	c, tx := e.chain, ptx.Tx
	if c.engine == nil {
		return nil, nil, ErrContractsDisabled
	}
	ctx := &contracts.Tx{St: e.st, Gas: gas, ChainID: e.env.ChainID, Height: e.env.Height, TimeMs: e.env.TimeMs, Sender: tx.Sender, TxHash: ptx.Hash}
	if e.trace != nil {
		ctx.Trace = e.trace.calls
	}
	var touched []ledger.Address
	ctx.Touched = &touched
	defer func() {
		if len(touched) > 0 {
			if e.contracts == nil {
				e.contracts = map[uint32][]ledger.Address{}
			}
			e.contracts[e.index] = touched
		}
	}()
	var data []byte
	var err error
	switch p := tx.Payload.(type) {
	case *ledger.ContractUpload:
		var id ledger.Hash
		if id, err = c.engine.Upload(e.ctx, ctx, p.Wasm, p.Schema); err == nil {
			data, err = json.Marshal(map[string]any{"code_id": id.String(), "size": len(p.Wasm)})
		}
	case *ledger.ContractInstantiate:
		if err = c.checkDenoms(p.Funds); err != nil {
			break
		}
		var addr ledger.Address
		var res []byte
		if addr, res, err = c.engine.Instantiate(e.ctx, ctx, p.CodeID, p.Msg, p.Label, p.Admin, p.Funds); err == nil {
			data, err = json.Marshal(map[string]any{"address": addr.String(), "data": rawJSON(res)})
		}
	case *ledger.ContractExecute:
		if err = c.checkDenoms(p.Funds); err != nil {
			break
		}
		data, err = c.engine.Execute(e.ctx, ctx, p.Contract, p.Msg, p.Funds)
	case *ledger.ContractMigrate:
		data, err = c.engine.Migrate(e.ctx, ctx, p.Contract, p.CodeID, p.Msg, p.Force)
	}
	if err != nil {
		return nil, nil, err
	}
	return ctx.Events, data, nil
}

func (c *Chain) checkDenoms(cs ledger.Coins) error {
	for _, coin := range cs {
		if !c.denoms.IsBase(coin.Denom) {
			return fmt.Errorf("kernel: funds: %w %q", ledger.ErrUnknownDenom, coin.Denom)
		}
	}
	return nil
}

// rawJSON embeds a contract's JSON answer as is, or null when it is empty
// or not JSON.
func rawJSON(b []byte) json.RawMessage {
	if len(b) == 0 || !json.Valid(b) {
		return json.RawMessage("null")
	}
	return b
}

// codeOf classifies a payload error into a receipt code.
func codeOf(err error) ledger.Code {
	if c, ok := rome.Code(err); ok {
		return c
	}
	switch {
	case errors.Is(err, ledger.ErrOutOfGas):
		return ledger.CodeOutOfGas
	case errors.Is(err, ledger.ErrInsufficientFunds):
		return ledger.CodeInsufficientFunds
	case errors.Is(err, ledger.ErrUnknownDenom):
		return ledger.CodeUnknownDenom
	case errors.Is(err, ledger.ErrOverflow):
		return ledger.CodeOverflow
	case errors.Is(err, ledger.ErrUnknownKind), errors.Is(err, vm.ErrInvalidModule), errors.Is(err, ErrContractsDisabled),
		errors.Is(err, contracts.ErrSchema), errors.Is(err, contracts.ErrContractNameChanged):
		return ledger.CodeInvalidPayload
	case errors.Is(err, contracts.ErrUnauthorized), errors.Is(err, ErrNotMember):
		return ledger.CodeUnauthorized
	case errors.Is(err, ErrNoSuchMember):
		return ledger.CodeNotFound
	case errors.Is(err, ErrMembership):
		return ledger.CodeInvalidPayload
	case errors.Is(err, contracts.ErrNoCode), errors.Is(err, contracts.ErrNoContract), errors.Is(err, contracts.ErrNoMigrate):
		return ledger.CodeNotFound
	case errors.Is(err, contracts.ErrContract), errors.Is(err, contracts.ErrReentrancy), errors.Is(err, vm.ErrReadOnly):
		return ledger.CodeContractError
	case errors.Is(err, vm.ErrTrap):
		return ledger.CodeContractTrap
	case errors.Is(err, vm.ErrLimit), errors.Is(err, vm.ErrCallDepth):
		return ledger.CodeLimitExceeded
	case errors.Is(err, vm.ErrInsufficientFunds):
		return ledger.CodeInsufficientFunds
	}
	return ledger.CodeInternal
}
