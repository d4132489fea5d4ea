package tui

import (
	"sort"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/sos-kernel/sos/kernel/client"
)

// tab is one view of the inspector. Adding a view is writing one type that
// implements it and appending it to the registry in newModel (its position
// is its digit key: 1-9, then 0 for the tenth).
type tab interface {
	// title names the tab in the tab bar.
	title() string
	// update sees every message; key presses only while the tab is shown.
	update(e *env, msg tea.Msg) tea.Cmd
	// refresh returns the IO that brings the tab up to date; it is called
	// when the tab is shown and on every refresh while it is shown.
	refresh(e *env) tea.Cmd
	// view draws the tab in a w×h area.
	view(e *env, w, h int) string
	// bindings lists the tab's own keys, for the help.
	bindings(k keyMap) []key.Binding
	// typing reports that a text box has the keyboard: global shortcuts
	// (q, digits, tab) go to the tab instead.
	typing() bool
}

// env is what the tabs share: the nodes and what is known about them, the
// injected clock, styles, keys and the IO commands.
type env struct {
	nodes  []*nodeState
	focus  int // the node the single-node views show
	now    func() time.Time
	st     styles
	keys   keyMap
	f      fetcher
	denoms denomTable
	width  int
	height int
}

func (e *env) node() *nodeState { return e.nodes[e.focus] }

// bodyHeight is the height tabs draw in: the frame minus the tab bar, the
// status line and the help line.
func (e *env) bodyHeight() int { return max(1, e.height-3) }

// nodeState is what the inspector knows of one node.
type nodeState struct {
	url       string
	status    *client.Status // last good answer, kept while unreachable
	statusErr error          // the last status call's error, nil when it worked
	statusAt  time.Time
	head      client.BlockEvent // newest block seen on the stream
	live      bool              // the stream delivered an event since it last dropped
	streamErr error
	retry     time.Duration
	roots     map[uint64]string // recent state roots by height, to compare nodes
	hist      history
	ch        chan tea.Msg
}

// rootsKept bounds nodeState.roots.
const rootsKept = 256

func (n *nodeState) height() uint64 {
	h := n.head.Height
	if n.status != nil && n.status.Height > h {
		h = n.status.Height
	}
	return h
}

// stateRoot is the state root at height(), if known.
func (n *nodeState) stateRoot() string {
	if n.status != nil && n.status.Height >= n.head.Height {
		return n.status.StateRoot
	}
	return n.head.StateRoot
}

func (n *nodeState) reachable() bool { return n.statusErr == nil && n.status != nil }

func (n *nodeState) noteRoot(h uint64, root string) {
	if root == "" {
		return
	}
	if n.roots == nil {
		n.roots = make(map[uint64]string)
	}
	n.roots[h] = root
	if len(n.roots) > rootsKept {
		lowest := h
		for k := range n.roots {
			lowest = min(lowest, k)
		}
		delete(n.roots, lowest)
	}
}

// sample is one block's contribution to the rate sparklines.
type sample struct {
	height uint64
	timeMs int64
	txs    uint32
	gas    uint64
}

// history keeps recent blocks (ascending height) to compute rates from block
// times, not from the wall clock: the same blocks always draw the same
// sparkline.
type history struct{ s []sample }

const historyKept = 4096

func (h *history) add(ss ...sample) {
	for _, x := range ss {
		i := sort.Search(len(h.s), func(i int) bool { return h.s[i].height >= x.height })
		switch {
		case i < len(h.s) && h.s[i].height == x.height:
			h.s[i] = x
		case i == len(h.s):
			h.s = append(h.s, x)
		default:
			h.s = append(h.s, sample{})
			copy(h.s[i+1:], h.s[i:])
			h.s[i] = x
		}
	}
	if over := len(h.s) - historyKept; over > 0 {
		h.s = append(h.s[:0], h.s[over:]...)
	}
}

// rates buckets the window ending at the newest block into n intervals and
// returns txs/s and gas/s per interval.
func (h *history) rates(window time.Duration, n int) (txs, gas []float64) {
	txs, gas = make([]float64, n), make([]float64, n)
	if len(h.s) == 0 || n <= 0 {
		return
	}
	end := h.s[len(h.s)-1].timeMs + 1
	start := end - window.Milliseconds()
	bucket := float64(window.Milliseconds()) / float64(n)
	secs := bucket / 1000
	for i := len(h.s) - 1; i >= 0 && h.s[i].timeMs >= start; i-- {
		b := int(float64(h.s[i].timeMs-start) / bucket)
		b = min(max(b, 0), n-1)
		txs[b] += float64(h.s[i].txs) / secs
		gas[b] += float64(h.s[i].gas) / secs
	}
	return
}

