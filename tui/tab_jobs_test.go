package tui

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/kernel/client"
)

// testJobs are seven jobs of two leases, newest first: one running on
// this node and one queued, a done result this node reproduced, a failed
// one it did not re-execute, a challenged one it found different, one
// timed out and one slashed.
func testJobs() jobsMsg {
	yes, no := true, false
	code := func(c int32) *int32 { return &c }
	ref := func(tag byte, size uint64) *client.BlobRef { return &client.BlobRef{ID: hash(size, tag), Size: size} }
	base := func(id, lease uint64, status string) client.Job {
		return client.Job{JobID: id, LeaseID: lease, OfferID: lease - 1, Provider: addrAlice, Consumer: addrBob, NodeID: addrCarol, Status: status,
			SubmitHeight: 1000 + id*10, Deadline: 2200 + id*10, Module: client.BlobRef{ID: hash(id, 'm'), Size: 3 << 20},
			Inputs: []client.JobFile{{Name: "data.bin", ID: hash(id, 'i'), Size: 3_000_000}}, Args: []string{"-top", "20"},
			GasLimit: 2_500_000_000, MemoryLimit: 256 << 20, OutputLimit: 64 << 20, Outputs: []client.JobFile{}}
	}
	result := func(j client.Job, exit int32, gas uint64, verified *bool) client.Job {
		j.ExitCode, j.Class, j.GasUsed, j.OutputRoot = code(exit), "exited", gas, hash(j.JobID, 'o')
		j.Outputs = []client.JobFile{{Name: "SHA256SUMS", ID: hash(j.JobID, 's'), Size: 81}}
		j.Stdout, j.Stderr = ref('a', 81), ref('e', 0)
		j.BytesIn, j.BytesOut, j.ResultHeight, j.ChallengeEnd, j.Verified = 6_145_728, 162, j.SubmitHeight+3, j.SubmitHeight+243, verified
		return j
	}
	failed := result(base(9, 4, "failed"), 2, 1_200_000, nil)
	failed.Outputs = []client.JobFile{}
	challenged := result(base(8, 4, "challenged"), 0, 98_765_432, &no)
	challenged.Challenge = &client.JobChallenge{Challenger: addrBob, Claim: client.JobOutcome{GasUsed: 98_000_000}, VerdictEnd: 1333,
		Committee: []string{addrAlice, addrCarol, addrBob}, Votes: []client.JobVote{{Voter: addrAlice}}}
	slashed := result(base(6, 3, "slashed"), 0, 5_000, nil)
	slashed.Challenge = &client.JobChallenge{Challenger: addrBob, Outcome: "upheld", Committee: []string{addrAlice}, Votes: []client.JobVote{{Voter: addrAlice}}}
	return jobsMsg{jobs: []client.Job{
		base(12, 4, "running"), base(11, 4, "submitted"),
		result(base(10, 4, "done"), 0, 123_456_789, &yes),
		failed, challenged, base(7, 3, "timeout"), slashed,
	}}
}

