package vm

import (
	"container/list"
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/sos-kernel/sos/vm/meter"
)

// maxPooled bounds the idle instances kept per module.
const maxPooled = 4

type cacheKey struct {
	code  [32]byte
	costs uint32
}

// module is a compiled prepared module with its memory image and a pool of
// idle instances whose state equals the snapshot.
type module struct {
	key      cacheKey
	ready    chan struct{}
	err      error
	cm       wazero.CompiledModule
	img      *image
	pages    uint32 // memory of the snapshot
	minPages uint32 // memory of a new instance of cm, grown to pages
	monoNs   int64
	cfg      wazero.ModuleConfig

	mu       sync.Mutex
	refs     int // the cache's reference plus one per Call in flight
	pool     []*instance
	globals  []string // exported mutable globals, set on new instances and reset between calls
	values   []uint64 // their snapshot values
	entries  []string
	elem     *list.Element
	released bool
}

type instance struct {
	mod     api.Module
	mem     linearMemory
	gas     api.MutableGlobal
	globals []api.MutableGlobal
	entries map[string]api.Function
}

// moduleCache is an LRU of modules keyed by code id and cost table.
type moduleCache struct {
	mu     sync.Mutex
	closed bool
	size   int
	byKey  map[cacheKey]*module
	lru    *list.List // front: most recent
}

func newModuleCache(size int) *moduleCache {
	return &moduleCache{size: size, byKey: map[cacheKey]*module{}, lru: list.New()}
}

// get returns the module for key with a reference taken, and whether the
// caller created it (and so must load it and close ready).
func (c *moduleCache) get(key cacheKey) (*module, bool, []*module) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.byKey[key]; ok {
		c.lru.MoveToFront(m.elem)
		m.mu.Lock()
		m.refs++
		m.mu.Unlock()
		return m, false, nil
	}
	m := &module{key: key, ready: make(chan struct{}), refs: 2}
	m.elem = c.lru.PushFront(m)
	c.byKey[key] = m
	var evicted []*module
	for c.lru.Len() > c.size {
		old := c.lru.Remove(c.lru.Back()).(*module)
		delete(c.byKey, old.key)
		evicted = append(evicted, old)
	}
	return m, true, evicted
}

// put adds a loaded module (one reference: the cache's) unless its key is
// present, and returns the modules it evicted.
func (c *moduleCache) put(m *module) ([]*module, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false
	}
	if _, ok := c.byKey[m.key]; ok {
		return nil, false
	}
	m.elem = c.lru.PushFront(m)
	c.byKey[m.key] = m
	var evicted []*module
	for c.lru.Len() > c.size {
		old := c.lru.Remove(c.lru.Back()).(*module)
		delete(c.byKey, old.key)
		evicted = append(evicted, old)
	}
	return evicted, true
}

func (c *moduleCache) remove(m *module) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey[m.key] != m {
		return false
	}
	delete(c.byKey, m.key)
	c.lru.Remove(m.elem)
	return true
}

func (c *moduleCache) closeAll(ctx context.Context) {
	c.mu.Lock()
	var all []*module
	for _, m := range c.byKey {
		all = append(all, m)
	}
	c.byKey = map[cacheKey]*module{}
	c.lru.Init()
	c.closed = true
	c.mu.Unlock()
	for _, m := range all {
		<-m.ready
		m.unref(ctx)
	}
}

// module returns the loaded module for codeID with a reference taken.
func (v *VM) module(ctx context.Context, codeID [32]byte, prepared []byte) (*module, error) {
	v.mu.Lock()
	closed := v.closed
	v.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	m, created, evicted := v.modules.get(cacheKey{code: codeID, costs: v.cfg.Costs.Version})
	for _, old := range evicted {
		go func() { <-old.ready; old.unref(context.Background()) }()
	}
	if created {
		m.err = v.load(ctx, m, prepared)
		close(m.ready)
		if m.err != nil && v.modules.remove(m) {
			m.unref(ctx)
		}
	} else {
		<-m.ready
	}
	if m.err != nil {
		m.unref(ctx)
		return nil, m.err
	}
	return m, nil
}

// load makes prepared ready for pooled execution: the code Prepare compiled
// (found again in wazero's in-memory or on-disk compilation cache, compiled
// again only if both lost it) and the snapshot's memory image, which
// instances map copy-on-write, so instantiation copies nothing.
func (v *VM) load(ctx context.Context, m *module, prepared []byte) error {
	code, data, meta, minPages, err := splitPrepared(prepared)
	if err != nil {
		return err
	}
	switch {
	case meta.costs != v.cfg.Costs.Version:
		return invalid("prepared with cost table v%d, VM uses v%d", meta.costs, v.cfg.Costs.Version)
	case meta.pages > v.limits.MemoryPages:
		return invalid("prepared memory of %d pages", meta.pages)
	}
	mem := make([]byte, int(meta.pages)*65536)
	if err := decodeData(data, mem); err != nil {
		return invalid("prepared module: %v", err)
	}
	cm, err := v.rt.CompileModule(ctx, code)
	if err != nil {
		return invalid("%v", err)
	}
	if err := v.setModule(m, cm, mem, minPages, meta); err != nil {
		cm.Close(ctx)
		return err
	}
	return nil
}

