package kernel

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome"
	"github.com/sos-kernel/sos/vm/meter"
)

// The market refuses job gas limits above rome.MaxJobGas because the
// executor meters at most meter.MaxGas: the two must stay equal (rome
// knows nothing of Wasm, so it cannot import the executor's bound).
func TestJobGasBoundIsTheExecutors(t *testing.T) {
	if rome.MaxJobGas != meter.MaxGas {
		t.Fatalf("rome.MaxJobGas %d, meter.MaxGas %d", uint64(rome.MaxJobGas), uint64(meter.MaxGas))
	}
}

// TestJobFailuresInTheNodeVM: the node runs jobs in its own Jobs VM (no
// injected executor) and a program that fails — exits non-zero, traps,
// runs out of gas, or is not a WASI command at all — still gets a result:
// the job is "failed" with its class, exit code and the gas it used (all
// of its limit when it ran out), its stdout is served, the provider's
// record counts a failure (it did its job), and the next job on the same
// node runs normally.
func TestJobFailuresInTheNodeVM(t *testing.T) {
	jn := newJobNetWith(t, DefaultConfig(), func(o *NodeOptions) { o.JobExecutor = nil })
	l := jn.leaseOn(t, 200, jn.tn.nodeKey.Address())
	const gasLimit = 1_000_000
	submit := func(module []byte) uint64 {
		t.Helper()
		p := &ledger.JobSubmit{LeaseID: l.ID, Module: jn.upload(t, module), GasLimit: gasLimit, MemoryLimit: 1 << 20, OutputLimit: 1 << 10}
		res := jn.mustSend(t, jn.cons, p)
		var out struct {
			JobID uint64 `json:"job_id"`
		}
		if err := json.Unmarshal([]byte(res.Receipt.Data), &out); err != nil || out.JobID == 0 {
			t.Fatalf("job_submit result %q: %v", res.Receipt.Data, err)
		}
		return out.JobID
	}
	for _, tc := range []struct {
		name   string
		module []byte
		class  string
		exit   int32
		stdout string
	}{
		{"exits 3", exitJob(3), "exited", 3, "ok\n"},
		{"traps", wasiCommand(append(append([]byte{}, writeOK...), 0x00)...), "trapped", 0, "ok\n"},
		{"loops until out of gas", wasiCommand(0x03, 0x40, 0x0c, 0, 0x0b), "out_of_gas", 0, ""},
		{"not a WASI command", []byte("\x00asm\x01\x00\x00\x00"), "trapped", 0, ""},
		{"not Wasm at all", []byte("#!/bin/sh\necho ok\n"), "trapped", 0, ""},
	} {
		id := submit(tc.module)
		j := jn.waitJob(t, id, "answered", func(j *client.Job) bool { return j.ExitCode != nil })
		if j.Status != "failed" || j.Class != tc.class || *j.ExitCode != tc.exit || j.Stdout == nil {
			t.Fatalf("%s: status %s class %s exit %d, want failed %s %d", tc.name, j.Status, j.Class, *j.ExitCode, tc.class, tc.exit)
		}
		if tc.class == "out_of_gas" && j.GasUsed != gasLimit {
			t.Fatalf("%s: gas used %d, want the whole limit %d", tc.name, j.GasUsed, gasLimit)
		}
		var out strings.Builder
		if _, err := jn.c.GetBlob(jn.ctx, j.Stdout.ID, int64(j.Stdout.Size), &out); err != nil || out.String() != tc.stdout {
			t.Fatalf("%s: stdout %q, %v", tc.name, out.String(), err)
		}
	}
	pr, err := jn.c.Provider(jn.ctx, jn.prov.Address().String())
	if err != nil || pr.Failed != 5 || pr.Completed != 0 || pr.Slashed != 0 || pr.TimedOut != 0 {
		t.Fatalf("provider record %+v %v: want 5 failed", pr, err)
	}
	id := submit(trivialJob)
	if j := jn.waitJob(t, id, "done", func(j *client.Job) bool { return j.ExitCode != nil }); j.Status != "done" || *j.ExitCode != 0 || j.GasUsed == 0 {
		t.Fatalf("trivial job after the failures: %+v", j)
	}
}

// TestJobHonestResultChallengedIsRejected: a result the provider computed
// honestly is challenged anyway (the consumer claims another stdout). The
// challenge is decided by re-execution: every member's node (a small job:
// the whole committee) re-runs the job and votes for the result, so the
// challenge is rejected, the job is done again, and the provider keeps its
// bond and its clean record.
func TestJobHonestResultChallengedIsRejected(t *testing.T) {
	jc := newJobCluster(t, 400)
	jc.openLease()
	id := jc.submit(0, randomBytes(t, 10_000), false)
	j := jc.job(0, id, "verified", func(j *client.Job) bool { return j.Verified != nil })
	if j.Status != "done" || !*j.Verified {
		t.Fatalf("honest job: status %s verified %v", j.Status, *j.Verified)
	}
	claimed, _ := j.Outcome()
	wrong := ledger.JobOutcome{ExitCode: claimed.ExitCode, GasUsed: claimed.GasUsed, Stdout: ledger.BlobID(blob.Sum([]byte("not what it printed")))}
	wrong.OutputRoot, _ = ledger.ParseHash(claimed.OutputRoot)
	jc.send(0, jc.cons, &ledger.JobChallenge{JobID: id, Outcome: wrong})
	j = jc.job(0, id, "challenge decided", func(j *client.Job) bool { return j.Challenge != nil && j.Challenge.Outcome != "" })
	ch := j.Challenge
	if ch.Outcome != rome.DisputeRejected || j.Status != "done" || len(ch.Committee) != 3 || len(ch.Votes) < 2 || len(ch.Slashed) != 0 {
		t.Fatalf("honest result challenged: status %s, challenge %+v", j.Status, ch)
	}
	for _, v := range ch.Votes {
		if !v.AgreesWithResult {
			t.Fatalf("a member's re-execution disagreed with the honest result: %+v", v)
		}
	}
	o, err := jc.clients[0].RomeOffer(jc.ctx, 1)
	if err != nil || len(o.Bond) != 1 || o.Bond[0].Amount != "1000000" {
		t.Fatalf("the honest provider's bond: %+v %v", o, err)
	}
	if pr, err := jc.clients[0].Provider(jc.ctx, jc.prov.Address().String()); err != nil || pr.Slashed != 0 || pr.Completed != 1 {
		t.Fatalf("provider record %+v %v", pr, err)
	}
}
