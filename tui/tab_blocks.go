package tui

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/sos-kernel/sos/kernel/client"
)

// blocksTab is the drill-down: recent blocks → a block's transactions → one
// transaction with its receipt.
type blocksTab struct {
	blocks       []client.Block // headers, ascending height
	loaded       bool
	loadErr      error
	loadingOlder bool
	filter       filterBox
	match        []int // with a filter: indices into blocks, newest first
	list         scroller
	// txHay holds, per height, the searchable text of the block's
	// transactions seen live or in an opened block (hash, sender, kind;
	// lower case), so the filter finds a block by what a user looks for.
	txHay map[uint64]string

	level     int    // 0 list, 1 block, 2 transaction
	want      uint64 // the block being opened
	detail    *client.Block
	detailErr error
	txs       scroller
	lines     scroller // scrolls the transaction view
}

const (
	levelList = iota
	levelBlock
	levelTx
)

const (
	maxBlocksKept = 20000 // about three hours of 500 ms blocks
	olderPage     = 100   // headers fetched when scrolling past the oldest
)

func newBlocksTab() *blocksTab {
	return &blocksTab{filter: newFilterBox("/ ", "height, block hash, proposer, or a tx's hash, sender or kind"), txHay: map[uint64]string{}}
}

func (t *blocksTab) title() string { return "Blocks" }
func (t *blocksTab) typing() bool  { return t.filter.focused() }

func (t *blocksTab) bindings(k keyMap) []key.Binding {
	switch t.level {
	case levelBlock:
		return []key.Binding{k.Enter, k.Back, k.Up, k.Down}
	case levelTx:
		return []key.Binding{k.Back, k.Up, k.Down}
	}
	return []key.Binding{k.Enter, k.Filter, k.Up, k.Down, k.Top, k.Bottom}
}

func (t *blocksTab) refresh(e *env) tea.Cmd {
	var cmds []tea.Cmd
	switch {
	case !t.loaded || t.loadErr != nil:
		cmds = append(cmds, e.f.latestBlocks(e.focus, initialBlocks))
	case len(t.blocks) > 0:
		// The stream normally keeps the list whole; after a reconnect it
		// has a gap at the top, which this fills.
		if top, h := t.blocks[len(t.blocks)-1].Height, e.node().height(); h > top {
			cmds = append(cmds, e.f.latestBlocks(e.focus, int(min(h-top, 1000))))
		}
	}
	if t.level != levelList && t.detail == nil {
		cmds = append(cmds, e.f.block(e.focus, t.want))
	}
	return tea.Batch(cmds...)
}

// rows is how many list rows fit under the title, filter and header lines.
func (t *blocksTab) rows(e *env) int {
	r := e.bodyHeight() - 2
	if t.filterShown() {
		r--
	}
	return max(r, 1)
}

func (t *blocksTab) filterShown() bool { return t.filter.focused() || t.filter.value() != "" }

func (t *blocksTab) n() int {
	if t.filter.value() != "" {
		return len(t.match)
	}
	return len(t.blocks)
}

// at is the i-th row, newest first.
func (t *blocksTab) at(i int) *client.Block {
	if t.filter.value() != "" {
		return &t.blocks[t.match[i]]
	}
	return &t.blocks[len(t.blocks)-1-i]
}

func (t *blocksTab) update(e *env, msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case focusMsg:
		*t = *newBlocksTab()
	case blocksMsg:
		if msg.node != e.focus {
			return nil
		}
		if msg.older {
			t.loadingOlder = false
		}
		if msg.err != nil {
			if !msg.older {
				t.loadErr = msg.err
			}
			return nil
		}
		t.loaded, t.loadErr = true, nil
		t.merge(msg.blocks)
	case blockEventMsg:
		if msg.node != e.focus {
			return nil
		}
		ev := msg.ev
		t.merge([]client.Block{{Height: ev.Height, Hash: ev.Hash, TimeMs: ev.TimeMs, StateRoot: ev.StateRoot, NumTxs: ev.NumTxs, GasUsed: ev.GasUsed}})
	case blockMsg:
		if msg.node != e.focus || t.level == levelList {
			return nil
		}
		if msg.err != nil {
			t.detailErr = msg.err
			return nil
		}
		if msg.block.Height == t.want {
			t.detail, t.detailErr = msg.block, nil
		}
		var hay []string
		for i := range msg.block.Txs {
			tx := &msg.block.Txs[i]
			hay = append(hay, tx.TxHash, tx.Sender, tx.Kind)
		}
		t.txHay[msg.block.Height] = strings.ToLower(strings.Join(hay, " "))
	case txEventMsg:
		if msg.node != e.focus {
			return nil
		}
		ev := msg.ev
		t.txHay[ev.Height] = strings.TrimSpace(t.txHay[ev.Height] + " " + strings.ToLower(ev.TxHash+" "+ev.Sender+" "+ev.Kind))
		if t.filter.value() != "" {
			t.keepCursor(t.rematch)
		}
	case tea.KeyPressMsg:
		return t.key(e, msg)
	default:
		return t.filter.tick(msg)
	}
	return nil
}

