package adversarial

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/vm"
	"github.com/sos-kernel/sos/vm/meter"
)

// TestAdversarialMix writes, for every shape that ends without error, how
// many instructions of each class of the cost table one call executes and
// the gas its host functions charge — the input for refitting the cost
// table to BenchmarkAdversarial's times (see BENCHMARKS.md). It runs only
// when SOS_ADVERSARIAL_MIX names the JSON file to write:
//
//	SOS_ADVERSARIAL_MIX=/tmp/mix.json go test ./vm/adversarial -run Mix -timeout 60m
//
// (SOS_ADVERSARIAL_MIX_ONLY=prefix,... restricts it to some shapes.)
// Like TestGasCalibrationMix in package vm, it runs every shape under a
// Scale-1 table where every class costs 1 and under one table per class
// that doubles it; the difference is the count. Spill is counted apart:
// its charge is a fraction of each instruction (see meter.CostTable), so
// its table sets it to 1024 on a base of 0 and the count is in 1/1024.
func TestAdversarialMix(t *testing.T) {
	out := os.Getenv("SOS_ADVERSARIAL_MIX")
	if out == "" {
		t.Skip("writes instruction counts for a refit: set SOS_ADVERSARIAL_MIX=file.json")
	}
	var fields []string
	rt := reflect.TypeFor[meter.CostTable]()
	for i := range rt.NumField() {
		if n := rt.Field(i).Name; n != "Version" && n != "Scale" {
			fields = append(fields, n)
		}
	}
	table := func(version uint32, double string) meter.CostTable {
		c := meter.CostTable{Version: version, Scale: 1}
		v := reflect.ValueOf(&c).Elem()
		for _, f := range fields {
			w := uint64(1)
			switch {
			case f == "Spill" && double == f:
				w = 1024
			case f == "Spill":
				w = 0
			case f == double:
				w = 2
			}
			v.FieldByName(f).SetUint(w)
		}
		return c
	}
	only := os.Getenv("SOS_ADVERSARIAL_MIX_ONLY") // comma-separated name prefixes
	var names []string
	var selected []shape
	for _, s := range shapes() {
		if strings.HasPrefix(s.name, "policy/") && !strings.Contains(s.name, "go-loop") || len(s.allow) > 0 {
			continue // the shipped policies take long; failing calls charge their limit
		}
		if only != "" && !slices.ContainsFunc(strings.Split(only, ","), func(p string) bool { return strings.HasPrefix(s.name, p) }) {
			continue
		}
		names = append(names, s.name)
		selected = append(selected, s)
	}
	failed := map[string]bool{} // out of gas under some table: left out
	run := func(version uint32, double string) []int64 {
		e := newEnvCosts(t, table(version, double))
		e.gas = vm.MaxTxGas
		var gas []int64
		for _, s := range selected {
			x, err := s.setup(t, e)()
			if err != nil {
				t.Logf("%s under %q: %v (left out)", s.name, double, err)
				failed[s.name] = true
			}
			gas = append(gas, int64(x.gas))
		}
		return gas
	}
	base := run(2000, "")
	type mix struct {
		Host   int64            `json:"host"`
		Counts map[string]int64 `json:"counts"`
	}
	res := map[string]*mix{}
	for i, n := range names {
		res[n] = &mix{Host: base[i], Counts: map[string]int64{}}
	}
	for k, f := range fields {
		g := run(2001+uint32(k), f)
		for i, n := range names {
			d := g[i] - base[i]
			res[n].Counts[f] = d
			if f != "Spill" {
				res[n].Host -= d
			}
		}
	}
	for n := range failed {
		delete(res, n)
	}
	b, err := json.MarshalIndent(res, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
