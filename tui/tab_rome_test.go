package tui

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/sos-kernel/sos/kernel/client"
)

// policyAuction is the id of the uploaded policy the fixture market runs.
var policyAuction = hash(77, 'p')

// testRome is a market in epoch 123 with 20 processed epochs (122 down to
// 103): two disputes (settled in epochs 122 and 118), a rejected policy in
// epoch 115, and a few offers, requests and leases.
func testRome() romeMsg {
	var eps []client.RomeEpoch
	for ep := uint64(122); ep >= 103; ep-- {
		r := client.RomeEpoch{
			Epoch: ep, Height: ep * 10, Policy: policyAuction, PolicyGas: 1_200_000,
			Offers: 2, Requests: 1, NewLeases: uint32(ep % 2), MatchedBps: 7500, Matched: 75,
			Kinds: []client.RomeKindStat{
				{Kind: "compute", Capacity: 160, Leased: 100, Demand: 110, Matched: 100, UtilizationBps: 6250, Utilization: 62.5, ClearingPrice: fmt.Sprintf("%duTFLP", 4+ep%4)},
				{Kind: "bandwidth", Capacity: 10, Leased: 3, Demand: 3, Matched: 3, UtilizationBps: 3000, Utilization: 30, ClearingPrice: fmt.Sprintf("%duTBS", 2+ep%3)},
				{Kind: "energy", Capacity: 50, Leased: 48, Demand: 60, Matched: 48, UtilizationBps: 9600, Utilization: 96, ClearingPrice: fmt.Sprintf("%duKWTT", 1+ep%2)},
				{Kind: "storage", ClearingPrice: "0uSTOR"},
			},
			Paid: []client.Coin{{Denom: "uTFLP", Amount: "500"}},
		}
		switch ep {
		case 122:
			r.Disputes = 1
			r.Certs = 2
			r.Events = []client.Event{{Type: "rome_dispute", Attrs: []client.Attr{{Key: "lease_id", Value: "3"}, {Key: "epoch", Value: "121"}}}}
		case 118:
			r.Disputes = 1
			r.Events = []client.Event{{Type: "rome_dispute", Attrs: []client.Attr{{Key: "lease_id", Value: "2"}, {Key: "epoch", Value: "117"}}}}
		case 115:
			r.Policy, r.Rejected = "builtin:greedy", "policy trapped: unreachable"
		}
		eps = append(eps, r)
	}
	return romeMsg{
		market: &client.RomeMarket{
			Height: 1234, Epoch: 123, EpochEndHeight: 1240, EpochBlocks: 10,
			ActivePolicy: policyAuction, FallbackPolicy: "greedy",
			OpenOffers: 2, OpenRequests: 1, LiveLeases: 2, PendingCerts: 1,
			Utilization: map[string]float64{"compute": 62.5, "bandwidth": 30, "energy": 96, "storage": 0},
			Matched:     75,
			ClearingPrices: map[string]string{
				"compute": eps[0].Kinds[0].ClearingPrice, "bandwidth": eps[0].Kinds[1].ClearingPrice,
				"energy": eps[0].Kinds[2].ClearingPrice, "storage": "0uSTOR",
			},
			LastEpoch: &eps[0],
		},
		policies: []client.RomePolicy{
			{ID: policyAuction, Name: "auction", Uploader: addrAlice, Size: 48_000, Height: 900, Active: true},
		},
		epochs: eps,
		offers: []client.RomeOffer{
			{ID: 3, Owner: addrAlice, Status: "open", Capacity: map[string]uint64{"compute": 100, "bandwidth": 10, "energy": 50},
				Leased: map[string]uint64{"compute": 40, "bandwidth": 3, "energy": 48},
				Price:  map[string]string{"compute": "5uTFLP", "bandwidth": "2uTBS", "energy": "1uKWTT"}, Region: "eu-west", At: "48.13,11.58", Height: 1100},
			{ID: 2, Owner: addrBob, Status: "open", Capacity: map[string]uint64{"compute": 60}, Leased: map[string]uint64{"compute": 60},
				Price: map[string]string{"compute": "4uTFLP"}, Region: "us-east", Height: 1020},
			{ID: 1, Owner: addrCarol, Status: "cancelled", Capacity: map[string]uint64{"storage": 20}, Leased: map[string]uint64{},
				Price: map[string]string{"storage": "1uSTOR"}, Height: 950},
		},
		requests: []client.RomeRequest{
			{ID: 4, Owner: addrCarol, Status: "open", Demand: map[string]uint64{"compute": 10}, Remaining: map[string]uint64{"compute": 10},
				MaxPrice: map[string]string{"compute": "3uTFLP"}, Epochs: 2, Escrow: []client.Coin{{Denom: "uTFLP", Amount: "60"}}, Height: 1200},
			{ID: 3, Owner: addrBob, Status: "filled", Demand: map[string]uint64{"compute": 40, "energy": 48}, Remaining: map[string]uint64{"compute": 0, "energy": 0},
				MaxPrice: map[string]string{"compute": "8uTFLP", "energy": "2uKWTT"}, Epochs: 3, Region: "eu-west",
				Escrow: []client.Coin{{Denom: "uKWTT", Amount: "288"}, {Denom: "uTFLP", Amount: "960"}}, LiveLeases: 2, Height: 1150},
			{ID: 2, Owner: addrBob, Status: "done", Demand: map[string]uint64{"compute": 60}, Remaining: map[string]uint64{"compute": 0},
				MaxPrice: map[string]string{"compute": "6uTFLP"}, Epochs: 1, Escrow: []client.Coin{{Denom: "uTFLP", Amount: "360"}}, Height: 1000},
			{ID: 1, Owner: addrCarol, Status: "expired", Demand: map[string]uint64{"storage": 5}, Remaining: map[string]uint64{"storage": 5},
				MaxPrice: map[string]string{"storage": "1uSTOR"}, Epochs: 4, Height: 960},
		},
		leases: []client.RomeLease{
			{ID: 4, RequestID: 3, OfferID: 3, Provider: addrAlice, Consumer: addrBob, Amounts: map[string]uint64{"compute": 40},
				Prices: map[string]string{"compute": "5uTFLP"}, StartEpoch: 123, EndEpoch: 126, Status: "active"},
			{ID: 3, RequestID: 3, OfferID: 3, Provider: addrAlice, Consumer: addrBob, Amounts: map[string]uint64{"energy": 48, "bandwidth": 3},
				Prices: map[string]string{"energy": "1uKWTT", "bandwidth": "2uTBS"}, StartEpoch: 121, EndEpoch: 124, Status: "active",
				Paid: []client.Coin{{Denom: "uKWTT", Amount: "48"}}, Disputes: 1},
			{ID: 2, RequestID: 2, OfferID: 2, Provider: addrBob, Consumer: addrBob, Amounts: map[string]uint64{"compute": 60},
				Prices: map[string]string{"compute": "4uTFLP"}, StartEpoch: 117, EndEpoch: 118, Status: "ended",
				Paid: []client.Coin{{Denom: "uTFLP", Amount: "120"}}, Disputes: 1},
			{ID: 1, RequestID: 1, OfferID: 1, Provider: addrCarol, Consumer: addrCarol, Amounts: map[string]uint64{"storage": 5},
				Prices: map[string]string{"storage": "1uSTOR"}, StartEpoch: 110, EndEpoch: 114, Status: "ended",
				Paid: []client.Coin{{Denom: "uSTOR", Amount: "20"}}},
		},
	}
}

