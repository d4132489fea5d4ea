package kernel

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the node's Prometheus metrics, on a registry of its own (no
// global state, so tests can run several nodes in one process).
type Metrics struct {
	Registry     *prometheus.Registry
	Height       prometheus.Gauge
	Txs          prometheus.Counter
	TxsFailed    prometheus.Counter
	GasUsed      prometheus.Counter
	MempoolSize  prometheus.Gauge
	BlockCommit  prometheus.Histogram
	BlockBuild   prometheus.Histogram
	BlockTxs     prometheus.Histogram
	TxsPerSecond prometheus.Gauge
	// RaftDropped counts raft messages from peers that were not given to
	// raft, by reason (net/raftnode's Drop* reasons, and unknown_peer).
	RaftDropped *prometheus.CounterVec
	// SyncState is 1 for the node's current sync state (label state:
	// in_sync, catching_up, stalled) and 0 for the others.
	SyncState *prometheus.GaugeVec
	// SyncBehind is how many blocks the node's head is below the highest
	// height it knows the cluster committed.
	SyncBehind prometheus.Gauge

	// Jobs, as blocks commit on this node: how many reached each status
	// (submitted, done, failed, challenged, slashed, timeout) and the gas
	// their results reported.
	JobsByStatus *prometheus.CounterVec
	JobResultGas prometheus.Counter
	// This node's executor and verifier (JobRegistry counts them): jobs
	// running now, gas executed, bytes moved for jobs (direction in: module,
	// inputs and stdin fetched; out: outputs and logs served), and
	// re-executions of results with how many disagreed.
	JobsRunning      prometheus.Gauge
	JobGas           prometheus.Counter
	JobBytes         *prometheus.CounterVec
	JobVerifications prometheus.Counter
	JobMismatches    prometheus.Counter
}

// NewMetrics registers the node metrics.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry:     r,
		Height:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "sos_height", Help: "Height of the last committed block."}),
		Txs:          prometheus.NewCounter(prometheus.CounterOpts{Name: "sos_txs_total", Help: "Transactions committed."}),
		TxsFailed:    prometheus.NewCounter(prometheus.CounterOpts{Name: "sos_txs_failed_total", Help: "Committed transactions whose payload failed."}),
		GasUsed:      prometheus.NewCounter(prometheus.CounterOpts{Name: "sos_gas_used_total", Help: "Gas used by committed transactions."}),
		MempoolSize:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "sos_mempool_size", Help: "Transactions waiting in the mempool."}),
		BlockCommit:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sos_block_commit_seconds", Help: "Time to write a block (synced batch).", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		BlockBuild:   prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sos_block_build_seconds", Help: "Time to execute and seal a block, state root included.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		BlockTxs:     prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sos_block_txs", Help: "Transactions per block.", Buckets: prometheus.ExponentialBuckets(1, 4, 9)}),
		TxsPerSecond: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sos_txs_per_second", Help: "Committed transactions per second over the last block interval."}),
		RaftDropped:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sos_raft_messages_dropped_total", Help: "Raft messages from peers dropped before raft saw them, by reason."}, []string{"reason"}),
		SyncState:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sos_sync_state", Help: "1 for the node's sync state (in_sync, catching_up, stalled), 0 for the others."}, []string{"state"}),
		SyncBehind:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "sos_sync_behind_blocks", Help: "Blocks between the node's head and the highest height it knows the cluster committed."}),

		JobsByStatus:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sos_jobs_total", Help: "Jobs that reached each status in blocks committed on this node."}, []string{"status"}),
		JobResultGas:     prometheus.NewCounter(prometheus.CounterOpts{Name: "sos_job_result_gas_total", Help: "Gas used by jobs as their committed results report it."}),
		JobsRunning:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "sos_jobs_running", Help: "Jobs this node's executor is running."}),
		JobGas:           prometheus.NewCounter(prometheus.CounterOpts{Name: "sos_job_executed_gas_total", Help: "Gas executed by this node's job executor."}),
		JobBytes:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sos_job_bytes_total", Help: "Bytes moved for jobs this node ran: in (module, inputs, stdin) and out (outputs, logs)."}, []string{"direction"}),
		JobVerifications: prometheus.NewCounter(prometheus.CounterOpts{Name: "sos_job_verifications_total", Help: "Job results this node's verifier re-executed."}),
		JobMismatches:    prometheus.NewCounter(prometheus.CounterOpts{Name: "sos_job_verification_mismatches_total", Help: "Re-executed job results whose outcome differed from the result."}),
	}
	// Every label value exists from the start, so a rate over a series
	// that has not moved yet is 0, not absent.
	for _, s := range []string{"submitted", "done", "failed", "challenged", "slashed", "timeout"} {
		m.JobsByStatus.WithLabelValues(s)
	}
	m.JobBytes.WithLabelValues("in")
	m.JobBytes.WithLabelValues("out")
	r.MustRegister(m.Height, m.Txs, m.TxsFailed, m.GasUsed, m.MempoolSize, m.BlockCommit, m.BlockBuild, m.BlockTxs, m.TxsPerSecond,
		m.RaftDropped, m.SyncState, m.SyncBehind,
		m.JobsByStatus, m.JobResultGas, m.JobsRunning, m.JobGas, m.JobBytes, m.JobVerifications, m.JobMismatches,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
