package contracts

import (
	"fmt"

	"github.com/sos-kernel/sos/ledger"
)

// CodeEntry is code info with its id.
type CodeEntry struct {
	ID ledger.Hash
	CodeInfo
}

// InstanceEntry is an instance with its address.
type InstanceEntry struct {
	Address ledger.Address
	Instance
}

// ListCodes returns every uploaded code, by id.
func (e *Engine) ListCodes(st *ledger.State, limit int) ([]CodeEntry, error) {
	var out []CodeEntry
	var derr error
	start := key(tagCode)
	err := st.Iterate(start, prefixEnd(start), false, func(k, v []byte) bool {
		var ci CodeInfo
		if derr = e.codec.Unmarshal(v, &ci); derr != nil {
			return false
		}
		var id ledger.Hash
		copy(id[:], k[len(start):])
		out = append(out, CodeEntry{ID: id, CodeInfo: ci})
		return len(out) < limit
	})
	if derr != nil {
		return nil, fmt.Errorf("contracts: list codes: %w: %w", ledger.ErrCorrupt, derr)
	}
	return out, err
}

// ListInstances returns every instance, by address.
func (e *Engine) ListInstances(st *ledger.State, limit int) ([]InstanceEntry, error) {
	var out []InstanceEntry
	var derr error
	start := key(tagInstance)
	err := st.Iterate(start, prefixEnd(start), false, func(k, v []byte) bool {
		var in Instance
		if derr = e.codec.Unmarshal(v, &in); derr != nil {
			return false
		}
		var a ledger.Address
		copy(a[:], k[len(start):])
		out = append(out, InstanceEntry{Address: a, Instance: in})
		return len(out) < limit
	})
	if derr != nil {
		return nil, fmt.Errorf("contracts: list instances: %w: %w", ledger.ErrCorrupt, derr)
	}
	return out, err
}

// StorageEntry is one key/value of a contract's storage.
type StorageEntry struct {
	Key, Value []byte
}

// Storage lists a contract's storage from a key prefix.
func (e *Engine) Storage(st *ledger.State, addr ledger.Address, prefix []byte, limit int) ([]StorageEntry, error) {
	base := key(tagStore, addr[:])
	start := append(append([]byte(nil), base...), prefix...)
	end := prefixEnd(start)
	var out []StorageEntry
	err := st.Iterate(start, end, false, func(k, v []byte) bool {
		out = append(out, StorageEntry{Key: append([]byte(nil), k[len(base):]...), Value: v})
		return len(out) < limit
	})
	return out, err
}
