package kernel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome"
)

// maxWherePins bounds the pins GET /v1/blobs/{id}/where lists.
const maxWherePins = 256

func (n *Node) registerStorageAPI(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/blobs/{id}/where", n.handleBlobWhere)
	mux.HandleFunc("GET /v1/storage/pins", n.handleStoragePins)
	mux.HandleFunc("GET /v1/rome/requests/{id}/pins", n.handleRequestPins)
	mux.HandleFunc("GET /v1/meters", n.handleMeters)
	mux.HandleFunc("GET /v1/meters/{id}", n.handleMeter)
}

func apiHolder(h rome.HolderStatus) client.BlobHolder {
	return client.BlobHolder{LeaseID: h.LeaseID, OfferID: h.OfferID, Provider: h.Provider.String(), Node: h.Node.String(), Region: h.Region,
		Lease: h.Lease, Holding: h.Holding, FromEpoch: h.FromEpoch, LastProofHeight: h.LastProofHeight, LastProofEpoch: h.LastProofEpoch,
		Misses: h.Misses, LastMissEpoch: h.LastMissEpoch}
}

func (n *Node) handleBlobWhere(w http.ResponseWriter, r *http.Request) {
	m, st, ok := n.romeState(w)
	if !ok {
		return
	}
	id, ok := pathBlobID(w, r)
	if !ok {
		return
	}
	pins, err := m.BlobPins(st, ledger.BlobID(id), maxWherePins)
	if err != nil {
		writeErr(w, romeStatus(err), fmt.Errorf("kernel: blob %s: %w", id, err))
		return
	}
	clock, err := m.Clock(st)
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	out := client.BlobWhere{BlobID: id.String(), Local: n.blobs.Has(id), Pins: []client.BlobPin{}, Epoch: clock.Epoch, Height: n.store.Head().Height}
	for _, p := range pins {
		bp := client.BlobPin{RequestID: p.RequestID, Pin: p.Pin, Size: p.Blob.Size, Height: p.Height, Epoch: p.Epoch, Replicas: p.Replicas,
			Holders: []client.BlobHolder{}}
		for _, h := range p.Holders {
			bp.Holders = append(bp.Holders, apiHolder(h))
		}
		out.Pins = append(out.Pins, bp)
	}
	if len(out.Pins) == 0 && !out.Local {
		writeErr(w, http.StatusNotFound, fmt.Errorf("kernel: blob %s is neither pinned nor on this node: %w", id, blob.ErrNotFound))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// Bounds of GET /v1/storage/pins: pins listed by default and at most.
const (
	defStoragePins = 500
	maxStoragePins = 1000
)

// handleStoragePins lists pinned blobs, newest request first and in pin
// order within a request, each with its holders (as GET
// /v1/blobs/{id}/where) and the request that pays for it: the storage
// view of the TUI in one call. ?limit= bounds the pins (default 500, at
// most 1000).
func (n *Node) handleStoragePins(w http.ResponseWriter, r *http.Request) {
	m, st, ok := n.romeState(w)
	if !ok {
		return
	}
	limit, err := queryUint(r, "limit")
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	if limit == 0 {
		limit = defStoragePins
	}
	limit = min(limit, maxStoragePins)
	clock, err := m.Clock(st)
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	out := client.StoragePins{Epoch: clock.Epoch, Height: n.store.Head().Height, Pins: []client.StoragePin{}}
	// Stop at the request that reaches the limit: its pins decide.
	left := int(limit)
	reqs, err := m.Requests(st, 0, func(rq *rome.Request) bool {
		if left <= 0 || rq.Pins == 0 {
			return false
		}
		left -= int(rq.Pins)
		return true
	})
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	for i := range reqs {
		rq := &reqs[i]
		pins, err := m.RequestPins(st, rq.ID, int(limit)-len(out.Pins))
		if err != nil {
			writeErr(w, romeStatus(err), fmt.Errorf("kernel: request %d pins: %w", rq.ID, err))
			return
		}
		for j := range pins {
			sp, err := storagePin(m, st, rq, &pins[j])
			if err != nil {
				writeErr(w, romeStatus(err), err)
				return
			}
			out.Pins = append(out.Pins, sp)
		}
		if len(out.Pins) >= int(limit) {
			break
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleRequestPins(w http.ResponseWriter, r *http.Request) {
	m, st, ok := n.romeState(w)
	if !ok {
		return
	}
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	rq, err := m.Request(st, id)
	if err != nil {
		writeErr(w, romeStatus(err), fmt.Errorf("kernel: request %d: %w", id, err))
		return
	}
	pins, err := m.RequestPins(st, id, maxWherePins)
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	out := []client.StoragePin{}
	for i := range pins {
		sp, err := storagePin(m, st, rq, &pins[i])
		if err != nil {
			writeErr(w, romeStatus(err), err)
			return
		}
		out = append(out, sp)
	}
	writeJSON(w, http.StatusOK, out)
}

// storagePin is one pin of request rq as the API shows it: the blob, the
// request that pays for it and the holders of this pin (the blob's pins
// carry the holders, as GET /v1/blobs/{id}/where shows them).
func storagePin(m *rome.Market, st *ledger.State, rq *rome.Request, p *rome.Pin) (client.StoragePin, error) {
	sp := client.StoragePin{BlobID: p.Blob.ID.String(), Consumer: rq.Owner.String(), RequestStatus: rome.StatusName(rq.Status),
		OpenReplicas: rq.Open, Repairs: rq.Repairs, EndEpoch: rq.EndEpoch,
		BlobPin: client.BlobPin{RequestID: rq.ID, Pin: p.Index, Size: p.Blob.Size, Height: p.Height, Epoch: p.Epoch,
			Replicas: rq.Replicas, Holders: []client.BlobHolder{}}}
	where, err := m.BlobPins(st, p.Blob.ID, maxWherePins)
	if err != nil {
		return sp, fmt.Errorf("kernel: blob %s: %w", p.Blob.ID, err)
	}
	for _, ps := range where {
		if ps.RequestID != rq.ID || ps.Pin != p.Index {
			continue
		}
		for _, h := range ps.Holders {
			sp.Holders = append(sp.Holders, apiHolder(h))
		}
	}
	return sp, nil
}

func apiMeter(mt *rome.Meter) client.Meter {
	fp := ""
	if k, err := ledger.ParsePublicKey(mt.PubKey); err == nil {
		fp = k.Fingerprint()
	}
	return client.Meter{MeterID: mt.ID, Owner: mt.Owner.String(), Kind: rome.KindName(mt.Kind), Key: fp, Height: mt.Height,
		Counter: mt.Counter, Measure: rome.MeterMeasure(mt.Kind), Seq: mt.Seq, Readings: mt.Readings}
}

func (n *Node) handleMeters(w http.ResponseWriter, r *http.Request) {
	m, st, ok := n.romeState(w)
	if !ok {
		return
	}
	var owner ledger.Address
	if s := r.URL.Query().Get("owner"); s != "" {
		a, err := ledger.ParseAddress(s)
		if err != nil {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("kernel: owner: %w", err))
			return
		}
		owner = a
	}
	ms, err := m.Meters(st, 1000, func(mt *rome.Meter) bool { return owner.IsZero() || mt.Owner == owner })
	romeList(w, ms, err, apiMeter)
}

func (n *Node) handleMeter(w http.ResponseWriter, r *http.Request) {
	romeOne(n, w, r, "id", (*rome.Market).Meter, apiMeter)
}

// storageUsage adds a lease's storage and meter figures of epoch e.
func (n *Node) storageUsage(m *rome.Market, st *ledger.State, l *rome.Lease, e uint64, me *client.MeteredEpoch) error {
	se, err := m.LeaseStorageEpoch(st, l.ID, e)
	if err != nil {
		return err
	}
	me.StorageDue, me.StorageMissed, me.StorageProven = se.Due, se.Missed, se.Proven
	for _, a := range l.Amounts {
		mu, ok, err := m.MeterUse(st, l.ID, e, a.Kind)
		if err != nil {
			return err
		}
		if ok {
			me.Meters = append(me.Meters, client.MeterEpoch{Kind: rome.KindName(a.Kind), MeterID: mu.MeterID, Amount: mu.Amount,
				Measure: rome.MeterMeasure(a.Kind), Readings: mu.Readings})
		}
	}
	return nil
}

// pinnedFetchWait bounds how long GET /v1/blobs/{id} waits for a pinned
// blob this node lacks to arrive from its holders before it answers.
const pinnedFetchWait = 10 * time.Minute

// fetchForGet brings a pinned blob the node lacks from its holders, so
// that GET /v1/blobs/{id} serves it from any node: it reports whether the
// blob is now here.
func (n *Node) fetchForGet(ctx context.Context, id blob.ID) (bool, error) {
	m := n.chain.market
	if m == nil {
		return false, nil
	}
	pins, err := m.BlobPins(ledger.NewState(n.store), ledger.BlobID(id), 1)
	if err != nil || len(pins) == 0 {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, pinnedFetchWait)
	defer cancel()
	if err := n.fetchPinned(ctx, id, pins[0].Blob.Size, pins[0].RequestID); err != nil {
		if errors.Is(err, errNoDataPlane) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}
