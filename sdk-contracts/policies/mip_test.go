package policies_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// The exact reference of the quality tests: a market written as a mixed
// integer program in CPLEX LP format and solved by an external solver
// (COIN-OR CBC, Debian package coinor-cbc). It shares no code with the
// policies: eligibility is the test's own reading of the ABI (eligible).
//
//	maximize   Σ x[r,o,k]·(max[r,k] − ask[o,k])  +  Σ y[r,o]·Σ_k demand[r,k]·(max[r,k] − ask[o,k])
//	subject to Σ_o x[r,o,k] ≤ demand[r,k]                       (divisible request r, kind k)
//	           Σ_o y[r,o] ≤ 1                                   (bundle r)
//	           Σ_o y[r,o] ≤ replicas[r]                         (replicated request r)
//	           Σ_{o of provider p} y[r,o] ≤ 1                   (replicated r, provider p)
//	           Σ_{o in region g} y[r,o] ≤ 1                     (spread replicated r, region g)
//	           Σ_r x[r,o,k] + Σ_r demand[r,k]·y[r,o] ≤ cap[o,k]  (offer o, kind k)
//	           x ≥ 0, y ∈ {0, 1}
//
// over eligible pairs (a bundle or a replica only on offers with room for
// all of it; a replica only on an offer that runs jobs, whose provider —
// and with spread, whose region, not 0 — the request holds no replica
// with).
// Pairs of zero surplus are left out (they add nothing), which keeps the
// program smaller. With relax the y are continuous in [0, 1]: the LP
// relaxation, whose optimum bounds the MIP's. For replicated requests it
// relaxes only integrality: a replica may be split across offers, each part
// taking the same share of every kind from its offer, but the caps per
// (request, provider) and per (request, region) hold, so it never puts more
// than one replica's worth on one provider (or region) nor more than
// replicas[r] in all.

// writeMIP writes s as the program above.
func writeMIP(w io.Writer, s *policy.Snapshot, relax bool) error {
	bw := bufio.NewWriter(w)
	nk := len(s.Kinds)
	type term struct {
		name string
		coef uint64
		most uint64 // the most the term can use of the offer (coef × the variable's bound)
	}
	capRows := make([][policy.MaxKinds][]term, len(s.Offers))
	var obj []term
	var rows []string
	var bins []string
	for ri := range s.Requests {
		r := &s.Requests[ri]
		if r.Replicas > 0 {
			var row []string
			byProv, byRegion := map[uint32][]string{}, map[uint32][]string{}
			var provOrder, regionOrder []uint32
			held := map[[2]uint32]bool{}
			for _, h := range s.Held {
				if int(h.Request) == ri {
					held[[2]uint32{0, h.Provider}], held[[2]uint32{1, h.Region}] = true, true
				}
			}
			for oi := range s.Offers {
				o := &s.Offers[oi]
				if !eligible(s, *o, *r) || o.Flags&policy.FlagRunsJobs == 0 || held[[2]uint32{0, o.Provider}] ||
					r.Spread() && (o.Region == 0 || held[[2]uint32{1, o.Region}]) {
					continue
				}
				var v uint64
				fits := true
				for k := range nk {
					if r.Demand[k] > o.Capacity[k] {
						fits = false
					}
					if r.Demand[k] > 0 {
						v += r.Demand[k] * (r.MaxPrice[k] - o.Price[k])
					}
				}
				if !fits || v == 0 {
					continue
				}
				name := fmt.Sprintf("y%d_%d", ri, oi)
				obj = append(obj, term{name, v, 0})
				row = append(row, name)
				bins = append(bins, name)
				if byProv[o.Provider] == nil {
					provOrder = append(provOrder, o.Provider)
				}
				byProv[o.Provider] = append(byProv[o.Provider], name)
				if r.Spread() {
					if byRegion[o.Region] == nil {
						regionOrder = append(regionOrder, o.Region)
					}
					byRegion[o.Region] = append(byRegion[o.Region], name)
				}
				for k := range nk {
					if r.Demand[k] > 0 {
						capRows[oi][k] = append(capRows[oi][k], term{name, r.Demand[k], r.Demand[k]})
					}
				}
			}
			if len(row) > int(r.Replicas) {
				rows = append(rows, fmt.Sprintf("n%d: %s <= %d", ri, strings.Join(row, " + "), r.Replicas))
			}
			for _, p := range provOrder {
				if len(byProv[p]) > 1 {
					rows = append(rows, fmt.Sprintf("p%d_%d: %s <= 1", ri, p, strings.Join(byProv[p], " + ")))
				}
			}
			for _, g := range regionOrder {
				if len(byRegion[g]) > 1 {
					rows = append(rows, fmt.Sprintf("g%d_%d: %s <= 1", ri, g, strings.Join(byRegion[g], " + ")))
				}
			}
			continue
		}
		if r.Bundle() {
			var row []string
			for oi := range s.Offers {
				o := &s.Offers[oi]
				if !eligible(s, *o, *r) {
					continue
				}
				var v uint64
				fits := true
				for k := range nk {
					if r.Demand[k] > o.Capacity[k] {
						fits = false
					}
					if r.Demand[k] > 0 {
						v += r.Demand[k] * (r.MaxPrice[k] - o.Price[k])
					}
				}
				if !fits || v == 0 {
					continue
				}
				name := fmt.Sprintf("y%d_%d", ri, oi)
				obj = append(obj, term{name, v, 0})
				row = append(row, name)
				bins = append(bins, name)
				for k := range nk {
					if r.Demand[k] > 0 {
						capRows[oi][k] = append(capRows[oi][k], term{name, r.Demand[k], r.Demand[k]})
					}
				}
			}
			if len(row) > 1 {
				rows = append(rows, fmt.Sprintf("b%d: %s <= 1", ri, strings.Join(row, " + ")))
			} else if len(row) == 1 && relax {
				rows = append(rows, fmt.Sprintf("b%d: %s <= 1", ri, row[0]))
			}
			continue
		}
		for k := range nk {
			if r.Demand[k] == 0 {
				continue
			}
			var row []string
			for oi := range s.Offers {
				o := &s.Offers[oi]
				if o.Capacity[k] == 0 || o.Price[k] == r.MaxPrice[k] || !eligible(s, *o, *r) {
					continue
				}
				name := fmt.Sprintf("x%d_%d_%d", ri, oi, k)
				obj = append(obj, term{name, r.MaxPrice[k] - o.Price[k], 0})
				row = append(row, name)
				capRows[oi][k] = append(capRows[oi][k], term{name, 1, r.Demand[k]})
			}
			if len(row) > 0 {
				rows = append(rows, fmt.Sprintf("d%d_%d: %s <= %d", ri, k, strings.Join(row, " + "), r.Demand[k]))
			}
		}
	}
	for oi := range s.Offers {
		for k := range nk {
			ts := capRows[oi][k]
			if len(ts) == 0 {
				continue
			}
			var total uint64
			parts := make([]string, len(ts))
			for i, t := range ts {
				parts[i] = fmt.Sprintf("%d %s", t.coef, t.name)
				total += t.most
			}
			if total <= s.Offers[oi].Capacity[k] && !relax {
				continue // cannot bind
			}
			rows = append(rows, fmt.Sprintf("c%d_%d: %s <= %d", oi, k, strings.Join(parts, " + "), s.Offers[oi].Capacity[k]))
		}
	}
	fmt.Fprintln(bw, "Maximize")
	fmt.Fprint(bw, " obj:")
	if len(obj) == 0 {
		fmt.Fprint(bw, " 0 zero")
	}
	for i, t := range obj {
		if i > 0 {
			fmt.Fprint(bw, " +")
		}
		fmt.Fprintf(bw, " %d %s", t.coef, t.name)
		if i%8 == 7 {
			fmt.Fprintln(bw)
		}
	}
	fmt.Fprintln(bw)
	fmt.Fprintln(bw, "Subject To")
	for _, r := range rows {
		fmt.Fprintln(bw, " "+r)
	}
	if len(obj) == 0 {
		fmt.Fprintln(bw, " z: zero <= 0")
	}
	if len(bins) > 0 {
		fmt.Fprintln(bw, "Bounds")
		for _, b := range bins {
			fmt.Fprintf(bw, " 0 <= %s <= 1\n", b)
		}
		if !relax {
			fmt.Fprintln(bw, "General")
			for _, b := range bins {
				fmt.Fprintln(bw, " "+b)
			}
		}
	}
	fmt.Fprintln(bw, "End")
	return bw.Flush()
}

