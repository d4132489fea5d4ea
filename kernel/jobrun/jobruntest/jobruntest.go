// Package jobruntest provides a native stand-in for the VM's job executor,
// for tests of the layers around it (API, CLI, verification) that must not
// depend on a Wasm toolchain.
package jobruntest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/sos-kernel/sos/kernel/jobrun"
	"github.com/sos-kernel/sos/ledger"
)

// Sha256Sum runs every job as sdk-contracts/jobs/sha256sum would: for each
// input, in name order, the line "<sha256 hex>  <name>" goes to stdout and
// to the output SHA256SUMS. It ignores the module. Gas is deterministic:
// 1,000 plus one per input byte (ErrOutOfGas class past the job's limit).
// An env entry EXIT=N makes it exit with N; Skew adds to the gas it
// reports, for tests of a result that re-execution does not reproduce.
type Sha256Sum struct {
	Skew uint64
}

// Run implements jobrun.Executor.
func (x Sha256Sum) Run(ctx context.Context, s *jobrun.Spec) (*jobrun.Run, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	gas := uint64(1000) + x.Skew
	var b strings.Builder
	for _, in := range s.Inputs {
		sum := sha256.Sum256(in.Data)
		b.WriteString(hex.EncodeToString(sum[:]) + "  " + in.Name + "\n")
		gas += uint64(len(in.Data))
	}
	if gas > s.GasLimit {
		return &jobrun.Run{Class: ledger.JobOutOfGas, GasUsed: s.GasLimit, Stderr: []byte("out of gas\n")}, nil
	}
	code := int32(0)
	for _, e := range s.Env {
		if v, ok := strings.CutPrefix(e, "EXIT="); ok {
			n, _ := strconv.Atoi(v)
			code = int32(n)
		}
	}
	out := []byte(b.String())
	return &jobrun.Run{Class: ledger.JobExited, ExitCode: code, GasUsed: gas, Stdout: out,
		Outputs: []jobrun.File{{Name: "SHA256SUMS", Data: out}}}, nil
}
