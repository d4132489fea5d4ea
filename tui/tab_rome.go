package tui

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/sos-kernel/sos/kernel/client"
)

// romeTab is the ROME resource market of the focused node: the epoch and
// the active policy, a utilization bar and the clearing price history per
// resource kind, the disputes, and lists of offers, requests, leases,
// epochs and disputes (s switches the list, / filters it).
type romeTab struct {
	loadState
	market   *client.RomeMarket
	policies []client.RomePolicy
	epochs   []client.RomeEpoch // newest first
	offers   []client.RomeOffer
	requests []client.RomeRequest
	leases   []client.RomeLease
	disputes []romeDispute
	// recentDisputes sums the disputes of the fetched epoch records.
	recentDisputes uint64

	sections
}

// The lists of the ROME view, in the order s cycles them.
const (
	romeOffers = iota
	romeRequests
	romeLeases
	romeEpochsList
	romeDisputes
	numRomeLists
)

var romeListNames = [numRomeLists]string{"Offers", "Requests", "Leases", "Epochs", "Disputes"}

// romeDispute is one rome_dispute event of an epoch record: the lease
// whose two usage reports differed for epoch disputed, found out when
// epoch settled was processed.
type romeDispute struct {
	settled  uint64
	leaseID  uint64
	disputed string
	lease    *client.RomeLease // nil when the lease is not among the loaded ones
}

func newRomeTab() *romeTab {
	return &romeTab{sections: newSections(numRomeLists, "id, owner, status, kind or region")}
}

func (t *romeTab) title() string { return "ROME" }

func (t *romeTab) bindings(k keyMap) []key.Binding {
	return []key.Binding{k.Section, k.Filter, k.Up, k.Down}
}

func (t *romeTab) refresh(e *env) tea.Cmd { return e.f.rome(e.focus) }

