package tui

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/sos-kernel/sos/kernel/client"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// epoch is the fixed "now" of every model test.
var epoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const (
	addrAlice = "sos1qalice0000000000000000000000000000000000000000000000k7x9"
	addrBob   = "sos1qbob000000000000000000000000000000000000000000000000z3m2"
	addrCarol = "sos1qcarol00000000000000000000000000000000000000000000000p4d8"
)

// newTestModel is a model with no IO behind it: its fetcher has no clients,
// so every command it would run is nil, and the tests feed the answers.
func newTestModel(t testing.TB, urls ...string) *model {
	t.Helper()
	if len(urls) == 0 {
		urls = []string{"http://127.0.0.1:26657"}
	}
	opts := Options{Now: func() time.Time { return epoch }}.withDefaults()
	return newModel(fetcher{}, urls, opts)
}

func send(m *model, msgs ...tea.Msg) {
	for _, msg := range msgs {
		m.Update(msg)
	}
}

// keys turns key names ("enter", "esc", "shift+tab", "a", "?") into key
// presses; a name longer than one rune that is not a special key is typed
// rune by rune.
func keys(names ...string) []tea.Msg {
	special := map[string]tea.KeyPressMsg{
		"enter":     {Code: tea.KeyEnter},
		"esc":       {Code: tea.KeyEscape},
		"tab":       {Code: tea.KeyTab},
		"shift+tab": {Code: tea.KeyTab, Mod: tea.ModShift},
		"up":        {Code: tea.KeyUp},
		"down":      {Code: tea.KeyDown},
		"pgdown":    {Code: tea.KeyPgDown},
		"ctrl+c":    {Code: 'c', Mod: tea.ModCtrl},
	}
	var out []tea.Msg
	for _, n := range names {
		if k, ok := special[n]; ok {
			out = append(out, k)
			continue
		}
		for _, r := range n {
			out = append(out, tea.KeyPressMsg{Code: r, Text: string(r)})
		}
	}
	return out
}

func screen(m *model) string { return ansi.Strip(m.View().Content) }

// fixture data: a chain at height 1234 with a block every 500 ms.
func testStatus() *client.Status {
	return &client.Status{
		ChainID: "tui-test", NodeID: "node-a1b2c3d4e5f60718293a", Version: "v0.1.0-test",
		Height: 1234, BlockHash: hash(1234, 'b'), StateRoot: hash(1234, 'r'),
		TimeMs: epoch.Add(-2 * time.Second).UnixMilli(), GenesisHash: hash(0, 'g'),
		MempoolSize: 7, Role: "single", DiskBytes: 12_345_678,
	}
}

// hash makes a deterministic 64-hex-digit string.
func hash(h uint64, tag byte) string {
	s := fmt.Sprintf("%c%015x", tag, h*2654435761)
	return strings.Repeat(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' && r > 'f' {
			return 'e'
		}
		return r
	}, s), 4)
}

func testBlocks(from, to uint64) []client.Block {
	var bs []client.Block
	for h := to; h >= from && h > 0; h-- {
		bs = append(bs, client.Block{
			Height: h, Hash: hash(h, 'b'), PrevHash: hash(h-1, 'b'),
			TimeMs:    epoch.Add(-2*time.Second - time.Duration(1234-h)*500*time.Millisecond).UnixMilli(),
			StateRoot: hash(h, 'r'), NumTxs: uint32(h % 7), GasUsed: (h % 7) * 21_000,
			Proposer: addrAlice,
		})
	}
	return bs
}

