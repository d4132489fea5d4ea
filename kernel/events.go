package kernel

import (
	"encoding/json"
	"sync"

	"github.com/sos-kernel/sos/kernel/client"
)

// Events fans out chain events (blocks, transactions, subsystem events) to
// API stream subscribers. A subscriber that falls behind by more than its
// buffer is dropped (its channel closed) rather than slowing the chain; the
// client reconnects and resynchronizes from the API.
type Events struct {
	mu   sync.Mutex
	subs map[chan client.StreamEvent]struct{}
}

// NewEvents returns an empty hub.
func NewEvents() *Events { return &Events{subs: make(map[chan client.StreamEvent]struct{})} }

// Subscribe returns a channel of events and a function to unsubscribe.
func (e *Events) Subscribe(buffer int) (<-chan client.StreamEvent, func()) {
	ch := make(chan client.StreamEvent, buffer)
	e.mu.Lock()
	e.subs[ch] = struct{}{}
	e.mu.Unlock()
	return ch, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if _, ok := e.subs[ch]; ok {
			delete(e.subs, ch)
			close(ch)
		}
	}
}

// Listening reports whether anyone is subscribed, so publishers can skip
// building events nobody reads.
func (e *Events) Listening() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.subs) > 0
}

// Publish sends an event to every subscriber without blocking.
func (e *Events) Publish(typ string, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		return
	}
	ev := client.StreamEvent{Type: typ, Data: b}
	e.mu.Lock()
	defer e.mu.Unlock()
	for ch := range e.subs {
		select {
		case ch <- ev:
		default:
			delete(e.subs, ch)
			close(ch)
		}
	}
}
