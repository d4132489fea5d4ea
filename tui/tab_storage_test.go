package tui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/sos-kernel/sos/kernel/client"
)

// testStorage is a market in epoch 40 with five pinned blobs in every
// state: fetching (2 of 3 replicas proven, the third holder still
// fetching), missed (a holder missed epoch 39's challenge), repairing (a
// holder lost its replica after misses, its successor fetches), held, and
// ended (its request is done); three providers with storage offers and
// bonds, and two energy meters, one of which settled two certificates.
func testStorage() storageMsg {
	holder := func(lease uint64, prov, region string, from, proofH, proofE, misses, missE uint64) client.BlobHolder {
		return client.BlobHolder{LeaseID: lease, OfferID: lease - 10, Provider: prov, Node: addrCarol, Region: region, Lease: "active",
			Holding: true, FromEpoch: from, LastProofHeight: proofH, LastProofEpoch: proofE, Misses: misses, LastMissEpoch: missE}
	}
	pin := func(tag byte, req uint64, idx uint32, size uint64, replicas uint16, hs ...client.BlobHolder) client.StoragePin {
		return client.StoragePin{BlobID: hash(size, tag), Consumer: addrBob, RequestStatus: "filled", EndEpoch: 80,
			BlobPin: client.BlobPin{RequestID: req, Pin: idx, Size: size, Height: 1000 + req, Epoch: 30, Replicas: replicas, Holders: hs}}
	}
	dropped := holder(8, addrCarol, "us-east", 31, 1100, 0, 3, 36)
	dropped.Holding, dropped.Lease = false, "ended"
	repairing := pin('c', 5, 0, 3_000_000, 2, dropped, holder(14, addrBob, "eu-west", 41, 0, 0, 0, 0), holder(9, addrAlice, "eu-west", 31, 1231, 40, 0, 0))
	repairing.Repairs = 1
	ended := pin('e', 2, 0, 512, 1, holder(3, addrAlice, "eu-west", 5, 300, 0, 0, 0))
	ended.RequestStatus, ended.EndEpoch = "done", 30
	ended.Holders[0].Holding, ended.Holders[0].Lease = false, "ended"
	pins := []client.StoragePin{
		pin('a', 7, 0, 1<<30, 3, holder(11, addrAlice, "eu-west", 31, 1230, 40, 0, 0), holder(12, addrBob, "eu-west", 41, 0, 0, 0, 0),
			holder(13, addrCarol, "us-east", 31, 1221, 39, 0, 0)),
		pin('b', 7, 1, 200_000, 3, holder(11, addrAlice, "eu-west", 31, 1230, 40, 0, 0), holder(12, addrBob, "eu-west", 41, 0, 0, 0, 0),
			holder(13, addrCarol, "us-east", 31, 1150, 0, 2, 39)),
		repairing,
		pin('d', 3, 0, 42_000, 1, holder(4, addrAlice, "eu-west", 21, 1232, 40, 0, 0)),
		ended,
	}
	coins := func(a string) []client.Coin { return []client.Coin{{Denom: "uTFLP", Amount: a}} }
	offer := func(id uint64, owner, region, bond, slashed string) client.RomeOffer {
		return client.RomeOffer{ID: id, Owner: owner, Status: "open", Region: region, Node: addrCarol, Capacity: map[string]uint64{"storage": 500},
			Leased: map[string]uint64{"storage": 120}, Bond: coins(bond), Slashed: coins(slashed)}
	}
	provs := []client.Provider{
		{Address: addrAlice, Completed: 12, StorageProven: 310, Offers: []client.RomeOffer{offer(1, addrAlice, "eu-west", "50000000", "0"), offer(4, addrAlice, "eu-west", "20000000", "0")}},
		{Address: addrBob, StorageProven: 40, Offers: []client.RomeOffer{offer(2, addrBob, "eu-west", "30000000", "0")}},
		{Address: addrCarol, StorageProven: 120, StorageMissed: 5, Failed: 1, Offers: []client.RomeOffer{offer(3, addrCarol, "us-east", "40500000", "9500000")}},
	}
	meters := []client.Meter{
		{MeterID: 2, Owner: addrAlice, Kind: "energy", Key: "mldsa65:" + hash(2, 'k')[:16], Height: 900, Counter: 12_500_000, Measure: "mJ", Seq: 42, Readings: 17},
		{MeterID: 1, Owner: addrBob, Kind: "energy", Key: "mldsa65:" + hash(1, 'k')[:16], Height: 850, Measure: "mJ"},
	}
	cert := func(id, amount uint64, measured string) client.Certificate {
		return client.Certificate{Statement: client.CertStatement{ID: id, NodeID: addrAlice, Kind: 3, Amount: amount, Measured: measured}, KindName: "energy"}
	}
	return storageMsg{
		pins:      &client.StoragePins{Epoch: 40, Height: 1234, Pins: pins},
		providers: provs, meters: meters,
		certs: []client.Certificate{cert(31, 3, "meter 2"), cert(35, 2, "meter 2"), cert(36, 7, "meter 9")},
		uses: map[uint64][]meterUse{2: {
			{lease: 20, epoch: 39, amount: 2_300_000, measure: "mJ", readings: 3, settled: true},
			{lease: 20, epoch: 40, amount: 1_200_000, measure: "mJ", readings: 2},
		}},
		jpu: 1000,
	}
}