// issuerFP is the fixture issuer's key fingerprint (40 hex digits).
var issuerFP = hash(5, 'i')[:40]

// testCerts are five certificates for two nodes: alice has two signed and
// one pending, bob one revoked and one signed.
func testCerts() certsMsg {
	key, sig := strings.Repeat("ab", 1952), strings.Repeat("cd", 3309)
	mk := func(id uint64, node, kind string, k uint8, amount, from, to uint64) client.Certificate {
		return client.Certificate{
			Statement: client.CertStatement{Version: 1, ChainID: "tui-test", ID: id, NodeID: node, Kind: k, Amount: amount,
				FromEpoch: from, ToEpoch: to, Issuer: issuerFP, IssuedHeight: to*10 + 10},
			KindName: kind, IssuerKey: key, Signature: sig, Status: "signed",
		}
	}
	c1 := mk(1, addrAlice, "compute", 1, 300, 100, 102)
	c4 := mk(4, addrAlice, "energy", 3, 144, 118, 120)
	c4.Redeemed = 44
	c5 := mk(5, addrAlice, "compute", 1, 120, 121, 123)
	c5.Signature, c5.Status = "", "pending"
	c2 := mk(2, addrBob, "compute", 1, 180, 103, 105)
	c2.Revoked, c2.RevokeReason, c2.Status = true, "usage reports were forged", "revoked"
	c3 := mk(3, addrBob, "bandwidth", 2, 9, 118, 120)
	// The node answers newest first; the view groups them by node.
	return certsMsg{certs: []client.Certificate{c5, c4, c3, c2, c1}}
}

