// Package marketgen generates reproducible ROME markets: a seeded snapshot
// of offers and requests in policy ABI v3 (replicated requests and the
// replicas they hold included), for benchmarks, quality tests and
// `sos rome gen-market`.
//
// The same Config (including Seed) always yields the same bytes: all
// arithmetic is integer, and the only randomness is a PCG stream seeded by
// Config.Seed.
package marketgen

import (
	"fmt"
	"math/rand/v2"

	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// Config describes a market. Zero fields take the defaults noted.
type Config struct {
	Requests, Offers int
	// Kinds is the number of resource kinds, ids 1..Kinds; 0 means 4.
	Kinds int
	Seed  uint64
	Epoch uint64
	// BundleShare is the fraction of requests that are bundles (all kinds
	// from one offer, in full); 0 means every request is divisible.
	BundleShare float64
	// Regions is the number of regions (ids 1..Regions); 0 means 8.
	Regions int
	// AnyRegionShare is the fraction of requests without a region
	// constraint; NearShare the fraction with a distance limit (150-600 km
	// around a point near a region centre). Negative means 0; 0 means the
	// defaults 0.15 and 0.15.
	AnyRegionShare, NearShare float64
	// Load is total demand over total capacity per kind; 0 means 1.25.
	Load float64
	// BundleMinKinds is the least number of kinds a bundle demands (at most
	// Kinds); 0 means 2. A bundle demands each other kind with
	// probability 0.6.
	BundleMinKinds int
	// HeavyTail makes request sizes heavy-tailed: each amount is doubled
	// once more with probability 1/2 each time (at most 8 times), so a few
	// requests are up to 256 times the typical one.
	HeavyTail bool
	// TiedPrices makes prices tie: every request bids the maximum of the
	// bid range (2 × the kind's base price) on each kind it demands, and
	// offers ask one of three levels (0.5, 1 or 1.5 × the base price).
	TiedPrices bool
	// ReplicaShare is the fraction of requests that are replicated (ABI
	// v3, docs/storage.md): each wants 2..MaxReplicas whole replicas on
	// distinct providers, demands storage (the last kind) and each other
	// kind with probability 0.3, and is never a bundle (BundleShare
	// applies to the other requests). 0 means none, and then the market
	// is the one earlier versions generated, byte for byte apart from the
	// format.
	ReplicaShare float64
	// MaxReplicas is the most replicas a replicated request wants (at
	// least 2); 0 means 3.
	MaxReplicas int
	// SpreadShare is the fraction of replicated requests whose replicas
	// must be in distinct regions (FlagSpread; such a request has no
	// region or distance limit). Negative means 0; 0 means 0.5.
	SpreadShare float64
	// HeldShare is the fraction of replicated requests that already hold
	// one replica (Snapshot.Held, on a random provider and region) and so
	// want one fewer. Negative means 0; 0 means 0.1.
	HeldShare float64
	// RunsJobsShare is the fraction of offers that run jobs (hold a bond:
	// only those take replicas) when ReplicaShare > 0; 0 means 0.9.
	// Without replicated requests no offer is marked.
	RunsJobsShare float64
	// OffersPerProvider groups the offers by provider: offers i·n ..
	// i·n+n−1 belong to provider i+1, each in its own random region, so
	// a provider is present in several regions; 0 means 1.
	OffersPerProvider int
}

func (c Config) withDefaults() Config {
	if c.Kinds == 0 {
		c.Kinds = policy.MaxKinds
	}
	if c.Regions == 0 {
		c.Regions = 8
	}
	if c.AnyRegionShare == 0 {
		c.AnyRegionShare = 0.15
	}
	if c.NearShare == 0 {
		c.NearShare = 0.15
	}
	c.AnyRegionShare = max(c.AnyRegionShare, 0)
	c.NearShare = max(c.NearShare, 0)
	if c.Load == 0 {
		c.Load = 1.25
	}
	if c.BundleMinKinds == 0 {
		c.BundleMinKinds = min(2, c.Kinds)
	}
	if c.MaxReplicas == 0 {
		c.MaxReplicas = 3
	}
	if c.SpreadShare == 0 {
		c.SpreadShare = 0.5
	}
	if c.HeldShare == 0 {
		c.HeldShare = 0.1
	}
	c.SpreadShare = max(c.SpreadShare, 0)
	c.HeldShare = max(c.HeldShare, 0)
	if c.RunsJobsShare == 0 {
		c.RunsJobsShare = 0.9
	}
	if c.OffersPerProvider == 0 {
		c.OffersPerProvider = 1
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Requests < 0 || c.Requests > 1<<24:
		return fmt.Errorf("marketgen: Requests %d: want 0..%d", c.Requests, 1<<24)
	case c.Offers < 0 || c.Offers > 1<<24:
		return fmt.Errorf("marketgen: Offers %d: want 0..%d", c.Offers, 1<<24)
	case c.Kinds < 1 || c.Kinds > policy.MaxKinds:
		return fmt.Errorf("marketgen: Kinds %d: want 1..%d", c.Kinds, policy.MaxKinds)
	case c.BundleShare < 0 || c.BundleShare > 1:
		return fmt.Errorf("marketgen: BundleShare %g: want 0..1", c.BundleShare)
	case c.Regions < 1 || c.Regions > 1<<16:
		return fmt.Errorf("marketgen: Regions %d: want 1..%d", c.Regions, 1<<16)
	case c.AnyRegionShare+c.NearShare > 1:
		return fmt.Errorf("marketgen: AnyRegionShare %g + NearShare %g above 1", c.AnyRegionShare, c.NearShare)
	case c.Load < 0.01 || c.Load > 100:
		return fmt.Errorf("marketgen: Load %g: want 0.01..100", c.Load)
	case c.BundleMinKinds < 0 || c.BundleMinKinds > c.Kinds:
		return fmt.Errorf("marketgen: BundleMinKinds %d: want 0..Kinds (%d)", c.BundleMinKinds, c.Kinds)
	case c.ReplicaShare < 0 || c.ReplicaShare > 1:
		return fmt.Errorf("marketgen: ReplicaShare %g: want 0..1", c.ReplicaShare)
	case c.MaxReplicas < 2 || c.MaxReplicas > 64:
		return fmt.Errorf("marketgen: MaxReplicas %d: want 2..64", c.MaxReplicas)
	case c.SpreadShare > 1 || c.HeldShare > 1:
		return fmt.Errorf("marketgen: SpreadShare %g, HeldShare %g: want at most 1", c.SpreadShare, c.HeldShare)
	case c.RunsJobsShare < 0 || c.RunsJobsShare > 1:
		return fmt.Errorf("marketgen: RunsJobsShare %g: want 0..1", c.RunsJobsShare)
	case c.OffersPerProvider < 1 || c.OffersPerProvider > 1<<16:
		return fmt.Errorf("marketgen: OffersPerProvider %d: want 0..%d", c.OffersPerProvider, 1<<16)
	}
	return nil
}

// basePrice is the reference price per kind index (compute, bandwidth,
// energy, storage), in base units per unit per epoch.
var basePrice = [policy.MaxKinds]uint64{100, 40, 25, 10}

// ppm converts a share to parts per million once, so that every later
// decision is integer.
func ppm(f float64) uint64 { return uint64(f*1e6 + 0.5) }

type gen struct{ r *rand.Rand }

func (g gen) n(n int) int                { return g.r.IntN(n) }
func (g gen) chance(ppm uint64) bool     { return g.r.Uint64N(1_000_000) < ppm }
func (g gen) between(lo, hi int64) int64 { return lo + g.r.Int64N(hi-lo+1) }

// scale returns v × U[lo, hi] per mille.
func (g gen) scale(v uint64, lo, hi int64) uint64 { return v * uint64(g.between(lo, hi)) / 1000 }

// Generate returns the market described by cfg: the snapshot and its
// ABI v3 encoding.
func Generate(cfg Config) (*policy.Snapshot, []byte, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, nil, err
	}
	g := gen{rand.New(rand.NewPCG(cfg.Seed, 0x524f4d45 /* "ROME" */))}
	s := &policy.Snapshot{
		Epoch:    cfg.Epoch,
		Kinds:    make([]policy.Kind, cfg.Kinds),
		Offers:   make([]policy.Offer, cfg.Offers),
		Requests: make([]policy.Request, cfg.Requests),
	}
	nk := cfg.Kinds
	for k := range nk {
		s.Kinds[k] = policy.Kind(k + 1)
	}
	// Region centres, micro-degrees.
	type point struct{ lat, lon int32 }
	centres := make([]point, cfg.Regions)
	for i := range centres {
		centres[i] = point{int32(g.between(-45e6, 60e6)), int32(g.between(-120e6, 150e6))}
	}
	near := func(c point, spread int64) point {
		return point{c.lat + int32(g.between(-spread, spread)), c.lon + int32(g.between(-spread, spread))}
	}

	bundlePPM, anyPPM, nearPPM := ppm(cfg.BundleShare), ppm(cfg.AnyRegionShare), ppm(cfg.NearShare)
	replicaPPM, spreadPPM, heldPPM := ppm(cfg.ReplicaShare), ppm(cfg.SpreadShare), ppm(cfg.HeldShare)
	providers := (cfg.Offers + cfg.OffersPerProvider - 1) / cfg.OffersPerProvider
	var demand [policy.MaxKinds]uint64
	for i := range s.Requests {
		r := &s.Requests[i]
		r.ID = uint64(i + 1)
		reg := g.n(cfg.Regions)
		p := near(centres[reg], 2e6)
		r.Lat, r.Lon = p.lat, p.lon
		switch u := g.r.Uint64N(1_000_000); {
		case u < anyPPM:
		case u < anyPPM+nearPPM:
			r.WithinKm = uint32(g.between(150, 600))
		default:
			r.Region = uint32(reg + 1)
		}
		if g.chance(300_000) {
			r.Attrs = 1 << g.n(4)
		}
		if g.chance(300_000) {
			r.MinReliability = 9500
		}
		// The replica draws happen only with replicated requests, so that
		// markets without them keep their bytes.
		if replicaPPM > 0 && g.chance(replicaPPM) {
			replica(g, cfg, r, i, providers, spreadPPM, heldPPM, s)
			for k := range nk {
				demand[k] += r.Demand[k] * uint64(r.Replicas)
			}
			continue
		}
		bundle := g.chance(bundlePPM)
		if bundle {
			r.Flags = policy.FlagBundle
		}
		maxAmount := int64(40)
		if bundle {
			maxAmount = 20
		}
		kinds := 0
		for kinds == 0 || (bundle && kinds < cfg.BundleMinKinds) {
			for k := range nk {
				if r.Demand[k] == 0 && g.chance(600_000) {
					r.Demand[k] = uint64(g.between(1, maxAmount))
					kinds++
				}
			}
		}
		if cfg.HeavyTail {
			for k := range nk {
				for n := 0; r.Demand[k] > 0 && n < 8 && g.chance(500_000); n++ {
					r.Demand[k] *= 2
				}
			}
		}
		for k := range nk {
			r.MaxPrice[k] = g.scale(basePrice[k], 800, 2000)
			if cfg.TiedPrices {
				r.MaxPrice[k] = 2 * basePrice[k]
			}
			if r.Demand[k] == 0 {
				r.MaxPrice[k] = 0
			}
			demand[k] += r.Demand[k]
		}
	}
	// Mean capacity per offer and kind so that demand ≈ Load × supply; an
	// offer offers each kind with probability 0.85, hence the correction.
	var meanCap [policy.MaxKinds]uint64
	loadPPM := ppm(cfg.Load)
	for k := range nk {
		if cfg.Offers > 0 {
			meanCap[k] = max(1, demand[k]*1_000_000/loadPPM*100/85/uint64(cfg.Offers))
		}
	}
	for i := range s.Offers {
		o := &s.Offers[i]
		o.ID = uint64(i + 1)
		o.Provider = uint32(i/cfg.OffersPerProvider + 1)
		reg := g.n(cfg.Regions)
		o.Region = uint32(reg + 1)
		p := near(centres[reg], 2e6)
		o.Lat, o.Lon = p.lat, p.lon
		o.Attrs = g.r.Uint64N(16)
		o.Reliability = uint16(g.between(9000, 9999))
		for k := range nk {
			o.Price[k] = max(1, g.scale(basePrice[k], 500, 1500))
			if cfg.TiedPrices {
				o.Price[k] = basePrice[k] * uint64(1+g.n(3)) / 2
			}
			if g.chance(850_000) {
				o.Capacity[k] = max(1, g.scale(meanCap[k], 300, 1700))
			}
		}
		if replicaPPM > 0 && g.chance(ppm(cfg.RunsJobsShare)) {
			o.Flags = policy.FlagRunsJobs
		}
	}
	return s, s.Encode(), nil
}

