package tui

import (
	"fmt"
	"sort"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// clusterTab compares every node given on the command line: heights, state
// roots (a mismatch at the same height is drawn in red) and who leads.
type clusterTab struct{}

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
	cols := layoutColumns([]column{
		{"", 1, false}, {"#", 2, true}, {"url", 22, false}, {"height", 8, true}, {"state root", 14, false},
		{"role", 9, false}, {"leader", 10, false}, {"node id", 10, false},
	}, w)
	lines = append(lines, tableHeader(st, cols))
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
		lines = append(lines, tableRow(cols, mark, itoa(i+1), n.url, heightText(n), root, role, short(orDash(s.Leader), 8), id))
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
