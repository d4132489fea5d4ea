// Command offer-registry is a resource-offer registry for the ROME market:
// providers publish offers of compute, bandwidth, energy or storage, update
// and withdraw them; buyers page through offers by kind and region.
//
//	instantiate {}
//	execute     {"register":{"kind":"compute","capacity":"64","price_per_unit":"3","denom":"uTFLP",
//	                         "region":"eu-west","lat":48.85,"lon":2.35}}   returns {"id":1}
//	            {"update":{"id":1,"capacity":"32","price_per_unit":"4"}}  provider only; omitted fields keep their value
//	            {"withdraw":{"id":1}}                                     provider only
//	query       {"offer":{"id":1}}
//	            {"offers":{"kind":"compute","region":"eu-west","start_after":1,"limit":10}}
//	                                                                      kind and region optional; ascending id
//	migrate     {}
//
// Offers are stored by id with two secondary indexes, (kind, id) and
// (kind, region, id), so a filtered page costs only the entries it returns.
package main

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sos-kernel/sos/sdk-contracts/sdk"
)

// Errors.
var (
	ErrUnauthorized = errors.New("offer-registry: unauthorized")
	ErrInvalid      = errors.New("offer-registry: invalid")
)

// Kinds of resource.
var kinds = map[string]bool{"compute": true, "bandwidth": true, "energy": true, "storage": true}

// Offer is a provider's standing offer.
type Offer struct {
	ID           uint64      `json:"id"`
	Provider     sdk.Address `json:"provider"`
	Kind         string      `json:"kind"`
	Capacity     uint64      `json:"capacity,string"`
	PricePerUnit uint64      `json:"price_per_unit,string"`
	Denom        string      `json:"denom"`
	Region       string      `json:"region"`
	Lat          float64     `json:"lat"`
	Lon          float64     `json:"lon"`
	UpdatedAt    uint64      `json:"updated_at"` // block height
}

// Messages.
type (
	InstantiateMsg struct{}
	MigrateMsg     struct{}
	RegisterMsg    struct {
		Kind         string  `json:"kind"`
		Capacity     uint64  `json:"capacity,string"`
		PricePerUnit uint64  `json:"price_per_unit,string"`
		Denom        string  `json:"denom"`
		Region       string  `json:"region"`
		Lat          float64 `json:"lat"`
		Lon          float64 `json:"lon"`
	}
	UpdateMsg struct {
		ID           uint64   `json:"id"`
		Capacity     *uint64  `json:"capacity,string,omitempty"`
		PricePerUnit *uint64  `json:"price_per_unit,string,omitempty"`
		Denom        *string  `json:"denom,omitempty"`
		Region       *string  `json:"region,omitempty"`
		Lat          *float64 `json:"lat,omitempty"`
		Lon          *float64 `json:"lon,omitempty"`
	}
	IDMsg struct {
		ID uint64 `json:"id"`
	}
	IDResponse  = IDMsg
	OffersQuery struct {
		Kind       string `json:"kind,omitempty"`
		Region     string `json:"region,omitempty"`
		StartAfter uint64 `json:"start_after,omitempty"`
		Limit      int    `json:"limit,omitempty"`
	}
	OffersResponse struct {
		Offers []Offer `json:"offers"`
	}
)

const (
	defaultLimit = 10
	maxLimit     = 50
)

// State.
var (
	nextID   = sdk.NewItem[uint64]("next_id")
	offers   = sdk.NewMap[uint64, Offer]("offer")
	byKind   = sdk.NewMap[[]byte, bool]("by_kind")        // kind 0 id
	byRegion = sdk.NewMap[[]byte, bool]("by_kind_region") // kind 0 region 0 id
)

var contract = sdk.Contract{
	Name:        "sos-example/offer-registry",
	Version:     "1.0.0",
	Instantiate: sdk.Handler(func(*sdk.Ctx, InstantiateMsg) (any, error) { return nil, nil }),
	Execute: sdk.Handlers{
		"register": sdk.Handler(register),
		"update":   sdk.Handler(update),
		"withdraw": sdk.Handler(withdraw),
	},
	Query: sdk.Handlers{
		"offer":  sdk.Handler(queryOffer),
		"offers": sdk.Handler(queryOffers),
	},
	Migrate: sdk.Handler(func(*sdk.Ctx, MigrateMsg) (any, error) { return nil, nil }),
}

func main() { sdk.Main(contract) } // natively: `go run . schema`

func kindPrefix(kind string) []byte { return append([]byte(kind), 0) }

func regionPrefix(kind, region string) []byte {
	return append(append(kindPrefix(kind), region...), 0)
}

func withID(prefix []byte, id uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), id)
}

func validate(o Offer) error {
	switch {
	case !kinds[o.Kind]:
		return fmt.Errorf("%w: kind %q (want compute, bandwidth, energy or storage)", ErrInvalid, o.Kind)
	case o.Capacity == 0:
		return fmt.Errorf("%w: zero capacity", ErrInvalid)
	case o.Denom == "" || len(o.Denom) > 64:
		return fmt.Errorf("%w: denom must have 1 to 64 bytes", ErrInvalid)
	case o.Region == "" || len(o.Region) > 64:
		return fmt.Errorf("%w: region must have 1 to 64 bytes", ErrInvalid)
	case o.Lat < -90 || o.Lat > 90 || o.Lon < -180 || o.Lon > 180:
		return fmt.Errorf("%w: position %v,%v", ErrInvalid, o.Lat, o.Lon)
	}
	for i := 0; i < len(o.Region); i++ {
		if o.Region[i] == 0 {
			return fmt.Errorf("%w: region contains a zero byte", ErrInvalid)
		}
	}
	return nil
}

