package tui

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/sos-kernel/sos/kernel/client"
)

func testGov() govMsg {
	params := json.RawMessage(`{"fallback_policy":"greedy","quorum_bps":3340,"threshold_bps":5000,"voting_period_blocks":20,"members":[{"address":"` + addrAlice + `","weight":10}]}`)
	return govMsg{node: 0, params: params, props: []client.GovProposal{
		{ID: 1, Proposer: addrAlice, Title: "cheaper storage", Param: "fallback_policy", Value: "greedy", SubmitHt: 100, EndHeight: 120, Status: "passed", Yes: 10, TotalWeight: 10},
		{ID: 2, Proposer: addrBob, Title: "longer votes", Param: "voting_period_blocks", Value: "40", SubmitHt: 1230, EndHeight: 1250, Status: "voting",
			Yes: 10, No: 5, TotalWeight: 30, Votes: []client.GovVote{{Voter: addrAlice, Option: "yes", Weight: 10, Height: 1231}, {Voter: addrBob, Option: "no", Weight: 5, Height: 1232}}},
	}}
}

// TestGoldenGov: the governance view lists proposals (voting first, with
// blocks left), the live tally against quorum and threshold of the one
// under the cursor with its votes, and the parameters.
func TestGoldenGov(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {160, 48}} {
		name := fmt.Sprintf("gov_%dx%d", size[0], size[1])
		t.Run(name, func(t *testing.T) {
			m := loaded(t, size[0], size[1])
			send(m, keys("9")...)
			send(m, testGov())
			got := screen(m)
			checkFrame(t, got, size[0], size[1])
			golden(t, name, got)
			for _, want := range []string{"voting", "16 left", "yes 10 (33.3%)", "no 5 (16.7%)", "quorum", "passing", "threshold_bps"} {
				if size[0] >= 160 && !strings.Contains(got, want) {
					t.Errorf("gov view lacks %q", want)
				}
			}
		})
	}
}

// TestGovCursorStaysOnProposal: a refresh that brings a new proposal keeps
// the cursor on the one selected; no quorum is said when too few voted.
func TestGovCursorStaysOnProposal(t *testing.T) {
	m := loaded(t, 120, 40)
	send(m, keys("9")...)
	send(m, testGov())
	send(m, keys("down")...) // #1
	g := testGov()
	g.props = append(g.props, client.GovProposal{ID: 3, Title: "new", Status: "voting", EndHeight: 1260, Yes: 1, TotalWeight: 30})
	send(m, g)
	if !strings.Contains(screen(m), "#1 cheaper storage") {
		t.Fatalf("cursor left proposal #1:\n%s", screen(m))
	}
	send(m, keys("g")...) // #3, newest voting
	if got := screen(m); !strings.Contains(got, "#3 new") || !strings.Contains(got, "no quorum") {
		t.Fatalf("proposal #3 with too few votes:\n%s", got)
	}
	send(m, govMsg{node: 0, err: fmt.Errorf("%w: 404", client.ErrNotFound)})
	if !strings.Contains(screen(m), "serves no governance API") {
		t.Fatalf("a node without the API:\n%s", screen(m))
	}
}

// TestOverviewLogPane: the overview shows the focused node's newest log
// lines under the peers, warnings and errors marked, fetched after the
// last one held; a node that restarted starts the pane over.
func TestOverviewLogPane(t *testing.T) {
	m := loaded(t, 100, 30)
	at := epoch.Add(-time.Second).UnixMilli()
	send(m, logsMsg{node: 0, lines: []client.LogLine{
		{Seq: 1, TimeMs: at, Level: "INFO", Msg: "node started node_id=abc"},
		{Seq: 2, TimeMs: at, Level: "WARN", Msg: "this node is behind the cluster and not catching up head=5"},
	}})
	got := screen(m)
	for _, want := range []string{"Recent log", "11:59:59 INFO  node started node_id=abc", "WARN  this node is behind"} {
		if !strings.Contains(got, want) {
			t.Fatalf("log pane lacks %q:\n%s", want, got)
		}
	}
	ov := m.tabs[0].(*overviewTab)
	if len(ov.logs) != 2 || ov.logs[1].Seq != 2 {
		t.Fatalf("held lines %+v", ov.logs)
	}
	send(m, logsMsg{node: 0, lines: []client.LogLine{{Seq: 1, TimeMs: at, Level: "ERROR", Msg: "restarted"}}})
	if len(ov.logs) != 1 || !strings.Contains(screen(m), "ERROR restarted") || strings.Contains(screen(m), "node started") {
		t.Fatalf("after a restart the pane must start over: %+v\n%s", ov.logs, screen(m))
	}
	if !strings.Contains(m.View().Content, "255;0;0") {
		t.Fatal("an ERROR line is not drawn in red")
	}
	send(m, logsMsg{node: 0, err: fmt.Errorf("%w: 404", client.ErrNotFound)})
	if !strings.Contains(screen(m), "serves no log API") {
		t.Fatalf("no log API:\n%s", screen(m))
	}
}

