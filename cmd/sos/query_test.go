package main

import (
	"testing"

	"github.com/sos-kernel/sos/kernel/client"
)

func TestSyncLine(t *testing.T) {
	for _, tc := range []struct {
		s    client.Status
		want string
	}{
		{client.Status{SyncState: client.SyncInSync, Height: 9}, "sync in sync"},
		{client.Status{}, "sync in sync"},
		{client.Status{SyncState: client.SyncCatchingUp, Height: 260, ClusterHeight: 300}, "sync catching up: 40 blocks behind the cluster (at 300)"},
		{client.Status{SyncState: client.SyncStalled, Height: 260, ClusterHeight: 2500, SyncError: "no member served block 261"},
			"sync stalled: 2240 blocks behind the cluster (at 2500)\nlast sync error: no member served block 261"},
	} {
		if got := syncLine(&tc.s); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.s, got, tc.want)
		}
	}
}