// runCmds runs a command and the commands it batches, and returns their
// messages. Only for commands that end by themselves (no ticks).
func runCmds(cmd tea.Cmd) []tea.Msg {
	if cmd == nil {
		return nil
	}
	msg := cmd()
	if b, ok := msg.(tea.BatchMsg); ok {
		var out []tea.Msg
		for _, c := range b {
			out = append(out, runCmds(c)...)
		}
		return out
	}
	return []tea.Msg{msg}
}

func TestRomeViewShowsMarket(t *testing.T) {
	m := loaded(t, 160, 48)
	send(m, keys("6")...)
	if got := screen(m); !strings.Contains(got, "loading") {
		t.Fatalf("before the answer:\n%s", got)
	}
	send(m, testRome())
	got := screen(m)
	for _, want := range []string{
		"epoch 123", "auction (" + policyAuction[:12], "fallback greedy", "2 offers · 1 request · 2 live leases · 1 certificate to sign",
		"compute", "62.5%", "100/160", "energy", "96.0%", "price, last 20 epochs",
		"1 in the last epoch · 2 in the last 20 epochs", "Offers 3", "Disputes 2", "eu-west",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ROME view lacks %q:\n%s", want, got)
		}
	}
	// The compute bar is 62.5% of 32 cells: 20 full.
	if !strings.Contains(got, strings.Repeat("█", 20)+strings.Repeat("░", 12)) {
		t.Errorf("compute bar wrong:\n%s", got)
	}
}

func TestRomeListsAndFilter(t *testing.T) {
	m := loaded(t, 120, 40)
	send(m, keys("6")...)
	send(m, testRome())
	rt := m.tabs[5].(*romeTab)
	steps := []struct {
		keys []string
		sec  int
		want string
	}{
		{[]string{"s"}, romeRequests, "left/demand"},
		{[]string{"s"}, romeLeases, "req→offer"},
		{[]string{"s"}, romeEpochsList, "clearing prices"},
		{[]string{"s"}, romeDisputes, "settled"},
		{[]string{"s"}, romeOffers, "leased/capacity"},
		{[]string{"S"}, romeDisputes, "settled"},
	}
	for _, s := range steps {
		send(m, keys(s.keys...)...)
		if rt.sec != s.sec || !strings.Contains(screen(m), s.want) {
			t.Fatalf("after %v: list %d, want %d with %q:\n%s", s.keys, rt.sec, s.sec, s.want, screen(m))
		}
	}
	// Leases: the one starting after the last epoch's matching is new.
	send(m, keys("S", "S")...)
	if rt.sec != romeLeases || !strings.Contains(screen(m), "active new") {
		t.Fatalf("lease 4 not marked new:\n%s", screen(m))
	}
	// While filtering, q is a letter and digits do not switch views.
	send(m, keys("/", "q")...)
	if !m.tabs[m.active].typing() {
		t.Fatal("/ did not open the filter")
	}
	send(m, keys("esc", "/", "carol", "enter")...)
	if got := rt.n(romeLeases); got != 1 {
		t.Fatalf("%d leases match carol, want 1", got)
	}
	if got := rt.n(romeOffers); got != 1 {
		t.Fatalf("%d offers match carol, want 1", got)
	}
	if !strings.Contains(screen(m), "filter: carol") {
		t.Fatalf("filter not shown:\n%s", screen(m))
	}
	// A refresh keeps the filter.
	send(m, testRome())
	if got := rt.n(romeLeases); got != 1 {
		t.Fatalf("after a refresh %d leases match, want 1", got)
	}
	send(m, keys("esc")...)
	if rt.filtering() || rt.n(romeLeases) != 4 {
		t.Fatal("esc did not clear the filter")
	}
	send(m, keys("6", "7", "6")...)
	if m.active != 5 {
		t.Fatalf("active tab %d", m.active)
	}
}

