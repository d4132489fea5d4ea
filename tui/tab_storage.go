package tui

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/sos-kernel/sos/kernel/client"
)

// storageTab shows storage leases and meters on the focused node: the
// pinned blobs with their holders and proofs (GET /v1/storage/pins), the
// storage record of each provider that holds one or owns a meter (GET
// /v1/providers/{addr}), and the registered meters with their last
// reading and the energy settled on their word (GET /v1/meters, the
// certificates that say "measured: meter <id>", and the metered epochs of
// the owners' active leases). s switches the list, / filters it, enter
// opens the selected item, esc goes back.
type storageTab struct {
	loadState
	partial error // a provider record or a lease's usage that did not load

	epoch, height uint64
	pins          []client.StoragePin
	pinStates     []string // per pin
	pinnedBytes   uint64
	counts        map[string]int // pins by state
	provs         []storageProvider
	meters        []storageMeter
	jpu           uint64 // joules per energy unit (0: unknown)

	sections
	// opened is the key of the item whose detail is shown ("" : the list).
	opened string
}

// The lists of the Storage view, in the order s cycles them.
const (
	storagePins = iota
	storageProviders
	storageMeters
	numStorageLists
)

var storageListNames = [numStorageLists]string{"Pinned blobs", "Providers", "Meters"}

// storageProvider is a provider's storage record and what the loaded
// pins and meters say of it.
type storageProvider struct {
	addr     string
	rec      *client.Provider // nil: not loaded
	holding  int              // holdings of loaded pins it holds now
	proven   int              // of which proven
	missed   int              // of which missing their last proof
	bytes    uint64           // pinned bytes it holds
	meters   []uint64
	bond     []client.Coin // left in its offers
	slashed  []client.Coin
	offers   []client.RomeOffer
	regions  []string
	holdPins []int // indexes into pins
}

// storageMeter is a meter with the energy settled on its word.
type storageMeter struct {
	m         client.Meter
	certified uint64   // units of its kind certified as measured by it
	certIDs   []uint64 // those certificates
	uses      []meterUse
}

// meterUse is what a meter measured for a lease in an epoch.
type meterUse struct {
	lease, epoch, amount uint64
	measure              string
	readings             uint32
	settled              bool
}

// storageMsg is one snapshot of storage and meters.
type storageMsg struct {
	node      int
	pins      *client.StoragePins
	providers []client.Provider
	meters    []client.Meter
	certs     []client.Certificate // those measured by a meter
	uses      map[uint64][]meterUse
	jpu       uint64
	partial   error
	err       error
}

// Bounds of one storage snapshot: pins listed, provider records fetched,
// and meter owners and their active leases whose usage is read.
const (
	storagePinsLimit = 500
	storageProvsMax  = 64
	meterOwnersMax   = 8
	meterLeasesMax   = 8
)

