package jobrun_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/jobrun"
	"github.com/sos-kernel/sos/kernel/jobrun/jobruntest"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome"
)

// memBlobs is a Blobs source in memory; bad makes it answer other bytes
// for one id.
type memBlobs struct {
	m   map[ledger.BlobID][]byte
	bad ledger.BlobID
}

func (b *memBlobs) put(p []byte) ledger.BlobRef {
	id := ledger.BlobID(blob.Sum(p))
	b.m[id] = p
	return ledger.BlobRef{ID: id, Size: uint64(len(p))}
}

func (b *memBlobs) Blob(ctx context.Context, ref ledger.BlobRef) ([]byte, error) {
	p, ok := b.m[ref.ID]
	if !ok {
		return nil, blob.ErrNotFound
	}
	if ref.ID == b.bad {
		p = append([]byte("x"), p[1:]...)
	}
	return p, nil
}

func testJob(t *testing.T) (*jobrun.Job, *memBlobs) {
	t.Helper()
	b := &memBlobs{m: map[ledger.BlobID][]byte{}}
	mod := b.put([]byte("\x00asm fake module"))
	a, z := b.put([]byte("hello\n")), b.put([]byte(strings.Repeat("z", 5000)))
	return &jobrun.Job{ID: 7, Module: mod, Inputs: []ledger.JobFile{{Name: "a.txt", ID: a.ID, Size: a.Size}, {Name: "z.bin", ID: z.ID, Size: z.Size}},
		GasLimit: 1 << 20, MemoryLimit: 1 << 24, OutputLimit: 1 << 16}, b
}

func TestExecuteSummarizes(t *testing.T) {
	j, b := testJob(t)
	res, err := jobrun.Execute(context.Background(), j, b, jobruntest.Sha256Sum{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("hello\n"))
	want := hex.EncodeToString(sum[:]) + "  a.txt\n"
	if out := string(res.Blobs[res.Stdout.ID]); !strings.HasPrefix(out, want) {
		t.Fatalf("stdout %q", out)
	}
	if len(res.Outputs) != 1 || res.Outputs[0].Name != "SHA256SUMS" || res.Outputs[0].ID != res.Stdout.ID {
		t.Fatalf("outputs %+v", res.Outputs)
	}
	if res.OutputRoot != rome.OutputRoot(res.Outputs, res.Stdout, res.Stderr) {
		t.Fatal("output root is not rome.OutputRoot of the outputs")
	}
	p := res.Payload(j.ID, 10, 20)
	if err := p.ValidateBasic(); err != nil || p.GasUsed != 1000+6+5000 {
		t.Fatalf("payload %+v: %v", p, err)
	}
}

// TestLoadRefusesCorruptBlobs: a source answering other bytes than a
// reference names is refused before anything runs.
func TestLoadRefusesCorruptBlobs(t *testing.T) {
	j, b := testJob(t)
	b.bad = j.Inputs[1].ID
	_, err := jobrun.Load(context.Background(), j, b, 0)
	if !errors.Is(err, jobrun.ErrCorrupt) || !strings.Contains(err.Error(), "z.bin") {
		t.Fatalf("corrupt input: %v", err)
	}
	b.bad = ledger.BlobID{}
	j.Inputs[0].Size++ // the right bytes under a wrong size
	if _, err := jobrun.Load(context.Background(), j, b, 0); !errors.Is(err, jobrun.ErrCorrupt) {
		t.Fatalf("wrong size: %v", err)
	}
	j.Inputs[0].Size--
	if _, err := jobrun.Load(context.Background(), j, b, 100); !errors.Is(err, jobrun.ErrTooLarge) {
		t.Fatalf("over the byte cap: %v", err)
	}
	if _, err := jobrun.Execute(context.Background(), j, b, nil, 0); !errors.Is(err, jobrun.ErrNoExecutor) {
		t.Fatalf("no executor: %v", err)
	}
}

func TestVerifyNamesDifferences(t *testing.T) {
	j, b := testJob(t)
	honest, err := jobrun.Execute(context.Background(), j, b, jobruntest.Sha256Sum{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := jobrun.Verify(context.Background(), j, honest.Outcome(), b, jobruntest.Sha256Sum{}, 0)
	if err != nil || !rep.Match || len(rep.Diffs) != 0 {
		t.Fatalf("honest result: %+v %v", rep, err)
	}
	forged := honest.Outcome()
	forged.GasUsed += 5
	forged.OutputRoot[0] ^= 1
	rep, err = jobrun.Verify(context.Background(), j, forged, b, jobruntest.Sha256Sum{}, 0)
	if err != nil || rep.Match || len(rep.Diffs) != 2 || !strings.Contains(rep.Diffs[0], "gas used") || !strings.Contains(rep.Diffs[1], "output root") {
		t.Fatalf("forged result: %+v %v", rep, err)
	}
}

func TestSummarizeRefusesBadOutputs(t *testing.T) {
	for name, run := range map[string]*jobrun.Run{
		"twice":     {Class: ledger.JobExited, Outputs: []jobrun.File{{Name: "a", Data: []byte("1")}, {Name: "a", Data: []byte("2")}}},
		"escapes":   {Class: ledger.JobExited, Outputs: []jobrun.File{{Name: "../etc/passwd", Data: []byte("x")}}},
		"absolute":  {Class: ledger.JobExited, Outputs: []jobrun.File{{Name: "/a", Data: []byte("x")}}},
		"too large": {Class: ledger.JobExited, Outputs: []jobrun.File{{Name: "big", Data: make([]byte, 101)}}},
	} {
		if _, err := jobrun.Summarize(run, 100); !errors.Is(err, jobrun.ErrOutput) {
			t.Errorf("%s: %v", name, err)
		}
	}
	long := &jobrun.Run{Class: ledger.JobExited, Stdout: make([]byte, ledger.MaxJobLogBytes+10)}
	res, err := jobrun.Summarize(long, 0)
	if err != nil || res.Stdout.Size != ledger.MaxJobLogBytes {
		t.Fatalf("long stdout: %+v %v", res, err)
	}
}

// FuzzFromAPI: a node's answer for a job (untrusted JSON) either becomes a
// Job whose references are the answer's, or an error; never a panic.
func FuzzFromAPI(f *testing.F) {
	f.Add([]byte(`{"job_id":1,"module":{"blob_id":"` + strings.Repeat("ab", 32) + `","size":3},"seed":"` + strings.Repeat("00", 32) + `","inputs":[{"name":"a","blob_id":"` + strings.Repeat("cd", 32) + `","size":1}],"stdin":null}`))
	f.Add([]byte(`{"module":{"blob_id":"zz"}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var j client.Job
		if json.Unmarshal(raw, &j) != nil {
			return
		}
		job, err := jobrun.FromAPI(&j)
		if err != nil {
			return
		}
		if job.Module.ID.String() != strings.ToLower(j.Module.ID) || len(job.Inputs) != len(j.Inputs) || job.Seed.String() != strings.ToLower(j.Seed) {
			t.Fatalf("FromAPI(%s) = %+v", raw, job)
		}
	})
}
