package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/conformance"
)

func newConformanceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "conformance", Short: "Check this binary against the golden conformance vectors"}
	cmd.AddCommand(&cobra.Command{
		Use:     "run DIR",
		Short:   "Replay every vector in DIR (e.g. conformance/testdata) and compare state roots, receipts and balances",
		Example: "  sos conformance run conformance/testdata",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			type line struct {
				Vector string `json:"vector"`
				OK     bool   `json:"ok"`
				Error  string `json:"error,omitempty"`
			}
			var lines []line
			// Compiled code (contracts, policies, the job vector's Go
			// module) is cached between runs, like sos job verify's:
			// machine code only, so results do not depend on it.
			var opts conformance.Options
			if dir, err := os.UserCacheDir(); err == nil {
				opts.CacheDir = filepath.Join(dir, "sos", "conformance-cache")
				if os.MkdirAll(opts.CacheDir, 0o700) != nil {
					opts.CacheDir = ""
				}
			}
			passed, failed, err := conformance.RunDirWith(cmd.Context(), args[0], opts, func(name string, err error) {
				l := line{Vector: name, OK: err == nil}
				if err != nil {
					l.Error = err.Error()
				}
				lines = append(lines, l)
				if g.output == "text" {
					if err == nil {
						fmt.Printf("PASS %s\n", name)
					} else {
						fmt.Printf("FAIL %s\n%s\n", name, err)
					}
				}
			})
			if err != nil {
				return err
			}
			if g.output == "json" {
				_ = g.print(map[string]any{"passed": passed, "failed": failed, "vectors": lines}, nil)
			} else {
				fmt.Printf("%d passed, %d failed\n", passed, failed)
			}
			if failed > 0 {
				return fmt.Errorf("%d conformance vector(s) failed", failed)
			}
			return nil
		},
	})
	return cmd
}
