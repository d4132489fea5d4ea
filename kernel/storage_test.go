package kernel

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome"
)

// storageGenesis is a market genesis for storage tests: nodes (funded:
// they pay for their proofs), users, epochs of epochBlocks, 1 KiB storage
// units, two segments per challenge, one grace epoch, 10 % slashing and
// repair after repairMisses epochs with a miss.
func storageGenesis(t *testing.T, nodes []*ledger.PrivateKey, addrs []string, users []*ledger.PrivateKey, epochBlocks, repairMisses uint64) []byte {
	t.Helper()
	g := &ledger.Genesis{ChainID: "storage-test", GenesisTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Denoms: ledger.DefaultDenoms(), Params: ledger.DefaultParams()}
	funds := ledger.Coins{{Denom: "uKWTT", Amount: 1_000_000_000}, {Denom: "uTFLP", Amount: 1_000_000_000_000}}
	for i, k := range nodes {
		gn := ledger.GenesisNode{PubKey: hex.EncodeToString(k.Public().Bytes())}
		if addrs != nil {
			gn.Addr = addrs[i]
		}
		g.Nodes = append(g.Nodes, gn)
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: k.Address(), Balances: funds})
	}
	for _, u := range users {
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: u.Address(), Balances: funds})
	}
	rj, gj, err := rome.GenesisSections(nodes[0].Public())
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	_ = json.Unmarshal(rj, &r)
	r["epoch_blocks"], r["cert_period_epochs"], r["request_ttl_epochs"] = epochBlocks, 1, 1000
	r["storage"] = map[string]any{"bytes_per_unit": 1024, "segments": 2, "grace_epochs": 1, "slash_bps": 1000,
		"repair_misses": repairMisses, "denom": "uTFLP"}
	rj, _ = json.Marshal(r)
	g.Extra = map[string]json.RawMessage{"rome": rj, "gov": gj}
	doc, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func seededBytes(n int, seed uint64) []byte {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// waitFor polls cond every 20 ms until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func holderOf(w *client.BlobWhere, lease uint64) *client.BlobHolder {
	for i := range w.Pins {
		for j := range w.Pins[i].Holders {
			if h := &w.Pins[i].Holders[j]; h.LeaseID == lease {
				return h
			}
		}
	}
	return nil
}

// blobFile is where a node's store keeps a blob's content.
func blobFile(n *Node, id string) string {
	return filepath.Join(n.opts.Home, BlobsDir, id[:2], id)
}