func (f fetcher) storage(node int) tea.Cmd {
	return f.call(node, func(ctx context.Context, c *client.Client) tea.Msg {
		out := storageMsg{node: node, uses: map[uint64][]meterUse{}}
		var err error
		if out.pins, err = c.StoragePins(ctx, storagePinsLimit); err != nil {
			return storageMsg{node: node, err: err}
		}
		if out.meters, err = c.Meters(ctx, ""); err != nil {
			return storageMsg{node: node, err: err}
		}
		certs, err := c.Certificates(ctx, "")
		if err != nil {
			return storageMsg{node: node, err: err}
		}
		for _, ct := range certs {
			if strings.HasPrefix(ct.Statement.Measured, "meter ") {
				out.certs = append(out.certs, ct)
			}
		}
		if raw, err := c.RomeParams(ctx); err == nil {
			var p struct {
				J uint64 `json:"joules_per_energy_unit"`
			}
			if json.Unmarshal(raw, &p) == nil {
				out.jpu = p.J
			}
		}
		for i, a := range storageAddrs(out.pins.Pins, out.meters) {
			if i == storageProvsMax {
				break
			}
			p, err := c.Provider(ctx, a)
			if err != nil {
				out.partial = fmt.Errorf("provider %s: %w", a, err)
				continue
			}
			out.providers = append(out.providers, *p)
		}
		// A meter's record has its last counter and sequence number; the
		// epoch and lease it metered are in the owner's leases' usage.
		kinds := map[string]map[string]bool{}
		var owners []string
		for _, mt := range out.meters {
			if kinds[mt.Owner] == nil {
				kinds[mt.Owner] = map[string]bool{}
				owners = append(owners, mt.Owner)
			}
			kinds[mt.Owner][mt.Kind] = true
		}
		sort.Strings(owners)
		for _, o := range owners[:min(len(owners), meterOwnersMax)] {
			ls, err := c.RomeLeases(ctx, client.RomeFilter{Owner: o, Status: "active", Limit: 100})
			if err != nil {
				out.partial = fmt.Errorf("leases of %s: %w", o, err)
				continue
			}
			n := 0
			for _, l := range ls {
				metered := false
				for k := range l.Amounts {
					metered = metered || kinds[o][k]
				}
				if l.Provider != o || !metered || n == meterLeasesMax {
					continue
				}
				n++
				u, err := c.LeaseUsage(ctx, l.ID)
				if err != nil {
					out.partial = fmt.Errorf("usage of lease %d: %w", l.ID, err)
					continue
				}
				for _, ep := range u.Epochs {
					for _, me := range ep.Meters {
						out.uses[me.MeterID] = append(out.uses[me.MeterID], meterUse{lease: l.ID, epoch: ep.Epoch, amount: me.Amount,
							measure: me.Measure, readings: me.Readings, settled: ep.Settled})
					}
				}
			}
		}
		return out
	})
}

// storageAddrs are the providers of the pins' holders and the meters'
// owners, sorted.
func storageAddrs(pins []client.StoragePin, meters []client.Meter) []string {
	seen := map[string]bool{}
	var out []string
	add := func(a string) {
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, p := range pins {
		for _, h := range p.Holders {
			add(h.Provider)
		}
	}
	for _, m := range meters {
		add(m.Owner)
	}
	sort.Strings(out)
	return out
}

func newStorageTab() *storageTab {
	return &storageTab{sections: newSections(numStorageLists, "blob id, #request, provider, node, region, state or #meter")}
}

func (t *storageTab) title() string { return "Storage" }

func (t *storageTab) bindings(k keyMap) []key.Binding {
	if t.opened != "" {
		return []key.Binding{k.Back, k.Section}
	}
	return []key.Binding{k.Section, k.Enter, k.Filter, k.Up, k.Down}
}

func (t *storageTab) refresh(e *env) tea.Cmd { return e.f.storage(e.focus) }

func (t *storageTab) update(e *env, msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case focusMsg:
		*t = *newStorageTab()
	case storageMsg:
		if t.took(e.focus, msg.node, msg.err) {
			t.set(msg)
		}
	case tea.KeyPressMsg:
		return t.key(e, msg)
	default:
		return t.filter.tick(msg)
	}
	return nil
}

func pinKey(p *client.StoragePin) string {
	return p.BlobID + "/" + u64(p.RequestID) + "/" + strconv.FormatUint(uint64(p.Pin), 10)
}

func meterKey(id uint64) string { return "#" + u64(id) }

