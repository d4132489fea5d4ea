package tui

import (
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
)

// scroller is a cursor over n rows shown rows at a time.
type scroller struct {
	cursor, offset int
}

// move handles the navigation keys; it reports whether msg was one.
func (s *scroller) move(k keyMap, msg tea.KeyPressMsg, n, rows int) bool {
	page := max(rows-1, 1)
	switch {
	case key.Matches(msg, k.Up):
		s.cursor--
	case key.Matches(msg, k.Down):
		s.cursor++
	case key.Matches(msg, k.PageUp):
		s.cursor -= page
	case key.Matches(msg, k.PageDown):
		s.cursor += page
	case key.Matches(msg, k.Top):
		s.cursor = 0
	case key.Matches(msg, k.Bottom):
		s.cursor = n - 1
	default:
		return false
	}
	s.clamp(n)
	s.offset = s.start(n, rows)
	return true
}

func (s *scroller) clamp(n int) {
	s.cursor = min(max(s.cursor, 0), max(n-1, 0))
}

// start is the first row to draw so the cursor is visible; View uses it
// without storing it, Update stores it so scrolling is sticky.
func (s scroller) start(n, rows int) int {
	rows = max(rows, 1)
	off := s.offset
	if s.cursor < off {
		off = s.cursor
	}
	if s.cursor >= off+rows {
		off = s.cursor - rows + 1
	}
	return max(0, min(off, n-rows))
}

// filterBox is the one-line text box behind "/".
type filterBox struct {
	in textinput.Model
}

func newFilterBox(prompt, placeholder string) filterBox {
	in := textinput.New()
	in.Prompt = prompt
	in.Placeholder = placeholder
	in.CharLimit = 128
	return filterBox{in: in}
}

func (f *filterBox) focused() bool { return f.in.Focused() }
func (f *filterBox) value() string { return f.in.Value() }

// query is what the filter matches: the typed text, trimmed and lower-cased
// (the searchable text of each row is lower-cased when it is built).
func (f *filterBox) query() string { return strings.ToLower(strings.TrimSpace(f.value())) }

// nextSection is the list a Section key moves to among n: the next one,
// the previous one for "S".
func nextSection(msg tea.KeyPressMsg, cur, n int) int {
	if msg.String() == "S" {
		return (cur + n - 1) % n
	}
	return (cur + 1) % n
}

// matchHay returns the positions of the rows whose searchable text contains
// q, reusing match's storage; none for an empty query.
func matchHay(match []int, hay []string, q string) []int {
	match = match[:0]
	if q == "" {
		return match
	}
	for i, h := range hay {
		if strings.Contains(h, q) {
			match = append(match, i)
		}
	}
	return match
}

func (f *filterBox) open() tea.Cmd { return f.in.Focus() }

func (f *filterBox) clear() {
	f.in.Reset()
	f.in.Blur()
}

// filterEvent is what a key did to the box.
type filterEvent int

const (
	filterTyped  filterEvent = iota // the text changed (or the cursor moved)
	filterApply                     // enter: keep the text, leave the box
	filterCancel                    // esc: clear the text, leave the box
)

func (f *filterBox) handle(msg tea.KeyPressMsg) (filterEvent, tea.Cmd) {
	switch msg.String() {
	case "enter":
		f.in.Blur()
		return filterApply, nil
	case "esc":
		f.clear()
		return filterCancel, nil
	}
	var cmd tea.Cmd
	f.in, cmd = f.in.Update(msg)
	return filterTyped, cmd
}

// tick passes non-key messages (the cursor's blink) to the box.
func (f *filterBox) tick(msg tea.Msg) tea.Cmd {
	if _, isKey := msg.(tea.KeyPressMsg); isKey || !f.in.Focused() {
		return nil
	}
	var cmd tea.Cmd
	f.in, cmd = f.in.Update(msg)
	return cmd
}

func (f *filterBox) view(w int) string {
	f.in.SetWidth(max(w-len(f.in.Prompt)-1, 1))
	return f.in.View()
}

func itoa(i int) string       { return strconv.Itoa(i) }
func u64(v uint64) string     { return strconv.FormatUint(v, 10) }
func gasText(v uint64) string { return group(u64(v)) }
