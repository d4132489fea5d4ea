package sdk

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"iter"
	"strconv"
)

// Key is a Map key type. Keys are encoded so that byte order is key order:
// strings and byte slices as they are, uint64 as 8 big-endian bytes, Address
// as its 32 bytes. For a composite key, concatenate fixed-width parts into a
// []byte (an Address then a uint64 sorts by address, then number).
type Key interface {
	string | []byte | uint64 | Address
}

// Values are stored as JSON (uint64 and int64 through a fast path that writes
// the same bytes), so `sos contract state` shows them readably.

func encodeValue[T any](v T) ([]byte, error) {
	switch x := any(v).(type) {
	case uint64:
		return strconv.AppendUint(nil, x, 10), nil
	case int64:
		return strconv.AppendInt(nil, x, 10), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("sdk: encode %T: %w", v, err)
	}
	return b, nil
}

func decodeValue[T any](b []byte) (T, error) {
	var v T
	var err error
	switch p := any(&v).(type) {
	case *uint64:
		*p, err = strconv.ParseUint(string(b), 10, 64)
	case *int64:
		*p, err = strconv.ParseInt(string(b), 10, 64)
	default:
		err = json.Unmarshal(b, &v)
	}
	if err != nil {
		return v, fmt.Errorf("sdk: decode stored %T: %w", v, err)
	}
	return v, nil
}

func encodeKey[K Key](k K) []byte {
	switch x := any(k).(type) {
	case string:
		return []byte(x)
	case []byte:
		return x
	case uint64:
		return binary.BigEndian.AppendUint64(nil, x)
	case Address:
		return x[:]
	}
	panic("unreachable")
}

func decodeKey[K Key](b []byte) (K, error) {
	var k K
	switch p := any(&k).(type) {
	case *string:
		*p = string(b)
	case *[]byte:
		*p = append([]byte(nil), b...)
	case *uint64:
		if len(b) != 8 {
			return k, fmt.Errorf("sdk: stored uint64 key has %d bytes", len(b))
		}
		*p = binary.BigEndian.Uint64(b)
	case *Address:
		if len(b) != len(p) {
			return k, fmt.Errorf("sdk: stored address key has %d bytes", len(b))
		}
		copy(p[:], b)
	}
	return k, nil
}

// Item is a single typed value stored under one key.
type Item[T any] struct{ key []byte }

// NewItem returns the item stored under key. Item keys share the contract's
// key space with maps; a key starting with byte 0 or 1 may collide with a
// map's entries, so use printable names.
func NewItem[T any](key string) Item[T] { return Item[T]{key: []byte(key)} }

// Get returns the value, or an error wrapping ErrNotFound.
func (i Item[T]) Get(ctx *Ctx) (T, error) {
	v, ok, err := i.Lookup(ctx)
	if err == nil && !ok {
		err = fmt.Errorf("%w: item %q", ErrNotFound, i.key)
	}
	return v, err
}

// Lookup returns the value and whether it exists (the zero T if not).
func (i Item[T]) Lookup(ctx *Ctx) (T, bool, error) { return lookup[T](ctx, i.key) }

// Has reports whether the value exists.
func (i Item[T]) Has(ctx *Ctx) bool {
	_, ok := ctx.host.StorageGet(i.key)
	return ok
}

// Set stores v.
func (i Item[T]) Set(ctx *Ctx, v T) error { return set(ctx, i.key, v) }

// Delete removes the value.
func (i Item[T]) Delete(ctx *Ctx) { ctx.host.StorageDelete(i.key) }

// Update stores f's answer for the current value (the zero T and false when
// absent) and returns it; an error from f leaves the item unchanged.
func (i Item[T]) Update(ctx *Ctx, f func(old T, exists bool) (T, error)) (T, error) {
	return update(ctx, i.key, f)
}

// Map is a typed key/value collection under a namespace. Entry keys are the
// namespace's length (2 bytes, big-endian), the namespace, then the encoded
// key, so maps never overlap and each ranges in key order.
type Map[K Key, V any] struct{ prefix []byte }

// NewMap returns the map stored under namespace. It panics if namespace is
// longer than 65535 bytes, a programmer error.
func NewMap[K Key, V any](namespace string) Map[K, V] {
	if len(namespace) > 0xffff {
		panic("sdk: map namespace longer than 65535 bytes")
	}
	p := binary.BigEndian.AppendUint16(nil, uint16(len(namespace)))
	return Map[K, V]{prefix: append(p, namespace...)}
}

func (m Map[K, V]) key(k K) []byte {
	enc := encodeKey(k)
	b := make([]byte, 0, len(m.prefix)+len(enc))
	return append(append(b, m.prefix...), enc...)
}

