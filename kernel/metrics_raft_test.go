package kernel

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/net/raftnode"
)

// metricValue reads one sample (name with labels, as exposed) from a scrape.
func raftSample(t *testing.T, scraped, series string) (float64, bool) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(scraped)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: %v", series, err)
	}
	return v, true
}

// TestClusterRaftMetrics: every member exports its raft view (term, leader,
// commit and applied index, peers by link state) and sos_build_info; the
// gauge that duplicated rate(sos_txs_total) is gone.
func TestClusterRaftMetrics(t *testing.T) {
	tc := newTestCluster(t, 3)
	l := tc.leader(5 * time.Second)
	tc.converge(3, 10*time.Second)
	leaders := 0
	for i, m := range tc.members {
		var got string
		tc.waitFor(5*time.Second, fmt.Sprintf("node %d raft metrics", i), func() bool {
			got = scrape(t, m.node)
			v, _ := raftSample(t, got, "sos_raft_applied_index")
			hl, _ := raftSample(t, got, "sos_raft_has_leader")
			return v > 0 && hl == 1 // refreshed every second
		})
		st := m.node.cluster.raft.Status()
		if term, _ := raftSample(t, got, "sos_raft_term"); term < 1 || term > float64(st.Term) {
			t.Errorf("node %d: sos_raft_term %v, raft term %d", i, term, st.Term)
		}
		isLeader, _ := raftSample(t, got, "sos_raft_is_leader")
		leaders += int(isLeader)
		if c, _ := raftSample(t, got, "sos_raft_commit_index"); c < 1 {
			t.Errorf("node %d: sos_raft_commit_index %v", i, c)
		}
		// Two other members, none disconnected (memnet links are up).
		conn, _ := raftSample(t, got, `sos_raft_peers{link="connected"}`)
		idle, _ := raftSample(t, got, `sos_raft_peers{link="idle"}`)
		down, _ := raftSample(t, got, `sos_raft_peers{link="disconnected"}`)
		if conn+idle != 2 || down != 0 {
			t.Errorf("node %d: peers connected %v idle %v disconnected %v", i, conn, idle, down)
		}
		if !strings.Contains(got, `sos_build_info{chain_id="cluster-test",go_version="`) || !strings.Contains(got, `version="`+Version+`"} 1`) {
			t.Errorf("node %d: sos_build_info missing or wrong", i)
		}
		if strings.Contains(got, "sos_txs_per_second") {
			t.Errorf("node %d: sos_txs_per_second still exported (it duplicates rate(sos_txs_total))", i)
		}
	}
	if leaders != 1 {
		t.Fatalf("%d nodes report sos_raft_is_leader 1 (leader is node %d)", leaders, l)
	}
}

// TestRaftMetricsObserve: leader changes count, RTTs follow the peers (a
// member gone loses its series).
func TestRaftMetricsObserve(t *testing.T) {
	m := NewMetrics()
	r := &m.Raft
	peers := []client.Peer{{NodeID: "self", Self: true, Link: client.LinkSelf},
		{NodeID: "a", Connected: true, RTTMs: 2, Link: client.LinkConnected},
		{NodeID: "b", Link: client.LinkDown}}
	r.observe(raftnode.Status{Term: 2, Leader: 7, Commit: 10, Applied: 9}, 1, peers)
	r.observe(raftnode.Status{Term: 3, Leader: 0}, 1, peers[:2])
	r.observe(raftnode.Status{Term: 3, Leader: 1}, 1, peers[:2])
	mf, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]float64{}
	for _, f := range mf {
		for _, s := range f.GetMetric() {
			name := f.GetName()
			for _, lp := range s.GetLabel() {
				name += "/" + lp.GetValue()
			}
			switch {
			case s.Gauge != nil:
				vals[name] = s.GetGauge().GetValue()
			case s.Counter != nil:
				vals[name] = s.GetCounter().GetValue()
			}
		}
	}
	for k, want := range map[string]float64{
		"sos_raft_leader_changes_total": 2, "sos_raft_is_leader": 1, "sos_raft_term": 3,
		"sos_raft_peer_rtt_seconds/a": 0.002, "sos_raft_peers/disconnected": 0, "sos_raft_peers/connected": 1,
	} {
		if vals[k] != want {
			t.Errorf("%s = %v, want %v", k, vals[k], want)
		}
	}
	if _, ok := vals["sos_raft_peer_rtt_seconds/b"]; ok {
		t.Error("a disconnected peer has an RTT series")
	}
}
