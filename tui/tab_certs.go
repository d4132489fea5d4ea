package tui

import (
	"fmt"
	"sort"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/sos-kernel/sos/kernel/client"
)

// certsTab lists the certificates the market issued, grouped by the node
// (contributor) they credit, with a detail pane for the one under the
// cursor.
//
// "Verified" means the issuer's ML-DSA-65 signature over the statement
// checks out. The inspector cannot check it itself (that needs the ledger's
// crypto, which it does not import), so it shows what the node reports: a
// certificate is "signed" only once the chain accepted a cert_sign
// transaction, and the chain verifies the signature and the issuer before
// it accepts one. The detail pane says so, and names the offline check,
// sos cert verify.
type certsTab struct {
	loadState
	certs  []client.Certificate // by node, then by id
	nodes  int
	counts map[string]int // by certStatus

	sections // one list
}

// certDetailLines is the height of the detail pane, with its blank line.
const certDetailLines = 10

func newCertsTab() *certsTab {
	return &certsTab{sections: newSections(1, "node, kind, issuer, status or #id")}
}

func (t *certsTab) title() string { return "Certs" }

func (t *certsTab) bindings(k keyMap) []key.Binding {
	return []key.Binding{k.Filter, k.Up, k.Down}
}

func (t *certsTab) refresh(e *env) tea.Cmd { return e.f.certs(e.focus) }

// at is row i of the list.
func (t *certsTab) at(i int) *client.Certificate { return &t.certs[t.index(0, i)] }

func (t *certsTab) update(e *env, msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case focusMsg:
		*t = *newCertsTab()
	case certsMsg:
		if t.took(e.focus, msg.node, msg.err) {
			t.set(msg.certs)
		}
	case tea.KeyPressMsg:
		return t.key(e, msg)
	default:
		return t.filter.tick(msg)
	}
	return nil
}

func (t *certsTab) set(cs []client.Certificate) {
	t.begin() // keeps the cursor on its certificate
	t.certs = append(t.certs[:0], cs...)
	sort.SliceStable(t.certs, func(i, j int) bool {
		a, b := &t.certs[i].Statement, &t.certs[j].Statement
		if a.NodeID != b.NodeID {
			return a.NodeID < b.NodeID
		}
		return a.ID < b.ID
	})
	t.counts = map[string]int{}
	t.nodes = 0
	for i := range t.certs {
		c := &t.certs[i]
		if i == 0 || c.Statement.NodeID != t.certs[i-1].Statement.NodeID {
			t.nodes++
		}
		s := certStatus(c)
		t.counts[s]++
		t.add(0, u64(c.Statement.ID), "#"+u64(c.Statement.ID), c.Statement.NodeID, certKind(c), c.Statement.Issuer, s)
	}
	t.end()
}

func (t *certsTab) key(e *env, msg tea.KeyPressMsg) tea.Cmd {
	cmd, _ := t.handleKey(e.keys, msg, t.ready(), t.rows(e))
	return cmd
}

func (t *certsTab) rows(e *env) int {
	r := e.bodyHeight() - 2 - certDetailLines // title, table header, detail
	if t.filterShown() {
		r--
	}
	return max(r, 1)
}

// certStatus is the node's word for a certificate: signed, pending
// (unsigned) or revoked.
func certStatus(c *client.Certificate) string {
	switch {
	case c.Status != "":
		return c.Status
	case c.Revoked:
		return "revoked"
	case c.Signature != "":
		return "signed"
	}
	return "pending"
}

func certKind(c *client.Certificate) string {
	if c.KindName != "" {
		return c.KindName
	}
	return fmt.Sprintf("kind %d", c.Statement.Kind)
}

func certEpochs(s *client.CertStatement) string {
	if s.FromEpoch == s.ToEpoch {
		return u64(s.FromEpoch)
	}
	return fmt.Sprintf("%d–%d", s.FromEpoch, s.ToEpoch)
}

// statusCell is the list's status column: signed, unsigned or revoked.
func (t *certsTab) statusCell(st styles, c *client.Certificate) string {
	switch certStatus(c) {
	case "signed":
		return st.good.Render("signed")
	case "revoked":
		return st.bad.Render("revoked")
	case "pending":
		return st.warn.Render("unsigned")
	}
	return certStatus(c)
}

