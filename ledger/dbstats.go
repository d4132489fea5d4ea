package ledger

// DBStats are counters of the store's Pebble database: memtable flushes
// and compactions finished so far and running now. They let a benchmark
// or a metrics endpoint tell a block's own work from the database's
// background work that happened to run beside it.
type DBStats struct {
	Flushes            int64 // memtable flushes finished
	FlushesRunning     int64
	Compactions        int64 // compactions finished
	CompactionsRunning int64
	MemTableBytes      uint64 // the memtables' size, the mutable one included
}

// DBStats reads the database's counters now (cheap: no I/O).
func (s *Store) DBStats() DBStats {
	m := s.db.Metrics()
	return DBStats{
		Flushes: m.Flush.Count, FlushesRunning: m.Flush.NumInProgress,
		Compactions: m.Compact.Count, CompactionsRunning: m.Compact.NumInProgress,
		MemTableBytes: m.MemTable.Size,
	}
}