// merge adds headers, keeping the list sorted and the cursor on the block it
// was on: what is under the cursor is what enter opens, however many
// blocks arrive in between.
func (t *blocksTab) merge(bs []client.Block) {
	if len(bs) == 0 {
		return
	}
	t.keepCursor(func() { t.add(bs) })
}

// keepCursor runs change (which may add, drop or refilter rows) and puts
// the cursor back on the block it was on. New rows above it push it down
// while the top of the list is shown (they appear there); scrolled down,
// the view scrolls with it instead.
func (t *blocksTab) keepCursor(change func()) {
	var keep uint64
	had := t.list.cursor < t.n()
	if had {
		keep = t.at(t.list.cursor).Height
	}
	change()
	if had {
		for i := 0; i < t.n(); i++ {
			if t.at(i).Height == keep {
				if t.list.offset > 0 {
					t.list.offset += i - t.list.cursor
				}
				t.list.cursor = i
				break
			}
		}
	}
	t.list.clamp(t.n())
}

// add merges headers into the sorted list and refilters it.
func (t *blocksTab) add(bs []client.Block) {
	in := append([]client.Block(nil), bs...)
	sort.Slice(in, func(i, j int) bool { return in[i].Height < in[j].Height })
	switch {
	case len(t.blocks) == 0 || in[0].Height > t.blocks[len(t.blocks)-1].Height:
		t.blocks = append(t.blocks, in...)
	case in[len(in)-1].Height < t.blocks[0].Height:
		t.blocks = append(in, t.blocks...)
	default:
		for _, b := range in {
			i := sort.Search(len(t.blocks), func(i int) bool { return t.blocks[i].Height >= b.Height })
			switch {
			case i < len(t.blocks) && t.blocks[i].Height == b.Height:
				// A header from the API (with prev hash and proposer) is
				// richer than one built from a stream event.
				if b.PrevHash != "" || t.blocks[i].PrevHash == "" {
					t.blocks[i] = b
				}
			default:
				t.blocks = append(t.blocks, client.Block{})
				copy(t.blocks[i+1:], t.blocks[i:])
				t.blocks[i] = b
			}
		}
	}
	if over := len(t.blocks) - maxBlocksKept; over > 0 {
		t.blocks = append(t.blocks[:0], t.blocks[over:]...)
		for h := range t.txHay {
			if h < t.blocks[0].Height {
				delete(t.txHay, h)
			}
		}
	}
	t.rematch()
}

func (t *blocksTab) rematch() {
	q := strings.ToLower(strings.TrimSpace(t.filter.value()))
	t.match = t.match[:0]
	if q == "" {
		return
	}
	for i := len(t.blocks) - 1; i >= 0; i-- {
		b := &t.blocks[i]
		if strings.Contains(u64(b.Height), q) || strings.Contains(strings.ToLower(b.Hash), q) ||
			strings.Contains(strings.ToLower(b.Proposer), q) || strings.Contains(t.txHay[b.Height], q) {
			t.match = append(t.match, i)
		}
	}
}

func (t *blocksTab) key(e *env, msg tea.KeyPressMsg) tea.Cmd {
	k := e.keys
	if t.filter.focused() {
		ev, cmd := t.filter.handle(msg)
		if ev != filterApply {
			t.rematch()
			t.list = scroller{}
		}
		return cmd
	}
	switch t.level {
	case levelList:
		switch {
		case key.Matches(msg, k.Filter):
			return t.filter.open()
		case key.Matches(msg, k.Back) && t.filter.value() != "":
			t.filter.clear()
			t.rematch()
			t.list = scroller{}
		case key.Matches(msg, k.Enter) && t.n() > 0:
			b := t.at(t.list.cursor)
			t.level, t.want, t.detail, t.detailErr, t.txs = levelBlock, b.Height, nil, nil, scroller{}
			return e.f.block(e.focus, b.Height)
		case t.list.move(k, msg, t.n(), t.rows(e)):
			return t.maybeOlder(e)
		}
	case levelBlock:
		switch {
		case key.Matches(msg, k.Back):
			t.level = levelList
		case key.Matches(msg, k.Enter) && t.detail != nil && len(t.detail.Txs) > 0:
			t.level, t.lines = levelTx, scroller{}
		case t.detail != nil:
			t.txs.move(k, msg, len(t.detail.Txs), t.txRows(e))
		}
	case levelTx:
		switch {
		case key.Matches(msg, k.Back):
			t.level = levelBlock
		default:
			n := len(txLines(e, &t.detail.Txs[t.txs.cursor], e.width)) - e.bodyHeight() + 1
			t.lines.move(k, msg, max(n, 1), e.bodyHeight())
			// Scroll the text itself, not a cursor within it.
			t.lines.offset = t.lines.cursor
		}
	}
	return nil
}

