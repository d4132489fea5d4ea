package tui

import (
	"fmt"
	"image/color"
	"math"
	"strconv"
	"strings"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/sos-kernel/sos/kernel/client"
)

// styles are the few colours the inspector uses; everything else is plain
// text so that a frame stays readable without colour.
type styles struct {
	tabActive, tabIdle lipgloss.Style
	header             lipgloss.Style // column headers and section titles
	selected           lipgloss.Style // the row under the cursor
	dim                lipgloss.Style
	good, warn, bad    lipgloss.Style
	label              lipgloss.Style
}

func defaultStyles() styles {
	c := func(s string) color.Color { return lipgloss.Color(s) }
	return styles{
		tabActive: lipgloss.NewStyle().Bold(true).Foreground(c("#000000")).Background(c("#7dcfff")),
		tabIdle:   lipgloss.NewStyle().Foreground(c("#a9b1d6")),
		header:    lipgloss.NewStyle().Bold(true).Foreground(c("#7aa2f7")),
		selected:  lipgloss.NewStyle().Reverse(true),
		dim:       lipgloss.NewStyle().Foreground(c("#737aa2")),
		good:      lipgloss.NewStyle().Foreground(c("#9ece6a")),
		warn:      lipgloss.NewStyle().Foreground(c("#e0af68")),
		bad:       lipgloss.NewStyle().Bold(true).Foreground(c("#ff0000")),
		label:     lipgloss.NewStyle().Foreground(c("#bb9af7")),
	}
}

// fit cuts s (which may hold ANSI styles) to at most w cells.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if ansi.StringWidth(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, "…")
}

// pad cuts or right-pads s to exactly w cells.
func pad(s string, w int) string {
	s = fit(s, w)
	if n := w - ansi.StringWidth(s); n > 0 {
		s += strings.Repeat(" ", n)
	}
	return s
}

// padLeft cuts or left-pads s to exactly w cells (numbers align right).
func padLeft(s string, w int) string {
	s = fit(s, w)
	if n := w - ansi.StringWidth(s); n > 0 {
		s = strings.Repeat(" ", n) + s
	}
	return s
}

// frame turns lines into exactly h lines of at most w cells: a terminal never
// wraps what we draw.
func frame(lines []string, w, h int) string {
	if len(lines) > h {
		lines = lines[:h]
	}
	var b strings.Builder
	for i := 0; i < h; i++ {
		if i > 0 {
			b.WriteByte('\n')
		}
		if i < len(lines) {
			b.WriteString(fit(lines[i], w))
		}
	}
	return b.String()
}

// splitLines splits a rendered block into lines.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// column is one column of a table: a title, a width and whether numbers
// align right.
type column struct {
	title string
	width int
	right bool
}

// layoutColumns gives the last column whatever width is left (at least its
// own width) so tables use wide terminals.
func layoutColumns(cols []column, total int) []column {
	out := append([]column(nil), cols...)
	used := 0
	for _, c := range out[:len(out)-1] {
		used += c.width + 1
	}
	if rest := total - used; rest > out[len(out)-1].width {
		out[len(out)-1].width = rest
	}
	return out
}

func tableRow(cols []column, cells ...string) string {
	var b strings.Builder
	for i, c := range cols {
		if i > 0 {
			b.WriteByte(' ')
		}
		cell := ""
		if i < len(cells) {
			cell = cells[i]
		}
		if c.right {
			b.WriteString(padLeft(cell, c.width))
		} else {
			b.WriteString(pad(cell, c.width))
		}
	}
	return strings.TrimRight(b.String(), " ")
}

func tableHeader(st styles, cols []column) string {
	titles := make([]string, len(cols))
	for i, c := range cols {
		titles[i] = c.title
	}
	return st.header.Render(tableRow(cols, titles...))
}

// selRow highlights the row under the cursor across the full width; the
// row's own colours are dropped so the highlight reads as one bar.
func selRow(st styles, row string, w int) string {
	return st.selected.Render(pad(ansi.Strip(row), w))
}

// short abbreviates a hash or an address to its first n characters.
func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// shortAddr keeps both ends of a bech32 address: the prefix says what it is,
// the tail is what people compare.
func shortAddr(s string, n int) string {
	if len(s) <= n || n < 8 {
		return s
	}
	head := (n - 1) / 2
	tail := n - 1 - head
	return s[:head] + "…" + s[len(s)-tail:]
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// formatUnits renders a decimal amount of base units in display units:
// amount / 10^exp, thousands separated, without trailing zeros (the one
// notation of every text surface, client.FormatUnits).
func formatUnits(amount string, exp uint8) string { return client.FormatUnits(amount, exp) }

// group puts separators between thousands of an integer string.
func group(s string) string { return client.FormatUnits(s, 0) }

// denomTable maps base denoms to their display form.
type denomTable client.DenomTable

func newDenomTable(ds []client.Denom) denomTable { return denomTable(client.NewDenomTable(ds)) }

// coin renders an amount of a base denom in display units when the denom is
// known ("1.5 TFLP"), else in base units ("1,500,000 uFOO").
func (t denomTable) coin(amount, base string) string {
	return client.DenomTable(t).Format(amount, base)
}

func (t denomTable) display(base string) string { return client.DenomTable(t).Display(base) }

// bytesHuman renders a byte count in binary units.
func bytesHuman(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// rate renders a per-second rate compactly.
func rate(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.1fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

// ago renders how long before now t was, coarsely.
func ago(now time.Time, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Second:
		return fmt.Sprintf("%dms ago", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds ago", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
}

func timeMs(ms int64) time.Time { return time.UnixMilli(ms) }

func blockClock(ms int64) string {
	if ms == 0 {
		return "—"
	}
	return time.UnixMilli(ms).UTC().Format("15:04:05")
}

func blockDate(ms int64) string {
	if ms == 0 {
		return "—"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05.000 UTC")
}

var sparkRunes = []rune("▁▂▃▄▅▆▇█")

// sparkline draws values as one row of block characters scaled to their
// maximum; zero is the lowest bar so an idle chain still shows a baseline.
func sparkline(vals []float64) string {
	peak := 0.0
	for _, v := range vals {
		peak = math.Max(peak, v)
	}
	out := make([]rune, len(vals))
	for i, v := range vals {
		idx := 0
		if peak > 0 {
			idx = int(math.Round(v / peak * float64(len(sparkRunes)-1)))
		}
		out[i] = sparkRunes[idx]
	}
	return string(out)
}

// plainCode turns a receipt's code name into words: "insufficient_funds"
// reads "insufficient funds".
func plainCode(name string) string {
	return strings.ReplaceAll(name, "_", " ")
}

// outcome says in words how a transaction ended.
func outcome(code uint32, codeName, errText string) string {
	if code == 0 {
		return "ok"
	}
	s := "failed"
	if codeName != "" {
		s += ": " + plainCode(codeName)
	}
	s += fmt.Sprintf(" (code %d)", code)
	if errText != "" {
		s += " — " + errText
	}
	return s
}