func testBlockDetail() *client.Block {
	b := testBlocks(1234, 1234)[0]
	b.NumTxs = 2
	b.TxRoot, b.ReceiptRoot = hash(1234, 't'), hash(1234, 'c')
	b.Txs = []client.Tx{
		{
			TxHash: hash(1, 'a'), Height: 1234, Index: 0, Sender: addrAlice, Nonce: 4, Kind: "transfer",
			GasPrice: "0.01uTFLP", Payload: []byte(`{"to": "` + addrBob + `", "amount": [{"denom": "uTFLP", "amount": "1000000"}]}`),
			Memo: "rent", Code: 0, GasUsed: 21000,
			Receipt: &client.Receipt{
				Code: 0, CodeName: "ok", GasUsed: 21000, GasLimit: 25200, Fee: client.Coin{Denom: "uTFLP", Amount: "252"},
				Events: []client.Event{{Type: "transfer", Attrs: []client.Attr{
					{Key: "from", Value: addrAlice}, {Key: "to", Value: addrBob}, {Key: "amount", Value: "1000000uTFLP"},
				}}},
			},
		},
		{
			TxHash: hash(2, 'a'), Height: 1234, Index: 1, Sender: addrCarol, Nonce: 0, Kind: "transfer",
			GasPrice: "0.01uTFLP", Code: 5, GasUsed: 9000,
			Receipt: &client.Receipt{
				Code: 5, CodeName: "insufficient_funds", GasUsed: 9000, GasLimit: 25200,
				Fee: client.Coin{Denom: "uTFLP", Amount: "90"}, Error: "balance 3uTFLP is less than 1000000uTFLP",
			},
		},
	}
	return &b
}

func testDenoms() []client.Denom {
	return []client.Denom{
		{Display: "TFLP", Base: "uTFLP", Exponent: 6, Description: "flops"},
		{Display: "KWTT", Base: "uKWTT", Exponent: 6},
		{Display: "TBS", Base: "uTBS", Exponent: 6},
	}
}

func testSupply() []client.Supply {
	return []client.Supply{
		{Denom: "uKWTT", Total: "5000000000000", FeeCollector: "0"},
		{Denom: "uTBS", Total: "5000000000000", FeeCollector: "1500"},
		{Denom: "uTFLP", Total: "1000000000000000", FeeCollector: "123456"},
	}
}

func testAccount(addr string, nonce uint64) *client.Account {
	return &client.Account{
		Address: addr, Nonce: nonce, HasPubKey: nonce > 0, Height: 1234,
		Balances: []client.Coin{{Denom: "uKWTT", Amount: "5000000"}, {Denom: "uTFLP", Amount: "998999748"}},
	}
}

// loaded is a model that has received the first answers of one node.
func loaded(t testing.TB, w, h int) *model {
	m := newTestModel(t)
	send(m,
		tea.WindowSizeMsg{Width: w, Height: h},
		statusMsg{node: 0, status: testStatus()},
		blocksMsg{node: 0, blocks: testBlocks(1035, 1234)},
		supplyMsg{node: 0, supply: testSupply(), denoms: testDenoms()},
		blockEventMsg{node: 0, ev: client.BlockEvent{Height: 1234, Hash: hash(1234, 'b'), TimeMs: testStatus().TimeMs, StateRoot: hash(1234, 'r'), NumTxs: 0}},
	)
	return m
}

func testContracts() contractsMsg {
	return contractsMsg{
		codes: []client.Code{
			{CodeID: hash(7, 'c'), Creator: addrAlice, Size: 48_213, Prepared: 61_002, Height: 12, Instances: 2},
			{CodeID: hash(8, 'c'), Creator: addrBob, Size: 1_024, Prepared: 2_048, Height: 40, Instances: 0},
		},
		contracts: []client.Contract{
			{Address: "sos1contract0counter000000000000000000000000000000000000q9z", CodeID: hash(7, 'c'), Label: "counter", Creator: addrAlice, Admin: addrAlice, Height: 13, Calls: 42, GasUsed: 1_234_567},
			{Address: "sos1contract0escrow0000000000000000000000000000000000000u2k", CodeID: hash(7, 'c'), Label: "escrow", Creator: addrBob, Height: 50, Calls: 3, GasUsed: 98_000},
		},
	}
}

func testState() stateMsg {
	return stateMsg{
		addr: "sos1contract0counter000000000000000000000000000000000000q9z",
		entries: []client.StateEntry{
			{Key: "636f756e74", KeyText: "count", Value: "3432", ValueText: "42"},
			{Key: "6f776e6572", KeyText: "owner", Value: "22736f7331", ValueText: `"sos1"`},
			{Key: "ff00", Value: "0001ff"},
			{Key: "6e6c", KeyText: "nl", Value: "610a62", ValueText: "a\nb"},
		},
	}
}