func TestStorageStates(t *testing.T) {
	msg := testStorage()
	want := []string{"fetching", "missed", "repairing", "held", "ended"}
	for i, p := range msg.pins.Pins {
		if got := pinState(&p, 40); got != want[i] {
			t.Errorf("pin %d: %s, want %s", i, got, want[i])
		}
	}
	unplaced := client.StoragePin{RequestStatus: "open", EndEpoch: 80, BlobPin: client.BlobPin{Replicas: 2}}
	if s := pinState(&unplaced, 40); s != "waiting" {
		t.Errorf("no lease holds it: %s", s)
	}
	h := client.BlobHolder{Holding: true, LastProofHeight: 1100, LastProofEpoch: 0, Misses: 1, LastMissEpoch: 39}
	if s := holderState(&h, 40); s != "missed" {
		t.Errorf("missed epoch 39, no proof since: %s", s)
	}
	h.LastProofHeight, h.LastProofEpoch = 1231, 40
	if s := holderState(&h, 40); s != "held" {
		t.Errorf("proven again in epoch 40: %s", s)
	}
	h = client.BlobHolder{Holding: true, LastProofHeight: 900, Misses: 1, LastMissEpoch: 20}
	if s := holderState(&h, 40); s != "held" {
		t.Errorf("an old miss: %s", s)
	}
	if got := energyText(12_500); got != "12.5 kJ" {
		t.Errorf("energyText(12500) = %q", got)
	}
	if got := measureText(250, "mJ"); got != "250 mJ" {
		t.Errorf("measureText(250 mJ) = %q", got)
	}
}

