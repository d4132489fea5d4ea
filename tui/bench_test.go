package tui

import (
	"fmt"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/sos-kernel/sos/kernel/client"
)

// BenchmarkView renders one frame with a large history loaded: only the
// visible rows are drawn, so a frame stays far below the 5 ms budget.
func BenchmarkView(b *testing.B) {
	for _, size := range [][2]int{{80, 24}, {160, 48}} {
		b.Run(fmt.Sprintf("blocks=10000/%dx%d", size[0], size[1]), func(b *testing.B) {
			m := loaded(b, size[0], size[1])
			send(m, blocksMsg{node: 0, blocks: testBlocks(1, 10_000)})
			send(m, keys("2")...)
			if n := len(m.tabs[1].(*blocksTab).blocks); n != 10_000 {
				b.Fatalf("%d blocks loaded", n)
			}
			benchFrames(b, m)
		})
		b.Run(fmt.Sprintf("accounts=1000/%dx%d", size[0], size[1]), func(b *testing.B) {
			m := loaded(b, size[0], size[1])
			send(m, keys("3")...)
			for i := 0; i < 1000; i++ {
				addr := fmt.Sprintf("sos1q%054dx%03d", i, i%997)
				send(m, txEventMsg{node: 0, ev: client.TxEvent{Sender: addr}})
				send(m, accountMsg{node: 0, addr: addr, account: testAccount(addr, uint64(i))})
			}
			send(m, keys("pgdown", "pgdown")...)
			if n := len(m.tabs[2].(*accountsTab).accts); n != 1000 {
				b.Fatalf("%d accounts loaded", n)
			}
			benchFrames(b, m)
		})
	}
}

func benchFrames(b *testing.B, m *model) {
	b.ReportAllocs()
	var v tea.View
	start := time.Now()
	for b.Loop() {
		v = m.View()
	}
	if per := time.Since(start) / time.Duration(max(b.N, 1)); per > 5*time.Millisecond {
		b.Errorf("%v a frame, budget 5ms", per)
	}
	_ = v
}
