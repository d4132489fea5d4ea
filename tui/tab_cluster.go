package tui

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/sos-kernel/sos/kernel/client"
)

// clusterTab compares every node given on the command line: heights and
// lag behind the leader, time since each node's last block (a stall is
// drawn in red), raft commit/applied index, mempool, state roots (a
// mismatch at the same height is drawn in red) and who leads. Members the
// nodes report as peers that no --node URL reaches are listed below, from
// the cluster's own view.
type clusterTab struct{}

// stallAfter is how old a node's newest block may get before the view
// calls it stalled (a chain without empty blocks idles legitimately: the
// alarm says so).
const stallAfter = 30 * time.Second

func newClusterTab() *clusterTab { return &clusterTab{} }

func (t *clusterTab) title() string                      { return "Cluster" }
func (t *clusterTab) typing() bool                       { return false }
func (t *clusterTab) bindings(k keyMap) []key.Binding    { return []key.Binding{k.NextNode, k.Refresh} }
func (t *clusterTab) refresh(e *env) tea.Cmd             { return nil } // the root fetches every status
func (t *clusterTab) update(e *env, msg tea.Msg) tea.Cmd { return nil }

// mismatch is a height at which two nodes committed different state roots.
type mismatch struct {
	height uint64
	nodes  []int // every node whose root at height is known
}

// mismatches compares the state roots the nodes reported at the heights
// they share; the newest disagreement comes first.
func mismatches(nodes []*nodeState) []mismatch {
	heights := map[uint64]bool{}
	for _, n := range nodes {
		for h := range n.roots {
			heights[h] = true
		}
	}
	var out []mismatch
	for h := range heights {
		var idx []int
		roots := map[string]bool{}
		for i, n := range nodes {
			if r, ok := n.roots[h]; ok {
				idx = append(idx, i)
				roots[r] = true
			}
		}
		if len(roots) > 1 {
			out = append(out, mismatch{height: h, nodes: idx})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].height > out[j].height })
	return out
}

