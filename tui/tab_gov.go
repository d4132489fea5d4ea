package tui

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/sos-kernel/sos/kernel/client"
)

// govTab shows the market's governance: the proposals (those in their
// voting period first) with a live tally against quorum and threshold, the
// votes of the one under the cursor, and the current parameters.
type govTab struct {
	loaded            bool
	noAPI             bool
	err               error
	props             []client.GovProposal
	params            []paramLine
	quorum, threshold uint64 // basis points, from the parameters
	list              scroller
}

// paramLine is one parameter, flattened from the params JSON.
type paramLine struct{ key, value string }

// govMsg is one snapshot of governance: proposals and parameters.
type govMsg struct {
	node   int
	props  []client.GovProposal
	params json.RawMessage
	err    error
}

func (f fetcher) gov(node int) tea.Cmd {
	return f.call(node, func(ctx context.Context, c *client.Client) tea.Msg {
		ps, err := c.GovProposals(ctx)
		if err != nil {
			return govMsg{node: node, err: err}
		}
		// The list carries tallies, not votes: fetch the open ones whole.
		for i, p := range ps {
			if p.Status == "voting" && len(p.Votes) == 0 {
				if full, err := c.GovProposal(ctx, p.ID); err == nil {
					ps[i] = *full
				}
			}
		}
		params, err := c.RomeParams(ctx)
		return govMsg{node: node, props: ps, params: params, err: err}
	})
}

func newGovTab() *govTab { return &govTab{} }

func (t *govTab) title() string                   { return "Gov" }
func (t *govTab) typing() bool                    { return false }
func (t *govTab) bindings(k keyMap) []key.Binding { return []key.Binding{k.Up, k.Down, k.Refresh} }
func (t *govTab) refresh(e *env) tea.Cmd          { return e.f.gov(e.focus) }

func (t *govTab) update(e *env, msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case focusMsg:
		*t = govTab{}
	case govMsg:
		if msg.node != e.focus {
			return nil
		}
		t.loaded, t.err, t.noAPI = true, msg.err, notFound(msg.err) || unavailable(msg.err)
		if msg.err != nil {
			return nil
		}
		var sel uint64
		if t.list.cursor < len(t.props) {
			sel = t.props[t.list.cursor].ID
		}
		t.props = msg.props
		sort.SliceStable(t.props, func(i, j int) bool {
			vi, vj := t.props[i].Status == "voting", t.props[j].Status == "voting"
			if vi != vj {
				return vi
			}
			return t.props[i].ID > t.props[j].ID
		})
		for i, p := range t.props { // the cursor stays on its proposal
			if p.ID == sel {
				t.list.cursor = i
			}
		}
		t.list.clamp(len(t.props))
		t.params = flattenParams(msg.params)
		for _, p := range t.params {
			switch p.key {
			case "quorum_bps":
				fmt.Sscan(p.value, &t.quorum)
			case "threshold_bps":
				fmt.Sscan(p.value, &t.threshold)
			}
		}
	case tea.KeyPressMsg:
		t.list.move(e.keys, msg, len(t.props), 8)
	}
	return nil
}

// flattenParams turns the parameters JSON into sorted key = value lines
// (nested objects as a.b; lists and long values shortened).
func flattenParams(raw json.RawMessage) []paramLine {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return nil
	}
	var out []paramLine
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, x[k])
			}
		case []any:
			b, _ := json.Marshal(x)
			out = append(out, paramLine{prefix, fmt.Sprintf("%d item(s) %s", len(x), b)})
		case string:
			out = append(out, paramLine{prefix, x})
		default:
			b, _ := json.Marshal(x)
			out = append(out, paramLine{prefix, string(b)})
		}
	}
	walk("", v)
	return out
}