func (t *certsTab) view(e *env, w, h int) string {
	st := e.st
	title := st.header.Render("Certificates")
	switch {
	case !t.loaded:
		return title + "\n" + st.dim.Render("loading…")
	case t.noAPI:
		return title + "\n" + st.warn.Render("no market API on this node") + st.dim.Render(" (certificates are issued by the ROME market)")
	case unavailable(t.err):
		return title + "\n" + st.warn.Render("the ROME market is not configured on this node") + "\n" + st.dim.Render(errText(t.err))
	case t.err != nil:
		return title + "\n" + st.bad.Render("cannot load certificates: "+errText(t.err))
	}
	lines := []string{title + fmt.Sprintf(" (%d) for %d nodes", len(t.certs), t.nodes) +
		st.dim.Render(fmt.Sprintf(" · %d signed · %d unsigned · %d revoked", t.counts["signed"], t.counts["pending"], t.counts["revoked"]))}
	if f := t.filterLine(st, w, ""); f != "" {
		lines = append(lines, f)
	}
	cols := layoutColumns([]column{{"", 1, false}, {"id", 5, true}, {"node (contributor)", 22, false}, {"kind", 9, false},
		{"amount", 9, true}, {"epochs", 9, false}, {"status", 8, false}, {"issuer", 14, false}}, w)
	lines = append(lines, tableHeader(st, cols))
	rows := max(h-len(lines)-certDetailLines, 1)
	n := t.n(0)
	above := false // a row is drawn above this one
	lines = append(lines, t.rowLines(st, cols, w, rows, func(i int) []string {
		c := t.at(i)
		s := &c.Statement
		node := shortAddr(s.NodeID, cols[2].width)
		if above && s.NodeID == t.at(i-1).Statement.NodeID {
			node = st.dim.Render(pad("  ″", cols[2].width)) // same node as the row above
		}
		above = true
		return []string{"#" + u64(s.ID), node, certKind(c), group(u64(s.Amount)), certEpochs(s), t.statusCell(st, c), orDash(s.Issuer)}
	})...)
	if n == 0 {
		if t.filtering() {
			lines = append(lines, st.dim.Render("  no certificate matches the filter"))
		} else {
			lines = append(lines, st.dim.Render("  no certificate issued yet"))
		}
	}
	for len(lines) < h-certDetailLines {
		lines = append(lines, "")
	}
	if n > 0 {
		lines = append(lines, t.detail(e, t.at(t.lists[0].list.cursor), w)...)
	}
	return strings.Join(lines, "\n")
}

// detail is the pane under the list: the whole statement, and what
// "verified" means for it.
func (t *certsTab) detail(e *env, c *client.Certificate, w int) []string {
	st := e.st
	s := &c.Statement
	out := []string{"", st.header.Render(fmt.Sprintf("Certificate #%d", s.ID)) + st.dim.Render(fmt.Sprintf(" · statement v%d · chain %s", s.Version, orDash(s.ChainID)))}
	left := uint64(0)
	if s.Amount > c.Redeemed {
		left = s.Amount - c.Redeemed
	}
	out = append(out,
		field(st, "node", orDash(s.NodeID)),
		field(st, "delivered", fmt.Sprintf("%s %s units, epochs %s · %s redeemed, %s left",
			group(u64(s.Amount)), certKind(c), certEpochs(s), group(u64(c.Redeemed)), group(u64(left)))),
		field(st, "issuer", orDash(s.Issuer)),
		field(st, "issued", fmt.Sprintf("height %d", s.IssuedHeight)+st.dim.Render(" · issuer key "+short(c.IssuerKey, 16)+hexBytes(c.IssuerKey))),
	)
	sig := st.dim.Render("none")
	if c.Signature != "" {
		sig = short(c.Signature, 16) + st.dim.Render(hexBytes(c.Signature))
	}
	out = append(out, field(st, "signature", sig))
	var status, note string
	switch certStatus(c) {
	case "signed":
		status = st.good.Render("signed by "+orDash(s.Issuer)) + " (node status)"
		note = "the chain verified it on cert_sign; this view does not re-verify"
	case "revoked":
		status = st.bad.Render("revoked") + ": " + orDash(c.RevokeReason)
		note = "no longer honoured, whatever its signature"
	default:
		status = st.warn.Render("unsigned") + st.dim.Render(" (pending)")
		note = "the issuer signs it with a cert_sign tx after the next block"
	}
	out = append(out,
		field(st, "status", status),
		field(st, "", st.dim.Render(note)),
		field(st, "verify", st.dim.Render(fmt.Sprintf("offline: sos cert show %d -o json > c.json && sos cert verify c.json", s.ID))),
	)
	return out
}

// hexBytes says how many bytes a hex string holds.
func hexBytes(h string) string {
	if h == "" {
		return ""
	}
	return fmt.Sprintf(" (%d bytes)", len(h)/2)
}