// TestClusterLagStallAndMembers: the cluster view shows each node's lag
// behind the leader, the age of its newest block (stalled past
// stallAfter, in red), raft commit/applied and mempool, and lists the
// members the nodes report that no --node reaches.
func TestClusterLagStallAndMembers(t *testing.T) {
	m := newTestModel(t, "http://127.0.0.1:26657", "http://127.0.0.1:26667")
	s1, s2 := testStatus(), testStatus()
	s1.Role, s1.Leader, s1.RaftCommit, s1.RaftApplied, s1.MempoolSize = "leader", s1.NodeID, 2470, 2469, 1234
	s2.NodeID, s2.Role, s2.Leader, s2.Height, s2.RaftCommit, s2.RaftApplied = "node-ffeeddccbbaa99887766", "follower", s1.NodeID, 1200, 2400, 2300
	s2.TimeMs = epoch.Add(-45 * time.Second).UnixMilli()
	s1.Peers = []client.Peer{
		{NodeID: s1.NodeID, Self: true, Link: client.LinkSelf},
		{NodeID: s2.NodeID, Role: "follower", Connected: true, Link: client.LinkConnected, Match: 2300},
		{NodeID: "node-0123456789abcdef0000", Role: "learner", Link: client.LinkDown, Match: 17, Address: "10.0.0.9:26656"},
	}
	send(m, tea.WindowSizeMsg{Width: 160, Height: 30}, statusMsg{node: 0, status: s1}, statusMsg{node: 1, status: s2})
	send(m, keys("5")...)
	got := screen(m)
	for _, want := range []string{"2470/2469", "2400/2300", "1,234", "45s !", "#2 STALLED? no new block for 45s",
		"Other members (1)", "node-0123456789a…", "learner", "disconnected (#1)", "10.0.0.9:26656"} {
		if !strings.Contains(got, want) {
			t.Fatalf("cluster view lacks %q:\n%s", want, got)
		}
	}
	var row2 string
	for _, l := range strings.Split(got, "\n") {
		if strings.Contains(l, "26667") {
			row2 = l
		}
	}
	if f := strings.Fields(row2); len(f) < 5 || f[2] != "1200" || f[3] != "34" {
		t.Fatalf("node 2 row %q: want height 1200 lag 34", row2)
	}
	if strings.Count(got, "node-ffeeddccbbaa99887766") != 1 {
		t.Fatal("a monitored node is listed again among the other members")
	}
	if !strings.Contains(m.View().Content, "255;0;0") {
		t.Fatal("the stall is not drawn in red")
	}
}

// TestBlocksTxLookup: a filter that is a whole transaction hash is looked
// up on the node and opens that transaction in its block; a hash the node
// does not have (or pruned) says so.
func TestBlocksTxLookup(t *testing.T) {
	m := loaded(t, 120, 40)
	want := testBlockDetail().Txs[1].TxHash
	send(m, keys("2", "/", want, "enter")...)
	bt := m.tabs[1].(*blocksTab)
	if bt.lookup != want || !strings.Contains(screen(m), "looking the transaction up") {
		t.Fatalf("no lookup of %s (lookup %q):\n%s", want, bt.lookup, screen(m))
	}
	send(m, txLookupMsg{node: 0, hash: want, tx: &client.Tx{TxHash: want, Height: 1234, Index: 1}})
	send(m, blockMsg{node: 0, block: testBlockDetail()})
	if bt.level != levelTx || bt.txs.cursor != 1 || !strings.Contains(screen(m), want[:16]) {
		t.Fatalf("the transaction did not open (level %d, tx %d):\n%s", bt.level, bt.txs.cursor, screen(m))
	}
	send(m, keys("esc", "esc", "esc")...)
	other := strings.Repeat("ab", 32)
	send(m, keys("/", other, "enter")...)
	send(m, txLookupMsg{node: 0, hash: other, err: fmt.Errorf("%w: kernel: tx %s is in block 3: pruned", client.ErrPruned, other)})
	if got := screen(m); !strings.Contains(got, "transaction: pruned") {
		t.Fatalf("a pruned transaction is not reported:\n%s", got)
	}
}
