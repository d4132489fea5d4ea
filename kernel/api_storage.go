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

func (n *Node) handleRequestPins(w http.ResponseWriter, r *http.Request) {
	m, st, ok := n.romeState(w)
	if !ok {
		return
	}
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	if _, err := m.Request(st, id); err != nil {
		writeErr(w, romeStatus(err), fmt.Errorf("kernel: request %d: %w", id, err))
		return
	}
	pins, err := m.RequestPins(st, id, maxWherePins)
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	out := []client.BlobPin{}
	for _, p := range pins {
		out = append(out, client.BlobPin{RequestID: id, Pin: p.Index, Size: p.Blob.Size, Height: p.Height, Epoch: p.Epoch, Holders: []client.BlobHolder{}})
	}
	writeJSON(w, http.StatusOK, out)
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
