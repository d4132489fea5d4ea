package policy

// Func is an allocator: a pure function of the snapshot. It must not keep s
// or its slices after returning.
type Func func(s *Snapshot) ([]Allocation, error)

// Apply decodes input, runs f and returns the encoded allocation list. It is
// what Handle does inside the VM, on byte slices. f sees the ordinary
// requests only: Apply places the replicas of replicated requests itself
// (WithReplicas).
func Apply(input []byte, f Func) ([]byte, error) {
	s, err := Decode(input)
	if err != nil {
		return nil, err
	}
	allocs, err := WithReplicas(s, f)
	if err != nil {
		return nil, err
	}
	return EncodeAllocations(len(s.Kinds), allocs), nil
}
