package optimal

import (
	"cmp"
	"slices"
)

// entry is a positive flow from request r to the offer holding the entry.
type entry struct {
	r int32
	f uint64
}

// node is the per-node state of the searches, packed so that one visit
// touches one place.
type node struct {
	pi     int64 // potential
	dist   int64 // tentative reduced distance, valid when seen == iter
	seen   uint32
	done   uint32 // == iter: finalized; deadMark: dead for this kind
	parent int32
}

// deadMark in node.done marks a node that reaches no offer with capacity
// left that a request still to be inserted could afford. Requests are
// inserted by max price descending, and a failed search proves that nothing
// reachable from its finalized nodes asks at most the current bid; no later
// augmentation can enter that region, so it stays dead for the kind.
const deadMark = ^uint32(0)

// flow is the per-kind min-cost flow state. Node ids: requests 0..nr-1,
// offers nr..nr+no-1, the sink nr+no. All slices are reused across kinds.
type flow[E uint16 | int32] struct {
	sv     *solver[E]
	nr, no int
	t      int32

	nodes []node
	iter  uint32
	// work counts arc visits and heap pops of the searches; past budget,
	// the kind's remaining requests are served by direct arcs only.
	work, budget int64
	heap         heap
	final        []int32

	// Per-kind adjacency: the offers of adj with capacity left on the
	// kind; request r's live arcs are adjK[startK[r]:endK[r]], dead offers
	// are swapped out as they are met.
	adjK         []E
	startK, endK []int32

	spare []uint64  // offer capacity left on the kind
	flows [][]entry // offer -> positive flows
	order []int32
}

func newFlow[E uint16 | int32](sv *solver[E]) *flow[E] {
	nr, no := len(sv.s.Requests), len(sv.s.Offers)
	return &flow[E]{
		sv: sv, nr: nr, no: no, t: int32(nr + no),
		nodes: make([]node, nr+no+1),
		adjK:  make([]E, len(sv.adj)), startK: make([]int32, nr), endK: make([]int32, nr),
		spare: make([]uint64, no), flows: make([][]entry, no),
		order: make([]int32, 0, nr),
	}
}

// run solves kind index k on the capacity the book has left and records
// the flow in the book.
func (f *flow[E]) run(k int) {
	s, b, sv := f.sv.s, f.sv.b, f.sv
	clear(f.nodes)
	f.iter = 0
	minQ := int64(maxPrice)
	for o := range f.no {
		f.spare[o] = b.Spare(o, k)
		f.flows[o] = f.flows[o][:0]
		if f.spare[o] > 0 {
			minQ = min(minQ, int64(s.Offers[o].Price[k]))
		}
	}
	f.nodes[f.t].pi = minQ // o→t reduced cost q_o + pi_o - pi_t >= 0
	f.order = f.order[:0]
	n := int32(0)
	for ri := range s.Requests {
		f.startK[ri] = n
		if !s.Requests[ri].Bundle() && b.Need(ri, k) > 0 {
			f.order = append(f.order, int32(ri))
			for _, o := range sv.adj[sv.start[ri]:sv.start[ri+1]] {
				if f.spare[o] > 0 {
					f.adjK[n] = o
					n++
				}
			}
		}
		f.endK[ri] = n
	}
	slices.SortFunc(f.order, func(a, c int32) int {
		return cmp.Or(cmp.Compare(s.Requests[c].MaxPrice[k], s.Requests[a].MaxPrice[k]), cmp.Compare(a, c))
	})
	for _, r := range f.order {
		f.insert(r, k)
	}
	for o := range f.no {
		for _, e := range f.flows[o] {
			b.Add(int(e.r), o, k, e.f, s.Offers[o].Price[k])
		}
	}
}

// insert augments request r along cheapest paths while it has demand left
// and a reachable offer asks at most its max price.
func (f *flow[E]) insert(r int32, k int) {
	p := int64(f.sv.s.Requests[r].MaxPrice[k])
	left := f.sv.b.Need(int(r), k)
	// Make r's arcs' reduced costs non-negative.
	var pr int64 = -1 << 62
	for _, o := range f.adjK[f.startK[r]:f.endK[r]] {
		pr = max(pr, f.nodes[f.nr+int(o)].pi)
	}
	if pr == -1<<62 {
		return
	}
	f.nodes[r].pi = pr
	if f.work > f.budget {
		f.direct(r, p, k, left)
		return
	}
	for left > 0 {
		if !f.shortest(r, p, k) {
			return
		}
		left -= f.augment(r, left)
	}
}

// direct serves request r from its cheapest neighbours with capacity left
// (no rerouting): the fallback once the kind's work budget is spent. The
// flow stays feasible; only optimality is lost.
func (f *flow[E]) direct(r int32, p int64, k int, left uint64) {
	offers := f.sv.s.Offers
	for left > 0 {
		best := -1
		for _, o := range f.adjK[f.startK[r]:f.endK[r]] {
			if f.spare[o] > 0 && int64(offers[o].Price[k]) <= p && (best < 0 || offers[o].Price[k] < offers[best].Price[k]) {
				best = int(o)
			}
		}
		if best < 0 {
			return
		}
		d := min(left, f.spare[best])
		f.spare[best] -= d
		left -= d
		if i := f.find(best, r); i >= 0 {
			f.flows[best][i].f += d
		} else {
			f.flows[best] = append(f.flows[best], entry{r, d})
		}
	}
}

