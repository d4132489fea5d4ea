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
	}
	r.MustRegister(m.Height, m.Txs, m.TxsFailed, m.GasUsed, m.MempoolSize, m.BlockCommit, m.BlockBuild, m.BlockTxs, m.TxsPerSecond,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