// scenarios set a model up for each golden view.
var scenarios = []struct {
	name  string
	setup func(m *model)
}{
	{"overview", func(m *model) {}},
	{"blocks", func(m *model) { send(m, keys("2", "down", "down")...) }},
	{"blocks_filter", func(m *model) { send(m, keys("2", "/", "122", "enter")...) }},
	{"block", func(m *model) {
		send(m, keys("2", "enter")...)
		send(m, blockMsg{node: 0, block: testBlockDetail()})
	}},
	{"tx_ok", func(m *model) {
		send(m, keys("2", "enter")...)
		send(m, blockMsg{node: 0, block: testBlockDetail()})
		send(m, keys("enter")...)
	}},
	{"tx_failed", func(m *model) {
		send(m, keys("2", "enter")...)
		send(m, blockMsg{node: 0, block: testBlockDetail()})
		send(m, keys("down", "enter")...)
	}},
	{"accounts", func(m *model) {
		send(m, keys("3")...)
		send(m, txEventMsg{node: 0, ev: client.TxEvent{Sender: addrCarol, Events: []client.Event{{Type: "transfer", Attrs: []client.Attr{{Key: "to", Value: addrBob}}}}}})
		send(m, keys("/", addrAlice, "enter")...)
		send(m, accountMsg{node: 0, addr: addrAlice, account: testAccount(addrAlice, 5)})
	}},
	{"contracts", func(m *model) {
		send(m, keys("4")...)
		c := testContracts()
		send(m, c)
	}},
	{"contracts_storage", func(m *model) {
		send(m, keys("4")...)
		send(m, testContracts())
		send(m, keys("enter")...)
		send(m, testState())
	}},
	{"contracts_storage_hex", func(m *model) {
		send(m, keys("4")...)
		send(m, testContracts())
		send(m, keys("enter")...)
		send(m, testState())
		send(m, keys("x", "down")...)
	}},
	{"contracts_none", func(m *model) {
		send(m, keys("4")...)
		send(m, contractsMsg{node: 0, err: fmt.Errorf("%w: 404 page not found", client.ErrNotFound)})
	}},
	{"rome", func(m *model) {
		send(m, keys("6")...)
		send(m, testRome())
	}},
	{"rome_leases", func(m *model) {
		send(m, keys("6")...)
		send(m, testRome())
		send(m, keys("s", "s", "down")...)
	}},
	{"rome_epochs", func(m *model) {
		send(m, keys("6")...)
		send(m, testRome())
		send(m, keys("S", "S")...)
	}},
	{"rome_disputes_filter", func(m *model) {
		send(m, keys("6")...)
		send(m, testRome())
		send(m, keys("S", "/", "bob", "enter")...)
	}},
	{"rome_none", func(m *model) {
		send(m, keys("6")...)
		send(m, romeMsg{node: 0, err: fmt.Errorf("%w: 404 page not found", client.ErrNotFound)})
	}},
	{"rome_help", func(m *model) { send(m, keys("6", "?")...) }},
	{"certs", func(m *model) {
		send(m, keys("7")...)
		send(m, testCerts())
	}},
	{"certs_pending", func(m *model) {
		send(m, keys("7")...)
		send(m, testCerts())
		send(m, keys("down", "down")...)
	}},
	{"certs_filter_revoked", func(m *model) {
		send(m, keys("7")...)
		send(m, testCerts())
		send(m, keys("/", "revoked", "enter")...)
	}},
	{"certs_none", func(m *model) {
		send(m, keys("7")...)
		send(m, certsMsg{node: 0, err: fmt.Errorf("%w: 404 page not found", client.ErrNotFound)})
	}},
	{"overview_stalled", func(m *model) {
		s := testStatus()
		s.Role, s.SyncState, s.ClusterHeight = "follower", client.SyncStalled, 2500
		s.SyncError = "kernel: block sync to 1300: no block 1235 from 2 member(s): nothing within 5s"
		send(m, statusMsg{node: 0, status: s})
	}},
	{"help", func(m *model) { send(m, keys("2", "?")...) }},
	{"unreachable", func(m *model) {
		send(m, statusMsg{node: 0, err: errors.New("client: GET /v1/status: Get \"http://127.0.0.1:26657/v1/status\": dial tcp 127.0.0.1:26657: connect: connection refused")})
		send(m, streamDownMsg{node: 0, err: errors.New("client: events: dial tcp 127.0.0.1:26657: connect: connection refused"), retry: 4 * time.Second})
	}},
}