// shortest runs Dijkstra from request r on reduced costs and reports
// whether the sink is reachable through an offer asking at most p; it then
// updates the potentials of the finalized nodes.
func (f *flow[E]) shortest(r int32, p int64, k int) bool {
	offers := f.sv.s.Offers
	nodes := f.nodes
	f.iter++
	it := f.iter
	f.final = f.final[:0]
	f.heap = f.heap[:0]
	t := &nodes[f.t]
	limit := p + nodes[r].pi - t.pi
	nodes[r].dist, nodes[r].seen, nodes[r].parent = 0, it, -1
	f.heap.push(0, r)
	found := false
	for len(f.heap) > 0 {
		// The sink first among equal keys: plateaus of zero reduced cost
		// are common, and nothing found on them can beat a tight sink.
		if t.seen == it && t.dist <= f.heap[0].key && t.dist <= limit {
			t.done = it
			f.final = append(f.final, f.t)
			found = true
			break
		}
		d, v := f.heap.pop()
		nv := &nodes[v]
		if nv.done >= it || d > nv.dist {
			continue
		}
		if d > limit {
			break
		}
		nv.done = it
		f.work++
		f.final = append(f.final, v)
		base := d + nv.pi
		if int(v) < f.nr {
			lo, hi := f.startK[v], f.endK[v]
			f.work += int64(hi - lo)
			for i := lo; i < hi; i++ {
				u := int32(f.nr + int(f.adjK[i]))
				nu := &nodes[u]
				if nu.done >= it {
					if nu.done == deadMark { // drop the arc for good
						hi--
						f.adjK[i], f.adjK[hi] = f.adjK[hi], f.adjK[i]
						i--
					}
					continue
				}
				if nd := base - nu.pi; nu.seen != it || nd < nu.dist {
					nu.dist, nu.seen, nu.parent = nd, it, v
					f.heap.push(nd, u)
				}
			}
			f.endK[v] = hi
			continue
		}
		o := int(v) - f.nr
		if f.spare[o] > 0 {
			if nd := base + int64(offers[o].Price[k]) - t.pi; t.seen != it || nd < t.dist {
				t.dist, t.seen, t.parent = nd, it, v
			}
		}
		f.work += int64(len(f.flows[o]))
		for _, e := range f.flows[o] {
			nu := &nodes[e.r]
			if nu.done >= it {
				continue
			}
			if nd := base - nu.pi; nu.seen != it || nd < nu.dist {
				nu.dist, nu.seen, nu.parent = nd, it, v
				f.heap.push(nd, e.r)
			}
		}
	}
	if !found && t.seen == it && t.dist <= limit {
		t.done = it
		f.final = append(f.final, f.t)
		found = true
	}
	if !found {
		for _, v := range f.final {
			nodes[v].done = deadMark
		}
		return false
	}
	D := t.dist
	for _, v := range f.final {
		nodes[v].pi += nodes[v].dist - D
	}
	return true
}

// augment pushes as much as the path found by shortest allows, at most
// left, and returns the amount.
func (f *flow[E]) augment(r int32, left uint64) uint64 {
	end := int(f.nodes[f.t].parent) - f.nr
	delta := min(left, f.spare[end])
	// Walk back: offer ← request (forward arc), request ← offer (backward).
	for o := f.nodes[f.t].parent; ; {
		req := f.nodes[o].parent
		if req == r {
			break
		}
		prev := f.nodes[req].parent
		delta = min(delta, f.flows[int(prev)-f.nr][f.find(int(prev)-f.nr, req)].f)
		o = prev
	}
	f.spare[end] -= delta
	for o := f.nodes[f.t].parent; ; {
		req := f.nodes[o].parent
		oi := int(o) - f.nr
		if i := f.find(oi, req); i >= 0 {
			f.flows[oi][i].f += delta
		} else {
			f.flows[oi] = append(f.flows[oi], entry{req, delta})
		}
		if req == r {
			break
		}
		prev := f.nodes[req].parent
		pi := int(prev) - f.nr
		i := f.find(pi, req)
		if f.flows[pi][i].f -= delta; f.flows[pi][i].f == 0 {
			last := len(f.flows[pi]) - 1
			f.flows[pi][i] = f.flows[pi][last]
			f.flows[pi] = f.flows[pi][:last]
		}
		o = prev
	}
	return delta
}

// find returns the position of request r in offer o's flows, or -1.
func (f *flow[E]) find(o int, r int32) int {
	for i, e := range f.flows[o] {
		if e.r == r {
			return i
		}
	}
	return -1
}

// heap is a binary min-heap of (key, node).
type heap []item

type item struct {
	key  int64
	node int32
}

func (h *heap) push(key int64, node int32) {
	*h = append(*h, item{key, node})
	a := *h
	i := len(a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if a[p].key <= key {
			break
		}
		a[i] = a[p]
		i = p
	}
	a[i] = item{key, node}
}

func (h *heap) pop() (int64, int32) {
	a := *h
	top := a[0]
	last := a[len(a)-1]
	a = a[:len(a)-1]
	*h = a
	n := len(a)
	if n > 0 {
		i := 0
		for {
			c := 2*i + 1
			if c >= n {
				break
			}
			if c+1 < n && a[c+1].key < a[c].key {
				c++
			}
			if a[c].key >= last.key {
				break
			}
			a[i] = a[c]
			i = c
		}
		a[i] = last
	}
	return top.key, top.node
}