func (t *clusterTab) view(e *env, w, h int) string {
	st := e.st
	mm := mismatches(e.nodes)
	bad := map[int]bool{} // nodes in the newest mismatch
	if len(mm) > 0 {
		for _, i := range mm[0].nodes {
			bad[i] = true
		}
	}
	leaders := map[string]bool{}
	for _, n := range e.nodes {
		if n.reachable() && n.status.Leader != "" {
			leaders[n.status.Leader] = true
		}
	}
	title := st.header.Render(fmt.Sprintf("Cluster — %d node(s)", len(e.nodes)))
	switch len(leaders) {
	case 0:
		title += st.dim.Render("  no leader reported")
	case 1:
		for l := range leaders {
			title += "  leader " + short(l, 16)
		}
	default:
		title += st.bad.Render(fmt.Sprintf("  %d different leaders reported", len(leaders)))
	}
	lines := []string{title}
	// The leader's height is what lag is measured against: the monitored
	// node that leads, else the highest height any node reports.
	var top uint64
	for _, n := range e.nodes {
		if n.status != nil && leaders[n.status.NodeID] {
			top = n.height()
			break
		}
	}
	if top == 0 {
		for _, n := range e.nodes {
			top = max(top, n.height())
		}
	}
	cols := layoutColumns([]column{
		{"", 1, false}, {"#", 2, true}, {"url", 22, false}, {"height", 8, true}, {"lag", 5, true}, {"last block", 10, true},
		{"commit/applied", 15, true}, {"mempool", 7, true}, {"state root", 14, false},
		{"role", 9, false}, {"leader", 10, false}, {"node id", 10, false},
	}, w)
	lines = append(lines, tableHeader(st, cols))
	var stalled []int
	for i, n := range e.nodes {
		mark := " "
		if i == e.focus {
			mark = "▸"
		}
		if !n.reachable() && n.status == nil {
			reason := "…connecting"
			if n.statusErr != nil {
				reason = "unreachable: " + errText(n.statusErr)
			}
			span := -1 // the reason spans the columns after the url
			for _, c := range cols[3:] {
				span += c.width + 1
			}
			lines = append(lines, tableRow(cols[:3], mark, itoa(i+1), n.url)+" "+st.bad.Render(fit(reason, span)))
			continue
		}
		s := n.status
		root := short(n.stateRoot(), 10)
		if bad[i] {
			root = st.bad.Render(root + " ≠")
		}
		id := s.NodeID
		if !n.reachable() {
			id = st.bad.Render("unreachable")
		}
		role := orDash(s.Role)
		if note := syncNote(st, s, 0); note != "" {
			role = note // behind the cluster says more than "follower"
		}
		lag := "0"
		if h := n.height(); top > h {
			lag = st.warn.Render(u64(top - h))
		}
		age := "—"
		if ms := lastBlockMs(n); ms > 0 {
			d := e.now().Sub(timeMs(ms))
			age = durShort(d)
			if d > stallAfter {
				age = st.bad.Render(age + " !")
				stalled = append(stalled, i)
			}
		}
		raft := "—"
		if s.RaftCommit > 0 || s.RaftApplied > 0 {
			raft = u64(s.RaftCommit) + "/" + u64(s.RaftApplied)
		}
		lines = append(lines, tableRow(cols, mark, itoa(i+1), n.url, heightText(n), lag, age, raft, group(itoa(s.MempoolSize)), root, role, short(orDash(s.Leader), 8), id))
	}
	for _, i := range stalled {
		lines = append(lines, st.bad.Render(fmt.Sprintf("#%d STALLED? no new block for %s (or empty_blocks is off and nothing was sent)", i+1, durShort(e.now().Sub(timeMs(lastBlockMs(e.nodes[i])))))))
	}
	if others := unmonitored(e.nodes); len(others) > 0 {
		lines = append(lines, "", st.header.Render(fmt.Sprintf("Other members (%d) — reported by the cluster, no API URL given: add --node to watch them", len(others))))
		mc := layoutColumns([]column{{"node id", 18, false}, {"role", 9, false}, {"link (seen by)", 18, false}, {"match", 9, true}, {"p2p address", 22, false}}, w)
		lines = append(lines, tableHeader(st, mc))
		for _, o := range others {
			lines = append(lines, tableRow(mc, short(o.peer.NodeID, 16), orDash(o.peer.Role), linkText(st, "", o.peer)+st.dim.Render(" (#"+itoa(o.from+1)+")"), u64(o.peer.Match), o.peer.Address))
		}
		lines = append(lines, "")
	}
	lines = append(lines, "")
	if len(mm) == 0 {
		lines = append(lines, st.good.Render("state roots agree at every shared height"))
	}
	for i, m := range mm {
		if i == 3 {
			lines = append(lines, st.bad.Render(fmt.Sprintf("… and %d more heights", len(mm)-3)))
			break
		}
		parts := make([]string, 0, len(m.nodes))
		for _, ni := range m.nodes {
			parts = append(parts, fmt.Sprintf("#%d %s", ni+1, short(e.nodes[ni].roots[m.height], 10)))
		}
		lines = append(lines, st.bad.Render("STATE ROOT MISMATCH at height "+u64(m.height)+": "+strings.Join(parts, ", ")))
	}
	for i, n := range e.nodes {
		if n.statusErr != nil && n.status != nil {
			lines = append(lines, st.bad.Render(fmt.Sprintf("#%d unreachable: %s (last answer %s)", i+1, errText(n.statusErr), ago(e.now(), n.statusAt))))
		}
	}
	return strings.Join(lines, "\n")
}

// lastBlockMs is the time of the newest block a node reported (0: none).
func lastBlockMs(n *nodeState) int64 {
	if n.head.Height > 0 && (n.status == nil || n.head.Height >= n.status.Height) {
		return n.head.TimeMs
	}
	if n.status != nil {
		return n.status.TimeMs
	}
	return 0
}

// durShort writes a duration in at most a few cells: 850ms, 12s, 4m10s, 3h.
func durShort(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return strings.TrimSuffix(d.Round(time.Second).String(), "0s")
	}
	return d.Round(time.Minute).String()
}

// otherMember is a member a monitored node reports that no --node reaches.
type otherMember struct {
	peer client.Peer
	from int // the node that reported it
}

// unmonitored lists the members the nodes report as peers that are none of
// the monitored nodes, each once (as the first node reporting it sees it),
// by node id.
func unmonitored(nodes []*nodeState) []otherMember {
	watched := map[string]bool{}
	for _, n := range nodes {
		if n.status != nil {
			watched[n.status.NodeID] = true
		}
	}
	seen := map[string]bool{}
	var out []otherMember
	for i, n := range nodes {
		if n.status == nil {
			continue
		}
		for _, p := range n.status.Peers {
			if p.Self || watched[p.NodeID] || seen[p.NodeID] {
				continue
			}
			seen[p.NodeID] = true
			out = append(out, otherMember{peer: p, from: i})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].peer.NodeID < out[j].peer.NodeID })
	return out
}