func index(ctx *sdk.Ctx, o Offer) error {
	if err := byKind.Set(ctx, withID(kindPrefix(o.Kind), o.ID), true); err != nil {
		return err
	}
	return byRegion.Set(ctx, withID(regionPrefix(o.Kind, o.Region), o.ID), true)
}

func unindex(ctx *sdk.Ctx, o Offer) {
	byKind.Delete(ctx, withID(kindPrefix(o.Kind), o.ID))
	byRegion.Delete(ctx, withID(regionPrefix(o.Kind, o.Region), o.ID))
}

func register(ctx *sdk.Ctx, msg RegisterMsg) (any, error) {
	o := Offer{
		Provider: ctx.Caller(), Kind: msg.Kind, Capacity: msg.Capacity, PricePerUnit: msg.PricePerUnit,
		Denom: msg.Denom, Region: msg.Region, Lat: msg.Lat, Lon: msg.Lon, UpdatedAt: ctx.BlockHeight(),
	}
	if err := validate(o); err != nil {
		return nil, err
	}
	id, err := nextID.Update(ctx, func(n uint64, _ bool) (uint64, error) { return n + 1, nil })
	if err != nil {
		return nil, err
	}
	o.ID = id
	if err := offers.Set(ctx, id, o); err != nil {
		return nil, err
	}
	if err := index(ctx, o); err != nil {
		return nil, err
	}
	ctx.Emit("offer_registered", "id", fmt.Sprint(id), "kind", o.Kind, "region", o.Region)
	return IDResponse{ID: id}, nil
}

func own(ctx *sdk.Ctx, id uint64) (Offer, error) {
	o, err := offers.Get(ctx, id)
	if err != nil {
		return o, err
	}
	if o.Provider != ctx.Caller() {
		return o, fmt.Errorf("%w: offer %d belongs to %v", ErrUnauthorized, id, o.Provider)
	}
	return o, nil
}

func update(ctx *sdk.Ctx, msg UpdateMsg) (any, error) {
	old, err := own(ctx, msg.ID)
	if err != nil {
		return nil, err
	}
	o := old
	if msg.Capacity != nil {
		o.Capacity = *msg.Capacity
	}
	if msg.PricePerUnit != nil {
		o.PricePerUnit = *msg.PricePerUnit
	}
	if msg.Denom != nil {
		o.Denom = *msg.Denom
	}
	if msg.Region != nil {
		o.Region = *msg.Region
	}
	if msg.Lat != nil {
		o.Lat = *msg.Lat
	}
	if msg.Lon != nil {
		o.Lon = *msg.Lon
	}
	o.UpdatedAt = ctx.BlockHeight()
	if err := validate(o); err != nil {
		return nil, err
	}
	unindex(ctx, old)
	if err := index(ctx, o); err != nil {
		return nil, err
	}
	ctx.Emit("offer_updated", "id", fmt.Sprint(o.ID))
	return nil, offers.Set(ctx, o.ID, o)
}

func withdraw(ctx *sdk.Ctx, msg IDMsg) (any, error) {
	o, err := own(ctx, msg.ID)
	if err != nil {
		return nil, err
	}
	offers.Delete(ctx, o.ID)
	unindex(ctx, o)
	ctx.Emit("offer_withdrawn", "id", fmt.Sprint(o.ID))
	return nil, nil
}

func queryOffer(ctx *sdk.Ctx, q IDMsg) (any, error) { return offers.Get(ctx, q.ID) }

func queryOffers(ctx *sdk.Ctx, q OffersQuery) (any, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	limit = min(limit, maxLimit)
	out := OffersResponse{Offers: []Offer{}}
	if q.Kind == "" {
		if q.Region != "" {
			return nil, fmt.Errorf("%w: filtering by region needs a kind", ErrInvalid)
		}
		b := sdk.Bounds[uint64]{Limit: limit}
		if q.StartAfter > 0 {
			b.Start = sdk.Exclusive(q.StartAfter)
		}
		for _, o := range offers.Range(ctx, b) {
			out.Offers = append(out.Offers, o)
		}
		return out, nil
	}
	idx, prefix := byKind, kindPrefix(q.Kind)
	if q.Region != "" {
		idx, prefix = byRegion, regionPrefix(q.Kind, q.Region)
	}
	b := sdk.Prefix(prefix)
	b.Limit = limit
	if q.StartAfter > 0 {
		b.Start = sdk.Exclusive(withID(prefix, q.StartAfter))
	}
	var ids []uint64
	for k := range idx.Range(ctx, b) {
		ids = append(ids, binary.BigEndian.Uint64(k[len(prefix):]))
	}
	for _, id := range ids {
		o, err := offers.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		out.Offers = append(out.Offers, o)
	}
	return out, nil
}
