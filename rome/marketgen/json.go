package marketgen

import (
	"encoding/json"

	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// The JSON view of a snapshot: per-kind values keyed by kind name.
type (
	jsonSnapshot struct {
		Epoch    uint64        `json:"epoch"`
		Kinds    []string      `json:"kinds"`
		Offers   []jsonOffer   `json:"offers"`
		Requests []jsonRequest `json:"requests"`
		Held     []jsonHeld    `json:"held,omitempty"`
	}
	jsonHeld struct {
		Request  uint32 `json:"request_index"`
		Provider uint32 `json:"provider"`
		Region   uint32 `json:"region"`
	}
	jsonOffer struct {
		ID          uint64            `json:"id"`
		Region      uint32            `json:"region"`
		Lat         int32             `json:"lat"`
		Lon         int32             `json:"lon"`
		Attrs       uint64            `json:"attrs"`
		Reliability uint16            `json:"reliability"`
		Provider    uint32            `json:"provider"`
		RunsJobs    bool              `json:"runs_jobs,omitempty"`
		Capacity    map[string]uint64 `json:"capacity"`
		Price       map[string]uint64 `json:"price"`
	}
	jsonRequest struct {
		ID             uint64            `json:"id"`
		Region         uint32            `json:"region"`
		Lat            int32             `json:"lat"`
		Lon            int32             `json:"lon"`
		WithinKm       uint32            `json:"within_km"`
		Attrs          uint64            `json:"attrs"`
		MinReliability uint16            `json:"min_reliability"`
		Bundle         bool              `json:"bundle"`
		Replicas       uint16            `json:"replicas,omitempty"`
		Spread         bool              `json:"spread,omitempty"`
		Demand         map[string]uint64 `json:"demand"`
		MaxPrice       map[string]uint64 `json:"max_price"`
	}
)

// JSON returns a readable JSON form of s (per-kind values keyed by kind
// name, coordinates in micro-degrees). It is for people and scripts; the
// kernel and policies use the binary encoding.
func JSON(s *policy.Snapshot) ([]byte, error) {
	perKind := func(v *[policy.MaxKinds]uint64) map[string]uint64 {
		m := make(map[string]uint64, len(s.Kinds))
		for k, kind := range s.Kinds {
			m[kind.String()] = v[k]
		}
		return m
	}
	js := jsonSnapshot{Epoch: s.Epoch, Offers: make([]jsonOffer, len(s.Offers)), Requests: make([]jsonRequest, len(s.Requests))}
	for _, k := range s.Kinds {
		js.Kinds = append(js.Kinds, k.String())
	}
	for i := range s.Offers {
		o := &s.Offers[i]
		js.Offers[i] = jsonOffer{o.ID, o.Region, o.Lat, o.Lon, o.Attrs, o.Reliability, o.Provider, o.RunsJobs(), perKind(&o.Capacity), perKind(&o.Price)}
	}
	for i := range s.Requests {
		r := &s.Requests[i]
		js.Requests[i] = jsonRequest{r.ID, r.Region, r.Lat, r.Lon, r.WithinKm, r.Attrs, r.MinReliability, r.Bundle(), r.Replicas, r.Spread(), perKind(&r.Demand), perKind(&r.MaxPrice)}
	}
	for _, h := range s.Held {
		js.Held = append(js.Held, jsonHeld(h))
	}
	return json.MarshalIndent(js, "", "  ")
}