// tallyText is a proposal's tally: each option's weight and share of the
// total, whether quorum is reached and whether yes passes the threshold.
func tallyText(st styles, p client.GovProposal, quorum, threshold uint64) string {
	pct := func(v uint64) string {
		if p.TotalWeight == 0 {
			return "—"
		}
		return fmt.Sprintf("%.1f%%", float64(v)*100/float64(p.TotalWeight))
	}
	s := fmt.Sprintf("yes %s (%s)  no %s (%s)  abstain %s (%s)  of %s",
		group(u64(p.Yes)), pct(p.Yes), group(u64(p.No)), pct(p.No), group(u64(p.Abstain)), pct(p.Abstain), group(u64(p.TotalWeight)))
	if p.TotalWeight == 0 || quorum == 0 {
		return s
	}
	voted := p.Yes + p.No + p.Abstain
	if voted*10_000 >= quorum*p.TotalWeight {
		s += "  " + st.good.Render("quorum")
	} else {
		s += "  " + st.warn.Render(fmt.Sprintf("no quorum (%.1f%% of %.1f%%)", float64(voted)*100/float64(p.TotalWeight), float64(quorum)/100))
	}
	if yn := p.Yes + p.No; yn > 0 && p.Yes*10_000 > threshold*yn {
		s += "  " + st.good.Render("passing")
	} else if yn > 0 {
		s += "  " + st.bad.Render("failing")
	}
	return s
}

func (t *govTab) view(e *env, w, h int) string {
	st := e.st
	lines := []string{st.header.Render("Governance")}
	switch {
	case !t.loaded:
		return strings.Join(append(lines, st.dim.Render("loading…")), "\n")
	case t.noAPI:
		return strings.Join(append(lines, st.dim.Render("this node serves no governance API ("+errText(t.err)+")")), "\n")
	case t.err != nil:
		return strings.Join(append(lines, st.bad.Render(errText(t.err))), "\n")
	}
	height := e.node().height()
	if len(t.props) == 0 {
		lines = append(lines, st.dim.Render("no proposals yet (sos gov propose)"))
	} else {
		cols := layoutColumns([]column{
			{"", 1, false}, {"#", 4, true}, {"status", 9, false}, {"param", 16, false}, {"value", 12, false}, {"ends", 14, false}, {"title", 16, false},
		}, w)
		lines = append(lines, tableHeader(st, cols))
		rows := 8
		start := t.list.start(len(t.props), rows)
		for i := start; i < len(t.props) && i < start+rows; i++ {
			p := t.props[i]
			ends := u64(p.EndHeight)
			if p.Status == "voting" && p.EndHeight >= height {
				ends += fmt.Sprintf(" (%s left)", u64(p.EndHeight-height))
			}
			status := p.Status
			if p.Result != "" && p.Result != p.Status {
				status = p.Result
			}
			mark := " "
			if i == t.list.cursor {
				mark = "▸"
			}
			row := tableRow(cols, mark, u64(p.ID), status, p.Param, p.Value, ends, p.Title)
			if i == t.list.cursor {
				row = selRow(st, row, w)
			}
			lines = append(lines, row)
		}
		p := t.props[t.list.cursor]
		lines = append(lines, "", st.header.Render(fmt.Sprintf("#%d %s", p.ID, p.Title)),
			field(st, "change", p.Param+" = "+p.Value),
			field(st, "proposer", p.Proposer),
			field(st, "voting", fmt.Sprintf("heights %s–%s", u64(p.SubmitHt), u64(p.EndHeight))),
			field(st, "tally", tallyText(st, p, t.quorum, t.threshold)))
		for i, v := range p.Votes {
			if i == 5 {
				lines = append(lines, st.dim.Render(fmt.Sprintf("  … and %d more votes", len(p.Votes)-5)))
				break
			}
			lines = append(lines, fmt.Sprintf("  %-7s %s  weight %s  at %s", v.Option, short(v.Voter, 20), group(u64(v.Weight)), u64(v.Height)))
		}
	}
	lines = append(lines, "", st.header.Render("Parameters"))
	room := h - len(lines)
	kw := 0
	for _, p := range t.params {
		kw = min(max(kw, len(p.key)), 28)
	}
	for i, p := range t.params {
		if i >= room-1 && len(t.params) > room {
			lines = append(lines, st.dim.Render(fmt.Sprintf("… %d more (sos rome params)", len(t.params)-i)))
			break
		}
		lines = append(lines, st.label.Render(pad(fit(p.key, kw), kw))+" "+fit(p.value, max(w-kw-1, 8)))
	}
	return strings.Join(lines, "\n")
}