func TestGoldenViews(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {160, 48}} {
		for _, sc := range scenarios {
			name := fmt.Sprintf("%s_%dx%d", sc.name, size[0], size[1])
			t.Run(name, func(t *testing.T) {
				m := loaded(t, size[0], size[1])
				sc.setup(m)
				got := screen(m)
				checkFrame(t, got, size[0], size[1])
				golden(t, name, got)
			})
		}
	}
}

func TestGoldenCluster(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {160, 48}} {
		name := fmt.Sprintf("cluster_%dx%d", size[0], size[1])
		t.Run(name, func(t *testing.T) {
			m := clusterModel(t, size[0], size[1])
			got := screen(m)
			checkFrame(t, got, size[0], size[1])
			golden(t, name, got)
		})
	}
}

// clusterModel has three nodes: two agree up to 1233 and then differ at
// 1234, the third is unreachable.
func clusterModel(t testing.TB, w, h int) *model {
	m := newTestModel(t, "http://127.0.0.1:26657", "http://127.0.0.1:26667", "http://127.0.0.1:26677")
	s1, s2 := testStatus(), testStatus()
	s2.NodeID, s2.StateRoot = "node-ffeeddccbbaa99887766", hash(9999, 'r')
	s1.Role, s2.Role, s1.Leader, s2.Leader, s1.Term, s2.Term = "leader", "follower", s1.NodeID, s1.NodeID, 3, 3
	s2.SyncState, s2.ClusterHeight = client.SyncCatchingUp, 1240
	send(m,
		tea.WindowSizeMsg{Width: w, Height: h},
		statusMsg{node: 0, status: s1},
		statusMsg{node: 1, status: s2},
		statusMsg{node: 2, err: errors.New("client: GET /v1/status: dial tcp 127.0.0.1:26677: connect: connection refused")},
		blockEventMsg{node: 0, ev: client.BlockEvent{Height: 1233, StateRoot: hash(1233, 'r')}},
		blockEventMsg{node: 1, ev: client.BlockEvent{Height: 1233, StateRoot: hash(1233, 'r')}},
	)
	send(m, keys("5")...)
	return m
}

func TestClusterMismatchIsRed(t *testing.T) {
	m := clusterModel(t, 120, 40)
	raw := m.View().Content
	if !strings.Contains(ansi.Strip(raw), "STATE ROOT MISMATCH at height 1234") {
		t.Fatalf("no mismatch line:\n%s", ansi.Strip(raw))
	}
	// The bad style is pure red: 38;2;255;0;0 as a true-colour SGR.
	if !strings.Contains(raw, "255;0;0") {
		t.Fatalf("mismatch not drawn in red: %q", raw)
	}
	if !strings.Contains(ansi.Strip(raw), "unreachable: dial tcp 127.0.0.1:26677") {
		t.Fatalf("unreachable node not shown:\n%s", ansi.Strip(raw))
	}
}