// set takes a snapshot in, keeping each list's cursor on its item.
func (t *storageTab) set(msg storageMsg) {
	t.begin()
	t.partial = msg.partial
	t.jpu = msg.jpu
	if msg.pins == nil {
		msg.pins = &client.StoragePins{}
	}
	t.epoch, t.height = msg.pins.Epoch, msg.pins.Height
	t.pins = append(t.pins[:0], msg.pins.Pins...)
	t.pinStates = t.pinStates[:0]
	t.counts = map[string]int{}
	t.pinnedBytes = 0
	provs := map[string]*storageProvider{}
	prov := func(a string) *storageProvider {
		if p := provs[a]; p != nil {
			return p
		}
		p := &storageProvider{addr: a}
		provs[a] = p
		return p
	}
	for i := range t.pins {
		p := &t.pins[i]
		state := pinState(p, t.epoch)
		t.pinStates = append(t.pinStates, state)
		t.counts[state]++
		t.pinnedBytes += p.Size
		hay := []string{p.BlobID, "#" + u64(p.RequestID), "request " + u64(p.RequestID), p.Consumer, state}
		for j := range p.Holders {
			h := &p.Holders[j]
			hay = append(hay, h.Provider, h.Node, h.Region, "lease "+u64(h.LeaseID))
			pr := prov(h.Provider)
			if !h.Holding {
				continue
			}
			pr.holding++
			pr.bytes += p.Size
			pr.holdPins = append(pr.holdPins, i)
			switch holderState(h, t.epoch) {
			case "held":
				pr.proven++
			case "missed":
				pr.missed++
			}
		}
		t.add(storagePins, pinKey(p), hay...)
	}
	t.meters = t.meters[:0]
	for _, m := range msg.meters {
		sm := storageMeter{m: m, uses: msg.uses[m.MeterID]}
		sort.SliceStable(sm.uses, func(i, j int) bool {
			a, b := sm.uses[i], sm.uses[j]
			if a.epoch != b.epoch {
				return a.epoch > b.epoch
			}
			return a.lease > b.lease
		})
		for _, c := range msg.certs {
			if c.Statement.Measured == "meter "+u64(m.MeterID) {
				sm.certified += c.Statement.Amount
				sm.certIDs = append(sm.certIDs, c.Statement.ID)
			}
		}
		pr := prov(m.Owner)
		pr.meters = append(pr.meters, m.MeterID)
		t.meters = append(t.meters, sm)
		t.add(storageMeters, meterKey(m.MeterID), meterKey(m.MeterID), "meter "+u64(m.MeterID), m.Owner, m.Kind, m.Key)
	}
	for i := range msg.providers {
		r := &msg.providers[i]
		pr := prov(r.Address)
		pr.rec = r
		for _, o := range r.Offers {
			pr.offers = append(pr.offers, o)
			pr.bond = addCoins(pr.bond, o.Bond)
			pr.slashed = addCoins(pr.slashed, o.Slashed)
			if o.Region != "" && !contains(pr.regions, o.Region) {
				pr.regions = append(pr.regions, o.Region)
			}
		}
	}
	t.provs = t.provs[:0]
	for _, pr := range provs {
		t.provs = append(t.provs, *pr)
	}
	sort.Slice(t.provs, func(i, j int) bool { return t.provs[i].addr < t.provs[j].addr })
	for i := range t.provs {
		pr := &t.provs[i]
		t.add(storageProviders, pr.addr, append([]string{pr.addr}, pr.regions...)...)
	}
	t.end()
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// addCoins sums coins by denom (amounts are decimal strings of any size).
func addCoins(sum, add []client.Coin) []client.Coin {
	for _, c := range add {
		v, ok := new(big.Int).SetString(c.Amount, 10)
		if !ok {
			continue
		}
		found := false
		for i := range sum {
			if sum[i].Denom == c.Denom {
				cur, _ := new(big.Int).SetString(sum[i].Amount, 10)
				if cur == nil {
					cur = new(big.Int)
				}
				sum[i].Amount = cur.Add(cur, v).String()
				found = true
			}
		}
		if !found {
			sum = append(sum, client.Coin{Denom: c.Denom, Amount: v.String()})
		}
	}
	return sum
}

// holderState is how a lease holds a pinned blob in epoch: held (it proved
// it), fetching (its node has not proved it yet: it is bringing the blob
// over the data plane), missed (its last challenge went unproven) or
// dropped (the lease ended, or lost the replica after missed proofs).
func holderState(h *client.BlobHolder, epoch uint64) string {
	switch {
	case !h.Holding:
		return "dropped"
	case h.LastProofHeight > 0 && h.LastProofEpoch == epoch:
		return "held" // proven in this epoch, whatever came before
	case h.Misses > 0 && h.LastMissEpoch+1 >= epoch:
		return "missed"
	case h.LastProofHeight == 0:
		return "fetching"
	}
	return "held"
}

// pinState is a pinned blob's state: missed when a holder missed its last
// challenge; repairing when a replica was lost and fewer than the wanted
// replicas are proven (its new holder fetches from the others); waiting
// while no lease holds it (the request waits for offers); fetching while
// a holder has not proved it yet; held when the wanted replicas proved
// it; ended when the request no longer pays for it.
func pinState(p *client.StoragePin, epoch uint64) string {
	if p.EndEpoch > 0 && epoch >= p.EndEpoch || p.RequestStatus == "cancelled" || p.RequestStatus == "expired" || p.RequestStatus == "done" {
		return "ended"
	}
	held, holding, dropped, fetching, missed := 0, 0, false, false, false
	for i := range p.Holders {
		if p.Holders[i].Holding {
			holding++
		}
		switch holderState(&p.Holders[i], epoch) {
		case "held":
			held++
		case "dropped":
			dropped = true
		case "fetching":
			fetching = true
		case "missed":
			missed = true
		}
	}
	wanted := max(int(p.Replicas), 1)
	switch {
	case missed:
		return "missed"
	case held < wanted && (dropped || p.Repairs > 0):
		return "repairing"
	case holding == 0:
		return "waiting"
	case fetching || held < wanted:
		return "fetching"
	}
	return "held"
}

func stateText(st styles, s string) string {
	switch s {
	case "held":
		return st.good.Render(s)
	case "fetching", "repairing", "waiting":
		return st.warn.Render(s)
	case "missed":
		return st.bad.Render(s)
	case "ended", "dropped":
		return st.dim.Render(s)
	}
	return s
}

func (t *storageTab) key(e *env, msg tea.KeyPressMsg) tea.Cmd {
	k := e.keys
	if !t.typing() && !key.Matches(msg, k.Section) {
		switch {
		case t.opened != "":
			// The detail follows the cursor: ↑↓ open the previous/next item.
			if key.Matches(msg, k.Back) {
				t.opened = ""
			} else if t.lists[t.sec].list.move(k, msg, t.n(t.sec), t.rows(e)) {
				t.opened = t.selectedKey(t.sec)
			}
			return nil
		case key.Matches(msg, k.Enter) && t.ready():
			t.opened = t.selectedKey(t.sec)
			return nil
		}
	}
	cmd, switched := t.handleKey(k, msg, t.ready(), t.rows(e))
	if switched {
		t.opened = ""
	}
	return cmd
}

// headLines is what the list view draws above its rows.
func (t *storageTab) headLines() int {
	n := 5 // title, pins, proofs, list bar, table header
	if t.filterShown() {
		n++
	}
	return n
}

func (t *storageTab) rows(e *env) int { return max(e.bodyHeight()-t.headLines(), 1) }

func (t *storageTab) view(e *env, w, h int) string {
	st := e.st
	title := st.header.Render("Storage")
	switch {
	case !t.loaded:
		return title + "\n" + st.dim.Render("loading…")
	case t.noAPI:
		return title + "\n" + st.warn.Render("no storage API on this node") + st.dim.Render(" (an older node: storage leases came with issue 13)")
	case unavailable(t.err):
		return title + "\n" + st.warn.Render("the ROME market is not configured on this node") + "\n" + st.dim.Render(errText(t.err))
	case t.err != nil:
		return title + "\n" + st.bad.Render("cannot load storage: "+errText(t.err))
	}
	if t.opened != "" {
		return strings.Join(t.detail(e, w, h), "\n")
	}
	lines := []string{title + fmt.Sprintf("  epoch %d · height %d", t.epoch, t.height) +
		st.dim.Render(fmt.Sprintf(" · %s (%s) · %s", plural(len(t.pins), "pinned blob"), bytesHuman(int64(t.pinnedBytes)), plural(len(t.meters), "meter")))}
	var states []string
	for _, s := range []string{"held", "fetching", "waiting", "missed", "repairing", "ended"} {
		if c := t.counts[s]; c > 0 || s == "held" {
			states = append(states, stateText(st, fmt.Sprintf("%d %s", c, s)))
		}
	}
	lines = append(lines, field(st, "pins", strings.Join(states, " · ")), t.proofsLine(e))
	lines = append(lines, t.bar(st, storageListNames[:], "s next list · enter opens"))
	if f := t.filterLine(st, w, storageListNames[t.sec]); f != "" {
		lines = append(lines, f)
	}
	lines = append(lines, t.table(e, w, max(h-len(lines)-1, 1))...)
	return strings.Join(lines, "\n")
}

// proofsLine sums the loaded providers' storage records.
func (t *storageTab) proofsLine(e *env) string {
	st := e.st
	var proven, missed uint64
	var slashed []client.Coin
	for _, p := range t.provs {
		if p.rec != nil {
			proven += p.rec.StorageProven
			missed += p.rec.StorageMissed
		}
		slashed = addCoins(slashed, p.slashed)
	}
	s := fmt.Sprintf("%s proven, %s missed", group(u64(proven)), group(u64(missed)))
	if missed > 0 {
		s = st.warn.Render(s)
	}
	s += st.dim.Render(fmt.Sprintf(" (holding-epochs of %s) · slashed %s", plural(len(t.provs), "provider"), coinsText(e.denoms, slashed)))
	if t.partial != nil {
		s += st.warn.Render(" · partly loaded: " + errText(t.partial))
	}
	return field(st, "proofs", s)
}

func (t *storageTab) table(e *env, w, rows int) []string {
	st := e.st
	var cols []column
	// The base widths fit 80 columns; wider terminals widen the text columns.
	switch t.sec {
	case storagePins:
		cols = spread([]column{{"", 1, false}, {"blob", 13, false}, {"size", 9, true}, {"req", 4, true}, {"held", 4, true}, {"state", 9, false},
			{"last proof", 10, true}, {"miss", 4, true}, {"holders", 14, false}}, w, 1, 8)
	case storageProviders:
		cols = spread([]column{{"", 1, false}, {"provider", 17, false}, {"holds", 5, true}, {"proven", 7, true}, {"missed", 6, true},
			{"bond left", 14, false}, {"slashed", 13, false}, {"meters", 6, true}}, w, 1, 5, 6)
	case storageMeters:
		cols = spread([]column{{"", 1, false}, {"meter", 5, true}, {"kind", 6, false}, {"owner", 15, false}, {"counter", 10, true},
			{"seq", 5, true}, {"epoch", 5, true}, {"settled", 11, true}, {"reads", 5, true}}, w, 3)
	}
	out := []string{tableHeader(st, cols)}
	n := t.n(t.sec)
	out = append(out, t.rowLines(st, cols, w, rows, func(i int) []string { return t.cells(e, t.index(t.sec, i), cols) })...)
	if n == 0 {
		what := map[int]string{storagePins: "no blob pinned yet (sos blob pin)", storageProviders: "no provider holds a pinned blob or owns a meter",
			storageMeters: "no meter registered (sos meter register)"}[t.sec]
		if t.filtering() {
			what = "nothing matches the filter"
		}
		out = append(out, st.dim.Render("  "+what))
	}
	return out
}

// cells are the texts of item i of the shown list, after the cursor mark.
func (t *storageTab) cells(e *env, i int, cols []column) []string {
	st := e.st
	switch t.sec {
	case storagePins:
		p := &t.pins[i]
		var last, misses uint64
		var who []string
		held := 0
		for j := range p.Holders {
			h := &p.Holders[j]
			last = max(last, h.LastProofHeight)
			misses += h.Misses
			if h.Holding {
				who = append(who, shortAddr(h.Provider, 13))
			}
			if holderState(h, t.epoch) == "held" {
				held++
			}
		}
		lastText := "—"
		if last > 0 {
			lastText = u64(last)
		}
		missText := u64(misses)
		if misses > 0 {
			missText = st.bad.Render(missText)
		}
		return []string{short(p.BlobID, cols[1].width-1), bytesHuman(int64(p.Size)), "#" + u64(p.RequestID),
			fmt.Sprintf("%d/%d", held, max(p.Replicas, 1)), stateText(st, t.pinStates[i]), lastText, missText, orDash(strings.Join(who, " "))}
	case storageProviders:
		p := &t.provs[i]
		proven, missed := "—", "—"
		if p.rec != nil {
			proven, missed = group(u64(p.rec.StorageProven)), group(u64(p.rec.StorageMissed))
			if p.rec.StorageMissed > 0 {
				missed = st.bad.Render(missed)
			}
		}
		return []string{shortAddr(p.addr, cols[1].width), itoa(p.holding), proven, missed, coinsText(e.denoms, p.bond),
			coinsText(e.denoms, p.slashed), itoa(len(p.meters))}
	case storageMeters:
		m := &t.meters[i]
		counter, seq, epoch := "—", "—", "—"
		if m.m.Readings > 0 {
			counter, seq = measureText(m.m.Counter, m.m.Measure), u64(m.m.Seq)
		}
		if len(m.uses) > 0 {
			epoch = u64(m.uses[0].epoch)
		}
		return []string{"#" + u64(m.m.MeterID), m.m.Kind, shortAddr(m.m.Owner, cols[3].width), counter, seq, epoch,
			t.unitsText(m.m.Kind, m.certified), u64(m.m.Readings)}
	}
	return nil
}

// measureText renders an amount of a meter's measure in display units:
// millijoules as mJ, J, kJ, MJ, GJ.
func measureText(v uint64, measure string) string {
	if measure != "mJ" {
		return group(u64(v)) + " " + measure
	}
	return energyText(float64(v) / 1000)
}

// energyText renders joules with a prefix and three significant digits.
func energyText(j float64) string {
	units := []string{"J", "kJ", "MJ", "GJ", "TJ", "PJ"}
	if j < 1 && j > 0 {
		return strconv.FormatFloat(j*1000, 'f', -1, 64) + " mJ"
	}
	i := 0
	for j >= 1000 && i < len(units)-1 {
		j /= 1000
		i++
	}
	return strconv.FormatFloat(j, 'g', 3, 64) + " " + units[i]
}

// unitsText is an amount of market units of a kind: energy in joules when
// the node says how many make a unit.
func (t *storageTab) unitsText(kind string, units uint64) string {
	if units == 0 {
		return "0"
	}
	if kind == "energy" && t.jpu > 0 {
		return energyText(float64(units) * float64(t.jpu))
	}
	return group(u64(units)) + " units"
}

// detail draws the opened item.
func (t *storageTab) detail(e *env, w, h int) []string {
	st := e.st
	back := st.dim.Render("  (esc back)")
	idx := -1
	for i, k := range t.lists[t.sec].keys {
		if k == t.opened {
			idx = i
		}
	}
	if idx < 0 {
		return []string{st.header.Render("Storage") + back, st.warn.Render("no longer listed by the node: " + t.opened)}
	}
	var out []string
	switch t.sec {
	case storagePins:
		out = t.pinDetail(e, &t.pins[idx], t.pinStates[idx], w, h)
	case storageProviders:
		out = t.providerDetail(e, &t.provs[idx], w, h)
	case storageMeters:
		out = t.meterDetail(e, &t.meters[idx], w, h)
	}
	out[0] += back
	return out
}

func (t *storageTab) pinDetail(e *env, p *client.StoragePin, state string, w, h int) []string {
	st := e.st
	counts := map[string]int{}
	for i := range p.Holders {
		counts[holderState(&p.Holders[i], t.epoch)]++
	}
	wanted := max(int(p.Replicas), 1)
	rep := fmt.Sprintf("%d proven of %d wanted", counts["held"], wanted)
	for _, s := range []string{"fetching", "missed", "dropped"} {
		if counts[s] > 0 {
			rep += fmt.Sprintf(" · %d %s", counts[s], s)
		}
	}
	if p.Repairs > 0 {
		rep += " · " + plural(int(p.Repairs), "repair")
	}
	if p.OpenReplicas > 0 {
		rep += st.warn.Render(fmt.Sprintf(" · %d waiting for a lease", p.OpenReplicas))
	}
	out := []string{st.header.Render("Pinned blob"),
		field(st, "blob id", p.BlobID),
		field(st, "state", stateText(st, state)),
		field(st, "size", fmt.Sprintf("%s (%s bytes)", bytesHuman(int64(p.Size)), group(u64(p.Size)))),
		field(st, "pinned", fmt.Sprintf("request #%d pin %d at height %d (epoch %d)", p.RequestID, p.Pin, p.Height, p.Epoch)+
			st.dim.Render(" · by "+shortAddr(p.Consumer, 24))),
		field(st, "request", fmt.Sprintf("%s · replicas end at epoch %d", orDash(p.RequestStatus), p.EndEpoch)),
		field(st, "replicas", rep),
		"",
		st.header.Render(fmt.Sprintf("Holders (%d)", len(p.Holders))),
	}
	cols := spread([]column{{"lease", 6, true}, {"provider", 15, false}, {"region", 8, false}, {"state", 8, false}, {"from", 5, true},
		{"last proof", 14, true}, {"misses", 13, true}}, w, 1)
	out = append(out, tableHeader(st, cols))
	room := h - len(out)
	for i := range p.Holders {
		if i == room-1 && len(p.Holders) > room {
			out = append(out, st.dim.Render(fmt.Sprintf("  … %d more (sos blob where %s)", len(p.Holders)-i, short(p.BlobID, 12))))
			break
		}
		hd := &p.Holders[i]
		last := "—"
		if hd.LastProofHeight > 0 {
			last = u64(hd.LastProofHeight)
			if hd.LastProofEpoch > 0 {
				last += fmt.Sprintf(" (e%d)", hd.LastProofEpoch)
			}
		}
		misses := u64(hd.Misses)
		if hd.Misses > 0 {
			misses = st.bad.Render(misses + fmt.Sprintf(" (last e%d)", hd.LastMissEpoch))
		}
		out = append(out, tableRow(cols, "#"+u64(hd.LeaseID), shortAddr(hd.Provider, cols[1].width), orDash(hd.Region),
			stateText(st, holderState(hd, t.epoch)), u64(hd.FromEpoch), last, misses))
	}
	if len(p.Holders) == 0 {
		out = append(out, st.dim.Render("  no lease holds it yet: the request waits for storage offers"))
	}
	return out
}

func (t *storageTab) providerDetail(e *env, p *storageProvider, w, h int) []string {
	st := e.st
	out := []string{st.header.Render("Provider"), field(st, "address", p.addr)}
	if r := p.rec; r != nil {
		pct := "—"
		if tot := r.StorageProven + r.StorageMissed; tot > 0 {
			pct = fmt.Sprintf("%.1f%%", float64(r.StorageMissed)*100/float64(tot))
		}
		out = append(out,
			field(st, "proofs", fmt.Sprintf("%s holding-epochs proven, %s missed (%s)", group(u64(r.StorageProven)), group(u64(r.StorageMissed)), pct)),
			field(st, "jobs", fmt.Sprintf("%d completed · %d failed · %d timed out · %d slashed", r.Completed, r.Failed, r.TimedOut, r.Slashed)))
	} else {
		out = append(out, field(st, "proofs", st.dim.Render("record not loaded")))
	}
	out = append(out,
		field(st, "bond left", coinsText(e.denoms, p.bond)+st.dim.Render(" · slashed "+coinsText(e.denoms, p.slashed))),
		field(st, "holds", fmt.Sprintf("%s (%s): %d proven, %d missing their last proof", plural(p.holding, "pinned blob"), bytesHuman(int64(p.bytes)), p.proven, p.missed)))
	var ms []string
	for _, id := range p.meters {
		for _, m := range t.meters {
			if m.m.MeterID == id {
				ms = append(ms, fmt.Sprintf("#%d %s", id, m.m.Kind))
			}
		}
	}
	out = append(out, field(st, "meters", orDash(strings.Join(ms, " · "))), "", st.header.Render(fmt.Sprintf("Offers (%d)", len(p.offers))))
	cols := spread([]column{{"offer", 6, true}, {"status", 9, false}, {"region", 8, false}, {"storage", 13, false}, {"bond left", 16, false},
		{"slashed", 16, false}}, w, 3, 4, 5)
	out = append(out, tableHeader(st, cols))
	room := h - len(out)
	for i, o := range p.offers {
		if i == room-1 && len(p.offers) > room {
			out = append(out, st.dim.Render(fmt.Sprintf("  … %d more", len(p.offers)-i)))
			break
		}
		stor := "—"
		if c, ok := o.Capacity["storage"]; ok {
			stor = group(u64(o.Leased["storage"])) + "/" + group(u64(c))
		}
		out = append(out, tableRow(cols, "#"+u64(o.ID), statusText(st, o.Status), orDash(o.Region), stor, coinsText(e.denoms, o.Bond), coinsText(e.denoms, o.Slashed)))
	}
	if len(p.offers) == 0 {
		out = append(out, st.dim.Render("  no offer naming a node"))
	}
	return out
}

func (t *storageTab) meterDetail(e *env, m *storageMeter, w, h int) []string {
	st := e.st
	mt := &m.m
	out := []string{st.header.Render(fmt.Sprintf("Meter #%d", mt.MeterID)) + st.dim.Render(fmt.Sprintf(" · %s · registered at height %d", mt.Kind, mt.Height)),
		field(st, "owner", mt.Owner),
		field(st, "device key", orDash(mt.Key)+st.dim.Render(" (ML-DSA-65 fingerprint)"))}
	last := st.dim.Render("no reading yet")
	if mt.Readings > 0 {
		last = fmt.Sprintf("counter %s · seq %d · %s", measureText(mt.Counter, mt.Measure), mt.Seq, plural(int(mt.Readings), "reading"))
		if len(m.uses) > 0 {
			last += fmt.Sprintf(" · epoch %d on lease #%d", m.uses[0].epoch, m.uses[0].lease)
		} else {
			last += st.dim.Render(" · epoch unknown: no active lease it metered")
		}
	}
	out = append(out, field(st, "last reading", last))
	certs := make([]string, 0, len(m.certIDs))
	for _, id := range m.certIDs {
		certs = append(certs, "#"+u64(id))
	}
	settled := t.unitsText(mt.Kind, m.certified) + " certified"
	if len(certs) > 0 {
		settled += st.dim.Render(" (certificates " + strings.Join(certs, " ") + ")")
	}
	var metered uint64
	for _, u := range m.uses {
		if u.settled {
			metered += u.amount
		}
	}
	out = append(out, field(st, "settled", settled),
		field(st, "", st.dim.Render("and "+measureText(metered, mt.Measure)+" metered in settled epochs of active leases")),
		"", st.header.Render("Metered epochs")+st.dim.Render(" (active leases, newest first)"))
	cols := layoutColumns([]column{{"epoch", 6, true}, {"lease", 6, true}, {"metered", 10, true}, {"readings", 8, true}, {"settlement", 12, false}}, w)
	out = append(out, tableHeader(st, cols))
	room := h - len(out)
	for i, u := range m.uses {
		if i == room-1 && len(m.uses) > room {
			out = append(out, st.dim.Render(fmt.Sprintf("  … %d more", len(m.uses)-i)))
			break
		}
		set := st.warn.Render("pending")
		if u.settled {
			set = st.good.Render("settled")
		}
		out = append(out, tableRow(cols, u64(u.epoch), "#"+u64(u.lease), measureText(u.amount, u.measure), u64(uint64(u.readings)), set))
	}
	if len(m.uses) == 0 {
		out = append(out, st.dim.Render("  none on an active lease"))
	}
	return out
}