// model is the root Bubble Tea model: the tab bar, key dispatch, help and
// the node bookkeeping; the tabs draw the rest.
type model struct {
	e              *env
	opts           Options
	tabs           []tab
	active         int
	showHelp       bool
	help           help.Model
	refreshPending bool
}

// newModel builds the model; it does no IO (the channels it makes are fed by
// goroutines that Init's commands start).
func newModel(f fetcher, urls []string, opts Options) *model {
	e := &env{
		now:    opts.Now,
		st:     defaultStyles(),
		keys:   defaultKeys(),
		f:      f,
		denoms: denomTable{},
		width:  80,
		height: 24,
	}
	for _, u := range urls {
		e.nodes = append(e.nodes, &nodeState{url: u, ch: make(chan tea.Msg, 256)})
	}
	m := &model{e: e, opts: opts, help: help.New()}
	m.tabs = []tab{
		newOverviewTab(),
		newBlocksTab(),
		newAccountsTab(),
		newContractsTab(),
		newClusterTab(),
		newRomeTab(),
		newCertsTab(),
		newJobsTab(),
		newGovTab(),
		newStorageTab(),
	}
	m.help.SetWidth(e.width)
	return m
}

// Init starts every node's event stream and asks for the first data.
func (m *model) Init() tea.Cmd {
	f := m.e.f
	var cmds []tea.Cmd
	for i, n := range m.e.nodes {
		cmds = append(cmds, f.startStream(i, n.ch, m.opts.backoff()), f.waitStream(n.ch), f.status(i))
	}
	cmds = append(cmds,
		f.latestBlocks(m.e.focus, initialBlocks),
		f.supply(m.e.focus, true),
		m.tabs[m.active].refresh(m.e),
		tickAfter(m.opts.Refresh),
	)
	return tea.Batch(cmds...)
}

// initialBlocks is how many block headers the first page loads; it also
// seeds the rate sparklines.
const initialBlocks = 200

// focusMsg tells the tabs that the focused node changed: drop what they
// hold of the previous one.
type focusMsg struct{}

func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	e := m.e
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		e.width, e.height = max(msg.Width, 1), max(msg.Height, 1)
		m.help.SetWidth(e.width)
		return m, m.forward(msg)
	case tea.KeyPressMsg:
		return m, m.key(msg)
	case statusMsg:
		if n := m.nodeAt(msg.node); n != nil {
			n.statusErr = msg.err
			if msg.err == nil && msg.status != nil {
				n.status = msg.status
				n.statusAt = e.now()
				n.noteRoot(msg.status.Height, msg.status.StateRoot)
			}
		}
		return m, m.forward(msg)
	case blockEventMsg:
		n := m.nodeAt(msg.node)
		if n == nil {
			return m, nil
		}
		n.live, n.streamErr, n.retry = true, nil, 0
		if msg.ev.Height >= n.head.Height {
			n.head = msg.ev
		}
		n.noteRoot(msg.ev.Height, msg.ev.StateRoot)
		n.hist.add(sample{height: msg.ev.Height, timeMs: msg.ev.TimeMs, txs: msg.ev.NumTxs, gas: msg.ev.GasUsed})
		cmds := []tea.Cmd{e.f.waitStream(n.ch), m.forward(msg)}
		if !m.refreshPending {
			m.refreshPending = true
			cmds = append(cmds, refreshAfter(m.opts.Debounce))
		}
		return m, tea.Batch(cmds...)
	case txEventMsg:
		n := m.nodeAt(msg.node)
		if n == nil {
			return m, nil
		}
		n.live, n.streamErr = true, nil
		return m, tea.Batch(e.f.waitStream(n.ch), m.forward(msg))
	case streamDownMsg:
		n := m.nodeAt(msg.node)
		if n == nil {
			return m, nil
		}
		n.live, n.streamErr, n.retry = false, msg.err, msg.retry
		// The stream is how we learn of new blocks; while it is down ask
		// for the status now, so the views say whether the node answers.
		return m, tea.Batch(e.f.waitStream(n.ch), e.f.status(msg.node), m.forward(msg))
	case blocksMsg:
		if n := m.nodeAt(msg.node); n != nil && msg.err == nil {
			for _, b := range msg.blocks {
				n.hist.add(sample{height: b.Height, timeMs: b.TimeMs, txs: b.NumTxs, gas: b.GasUsed})
				n.noteRoot(b.Height, b.StateRoot)
			}
		}
		return m, m.forward(msg)
	case supplyMsg:
		if msg.node == e.focus && msg.err == nil && msg.denoms != nil {
			e.denoms = newDenomTable(msg.denoms)
		}
		return m, m.forward(msg)
	case refreshMsg:
		m.refreshPending = false
		return m, m.refresh()
	case tickMsg:
		return m, tea.Batch(m.refresh(), tickAfter(m.opts.Refresh))
	}
	return m, m.forward(msg)
}

