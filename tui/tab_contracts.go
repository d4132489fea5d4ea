package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/sos-kernel/sos/kernel/client"
)

// contractsTab lists uploaded codes and contract instances, and browses an
// instance's storage.
type contractsTab struct {
	loadState // noAPI: the node answered 404, it has no contracts API
	codes     []client.Code
	contracts []client.Contract
	filter    filterBox
	match     []int
	list      scroller

	open     *client.Contract // the instance whose storage is shown
	entries  []client.StateEntry
	stateErr error
	stateOK  bool
	hex      bool
	state    scroller
}

// maxCodeRows bounds the codes table so the instances keep their room.
const maxCodeRows = 4

func newContractsTab() *contractsTab {
	return &contractsTab{filter: newFilterBox("/ ", "label, address, admin, creator or code id")}
}

func (t *contractsTab) title() string { return "Contracts" }
func (t *contractsTab) typing() bool  { return t.filter.focused() }

func (t *contractsTab) bindings(k keyMap) []key.Binding {
	if t.open != nil {
		return []key.Binding{k.Hex, k.Back, k.Up, k.Down}
	}
	return []key.Binding{k.Enter, k.Filter, k.Up, k.Down}
}

func (t *contractsTab) refresh(e *env) tea.Cmd {
	cmds := []tea.Cmd{e.f.contracts(e.focus)}
	if t.open != nil {
		cmds = append(cmds, e.f.contractState(e.focus, t.open.Address))
	}
	return tea.Batch(cmds...)
}

func (t *contractsTab) n() int {
	if t.filter.value() != "" {
		return len(t.match)
	}
	return len(t.contracts)
}

func (t *contractsTab) at(i int) *client.Contract {
	if t.filter.value() != "" {
		return &t.contracts[t.match[i]]
	}
	return &t.contracts[i]
}

func (t *contractsTab) rematch() {
	q := strings.ToLower(strings.TrimSpace(t.filter.value()))
	t.match = t.match[:0]
	if q == "" {
		return
	}
	for i, c := range t.contracts {
		if strings.Contains(strings.ToLower(c.Label), q) || strings.Contains(c.Address, q) || strings.Contains(c.Admin, q) ||
			strings.Contains(c.Creator, q) || strings.Contains(c.CodeID, q) {
			t.match = append(t.match, i)
		}
	}
}

func (t *contractsTab) update(e *env, msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case focusMsg:
		*t = *newContractsTab()
	case contractsMsg:
		if t.took(e.focus, msg.node, msg.err) {
			// Keep the cursor on its instance: the list is refreshed while
			// the user reads it, and enter opens what is under the cursor.
			var keep string
			if t.list.cursor < t.n() {
				keep = t.at(t.list.cursor).Address
			}
			t.codes, t.contracts = msg.codes, msg.contracts
			t.rematch()
			for i := 0; keep != "" && i < t.n(); i++ {
				if t.at(i).Address == keep {
					t.list.cursor = i
					break
				}
			}
			t.list.clamp(t.n())
		}
	case stateMsg:
		if msg.node != e.focus || t.open == nil || msg.addr != t.open.Address {
			return nil
		}
		t.stateOK = msg.err == nil
		t.stateErr = msg.err
		if msg.err == nil {
			t.entries = msg.entries
			t.state.clamp(len(t.entries))
		}
	case tea.KeyPressMsg:
		return t.key(e, msg)
	default:
		return t.filter.tick(msg)
	}
	return nil
}

func (t *contractsTab) key(e *env, msg tea.KeyPressMsg) tea.Cmd {
	k := e.keys
	if t.filter.focused() {
		ev, cmd := t.filter.handle(msg)
		if ev != filterApply {
			t.rematch()
			t.list = scroller{}
		}
		return cmd
	}
	if t.open != nil {
		switch {
		case key.Matches(msg, k.Back):
			t.open, t.entries, t.stateErr, t.stateOK = nil, nil, nil, false
		case key.Matches(msg, k.Hex):
			t.hex = !t.hex
		default:
			t.state.move(k, msg, len(t.entries), e.bodyHeight()-2)
		}
		return nil
	}
	switch {
	case key.Matches(msg, k.Filter) && t.loaded && !t.noAPI:
		return t.filter.open()
	case key.Matches(msg, k.Back) && t.filter.value() != "":
		t.filter.clear()
		t.rematch()
	case key.Matches(msg, k.Enter) && t.n() > 0:
		c := *t.at(t.list.cursor)
		t.open, t.entries, t.stateErr, t.stateOK, t.state = &c, nil, nil, false, scroller{}
		return e.f.contractState(e.focus, c.Address)
	default:
		t.list.move(k, msg, t.n(), t.rows(e))
	}
	return nil
}

func (t *contractsTab) codeLines() int {
	n := min(len(t.codes), maxCodeRows)
	if len(t.codes) > maxCodeRows {
		n++
	}
	if len(t.codes) == 0 {
		n = 1
	}
	return n
}

