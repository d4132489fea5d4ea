package meter_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/sos-kernel/sos/vm/meter"
)

// FuzzInstrument feeds mutated modules to the upload path: Instrument never
// panics, classifies every error, is deterministic, and whenever wazero
// accepts the original module it also accepts the instrumented one.
func FuzzInstrument(f *testing.F) {
	f.Add(sumLoop.bytes())
	f.Add(tightLoop.bytes())
	f.Add(fnModule{params: []byte{tF64, tF64}, results: []byte{tF64}, body: []byte{0x20, 0, 0x20, 1, 0xa3, 0x9f, 0x0b}}.bytes())
	f.Add(fnModule{params: []byte{tI32}, memory: []byte{1, 0, 1}, body: []byte{0x41, 0, 0x41, 0, 0x20, 0, 0xfc, 11, 0x00, 0x0b}}.bytes())
	f.Add(recursiveSite.bytes())
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer r.Close(ctx)
	opts := meter.DefaultOptions()
	blind := opts // the jobs' options
	blind.BlindLocals = true
	blind.MissInGlobals = true
	blind.Reloop = true
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, err := meter.Instrument(wasm, opts)
		if err != nil {
			if !errors.Is(err, meter.ErrMalformed) && !errors.Is(err, meter.ErrUnsupportedFeature) && !errors.Is(err, meter.ErrLimit) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		again, _ := meter.Instrument(wasm, opts)
		if !bytes.Equal(out, again) {
			t.Fatal("Instrument is not deterministic")
		}
		outBlind, err := meter.Instrument(wasm, blind)
		if err != nil {
			t.Fatalf("accepted without the jobs' options (BlindLocals, MissInGlobals, Reloop), not with them: %v", err)
		}
		if cm, err := r.CompileModule(ctx, wasm); err == nil {
			cm.Close(ctx)
			for _, o := range [][]byte{out, outBlind} {
				cm2, err := r.CompileModule(ctx, o)
				if err != nil {
					t.Fatalf("wazero accepts the module but not its instrumented form: %v", err)
				}
				cm2.Close(ctx)
			}
		}
	})
}