func (m *model) nodeAt(i int) *nodeState {
	if i < 0 || i >= len(m.e.nodes) {
		return nil
	}
	return m.e.nodes[i]
}

// forward hands a message to every tab.
func (m *model) forward(msg tea.Msg) tea.Cmd {
	cmds := make([]tea.Cmd, 0, len(m.tabs))
	for _, t := range m.tabs {
		cmds = append(cmds, t.update(m.e, msg))
	}
	return tea.Batch(cmds...)
}

// refresh asks every node for its status and the shown tab for its data.
func (m *model) refresh() tea.Cmd {
	cmds := make([]tea.Cmd, 0, len(m.e.nodes)+1)
	for i := range m.e.nodes {
		cmds = append(cmds, m.e.f.status(i))
	}
	cmds = append(cmds, m.tabs[m.active].refresh(m.e))
	return tea.Batch(cmds...)
}

func (m *model) key(msg tea.KeyPressMsg) tea.Cmd {
	k := m.e.keys
	if msg.String() == "ctrl+c" {
		return tea.Quit
	}
	cur := m.tabs[m.active]
	if cur.typing() {
		return cur.update(m.e, msg)
	}
	if m.showHelp {
		switch {
		case key.Matches(msg, k.Quit):
			return tea.Quit
		case key.Matches(msg, k.Help, k.Back):
			m.showHelp = false
		}
		return nil
	}
	switch {
	case key.Matches(msg, k.Quit):
		return tea.Quit
	case key.Matches(msg, k.Help):
		m.showHelp = true
		return nil
	case key.Matches(msg, k.Tabs):
		return m.show(tabIndex(msg.String()))
	case key.Matches(msg, k.NextTab):
		return m.show((m.active + 1) % len(m.tabs))
	case key.Matches(msg, k.PrevTab):
		return m.show((m.active + len(m.tabs) - 1) % len(m.tabs))
	case key.Matches(msg, k.NextNode) && len(m.e.nodes) > 1:
		m.e.focus = (m.e.focus + 1) % len(m.e.nodes)
		m.e.denoms = denomTable{}
		return tea.Batch(m.forward(focusMsg{}),
			m.e.f.latestBlocks(m.e.focus, initialBlocks),
			m.e.f.supply(m.e.focus, true),
			m.tabs[m.active].refresh(m.e))
	case key.Matches(msg, k.Refresh):
		return m.refresh()
	}
	return cur.update(m.e, msg)
}

func (m *model) show(i int) tea.Cmd {
	if i < 0 || i >= len(m.tabs) || i == m.active {
		return nil
	}
	m.active = i
	return m.tabs[i].refresh(m.e)
}

// View draws the frame: exactly the terminal's height, no line wider than
// the terminal.
func (m *model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = !m.opts.NoAltScreen
	v.WindowTitle = "sos tui"
	return v
}

func (m *model) render() string {
	e := m.e
	w, h := e.width, e.height
	lines := make([]string, 0, h)
	lines = append(lines, m.tabBar(w))
	bh := e.bodyHeight()
	var body string
	if m.showHelp {
		body = m.fullHelp(w)
	} else {
		body = m.tabs[m.active].view(e, w, bh)
	}
	bl := splitLines(body)
	for i := 0; i < bh; i++ {
		if i < len(bl) {
			lines = append(lines, bl[i])
		} else {
			lines = append(lines, "")
		}
	}
	lines = append(lines, m.statusLine(w), m.help.ShortHelpView(m.shortKeys()))
	return frame(lines, w, h)
}

// tabDigit is the key of the i-th tab: 1-9, then 0.
func tabDigit(i int) string {
	if i == 9 {
		return "0"
	}
	return string(rune('1' + i))
}

// tabIndex is the tab a digit key shows.
func tabIndex(digit string) int {
	if digit == "0" {
		return 9
	}
	return int(digit[0] - '1')
}

// tabBar draws the tab labels, as compact as the width needs: padded,
// then without padding, then without the space after the digit, then the
// other tabs' titles cut shorter (the shown one keeps its name), down to
// their digits alone.
func (m *model) tabBar(w int) string {
	st := m.e.st
	bar := m.tabLabels(" ", " ", " ", -1)
	if ansi.StringWidth(bar) > w {
		bar = m.tabLabels("", " ", " ", -1)
	}
	if ansi.StringWidth(bar) > w {
		bar = m.tabLabels("", " ", "", -1)
	}
	for cut := 6; ansi.StringWidth(bar) > w && cut >= 0; cut-- {
		bar = m.tabLabels("", " ", "", cut)
	}
	if len(m.e.nodes) > 1 {
		right := st.dim.Render(" node " + itoa(m.e.focus+1) + "/" + itoa(len(m.e.nodes)))
		if ansi.StringWidth(bar)+ansi.StringWidth(right) <= w {
			bar += strings.Repeat(" ", w-ansi.StringWidth(bar)-ansi.StringWidth(right)) + right
		}
	}
	return bar
}

