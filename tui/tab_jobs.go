package tui

import (
	"fmt"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/sos-kernel/sos/kernel/client"
)

// jobsTab shows the jobs the focused node knows (the newest jobsLimit):
// the queue (submitted, and running on this node), the results, and all
// of them, with a detail pane for the job under the cursor — its data,
// limits, result, outputs, whether this node's verifier reproduced the
// result, and a challenge if there is one. s switches the list, /
// filters it.
type jobsTab struct {
	loadState
	jobs   []client.Job // newest first
	counts map[string]int
	ok     int // results this node's verifier reproduced
	bad    int // and those it did not

	sections
	items [numJobLists][]int // each list's rows: indexes into jobs
}

// The lists of the Jobs view, in the order s cycles them.
const (
	jobsQueue = iota
	jobsResults
	jobsAll
	numJobLists
)

var jobListNames = [numJobLists]string{"Queue", "Results", "All"}

// jobDetailLines is the height of the detail pane, with its blank line.
const jobDetailLines = 10

// jobStatuses are the statuses in the order the summary counts them.
var jobStatuses = []string{"submitted", "running", "done", "failed", "timeout", "challenged", "slashed"}

func newJobsTab() *jobsTab {
	return &jobsTab{sections: newSections(numJobLists, "#id, status, lease, node, consumer or provider")}
}

func (t *jobsTab) title() string { return "Jobs" }

func (t *jobsTab) bindings(k keyMap) []key.Binding {
	return []key.Binding{k.Section, k.Filter, k.Up, k.Down}
}

func (t *jobsTab) refresh(e *env) tea.Cmd { return e.f.jobs(e.focus) }

// at is row i of list s.
func (t *jobsTab) at(s, i int) *client.Job { return &t.jobs[t.items[s][t.index(s, i)]] }

func (t *jobsTab) update(e *env, msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case focusMsg:
		*t = *newJobsTab()
	case jobsMsg:
		if t.took(e.focus, msg.node, msg.err) {
			t.set(msg.jobs)
		}
	case tea.KeyPressMsg:
		return t.key(e, msg)
	default:
		return t.filter.tick(msg)
	}
	return nil
}

// set takes a page of jobs in, keeping each list's cursor on its job.
func (t *jobsTab) set(jobs []client.Job) {
	t.begin()
	t.jobs = append(t.jobs[:0], jobs...)
	t.counts = map[string]int{}
	t.ok, t.bad = 0, 0
	for s := range t.items {
		t.items[s] = t.items[s][:0]
	}
	for i := range t.jobs {
		j := &t.jobs[i]
		t.counts[j.Status]++
		if j.Verified != nil {
			if *j.Verified {
				t.ok++
			} else {
				t.bad++
			}
		}
		add := func(s int) {
			t.items[s] = append(t.items[s], i)
			t.add(s, "#"+u64(j.JobID), "#"+u64(j.JobID), j.Status, "lease "+u64(j.LeaseID), j.NodeID, j.Consumer, j.Provider)
		}
		if j.Status == "submitted" || j.Status == "running" {
			add(jobsQueue)
		} else {
			add(jobsResults)
		}
		add(jobsAll)
	}
	t.end()
}

func (t *jobsTab) key(e *env, msg tea.KeyPressMsg) tea.Cmd {
	cmd, _ := t.handleKey(e.keys, msg, t.ready(), t.rows(e))
	return cmd
}

func (t *jobsTab) rows(e *env) int {
	r := e.bodyHeight() - 4 - jobDetailLines // title, verification, list bar, table header
	if t.filterShown() {
		r--
	}
	return max(r, 1)
}

func (t *jobsTab) view(e *env, w, h int) string {
	st := e.st
	title := st.header.Render("Jobs")
	switch {
	case !t.loaded:
		return title + "\n" + st.dim.Render("loading…")
	case t.noAPI:
		return title + "\n" + st.warn.Render("no jobs API on this node") + st.dim.Render(" (an older node: jobs came with workloads)")
	case unavailable(t.err):
		return title + "\n" + st.warn.Render("the ROME market is not configured on this node") + "\n" + st.dim.Render(errText(t.err))
	case t.err != nil:
		return title + "\n" + st.bad.Render("cannot load jobs: "+errText(t.err))
	}
	lines := []string{title + " " + t.summary(), t.verification(st)}
	lines = append(lines, t.bar(st, jobListNames[:], "s next list"))
	if f := t.filterLine(st, w, jobListNames[t.sec]); f != "" {
		lines = append(lines, f)
	}
	cols := spread([]column{{"", 1, false}, {"job", 5, true}, {"status", 10, false}, {"lease", 5, true}, {"exit", 4, true},
		{"gas used/limit", 25, true}, {"verified", 9, false}, {"node", 10, false}}, w, 7)
	lines = append(lines, tableHeader(st, cols))
	rows := max(h-len(lines)-jobDetailLines, 1)
	n := t.n(t.sec)
	lines = append(lines, t.rowLines(st, cols, w, rows, func(i int) []string {
		j := t.at(t.sec, i)
		exit, gas := "—", group(u64(j.GasLimit))
		if j.ExitCode != nil {
			exit = strconv.Itoa(int(*j.ExitCode))
			gas = group(u64(j.GasUsed)) + "/" + gas
		}
		return []string{"#" + u64(j.JobID), jobStatusText(st, j.Status), u64(j.LeaseID), exit, gas, verifiedCell(st, j), shortAddr(j.NodeID, cols[7].width)}
	})...)
	if n == 0 {
		what := map[int]string{jobsQueue: "no job waiting for a result", jobsResults: "no result yet", jobsAll: "no job submitted yet"}[t.sec]
		if t.filtering() {
			what = "no job matches the filter"
		}
		lines = append(lines, st.dim.Render("  "+what))
	}
	for len(lines) < h-jobDetailLines {
		lines = append(lines, "")
	}
	if n > 0 {
		lines = append(lines, t.detail(e, t.at(t.sec, t.lists[t.sec].list.cursor), w)...)
	}
	return strings.Join(lines, "\n")
}

