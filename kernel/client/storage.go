package client

import (
	"context"
	"fmt"
	"net/url"
)

// BlobHolder is how one lease holds a pinned blob.
type BlobHolder struct {
	LeaseID  uint64 `json:"lease_id"`
	OfferID  uint64 `json:"offer_id"`
	Provider string `json:"provider"`
	Node     string `json:"node"` // account of the holder node's key
	Region   string `json:"region"`
	Lease    string `json:"lease_status"`
	// Holding: the node holds it now (false: the lease ended, or lost its
	// replica after missed proofs).
	Holding         bool   `json:"holding"`
	FromEpoch       uint64 `json:"from_epoch"` // first epoch its challenges count
	LastProofHeight uint64 `json:"last_proof_height"`
	LastProofEpoch  uint64 `json:"last_proof_epoch"`
	Misses          uint64 `json:"misses"`
	LastMissEpoch   uint64 `json:"last_miss_epoch"`
}

// BlobPin is one pin of a blob to a request and who holds it.
type BlobPin struct {
	RequestID uint64       `json:"request_id"`
	Pin       uint32       `json:"pin"`
	Size      uint64       `json:"size"`
	Height    uint64       `json:"height"`
	Epoch     uint64       `json:"epoch"`
	Replicas  uint16       `json:"replicas"`
	Holders   []BlobHolder `json:"holders"`
}

// BlobWhere says where a blob is pinned and held (GET /v1/blobs/{id}/where).
type BlobWhere struct {
	BlobID string    `json:"blob_id"`
	Local  bool      `json:"local"` // the node you asked has it
	Pins   []BlobPin `json:"pins"`
	Epoch  uint64    `json:"epoch"`
	Height uint64    `json:"height"`
}

// StoragePin is one pinned blob in GET /v1/storage/pins: the pin with
// its holders, and the request that pays for it.
type StoragePin struct {
	BlobID string `json:"blob_id"`
	BlobPin
	Consumer      string `json:"consumer"`       // the request's owner
	RequestStatus string `json:"request_status"` // open, filled, done, ...
	// OpenReplicas wait for a lease (a replica being re-placed after a
	// repair, or never placed); Repairs counts replicas moved after
	// missed proofs; the replicas end at EndEpoch.
	OpenReplicas uint16 `json:"open_replicas"`
	Repairs      uint32 `json:"repairs"`
	EndEpoch     uint64 `json:"end_epoch"`
}

// StoragePins lists pinned blobs, newest request first
// (GET /v1/storage/pins).
type StoragePins struct {
	Epoch  uint64       `json:"epoch"` // the market's current epoch
	Height uint64       `json:"height"`
	Pins   []StoragePin `json:"pins"`
}

// Meter is a registered metering device.
type Meter struct {
	MeterID  uint64 `json:"meter_id"`
	Owner    string `json:"owner"`
	Kind     string `json:"kind"`
	Key      string `json:"key"` // fingerprint of the device's ML-DSA-65 key
	Height   uint64 `json:"height"`
	Counter  uint64 `json:"counter"` // last cumulative counter (Measure)
	Measure  string `json:"measure"` // energy: mJ
	Seq      uint64 `json:"seq"`
	Readings uint64 `json:"readings"`
}

// BlobWhere lists where a blob is pinned, its holders, their last proof
// heights and misses.
func (c *Client) BlobWhere(ctx context.Context, id string) (*BlobWhere, error) {
	var out BlobWhere
	return &out, c.GetJSON(ctx, "/v1/blobs/"+url.PathEscape(id)+"/where", &out)
}

// StoragePins lists pinned blobs with their holders, newest request
// first (limit 0: the node's default, 500; at most 1000).
func (c *Client) StoragePins(ctx context.Context, limit int) (*StoragePins, error) {
	var out StoragePins
	path := "/v1/storage/pins"
	if limit > 0 {
		path += fmt.Sprintf("?limit=%d", limit)
	}
	return &out, c.GetJSON(ctx, path, &out)
}

// Meters lists registered meters (owner "" : all).
func (c *Client) Meters(ctx context.Context, owner string) ([]Meter, error) {
	var out []Meter
	path := "/v1/meters"
	if owner != "" {
		path += "?owner=" + url.QueryEscape(owner)
	}
	return out, c.GetJSON(ctx, path, &out)
}

// Meter returns one meter.
func (c *Client) Meter(ctx context.Context, id uint64) (*Meter, error) {
	var out Meter
	return &out, c.GetJSON(ctx, fmt.Sprintf("/v1/meters/%d", id), &out)
}

// RomeRequest returns one request.
func (c *Client) RomeRequest(ctx context.Context, id uint64) (*RomeRequest, error) {
	var out RomeRequest
	return &out, c.GetJSON(ctx, fmt.Sprintf("/v1/rome/requests/%d", id), &out)
}