// tabLabels draws the tab names, each "N Title" (N, gap, title) inside
// pad, separated by sep; cut ≥ 0 cuts the titles of the tabs not shown to
// that many characters.
func (m *model) tabLabels(pad, sep, gap string, cut int) string {
	st := m.e.st
	var b strings.Builder
	for i, t := range m.tabs {
		if i > 0 && pad == "" {
			b.WriteString(sep)
		}
		title := t.title()
		if cut >= 0 && i != m.active && len(title) > cut {
			title = title[:cut]
		}
		if title != "" {
			title = gap + title
		}
		label := pad + tabDigit(i) + title + pad
		if i == m.active {
			b.WriteString(st.tabActive.Render(label))
		} else {
			b.WriteString(st.tabIdle.Render(label))
		}
	}
	return b.String()
}

// statusLine says how the focused node is doing: streaming, waiting,
// unreachable (and when it is retried).
func (m *model) statusLine(w int) string {
	st, n := m.e.st, m.e.node()
	var state string
	switch {
	case n.statusErr != nil:
		state = st.bad.Render("✗ unreachable") + ": " + errText(n.statusErr)
		if n.retry > 0 {
			state += st.dim.Render(" — retry in " + n.retry.String())
		}
	case n.streamErr != nil:
		state = st.warn.Render("◌ stream down") + ": " + errText(n.streamErr)
		if n.retry > 0 {
			state += st.dim.Render(" — retry in " + n.retry.String())
		}
	case n.live:
		state = st.good.Render("● live")
	case n.status != nil:
		state = st.warn.Render("○ waiting for events")
	default:
		state = st.dim.Render("… connecting")
	}
	return fit(state+"  "+n.url+"  height "+heightText(n), w)
}

func heightText(n *nodeState) string {
	if n.status == nil && n.head.Height == 0 {
		return "—"
	}
	return u64(n.height())
}

func (m *model) shortKeys() []key.Binding {
	k := m.e.keys
	if m.tabs[m.active].typing() {
		return []key.Binding{
			key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "apply")),
			key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel")),
		}
	}
	out := []key.Binding{k.Help, k.Quit, k.NextTab}
	return append(out, m.tabs[m.active].bindings(k)...)
}

// fullHelp lays out the help's columns in as many rows as the width needs.
func (m *model) fullHelp(w int) string {
	k := m.e.keys
	groups := [][]key.Binding{
		{k.Tabs, k.NextTab, k.PrevTab, k.NextNode, k.Refresh, k.Help, k.Quit},
		k.nav(),
	}
	// The tab's own keys, less those already listed (the Overview's
	// "r refresh now" used to appear twice).
	var own []key.Binding
	for _, b := range m.tabs[m.active].bindings(k) {
		dup := false
		for _, g := range groups {
			for _, listed := range g {
				dup = dup || b.Help() == listed.Help()
			}
		}
		if !dup {
			own = append(own, b)
		}
	}
	if len(own) > 0 {
		groups = append(groups, own)
	}
	hm := m.help
	hm.SetWidth(0)
	var rows []string
	row := ""
	for _, g := range groups {
		col := hm.FullHelpView([][]key.Binding{g})
		switch {
		case row == "":
			row = col
		case lipgloss.Width(row)+4+lipgloss.Width(col) <= w:
			row = lipgloss.JoinHorizontal(lipgloss.Top, row, "    ", col)
		default:
			rows = append(rows, row)
			row = col
		}
	}
	rows = append(rows, row)
	title := m.e.st.header.Render("Keys — " + m.tabs[m.active].title() + " (? or esc to close)")
	legend := []string{"", m.e.st.header.Render("Raft roles (Overview, Cluster)")}
	for _, l := range roleLegend {
		legend = append(legend, fit(l, w))
	}
	return title + "\n\n" + strings.Join(rows, "\n\n") + "\n" + strings.Join(legend, "\n")
}

// roleLegend explains the roles a node reports (docs/api.md, README).
var roleLegend = []string{
	"leader         orders blocks           follower   a voter following the leader",
	"learner        replicates, no vote     single     a one-node chain, no raft",
	"candidate      asking for votes in an election",
	"pre-candidate  checking it could win before an election; stuck there: cut off from the majority, or removed",
}

func errText(err error) string {
	s := err.Error()
	// The client prefixes its errors; the operator needs the cause.
	if i := strings.LastIndex(s, ": dial tcp "); i >= 0 {
		s = s[i+2:]
	}
	return strings.TrimPrefix(s, "client: ")
}