// replica makes r (position i) a replicated request: 2..MaxReplicas
// replicas of a storage-led demand, spread across regions with
// probability spreadPPM (no region or distance limit then), holding one
// replica already with probability heldPPM. The bid range is the one of
// ordinary requests.
func replica(g gen, cfg Config, r *policy.Request, i, providers int, spreadPPM, heldPPM uint64, s *policy.Snapshot) {
	nk := cfg.Kinds
	replicas := g.between(2, int64(cfg.MaxReplicas))
	if g.chance(spreadPPM) {
		r.Flags = policy.FlagSpread
		r.Region, r.WithinKm = 0, 0
	}
	for k := range nk {
		if k == nk-1 || g.chance(300_000) {
			r.Demand[k] = uint64(g.between(1, 20))
		}
	}
	if providers > 0 && g.chance(heldPPM) {
		s.Held = append(s.Held, policy.Held{Request: uint32(i), Provider: uint32(1 + g.n(providers)), Region: uint32(1 + g.n(cfg.Regions))})
		replicas--
	}
	r.Replicas = uint16(replicas)
	for k := range nk {
		if r.Demand[k] > 0 {
			r.MaxPrice[k] = g.scale(basePrice[k], 800, 2000)
		}
	}
}

// Family is a named shape of market: the benchmark and quality-test
// families, each a Config at a given size and seed.
type Family struct {
	Name   string
	About  string
	Config Config
}

