package kernel

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/net/raftnode"
)

// RaftMetrics are the node's view of the raft cluster, refreshed every
// second by the cluster loop (a single node without raft leaves them at 0).
// Rates (leader changes, messages) are counters; everything else is the
// current value.
type RaftMetrics struct {
	Term          prometheus.Gauge
	HasLeader     prometheus.Gauge
	IsLeader      prometheus.Gauge
	LeaderChanges prometheus.Counter
	CommitIndex   prometheus.Gauge
	AppliedIndex  prometheus.Gauge
	// Peers counts the other members by link state (connected, idle,
	// disconnected: client.Link*).
	Peers *prometheus.GaugeVec
	// PeerRTT is the round-trip time to each connected member (label
	// peer: its node id); a member that leaves loses its series.
	PeerRTT *prometheus.GaugeVec

	leader uint64 // last leader seen (observe only, from the cluster loop)
	seen   bool
}

func newRaftMetrics(r *prometheus.Registry) RaftMetrics {
	m := RaftMetrics{
		Term:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "sos_raft_term", Help: "Current raft term."}),
		HasLeader:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "sos_raft_has_leader", Help: "1 if this node knows a raft leader, else 0."}),
		IsLeader:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "sos_raft_is_leader", Help: "1 if this node is the raft leader, else 0."}),
		LeaderChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "sos_raft_leader_changes_total", Help: "Leader changes this node has seen (losing the leader counts too)."}),
		CommitIndex:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "sos_raft_commit_index", Help: "Highest raft log index this node knows is committed."}),
		AppliedIndex:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "sos_raft_applied_index", Help: "Highest raft log index this node has applied."}),
		Peers:         prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sos_raft_peers", Help: "Other cluster members by link state (connected, idle, disconnected)."}, []string{"link"}),
		PeerRTT:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sos_raft_peer_rtt_seconds", Help: "Round-trip time to each connected member."}, []string{"peer"}),
	}
	for _, l := range []string{client.LinkConnected, client.LinkIdle, client.LinkDown} {
		m.Peers.WithLabelValues(l)
	}
	r.MustRegister(m.Term, m.HasLeader, m.IsLeader, m.LeaderChanges, m.CommitIndex, m.AppliedIndex, m.Peers, m.PeerRTT)
	return m
}

// observe records raft's status and the peers' links as /v1/status
// reports them (cluster.status).
func (m *RaftMetrics) observe(st raftnode.Status, self uint64, peers []client.Peer) {
	m.Term.Set(float64(st.Term))
	m.HasLeader.Set(bool01(st.Leader != 0))
	m.IsLeader.Set(bool01(st.Leader != 0 && st.Leader == self))
	if m.seen && st.Leader != m.leader {
		m.LeaderChanges.Inc()
	}
	m.leader, m.seen = st.Leader, true
	m.CommitIndex.Set(float64(st.Commit))
	m.AppliedIndex.Set(float64(st.Applied))
	links := map[string]int{client.LinkConnected: 0, client.LinkIdle: 0, client.LinkDown: 0}
	m.PeerRTT.Reset()
	for _, p := range peers {
		if p.Self {
			continue
		}
		links[p.Link]++
		if p.Connected && p.RTTMs > 0 {
			m.PeerRTT.WithLabelValues(p.NodeID).Set(p.RTTMs / 1000)
		}
	}
	for l, n := range links {
		m.Peers.WithLabelValues(l).Set(float64(n))
	}
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// BuildInfo sets sos_build_info{version, chain_id, go_version} to 1.
func (m *Metrics) BuildInfo(version, chainID string) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sos_build_info", Help: "Always 1; the labels say which software runs which chain."},
		[]string{"version", "chain_id", "go_version"})
	g.WithLabelValues(version, chainID, runtime.Version()).Set(1)
	m.Registry.MustRegister(g)
}
