package main

import (
	"strings"
	"testing"
)

// TestStrictCommands: an unknown subcommand and a wrong argument count fail
// (non-zero exit through main) and say what to do.
func TestStrictCommands(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"contract", "bogus-subcommand"}, `unknown command "bogus-subcommand" for "sos contract"`},
		{[]string{"rome", "policy", "nope"}, `unknown command "nope" for "sos rome policy"`},
		{[]string{"contract", "query"}, "usage: sos contract query"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			root := newRootCmd()
			root.SetArgs(c.args)
			root.SetOut(new(strings.Builder))
			err := root.Execute()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	root := newRootCmd()
	root.SetArgs([]string{"rome", "gen-market", "--requests", "20", "--offers", "5", "--seed", "1", "-o", "json", "--out", t.TempDir() + "/m.json"})
	if err := root.Execute(); err != nil {
		t.Fatalf("sos rome gen-market: %v", err)
	}
}
