package vm

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestPurposeLimits runs the same prepared module in a VM for contracts and
// one for policies: each enforces its own memory, input and gas limits.
func TestPurposeLimits(t *testing.T) {
	p := loadPrepared(t)
	big := "incr " + strings.Repeat("x", MaxInputBytes)
	cases := []struct {
		purpose Purpose
		msg     string
		gas     uint64
		err     error // nil: success
	}{
		{Contracts, "grow 16", 0, ErrTrap},
		{Policies, "grow 16", 0, nil},
		{Policies, "grow 80", 0, ErrTrap}, // 80 MiB: past MaxPolicyMemoryPages
		{Contracts, big, 0, ErrLimit},
		{Policies, big, 0, nil},
		{Contracts, "incr", MaxTxGas + 1, ErrLimit},
		{Policies, "incr", MaxTxGas + 1, nil},
		{Policies, "incr", MaxPolicyGas + 1, ErrLimit},
	}
	cache := t.TempDir() // the second VM reuses the first one's compilation
	vms := map[Purpose]*VM{Contracts: newVM(t, Config{CacheDir: cache}), Policies: newVM(t, Config{Purpose: Policies, CacheDir: cache})}
	for _, tc := range cases {
		name := tc.purpose.String() + "/" + tc.msg
		if len(name) > 30 {
			name = name[:30]
		}
		if tc.gas == 0 {
			tc.gas = callGas(t, p, 200_000_000)
		} else {
			name += "/gas"
		}
		t.Run(name, func(t *testing.T) {
			v := vms[tc.purpose]
			if got := v.Limits(); got != tc.purpose.Limits() {
				t.Fatalf("Limits() = %+v, want %+v", got, tc.purpose.Limits())
			}
			_, err := v.Call(context.Background(), testCode, p, "execute", []byte(tc.msg), testEnv(), newFakeHost(), tc.gas)
			if tc.err == nil && err != nil || tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
	if _, err := New(context.Background(), Config{Purpose: 9}); err == nil {
		t.Fatal("unknown purpose accepted")
	}
}
