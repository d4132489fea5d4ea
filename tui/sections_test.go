package tui

import (
	"fmt"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/sos-kernel/sos/kernel/client"
)

// TestSectionsKeepCursorAndFilter drives the lists every sectioned tab
// shares: a refresh that puts new items in front keeps each cursor on its
// item (by key), one that drops the item clamps the cursor; / filters all
// lists at once and esc clears the filter; the Section key cycles the lists
// only once data is shown.
func TestSectionsKeepCursorAndFilter(t *testing.T) {
	k := defaultKeys()
	s := newSections(2, "")
	press := func(ready bool, names ...string) {
		t.Helper()
		for _, m := range keys(names...) {
			s.handleKey(k, m.(tea.KeyPressMsg), ready, 10)
		}
	}
	fill := func(a, b []string) {
		s.begin()
		for _, x := range a {
			s.add(0, x, "item", x)
		}
		for _, x := range b {
			s.add(1, x, "other", x)
		}
		s.end()
	}
	fill([]string{"c", "b", "a"}, []string{"y", "x"})
	press(true, "down") // list 0 on "b"
	if got := s.selectedKey(0); got != "b" {
		t.Fatalf("after down: %q", got)
	}
	fill([]string{"e", "d", "c", "b", "a"}, []string{"y", "x"})
	if got := s.selectedKey(0); got != "b" || s.lists[0].list.cursor != 3 {
		t.Fatalf("refresh with new items in front: cursor %d on %q, want 3 on b", s.lists[0].list.cursor, got)
	}
	fill([]string{"e", "d"}, []string{"y", "x"})
	if got := s.selectedKey(0); got != "d" {
		t.Fatalf("refresh without b: %q, want the clamped last row d", got)
	}

	press(false, "s")
	if s.sec != 0 {
		t.Fatal("Section moved before the data was shown")
	}
	press(true, "s")
	if s.sec != 1 {
		t.Fatalf("Section: list %d", s.sec)
	}
	press(true, "/", "X", "enter")
	if !s.filtering() || s.n(0) != 0 || s.n(1) != 1 || s.selectedKey(1) != "x" {
		t.Fatalf("filter x: %d and %d rows, selected %q", s.n(0), s.n(1), s.selectedKey(1))
	}
	if got := s.filterLine(styles{}, 40, "Other"); got == "" {
		t.Fatal("no filter line while a filter applies")
	}
	press(true, "esc")
	if s.filtering() || s.n(0) != 2 || s.n(1) != 2 {
		t.Fatalf("esc: filtering %v, %d and %d rows", s.filtering(), s.n(0), s.n(1))
	}
	if got := s.filterLine(styles{}, 40, "Other"); got != "" {
		t.Fatalf("filter line after esc: %q", got)
	}

	one := newSections(1, "")
	one.begin()
	one.add(0, "a", "a")
	one.end()
	if _, switched := one.handleKey(k, keys("s")[0].(tea.KeyPressMsg), true, 10); switched {
		t.Fatal("Section switched a tab of one list")
	}
}

// TestLoadStateTook: a fetch for another node is ignored; a failed one is
// loaded but not ready, and a 404 marks the API missing.
func TestLoadStateTook(t *testing.T) {
	var l loadState
	if l.took(0, 1, nil) || l.loaded {
		t.Fatal("took a fetch for another node")
	}
	if l.took(0, 0, fmt.Errorf("tui: fetch: %w", client.ErrNotFound)) || !l.loaded || !l.noAPI || l.ready() {
		t.Fatalf("404: %+v", l)
	}
	if !l.took(0, 0, nil) || !l.ready() || l.noAPI {
		t.Fatalf("success: %+v", l)
	}
}