func TestStorageView(t *testing.T) {
	m := loaded(t, 120, 40)
	send(m, keys("0")...)
	if got := screen(m); !strings.Contains(got, "loading") || !strings.Contains(got, "0 Storage") {
		t.Fatalf("before the answer:\n%s", got)
	}
	send(m, testStorage())
	st := m.tabs[9].(*storageTab)
	got := screen(m)
	for _, want := range []string{
		"Storage  epoch 40 · height 1234 · 5 pinned blobs (1.0 GiB) · 2 meters",
		"1 held · 1 fetching · 1 missed · 1 repairing · 1 ended",
		"470 proven, 5 missed", "slashed 9.5 TFLP", "Pinned blobs 5", "Providers 3", "Meters 2",
		"1.0 GiB   #7  2/3 fetching        1230    0",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("storage view lacks %q:\n%s", want, got)
		}
	}
	// Enter opens the pin under the cursor: its holders and their proofs.
	send(m, keys("down", "enter")...)
	got = screen(m)
	for _, want := range []string{"blob id      " + hash(200_000, 'b'), "(esc back)", "missed", "1 proven of 3 wanted · 1 fetching · 1 missed",
		"request #7 pin 1 at height 1007 (epoch 30)", "Holders (3)", "1150", "2 (last e39)"} {
		if !strings.Contains(got, want) {
			t.Errorf("pin detail lacks %q:\n%s", want, got)
		}
	}
	// ↓ in the detail opens the next pin; new data keeps it open.
	send(m, keys("down")...)
	if got = screen(m); !strings.Contains(got, "repairing") || !strings.Contains(got, "1 repair") || !strings.Contains(got, "dropped") {
		t.Fatalf("next pin's detail:\n%s", got)
	}
	more := testStorage()
	more.pins.Pins = append([]client.StoragePin{{BlobID: hash(9, 'z'), BlobPin: client.BlobPin{RequestID: 99, Size: 10}}}, more.pins.Pins...)
	send(m, more)
	if got = screen(m); !strings.Contains(got, "blob id      "+hash(3_000_000, 'c')) {
		t.Fatalf("a refresh moved the detail:\n%s", got)
	}
	send(m, keys("esc")...)
	if p := st.pins[st.selected(storagePins)]; p.RequestID != 5 || st.opened != "" {
		t.Fatalf("after esc: opened %q, cursor on request %d", st.opened, p.RequestID)
	}
	// Providers: storage records, bond left, slashed.
	send(m, keys("s")...)
	got = screen(m)
	for _, want := range []string{"70 TFLP", "40.5 TFLP", "9.5 TFLP", "310", "120"} {
		if !strings.Contains(got, want) {
			t.Errorf("providers lack %q:\n%s", want, got)
		}
	}
	send(m, keys("/", "us-east", "enter")...)
	if st.n(storageProviders) != 1 {
		t.Fatalf("filter us-east: %d providers:\n%s", st.n(storageProviders), screen(m))
	}
	send(m, keys("enter")...)
	got = screen(m)
	for _, want := range []string{"address      " + addrCarol, "120 holding-epochs proven, 5 missed (4.0%)", "bond left    40.5 TFLP · slashed 9.5 TFLP",
		"2 pinned blobs (1.0 GiB): 1 proven, 1 missing their last proof", "Offers (1)"} {
		if !strings.Contains(got, want) {
			t.Errorf("provider detail lacks %q:\n%s", want, got)
		}
	}
	send(m, keys("esc", "esc")...)
	if st.filtering() || st.opened != "" {
		t.Fatal("esc esc left the detail or the filter")
	}
	// Meters: last reading, settled energy in joules.
	send(m, keys("s")...)
	got = screen(m)
	if !strings.Contains(got, "12.5 kJ") || !strings.Contains(got, "5 kJ") || !strings.Contains(got, "   40 ") {
		t.Fatalf("meters:\n%s", got)
	}
	send(m, keys("enter")...)
	got = screen(m)
	for _, want := range []string{"Meter #2", "counter 12.5 kJ · seq 42 · 17 readings · epoch 40 on lease #20", "5 kJ certified (certificates #31 #35)",
		"and 2.3 kJ metered in settled epochs", "pending", "settled"} {
		if !strings.Contains(got, want) {
			t.Errorf("meter detail lacks %q:\n%s", want, got)
		}
	}
	send(m, keys("down")...)
	if got = screen(m); !strings.Contains(got, "Meter #1") || !strings.Contains(got, "no reading yet") {
		t.Fatalf("meter without readings:\n%s", got)
	}
	send(m, storageMsg{node: 1})
	if len(st.pins) != 6 {
		t.Fatal("another node's answer replaced the list")
	}
	send(m, focusMsg{})
	if st.loaded || len(st.pins) != 0 || st.opened != "" {
		t.Fatal("focus change kept the old node's storage")
	}
}

