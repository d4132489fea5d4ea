package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/sos-kernel/sos/kernel/client"
)

// Options configure Run. The zero value is what an operator wants: the
// process's terminal, full screen, the real clock.
type Options struct {
	// Input and Output replace the terminal (tests); nil means stdin and
	// stdout.
	Input  io.Reader
	Output io.Writer
	// NoAltScreen draws inline instead of on the alternate screen.
	NoAltScreen bool
	// Refresh is the fallback refresh interval when no block event arrives
	// (default 5 s).
	Refresh time.Duration
	// Debounce is how long after a block event the status and the shown
	// list are refreshed; events arriving meanwhile share one refresh
	// (default 1 s).
	Debounce time.Duration
	// Now is the clock used for "ago" texts (default time.Now).
	Now func() time.Time
	// Width and Height set the initial size when Output is not a terminal
	// (0: ask the terminal, else 80×24).
	Width, Height int
}

// Reconnect delays of an event stream: doubled after each failure, bounded.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
)

func (o Options) withDefaults() Options {
	if o.Refresh <= 0 {
		o.Refresh = 5 * time.Second
	}
	if o.Debounce <= 0 {
		o.Debounce = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

func (o Options) backoff() backoff { return backoff{min: minBackoff, max: maxBackoff} }

// Run shows the inspector for the nodes at nodeURLs (the first is shown by
// the single-node views; n switches) until the operator quits (q, ctrl+c),
// when it returns nil, or ctx ends, when it returns ctx.Err().
func Run(ctx context.Context, nodeURLs []string, opts Options) error {
	return run(ctx, nodeURLs, opts)
}

// run is Run with extra program options, for tests.
func run(ctx context.Context, nodeURLs []string, opts Options, extra ...tea.ProgramOption) error {
	if len(nodeURLs) == 0 {
		return errors.New("tui: no node URL")
	}
	clients := make([]*client.Client, len(nodeURLs))
	for i, u := range nodeURLs {
		c, err := client.New(u)
		if err != nil {
			return fmt.Errorf("tui: %w", err)
		}
		clients[i] = c
	}
	opts = opts.withDefaults()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream goroutines and pending requests
	m := newModel(fetcher{ctx: rctx, clients: clients}, nodeURLs, opts)
	popts := []tea.ProgramOption{tea.WithContext(rctx)}
	if opts.Input != nil {
		popts = append(popts, tea.WithInput(opts.Input))
	}
	if opts.Output != nil {
		popts = append(popts, tea.WithOutput(opts.Output))
	}
	if opts.Width > 0 && opts.Height > 0 {
		popts = append(popts, tea.WithWindowSize(opts.Width, opts.Height))
	}
	popts = append(popts, extra...)
	_, err := tea.NewProgram(m, popts...).Run()
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, tea.ErrInterrupted):
		return nil // ctrl+c as a signal: the operator quit
	default:
		return fmt.Errorf("tui: %w", err)
	}
}
