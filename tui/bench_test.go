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
		b.Run(fmt.Sprintf("rome=1000/%dx%d", size[0], size[1]), func(b *testing.B) {
			m := loaded(b, size[0], size[1])
			send(m, keys("6")...)
			send(m, bigRome(1000))
			send(m, keys("s", "s", "pgdown")...) // the leases, off the top
			if rt := m.tabs[5].(*romeTab); len(rt.leases) != 1000 || len(rt.epochs) != romeEpochs {
				b.Fatalf("%d leases, %d epochs loaded", len(rt.leases), len(rt.epochs))
			}
			benchFrames(b, m)
		})
		b.Run(fmt.Sprintf("certs=1000/%dx%d", size[0], size[1]), func(b *testing.B) {
			m := loaded(b, size[0], size[1])
			send(m, keys("7")...)
			send(m, bigCerts(1000))
			send(m, keys("pgdown", "pgdown")...)
			if n := len(m.tabs[6].(*certsTab).certs); n != 1000 {
				b.Fatalf("%d certificates loaded", n)
			}
			benchFrames(b, m)
		})
		b.Run(fmt.Sprintf("storage=1000/%dx%d", size[0], size[1]), func(b *testing.B) {
			m := loaded(b, size[0], size[1])
			send(m, keys("0")...)
			send(m, bigStorage(1000))
			send(m, keys("pgdown", "pgdown")...)
			if st := m.tabs[9].(*storageTab); len(st.pins) != 1000 || len(st.provs) != 50 || len(st.meters) != 100 {
				b.Fatalf("%d pins, %d providers, %d meters loaded", len(st.pins), len(st.provs), len(st.meters))
			}
			benchFrames(b, m)
		})
	}
}

// bigStorage is n pinned blobs of 3 replicas each held by 50 providers,
// with 100 meters.
func bigStorage(n int) storageMsg {
	msg := testStorage()
	base := msg.pins.Pins[0]
	prov := func(i int) string { return fmt.Sprintf("sos1qprov%02d%048dx", i%50, 0) }
	msg.pins.Pins, msg.providers, msg.meters = nil, nil, nil
	for i := 0; i < n; i++ {
		p := base
		p.BlobID, p.RequestID = hash(uint64(i), 'a'), uint64(n-i)
		p.Holders = append([]client.BlobHolder(nil), base.Holders...)
		for j := range p.Holders {
			p.Holders[j].Provider = prov(i + j)
		}
		msg.pins.Pins = append(msg.pins.Pins, p)
	}
	for i := 0; i < 50; i++ {
		r := testStorage().providers[i%3]
		r.Address = prov(i)
		msg.providers = append(msg.providers, r)
	}
	for i := 0; i < 100; i++ {
		m := testStorage().meters[0]
		m.MeterID, m.Owner = uint64(100-i), prov(i)
		msg.meters = append(msg.meters, m)
	}
	return msg
}

// bigRome is the fixture market with n offers, requests and leases and
// romeEpochs epochs.
func bigRome(n int) romeMsg {
	r := testRome()
	for len(r.epochs) < romeEpochs {
		ep := r.epochs[len(r.epochs)-1]
		ep.Epoch--
		ep.Height -= 10
		ep.Events = nil
		r.epochs = append(r.epochs, ep)
	}
	r.market.LastEpoch = &r.epochs[0]
	o, q, l := r.offers[0], r.requests[1], r.leases[1]
	r.offers, r.requests, r.leases = nil, nil, nil
	for i := n; i > 0; i-- {
		o.ID, q.ID, l.ID = uint64(i), uint64(i), uint64(i)
		r.offers, r.requests, r.leases = append(r.offers, o), append(r.requests, q), append(r.leases, l)
	}
	return r
}

// bigCerts is n certificates spread over 50 nodes.
func bigCerts(n int) certsMsg {
	base := testCerts().certs[1]
	var cs []client.Certificate
	for i := 1; i <= n; i++ {
		c := base
		c.Statement.ID = uint64(i)
		c.Statement.NodeID = fmt.Sprintf("sos1qnode%02d%048dx", i%50, 0)
		cs = append(cs, c)
	}
	return certsMsg{certs: cs}
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