func TestStorageErrors(t *testing.T) {
	m := loaded(t, 80, 24)
	m.e.f = fetcher{ctx: t.Context(), clients: []*client.Client{mustClient(t)}}
	_, cmd := m.Update(keys("0")[0])
	msgs := runCmds(cmd)
	if len(msgs) != 1 {
		t.Fatalf("showing the tab runs %d commands", len(msgs))
	}
	if sm, ok := msgs[0].(storageMsg); !ok || sm.err == nil {
		t.Fatalf("the command answered %#v", msgs[0])
	}
	send(m, msgs[0])
	if !strings.Contains(screen(m), "cannot load storage") {
		t.Fatalf("error not shown:\n%s", screen(m))
	}
	send(m, storageMsg{node: 0, err: fmt.Errorf("%w: 404 page not found", client.ErrNotFound)})
	if !strings.Contains(screen(m), "no storage API on this node") {
		t.Fatalf("404:\n%s", screen(m))
	}
	send(m, storageMsg{node: 0, err: &client.HTTPError{Status: 503, Msg: "rome: no market"}})
	if !strings.Contains(screen(m), "the ROME market is not configured") {
		t.Fatalf("503:\n%s", screen(m))
	}
	send(m, storageMsg{node: 0}) // an answer without pins is an empty list, not a crash
	if !strings.Contains(screen(m), "no blob pinned yet") {
		t.Fatalf("nil pins:\n%s", screen(m))
	}
	send(m, storageMsg{node: 0, pins: &client.StoragePins{Epoch: 1, Pins: []client.StoragePin{}}})
	if !strings.Contains(screen(m), "no blob pinned yet") {
		t.Fatalf("empty:\n%s", screen(m))
	}
	send(m, keys("enter", "s", "s")...)
	if !strings.Contains(screen(m), "no meter registered") {
		t.Fatalf("no meters:\n%s", screen(m))
	}
}

// storageScenarios are the Storage view's golden frames.
var storageScenarios = []struct {
	name  string
	setup func(m *model)
}{
	{"storage", func(m *model) { send(m, keys("0")...); send(m, testStorage()) }},
	{"storage_pin", func(m *model) {
		send(m, keys("0")...)
		send(m, testStorage())
		send(m, keys("down", "down", "enter")...)
	}},
	{"storage_providers", func(m *model) { send(m, keys("0")...); send(m, testStorage()); send(m, keys("s")...) }},
	{"storage_provider", func(m *model) {
		send(m, keys("0")...)
		send(m, testStorage())
		send(m, keys("s", "down", "down", "enter")...)
	}},
	{"storage_meters", func(m *model) { send(m, keys("0")...); send(m, testStorage()); send(m, keys("S")...) }},
	{"storage_meter", func(m *model) { send(m, keys("0")...); send(m, testStorage()); send(m, keys("S", "enter")...) }},
	{"storage_filter", func(m *model) {
		send(m, keys("0")...)
		send(m, testStorage())
		send(m, keys("/", "repairing", "enter")...)
	}},
	{"storage_help", func(m *model) { send(m, keys("0", "?")...) }},
}

