package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/spf13/cobra"

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
// v1. It needs no node. Its -o also accepts "binary" (the raw snapshot).
func newGenMarketCmd(g *globals) *cobra.Command {
	var cfg marketgen.Config
	var out string
	cmd := &cobra.Command{
		Use:   "gen-market",
		Short: "Generate a reproducible ROME market (policy ABI v2 snapshot)",
		Long: `Generate a seeded market of offers and requests: the same flags always give the
same bytes. -o binary writes the ABI v2 snapshot (the input of a policy's
allocate call), -o json a readable JSON form; both go to --out FILE or stdout.
With -o text (the default) the snapshot is written to --out FILE when given and
a summary is printed.`,
		Example: "  sos rome gen-market --requests 2000 --offers 200 --seed 1 -o binary --out market.bin",
		Args:    cobra.NoArgs,
		// Overrides the root check: -o also accepts binary here.
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			switch g.output {
			case "text", "json", "binary":
				return nil
			}
			return fmt.Errorf("-o %q: want text, json or binary", g.output)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
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
	f.StringVar(&out, "out", "", "write the market to FILE instead of stdout")
	return cmd
}