// TestStorageLeaseOnOneNode is the storage path on one node, through the
// API and the node's storage worker: a storage offer with a bond whose
// node is this one, a request for one replica, a blob uploaded and
// pinned; the node proves it epoch after epoch by itself (last proof
// height in GET /v1/blobs/{id}/where), settlement pays proven bytes and
// the blob comes back byte for byte. Then the holder's copy is damaged on
// disk: its next challenge fails, the node declares the blob missing, the
// epoch is not paid for it, the bond is slashed and the miss counts.
func TestStorageLeaseOnOneNode(t *testing.T) {
	node := seededKey(t, 0)
	prov, cons := seededKey(t, 1000), seededKey(t, 1001)
	doc := storageGenesis(t, []*ledger.PrivateKey{node}, nil, []*ledger.PrivateKey{prov, cons}, 10, 100)
	tn := openTestChain(t, t.TempDir(), doc, []*ledger.PrivateKey{prov, cons})
	cfg := DefaultConfig()
	cfg.BlockInterval = Duration{50 * time.Millisecond}
	n, c := startTestNode(t, tn, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b, err := txbuild.New(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	send := func(k *ledger.PrivateKey, p ledger.Payload) *client.SubmitResult {
		t.Helper()
		res, err := b.Send(ctx, k, p, txbuild.Options{Wait: true})
		if err != nil {
			t.Fatalf("%s: %v", p.Kind(), err)
		}
		return res
	}
	send(prov, &ledger.RomeOffer{Capacity: []ledger.ResourceAmount{{Kind: 4, Amount: 500}}, Price: []ledger.ResourceAmount{{Kind: 4, Amount: 2}},
		Region: "eu-west", Node: node.Address(), Bond: ledger.Coins{{Denom: "uTFLP", Amount: 50_000_000}}})
	send(cons, &ledger.RomeRequest{Demand: []ledger.ResourceAmount{{Kind: 4, Amount: 200}}, MaxPrice: []ledger.ResourceAmount{{Kind: 4, Amount: 3}},
		Epochs: 40, Replicas: 1, Region: "eu-west"})
	var lease client.RomeLease
	waitFor(t, ctx, "a storage lease", func() bool {
		ls, err := c.RomeLeases(ctx, client.RomeFilter{Status: "active"})
		if err == nil && len(ls) > 0 {
			lease = ls[0]
			return true
		}
		return false
	})
	data := seededBytes(100_000, 1)
	put, err := c.PutBlob(ctx, bytes.NewReader(data), int64(len(data)), "")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := ledger.ParseBlobID(put.ID)
	send(cons, &ledger.BlobPin{RequestID: lease.RequestID, Blob: ledger.BlobRef{ID: id, Size: put.Size}})
	var proofHeight uint64
	waitFor(t, ctx, "a committed storage proof", func() bool {
		w, err := c.BlobWhere(ctx, put.ID)
		if err != nil {
			return false
		}
		if h := holderOf(w, lease.ID); h != nil && h.LastProofHeight > 0 {
			proofHeight = h.LastProofHeight
			return true
		}
		return false
	})
	// It keeps proving by itself, and is paid for the proven bytes:
	// ⌈100,000 / 1,024⌉ = 98 units × 2 uTFLP per epoch.
	waitFor(t, ctx, "proofs in later epochs, paid", func() bool {
		w, _ := c.BlobWhere(ctx, put.ID)
		l, _ := c.RomeLease(ctx, lease.ID)
		h := holderOf(w, lease.ID)
		return h != nil && h.LastProofHeight > proofHeight && l != nil && len(l.Paid) > 0
	})
	l, _ := c.RomeLease(ctx, lease.ID)
	if paid, _ := ledgerAmount(l.Paid, "uTFLP"); paid%(98*2) != 0 {
		t.Fatalf("lease paid %v: not a multiple of 98 units × 2", l.Paid)
	}
	var got bytes.Buffer
	if _, err := c.GetBlob(ctx, put.ID, int64(len(data)), &got); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("blob back: %v (%d bytes)", err, got.Len())
	}
	if v := metricOf(n.storage.m.proofs.WithLabelValues("proven")); v < 2 {
		t.Fatalf("sos_storage_proofs_total{result=proven} = %v", v)
	}

	// The disk loses the blob's only chunk: the next challenge fails.
	if err := os.WriteFile(blobFile(n, put.ID), make([]byte, len(data)), 0o644); err != nil {
		t.Fatal(err)
	}
	var missEpoch uint64
	waitFor(t, ctx, "a miss", func() bool {
		w, err := c.BlobWhere(ctx, put.ID)
		if err != nil {
			return false
		}
		h := holderOf(w, lease.ID)
		missEpoch = h.LastMissEpoch
		return h.Misses > 0
	})
	waitFor(t, ctx, "the missed epoch settled", func() bool {
		mk, err := c.RomeMarket(ctx)
		return err == nil && mk.Epoch > missEpoch+1
	})
	u, err := c.LeaseUsage(ctx, lease.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range u.Epochs {
		if e.Epoch == missEpoch && (e.StorageDue != uint64(len(data)) || e.StorageProven != 0) {
			t.Fatalf("epoch %d: storage %+v, want due %d, proven 0", e.Epoch, e, len(data))
		}
	}
	p, err := c.Provider(ctx, prov.Address().String())
	if err != nil || p.StorageMissed == 0 || p.StorageProven == 0 {
		t.Fatalf("provider record %+v, %v", p, err)
	}
	if v := metricOf(n.storage.m.proofs.WithLabelValues("declared_missing")); v < 1 {
		t.Fatalf("sos_storage_proofs_total{result=declared_missing} = %v", v)
	}
	off, _ := c.RomeOffer(ctx, lease.OfferID)
	if len(off.Slashed) == 0 {
		t.Fatalf("no bond slashed: %+v", off)
	}
}

func ledgerAmount(cs []client.Coin, denom string) (uint64, bool) {
	for _, c := range cs {
		if c.Denom == denom {
			v, err := parseUint(c.Amount)
			return v, err == nil
		}
	}
	return 0, false
}

func parseUint(s string) (uint64, error) {
	var v uint64
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, os.ErrInvalid
		}
		v = v*10 + uint64(r-'0')
	}
	return v, nil
}