// setModule fills m from its compiled code, snapshot memory and metadata.
// On error nothing is kept.
func (v *VM) setModule(m *module, cm wazero.CompiledModule, mem []byte, minPages uint32, meta preparedMeta) error {
	if meta.pages < minPages {
		return invalid("prepared memory of %d pages below the module's minimum %d", meta.pages, minPages)
	}
	img, err := newImage(mem, int(v.limits.MemoryPages)*65536)
	if err != nil {
		return fmt.Errorf("vm: memory image: %w", err)
	}
	m.cm, m.img, m.pages, m.minPages, m.monoNs = cm, img, meta.pages, minPages, meta.monoNs
	m.cfg = wazero.NewModuleConfig().WithName("").WithStartFunctions()
	for name := range cm.ExportedFunctions() {
		if callable(name) {
			m.entries = append(m.entries, name)
		}
	}
	for _, g := range meta.globals {
		name := globalExportPrefix + strconv.Itoa(int(g.index))
		m.globals = append(m.globals, name)
		m.values = append(m.values, g.value)
	}
	return nil
}

// keepPrepared puts what Prepare compiled and snapshotted into the module
// cache under codeID, so the first call finds it loaded. It reports whether
// the cache took cm (it does not when codeID is already there).
func (v *VM) keepPrepared(codeID [32]byte, cm wazero.CompiledModule, mem []byte, minPages uint32, meta preparedMeta) bool {
	m := &module{key: cacheKey{code: codeID, costs: v.cfg.Costs.Version}, ready: make(chan struct{}), refs: 1}
	if err := v.setModule(m, cm, mem, minPages, meta); err != nil {
		return false
	}
	close(m.ready)
	evicted, ok := v.modules.put(m)
	for _, old := range evicted {
		go func() { <-old.ready; old.unref(context.Background()) }()
	}
	if !ok {
		m.img.close()
	}
	return ok
}

func (m *module) unref(ctx context.Context) {
	m.mu.Lock()
	m.refs--
	done := m.refs == 0
	pool := m.pool
	if done {
		m.pool, m.released = nil, true
	}
	m.mu.Unlock()
	if !done {
		return
	}
	for _, in := range pool {
		in.mod.Close(ctx)
	}
	if m.cm != nil {
		m.cm.Close(ctx)
	}
	if m.img != nil {
		m.img.close()
	}
}

// acquire returns an instance in the snapshot state.
func (m *module) acquire(ctx context.Context, rt wazero.Runtime) (*instance, error) {
	m.mu.Lock()
	if n := len(m.pool); n > 0 {
		in := m.pool[n-1]
		m.pool = m.pool[:n-1]
		m.mu.Unlock()
		return in, nil
	}
	m.mu.Unlock()
	alloc := &allocator{img: m.img}
	mod, err := rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, alloc), m.cm, m.cfg)
	if err != nil {
		return nil, fmt.Errorf("vm: instantiate: %w", err)
	}
	// The module's memory starts at its declared minimum; the snapshot is
	// larger when initialization grew it. Growing maps more of the image.
	if m.pages > m.minPages {
		if _, ok := mod.Memory().Grow(m.pages - m.minPages); !ok {
			mod.Close(ctx)
			return nil, fmt.Errorf("vm: instantiate: growing memory to the snapshot's %d pages failed", m.pages)
		}
	}
	in := &instance{
		mod:     mod,
		mem:     alloc.mem,
		gas:     mod.ExportedGlobal(meter.GasGlobalExport).(api.MutableGlobal),
		entries: make(map[string]api.Function, len(m.entries)),
		globals: make([]api.MutableGlobal, len(m.globals)),
	}
	for _, name := range m.entries {
		in.entries[name] = mod.ExportedFunction(name)
	}
	for i, name := range m.globals {
		g, ok := mod.ExportedGlobal(name).(api.MutableGlobal)
		if !ok {
			mod.Close(ctx)
			return nil, invalid("prepared module: %s is not an exported mutable global", name)
		}
		g.Set(m.values[i])
		in.globals[i] = g
	}
	return in, nil
}

// release resets in to the snapshot and pools it, or closes it when it
// cannot be reset (it trapped or grew its memory) or the pool is full.
func (m *module) release(ctx context.Context, in *instance, reuse bool) {
	if reuse {
		if err := in.mem.reset(); err != nil {
			reuse = false
		}
	}
	m.mu.Lock()
	if reuse && !m.released && len(m.pool) < maxPooled {
		for i, g := range in.globals {
			g.Set(m.values[i])
		}
		m.pool = append(m.pool, in)
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	in.mod.Close(ctx)
}