// summary counts the loaded jobs by status.
func (t *jobsTab) summary() string {
	parts := []string{}
	for _, s := range jobStatuses {
		if c := t.counts[s]; c > 0 || s == "submitted" || s == "done" {
			parts = append(parts, fmt.Sprintf("%d %s", c, s))
		}
	}
	return fmt.Sprintf("(%d) ", len(t.jobs)) + strings.Join(parts, " · ")
}

// verification says what this node's verifier found of the loaded results.
func (t *jobsTab) verification(st styles) string {
	if t.ok+t.bad == 0 {
		return field(st, "verified", st.dim.Render("this node re-executed none of these results"))
	}
	s := fmt.Sprintf("this node re-executed %d: %d reproduced", t.ok+t.bad, t.ok)
	if t.bad > 0 {
		return field(st, "verified", s+", "+st.bad.Render(fmt.Sprintf("%d DIFFER", t.bad)))
	}
	return field(st, "verified", st.good.Render(s))
}

func jobStatusText(st styles, s string) string {
	switch s {
	case "done":
		return st.good.Render(s)
	case "running":
		return st.warn.Render(s)
	case "timeout", "slashed", "challenged":
		return st.bad.Render(s)
	case "failed":
		return st.warn.Render(s)
	}
	return s
}

// verifiedCell is this node's verifier's word on a result.
func verifiedCell(st styles, j *client.Job) string {
	switch {
	case j.Verified == nil:
		return st.dim.Render("—")
	case *j.Verified:
		return st.good.Render("✓ same")
	}
	return st.bad.Render("✗ DIFFERS")
}

// refCell is "3f2a0b1c… (2.9 MiB)".
func refCell(r *client.BlobRef) string {
	if r == nil {
		return "—"
	}
	return short(r.ID, 12) + " (" + bytesHuman(int64(r.Size)) + ")"
}

// detail is the pane under the list.
func (t *jobsTab) detail(e *env, j *client.Job, w int) []string {
	st := e.st
	out := []string{"", st.header.Render(fmt.Sprintf("Job #%d", j.JobID)) + st.dim.Render(fmt.Sprintf(" · lease %d · offer %d · submitted at %d · deadline %d",
		j.LeaseID, j.OfferID, j.SubmitHeight, j.Deadline))}
	out = append(out, field(st, "parties", "node "+orDash(j.NodeID)+st.dim.Render(" · consumer "+shortAddr(j.Consumer, 16)+" · provider "+shortAddr(j.Provider, 16))))
	data := "module " + refCell(&j.Module)
	for _, in := range j.Inputs {
		data += " · " + in.Name + " (" + bytesHuman(int64(in.Size)) + ")"
	}
	if j.Stdin != nil {
		data += " · stdin (" + bytesHuman(int64(j.Stdin.Size)) + ")"
	}
	if len(j.Args) > 0 {
		data += " · args " + strings.Join(j.Args, " ")
	}
	out = append(out, field(st, "data", data))
	out = append(out, field(st, "limits", fmt.Sprintf("gas %s · memory %s · output %s", group(u64(j.GasLimit)), bytesHuman(int64(j.MemoryLimit)), bytesHuman(int64(j.OutputLimit)))))
	switch {
	case j.ExitCode != nil:
		res := fmt.Sprintf("exit %d (%s) · gas %s at height %d · output root %s", *j.ExitCode, j.Class, group(u64(j.GasUsed)), j.ResultHeight, short(j.OutputRoot, 16))
		outs := make([]string, 0, len(j.Outputs))
		for _, o := range j.Outputs {
			outs = append(outs, o.Name+" ("+bytesHuman(int64(o.Size))+")")
		}
		if len(outs) == 0 {
			outs = append(outs, "none")
		}
		out = append(out, field(st, "result", res),
			field(st, "outputs", strings.Join(outs, " · ")+st.dim.Render(fmt.Sprintf(" · stdout %s · in %s, out %s", bytesHuman(int64(j.Stdout.Size)),
				bytesHuman(int64(j.BytesIn)), bytesHuman(int64(j.BytesOut))))))
	case j.Status == "timeout":
		out = append(out, field(st, "result", st.bad.Render(fmt.Sprintf("none by the deadline (height %d): the consumer pays nothing", j.Deadline))), "")
	default:
		out = append(out, field(st, "result", st.dim.Render("waiting for the node's result")), "")
	}
	out = append(out, field(st, "verified", verifiedText(st, j)))
	if c := j.Challenge; c != nil {
		state := c.Outcome
		if state == "" {
			state = fmt.Sprintf("open until %d", c.VerdictEnd)
		}
		out = append(out, field(st, "challenge", st.warn.Render(fmt.Sprintf("%s, %d/%d verdicts", state, len(c.Votes), len(c.Committee)))+
			st.dim.Render(fmt.Sprintf(" · by %s · claims exit %d, gas %s", shortAddr(c.Challenger, 16), c.Claim.ExitCode, group(u64(c.Claim.GasUsed))))))
	}
	return out
}

// verifiedText says what this node's verifier found.
func verifiedText(st styles, j *client.Job) string {
	switch {
	case j.Verified == nil && j.ExitCode != nil:
		return st.dim.Render("not re-executed by this node")
	case j.Verified == nil:
		return st.dim.Render("—")
	case *j.Verified:
		return st.good.Render("this node's re-execution reproduced the result")
	}
	return st.bad.Render("this node's re-execution DIFFERS from the result")
}
