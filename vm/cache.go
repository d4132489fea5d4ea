package vm

import (
	"container/list"
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/sos-kernel/sos/vm/internal/wasmbin"
	"github.com/sos-kernel/sos/vm/meter"
)

// maxPooled bounds the idle instances kept per module: as many as a chain
// of nested calls can hold at once (MaxCallDepth instances of one code),
// so such a chain does not create instances on every transaction.
const maxPooled = MaxCallDepth

type cacheKey struct {
	code  [32]byte
	costs uint32
}

// module is a compiled prepared module with its memory image and a pool of
// idle instances whose state equals the snapshot.
type module struct {
	key    cacheKey
	ready  chan struct{}
	err    error
	cm     wazero.CompiledModule
	img    *image
	pages  uint32
	monoNs int64
	cfg    wazero.ModuleConfig

	mu       sync.Mutex
	refs     int // the cache's reference plus one per Call in flight
	pool     []*instance
	globals  []string // exported mutable globals, reset between calls
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
	mu    sync.Mutex
	size  int
	byKey map[cacheKey]*module
	lru   *list.List // front: most recent
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

// load compiles prepared for pooled execution: the data segments become a
// memory image that instances map copy-on-write, so the compiled module
// itself carries no data section and instantiation copies nothing.
func (v *VM) load(ctx context.Context, m *module, prepared []byte) error {
	wm, err := wasmbin.Decode(prepared)
	if err != nil {
		return invalid("prepared module: %v", err)
	}
	var meta preparedMeta
	found := false
	for _, s := range wm.Sections {
		if s.ID == wasmbin.SectionCustom {
			if meta, found = decodeMeta(s.Payload); found {
				break
			}
		}
	}
	switch {
	case !found:
		return invalid("module was not produced by Prepare (no %s section)", preparedSection)
	case meta.format != preparedFormat:
		return invalid("prepared module format %d, want %d", meta.format, preparedFormat)
	case meta.costs != v.cfg.Costs.Version:
		return invalid("prepared with cost table v%d, VM uses v%d", meta.costs, v.cfg.Costs.Version)
	case meta.pages > v.limits.MemoryPages:
		return invalid("prepared memory of %d pages", meta.pages)
	}
	data := make([]byte, int(meta.pages)*65536)
	if i := wm.Find(wasmbin.SectionData); i >= 0 {
		if err := decodeData(wm.Sections[i].Payload, data); err != nil {
			return invalid("prepared module: %v", err)
		}
		wm.Sections = append(wm.Sections[:i:i], wm.Sections[i+1:]...)
	}
	img, err := newImage(data, int(v.limits.MemoryPages)*65536)
	if err != nil {
		return fmt.Errorf("vm: memory image: %w", err)
	}
	cm, err := v.rt.CompileModule(ctx, wm.Encode())
	if err != nil {
		img.close()
		return invalid("%v", err)
	}
	m.cm, m.img, m.pages, m.monoNs = cm, img, meta.pages, meta.monoNs
	m.cfg = wazero.NewModuleConfig().WithName("").WithStartFunctions()
	for name := range cm.ExportedFunctions() {
		if !strings.HasPrefix(name, reservedPrefix) {
			m.entries = append(m.entries, name)
		}
	}
	if i := wm.Find(wasmbin.SectionExport); i >= 0 {
		exports, err := wasmbin.DecodeExports(wm.Sections[i].Payload)
		if err != nil {
			return invalid("prepared module: %v", err)
		}
		for _, e := range exports {
			if e.Kind == wasmbin.KindGlobal && strings.HasPrefix(e.Name, globalExportPrefix) {
				m.globals = append(m.globals, e.Name)
			}
		}
	}
	return nil
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
	values := make([]uint64, len(m.globals))
	for i, name := range m.globals {
		in.globals[i] = mod.ExportedGlobal(name).(api.MutableGlobal)
		values[i] = in.globals[i].Get()
	}
	m.mu.Lock()
	if m.values == nil {
		m.values = values
	}
	m.mu.Unlock()
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
