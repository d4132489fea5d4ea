package kernel

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
)

// TestSubmitWaitReportsGasLimit: the receipt of POST /v1/txs?wait=commit
// (what every CLI transaction prints with -o json) carries the gas limit
// the sender signed; it used to say 0 while GET /v1/txs/{hash} had it.
func TestSubmitWaitReportsGasLimit(t *testing.T) {
	tn := newTestChain(t, 2)
	cfg := DefaultConfig()
	cfg.BlockInterval = Duration{50 * time.Millisecond}
	_, c := startTestNode(t, tn, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := txbuild.New(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.Send(ctx, tn.users[0], transfer(tn.users[1], 5), txbuild.Options{Wait: true, GasLimit: 150_000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Receipt == nil || res.Receipt.GasLimit != 150_000 {
		t.Fatalf("commit receipt gas_limit %+v, want 150000", res.Receipt)
	}
	stored, err := c.Tx(ctx, res.TxHash)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Receipt.GasLimit != res.Receipt.GasLimit {
		t.Fatalf("GET /v1/txs says gas_limit %d, the commit answer %d", stored.Receipt.GasLimit, res.Receipt.GasLimit)
	}
}

// TestUnknownRouteAnswersJSON: a path the API does not have, or a method a
// route does not take, is answered with the JSON error body of every other
// refusal (it was the mux's text/plain "404 page not found").
func TestUnknownRouteAnswersJSON(t *testing.T) {
	_, c, _ := startLimitedNode(t, newTestChain(t, 1), APILimits{})
	cases := []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodGet, "/v1/no-such-route", http.StatusNotFound, ""},
		{http.MethodGet, "/nothing", http.StatusNotFound, ""},
		{http.MethodPost, "/v1/status", http.StatusMethodNotAllowed, "GET"},
		{http.MethodDelete, "/v1/txs", http.StatusMethodNotAllowed, "POST"},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, c.URL()+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var e client.Error
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &e) != nil || e.Error == "" {
				t.Fatalf("%d %s %q, want %d with a JSON error", resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.status)
			}
			if tc.allow != "" && !strings.Contains(resp.Header.Get("Allow"), tc.allow) {
				t.Fatalf("Allow %q, want it to list %s", resp.Header.Get("Allow"), tc.allow)
			}
		})
	}
	// A route that exists still answers as before.
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestMinHeightWaitsForTheBlock: ?min_height=H answers once the node has
// committed H (read-your-writes across nodes), refuses a height it does
// not reach in time with 504 and a bad value with 400.
func TestMinHeightWaitsForTheBlock(t *testing.T) {
	_, c, _ := startLimitedNode(t, newTestChain(t, 1), APILimits{MinHeightWait: 500 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := st.Height + 3 // 50 ms blocks: well within the wait
	got, err := c.AtHeight(want).Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Height < want {
		t.Fatalf("answered at height %d, asked for at least %d", got.Height, want)
	}
	// Another route, and a query string that is already there.
	if _, err := c.AtHeight(want).Blocks(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.AtHeight(got.Height + 1_000_000).Status(ctx)
	var he *client.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusGatewayTimeout || !strings.Contains(he.Msg, "did not reach min_height") {
		t.Fatalf("a height never reached: %v, want 504", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the 504 came after %s; the wait is 500 ms", d)
	}
	resp, err := http.Get(c.URL() + "/v1/status?min_height=soon")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("min_height=soon: %d, want 400", resp.StatusCode)
	}
}

// TestInsufficientFundsSaysDisplayUnits: the mempool's refusal names the
// amounts in the notation people read ("1,000,000 TFLP"), not in base
// units ("1000000000000uTFLP").
func TestInsufficientFundsSaysDisplayUnits(t *testing.T) {
	tn := newTestChain(t, 2)
	_, c := startTestNode(t, tn, DefaultConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := txbuild.New(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	// users hold 1,000,000 TFLP; ask for twice that (the gas limit skips
	// the simulation, so the mempool is what refuses).
	_, err = b.Send(ctx, tn.users[0], transfer(tn.users[1], 2_000_000_000_000), txbuild.Options{GasLimit: 150_000})
	if err == nil || !strings.Contains(err.Error(), "has 1,000,000 TFLP, needs 2,000,000.0015 TFLP") {
		t.Fatalf("overspending: %v", err)
	}
}

// TestGovProposalsShowLiveTally: while a proposal is voting, the API
// reports the votes cast so far and the total weight (it said "yes 0 no 0
// of 0" until the period ended, with the votes listed beside it).
func TestGovProposalsShowLiveTally(t *testing.T) {
	tn := newRomeTestChain(t, 3)
	// A long voting period: the proposal is still open when read.
	g, err := ledger.ParseGenesis(tn.doc)
	if err != nil {
		t.Fatal(err)
	}
	var gov map[string]any
	if err := json.Unmarshal(g.Extra["gov"], &gov); err != nil {
		t.Fatal(err)
	}
	gov["voting_period_blocks"] = 100_000
	g.Extra["gov"], _ = json.Marshal(gov)
	doc, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tn.store.Close()
	tn = openTestChain(t, t.TempDir(), doc, tn.users)
	cfg := DefaultConfig()
	cfg.BlockInterval = Duration{20 * time.Millisecond}
	_, c := startTestNode(t, tn, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := txbuild.New(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Send(ctx, tn.nodeKey, &ledger.GovPropose{Title: "t", Param: "epoch_blocks", Value: "7"}, txbuild.Options{Wait: true}); err != nil {
		t.Fatal(err)
	}
	list, err := c.GovProposals(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("proposals: %v %v", list, err)
	}
	if list[0].TotalWeight == 0 || list[0].Yes != 0 {
		t.Fatalf("before any vote: %+v, want total weight > 0 and yes 0", list[0])
	}
	id := list[0].ID
	if _, err := b.Send(ctx, tn.nodeKey, &ledger.GovVote{ProposalID: id, Option: ledger.VoteYes}, txbuild.Options{Wait: true}); err != nil {
		t.Fatal(err)
	}
	list, err = c.GovProposals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	one, err := c.GovProposal(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []client.GovProposal{list[0], *one} {
		if p.Status != "voting" || p.Yes == 0 || p.Yes > p.TotalWeight || p.No != 0 {
			t.Fatalf("after a yes vote: %+v, want the live tally", p)
		}
	}
	if len(one.Votes) != 1 || one.Votes[0].Weight != one.Yes {
		t.Fatalf("votes %+v do not add up to yes %d", one.Votes, one.Yes)
	}
}

// TestClusterStatusMarksSelf: a node lists itself among the members as
// itself (self, no link), not as a connected peer.
func TestClusterStatusMarksSelf(t *testing.T) {
	tc := newTestCluster(t, 3)
	tc.leader(20 * time.Second)
	for i, m := range tc.members {
		st := m.node.Status()
		self := 0
		for _, p := range st.Peers {
			if p.NodeID == st.NodeID {
				self++
				if !p.Self || p.Connected || p.Link != client.LinkSelf {
					t.Fatalf("node %d lists itself as %+v", i, p)
				}
			} else if p.Self || p.Link == "" || p.Link == client.LinkSelf {
				t.Fatalf("node %d lists peer %+v", i, p)
			}
		}
		if self != 1 {
			t.Fatalf("node %d lists itself %d times", i, self)
		}
	}
}

// TestLinkState: a missing connection is a fault only where raft needs
// one; two followers have none while the cluster is healthy.
func TestLinkState(t *testing.T) {
	cases := []struct {
		name                           string
		p                              client.Peer
		selfLeads, peerLeads, noLeader bool
		want                           string
	}{
		{"self", client.Peer{Self: true}, false, false, false, client.LinkSelf},
		{"connected", client.Peer{Connected: true}, false, false, false, client.LinkConnected},
		{"follower to follower", client.Peer{}, false, false, false, client.LinkIdle},
		{"follower to leader", client.Peer{}, false, true, false, client.LinkDown},
		{"leader to follower", client.Peer{}, true, false, false, client.LinkDown},
		{"electing", client.Peer{}, false, false, true, client.LinkDown},
	}
	for _, tc := range cases {
		if got := linkState(tc.p, tc.selfLeads, tc.peerLeads, tc.noLeader); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