func TestGoldenStorage(t *testing.T) {
	scenarios := storageScenarios
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

// TestTabBarFitsTenTabs: with the tenth tab (key 0) the bar still fits 80
// columns with every title, and narrower terminals cut the other tabs'
// titles, never the shown one's, down to their digits.
func TestTabBarFitsTenTabs(t *testing.T) {
	m := loaded(t, 80, 24)
	send(m, keys("0")...)
	bar := strings.Split(screen(m), "\n")[0]
	if bar != "1Overview 2Blocks 3Accounts 4Contracts 5Cluster 6ROME 7Certs 8Jobs 9Gov 0Storage" {
		t.Fatalf("80 columns: %q", bar)
	}
	send(m, tea.WindowSizeMsg{Width: 60, Height: 24})
	bar = strings.Split(screen(m), "\n")[0]
	if !strings.Contains(bar, "0Storage") || !strings.Contains(bar, "1Ove") || strings.Contains(bar, "…") || ansi.StringWidth(bar) > 60 {
		t.Fatalf("60 columns: %q", bar)
	}
	send(m, tea.WindowSizeMsg{Width: 30, Height: 24})
	if bar = strings.Split(screen(m), "\n")[0]; bar != "1 2 3 4 5 6 7 8 9 0Storage" {
		t.Fatalf("30 columns: %q", bar)
	}
}

func TestStorageResizeNeverWraps(t *testing.T) {
	for _, sc := range storageScenarios {
		m := loaded(t, 160, 48)
		sc.setup(m)
		for _, sz := range [][2]int{{80, 24}, {100, 30}, {81, 25}, {200, 60}, {40, 10}} {
			send(m, tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
			checkFrame(t, screen(m), sz[0], sz[1])
		}
	}
}

// TestStorageFetch runs the Storage view's command against a node serving
// fixture answers: the pins, the providers of their holders and of the
// meters (one of which fails: the view says it is partly loaded), the
// certificates measured by a meter (others dropped), joules per energy
// unit, and the metered epochs of the meter owner's active energy leases
// only (not a compute lease, not a lease it is the consumer of).
func TestStorageFetch(t *testing.T) {
	fx := testStorage()
	var usageAsked []string
	routes := map[string]any{
		"/v1/storage/pins":           fx.pins,
		"/v1/meters":                 fx.meters,
		"/v1/certs":                  append(fx.certs, client.Certificate{Statement: client.CertStatement{ID: 40, Amount: 9, Measured: "proofs"}}),
		"/v1/rome/params":            map[string]any{"joules_per_energy_unit": 1000, "epoch_blocks": 10},
		"/v1/providers/" + addrAlice: fx.providers[0],
		"/v1/providers/" + addrCarol: fx.providers[2],
		"/v1/rome/leases": []client.RomeLease{
			{ID: 21, Provider: addrAlice, Consumer: addrBob, Amounts: map[string]uint64{"energy": 50}},
			{ID: 20, Provider: addrAlice, Consumer: addrBob, Amounts: map[string]uint64{"energy": 50, "compute": 5}},
			{ID: 19, Provider: addrAlice, Consumer: addrBob, Amounts: map[string]uint64{"compute": 5}},
			{ID: 18, Provider: addrBob, Consumer: addrAlice, Amounts: map[string]uint64{"energy": 5}},
		},
		"/v1/rome/leases/20/usage": client.LeaseUsage{LeaseID: 20, Epoch: 40, Epochs: []client.MeteredEpoch{
			{Epoch: 39, Settled: true, Meters: []client.MeterEpoch{{Kind: "energy", MeterID: 2, Amount: 2_300_000, Measure: "mJ", Readings: 3}}},
			{Epoch: 40, Meters: []client.MeterEpoch{{Kind: "energy", MeterID: 2, Amount: 1_200_000, Measure: "mJ", Readings: 2}}},
		}},
		"/v1/rome/leases/21/usage": client.LeaseUsage{LeaseID: 21, Epoch: 40, Epochs: []client.MeteredEpoch{{Epoch: 40}}},
	}
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/usage") {
			usageAsked = append(usageAsked, r.URL.Path)
		}
		if r.URL.Path == "/v1/rome/leases" && r.URL.Query().Get("owner") != addrAlice {
			json.NewEncoder(w).Encode([]client.RomeLease{})
			return
		}
		v, ok := routes[r.URL.Path]
		if !ok {
			http.Error(w, `{"error":"no such thing"}`, http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(v)
	}))
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	msg, ok := fetcher{ctx: t.Context(), clients: []*client.Client{c}}.storage(0)().(storageMsg)
	if !ok || msg.err != nil {
		t.Fatalf("fetch: %#v", msg)
	}
	if len(msg.pins.Pins) != 5 || len(msg.meters) != 2 || len(msg.certs) != 3 || msg.jpu != 1000 {
		t.Fatalf("pins %d, meters %d, certs %d, jpu %d", len(msg.pins.Pins), len(msg.meters), len(msg.certs), msg.jpu)
	}
	if len(msg.providers) != 2 || msg.partial == nil || !strings.Contains(msg.partial.Error(), addrBob) {
		t.Fatalf("providers %d, partial %v", len(msg.providers), msg.partial)
	}
	if strings.Join(usageAsked, " ") != "/v1/rome/leases/21/usage /v1/rome/leases/20/usage" {
		t.Fatalf("usage asked for %v", usageAsked)
	}
	if u := msg.uses[2]; len(u) != 2 || u[0].lease != 20 || !u[0].settled || u[1].amount != 1_200_000 {
		t.Fatalf("meter 2 uses: %+v", u)
	}
	m := loaded(t, 120, 40)
	send(m, keys("0")...)
	send(m, msg)
	if got := screen(m); !strings.Contains(got, "partly loaded: provider sos1qbob") {
		t.Fatalf("the partial answer is not said:\n%s", got)
	}
}
