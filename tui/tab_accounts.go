package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/sos-kernel/sos/kernel/client"
)

// accountsTab shows the supply of every token and accounts: the ones looked
// up with "/" and the ones seen in transactions.
type accountsTab struct {
	supply    []client.Supply
	supplyErr error
	accts     []*acct        // in the order first seen
	index     map[string]int // address → position in accts
	lookup    string         // address being looked up from the search box
	lookupErr error
	search    filterBox
	match     []int // with a search text: positions in accts
	list      scroller
}

// acct is one account row; a nil account means not fetched yet.
type acct struct {
	addr    string
	account *client.Account
	err     error
}

// maxAccountsKept bounds the accounts remembered from transactions.
const maxAccountsKept = 10000

func newAccountsTab() *accountsTab {
	return &accountsTab{index: map[string]int{}, search: newFilterBox("address: ", "sos1… (enter looks it up)")}
}

func (t *accountsTab) title() string { return "Accounts" }
func (t *accountsTab) typing() bool  { return t.search.focused() }

func (t *accountsTab) bindings(k keyMap) []key.Binding {
	return []key.Binding{k.Search, k.Enter, k.Up, k.Down}
}

func (t *accountsTab) refresh(e *env) tea.Cmd {
	cmds := []tea.Cmd{e.f.supply(e.focus, len(e.denoms) == 0)}
	if a := t.selected(); a != nil && (a.account != nil || a.err != nil) {
		cmds = append(cmds, e.f.account(e.focus, a.addr))
	}
	return tea.Batch(cmds...)
}

func (t *accountsTab) n() int {
	if t.search.value() != "" {
		return len(t.match)
	}
	return len(t.accts)
}

func (t *accountsTab) at(i int) *acct {
	if t.search.value() != "" {
		return t.accts[t.match[i]]
	}
	return t.accts[i]
}

func (t *accountsTab) selected() *acct {
	if t.list.cursor < t.n() {
		return t.at(t.list.cursor)
	}
	return nil
}

// add remembers an address; it reports the account's position.
func (t *accountsTab) add(addr string) int {
	if i, ok := t.index[addr]; ok {
		return i
	}
	if len(t.accts) >= maxAccountsKept {
		return -1
	}
	t.accts = append(t.accts, &acct{addr: addr})
	t.index[addr] = len(t.accts) - 1
	return len(t.accts) - 1
}

func (t *accountsTab) rematch() {
	q := strings.ToLower(strings.TrimSpace(t.search.value()))
	t.match = t.match[:0]
	if q == "" {
		return
	}
	for i, a := range t.accts {
		if strings.Contains(a.addr, q) {
			t.match = append(t.match, i)
		}
	}
}

func (t *accountsTab) update(e *env, msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case focusMsg:
		*t = *newAccountsTab()
	case supplyMsg:
		if msg.node == e.focus {
			t.supply, t.supplyErr = msg.supply, msg.err
		}
	case accountMsg:
		if msg.node != e.focus {
			return nil
		}
		if msg.addr == t.lookup {
			t.lookup = ""
			if msg.err != nil {
				if _, known := t.index[msg.addr]; !known {
					t.lookupErr = fmt.Errorf("%s: %w", msg.addr, msg.err)
					return nil
				}
			}
			t.selectAddr(msg.addr)
		}
		if i, ok := t.index[msg.addr]; ok {
			t.accts[i].account, t.accts[i].err = msg.account, msg.err
		}
	case txEventMsg:
		if msg.node != e.focus {
			return nil
		}
		if msg.ev.Sender != "" {
			t.add(msg.ev.Sender)
		}
		for _, ev := range msg.ev.Events {
			for _, a := range ev.Attrs {
				if strings.HasPrefix(a.Value, "sos1") && !strings.ContainsAny(a.Value, " ,") {
					t.add(a.Value)
				}
			}
		}
		t.rematch()
	case tea.KeyPressMsg:
		return t.key(e, msg)
	default:
		return t.search.tick(msg)
	}
	return nil
}

// selectAddr adds addr if needed, clears the search and puts the cursor on it.
func (t *accountsTab) selectAddr(addr string) {
	i := t.add(addr)
	t.search.clear()
	t.rematch()
	if i >= 0 {
		t.list.cursor = i
	}
}

func (t *accountsTab) key(e *env, msg tea.KeyPressMsg) tea.Cmd {
	k := e.keys
	if t.search.focused() {
		ev, cmd := t.search.handle(msg)
		switch ev {
		case filterTyped:
			t.rematch()
			t.list = scroller{}
		case filterCancel:
			t.rematch()
		case filterApply:
			q := strings.TrimSpace(t.search.value())
			if q == "" {
				return nil
			}
			if len(t.match) == 1 {
				q = t.accts[t.match[0]].addr
			}
			t.lookup, t.lookupErr = q, nil
			if _, known := t.index[q]; known {
				t.selectAddr(q)
			}
			return e.f.account(e.focus, q)
		}
		return cmd
	}
	switch {
	case key.Matches(msg, k.Search):
		t.lookupErr = nil
		return t.search.open()
	case key.Matches(msg, k.Back) && t.search.value() != "":
		t.search.clear()
		t.rematch()
	case key.Matches(msg, k.Enter):
		if a := t.selected(); a != nil {
			return e.f.account(e.focus, a.addr)
		}
	default:
		t.list.move(k, msg, t.n(), t.rows(e))
	}
	return nil
}

