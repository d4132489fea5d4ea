package policy

// Func is an allocator: a pure function of the snapshot. It must not keep s
// or its slices after returning.
type Func func(s *Snapshot) ([]Allocation, error)

// AnytimeFunc is an allocator that hands in complete allocation lists as it
// finds them, best last: handIn passes one to the kernel at once, and the
// list the function returns is handed in after them. Should the allocator
// run out of gas or trap later, the kernel uses the last list handed in
// (docs/rome-policy-abi.md, "Anytime policies"), so an allocator hands in a
// fast valid answer early and then only lists that improve on it. Each list
// must be valid on its own: a later list replaces an earlier one, it does
// not add to it. handIn encodes the list before it returns; the allocator
// may change or reuse it afterwards.
type AnytimeFunc func(s *Snapshot, handIn func([]Allocation)) ([]Allocation, error)

// Anytime turns a Func into an AnytimeFunc that hands in only its result.
func Anytime(f Func) AnytimeFunc {
	return func(s *Snapshot, _ func([]Allocation)) ([]Allocation, error) { return f(s) }
}

// Apply decodes input, runs f and returns the encoded allocation list. It is
// what Handle does inside the VM, on byte slices. f sees the ordinary
// requests only: Apply places the replicas of replicated requests itself
// (WithReplicas).
func Apply(input []byte, f Func) ([]byte, error) {
	return ApplyAnytime(input, Anytime(f), nil)
}

// ApplyAnytime is Apply for an AnytimeFunc: each list f hands in is encoded
// and passed to handIn (when not nil), as HandleAnytime passes it to
// set_result; the encoded result is returned (and not passed to handIn).
// The slice handIn gets is reused by the next hand-in: copy it to keep it.
func ApplyAnytime(input []byte, f AnytimeFunc, handIn func(encoded []byte)) ([]byte, error) {
	return apply(input, handIn, func(s *Snapshot, hand func([]Allocation)) ([]Allocation, error) {
		return WithReplicasAnytime(s, f, hand)
	})
}

// ApplyAll is ApplyAnytime for an allocator that places replicas itself:
// f sees every request, replicated ones included, and every list it hands
// in and returns goes to the kernel as it is (PlaceReplicas is there to
// help: it places the replicas a list leaves out on the capacity left).
func ApplyAll(input []byte, f AnytimeFunc, handIn func(encoded []byte)) ([]byte, error) {
	return apply(input, handIn, func(s *Snapshot, hand func([]Allocation)) ([]Allocation, error) {
		return f(s, func(as []Allocation) {
			if hand != nil {
				hand(as)
			}
		})
	})
}

// apply is ApplyAnytime's and ApplyAll's common part: it decodes input,
// runs run with hand (nil when handIn is: each list it gets is encoded
// and passed to handIn, in one reused buffer) and encodes the result.
func apply(input []byte, handIn func(encoded []byte), run func(s *Snapshot, hand func([]Allocation)) ([]Allocation, error)) ([]byte, error) {
	s, err := Decode(input)
	if err != nil {
		return nil, err
	}
	nk := len(s.Kinds)
	var buf []byte
	var hand func([]Allocation)
	if handIn != nil {
		hand = func(as []Allocation) {
			buf = AppendAllocations(buf[:0], nk, as)
			handIn(buf)
		}
	}
	allocs, err := run(s, hand)
	if err != nil {
		return nil, err
	}
	return AppendAllocations(buf[:0:0], nk, allocs), nil
}