// Families returns the benchmark families (4 kinds each) at a size and
// seed. Each stresses one thing an allocation policy can get wrong, so that
// a regression on any of them shows in the quality tests and benchmarks:
//
//	divisible    every request divisible (an LP: exact policies reach the optimum)
//	bundles30    30% bundles of 2–4 kinds (the shipped generator's default shape)
//	bundleheavy  80% bundles of 3–4 kinds: bundles dominate, as real jobs do
//	scarce       demand 4× capacity, 30% bundles
//	heavytail    request sizes heavy-tailed (up to 256× the typical), 30% bundles
//	regions      many regions with about 4 offers each, 30% bundles
//	tied         every bid at the top of the range, asks on 3 levels: ties everywhere, 30% bundles
//	replicas     30% replicated requests (2–3 replicas, half spread across regions, 10% holding
//	             one already) on offers of providers present in 4 regions each, 90% of offers
//	             running jobs; 30% of the other requests bundles
func Families(requests, offers int, seed uint64) []Family {
	base := Config{Requests: requests, Offers: offers, Kinds: policy.MaxKinds, Seed: seed}
	with := func(f func(c *Config)) Config {
		c := base
		f(&c)
		return c
	}
	return []Family{
		{"divisible", "every request divisible", base},
		{"bundles30", "30% bundles of 2-4 kinds", with(func(c *Config) { c.BundleShare = 0.3 })},
		{"bundleheavy", "80% bundles of 3-4 kinds", with(func(c *Config) { c.BundleShare, c.BundleMinKinds = 0.8, 3 })},
		{"scarce", "demand 4x capacity, 30% bundles", with(func(c *Config) { c.BundleShare, c.Load = 0.3, 4 })},
		{"heavytail", "heavy-tailed request sizes, 30% bundles", with(func(c *Config) { c.BundleShare, c.HeavyTail = 0.3, true })},
		{"regions", "about 4 offers per region, 30% bundles", with(func(c *Config) { c.BundleShare, c.Regions = 0.3, max(1, offers/4) })},
		{"tied", "bids tied at the maximum, asks on 3 levels, 30% bundles", with(func(c *Config) { c.BundleShare, c.TiedPrices = 0.3, true })},
		{"replicas", "30% replicated (2-3 replicas, half spread), providers in 4 regions, 30% of the rest bundles", with(func(c *Config) {
			c.BundleShare, c.ReplicaShare, c.OffersPerProvider = 0.3, 0.3, 4
		})},
	}
}

// FamilyConfig returns the Config of the family named name, or false.
func FamilyConfig(name string, requests, offers int, seed uint64) (Config, bool) {
	for _, f := range Families(requests, offers, seed) {
		if f.Name == name {
			return f.Config, true
		}
	}
	return Config{}, false
}
