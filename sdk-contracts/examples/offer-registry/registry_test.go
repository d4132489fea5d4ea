package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/sos-kernel/sos/sdk-contracts/sdk"
	"github.com/sos-kernel/sos/sdk-contracts/sdk/sdktest"
)

type env struct {
	app       *sdktest.App
	reg       sdk.Address
	ann, bert sdk.Address
}

func setup(t *testing.T) env {
	t.Helper()
	app := sdktest.New(sdktest.Config{})
	e := env{app: app, ann: app.Account("ann"), bert: app.Account("bert")}
	var err error
	if e.reg, err = app.Instantiate(contract, e.ann, `{}`, nil); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e env) register(t *testing.T, who sdk.Address, kind, region string) uint64 {
	t.Helper()
	res, err := e.app.Execute(e.reg, who, map[string]RegisterMsg{"register": {
		Kind: kind, Capacity: 10, PricePerUnit: 2, Denom: "uTFLP", Region: region, Lat: 48.85, Lon: 2.35,
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var r IDResponse
	if err := json.Unmarshal(res.Data, &r); err != nil {
		t.Fatal(err)
	}
	return r.ID
}

func (e env) ids(t *testing.T, q OffersQuery) []uint64 {
	t.Helper()
	var r OffersResponse
	if err := e.app.Query(e.reg, map[string]OffersQuery{"offers": q}, &r); err != nil {
		t.Fatal(err)
	}
	ids := []uint64{}
	for _, o := range r.Offers {
		if q.Kind != "" && o.Kind != q.Kind || q.Region != "" && o.Region != q.Region {
			t.Fatalf("offer %d (%s, %s) does not match %+v", o.ID, o.Kind, o.Region, q)
		}
		ids = append(ids, o.ID)
	}
	return ids
}

func TestQueryOffers(t *testing.T) {
	e := setup(t)
	for _, o := range []struct{ kind, region string }{
		{"compute", "eu-west"}, {"storage", "eu-west"}, {"compute", "us-east"}, {"compute", "eu-west"},
		{"energy", "eu-west"}, {"compute", "eu-west"}, {"bandwidth", "ap-south"}, {"compute", "eu"},
	} {
		e.register(t, e.ann, o.kind, o.region)
	}
	for _, tc := range []struct {
		name string
		q    OffersQuery
		want string
	}{
		{"all", OffersQuery{}, "[1 2 3 4 5 6 7 8]"},
		{"all, paged", OffersQuery{StartAfter: 3, Limit: 2}, "[4 5]"},
		{"kind", OffersQuery{Kind: "compute"}, "[1 3 4 6 8]"},
		{"kind, paged", OffersQuery{Kind: "compute", StartAfter: 3, Limit: 2}, "[4 6]"},
		{"kind and region", OffersQuery{Kind: "compute", Region: "eu-west"}, "[1 4 6]"},
		// "eu" is a prefix of "eu-west": the index separator keeps them apart.
		{"region that prefixes another", OffersQuery{Kind: "compute", Region: "eu"}, "[8]"},
		{"kind and region, paged", OffersQuery{Kind: "compute", Region: "eu-west", StartAfter: 1, Limit: 1}, "[4]"},
		{"no match", OffersQuery{Kind: "storage", Region: "us-east"}, "[]"},
		{"past the end", OffersQuery{Kind: "compute", StartAfter: 8}, "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fmt.Sprint(e.ids(t, tc.q)); got != tc.want {
				t.Fatalf("ids = %s, want %s", got, tc.want)
			}
		})
	}
	if err := e.app.Query(e.reg, `{"offers":{"region":"eu"}}`, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("region without kind: err = %v", err)
	}
}

func TestUpdateAndWithdraw(t *testing.T) {
	e := setup(t)
	id := e.register(t, e.ann, "compute", "eu-west")
	for _, tc := range []struct {
		name    string
		who     sdk.Address
		msg     string
		wantErr error
	}{
		{"stranger cannot update", e.bert, fmt.Sprintf(`{"update":{"id":%d,"capacity":"1"}}`, id), ErrUnauthorized},
		{"stranger cannot withdraw", e.bert, fmt.Sprintf(`{"withdraw":{"id":%d}}`, id), ErrUnauthorized},
		{"invalid update", e.ann, fmt.Sprintf(`{"update":{"id":%d,"capacity":"0"}}`, id), ErrInvalid},
		{"unknown offer", e.ann, `{"update":{"id":99}}`, sdk.ErrNotFound},
		{"move region", e.ann, fmt.Sprintf(`{"update":{"id":%d,"region":"us-east","price_per_unit":"7"}}`, id), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.app.Execute(e.reg, tc.who, tc.msg, nil)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
	var o Offer
	if err := e.app.Query(e.reg, fmt.Sprintf(`{"offer":{"id":%d}}`, id), &o); err != nil {
		t.Fatal(err)
	}
	if o.Region != "us-east" || o.PricePerUnit != 7 || o.Capacity != 10 || o.Provider != e.ann {
		t.Fatalf("offer after update = %+v", o)
	}
	if got := fmt.Sprint(e.ids(t, OffersQuery{Kind: "compute", Region: "eu-west"})); got != "[]" {
		t.Fatalf("old region index still lists %s", got)
	}
	if got := fmt.Sprint(e.ids(t, OffersQuery{Kind: "compute", Region: "us-east"})); got != "[1]" {
		t.Fatalf("new region index lists %s", got)
	}
	if _, err := e.app.Execute(e.reg, e.ann, fmt.Sprintf(`{"withdraw":{"id":%d}}`, id), nil); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(e.ids(t, OffersQuery{Kind: "compute"})); got != "[]" {
		t.Fatalf("withdrawn offer still listed: %s", got)
	}
}

func TestRegisterValidation(t *testing.T) {
	e := setup(t)
	for _, tc := range []struct {
		name string
		msg  string
	}{
		{"unknown kind", `{"register":{"kind":"gold","capacity":"1","price_per_unit":"1","denom":"u","region":"r"}}`},
		{"zero capacity", `{"register":{"kind":"energy","capacity":"0","price_per_unit":"1","denom":"u","region":"r"}}`},
		{"no region", `{"register":{"kind":"energy","capacity":"1","price_per_unit":"1","denom":"u"}}`},
		{"bad latitude", `{"register":{"kind":"energy","capacity":"1","price_per_unit":"1","denom":"u","region":"r","lat":91}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.app.Execute(e.reg, e.ann, tc.msg, nil); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
	if got := fmt.Sprint(e.ids(t, OffersQuery{})); got != "[]" {
		t.Fatalf("failed registrations left offers: %s", got)
	}
}
