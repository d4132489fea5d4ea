package policy

// Book tracks what is left of a snapshot while a policy allocates, and
// merges everything given to one (request, offer) pair into one Allocation,
// as the ABI requires. It uses flat slices, no maps: a request's
// allocations are found through a short linked list.
type Book struct {
	nk     int
	spare  []uint64 // offer*nk + k
	need   []uint64 // request*nk + k
	head   []int32  // request -> first allocation, -1 none
	next   []int32  // allocation -> next allocation of the same request
	allocs []Allocation
}

// NewBook starts a book with every offer's capacity and every request's
// demand available.
func NewBook(s *Snapshot) *Book {
	nk := len(s.Kinds)
	b := &Book{
		nk:     nk,
		spare:  make([]uint64, len(s.Offers)*nk),
		need:   make([]uint64, len(s.Requests)*nk),
		head:   make([]int32, len(s.Requests)),
		allocs: make([]Allocation, 0, len(s.Requests)+len(s.Offers)),
		next:   make([]int32, 0, len(s.Requests)+len(s.Offers)),
	}
	for i := range s.Offers {
		copy(b.spare[i*nk:], s.Offers[i].Capacity[:nk])
	}
	for i := range s.Requests {
		copy(b.need[i*nk:], s.Requests[i].Demand[:nk])
		b.head[i] = -1
	}
	return b
}

// Spare is the capacity of offer o left on kind index k.
func (b *Book) Spare(o, k int) uint64 { return b.spare[o*b.nk+k] }

// Need is the demand of request r left on kind index k.
func (b *Book) Need(r, k int) uint64 { return b.need[r*b.nk+k] }

// Fits reports whether offer o can serve all of request r's remaining
// demand on every kind.
func (b *Book) Fits(r, o int) bool {
	for k := range b.nk {
		if b.need[r*b.nk+k] > b.spare[o*b.nk+k] {
			return false
		}
	}
	return true
}

// Add gives amount of kind index k of offer o to request r at price. It
// panics if amount exceeds what is left on either side (a policy bug
// caught before the kernel would reject the list).
func (b *Book) Add(r, o, k int, amount, price uint64) {
	if amount == 0 {
		return
	}
	sp, nd := &b.spare[o*b.nk+k], &b.need[r*b.nk+k]
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