func (t *accountsTab) rows(e *env) int {
	return max(e.bodyHeight()-len(t.top(e, e.width))-1, 1)
}

// maxBalanceLines bounds the selected account's balance lines so the list
// keeps its room at 80×24.
const maxBalanceLines = 4

// top draws everything above the account list: supply, search box, the
// selected account.
func (t *accountsTab) top(e *env, w int) []string {
	st := e.st
	lines := []string{st.header.Render(fmt.Sprintf("Supply (%d denoms)", len(t.supply)))}
	switch {
	case t.supplyErr != nil:
		lines = append(lines, st.bad.Render("cannot load supply: "+errText(t.supplyErr)))
	case t.supply == nil:
		lines = append(lines, st.dim.Render("loading…"))
	default:
		// Amounts carry their display denom: a bare number beside the
		// base denom read as "9.300689 uTFLP" when it meant TFLP.
		cols := layoutColumns([]column{{"token", 8, false}, {"total", 28, true}, {"fees collected", 24, true}, {"", 1, false}}, w)
		lines = append(lines, tableHeader(st, cols))
		for _, s := range t.supply {
			desc := e.denoms[s.Denom].Description
			if desc != "" {
				desc = st.dim.Render(desc)
			}
			lines = append(lines, tableRow(cols, e.denoms.display(s.Denom), e.denoms.coin(s.Total, s.Denom), e.denoms.coin(s.FeeCollector, s.Denom), desc))
		}
	}
	lines = append(lines, "")
	switch {
	case t.search.focused():
		lines = append(lines, t.search.view(w))
	case t.search.value() != "":
		lines = append(lines, st.label.Render("search: ")+t.search.value()+st.dim.Render(fmt.Sprintf("  (%d match, esc clears)", len(t.match))))
	case t.lookup != "":
		lines = append(lines, st.dim.Render("looking up "+t.lookup+"…"))
	case t.lookupErr != nil:
		lines = append(lines, st.bad.Render("lookup failed: "+errText(t.lookupErr)))
	default:
		lines = append(lines, st.dim.Render("press / to look up an address"))
	}
	a := t.selected()
	switch {
	case a == nil:
	case a.err != nil:
		lines = append(lines, st.header.Render("Account ")+a.addr, st.bad.Render("  "+errText(a.err)))
	case a.account == nil:
		lines = append(lines, st.header.Render("Account ")+a.addr, st.dim.Render("  not fetched yet — enter fetches it"))
	default:
		acc := a.account
		pk := "no"
		if acc.HasPubKey {
			pk = "yes"
		}
		lines = append(lines, st.header.Render("Account ")+acc.Address,
			st.dim.Render(fmt.Sprintf("  nonce %d, public key %s, at height %d", acc.Nonce, pk, acc.Height)))
		if len(acc.Balances) == 0 {
			lines = append(lines, st.dim.Render("  no balances"))
		}
		for i, c := range acc.Balances {
			if i == maxBalanceLines-1 && len(acc.Balances) > maxBalanceLines {
				lines = append(lines, st.dim.Render(fmt.Sprintf("  … %d more denoms", len(acc.Balances)-i)))
				break
			}
			lines = append(lines, "  "+padLeft(e.denoms.coin(c.Amount, c.Denom), 30))
		}
	}
	lines = append(lines, "", st.header.Render(fmt.Sprintf("Accounts (%d)", len(t.accts)))+st.dim.Render("  seen in transactions or looked up"))
	return lines
}

func (t *accountsTab) view(e *env, w, h int) string {
	st := e.st
	lines := t.top(e, w)
	cols := layoutColumns([]column{{"", 1, false}, {"address", 44, false}, {"nonce", 6, true}, {"balances", 20, false}}, w)
	lines = append(lines, tableHeader(st, cols))
	rows := max(h-len(lines), 1)
	n := t.n()
	start := t.list.start(n, rows)
	for i := start; i < min(n, start+rows); i++ {
		a := t.at(i)
		mark, nonce, bal := " ", "—", st.dim.Render("not fetched")
		if i == t.list.cursor {
			mark = "▸"
		}
		switch {
		case a.err != nil:
			bal = st.bad.Render(errText(a.err))
		case a.account != nil:
			nonce = u64(a.account.Nonce)
			parts := make([]string, 0, len(a.account.Balances))
			for _, c := range a.account.Balances {
				parts = append(parts, e.denoms.coin(c.Amount, c.Denom))
			}
			bal = strings.Join(parts, ", ")
		}
		addr := a.addr
		if cols[1].width < len(addr) {
			addr = shortAddr(addr, cols[1].width)
		}
		row := tableRow(cols, mark, addr, nonce, bal)
		if i == t.list.cursor {
			row = selRow(st, row, w)
		}
		lines = append(lines, row)
	}
	if n == 0 {
		lines = append(lines, st.dim.Render("  none yet"))
	}
	return strings.Join(lines, "\n")
}