// checkFrame asserts the frame fills the terminal exactly and never needs
// wrapping.
func checkFrame(t *testing.T, s string, w, h int) {
	t.Helper()
	lines := strings.Split(s, "\n")
	if len(lines) != h {
		t.Errorf("frame has %d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if ansi.StringWidth(l) > w {
			t.Errorf("line %d is %d cells wide (> %d): %q", i, ansi.StringWidth(l), w, l)
		}
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./tui -run %s -update)", err, t.Name())
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (go test ./tui -update rewrites it)\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestOverviewShowsHeight(t *testing.T) {
	m := loaded(t, 80, 24)
	if !strings.Contains(strings.ToLower(screen(m)), "height") {
		t.Fatal("overview does not show the word height")
	}
	// Before any answer, the word is there too (the acceptance test greps
	// the first screen).
	m = newTestModel(t)
	if !strings.Contains(screen(m), "height") {
		t.Fatalf("empty overview does not show height:\n%s", screen(m))
	}
}

func TestKeys(t *testing.T) {
	m := loaded(t, 80, 24)
	steps := []struct {
		key  string
		want int // active tab after the key
	}{
		{"tab", 1}, {"tab", 2}, {"shift+tab", 1}, {"5", 4}, {"tab", 5}, {"tab", 6}, {"tab", 7}, {"tab", 8}, {"tab", 9}, {"tab", 0},
		{"shift+tab", 9}, {"6", 5}, {"7", 6}, {"8", 7}, {"1", 0}, {"9", 8}, {"0", 9},
	}
	for _, s := range steps {
		send(m, keys(s.key)...)
		if m.active != s.want {
			t.Fatalf("after %q the active tab is %d, want %d", s.key, m.active, s.want)
		}
	}
	if _, cmd := m.Update(keys("q")[0]); cmd == nil || cmd() != tea.Quit() {
		t.Fatal("q does not quit")
	}
	if _, cmd := m.Update(keys("ctrl+c")[0]); cmd == nil || cmd() != tea.Quit() {
		t.Fatal("ctrl+c does not quit")
	}
	// While a text box has the keyboard, q is a letter.
	send(m, keys("3", "/")...)
	if _, cmd := m.Update(keys("q")[0]); cmd != nil {
		if _, quit := cmd().(tea.QuitMsg); quit {
			t.Fatal("q quit while typing an address")
		}
	}
	if got := m.tabs[2].(*accountsTab).search.value(); got != "q" {
		t.Fatalf("search box holds %q, want q", got)
	}
}

// TestCursorStaysOnItsBlock: new blocks never move the cursor off the
// block it is on, so enter opens the block the user sees selected (at the
// top of a live list it used to follow the newest block, and an enter
// pressed as a block arrived opened that one).
func TestCursorStaysOnItsBlock(t *testing.T) {
	m := loaded(t, 80, 24)
	send(m, keys("2")...)
	bt := m.tabs[1].(*blocksTab)
	if got := bt.at(bt.list.cursor).Height; got != 1234 {
		t.Fatalf("cursor on %d, want the newest block 1234", got)
	}
	send(m, blockEventMsg{node: 0, ev: client.BlockEvent{Height: 1235, Hash: hash(1235, 'b'), NumTxs: 1}})
	if got := bt.at(bt.list.cursor).Height; got != 1234 {
		t.Fatalf("cursor on %d after a new block, want it to stay on 1234", got)
	}
	if !strings.Contains(screen(m), "1235") {
		t.Fatal("new block not drawn")
	}
	send(m, keys("enter")...)
	if bt.level != levelBlock || bt.want != 1234 {
		t.Fatalf("enter opened block %d, want 1234 (the one under the cursor)", bt.want)
	}
	send(m, keys("esc")...)
	// Scrolled down, the cursor stays too.
	send(m, keys("down", "down")...)
	send(m, blockEventMsg{node: 0, ev: client.BlockEvent{Height: 1236, Hash: hash(1236, 'b')}})
	if got := bt.at(bt.list.cursor).Height; got != 1232 {
		t.Fatalf("cursor on %d, want it to stay on 1232", got)
	}
	// g goes back to the newest.
	send(m, keys("g")...)
	if got := bt.at(bt.list.cursor).Height; got != 1236 {
		t.Fatalf("g: cursor on %d, want 1236", got)
	}
}

// TestBlocksFilterFindsTransactions: the blocks filter matches what a user
// searches for, not only the shown columns: a transaction's hash, sender
// or kind (of blocks seen live or opened), the proposer, any part of the
// block hash.
func TestBlocksFilterFindsTransactions(t *testing.T) {
	m := loaded(t, 80, 24)
	send(m, keys("2")...)
	bt := m.tabs[1].(*blocksTab)
	send(m, txEventMsg{node: 0, ev: client.TxEvent{TxHash: hash(77, 'a'), Height: 1200, Sender: addrCarol, Kind: "contract_execute"}})
	send(m, keys("enter")...)
	send(m, blockMsg{node: 0, block: testBlockDetail()}) // 1234: alice and carol's transfers
	send(m, keys("esc")...)
	heights := func(q string) []uint64 {
		t.Helper()
		send(m, keys("/", q, "enter")...)
		var hs []uint64
		for i := 0; i < bt.n(); i++ {
			hs = append(hs, bt.at(i).Height)
		}
		send(m, keys("esc")...)
		return hs
	}
	for _, c := range []struct {
		q    string
		want []uint64
	}{
		{"qcarol", []uint64{1234, 1200}},
		{"contract_exec", []uint64{1200}},
		{hash(77, 'a')[3:20], []uint64{1200}},
		{hash(1, 'a')[:12], []uint64{1234}},
		{hash(1100, 'b')[5:21], []uint64{1100}},
	} {
		if got := heights(c.q); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("filter %q matches blocks %v, want %v", c.q, got, c.want)
		}
	}
	if got := heights("qalice"); len(got) != 200 {
		t.Errorf("filter by the proposer matches %d blocks, want all 200", len(got))
	}
}

