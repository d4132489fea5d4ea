package tui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// loadState is what a tab knows of its last fetch: whether one arrived,
// whether the node lacks the API (404) and the error, if any.
type loadState struct {
	loaded bool
	noAPI  bool
	err    error
}

// took records the outcome of a fetch for node; it reports whether the
// tab should take the data in: the fetch is for the node the tab shows and
// it succeeded. A fetch for another node (the focus moved on) is ignored.
func (l *loadState) took(focus, node int, err error) bool {
	if node != focus {
		return false
	}
	l.loaded, l.noAPI, l.err = true, notFound(err), err
	return err == nil
}

// ready is whether the tab shows data the keys can act on.
func (l *loadState) ready() bool { return l.loaded && l.err == nil }

// listSection is one list of a tab: each row's key (what keeps the cursor
// on its item across refreshes), its searchable text (lower case), the
// filter's matches and the cursor. Row i of the list is item i in the
// order the tab added them.
type listSection struct {
	keys  []string
	hay   []string
	match []int
	list  scroller
}

// sections are the lists of a tab behind one filter box: the Section key
// cycles the shown list, / filters every list at once, esc clears the
// filter, the navigation keys move the shown list's cursor. A refresh
// rebuilds the rows between begin and end, which put each list's cursor
// back on the item it was on.
type sections struct {
	sec    int // the list shown
	lists  []listSection
	filter filterBox
	cur    []string // each list's selected key at begin
}

func newSections(n int, placeholder string) sections {
	return sections{lists: make([]listSection, n), filter: newFilterBox("/ ", placeholder)}
}

func (s *sections) typing() bool    { return s.filter.focused() }
func (s *sections) filtering() bool { return s.filter.value() != "" }

// filterShown is whether the filter box takes a line above the list.
func (s *sections) filterShown() bool { return s.filter.focused() || s.filtering() }

// n is how many rows list l shows.
func (s *sections) n(l int) int {
	if s.filtering() {
		return len(s.lists[l].match)
	}
	return len(s.lists[l].hay)
}

// index is the item of row i of list l.
func (s *sections) index(l, i int) int {
	if s.filtering() {
		return s.lists[l].match[i]
	}
	return i
}

// selected is the item under list l's cursor (-1: the list shows none).
func (s *sections) selected(l int) int {
	if s.n(l) == 0 {
		return -1
	}
	return s.index(l, min(s.lists[l].list.cursor, s.n(l)-1))
}

// selectedKey is the key of the item under list l's cursor ("": none).
func (s *sections) selectedKey(l int) string {
	if i := s.selected(l); i >= 0 {
		return s.lists[l].keys[i]
	}
	return ""
}

func (s *sections) rematch() {
	q := s.filter.query()
	for l := range s.lists {
		s.lists[l].match = matchHay(s.lists[l].match, s.lists[l].hay, q)
	}
}

// begin starts a refresh: it remembers what each cursor is on and empties
// the lists for add.
func (s *sections) begin() {
	s.cur = s.cur[:0]
	for l := range s.lists {
		s.cur = append(s.cur, s.selectedKey(l))
		s.lists[l].keys, s.lists[l].hay = s.lists[l].keys[:0], s.lists[l].hay[:0]
	}
}

// add appends an item to list l: its key and the words the filter searches.
func (s *sections) add(l int, key string, hay ...string) {
	s.lists[l].keys = append(s.lists[l].keys, key)
	s.lists[l].hay = append(s.lists[l].hay, strings.ToLower(strings.Join(hay, " ")))
}

// end finishes a refresh: the filter applies to the new rows and each
// cursor goes back to its item when the item is still listed.
func (s *sections) end() {
	s.rematch()
	for l := range s.lists {
		ls := &s.lists[l]
		if l < len(s.cur) && s.cur[l] != "" {
			for i := range s.n(l) {
				if ls.keys[s.index(l, i)] == s.cur[l] {
					ls.list.cursor = i
					break
				}
			}
		}
		ls.list.clamp(s.n(l))
	}
}

// handleKey handles the keys every sectioned tab shares: typing in the filter
// box, Section, /, esc (clear the filter) and navigation over rows rows.
// ready is whether the tab shows data. It reports whether the Section key
// moved to another list.
func (s *sections) handleKey(k keyMap, msg tea.KeyPressMsg, ready bool, rows int) (cmd tea.Cmd, switched bool) {
	if s.filter.focused() {
		ev, cmd := s.filter.handle(msg)
		if ev != filterApply {
			s.rematch()
			for l := range s.lists {
				s.lists[l].list = scroller{}
			}
		}
		return cmd, false
	}
	switch {
	case key.Matches(msg, k.Section) && ready && len(s.lists) > 1:
		s.sec = nextSection(msg, s.sec, len(s.lists))
		return nil, true
	case key.Matches(msg, k.Filter) && ready:
		return s.filter.open(), false
	case key.Matches(msg, k.Back) && s.filtering():
		s.filter.clear()
		s.rematch()
		for l := range s.lists {
			s.lists[l].list.clamp(s.n(l))
		}
	default:
		s.lists[s.sec].list.move(k, msg, s.n(s.sec), rows)
	}
	return nil, false
}

// filterLine is the line under the list bar while the filter box is open
// or a filter applies ("" when neither): the box itself, or the filter and
// how many rows of the shown list (named name, "" for a tab of one list)
// match it.
func (s *sections) filterLine(st styles, w int, name string) string {
	if s.filter.focused() {
		return s.filter.view(w)
	}
	v := s.filter.value()
	if v == "" {
		return ""
	}
	in := ""
	if name != "" {
		in = " in " + name
	}
	return st.label.Render("filter: ") + v + st.dim.Render(fmt.Sprintf("  (%d match%s, esc clears)", s.n(s.sec), in))
}

// bar names the lists with their sizes (all items, filtered or not),
// highlights the shown one and ends with the keys' hint.
func (s *sections) bar(st styles, names []string, hint string) string {
	var b strings.Builder
	for l, name := range names {
		label := fmt.Sprintf(" %s %d ", name, len(s.lists[l].hay))
		if l == s.sec {
			b.WriteString(st.tabActive.Render(label))
		} else {
			b.WriteString(st.tabIdle.Render(label))
		}
	}
	return b.String() + st.dim.Render("  "+hint)
}

// rowLines draws the rows of the shown list that fit in rows lines, the
// cursor's row in view and highlighted: cells gives row i's table cells
// after the cursor mark.
func (s *sections) rowLines(st styles, cols []column, w, rows int, cells func(i int) []string) []string {
	l := &s.lists[s.sec]
	n := s.n(s.sec)
	start := l.list.start(n, rows)
	var out []string
	for i := start; i < min(n, start+rows); i++ {
		mark := " "
		if i == l.list.cursor {
			mark = "▸"
		}
		row := tableRow(cols, append([]string{mark}, cells(i)...)...)
		if i == l.list.cursor {
			row = selRow(st, row, w)
		}
		out = append(out, row)
	}
	return out
}