func TestRomeErrors(t *testing.T) {
	m := loaded(t, 80, 24)
	send(m, keys("6")...)
	send(m, romeMsg{node: 0, err: fmt.Errorf("%w: 404 page not found", client.ErrNotFound)})
	if !strings.Contains(screen(m), "no market API on this node") {
		t.Fatalf("404:\n%s", screen(m))
	}
	send(m, romeMsg{node: 0, err: &client.HTTPError{Status: 503, Msg: "kernel: the ROME market is not configured: no extra.rome"}})
	if !strings.Contains(screen(m), "the ROME market is not configured on this node\nkernel: the ROME market") {
		t.Fatalf("503:\n%s", screen(m))
	}
	send(m, romeMsg{node: 0, err: errors.New("client: GET /v1/rome/market: dial tcp 127.0.0.1:26657: connect: connection refused")})
	if !strings.Contains(screen(m), "cannot load the market: dial tcp") {
		t.Fatalf("unreachable:\n%s", screen(m))
	}
	// An answer from a node not in focus is ignored.
	send(m, romeMsg{node: 1, market: &client.RomeMarket{}})
	if !strings.Contains(screen(m), "cannot load the market") {
		t.Fatal("an answer of another node replaced the view")
	}
	send(m, testRome())
	if !strings.Contains(screen(m), "epoch 123") {
		t.Fatalf("the view does not recover:\n%s", screen(m))
	}
}

// TestRomeIONotInUpdate: showing the tab, block events and the debounced
// refresh all return commands (Update does no IO), and the commands answer
// typed messages.
func TestRomeIONotInUpdate(t *testing.T) {
	m := loaded(t, 80, 24)
	m.e.f = fetcher{ctx: t.Context(), clients: []*client.Client{mustClient(t)}}
	_, cmd := m.Update(keys("6")[0])
	msgs := runCmds(cmd)
	if len(msgs) != 1 {
		t.Fatalf("showing the tab runs %d commands: %v", len(msgs), msgs)
	}
	rm, ok := msgs[0].(romeMsg)
	if !ok || rm.err == nil || rm.node != 0 {
		t.Fatalf("the command answered %#v", msgs[0])
	}
	send(m, rm)
	if !strings.Contains(screen(m), "cannot load the market") {
		t.Fatalf("the error is not shown:\n%s", screen(m))
	}
	// A block event schedules a refresh; the refresh asks for the market.
	_, cmd = m.Update(blockEventMsg{node: 0, ev: client.BlockEvent{Height: 1235}})
	if cmd == nil || !m.refreshPending {
		t.Fatal("a block event schedules no refresh")
	}
	_, cmd = m.Update(refreshMsg{})
	var got int
	for _, msg := range runCmds(cmd) {
		if _, ok := msg.(romeMsg); ok {
			got++
		}
	}
	if got != 1 {
		t.Fatalf("the refresh fetched the market %d times, want 1", got)
	}
	// Not shown, the tab is not refreshed.
	send(m, keys("7")...)
	_, cmd = m.Update(refreshMsg{})
	for _, msg := range runCmds(cmd) {
		if _, ok := msg.(romeMsg); ok {
			t.Fatal("a hidden ROME tab was refreshed")
		}
	}
}

