package rome

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"sort"
	"testing"
	"time"

	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
)

// memBase is committed state in a map, with its keys sorted on demand:
// enough for a State in tests and benchmarks.
type memBase struct {
	m      map[string][]byte
	sorted []string // the keys of m in order; nil after a change
}

func (b *memBase) GetState(k []byte) ([]byte, error) { return b.m[string(k)], nil }

func (b *memBase) IterateState(start, end []byte, reverse bool, fn func(k, v []byte) bool) error {
	if b.sorted == nil {
		b.sorted = make([]string, 0, len(b.m))
		for k := range b.m {
			b.sorted = append(b.sorted, k)
		}
		sort.Strings(b.sorted)
	}
	lo := sort.SearchStrings(b.sorted, string(start))
	hi := len(b.sorted)
	if end != nil {
		hi = sort.SearchStrings(b.sorted, string(end))
	}
	if lo >= hi {
		return nil
	}
	keys := b.sorted[lo:hi]
	for i := range keys {
		k := keys[i]
		if reverse {
			k = keys[len(keys)-1-i]
		}
		if !fn([]byte(k), b.m[k]) {
			break
		}
	}
	return nil
}

// commit moves the state's buffered writes into b.
func (b *memBase) commit(st *ledger.State) {
	for _, c := range st.Changes() {
		if c.Value == nil {
			delete(b.m, string(c.Key))
		} else {
			b.m[string(c.Key)] = c.Value
		}
	}
	b.sorted = nil
}

func testKey(t testing.TB, i int) *ledger.PrivateKey {
	t.Helper()
	seed := make([]byte, ledger.SeedSize)
	binary.BigEndian.PutUint64(seed, uint64(i)+77)
	k, err := ledger.PrivateKeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// harness runs a market on an in-memory state, block by block.
type harness struct {
	t      testing.TB
	m      *Market
	base   *memBase
	st     *ledger.State
	codec  *ledger.Codec
	sched  ledger.GasSchedule
	height uint64
	node   *ledger.PrivateKey   // genesis node: issuer and governance member
	nodes  []*ledger.PrivateKey // every genesis node (voting cluster members), node first
	users  []*ledger.PrivateKey
	events []ledger.Event // of every delivered transaction and end of block, in order
	txs    uint64
}

type harnessOpts struct {
	epochBlocks, certPeriod, ttl uint64
	reward                       uint64
	vm                           *vm.VM
	noNodes                      bool
	users                        int    // funded accounts; 0 means 3
	balance                      uint64 // of every kind's token per user; 0 means 1,000,000
	policyGas                    uint64 // 0 means the default
	nodes                        int    // genesis nodes (cluster voters); 0 means 1
	jobs                         func(*jobsGenesis)
	storage                      func(*storageGenesis)
	settleInterval               uint64 // 0 means the default
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	if o.epochBlocks == 0 {
		o.epochBlocks = 2
	}
	if o.certPeriod == 0 {
		o.certPeriod = 1
	}
	if o.ttl == 0 {
		o.ttl = 5
	}
	if o.users == 0 {
		o.users = 3
	}
	if o.balance == 0 {
		o.balance = 1_000_000
	}
	node := testKey(t, 0)
	nodes := []*ledger.PrivateKey{node}
	for i := 1; i < o.nodes; i++ {
		nodes = append(nodes, testKey(t, 1000+i))
	}
	var users []*ledger.PrivateKey
	for i := range o.users {
		users = append(users, testKey(t, i+1))
	}
	g := &ledger.Genesis{ChainID: "rome-test", GenesisTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Denoms: ledger.DefaultDenoms(), Params: ledger.DefaultParams()}
	for _, u := range users {
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: u.Address(), Balances: ledger.Coins{
			{Denom: "uKWTT", Amount: o.balance}, {Denom: "uSTOR", Amount: o.balance}, {Denom: "uTBS", Amount: o.balance}, {Denom: "uTFLP", Amount: o.balance}}})
	}
	rj, gj, err := GenesisSections(node.Public())
	if err != nil {
		t.Fatal(err)
	}
	var r romeGenesis
	_ = json.Unmarshal(rj, &r)
	r.EpochBlocks, r.CertPeriodEpochs, r.RequestTTLEpochs, r.Reward.PerEpoch = o.epochBlocks, o.certPeriod, o.ttl, o.reward
	if o.policyGas > 0 {
		r.PolicyGas = o.policyGas
	}
	if o.jobs != nil {
		o.jobs(&r.Jobs)
	}
	if o.settleInterval > 0 {
		r.SettleInterval = o.settleInterval
	}
	if o.storage != nil {
		o.storage(r.Storage)
	}
	var gv govGenesis
	_ = json.Unmarshal(gj, &gv)
	gv.VotingPeriod = 3
	gv.Members[0].Weight = 1 // contributors soon outweigh the node
	if o.noNodes {
		r.Issuers = nil
	} else {
		for _, n := range nodes {
			g.Nodes = append(g.Nodes, ledger.GenesisNode{PubKey: hex.EncodeToString(n.Public().Bytes())})
		}
	}
	rj, _ = json.Marshal(r)
	gj, _ = json.Marshal(gv)
	g.Extra = map[string]json.RawMessage{"rome": rj, "gov": gj}
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	codec := ledger.NewCodec()
	m, err := New(codec, g, o.vm)
	if err != nil {
		t.Fatal(err)
	}
	base := &memBase{m: map[string][]byte{}}
	st := ledger.NewState(base)
	if err := ledger.ApplyGenesis(st, codec, g); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, m: m, base: base, st: st, codec: codec, sched: ledger.DefaultGasSchedule(), height: 1, node: node, nodes: nodes, users: users}
}