// TestHelpListsEachKeyOnce: a tab's own keys that the general keys already
// list are not listed again ("r refresh now" appeared twice).
func TestHelpListsEachKeyOnce(t *testing.T) {
	for _, tab := range []string{"1", "5"} {
		m := loaded(t, 160, 48)
		send(m, keys(tab, "?")...)
		help := ansi.Strip(m.fullHelp(160))
		for _, k := range []string{"refresh now", "next node"} {
			if n := strings.Count(help, k); n != 1 {
				t.Errorf("view %s: help lists %q %d times:\n%s", tab, k, n, help)
			}
		}
	}
}

// TestOverviewPeerLinks: the node marks itself instead of listing itself
// as a connected peer, and a follower's missing link to another follower
// is idle, not a red "disconnected".
func TestOverviewPeerLinks(t *testing.T) {
	m := loaded(t, 160, 48)
	st := testStatus()
	st.Role, st.Leader = "follower", "node-leader"
	st.Peers = []client.Peer{
		{NodeID: "node-leader", Address: "10.9.9.1:1", Role: "leader", Connected: true, Link: client.LinkConnected, RTTMs: 0.5},
		{NodeID: st.NodeID, Address: "10.9.9.1:2", Role: "follower", Self: true, Link: client.LinkSelf},
		{NodeID: "node-other", Address: "10.9.9.1:3", Role: "follower", Link: client.LinkIdle},
		{NodeID: "node-gone", Address: "10.9.9.1:4", Role: "learner", Link: client.LinkDown},
	}
	send(m, statusMsg{node: 0, status: st})
	lines := strings.Split(screen(m), "\n")
	row := func(addr string) string {
		for _, l := range lines {
			if strings.Contains(l, addr) {
				return l
			}
		}
		t.Fatalf("no peer row for %s:\n%s", addr, screen(m))
		return ""
	}
	for addr, want := range map[string]string{"10.9.9.1:1": "connected", "10.9.9.1:2": "this node", "10.9.9.1:3": "idle", "10.9.9.1:4": "disconnected"} {
		if r := row(addr); !strings.Contains(r, want) {
			t.Errorf("peer %s: %q, want %q", addr, r, want)
		}
	}
}