func TestCertsView(t *testing.T) {
	m := loaded(t, 160, 48)
	send(m, keys("7")...)
	send(m, testCerts())
	ct := m.tabs[6].(*certsTab)
	got := screen(m)
	for _, want := range []string{
		"Certificates (5) for 2 nodes", "3 signed · 1 unsigned · 1 revoked",
		"Certificate #1", "signed by " + issuerFP, "(node status)", "this view does not re-verify",
		"sos cert show 1 -o json > c.json && sos cert verify c.json", "(1952 bytes)", "(3309 bytes)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("certificates view lacks %q:\n%s", want, got)
		}
	}
	// Grouped by node, then id: alice 1, 4, 5, then bob 2, 3.
	var ids []uint64
	for i := 0; i < ct.n(0); i++ {
		ids = append(ids, ct.at(i).Statement.ID)
	}
	if fmt.Sprint(ids) != "[1 4 5 2 3]" {
		t.Fatalf("order %v", ids)
	}
	// The pending one is unsigned and does not claim a signature.
	send(m, keys("down", "down")...)
	got = screen(m)
	if !strings.Contains(got, "Certificate #5") || !strings.Contains(got, "unsigned (pending)") || strings.Contains(got, "signed by "+issuerFP) {
		t.Fatalf("pending certificate:\n%s", got)
	}
	// The revoked one says why.
	send(m, keys("down")...)
	if got = screen(m); !strings.Contains(got, "revoked: usage reports were forged") {
		t.Fatalf("revoked certificate:\n%s", got)
	}
	// A refresh keeps the cursor on its certificate.
	c := testCerts()
	c.certs = append(c.certs, client.Certificate{Statement: client.CertStatement{ID: 6, NodeID: addrAlice, Amount: 1}, KindName: "energy", Status: "pending"})
	send(m, c)
	if id := ct.at(ct.lists[0].list.cursor).Statement.ID; id != 2 {
		t.Fatalf("after a refresh the cursor is on #%d, want #2", id)
	}
	// The filter narrows to one node.
	send(m, keys("/", "bob", "enter")...)
	if ct.n(0) != 2 || !strings.Contains(screen(m), "(2 match, esc clears)") {
		t.Fatalf("filter bob: %d rows:\n%s", ct.n(0), screen(m))
	}
	send(m, keys("esc")...)
	if ct.n(0) != 6 {
		t.Fatalf("esc left %d rows", ct.n(0))
	}
	// Another node's answer is ignored; switching nodes forgets the list.
	send(m, certsMsg{node: 1})
	if ct.n(0) != 6 {
		t.Fatal("another node's answer replaced the list")
	}
	send(m, focusMsg{})
	if ct.loaded || ct.n(0) != 0 {
		t.Fatal("focus change kept the old node's certificates")
	}
}

func TestCertsErrors(t *testing.T) {
	m := loaded(t, 80, 24)
	m.e.f = fetcher{ctx: t.Context(), clients: []*client.Client{mustClient(t)}}
	_, cmd := m.Update(keys("7")[0])
	msgs := runCmds(cmd)
	if len(msgs) != 1 {
		t.Fatalf("showing the tab runs %d commands", len(msgs))
	}
	if cm, ok := msgs[0].(certsMsg); !ok || cm.err == nil {
		t.Fatalf("the command answered %#v", msgs[0])
	}
	send(m, msgs[0])
	if !strings.Contains(screen(m), "cannot load certificates") {
		t.Fatalf("error not shown:\n%s", screen(m))
	}
	send(m, certsMsg{node: 0, err: fmt.Errorf("%w: 404 page not found", client.ErrNotFound)})
	if !strings.Contains(screen(m), "no market API on this node") {
		t.Fatalf("404:\n%s", screen(m))
	}
	send(m, certsMsg{node: 0, certs: []client.Certificate{}})
	if !strings.Contains(screen(m), "no certificate issued yet") {
		t.Fatalf("empty:\n%s", screen(m))
	}
	// / on an empty list still works; nothing matches.
	send(m, keys("/", "x", "enter")...)
	if !strings.Contains(screen(m), "no certificate matches the filter") {
		t.Fatalf("empty filter:\n%s", screen(m))
	}
}

// TestRomeEpochWithoutOffers: an epoch processed with nothing offered
// says so; "no epoch processed yet" is only for a market that has not
// processed one (it was shown at epoch 142).
func TestRomeEpochWithoutOffers(t *testing.T) {
	m := loaded(t, 160, 48)
	send(m, keys("6")...)
	msg := testRome()
	msg.market.Epoch = 142
	msg.market.LastEpoch = &client.RomeEpoch{Epoch: 141, Height: 1420, Kinds: []client.RomeKindStat{}}
	send(m, msg)
	if s := screen(m); strings.Contains(s, "no epoch processed yet") || !strings.Contains(s, "epoch 141 processed at height 1420: no capacity offered") {
		t.Fatalf("ROME view:\n%s", s)
	}
	msg = testRome()
	msg.market.Epoch, msg.market.LastEpoch, msg.epochs = 0, nil, nil
	send(m, msg)
	if s := screen(m); !strings.Contains(s, "no epoch processed yet") {
		t.Fatalf("ROME view of a new market:\n%s", s)
	}
}
