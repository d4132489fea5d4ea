package tui

import "charm.land/bubbles/v2/key"

// keyMap holds every binding; tabs pick the ones they use for the help.
type keyMap struct {
	Quit, Help, NextTab, PrevTab, Tabs, NextNode, Refresh key.Binding
	Up, Down, PageUp, PageDown, Top, Bottom               key.Binding
	Enter, Back, Filter, Search, Hex, Section             key.Binding
}

func defaultKeys() keyMap {
	b := func(keys []string, help, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	return keyMap{
		Quit:     b([]string{"q", "ctrl+c"}, "q", "quit"),
		Help:     b([]string{"?"}, "?", "all keys"),
		NextTab:  b([]string{"tab", "right", "l"}, "tab/→", "next view"),
		PrevTab:  b([]string{"shift+tab", "left", "h"}, "shift+tab/←", "previous view"),
		Tabs:     b([]string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "0"}, "1-9,0", "go to view"),
		NextNode: b([]string{"n"}, "n", "next node"),
		Refresh:  b([]string{"r"}, "r", "refresh now"),
		Up:       b([]string{"up", "k"}, "↑/k", "up"),
		Down:     b([]string{"down", "j"}, "↓/j", "down"),
		PageUp:   b([]string{"pgup", "ctrl+u"}, "pgup", "page up"),
		PageDown: b([]string{"pgdown", "ctrl+d", "space"}, "pgdn", "page down"),
		Top:      b([]string{"home", "g"}, "g/home", "newest / top"),
		Bottom:   b([]string{"end", "G"}, "G/end", "oldest / bottom"),
		Enter:    b([]string{"enter"}, "enter", "open"),
		Back:     b([]string{"esc", "backspace"}, "esc", "back"),
		Filter:   b([]string{"/"}, "/", "filter list"),
		Search:   b([]string{"/"}, "/", "find address"),
		Hex:      b([]string{"x"}, "x", "hex/text"),
		Section:  b([]string{"s", "S"}, "s/S", "next/previous list"),
	}
}

// navKeys are the list movement bindings every list view shares.
func (k keyMap) nav() []key.Binding {
	return []key.Binding{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom}
}
