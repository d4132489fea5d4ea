package policies_test

import "math"

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