// cbcResult is what CBC found: the best solution's objective and the best
// bound (equal when it proved optimality).
type cbcResult struct {
	Objective float64
	Bound     float64
	Optimal   bool
	Seconds   float64
}

var errNoSolver = errors.New("cbc not installed")

var (
	reObjective = regexp.MustCompile(`Objective value:\s+(-?[0-9.e+]+)`)
	reBound     = regexp.MustCompile(`Lower bound:\s+(-?[0-9.e+]+)`)
)

// solveCBC solves s's program (or its LP relaxation) with CBC, stopping
// after limit.
func solveCBC(ctx context.Context, s *policy.Snapshot, relax bool, limit time.Duration) (cbcResult, error) {
	bin, err := exec.LookPath("cbc")
	if err != nil {
		return cbcResult{}, errNoSolver
	}
	dir, err := os.MkdirTemp("", "mip")
	if err != nil {
		return cbcResult{}, err
	}
	defer os.RemoveAll(dir)
	lp := filepath.Join(dir, "m.lp")
	f, err := os.Create(lp)
	if err != nil {
		return cbcResult{}, err
	}
	if err := writeMIP(f, s, relax); err != nil {
		f.Close()
		return cbcResult{}, err
	}
	if err := f.Close(); err != nil {
		return cbcResult{}, err
	}
	args := []string{lp, "ratioGap", "0", "allowableGap", "0.5", "sec", strconv.Itoa(int(limit.Seconds())), "threads", "1"}
	if relax {
		args = append(args, "initialSolve")
	} else {
		args = append(args, "solve")
	}
	start := time.Now()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return cbcResult{}, fmt.Errorf("cbc: %v\n%s", err, out)
	}
	res := cbcResult{Seconds: time.Since(start).Seconds()}
	text := string(out)
	if relax {
		m := regexp.MustCompile(`Optimal - objective value\s+(-?[0-9.e+]+)`).FindStringSubmatch(text)
		if m == nil {
			return res, fmt.Errorf("cbc: no LP optimum in its output:\n%s", tail(text))
		}
		res.Objective, _ = strconv.ParseFloat(m[1], 64)
		res.Bound, res.Optimal = res.Objective, true
		return res, nil
	}
	m := reObjective.FindStringSubmatch(text)
	b := reBound.FindStringSubmatch(text)
	if m == nil || b == nil {
		return res, fmt.Errorf("cbc: no objective in its output:\n%s", tail(text))
	}
	res.Objective, _ = strconv.ParseFloat(m[1], 64)
	res.Bound, _ = strconv.ParseFloat(b[1], 64)
	res.Optimal = strings.Contains(text, "Result - Optimal solution found")
	// CBC minimizes the negated objective and reports values of that sign
	// in some versions; the objective of this program is never negative.
	if res.Objective < 0 || res.Bound < 0 {
		res.Objective, res.Bound = -res.Objective, -res.Bound
	}
	return res, nil
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}
