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
	loaded bool
	noAPI  bool
	err    error
	jobs   []client.Job // newest first
	counts map[string]int
	ok     int // results this node's verifier reproduced
	bad    int // and those it did not

	sec    int
	lists  [numJobLists]jobList
	filter filterBox
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

// jobList is one list's rows (indexes into jobs), their search text and
// the filter's matches.
type jobList struct {
	rows  []int
	hay   []string
	match []int
	list  scroller
}

// jobStatuses are the statuses in the order the summary counts them.
var jobStatuses = []string{"submitted", "running", "done", "failed", "timeout", "challenged", "slashed"}

func newJobsTab() *jobsTab {
	return &jobsTab{filter: newFilterBox("/ ", "#id, status, lease, node, consumer or provider")}
}

func (t *jobsTab) title() string { return "Jobs" }
func (t *jobsTab) typing() bool  { return t.filter.focused() }

func (t *jobsTab) bindings(k keyMap) []key.Binding {
	return []key.Binding{k.Section, k.Filter, k.Up, k.Down}
}

func (t *jobsTab) refresh(e *env) tea.Cmd { return e.f.jobs(e.focus) }

func (t *jobsTab) filtering() bool { return t.filter.value() != "" }

// n is how many rows list s shows.
func (t *jobsTab) n(s int) int {
	if t.filtering() {
		return len(t.lists[s].match)
	}
	return len(t.lists[s].rows)
}

// at is row i of list s.
func (t *jobsTab) at(s, i int) *client.Job {
	l := &t.lists[s]
	if t.filtering() {
		i = l.match[i]
	}
	return &t.jobs[l.rows[i]]
}

func (t *jobsTab) rematch() {
	q := t.filter.query()
	for s := range t.lists {
		t.lists[s].match = matchHay(t.lists[s].match, t.lists[s].hay, q)
	}
}

func (t *jobsTab) update(e *env, msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case focusMsg:
		*t = *newJobsTab()
	case jobsMsg:
		if msg.node != e.focus {
			return nil
		}
		t.loaded = true
		t.noAPI = notFound(msg.err)
		t.err = msg.err
		if msg.err == nil {
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
	var cur [numJobLists]uint64
	for s := range t.lists {
		if t.n(s) > 0 {
			cur[s] = t.at(s, min(t.lists[s].list.cursor, t.n(s)-1)).JobID
		}
	}
	t.jobs = append(t.jobs[:0], jobs...)
	t.counts = map[string]int{}
	t.ok, t.bad = 0, 0
	for s := range t.lists {
		t.lists[s].rows, t.lists[s].hay = t.lists[s].rows[:0], t.lists[s].hay[:0]
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
		h := strings.ToLower(strings.Join([]string{"#" + u64(j.JobID), j.Status, "lease " + u64(j.LeaseID), j.NodeID, j.Consumer, j.Provider}, " "))
		add := func(s int) {
			t.lists[s].rows = append(t.lists[s].rows, i)
			t.lists[s].hay = append(t.lists[s].hay, h)
		}
		if j.Status == "submitted" || j.Status == "running" {
			add(jobsQueue)
		} else {
			add(jobsResults)
		}
		add(jobsAll)
	}
	t.rematch()
	for s := range t.lists {
		l := &t.lists[s]
		for i := 0; i < t.n(s) && cur[s] != 0; i++ {
			if t.at(s, i).JobID == cur[s] {
				l.list.cursor = i
				break
			}
		}
		l.list.clamp(t.n(s))
	}
}

func (t *jobsTab) key(e *env, msg tea.KeyPressMsg) tea.Cmd {
	k := e.keys
	if t.filter.focused() {
		ev, cmd := t.filter.handle(msg)
		if ev != filterApply {
			t.rematch()
			for s := range t.lists {
				t.lists[s].list = scroller{}
			}
		}
		return cmd
	}
	ready := t.loaded && t.err == nil
	switch {
	case key.Matches(msg, k.Section) && ready:
		t.sec = nextSection(msg, t.sec, numJobLists)
	case key.Matches(msg, k.Filter) && ready:
		return t.filter.open()
	case key.Matches(msg, k.Back) && t.filtering():
		t.filter.clear()
		t.rematch()
		for s := range t.lists {
			t.lists[s].list.clamp(t.n(s))
		}
	default:
		t.lists[t.sec].list.move(k, msg, t.n(t.sec), t.rows(e))
	}
	return nil
}

func (t *jobsTab) rows(e *env) int {
	r := e.bodyHeight() - 4 - jobDetailLines // title, verification, list bar, table header
	if t.filter.focused() || t.filtering() {
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
	lines = append(lines, t.listBar(e))
	if t.filter.focused() {
		lines = append(lines, t.filter.view(w))
	} else if v := t.filter.value(); v != "" {
		lines = append(lines, st.label.Render("filter: ")+v+st.dim.Render(fmt.Sprintf("  (%d match in %s, esc clears)", t.n(t.sec), jobListNames[t.sec])))
	}
	cols := spread([]column{{"", 1, false}, {"job", 5, true}, {"status", 10, false}, {"lease", 5, true}, {"exit", 4, true},
		{"gas used/limit", 25, true}, {"verified", 9, false}, {"node", 10, false}}, w, 7)
	lines = append(lines, tableHeader(st, cols))
	rows := max(h-len(lines)-jobDetailLines, 1)
	n := t.n(t.sec)
	l := &t.lists[t.sec]
	start := l.list.start(n, rows)
	for i := start; i < min(n, start+rows); i++ {
		j := t.at(t.sec, i)
		mark := " "
		if i == l.list.cursor {
			mark = "▸"
		}
		exit, gas := "—", group(u64(j.GasLimit))
		if j.ExitCode != nil {
			exit = strconv.Itoa(int(*j.ExitCode))
			gas = group(u64(j.GasUsed)) + "/" + gas
		}
		row := tableRow(cols, mark, "#"+u64(j.JobID), jobStatusText(st, j.Status), u64(j.LeaseID), exit, gas, verifiedCell(st, j), shortAddr(j.NodeID, cols[7].width))
		if i == l.list.cursor {
			row = selRow(st, row, w)
		}
		lines = append(lines, row)
	}
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
		lines = append(lines, t.detail(e, t.at(t.sec, l.list.cursor), w)...)
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

// listBar names the lists with their sizes; the shown one is highlighted.
func (t *jobsTab) listBar(e *env) string {
	st := e.st
	var b strings.Builder
	for s := range numJobLists {
		label := fmt.Sprintf(" %s %d ", jobListNames[s], len(t.lists[s].rows))
		if s == t.sec {
			b.WriteString(st.tabActive.Render(label))
		} else {
			b.WriteString(st.tabIdle.Render(label))
		}
	}
	return b.String() + st.dim.Render("  s next list")
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
