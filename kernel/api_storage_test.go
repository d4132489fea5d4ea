package kernel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
)

// TestStoragePinsAPI is GET /v1/storage/pins on one node: empty before
// any pin; then two blobs pinned to a one-replica request list newest
// request first in pin order, each with the request's replicas and its
// lease as holder, which fetches it first and then shows its committed
// proof's height; ?limit= bounds the pins, and a malformed one is a 400.
// GET /v1/rome/requests/{id}/pins lists the same pins of one request.
func TestStoragePinsAPI(t *testing.T) {
	node := seededKey(t, 0)
	prov, cons := seededKey(t, 1000), seededKey(t, 1001)
	doc := storageGenesis(t, []*ledger.PrivateKey{node}, nil, []*ledger.PrivateKey{prov, cons}, 10, 100)
	tn := openTestChain(t, t.TempDir(), doc, []*ledger.PrivateKey{prov, cons})
	cfg := DefaultConfig()
	cfg.BlockInterval = Duration{50 * time.Millisecond}
	_, c := startTestNode(t, tn, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	empty, err := c.StoragePins(ctx, 0)
	if err != nil || len(empty.Pins) != 0 || empty.Pins == nil {
		t.Fatalf("before any pin: %+v, %v", empty, err)
	}
	send := committer(ctx, t, c)
	send(prov, &ledger.RomeOffer{Capacity: []ledger.ResourceAmount{{Kind: 4, Amount: 500}}, Price: []ledger.ResourceAmount{{Kind: 4, Amount: 2}},
		Region: "eu-west", Node: node.Address(), Bond: ledger.Coins{{Denom: "uTFLP", Amount: 50_000_000}}})
	send(cons, &ledger.RomeRequest{Demand: []ledger.ResourceAmount{{Kind: 4, Amount: 200}}, MaxPrice: []ledger.ResourceAmount{{Kind: 4, Amount: 3}},
		Epochs: 40, Replicas: 1, Region: "eu-west"})
	var lease client.RomeLease
	waitFor(t, ctx, "a storage lease", func() bool {
		ls, err := c.RomeLeases(ctx, client.RomeFilter{Status: "active"})
		if err == nil && len(ls) > 0 {
			lease = ls[0]
			return true
		}
		return false
	})
	var ids []string
	for i := range 2 {
		data := seededBytes(3000+i*1000, uint64(10+i))
		put, err := c.PutBlob(ctx, bytes.NewReader(data), int64(len(data)), "")
		if err != nil {
			t.Fatal(err)
		}
		id, _ := ledger.ParseBlobID(put.ID)
		send(cons, &ledger.BlobPin{RequestID: lease.RequestID, Blob: ledger.BlobRef{ID: id, Size: put.Size}})
		ids = append(ids, put.ID)
	}

	got, err := c.StoragePins(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Pins) != 2 || got.Epoch == 0 || got.Height == 0 {
		t.Fatalf("pins: %+v", got)
	}
	for i, p := range got.Pins {
		if p.BlobID != ids[i] || p.Pin != uint32(i) || p.RequestID != lease.RequestID || p.Replicas != 1 ||
			p.Consumer != cons.Address().String() || p.RequestStatus == "" || p.EndEpoch == 0 || p.Size != uint64(3000+i*1000) {
			t.Fatalf("pin %d: %+v", i, p)
		}
		if len(p.Holders) != 1 || p.Holders[0].LeaseID != lease.ID || p.Holders[0].Provider != prov.Address().String() ||
			!p.Holders[0].Holding || p.Holders[0].Region != "eu-west" {
			t.Fatalf("pin %d holders: %+v", i, p.Holders)
		}
	}
	waitFor(t, ctx, "both pins proven in the list", func() bool {
		got, err := c.StoragePins(ctx, 0)
		return err == nil && len(got.Pins) == 2 && got.Pins[0].Holders[0].LastProofHeight > 0 && got.Pins[1].Holders[0].LastProofHeight > 0
	})

	one, err := c.StoragePins(ctx, 1)
	if err != nil || len(one.Pins) != 1 || one.Pins[0].BlobID != ids[0] {
		t.Fatalf("limit 1: %+v, %v", one, err)
	}
	// The request's own pins: the same entries, blob ids and holders.
	var reqPins []client.StoragePin
	if err := c.GetJSON(ctx, fmt.Sprintf("/v1/rome/requests/%d/pins", lease.RequestID), &reqPins); err != nil {
		t.Fatal(err)
	}
	if len(reqPins) != 2 {
		t.Fatalf("request pins: %+v", reqPins)
	}
	for i, p := range reqPins {
		if p.BlobID != ids[i] || p.Pin != uint32(i) || p.Replicas != 1 || len(p.Holders) != 1 || p.Holders[0].LeaseID != lease.ID {
			t.Fatalf("request pin %d: %+v", i, p)
		}
	}
	var he *client.HTTPError
	if err := c.GetJSON(ctx, "/v1/rome/requests/999/pins", &reqPins); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("unknown request's pins: %v", err)
	}
	if err := c.GetJSON(ctx, "/v1/storage/pins?limit=many", new(client.StoragePins)); !errors.As(err, &he) || he.Status != http.StatusBadRequest {
		t.Fatalf("limit=many: %v", err)
	}
}