// Get returns the value under k, or an error wrapping ErrNotFound.
func (m Map[K, V]) Get(ctx *Ctx, k K) (V, error) {
	v, ok, err := m.Lookup(ctx, k)
	if err == nil && !ok {
		err = fmt.Errorf("%w: key %v", ErrNotFound, k)
	}
	return v, err
}

// Lookup returns the value under k and whether it exists (the zero V if not).
func (m Map[K, V]) Lookup(ctx *Ctx, k K) (V, bool, error) { return lookup[V](ctx, m.key(k)) }

// Has reports whether k has a value.
func (m Map[K, V]) Has(ctx *Ctx, k K) bool {
	_, ok := ctx.host.StorageGet(m.key(k))
	return ok
}

// Set stores v under k.
func (m Map[K, V]) Set(ctx *Ctx, k K, v V) error { return set(ctx, m.key(k), v) }

// Delete removes k.
func (m Map[K, V]) Delete(ctx *Ctx, k K) { ctx.host.StorageDelete(m.key(k)) }

// Update stores f's answer for the value under k (the zero V and false when
// absent) and returns it; an error from f leaves the entry unchanged.
func (m Map[K, V]) Update(ctx *Ctx, k K, f func(old V, exists bool) (V, error)) (V, error) {
	return update(ctx, m.key(k), f)
}

// Bound is one end of a key range. The zero Bound is unbounded.
type Bound[K Key] struct {
	key       K
	set       bool
	exclusive bool
}

// Inclusive returns a bound that includes k.
func Inclusive[K Key](k K) Bound[K] { return Bound[K]{key: k, set: true} }

// Exclusive returns a bound that excludes k (for pagination: start after the
// last key of the previous page).
func Exclusive[K Key](k K) Bound[K] { return Bound[K]{key: k, set: true, exclusive: true} }

// Bounds selects the entries a Range visits. The zero value visits every
// entry in ascending key order.
type Bounds[K Key] struct {
	Start   Bound[K] // lowest key
	End     Bound[K] // highest key
	Reverse bool     // descending order
	Limit   int      // at most this many entries; 0 means no limit
}

// Prefix returns the bounds of every []byte key starting with p.
func Prefix(p []byte) Bounds[[]byte] {
	b := Bounds[[]byte]{Start: Inclusive(p)}
	if end := prefixEnd(p); end != nil {
		b.End = Exclusive(end)
	}
	return b
}

// prefixEnd returns the first key after every key starting with p, or nil
// if there is none (p is all 0xff).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Range iterates over the entries within b:
//
//	for k, v := range offers.Range(ctx, sdk.Bounds[uint64]{Start: sdk.Exclusive(after), Limit: 10}) { ... }
//
// Writes made while a range is open may or may not be seen by it; collect
// first, then write. Range panics if a stored entry does not decode as K and
// V — data written under another type is a programmer error (migrate it).
func (m Map[K, V]) Range(ctx *Ctx, b Bounds[K]) iter.Seq2[K, V] {
	start := m.prefix
	if b.Start.set {
		start = m.key(b.Start.key)
		if b.Start.exclusive {
			start = append(start, 0) // the first key after
		}
	}
	end := prefixEnd(m.prefix)
	if b.End.set {
		end = m.key(b.End.key)
		if !b.End.exclusive {
			end = append(end, 0)
		}
	}
	return func(yield func(K, V) bool) {
		id := ctx.host.IterOpen(start, end, b.Reverse)
		defer ctx.host.IterClose(id)
		for n := 0; b.Limit <= 0 || n < b.Limit; n++ {
			rk, rv, ok := ctx.host.IterNext(id)
			if !ok {
				return
			}
			k, err := decodeKey[K](rk[len(m.prefix):])
			if err != nil {
				panic(err)
			}
			v, err := decodeValue[V](rv)
			if err != nil {
				panic(err)
			}
			if !yield(k, v) {
				return
			}
		}
	}
}

func lookup[T any](ctx *Ctx, key []byte) (T, bool, error) {
	b, ok := ctx.host.StorageGet(key)
	if !ok {
		var zero T
		return zero, false, nil
	}
	v, err := decodeValue[T](b)
	return v, err == nil, err
}

func set[T any](ctx *Ctx, key []byte, v T) error {
	b, err := encodeValue(v)
	if err != nil {
		return err
	}
	ctx.host.StorageSet(key, b)
	return nil
}

func update[T any](ctx *Ctx, key []byte, f func(T, bool) (T, error)) (T, error) {
	old, ok, err := lookup[T](ctx, key)
	if err != nil {
		return old, err
	}
	v, err := f(old, ok)
	if err != nil {
		return v, err
	}
	return v, set(ctx, key, v)
}
