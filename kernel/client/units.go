package client

import (
	"regexp"
	"strconv"
	"strings"
)

// Amounts shown to people use one notation everywhere (CLI text, TUI,
// error messages): the display unit with thousands separated and the denom
// after a space, "999,934.938072 TFLP". JSON keeps base units as decimal
// strings ("999934938072" with denom "uTFLP") so that programs never parse
// the readable form.

// FormatUnits renders a decimal amount of base units divided by 10^exp,
// thousands separated and without trailing zeros: FormatUnits("9300689", 6)
// is "9.300689", FormatUnits("1000000000", 3) is "1,000,000". A string that
// is not a plain decimal number is returned as it is.
func FormatUnits(amount string, exp uint8) string {
	if amount == "" {
		amount = "0"
	}
	for _, r := range amount {
		if r < '0' || r > '9' {
			return amount
		}
	}
	amount = strings.TrimLeft(amount, "0")
	if amount == "" {
		return "0"
	}
	e := int(exp)
	if e == 0 {
		return groupThousands(amount)
	}
	if len(amount) <= e {
		amount = strings.Repeat("0", e-len(amount)+1) + amount
	}
	ip, fp := amount[:len(amount)-e], strings.TrimRight(amount[len(amount)-e:], "0")
	if fp == "" {
		return groupThousands(ip)
	}
	return groupThousands(ip) + "." + fp
}

// groupThousands puts commas between the thousands of an integer string.
func groupThousands(s string) string {
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	lead := len(s) % 3
	if lead > 0 {
		b.WriteString(s[:lead])
	}
	for i := lead; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// DenomTable looks tokens up by base denom to show amounts in display units.
type DenomTable map[string]Denom

// NewDenomTable indexes the chain's tokens (GET /v1/denoms) by base denom.
func NewDenomTable(ds []Denom) DenomTable {
	t := make(DenomTable, len(ds))
	for _, d := range ds {
		t[d.Base] = d
	}
	return t
}

// Format renders an amount of a base denom (a decimal string, as the API
// sends it) for people: "1.5 TFLP" when the denom is known, else in base
// units ("1,500,000 uFOO").
func (t DenomTable) Format(amount, base string) string {
	if d, ok := t[base]; ok && d.Display != "" {
		return FormatUnits(amount, d.Exponent) + " " + d.Display
	}
	return FormatUnits(amount, 0) + " " + base
}

// FormatU64 is Format for an integer amount.
func (t DenomTable) FormatU64(amount uint64, base string) string {
	return t.Format(strconv.FormatUint(amount, 10), base)
}

// FormatCoins renders coins as a comma-separated list of Format.
func (t DenomTable) FormatCoins(cs []Coin) string {
	if len(cs) == 0 {
		return "0"
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = t.Format(c.Amount, c.Denom)
	}
	return strings.Join(parts, ", ")
}

// Display is the display name of a base denom ("TFLP" for "uTFLP"), or
// the base name when it is not known.
func (t DenomTable) Display(base string) string {
	if d, ok := t[base]; ok && d.Display != "" {
		return d.Display
	}
	return base
}

// baseAmount finds "<digits><denom>" in text: an amount in base units as
// the ledger writes it ("have 999934938072uTFLP"), not part of a decimal
// ("0.01uTFLP", a gas price) or of a longer word.
var baseAmount = regexp.MustCompile(`(^|[^0-9.A-Za-z])([0-9]+)([A-Za-z][A-Za-z0-9]*)`)

// Text rewrites the amounts of known base denoms in a message (a receipt's
// error, which is consensus data and keeps base units) into the notation
// people read: "have 999934938072uTFLP" becomes "have 999,934.938072 TFLP".
// Everything else is left as it is.
func (t DenomTable) Text(s string) string {
	if len(t) == 0 {
		return s
	}
	return baseAmount.ReplaceAllStringFunc(s, func(m string) string {
		sub := baseAmount.FindStringSubmatch(m)
		d, ok := t[sub[3]]
		if !ok || d.Display == "" || d.Display == d.Base {
			return m
		}
		return sub[1] + t.Format(sub[2], sub[3])
	})
}