// maybeOlder fetches the page before the oldest loaded block when the cursor
// comes near the end of the list.
func (t *blocksTab) maybeOlder(e *env) tea.Cmd {
	if t.loadingOlder || t.filter.value() != "" || len(t.blocks) == 0 {
		return nil
	}
	oldest := t.blocks[0].Height
	if oldest == 0 || t.list.cursor < t.n()-t.rows(e) {
		return nil
	}
	t.loadingOlder = true
	return e.f.olderBlocks(e.focus, oldest-1, olderPage)
}

func (t *blocksTab) view(e *env, w, h int) string {
	switch t.level {
	case levelBlock:
		return t.blockView(e, w, h)
	case levelTx:
		return t.txView(e, w, h)
	}
	st := e.st
	lines := make([]string, 0, h)
	title := "Blocks"
	switch {
	case t.loadErr != nil && !t.loaded:
		title += st.bad.Render("  cannot load blocks: " + errText(t.loadErr))
	case !t.loaded && len(t.blocks) == 0:
		title += st.dim.Render("  loading…")
	case len(t.blocks) > 0:
		title += st.dim.Render("  " + group(itoa(len(t.blocks))) + " loaded, heights " +
			u64(t.blocks[0].Height) + "–" + u64(t.blocks[len(t.blocks)-1].Height))
		if t.loadingOlder {
			title += st.dim.Render(", loading older…")
		}
	}
	lines = append(lines, title)
	if t.filter.focused() {
		lines = append(lines, t.filter.view(w))
	} else if v := t.filter.value(); v != "" {
		lines = append(lines, st.label.Render("filter: ")+v+st.dim.Render("  ("+itoa(len(t.match))+" match, esc clears)"))
	}
	cols := layoutColumns([]column{
		{"", 1, false}, {"height", 9, true}, {"time", 8, false}, {"txs", 5, true}, {"gas used", 12, true}, {"hash", 16, false},
	}, w)
	lines = append(lines, tableHeader(st, cols))
	rows := max(h-len(lines), 1)
	n := t.n()
	start := t.list.start(n, rows)
	for i := start; i < min(n, start+rows); i++ {
		b := t.at(i)
		mark := " "
		if i == t.list.cursor {
			mark = "▸"
		}
		row := tableRow(cols, mark, u64(b.Height), blockClock(b.TimeMs), u64(uint64(b.NumTxs)), gasText(b.GasUsed), b.Hash)
		if i == t.list.cursor {
			row = selRow(st, row, w)
		}
		lines = append(lines, row)
	}
	if n == 0 && t.loaded {
		lines = append(lines, st.dim.Render("  no blocks match"))
	}
	return strings.Join(lines, "\n")
}

// txRows is how many transaction rows fit under the block's header.
func (t *blocksTab) txRows(e *env) int { return max(e.bodyHeight()-blockHeaderLines-1, 1) }

const blockHeaderLines = 9 // title, 7 fields, a blank line

func (t *blocksTab) blockView(e *env, w, h int) string {
	st := e.st
	title := st.header.Render("Block "+u64(t.want)) + st.dim.Render("  esc back")
	if t.detail == nil {
		if t.detailErr != nil {
			return title + "\n" + st.bad.Render("cannot load block: "+errText(t.detailErr))
		}
		return title + "\n" + st.dim.Render("loading…")
	}
	b := t.detail
	lines := []string{
		title + st.dim.Render("  "+itoa(len(b.Txs))+" txs, gas used "+gasText(b.GasUsed)),
		field(st, "hash", b.Hash),
		field(st, "prev hash", orDash(b.PrevHash)),
		field(st, "time", blockDate(b.TimeMs)+" ("+ago(e.now(), timeMs(b.TimeMs))+")"),
		field(st, "proposer", orDash(b.Proposer)),
		field(st, "state root", b.StateRoot),
		field(st, "tx root", b.TxRoot),
		field(st, "receipt root", b.ReceiptRoot),
		"",
	}
	if len(b.Txs) == 0 {
		return strings.Join(append(lines, st.dim.Render("no transactions in this block")), "\n")
	}
	cols := layoutColumns([]column{
		{"", 1, false}, {"#", 4, true}, {"tx hash", 12, false}, {"kind", 9, false}, {"result", 18, false}, {"gas", 9, true}, {"sender", 20, false},
	}, w)
	lines = append(lines, tableHeader(st, cols))
	rows := max(h-len(lines), 1)
	start := t.txs.start(len(b.Txs), rows)
	for i := start; i < min(len(b.Txs), start+rows); i++ {
		tx := &b.Txs[i]
		mark := " "
		if i == t.txs.cursor {
			mark = "▸"
		}
		res := "ok"
		if tx.Code != 0 {
			res = "failed"
			if tx.Receipt != nil && tx.Receipt.CodeName != "" {
				res = plainCode(tx.Receipt.CodeName)
			}
		}
		row := tableRow(cols, mark, u64(uint64(tx.Index)), short(tx.TxHash, 10), tx.Kind, res, gasText(tx.GasUsed), tx.Sender)
		switch {
		case i == t.txs.cursor:
			row = selRow(st, row, w)
		case tx.Code != 0:
			row = st.bad.Render(row)
		}
		lines = append(lines, row)
	}
	return strings.Join(lines, "\n")
}