func TestJobsView(t *testing.T) {
	m := loaded(t, 120, 40)
	send(m, keys("8")...)
	if got := screen(m); !strings.Contains(got, "loading") {
		t.Fatalf("before the answer:\n%s", got)
	}
	send(m, testJobs())
	jt := m.tabs[7].(*jobsTab)
	got := screen(m)
	for _, want := range []string{
		"Jobs (7) 1 submitted · 1 running · 1 done · 1 failed · 1 timeout · 1 challenged · 1 slashed", "this node re-executed 2: 1 reproduced, 1 DIFFER",
		"Queue 2", "Results 5", "All 7", "Job #12", "waiting for the node's result", "data.bin (2.9 MiB)", "args -top 20",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("jobs view lacks %q:\n%s", want, got)
		}
	}
	// Results: the done job first, reproduced by this node.
	send(m, keys("s")...)
	got = screen(m)
	if jt.sec != jobsResults || !strings.Contains(got, "Job #10") || !strings.Contains(got, "exit 0 (exited)") ||
		!strings.Contains(got, "this node's re-execution reproduced the result") || !strings.Contains(got, "SHA256SUMS (81 B)") {
		t.Fatalf("results list:\n%s", got)
	}
	send(m, keys("down")...)
	if got = screen(m); !strings.Contains(got, "exit 2 (exited)") || !strings.Contains(got, "not re-executed by this node") {
		t.Fatalf("failed job:\n%s", got)
	}
	send(m, keys("down")...)
	if got = screen(m); !strings.Contains(got, "DIFFERS from the result") || !strings.Contains(got, "open until 1333, 1/3 verdicts · by") {
		t.Fatalf("challenged job:\n%s", got)
	}
	send(m, keys("down")...)
	if got = screen(m); !strings.Contains(got, "none by the deadline (height 2270): the consumer pays nothing") {
		t.Fatalf("timed-out job:\n%s", got)
	}
	// A refresh with a new job keeps the cursor on its job.
	more := testJobs()
	more.jobs = append([]client.Job{{JobID: 13, LeaseID: 4, Status: "done", ExitCode: new(int32), Stdout: &client.BlobRef{}}}, more.jobs...)
	send(m, more)
	if j := jt.at(jt.sec, jt.lists[jt.sec].list.cursor); j.JobID != 7 {
		t.Fatalf("after a refresh the cursor is on #%d, want #7", j.JobID)
	}
	// The filter narrows every list.
	send(m, keys("S", "/", "lease 3", "enter")...)
	if jt.sec != jobsQueue || jt.n(jobsAll) != 2 || jt.n(jobsQueue) != 0 || !strings.Contains(screen(m), "no job matches the filter") {
		t.Fatalf("filter lease 3: all %d, queue %d:\n%s", jt.n(jobsAll), jt.n(jobsQueue), screen(m))
	}
	send(m, keys("esc")...)
	if jt.n(jobsAll) != 8 {
		t.Fatalf("esc left %d jobs", jt.n(jobsAll))
	}
	send(m, jobsMsg{node: 1})
	if jt.n(jobsAll) != 8 {
		t.Fatal("another node's answer replaced the list")
	}
	send(m, focusMsg{})
	if jt.loaded || jt.n(jobsAll) != 0 {
		t.Fatal("focus change kept the old node's jobs")
	}
}

func TestJobsErrors(t *testing.T) {
	m := loaded(t, 80, 24)
	m.e.f = fetcher{ctx: t.Context(), clients: []*client.Client{mustClient(t)}}
	_, cmd := m.Update(keys("8")[0])
	msgs := runCmds(cmd)
	if len(msgs) != 1 {
		t.Fatalf("showing the tab runs %d commands", len(msgs))
	}
	if jm, ok := msgs[0].(jobsMsg); !ok || jm.err == nil {
		t.Fatalf("the command answered %#v", msgs[0])
	}
	send(m, msgs[0])
	if !strings.Contains(screen(m), "cannot load jobs") {
		t.Fatalf("error not shown:\n%s", screen(m))
	}
	send(m, jobsMsg{node: 0, err: fmt.Errorf("%w: 404 page not found", client.ErrNotFound)})
	if !strings.Contains(screen(m), "no jobs API on this node") {
		t.Fatalf("404:\n%s", screen(m))
	}
	send(m, jobsMsg{node: 0, jobs: []client.Job{}})
	if !strings.Contains(screen(m), "no job waiting for a result") {
		t.Fatalf("empty:\n%s", screen(m))
	}
}

func TestGoldenJobs(t *testing.T) {
	scenarios := []struct {
		name  string
		setup func(m *model)
	}{
		{"jobs", func(m *model) { send(m, keys("8")...); send(m, testJobs()) }},
		{"jobs_results", func(m *model) { send(m, keys("8")...); send(m, testJobs()); send(m, keys("s", "down", "down")...) }},
		{"jobs_filter", func(m *model) {
			send(m, keys("8")...)
			send(m, testJobs())
			send(m, keys("S", "/", "slashed", "enter")...)
		}},
		{"jobs_none", func(m *model) {
			send(m, keys("8")...)
			send(m, jobsMsg{node: 0, err: fmt.Errorf("%w: 404 page not found", client.ErrNotFound)})
		}},
		{"jobs_help", func(m *model) { send(m, keys("8", "?")...) }},
	}
	for _, size := range [][2]int{{80, 24}, {160, 48}} {
		for _, sc := range scenarios {
			name := fmt.Sprintf("%s_%dx%d", sc.name, size[0], size[1])
			t.Run(name, func(t *testing.T) {
				m := loaded(t, size[0], size[1])
				sc.setup(m)
				got := screen(m)
				checkFrame(t, got, size[0], size[1])
				golden(t, name, got)
			})
		}
	}
}