// TestMeterReadingsSettleEnergy is the meter path through the API: a
// provider registers its energy meter; a request that requires a meter
// for energy is paid, epoch by epoch, what the device's signed readings
// measured (submitted by anyone) — and nothing for an epoch without
// readings; a reading signed by another key is refused.
func TestMeterReadingsSettleEnergy(t *testing.T) {
	node := seededKey(t, 0)
	prov, cons, anyone := seededKey(t, 1000), seededKey(t, 1001), seededKey(t, 1002)
	dev := seededKey(t, 3000)
	doc := storageGenesis(t, []*ledger.PrivateKey{node}, nil, []*ledger.PrivateKey{prov, cons, anyone}, 10, 100)
	tn := openTestChain(t, t.TempDir(), doc, []*ledger.PrivateKey{prov, cons, anyone})
	cfg := DefaultConfig()
	cfg.BlockInterval = Duration{20 * time.Millisecond}
	_, c := startTestNode(t, tn, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := txbuild.New(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	send := func(k *ledger.PrivateKey, p ledger.Payload) (*client.SubmitResult, error) {
		return b.Send(ctx, k, p, txbuild.Options{Wait: true})
	}
	if _, err := send(prov, &ledger.MeterRegister{Resource: rome.KindEnergy, PubKey: dev.Public().Bytes()}); err != nil {
		t.Fatal(err)
	}
	send(prov, &ledger.RomeOffer{Capacity: []ledger.ResourceAmount{{Kind: 3, Amount: 50}}, Price: []ledger.ResourceAmount{{Kind: 3, Amount: 7}}})
	send(cons, &ledger.RomeRequest{Demand: []ledger.ResourceAmount{{Kind: 3, Amount: 10}}, MaxPrice: []ledger.ResourceAmount{{Kind: 3, Amount: 7}},
		Epochs: 20, MeterKinds: 1 << (rome.KindEnergy - 1)})
	ms, err := c.Meters(ctx, prov.Address().String())
	if err != nil || len(ms) != 1 || ms[0].Kind != "energy" {
		t.Fatalf("meters %+v, %v", ms, err)
	}
	var lease client.RomeLease
	waitFor(t, ctx, "an energy lease", func() bool {
		ls, err := c.RomeLeases(ctx, client.RomeFilter{Status: "active"})
		if err == nil && len(ls) > 0 {
			lease = ls[0]
			mk, err := c.RomeMarket(ctx)
			return err == nil && mk.Epoch >= lease.StartEpoch
		}
		return false
	})
	codec := ledger.NewCodec()
	var seq, counter uint64 = 0, 5_000_000
	read := func(key *ledger.PrivateKey, epoch, add uint64) error {
		seq++
		counter += add
		st := ledger.MeterStatement{LeaseID: lease.ID, Epoch: epoch, Kind: rome.KindEnergy, Counter: counter, Seq: seq}
		sig, err := ledger.SignMeterStatement(codec, key, "storage-test", &st)
		if err != nil {
			t.Fatal(err)
		}
		_, err = send(anyone, &ledger.MeterReading{MeterID: ms[0].MeterID, Statement: st, Signature: sig})
		return err
	}
	mk, _ := c.RomeMarket(ctx)
	e := mk.Epoch
	if err := read(dev, e, 0); err != nil { // baseline
		t.Fatal(err)
	}
	if err := read(dev, e, 4_200_000); err != nil { // 4.2 kJ: ⌈4.2⌉ = 5 units
		t.Fatal(err)
	}
	if err := read(seededKey(t, 3001), e, 1); err == nil || !strings.Contains(err.Error(), "not signed by its device") {
		t.Fatalf("a reading signed by another key: %v", err)
	}
	seq-- // the refused reading did not count
	waitFor(t, ctx, "epochs settled", func() bool {
		mk, err := c.RomeMarket(ctx)
		return err == nil && mk.Epoch >= e+3
	})
	l, _ := c.RomeLease(ctx, lease.ID)
	if paid, _ := ledgerAmount(l.Paid, "uKWTT"); paid != 5*7 {
		t.Fatalf("lease paid %v for epochs %d-%d, want 5 units × 7 (nothing for the epochs without readings)", l.Paid, e, e+1)
	}
	u, _ := c.LeaseUsage(ctx, lease.ID)
	found := false
	for _, me := range u.Epochs {
		for _, mm := range me.Meters {
			found = found || me.Epoch == e && mm.Amount == 4_200_000 && mm.Measure == "mJ"
		}
	}
	if !found {
		t.Fatalf("lease usage shows no meter reading: %+v", u.Epochs)
	}
}

// TestEnergyProbe: a powercap counter gives measured energy (wrapping at
// its range, subzones not added twice); without one, the declared watts
// give modeled energy; without either, none.
func TestEnergyProbe(t *testing.T) {
	dir := t.TempDir()
	zone := func(name string, uj, rng uint64) {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(d, "energy_uj"), []byte(itoa(uj)+"\n"), 0o644)
		_ = os.WriteFile(filepath.Join(d, "max_energy_range_uj"), []byte(itoa(rng)+"\n"), 0o644)
	}
	zone("intel-rapl:0", 999_000_000, 1_000_000_000)
	zone("intel-rapl:0:0", 5, 1_000_000_000) // a subzone: part of package 0
	zone("intel-rapl:1", 10_000, 1_000_000_000)
	p := newEnergyProbe(dir, 65)
	zone("intel-rapl:0", 2_000_000, 1_000_000_000) // wrapped: 1,000,001 + 2,000,000 µJ
	zone("intel-rapl:1", 510_000, 1_000_000_000)   // +500,000 µJ
	mj, src := p.Done()
	if src != ledger.EnergyMeasured || mj != (1_000_001+2_000_000+500_000)/1000 {
		t.Fatalf("measured %d mJ (%s)", mj, ledger.EnergySourceName(src))
	}
	if _, src := newEnergyProbe(filepath.Join(dir, "none"), 65).Done(); src != ledger.EnergyModeled {
		t.Fatalf("without a counter: %s", ledger.EnergySourceName(src))
	}
	if mj, src := newEnergyProbe(filepath.Join(dir, "none"), 0).Done(); src != ledger.EnergyNone || mj != 0 {
		t.Fatalf("without counter or watts: %d %s", mj, ledger.EnergySourceName(src))
	}
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

// storageCluster runs len(keys) genesis nodes on QUIC loopback.
// nodeClients is an API client per node.
func nodeClients(t *testing.T, nodes []*Node) []*client.Client {
	t.Helper()
	cs := make([]*client.Client, len(nodes))
	for i, n := range nodes {
		var err error
		if cs[i], err = client.New("http://" + n.APIAddr()); err != nil {
			t.Fatal(err)
		}
	}
	return cs
}

// committer returns a send that builds and signs one transaction, submits
// it through c and waits for its commit; an error fails the test.
func committer(ctx context.Context, t *testing.T, c *client.Client) func(*ledger.PrivateKey, ledger.Payload) {
	t.Helper()
	b, err := txbuild.New(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	return func(k *ledger.PrivateKey, p ledger.Payload) {
		t.Helper()
		if _, err := b.Send(ctx, k, p, txbuild.Options{Wait: true}); err != nil {
			t.Fatalf("%s: %v", p.Kind(), err)
		}
	}
}

func storageCluster(t *testing.T, keys, users []*ledger.PrivateKey, epochBlocks, repairMisses uint64, tune func(i int, cfg *Config)) []*Node {
	t.Helper()
	addrs := make([]string, len(keys))
	for i := range addrs {
		addrs[i] = freeUDP(t)
	}
	doc := storageGenesis(t, keys, addrs, users, epochBlocks, repairMisses)
	var nodes []*Node
	for i, k := range keys {
		cfg := DefaultConfig()
		cfg.P2PAddr, cfg.BlockInterval = addrs[i], Duration{100 * time.Millisecond}
		if tune != nil {
			tune(i, &cfg)
		}
		nodes = append(nodes, quicNode(t, NodeOptions{Home: t.TempDir(), Config: cfg, GenesisDoc: doc, NodeKey: k}))
	}
	return nodes
}

// TestStorageReplicasOverQUIC is the devnet path of replicated storage:
// three members, three providers whose offers each name one of the nodes.
// A request for two replicas spread over regions lands on the two
// cheapest providers, whose nodes fetch the blob the consumer uploaded to
// the third node over the data plane and prove it every epoch. A blob
// pinned but absent from a node is fetched from its holders when asked
// for. When one holder's copy is damaged it fails its challenge, is not
// paid for it, and its replica moves to the third provider (whose node has
// the blob): two replicas again.
func TestStorageReplicasOverQUIC(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-node QUIC cluster")
	}
	keys := []*ledger.PrivateKey{seededKey(t, 70), seededKey(t, 71), seededKey(t, 72)}
	provs := []*ledger.PrivateKey{seededKey(t, 1070), seededKey(t, 1071), seededKey(t, 1072)}
	cons := seededKey(t, 1073)
	nodes := storageCluster(t, keys, append(provs, cons), 5, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cs := nodeClients(t, nodes)
	send := committer(ctx, t, cs[0])
	// Offer i (price i+1, region r<i>) is held by node (i+1) mod 3: the
	// consumer's node, 0, holds the dearest.
	for i, p := range provs {
		send(p, &ledger.RomeOffer{Capacity: []ledger.ResourceAmount{{Kind: 4, Amount: 1000}}, Price: []ledger.ResourceAmount{{Kind: 4, Amount: uint64(i + 1)}},
			Region: "r" + itoa(uint64(i)), Node: keys[(i+1)%3].Address(), Bond: ledger.Coins{{Denom: "uTFLP", Amount: 10_000_000}}})
	}
	data := seededBytes(300_000, 2)
	put, err := cs[0].PutBlob(ctx, bytes.NewReader(data), int64(len(data)), "")
	if err != nil {
		t.Fatal(err)
	}
	send(cons, &ledger.RomeRequest{Demand: []ledger.ResourceAmount{{Kind: 4, Amount: 400}}, MaxPrice: []ledger.ResourceAmount{{Kind: 4, Amount: 5}},
		Epochs: 200, Replicas: 2, Spread: ledger.SpreadRegion})
	var leases []client.RomeLease
	waitFor(t, ctx, "two replica leases", func() bool {
		leases, err = cs[0].RomeLeases(ctx, client.RomeFilter{Status: "active"})
		return err == nil && len(leases) == 2
	})
	if leases[0].Provider == leases[1].Provider {
		t.Fatalf("two replicas with one provider: %+v", leases)
	}
	id, _ := ledger.ParseBlobID(put.ID)
	send(cons, &ledger.BlobPin{RequestID: leases[0].RequestID, Blob: ledger.BlobRef{ID: id, Size: put.Size}})
	proven := func(w *client.BlobWhere, lease uint64) uint64 {
		if h := holderOf(w, lease); h != nil && h.Holding {
			return h.LastProofHeight
		}
		return 0
	}
	waitFor(t, ctx, "both replicas proven", func() bool {
		w, err := cs[0].BlobWhere(ctx, put.ID)
		return err == nil && proven(w, leases[0].ID) > 0 && proven(w, leases[1].ID) > 0
	})
	for _, i := range []int{1, 2} {
		if !nodes[i].Blobs().Has(blob.ID(id)) {
			t.Fatalf("holder node %d does not have the blob", i)
		}
		if v := metricOf(nodes[i].storage.m.fetchBytes); v < float64(len(data)) {
			t.Fatalf("node %d fetched %v bytes over the data plane", i, v)
		}
	}
	if v := metricOf(nodes[0].storage.m.served); v < float64(len(data)) {
		t.Fatalf("node 0 served %v bytes", v)
	}

	// A second blob, uploaded to and pinned through node 1: node 0 fetches
	// it from a holder when asked for it.
	data2 := seededBytes(70_000, 3)
	put2, err := cs[1].PutBlob(ctx, bytes.NewReader(data2), int64(len(data2)), "")
	if err != nil {
		t.Fatal(err)
	}
	id2, _ := ledger.ParseBlobID(put2.ID)
	send(cons, &ledger.BlobPin{RequestID: leases[0].RequestID, Blob: ledger.BlobRef{ID: id2, Size: put2.Size}})
	var back bytes.Buffer
	if _, err := cs[0].GetBlob(ctx, put2.ID, int64(len(data2)), &back); err != nil || !bytes.Equal(back.Bytes(), data2) {
		t.Fatalf("get from a node that lacked it: %v", err)
	}

	// Node 1's copy of the first blob is damaged: it misses, and its
	// replica moves to the third provider, held by node 0.
	var lost client.RomeLease
	for _, l := range leases {
		if l.Provider == provs[0].Address().String() {
			lost = l
		}
	}
	if err := os.WriteFile(blobFile(nodes[1], put.ID), make([]byte, len(data)), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the replica moved and proven", func() bool {
		all, err := cs[0].RomeLeases(ctx, client.RomeFilter{Status: "all"})
		if err != nil {
			return false
		}
		w, err := cs[0].BlobWhere(ctx, put.ID)
		if err != nil {
			return false
		}
		holding := 0
		for _, l := range all {
			if l.RequestID == lost.RequestID && !l.EndedEarly && proven(w, l.ID) > 0 && l.ID != lost.ID {
				holding++
			}
		}
		return holding == 2
	})
	l, _ := cs[0].RomeLease(ctx, lost.ID)
	if !l.EndedEarly {
		t.Fatalf("the damaged replica's lease goes on: %+v", l)
	}
	r, _ := cs[0].RomeRequest(ctx, lost.RequestID)
	if r.Repairs != 1 {
		t.Fatalf("request %+v", r)
	}
}

// TestStorageFetchDiskFull: a holder whose blob store is full cannot fetch
// its replica; the node counts the failure, declares the holding missing
// when it is challenged instead of stalling, and goes on making blocks.
func TestStorageFetchDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("a 2-node QUIC cluster")
	}
	keys := []*ledger.PrivateKey{seededKey(t, 80), seededKey(t, 81)}
	prov, cons := seededKey(t, 1080), seededKey(t, 1081)
	nodes := storageCluster(t, keys, []*ledger.PrivateKey{prov, cons}, 5, 100, func(i int, cfg *Config) {
		if i == 1 {
			cfg.BlobLimit = 64 << 10 // the holder's store is full long before the blob arrives
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c0 := nodeClients(t, nodes)[0]
	send := committer(ctx, t, c0)
	send(prov, &ledger.RomeOffer{Capacity: []ledger.ResourceAmount{{Kind: 4, Amount: 1000}}, Price: []ledger.ResourceAmount{{Kind: 4, Amount: 1}},
		Node: keys[1].Address(), Bond: ledger.Coins{{Denom: "uTFLP", Amount: 10_000_000}}})
	data := seededBytes(500_000, 4)
	put, err := c0.PutBlob(ctx, bytes.NewReader(data), int64(len(data)), "")
	if err != nil {
		t.Fatal(err)
	}
	send(cons, &ledger.RomeRequest{Demand: []ledger.ResourceAmount{{Kind: 4, Amount: 600}}, MaxPrice: []ledger.ResourceAmount{{Kind: 4, Amount: 1}},
		Epochs: 100, Replicas: 1})
	var lease client.RomeLease
	waitFor(t, ctx, "a lease", func() bool {
		ls, err := c0.RomeLeases(ctx, client.RomeFilter{Status: "active"})
		if err == nil && len(ls) == 1 {
			lease = ls[0]
			return true
		}
		return false
	})
	id, _ := ledger.ParseBlobID(put.ID)
	send(cons, &ledger.BlobPin{RequestID: lease.RequestID, Blob: ledger.BlobRef{ID: id, Size: put.Size}})
	waitFor(t, ctx, "a failed fetch and a declared miss", func() bool {
		w, err := c0.BlobWhere(ctx, put.ID)
		h := (*client.BlobHolder)(nil)
		if err == nil {
			h = holderOf(w, lease.ID)
		}
		return metricOf(nodes[1].storage.m.fetchFail.WithLabelValues("full")) > 0 &&
			metricOf(nodes[1].storage.m.proofs.WithLabelValues("declared_missing")) > 0 && h != nil && h.Misses > 0
	})
	if nodes[1].Blobs().Has(blob.ID(id)) || len(nodes[1].Blobs().Partials()) != 0 {
		t.Fatal("the full store kept part of the blob")
	}
	h0 := nodes[1].store.Head().Height
	waitFor(t, ctx, "blocks go on", func() bool { return nodes[1].store.Head().Height > h0+3 })
}

// metricValue reads a counter or gauge.
func metricOf(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return -1
	}
	if c := d.GetCounter(); c != nil {
		return c.GetValue()
	}
	return d.GetGauge().GetValue()
}
