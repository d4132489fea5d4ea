package policies_test

import (
	"math"

	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// mcf is a textbook min-cost flow (primal-dual: Dijkstra on reduced costs,
// then a blocking flow on the arcs of reduced cost zero), used as the
// independent exact LP solver of the quality tests. It shares no code with
// the optimal policy: explicit arcs, int64 capacities, a source and a sink.
type mcf struct {
	n    int
	head []int
	arcs []arc
}

type arc struct {
	to, next int
	cap      int64
	cost     int64
}

const inf = math.MaxInt64 / 4

func newMCF(n int) *mcf {
	g := &mcf{n: n, head: make([]int, n)}
	for i := range g.head {
		g.head[i] = -1
	}
	return g
}

func (g *mcf) add(u, v int, cap, cost int64) {
	g.arcs = append(g.arcs, arc{v, g.head[u], cap, cost})
	g.head[u] = len(g.arcs) - 1
	g.arcs = append(g.arcs, arc{u, g.head[v], 0, -cost})
	g.head[v] = len(g.arcs) - 1
}

// minCost returns the minimum cost of any flow from s to t (the flow
// amount is free: augmentation stops when no path has negative cost). The
// initial potentials come from Bellman-Ford, so costs may be negative as
// long as there is no negative cycle.
func (g *mcf) minCost(s, t int) (int64, []int64) {
	pi := make([]int64, g.n)
	for i := range pi {
		pi[i] = inf
	}
	pi[s] = 0
	for changed := true; changed; {
		changed = false
		for u := range g.n {
			if pi[u] == inf {
				continue
			}
			for e := g.head[u]; e >= 0; e = g.arcs[e].next {
				a := g.arcs[e]
				if a.cap > 0 && pi[u]+a.cost < pi[a.to] {
					pi[a.to] = pi[u] + a.cost
					changed = true
				}
			}
		}
	}
	for i := range pi {
		if pi[i] == inf {
			pi[i] = 0
		}
	}
	var total int64
	dist := make([]int64, g.n)
	level := make([]int, g.n)
	iter := make([]int, g.n)
	for {
		// Dijkstra (O(n²) selection would be slow; use a simple heap).
		for i := range dist {
			dist[i] = inf
		}
		dist[s] = 0
		h := &minHeap{}
		h.push(0, s)
		for h.len() > 0 {
			d, u := h.pop()
			if d > dist[u] {
				continue
			}
			for e := g.head[u]; e >= 0; e = g.arcs[e].next {
				a := g.arcs[e]
				if a.cap == 0 {
					continue
				}
				nd := d + a.cost + pi[u] - pi[a.to]
				if nd < dist[a.to] {
					dist[a.to] = nd
					h.push(nd, a.to)
				}
			}
		}
		if dist[t] == inf {
			return total, pi
		}
		for i := range pi {
			pi[i] += min(dist[i], dist[t])
		}
		if pi[t]-pi[s] >= 0 { // true s-t path cost
			return total, pi
		}
		// Blocking flows on admissible arcs (reduced cost 0).
		for {
			for i := range level {
				level[i] = -1
			}
			level[s] = 0
			q := []int{s}
			for len(q) > 0 {
				u := q[0]
				q = q[1:]
				for e := g.head[u]; e >= 0; e = g.arcs[e].next {
					a := g.arcs[e]
					if a.cap > 0 && level[a.to] < 0 && a.cost+pi[u]-pi[a.to] == 0 {
						level[a.to] = level[u] + 1
						q = append(q, a.to)
					}
				}
			}
			if level[t] < 0 {
				break
			}
			copy(iter, g.head)
			for {
				f := g.dfs(s, t, inf, level, iter, pi)
				if f == 0 {
					break
				}
				total += f * (pi[t] - pi[s])
			}
		}
	}
}

func (g *mcf) dfs(u, t int, f int64, level, iter []int, pi []int64) int64 {
	if u == t {
		return f
	}
	for ; iter[u] >= 0; iter[u] = g.arcs[iter[u]].next {
		e := iter[u]
		a := &g.arcs[e]
		if a.cap > 0 && level[a.to] == level[u]+1 && a.cost+pi[u]-pi[a.to] == 0 {
			if d := g.dfs(a.to, t, min(f, a.cap), level, iter, pi); d > 0 {
				a.cap -= d
				g.arcs[e^1].cap += d
				return d
			}
		}
	}
	return 0
}

type minHeap struct {
	k []int64
	v []int
}

func (h *minHeap) len() int { return len(h.k) }

func (h *minHeap) push(k int64, v int) {
	h.k, h.v = append(h.k, k), append(h.v, v)
	for i := len(h.k) - 1; i > 0; {
		p := (i - 1) / 2
		if h.k[p] <= h.k[i] {
			break
		}
		h.k[p], h.k[i], h.v[p], h.v[i] = h.k[i], h.k[p], h.v[i], h.v[p]
		i = p
	}
}

func (h *minHeap) pop() (int64, int) {
	k, v := h.k[0], h.v[0]
	n := len(h.k) - 1
	h.k[0], h.v[0] = h.k[n], h.v[n]
	h.k, h.v = h.k[:n], h.v[:n]
	for i := 0; ; {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && h.k[c+1] < h.k[c] {
			c++
		}
		if h.k[i] <= h.k[c] {
			break
		}
		h.k[i], h.k[c], h.v[i], h.v[c] = h.k[c], h.k[i], h.v[c], h.v[i]
		i = c
	}
	return k, v
}

// exactOptimum is the maximum total surplus of a small market, computed
// without any of the policies' code: every placement of the bundles (each
// unserved or whole on one eligible offer with room) is enumerated, and for
// each the divisible requests get the capacity left by an exact
// transportation solve per kind (mcf; integral, as the data are). It is
// exponential in the bundles: for tiny markets only.
func exactOptimum(s *policy.Snapshot) int64 {
	nk := len(s.Kinds)
	var bundles []int
	for r := range s.Requests {
		if s.Requests[r].Flags&1 != 0 {
			bundles = append(bundles, r)
		}
	}
	left := make([][policy.MaxKinds]uint64, len(s.Offers))
	for o := range s.Offers {
		left[o] = s.Offers[o].Capacity
	}
	divisible := func() int64 {
		var v int64
		for k := range nk {
			nr, no := len(s.Requests), len(s.Offers)
			src, sink := nr+no, nr+no+1
			g := newMCF(nr + no + 2)
			for r, req := range s.Requests {
				if req.Flags&1 != 0 || req.Demand[k] == 0 {
					continue
				}
				g.add(src, r, int64(req.Demand[k]), -int64(req.MaxPrice[k]))
				for o := range s.Offers {
					if left[o][k] > 0 && eligible(s, s.Offers[o], req) {
						g.add(r, nr+o, inf, 0)
					}
				}
			}
			for o, off := range s.Offers {
				if left[o][k] > 0 {
					g.add(nr+o, sink, int64(left[o][k]), int64(off.Price[k]))
				}
			}
			cost, _ := g.minCost(src, sink)
			v -= cost
		}
		return v
	}
	var best int64
	var walk func(i int, v int64)
	walk = func(i int, v int64) {
		if i == len(bundles) {
			best = max(best, v+divisible())
			return
		}
		walk(i+1, v)
		r := &s.Requests[bundles[i]]
		for o := range s.Offers {
			of := &s.Offers[o]
			fits := eligible(s, *of, *r)
			for k := range nk {
				fits = fits && r.Demand[k] <= left[o][k]
			}
			if !fits {
				continue
			}
			var bv int64
			for k := range nk {
				left[o][k] -= r.Demand[k]
				bv += int64(r.Demand[k]) * (int64(r.MaxPrice[k]) - int64(of.Price[k]))
			}
			walk(i+1, v+bv)
			for k := range nk {
				left[o][k] += r.Demand[k]
			}
		}
	}
	walk(0, 0)
	return best
}
