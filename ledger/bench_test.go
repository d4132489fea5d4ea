package ledger

import "testing"

// BenchmarkVerifyTx is one ML-DSA-65 transaction verification (decode not
// included); BenchmarkVerifyTxParallel runs it on every core, the way the
// mempool does.
func BenchmarkVerifyTx(b *testing.B) {
	c := NewCodec()
	k := testKey(b, 1)
	tx := testTx(b, c, k)
	raw, _ := c.EncodeTx(tx)
	pub := k.Public()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.VerifyTxRaw(tx, raw, "test", pub); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyTxParallel(b *testing.B) {
	c := NewCodec()
	k := testKey(b, 1)
	tx := testTx(b, c, k)
	raw, _ := c.EncodeTx(tx)
	pub := k.Public()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.VerifyTxRaw(tx, raw, "test", pub); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
}

// BenchmarkDecodeTx is decoding plus the canonical-form check.
func BenchmarkDecodeTx(b *testing.B) {
	c := NewCodec()
	raw, _ := c.EncodeTx(testTx(b, c, testKey(b, 1)))
	b.SetBytes(int64(len(raw)))
	for i := 0; i < b.N; i++ {
		if _, err := c.DecodeTx(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignTx is one deterministic ML-DSA-65 signature (client side).
func BenchmarkSignTx(b *testing.B) {
	c := NewCodec()
	k := testKey(b, 1)
	tx := testTx(b, c, k)
	for i := 0; i < b.N; i++ {
		tx.Nonce++
		if err := c.SignTx(tx, k); err != nil {
			b.Fatal(err)
		}
	}
}