// TestContractsCursorStaysOnInstance: a refresh that brings a new instance
// keeps the cursor (and so what enter opens) on the same one.
func TestContractsCursorStaysOnInstance(t *testing.T) {
	m := loaded(t, 80, 24)
	send(m, keys("4")...)
	send(m, testContracts())
	send(m, keys("down")...)
	ct := m.tabs[3].(*contractsTab)
	c := testContracts()
	c.contracts = append([]client.Contract{{Address: "sos1contract0new00000000000000000000000000000000000000000aa", Label: "new"}}, c.contracts...)
	send(m, c)
	if got := ct.at(ct.list.cursor).Label; got != "escrow" {
		t.Fatalf("cursor on %q after a refresh, want escrow", got)
	}
	send(m, keys("enter")...)
	if ct.open == nil || ct.open.Label != "escrow" {
		t.Fatalf("enter opened %+v, want escrow", ct.open)
	}
	send(m, keys("esc", "/", "qbob", "enter")...) // the creator, not a shown column
	if ct.n() != 1 || ct.at(0).Label != "escrow" {
		t.Fatalf("filter by creator: %d matches", ct.n())
	}
}

func TestScrollingLoadsOlderBlocks(t *testing.T) {
	m := loaded(t, 80, 24)
	m.e.f = fetcher{clients: []*client.Client{mustClient(t)}}
	send(m, keys("2")...)
	bt := m.tabs[1].(*blocksTab)
	var cmd tea.Cmd
	for i := 0; i < 200 && cmd == nil; i++ {
		_, cmd = m.Update(keys("pgdown")[0])
	}
	if cmd == nil || !bt.loadingOlder {
		t.Fatal("scrolling to the oldest loaded block fetches no older page")
	}
	send(m, blocksMsg{node: 0, older: true, blocks: testBlocks(935, 1034)})
	if len(bt.blocks) != 300 || bt.blocks[0].Height != 935 {
		t.Fatalf("after the older page: %d blocks from %d", len(bt.blocks), bt.blocks[0].Height)
	}
}

func mustClient(t testing.TB) *client.Client {
	c, err := client.New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestResizeNeverWraps(t *testing.T) {
	for _, sc := range scenarios {
		m := loaded(t, 160, 48)
		sc.setup(m)
		for _, sz := range [][2]int{{80, 24}, {100, 30}, {81, 25}, {200, 60}, {40, 10}} {
			send(m, tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
			checkFrame(t, screen(m), sz[0], sz[1])
		}
	}
}

func TestFormatUnits(t *testing.T) {
	for _, c := range []struct {
		amount string
		exp    uint8
		want   string
	}{
		{"0", 6, "0"}, {"1", 6, "0.000001"}, {"1000000", 6, "1"}, {"1500000", 6, "1.5"},
		{"1000000000000000", 6, "1,000,000,000"}, {"123", 0, "123"}, {"1234", 0, "1,234"}, {"bogus", 6, "bogus"},
	} {
		if got := formatUnits(c.amount, c.exp); got != c.want {
			t.Errorf("formatUnits(%q, %d) = %q, want %q", c.amount, c.exp, got, c.want)
		}
	}
}

func TestRates(t *testing.T) {
	var h history
	// 10 blocks, 1 s apart, 2 txs each: 2 txs/s where there are blocks.
	for i := uint64(1); i <= 10; i++ {
		h.add(sample{height: i, timeMs: int64(i) * 1000, txs: 2, gas: 100})
	}
	txs, gas := h.rates(10*time.Second, 10)
	for i, v := range txs {
		if v != 2 {
			t.Fatalf("bucket %d: %.2f txs/s, want 2 (%v)", i, v, txs)
		}
	}
	if gas[9] != 100 {
		t.Fatalf("gas/s %.2f, want 100", gas[9])
	}
	if s := sparkline([]float64{0, 1, 2, 4}); s != "▁▃▅█" {
		t.Fatalf("sparkline %q", s)
	}
}

func TestBackoffIsBounded(t *testing.T) {
	b := backoff{min: minBackoff, max: maxBackoff}
	var d time.Duration
	var seen []time.Duration
	for i := 0; i < 12; i++ {
		d = b.next(d)
		seen = append(seen, d)
	}
	if seen[0] != minBackoff || seen[1] != 2*minBackoff || seen[len(seen)-1] != maxBackoff {
		t.Fatalf("backoff sequence %v", seen)
	}
}