func (t *romeTab) update(e *env, msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case focusMsg:
		*t = *newRomeTab()
	case romeMsg:
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

// set takes a snapshot in and builds the rows' search text.
func (t *romeTab) set(msg romeMsg) {
	t.market, t.policies, t.epochs = msg.market, msg.policies, msg.epochs
	t.offers, t.requests, t.leases = msg.offers, msg.requests, msg.leases
	byID := make(map[uint64]*client.RomeLease, len(t.leases))
	for i := range t.leases {
		byID[t.leases[i].ID] = &t.leases[i]
	}
	t.disputes, t.recentDisputes = t.disputes[:0], 0
	for _, ep := range t.epochs {
		t.recentDisputes += uint64(ep.Disputes)
		for _, ev := range ep.Events {
			if ev.Type != "rome_dispute" {
				continue
			}
			d := romeDispute{settled: ep.Epoch}
			for _, a := range ev.Attrs {
				switch a.Key {
				case "lease_id":
					d.leaseID, _ = strconv.ParseUint(a.Value, 10, 64)
				case "epoch":
					d.disputed = a.Value
				}
			}
			d.lease = byID[d.leaseID]
			t.disputes = append(t.disputes, d)
		}
	}
	t.begin()
	for _, o := range t.offers {
		t.add(romeOffers, u64(o.ID), "#"+u64(o.ID), o.Status, o.Owner, o.Region, strings.Join(kindsOf(o.Capacity), " "))
	}
	for _, r := range t.requests {
		t.add(romeRequests, u64(r.ID), "#"+u64(r.ID), r.Status, r.Owner, r.Region, strings.Join(kindsOf(r.Demand), " "))
	}
	for _, x := range t.leases {
		t.add(romeLeases, u64(x.ID), "#"+u64(x.ID), "request #"+u64(x.RequestID), "offer #"+u64(x.OfferID), x.Status, x.Provider, x.Consumer, strings.Join(kindsOf(x.Amounts), " "))
	}
	for _, ep := range t.epochs {
		t.add(romeEpochsList, u64(ep.Epoch), "#"+u64(ep.Epoch), ep.Policy, ep.Rejected)
	}
	for _, d := range t.disputes {
		hay := []string{"#" + u64(d.leaseID), "epoch " + d.disputed, "epoch " + u64(d.settled)}
		if d.lease != nil {
			hay = append(hay, d.lease.Provider, d.lease.Consumer, d.lease.Status)
		}
		t.add(romeDisputes, u64(d.leaseID)+"/"+d.disputed, hay...)
	}
	t.end()
}

func (t *romeTab) key(e *env, msg tea.KeyPressMsg) tea.Cmd {
	cmd, _ := t.handleKey(e.keys, msg, t.ready(), t.rows(e))
	return cmd
}

// headLines is how many lines the summary above the list takes.
func (t *romeTab) headLines() int {
	n := 3 + 1 + 1 + 1 + 1 // title, policy, counts, kinds header, disputes, blank, list bar
	if t.market != nil && t.market.LastEpoch != nil && len(t.market.LastEpoch.Kinds) > 0 {
		n += len(t.market.LastEpoch.Kinds)
	} else {
		n++
	}
	if t.filterShown() {
		n++
	}
	return n + 1 // the table header
}

func (t *romeTab) rows(e *env) int { return max(e.bodyHeight()-t.headLines(), 1) }

func (t *romeTab) view(e *env, w, h int) string {
	st := e.st
	title := st.header.Render("ROME market")
	switch {
	case !t.loaded:
		return title + "\n" + st.dim.Render("loading…")
	case t.noAPI:
		return title + "\n" + st.warn.Render("no market API on this node")
	case unavailable(t.err):
		return title + "\n" + st.warn.Render("the ROME market is not configured on this node") + "\n" + st.dim.Render(errText(t.err))
	case t.err != nil:
		return title + "\n" + st.bad.Render("cannot load the market: "+errText(t.err))
	}
	m := t.market
	if m == nil {
		m = &client.RomeMarket{}
	}
	lines := make([]string, 0, h)
	lines = append(lines,
		title+fmt.Sprintf("  epoch %d · ends at height %d · %d blocks an epoch · height %d", m.Epoch, m.EpochEndHeight, m.EpochBlocks, m.Height),
		field(st, "policy", t.policyText(e, m)),
		field(st, "open", plural(m.OpenOffers, "offer")+" · "+plural(m.OpenRequests, "request")+" · "+plural(m.LiveLeases, "live lease")+" · "+plural(m.PendingCerts, "certificate")+" to sign"),
	)
	lines = append(lines, t.kindLines(e, m, w)...)
	lines = append(lines, t.disputeLine(e, m), "", t.bar(st, romeListNames[:], "s next list"))
	if f := t.filterLine(st, w, romeListNames[t.sec]); f != "" {
		lines = append(lines, f)
	}
	rows := max(h-len(lines)-1, 1)
	lines = append(lines, t.table(e, w, rows)...)
	return strings.Join(lines, "\n")
}

// policyText names the active policy (by its uploaded name when known) and
// says when the last epoch rejected it.
func (t *romeTab) policyText(e *env, m *client.RomeMarket) string {
	st := e.st
	s := policyName(m.ActivePolicy, t.policies)
	if m.FallbackPolicy != "" {
		s += st.dim.Render(" · fallback " + m.FallbackPolicy)
	}
	if le := m.LastEpoch; le != nil && le.Rejected != "" {
		s += "  " + st.bad.Render(fmt.Sprintf("rejected in epoch %d: %s (%s ran)", le.Epoch, le.Rejected, policyName(le.Policy, t.policies)))
	}
	return s
}

// policyLabel is the short form of policyName, for tables.
func policyLabel(id string, ps []client.RomePolicy) string {
	for _, p := range ps {
		if p.ID == id && p.Name != "" {
			return p.Name
		}
	}
	return policyName(id, ps)
}

func policyName(id string, ps []client.RomePolicy) string {
	if id == "" {
		return "—"
	}
	for _, p := range ps {
		if p.ID == id && p.Name != "" {
			return p.Name + " (" + short(id, 12) + ")"
		}
	}
	if strings.HasPrefix(id, "builtin") {
		return id
	}
	return short(id, 16)
}

// kindLines draws one row per resource kind: the last epoch's utilization
// as a bar, leased of capacity, the clearing price and its history over
// the loaded epochs (oldest left).
func (t *romeTab) kindLines(e *env, m *client.RomeMarket, w int) []string {
	st := e.st
	le := m.LastEpoch
	switch {
	case le == nil && m.Epoch == 0:
		return []string{st.header.Render("utilization"), st.dim.Render("  no epoch processed yet")}
	case le == nil:
		return []string{st.header.Render("utilization"), st.dim.Render(fmt.Sprintf("  epoch %d: no epoch record found", m.Epoch))}
	case len(le.Kinds) == 0:
		// Epochs are processed every epoch_blocks; one with nothing
		// offered has no kind to show, which is not "nothing processed".
		return []string{st.header.Render("utilization"),
			st.dim.Render(fmt.Sprintf("  epoch %d processed at height %d: no capacity offered, nothing to allocate", le.Epoch, le.Height))}
	}
	barW := min(max(w/5, 10), 40)
	const kindW, pctW, capW, priceW = 10, 6, 15, 12
	room := max(w-(kindW+1+barW+1+pctW+2+capW+2+priceW+2), 0)
	sparkW := min(room, len(t.epochs))
	head := pad("kind", kindW) + " " + pad(fmt.Sprintf("utilization, epoch %d", le.Epoch), barW+1+pctW) + "  " +
		padLeft("leased/capacity", capW) + "  " + pad("clearing", priceW)
	if trend := fmt.Sprintf("price, last %d epochs", sparkW); room >= len(trend) {
		head += "  " + trend
	} else if sparkW > 0 {
		head += "  trend"
	}
	out := []string{st.header.Render(head)}
	for _, k := range le.Kinds {
		pct := k.Utilization
		if pct == 0 && k.UtilizationBps > 0 {
			pct = float64(k.UtilizationBps) / 100
		}
		fill := min(max(int(pct/100*float64(barW)+0.5), 0), barW)
		bar := st.good.Render(strings.Repeat("█", fill)) + st.dim.Render(strings.Repeat("░", barW-fill))
		row := st.label.Render(pad(k.Kind, kindW)) + " " + bar + " " + padLeft(fmt.Sprintf("%.1f%%", pct), pctW) + "  " +
			padLeft(group(u64(k.Leased))+"/"+group(u64(k.Capacity)), capW) + "  " + pad(orDash(k.ClearingPrice), priceW)
		if sparkW > 0 {
			row += "  " + st.good.Render(sparkline(t.priceHistory(k.Kind, sparkW)))
		}
		out = append(out, row)
	}
	return out
}

// priceHistory is kind's clearing price in the newest n loaded epochs,
// oldest first (an epoch that did not price the kind counts 0).
func (t *romeTab) priceHistory(kind string, n int) []float64 {
	n = min(n, len(t.epochs))
	out := make([]float64, n)
	for i := 0; i < n; i++ {
		ep := &t.epochs[i]
		for _, k := range ep.Kinds {
			if k.Kind == kind {
				out[n-1-i] = leadingNumber(k.ClearingPrice)
				break
			}
		}
	}
	return out
}

// leadingNumber reads the amount of "5uTFLP".
func leadingNumber(s string) float64 {
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	v, _ := strconv.ParseFloat(s[:i], 64)
	return v
}

func (t *romeTab) disputeLine(e *env, m *client.RomeMarket) string {
	st := e.st
	last := uint64(0)
	if m.LastEpoch != nil {
		last = uint64(m.LastEpoch.Disputes)
	}
	s := fmt.Sprintf("%d in the last epoch · %d in the last %d epochs", last, t.recentDisputes, len(t.epochs))
	if last > 0 {
		s = st.bad.Render(s)
	} else if t.recentDisputes > 0 {
		s = st.warn.Render(s)
	}
	if m.LastEpoch != nil {
		s += st.dim.Render(fmt.Sprintf(" · last epoch matched %.1f%%, ", m.LastEpoch.Matched) + plural(int(m.LastEpoch.NewLeases), "new lease") + ", " + plural(int(m.LastEpoch.Certs), "certificate"))
	}
	return field(st, "disputes", s)
}

// table draws the shown list: its header and the rows around the cursor.
func (t *romeTab) table(e *env, w, rows int) []string {
	st := e.st
	var cols []column
	// The base widths fit 80 columns; wider terminals widen the text
	// columns (and show the columns cut off at 80).
	switch t.sec {
	case romeOffers:
		cols = spread([]column{{"", 1, false}, {"offer", 6, true}, {"status", 9, false}, {"leased/capacity", 24, false}, {"price per unit", 18, false}, {"owner", 16, false}, {"region", 10, false}}, w, 3, 4, 5)
	case romeRequests:
		cols = spread([]column{{"", 1, false}, {"request", 7, true}, {"status", 9, false}, {"left/demand", 20, false}, {"max price", 16, false}, {"epochs", 6, true}, {"escrow", 14, false}, {"owner", 16, false}}, w, 3, 4, 6, 7)
	case romeLeases:
		cols = spread([]column{{"", 1, false}, {"lease", 5, true}, {"status", 10, false}, {"epochs", 9, false}, {"disp", 4, true}, {"amounts", 18, false}, {"provider", 13, false}, {"consumer", 13, false}, {"req→offer", 10, false}, {"paid", 16, false}}, w, 5, 6, 7, 9)
	case romeEpochsList:
		cols = layoutColumns([]column{{"", 1, false}, {"epoch", 6, true}, {"height", 8, true}, {"matched", 7, true}, {"leases", 6, true}, {"disp", 4, true}, {"certs", 5, true}, {"policy", 10, false}, {"clearing prices", 24, false}}, w)
	case romeDisputes:
		cols = spread([]column{{"", 1, false}, {"lease", 6, true}, {"epoch", 6, true}, {"settled", 7, true}, {"status", 8, false}, {"amounts", 13, false}, {"provider", 16, false}, {"consumer", 16, false}}, w, 5, 6, 7)
	}
	out := []string{tableHeader(st, cols)}
	n := t.n(t.sec)
	out = append(out, t.rowLines(st, cols, w, rows, func(i int) []string { return t.cells(e, t.index(t.sec, i), cols) })...)
	if n == 0 {
		what := strings.ToLower(romeListNames[t.sec])
		if t.filtering() {
			out = append(out, st.dim.Render("  no "+what+" match the filter"))
		} else {
			out = append(out, st.dim.Render("  no "+what))
		}
	}
	return out
}

// cells are the texts of item i of the shown list, after the cursor mark.
func (t *romeTab) cells(e *env, i int, cols []column) []string {
	st := e.st
	switch t.sec {
	case romeOffers:
		o := &t.offers[i]
		return []string{"#" + u64(o.ID), statusText(st, o.Status), ofText(o.Leased, o.Capacity), priceText(o.Price),
			shortAddr(o.Owner, cols[5].width), orDash(o.Region)}
	case romeRequests:
		r := &t.requests[i]
		return []string{"#" + u64(r.ID), statusText(st, r.Status), ofText(r.Remaining, r.Demand), priceText(r.MaxPrice),
			"×" + strconv.FormatUint(uint64(r.Epochs), 10), coinsText(e.denoms, r.Escrow), shortAddr(r.Owner, cols[7].width)}
	case romeLeases:
		x := &t.leases[i]
		status := statusText(st, x.Status)
		if le := t.lastEpoch(); le != nil && x.StartEpoch == le.Epoch+1 {
			status += st.good.Render(" new")
		}
		disp := u64(uint64(x.Disputes))
		if x.Disputes > 0 {
			disp = st.bad.Render(disp)
		}
		return []string{"#" + u64(x.ID), status, fmt.Sprintf("[%d,%d)", x.StartEpoch, x.EndEpoch), disp, amountsText(x.Amounts),
			shortAddr(x.Provider, cols[6].width), shortAddr(x.Consumer, cols[7].width), "#" + u64(x.RequestID) + "→#" + u64(x.OfferID), coinsText(e.denoms, x.Paid)}
	case romeEpochsList:
		ep := &t.epochs[i]
		policy := policyLabel(ep.Policy, t.policies)
		if ep.Rejected != "" {
			policy = st.bad.Render("rejected")
		}
		disp := u64(uint64(ep.Disputes))
		if ep.Disputes > 0 {
			disp = st.bad.Render(disp)
		}
		var prices []string
		for _, k := range ep.Kinds {
			if k.Matched > 0 || leadingNumber(k.ClearingPrice) > 0 {
				prices = append(prices, k.Kind+"="+k.ClearingPrice)
			}
		}
		return []string{u64(ep.Epoch), u64(ep.Height), fmt.Sprintf("%.1f%%", ep.Matched), u64(uint64(ep.NewLeases)), disp,
			u64(uint64(ep.Certs)), policy, orDash(strings.Join(prices, " "))}
	case romeDisputes:
		d := &t.disputes[i]
		status, amounts, prov, cons := "—", "—", "—", "—"
		if x := d.lease; x != nil {
			status, amounts = statusText(st, x.Status), amountsText(x.Amounts)
			prov, cons = shortAddr(x.Provider, cols[6].width), shortAddr(x.Consumer, cols[7].width)
		}
		return []string{"#" + u64(d.leaseID), orDash(d.disputed), u64(d.settled), status, amounts, prov, cons}
	}
	return nil
}

func (t *romeTab) lastEpoch() *client.RomeEpoch {
	if t.market != nil && t.market.LastEpoch != nil {
		return t.market.LastEpoch
	}
	if len(t.epochs) > 0 {
		return &t.epochs[0]
	}
	return nil
}

// statusText colours a market status: open and active are alive, the
// rest are over.
func statusText(st styles, s string) string {
	switch s {
	case "open", "active":
		return st.good.Render(s)
	case "cancelled", "expired":
		return st.dim.Render(s)
	}
	return s
}

// romeKinds is the order resource kinds are shown in.
var romeKinds = []string{"compute", "bandwidth", "energy", "storage"}

// kindsOf lists the kinds of a resource map: the known ones in their
// order, then any other sorted.
func kindsOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for _, k := range romeKinds {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	if len(out) == len(m) {
		return out
	}
	var rest []string
	for k := range m {
		known := false
		for _, r := range romeKinds {
			known = known || r == k
		}
		if !known {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// ofText is "compute 40/100 energy 0/50": part of whole per kind.
func ofText(part, whole map[string]uint64) string {
	var b strings.Builder
	for _, k := range kindsOf(whole) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k + " " + group(u64(part[k])) + "/" + group(u64(whole[k])))
	}
	return orDash(b.String())
}

func amountsText(m map[string]uint64) string {
	var b strings.Builder
	for _, k := range kindsOf(m) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k + "=" + group(u64(m[k])))
	}
	return orDash(b.String())
}

func priceText(m map[string]string) string {
	var b strings.Builder
	for _, k := range kindsOf(m) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k + "=" + m[k])
	}
	return orDash(b.String())
}

// spread widens the columns grow by what w leaves over, evenly.
func spread(cols []column, w int, grow ...int) []column {
	out := append([]column(nil), cols...)
	used := len(out) - 1
	for _, c := range out {
		used += c.width
	}
	if extra := w - used; extra > 0 && len(grow) > 0 {
		for j, i := range grow {
			add := extra / len(grow)
			if j < extra%len(grow) {
				add++
			}
			out[i].width += add
		}
	}
	return out
}

// plural is "1 offer", "2 offers".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return itoa(n) + " " + what + "s"
}

func coinsText(d denomTable, cs []client.Coin) string {
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		parts = append(parts, d.coin(c.Amount, c.Denom))
	}
	return orDash(strings.Join(parts, ", "))
}
