package policy

// Book tracks what is left of a snapshot while a policy allocates, and
// merges everything given to one (request, offer) pair into one Allocation,
// as the ABI requires. It uses flat slices, no maps: a request's
// allocations are found through a short linked list.
type Book struct {
	// Per offer and per request, one array of MaxKinds (zero beyond the
	// snapshot's kinds), so that Fits compares the four kinds without a
	// loop (a loop costs in the VM) and inlines.
	spare  [][MaxKinds]uint64
	need   [][MaxKinds]uint64
	head   []int32 // request -> first allocation, -1 none
	next   []int32 // allocation -> next allocation of the same request
	allocs []Allocation
}

// NewBook starts a book with every offer's capacity and every request's
// demand available.
func NewBook(s *Snapshot) *Book {
	nk := len(s.Kinds)
	b := &Book{
		spare:  make([][MaxKinds]uint64, len(s.Offers)),
		need:   make([][MaxKinds]uint64, len(s.Requests)),
		head:   make([]int32, len(s.Requests)),
		allocs: make([]Allocation, 0, len(s.Requests)+len(s.Offers)),
		next:   make([]int32, 0, len(s.Requests)+len(s.Offers)),
	}
	for i := range s.Offers {
		copy(b.spare[i][:nk], s.Offers[i].Capacity[:nk])
	}
	for i := range s.Requests {
		copy(b.need[i][:nk], s.Requests[i].Demand[:nk])
		b.head[i] = -1
	}
	return b
}

// Spare is the capacity of offer o left on kind index k.
func (b *Book) Spare(o, k int) uint64 { return b.spare[o][k] }

// Spares is the capacity of offer o left on every kind (0 beyond the
// snapshot's kinds).
func (b *Book) Spares(o int) *[MaxKinds]uint64 { return &b.spare[o] }

// Need is the demand of request r left on kind index k.
func (b *Book) Need(r, k int) uint64 { return b.need[r][k] }

// Fits reports whether offer o can serve all of request r's remaining
// demand on every kind.
func (b *Book) Fits(r, o int) bool {
	n, sp := &b.need[r], &b.spare[o]
	return n[0] <= sp[0] && n[1] <= sp[1] && n[2] <= sp[2] && n[3] <= sp[3]
}

// Add gives amount of kind index k of offer o to request r at price. It
// panics if amount exceeds what is left on either side (a policy bug
// caught before the kernel would reject the list).
func (b *Book) Add(r, o, k int, amount, price uint64) {
	if amount == 0 {
		return
	}
	sp, nd := &b.spare[o][k], &b.need[r][k]
	if amount > *sp || amount > *nd {
		panic("policy: Book.Add: amount above spare capacity or remaining demand")
	}
	*sp -= amount
	*nd -= amount
	i := b.head[r]
	for i >= 0 && b.allocs[i].Offer != uint32(o) {
		i = b.next[i]
	}
	if i < 0 {
		i = int32(len(b.allocs))
		b.allocs = append(b.allocs, Allocation{Request: uint32(r), Offer: uint32(o)})
		b.next = append(b.next, b.head[r])
		b.head[r] = i
	}
	a := &b.allocs[i]
	a.Amount[k] += amount
	a.Price[k] = price
}

// Allocations returns the list built so far, in order of first use of each
// pair. The slice is the book's; do not Add after using it.
func (b *Book) Allocations() []Allocation { return b.allocs }