func (t *blocksTab) txView(e *env, w, h int) string {
	if t.detail == nil || t.txs.cursor >= len(t.detail.Txs) {
		return ""
	}
	lines := txLines(e, &t.detail.Txs[t.txs.cursor], w)
	off := min(t.lines.offset, max(len(lines)-h, 0))
	return strings.Join(lines[off:], "\n")
}

// txLines renders a transaction and its receipt, one field a line, events
// last; long payloads are cut into lines here rather than wrapped by the
// terminal.
func txLines(e *env, tx *client.Tx, w int) []string {
	st := e.st
	lines := []string{
		st.header.Render("Transaction "+short(tx.TxHash, 16)) + st.dim.Render("  block "+u64(tx.Height)+", index "+u64(uint64(tx.Index))+"  esc back"),
		field(st, "hash", tx.TxHash),
		field(st, "kind", tx.Kind),
		field(st, "sender", tx.Sender),
		field(st, "nonce", u64(tx.Nonce)),
	}
	r := tx.Receipt
	if r == nil {
		r = &client.Receipt{Code: tx.Code, GasUsed: tx.GasUsed}
	}
	res := outcome(r.Code, r.CodeName, "")
	if r.Code == 0 {
		res = st.good.Render(res)
	} else {
		res = st.bad.Render(res)
	}
	lines = append(lines, field(st, "result", res))
	if r.Error != "" {
		lines = append(lines, chunked(st, "error", oneLine(client.DenomTable(e.denoms).Text(r.Error)), w, 4)...)
	}
	lines = append(lines,
		field(st, "gas", gasText(r.GasUsed)+" used of "+gasText(r.GasLimit)+" limit, price "+orDash(tx.GasPrice)),
	)
	if r.Fee.Denom != "" {
		lines = append(lines, field(st, "fee", e.denoms.coin(r.Fee.Amount, r.Fee.Denom)))
	}
	if tx.Memo != "" {
		lines = append(lines, field(st, "memo", oneLine(tx.Memo)))
	}
	if r.Data != "" {
		lines = append(lines, chunked(st, "data", r.Data, w, 4)...)
	}
	if len(tx.Payload) > 0 {
		var buf bytes.Buffer
		p := string(tx.Payload)
		if json.Compact(&buf, tx.Payload) == nil {
			p = buf.String()
		}
		lines = append(lines, chunked(st, "payload", p, w, 8)...)
	}
	lines = append(lines, "", st.header.Render("Events ("+itoa(len(r.Events))+")"))
	if len(r.Events) == 0 {
		lines = append(lines, st.dim.Render("  none"))
	}
	for _, ev := range r.Events {
		lines = append(lines, "  "+st.label.Render(ev.Type))
		for _, a := range ev.Attrs {
			lines = append(lines, "    "+pad(oneLine(a.Key), 10)+" "+oneLine(a.Value))
		}
	}
	return lines
}

const fieldWidth = 12

func field(st styles, name, value string) string {
	return st.label.Render(pad(name, fieldWidth)) + " " + value
}

// chunked lays a long value out over at most maxLines lines of the width.
func chunked(st styles, name, value string, w, maxLines int) []string {
	room := max(w-fieldWidth-1, 8)
	rs := []rune(value)
	var out []string
	for len(rs) > 0 && len(out) < maxLines {
		n := min(room, len(rs))
		label := ""
		if len(out) == 0 {
			label = name
		}
		out = append(out, field(st, label, string(rs[:n])))
		rs = rs[n:]
	}
	value = string(rs)
	if len(value) > 0 {
		out[len(out)-1] = fit(out[len(out)-1], w-1) + "…"
	}
	return out
}
