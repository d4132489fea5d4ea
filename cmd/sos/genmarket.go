package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sos-kernel/sos/rome/marketgen"
)

// genMarketResult is the text/json summary when the market goes to a file.
type genMarketResult struct {
	Requests int    `json:"requests"`
	Offers   int    `json:"offers"`
	Kinds    int    `json:"kinds"`
	Seed     uint64 `json:"seed"`
	Bytes    int    `json:"bytes"`
	SHA256   string `json:"sha256"`
	File     string `json:"file,omitempty"`
}

// newGenMarketCmd is `sos rome gen-market`: a seeded market in policy ABI
// v3. It needs no node. Its -o also accepts "binary" (the raw snapshot).
func newGenMarketCmd(g *globals) *cobra.Command {
	var cfg marketgen.Config
	var out, family string
	cmd := &cobra.Command{
		Use:   "gen-market",
		Short: "Generate a reproducible ROME market (policy ABI v3 snapshot)",
		Long: `Generate a seeded market of offers and requests: the same flags always give the
same bytes. -o binary writes the ABI v3 snapshot (the input of a policy's
allocate call), -o json a readable JSON form; both go to --out FILE or stdout.
With -o text (the default) the snapshot is written to --out FILE when given and
a summary is printed. --family starts from one of the named market shapes the
quality tests and benchmarks use (` + familyNames() + `);
flags given beside it override the family's values. --replicas makes a share of
the requests replicated storage requests (k distinct providers).`,
		Example: `  sos rome gen-market --requests 2000 --offers 200 --seed 1 -o binary --out market.bin
  sos rome gen-market --family replicas --requests 10000 --offers 1000 -o binary --out replicas.bin
  sos rome gen-market --replicas 0.3 --max-replicas 5 --spread 0.5 --offers-per-provider 4`,
		Args: cobra.NoArgs,
		// Overrides the root check: -o also accepts binary here.
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			switch g.output {
			case "text", "json", "binary":
				return nil
			}
			return fmt.Errorf("-o %q: want text, json or binary", g.output)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if family != "" {
				if err := applyFamily(cmd.Flags(), &cfg, family); err != nil {
					return err
				}
			}
			s, snap, err := marketgen.Generate(cfg)
			if err != nil {
				return err
			}
			write := func(b []byte) error {
				if out == "" {
					_, err := os.Stdout.Write(b)
					return err
				}
				return os.WriteFile(out, b, 0o644)
			}
			switch g.output {
			case "binary":
				return write(snap)
			case "json":
				b, err := marketgen.JSON(s)
				if err != nil {
					return err
				}
				return write(append(b, '\n'))
			}
			sum := sha256.Sum256(snap)
			res := genMarketResult{Requests: len(s.Requests), Offers: len(s.Offers), Kinds: len(s.Kinds), Seed: cfg.Seed,
				Bytes: len(snap), SHA256: hex.EncodeToString(sum[:]), File: out}
			if out != "" {
				if err := write(snap); err != nil {
					return err
				}
			}
			fmt.Printf("market: %d requests, %d offers, %d kinds, seed %d: %d bytes, sha256 %s\n",
				res.Requests, res.Offers, res.Kinds, res.Seed, res.Bytes, res.SHA256)
			if out != "" {
				fmt.Println("written to", out)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Requests, "requests", 2000, "number of requests")
	f.IntVar(&cfg.Offers, "offers", 200, "number of offers")
	f.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	f.IntVar(&cfg.Kinds, "kinds", 4, "resource kinds (ids 1..N: compute, bandwidth, energy, storage)")
	f.Float64Var(&cfg.BundleShare, "bundles", 0, "share of requests that are bundles (0..1)")
	f.IntVar(&cfg.Regions, "regions", 8, "number of regions")
	f.Float64Var(&cfg.Load, "load", 1.25, "total demand over total capacity per kind")
	f.Uint64Var(&cfg.Epoch, "epoch", 0, "epoch number in the snapshot")
	f.Float64Var(&cfg.ReplicaShare, "replicas", 0, "share of requests that are replicated storage requests (0..1)")
	f.IntVar(&cfg.MaxReplicas, "max-replicas", 0, "most replicas a replicated request wants (2..64; 0 means 3)")
	f.Float64Var(&cfg.SpreadShare, "spread", 0, "share of replicated requests spread across regions (0 means 0.5, negative none)")
	f.Float64Var(&cfg.HeldShare, "held", 0, "share of replicated requests already holding one replica (0 means 0.1, negative none)")
	f.IntVar(&cfg.OffersPerProvider, "offers-per-provider", 0, "offers per provider, each in its own region (0 means 1)")
	f.StringVar(&family, "family", "", "start from a named market family: "+familyNames())
	f.StringVar(&out, "out", "", "write the market to FILE instead of stdout")
	return cmd
}

// familyNames lists the families --family accepts.
func familyNames() string {
	var names []string
	for _, f := range marketgen.Families(1, 1, 0) {
		names = append(names, f.Name)
	}
	return strings.Join(names, ", ")
}

// applyFamily replaces cfg by the family's configuration for the requested
// size and seed, then applies again every flag the user gave, so that an
// explicit flag overrides the family.
func applyFamily(fs *pflag.FlagSet, cfg *marketgen.Config, name string) error {
	given := map[string]string{}
	fs.Visit(func(f *pflag.Flag) { given[f.Name] = f.Value.String() })
	fc, ok := marketgen.FamilyConfig(name, cfg.Requests, cfg.Offers, cfg.Seed)
	if !ok {
		return fmt.Errorf("--family %q: want one of %s", name, familyNames())
	}
	*cfg = fc
	var err error
	fs.Visit(func(f *pflag.Flag) {
		if err == nil {
			if e := f.Value.Set(given[f.Name]); e != nil {
				err = fmt.Errorf("--%s: %w", f.Name, e)
			}
		}
	})
	return err
}
