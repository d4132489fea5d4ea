package tui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/sos-kernel/sos/kernel/client"
)

// overviewTab is the health of the focused node at a glance.
type overviewTab struct{}

// rateWindow is the span of the rate sparklines.
const rateWindow = 5 * time.Minute

func newOverviewTab() *overviewTab { return &overviewTab{} }

func (t *overviewTab) title() string                      { return "Overview" }
func (t *overviewTab) typing() bool                       { return false }
func (t *overviewTab) bindings(k keyMap) []key.Binding    { return []key.Binding{k.Refresh} }
func (t *overviewTab) refresh(e *env) tea.Cmd             { return nil } // the root fetches status
func (t *overviewTab) update(e *env, msg tea.Msg) tea.Cmd { return nil }

func (t *overviewTab) view(e *env, w, h int) string {
	st, n := e.st, e.node()
	var lines []string
	head := st.header.Render("Node "+n.url) + st.dim.Render(fmt.Sprintf("  (%d of %d)", e.focus+1, len(e.nodes)))
	lines = append(lines, head)
	s := n.status
	if n.statusErr != nil {
		lines = append(lines, st.bad.Render("unreachable: "+errText(n.statusErr)))
		if s != nil {
			lines = append(lines, st.dim.Render("showing its last answer, from "+ago(e.now(), n.statusAt)))
		}
	}
	if s == nil {
		if n.statusErr == nil {
			lines = append(lines, st.dim.Render("waiting for the node's status…"))
		}
		lines = append(lines, field(st, "height", heightText(n)))
		return strings.Join(lines, "\n")
	}
	blockMs := s.TimeMs
	if n.head.Height > s.Height {
		blockMs = n.head.TimeMs
	}
	leader := short(orDash(s.Leader), 16)
	two := func(l1, v1, l2, v2 string) string {
		if w < 70 {
			return field(st, l1, v1) + "\n" + field(st, l2, v2)
		}
		half := w / 2
		return pad(field(st, l1, v1), half) + field(st, l2, v2)
	}
	lines = append(lines,
		two("chain id", s.ChainID, "node id", short(s.NodeID, max(w/2-fieldWidth-2, 24))),
		two("height", heightText(n), "version", orDash(s.Version)),
		field(st, "block time", blockDate(blockMs)+" ("+ago(e.now(), timeMs(blockMs))+")"),
		field(st, "state root", n.stateRoot()),
		two("mempool", group(itoa(s.MempoolSize))+" txs", "disk used", bytesHuman(s.DiskBytes)),
		two("role", orDash(s.Role), "leader", leader+"   term "+u64(s.Term)),
	)
	if note := syncNote(st, s, max(w-fieldWidth-1, 8)); note != "" {
		lines = append(lines, field(st, "sync", note))
	}
	lines = append(lines, "")
	buckets := min(max(w-34, 10), 120)
	txs, gas := n.hist.rates(rateWindow, buckets)
	spark := func(name string, vals []float64) string {
		peak := 0.0
		for _, v := range vals {
			peak = max(peak, v)
		}
		return st.label.Render(pad(name, 7)) + st.good.Render(sparkline(vals)) +
			fmt.Sprintf("  now %s  peak %s", rate(vals[len(vals)-1]), rate(peak))
	}
	lines = append(lines,
		spark("txs/s", txs),
		spark("gas/s", gas),
		st.dim.Render(fmt.Sprintf("       last %s from block times, one bar = %s", rateWindow, (rateWindow/time.Duration(buckets)).Round(100*time.Millisecond))),
		"",
		st.header.Render(fmt.Sprintf("Peers (%d)", len(s.Peers))),
	)
	if len(s.Peers) == 0 {
		lines = append(lines, st.dim.Render("  none reported (role "+orDash(s.Role)+")"))
		return strings.Join(lines, "\n")
	}
	cols := layoutColumns([]column{
		{"node id", 16, false}, {"role", 9, false}, {"state", 12, false}, {"rtt", 9, true}, {"match", 9, true}, {"address", 16, false},
	}, w)
	lines = append(lines, tableHeader(st, cols))
	for _, p := range s.Peers {
		lines = append(lines, tableRow(cols, short(p.NodeID, 14), orDash(p.Role), linkText(st, s.NodeID, p), rttText(p), u64(p.Match), p.Address))
	}
	return strings.Join(lines, "\n")
}

// syncNote describes a node that is behind the cluster (its status's sync
// state), or is empty when it keeps up. With room > 0 it adds the heights
// and why, in at most room cells.
func syncNote(st styles, s *client.Status, room int) string {
	var word string
	style := st.warn
	switch s.SyncState {
	case client.SyncCatchingUp:
		word = "catching up"
	case client.SyncStalled:
		word, style = "stalled", st.bad
	default:
		return ""
	}
	if room <= 0 {
		if s.SyncState == client.SyncCatchingUp {
			word = "syncing" // fits a role column
		}
		return style.Render(word)
	}
	text := word
	if s.ClusterHeight > s.Height {
		text += fmt.Sprintf(": %s blocks behind the cluster (%s)", group(u64(s.ClusterHeight-s.Height)), group(u64(s.ClusterHeight)))
	}
	if s.SyncError != "" {
		text += " — " + s.SyncError
	}
	return style.Render(fit(text, room))
}

// linkText is the state of the link to a peer as the node reports it: the
// node itself is marked as such (it used to be listed as a connected
// peer), and a missing link raft does not need (follower to follower)
// reads "idle", not as a red fault.
func linkText(st styles, self string, p client.Peer) string {
	link := p.Link
	switch {
	case p.Self || p.NodeID == self:
		link = client.LinkSelf
	case link == "" && p.Connected: // a node from before links were reported
		link = client.LinkConnected
	case link == "":
		link = client.LinkDown
	}
	switch link {
	case client.LinkSelf:
		return st.dim.Render("this node")
	case client.LinkIdle:
		return st.dim.Render("idle")
	case client.LinkDown:
		return st.bad.Render(link)
	}
	return link
}

func rttText(p client.Peer) string {
	if !p.Connected || p.Self {
		return "—"
	}
	return fmt.Sprintf("%.1f ms", p.RTTMs)
}