func (t *contractsTab) rows(e *env) int {
	// codes title+header+rows, blank, instances title, filter, header
	r := e.bodyHeight() - (2 + t.codeLines() + 1 + 1 + 1)
	if t.filter.focused() || t.filter.value() != "" {
		r--
	}
	return max(r, 1)
}

func (t *contractsTab) view(e *env, w, h int) string {
	st := e.st
	switch {
	case !t.loaded:
		return st.header.Render("Contracts") + "\n" + st.dim.Render("loading…")
	case t.noAPI:
		return st.header.Render("Contracts") + "\n" + st.warn.Render("no contracts API on this node")
	case t.err != nil:
		return st.header.Render("Contracts") + "\n" + st.bad.Render("cannot load contracts: "+errText(t.err))
	case t.open != nil:
		return t.storageView(e, w, h)
	}
	lines := []string{st.header.Render(fmt.Sprintf("Codes (%d)", len(t.codes)))}
	ccols := layoutColumns([]column{{"code id", 18, false}, {"size", 10, true}, {"stored", 10, true}, {"instances", 9, true}, {"height", 8, true}, {"creator", 14, false}}, w)
	lines = append(lines, tableHeader(st, ccols))
	for i, c := range t.codes {
		if i == maxCodeRows {
			lines = append(lines, st.dim.Render(fmt.Sprintf("… %d more codes", len(t.codes)-i)))
			break
		}
		lines = append(lines, tableRow(ccols, short(c.CodeID, 16), bytesHuman(int64(c.Size)), bytesHuman(int64(c.Prepared)), u64(c.Instances), u64(c.Height), c.Creator))
	}
	if len(t.codes) == 0 {
		lines = append(lines, st.dim.Render("  no code uploaded"))
	}
	lines = append(lines, "", st.header.Render(fmt.Sprintf("Instances (%d)", len(t.contracts)))+st.dim.Render("  enter browses storage"))
	if t.filter.focused() {
		lines = append(lines, t.filter.view(w))
	} else if v := t.filter.value(); v != "" {
		lines = append(lines, st.label.Render("filter: ")+v+st.dim.Render(fmt.Sprintf("  (%d match, esc clears)", len(t.match))))
	}
	cols := layoutColumns([]column{{"", 1, false}, {"label", 16, false}, {"address", 22, false}, {"calls", 8, true}, {"gas spent", 12, true}, {"admin", 14, false}}, w)
	lines = append(lines, tableHeader(st, cols))
	rows := max(h-len(lines), 1)
	n := t.n()
	start := t.list.start(n, rows)
	for i := start; i < min(n, start+rows); i++ {
		c := t.at(i)
		mark := " "
		if i == t.list.cursor {
			mark = "▸"
		}
		row := tableRow(cols, mark, orDash(c.Label), shortAddr(c.Address, cols[2].width), u64(c.Calls), gasText(c.GasUsed), orDash(c.Admin))
		if i == t.list.cursor {
			row = selRow(st, row, w)
		}
		lines = append(lines, row)
	}
	if n == 0 {
		lines = append(lines, st.dim.Render("  no instances"))
	}
	return strings.Join(lines, "\n")
}

func (t *contractsTab) storageView(e *env, w, h int) string {
	st := e.st
	c := t.open
	mode := "text"
	if t.hex {
		mode = "hex"
	}
	title := st.header.Render("Storage of "+orDash(c.Label)) + " " + c.Address
	info := fmt.Sprintf("  %d entries, showing %s (x toggles), esc back", len(t.entries), mode)
	if len(t.entries) == stateLimit {
		info = fmt.Sprintf("  first %d entries, showing %s (x toggles), esc back", stateLimit, mode)
	}
	lines := []string{title, st.dim.Render(info)}
	switch {
	case t.stateErr != nil:
		return strings.Join(append(lines, st.bad.Render("cannot load storage: "+errText(t.stateErr))), "\n")
	case !t.stateOK:
		return strings.Join(append(lines, st.dim.Render("loading…")), "\n")
	case len(t.entries) == 0:
		return strings.Join(append(lines, st.dim.Render("storage is empty")), "\n")
	}
	cols := layoutColumns([]column{{"", 1, false}, {"key", min(max(w/3, 16), 40), false}, {"value", 20, false}}, w)
	lines = append(lines, tableHeader(st, cols))
	rows := max(h-len(lines), 1)
	start := t.state.start(len(t.entries), rows)
	for i := start; i < min(len(t.entries), start+rows); i++ {
		en := t.entries[i]
		k, v := en.Key, en.Value
		if !t.hex {
			if en.KeyText != "" {
				k = en.KeyText
			}
			if en.ValueText != "" {
				v = en.ValueText
			}
		}
		mark := " "
		if i == t.state.cursor {
			mark = "▸"
		}
		row := tableRow(cols, mark, oneLine(k), oneLine(v))
		if i == t.state.cursor {
			row = selRow(st, row, w)
		}
		lines = append(lines, row)
	}
	return strings.Join(lines, "\n")
}

// oneLine keeps stored text from breaking the table: control characters
// become visible escapes.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
