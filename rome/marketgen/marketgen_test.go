package marketgen_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/sos-kernel/sos/rome/marketgen"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

func TestGenerateDeterministic(t *testing.T) {
	cfg := marketgen.Config{Requests: 300, Offers: 40, Seed: 42, BundleShare: 0.3}
	_, a, err := marketgen.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, b, _ := marketgen.Generate(cfg)
	cfg.Seed++
	_, c, _ := marketgen.Generate(cfg)
	if !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Fatal("Generate is not a function of the seed")
	}
	s, err := policy.Decode(a)
	if err != nil {
		t.Fatal(err)
	}
	bundles := 0
	for _, r := range s.Requests {
		if r.Bundle() {
			bundles++
		}
	}
	if bundles < 60 || bundles > 120 {
		t.Errorf("%d bundles of 300 with share 0.3", bundles)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []marketgen.Config{
		{Requests: -1}, {Kinds: 5}, {BundleShare: 2}, {AnyRegionShare: 0.7, NearShare: 0.7}, {Load: 1000},
	} {
		if _, _, err := marketgen.Generate(cfg); err == nil {
			t.Errorf("Generate(%+v) accepted a bad config", cfg)
		}
	}
}

func ExampleGenerate() {
	s, snap, err := marketgen.Generate(marketgen.Config{Requests: 2000, Offers: 200, Kinds: 4, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(snap), len(s.Requests), len(s.Offers), s.Kinds)
	// Output:
	// 228233 2000 200 [compute bandwidth energy storage]
}