// deliver runs a payload in the current block as a transaction would: on
// error its writes are reverted.
func (h *harness) deliver(from *ledger.PrivateKey, p ledger.Payload) (map[string]any, error) {
	h.t.Helper()
	if err := p.ValidateBasic(); err != nil {
		return nil, err
	}
	snap := h.st.Snapshot()
	h.txs++
	gas := uint64(1_000_000_000)
	if _, ok := p.(*ledger.RomePolicyUpload); ok { // pays for compiling the policy
		gas = vm.MaxUploadGas
	}
	tx := &Tx{St: h.st, Gas: ledger.NewGasMeter(gas), Sched: &h.sched, Height: h.height, TimeMs: int64(h.height) * 1000,
		Sender: from.Address(), TxHash: ledger.HashBytes(binary.BigEndian.AppendUint64(nil, h.txs)), PrevHash: h.prevHash()}
	data, err := h.m.Deliver(context.Background(), tx, p)
	if err != nil {
		h.st.RevertTo(snap)
		return nil, err
	}
	h.events = append(h.events, tx.Events...)
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return out, nil
}

func (h *harness) must(from *ledger.PrivateKey, p ledger.Payload) map[string]any {
	h.t.Helper()
	out, err := h.deliver(from, p)
	if err != nil {
		h.t.Fatalf("%s: %v", p.Kind(), err)
	}
	return out
}

// commit moves the state's writes into the base, as a node commits each
// block: the next block starts with an empty write buffer.
func (h *harness) commit() {
	h.base.commit(h.st)
	h.st = ledger.NewState(h.base)
}

// endBlock closes the current block and checks the supply invariant.
func (h *harness) endBlock() {
	h.t.Helper()
	evs, err := h.m.EndBlock(context.Background(), h.st, Block{ChainID: "rome-test", Height: h.height, TimeMs: int64(h.height) * 1000, PrevHash: h.prevHash()})
	if err != nil {
		h.t.Fatalf("end block %d: %v", h.height, err)
	}
	h.events = append(h.events, evs...)
	h.checkSupply()
	h.height++
}

// prevHash stands for the hash of the block before the current one.
func (h *harness) prevHash() ledger.Hash {
	return ledger.HashBytes(binary.BigEndian.AppendUint64([]byte("block"), h.height-1))
}

// untilEpoch ends blocks until epoch e is the current one.
func (h *harness) untilEpoch(e uint64) {
	h.t.Helper()
	for i := 0; i < 10_000; i++ {
		c, err := h.m.Clock(h.st)
		if err != nil {
			h.t.Fatal(err)
		}
		if c.Epoch >= e {
			return
		}
		h.endBlock()
	}
	h.t.Fatalf("epoch %d never came", e)
}

// untilDrawn is untilEpoch(e), then the end of e's first block when it
// draws the epoch's storage challenges (an epoch of several blocks):
// the current block is the first in which proofs of e are accepted.
func (h *harness) untilDrawn(e uint64) {
	h.t.Helper()
	h.untilEpoch(e)
	c, err := h.m.Clock(h.st)
	if err != nil {
		h.t.Fatal(err)
	}
	if h.height == c.StartHeight && c.StartHeight < c.EndHeight {
		h.endBlock()
	}
}

func (h *harness) balance(a ledger.Address, denom string) uint64 {
	b, err := (&ledger.Accounts{St: h.st, Codec: h.codec}).Balance(a, denom)
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// checkSupply asserts Σ balances (module accounts included) = supply, per denom.
func (h *harness) checkSupply() {
	h.t.Helper()
	sum := map[string]uint64{}
	_ = h.st.Iterate([]byte{0x01}, []byte{0x02}, false, func(k, v []byte) bool {
		var a ledger.Account
		if err := h.codec.Unmarshal(v, &a); err != nil {
			h.t.Fatal(err)
		}
		for _, c := range a.Balances {
			sum[c.Denom] += c.Amount
		}
		return true
	})
	acc := &ledger.Accounts{St: h.st, Codec: h.codec}
	for _, d := range []string{"uTFLP", "uTBS", "uKWTT", "uSTOR"} {
		s, err := acc.Supply(d)
		if err != nil {
			h.t.Fatal(err)
		}
		if s != sum[d] {
			h.t.Fatalf("height %d: supply of %s is %d, balances sum to %d", h.height, d, s, sum[d])
		}
	}
}

func res(kv ...uint64) []ledger.ResourceAmount {
	var out []ledger.ResourceAmount
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, ledger.ResourceAmount{Kind: uint8(kv[i]), Amount: kv[i+1]})
	}
	return out
}

func id(out map[string]any, key string) uint64 {
	v, _ := out[key].(float64)
	return uint64(v)
}
