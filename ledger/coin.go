package ledger

import (
	"errors"
	"fmt"
	"math/bits"
	"sort"
	"strconv"
	"strings"
)

// Token amounts are integers in base units: 1 TFLP = 10^6 uTFLP. Balances
// are uint64 (up to 1.8·10^13 whole tokens at exponent 6); every addition is
// checked so an overflow is an error, never a wrap.

// ErrOverflow is returned when an amount does not fit in 64 bits.
var ErrOverflow = errors.New("amount overflow")

// ErrInsufficientFunds is returned when a balance is too small.
var ErrInsufficientFunds = errors.New("insufficient funds")

// ErrUnknownDenom is returned for a denomination the chain does not declare.
var ErrUnknownDenom = errors.New("unknown denom")

// Denom declares a token: its display unit, base unit and the power of ten
// between them. Balances are always kept in Base.
type Denom struct {
	Display     string `json:"display" cbor:"1,keyasint"`  // "TFLP"
	Base        string `json:"base" cbor:"2,keyasint"`     // "uTFLP"
	Exponent    uint8  `json:"exponent" cbor:"3,keyasint"` // 6
	Description string `json:"description,omitempty" cbor:"4,keyasint,omitempty"`
}

// DefaultDenoms are declared on every chain: compute, bandwidth, energy and storage.
func DefaultDenoms() []Denom {
	return []Denom{
		{Display: "TFLP", Base: "uTFLP", Exponent: 6, Description: "compute, teraflops"},
		{Display: "TBS", Base: "uTBS", Exponent: 6, Description: "bandwidth, terabits per second"},
		{Display: "KWTT", Base: "uKWTT", Exponent: 6, Description: "energy, kilojoules per second"},
		{Display: "STOR", Base: "uSTOR", Exponent: 6, Description: "storage, gigabyte-epochs"},
	}
}

// DefaultFeeDenom is the base denom fees are paid in unless a tx says otherwise:
// gas measures compute.
const DefaultFeeDenom = "uTFLP"

// Denoms resolves display and base names of the chain's declared tokens.
type Denoms struct {
	list   []Denom
	byName map[string]Denom // both display and base names
}

// NewDenoms checks a denom list: names are letters/digits, unique, exponent ≤ 18.
func NewDenoms(list []Denom) (*Denoms, error) {
	d := &Denoms{byName: make(map[string]Denom, 2*len(list))}
	for _, dn := range list {
		if !validDenomName(dn.Display) || !validDenomName(dn.Base) {
			return nil, fmt.Errorf("ledger: denom %q/%q: names must be 2-16 letters or digits, starting with a letter", dn.Display, dn.Base)
		}
		if dn.Exponent > 18 {
			return nil, fmt.Errorf("ledger: denom %q: exponent %d > 18", dn.Display, dn.Exponent)
		}
		if dn.Exponent == 0 && dn.Display != dn.Base {
			return nil, fmt.Errorf("ledger: denom %q: exponent 0 needs display == base", dn.Display)
		}
		for _, n := range []string{dn.Display, dn.Base} {
			if prev, dup := d.byName[n]; dup && prev != dn {
				return nil, fmt.Errorf("ledger: denom name %q declared twice", n)
			}
			d.byName[n] = dn
		}
		d.list = append(d.list, dn)
	}
	sort.Slice(d.list, func(i, j int) bool { return d.list[i].Base < d.list[j].Base })
	return d, nil
}

func validDenomName(s string) bool {
	if len(s) < 2 || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		isLetter := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if i == 0 && !isLetter {
			return false
		}
		if !isLetter && !(c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// List returns the declared denoms sorted by base name.
func (d *Denoms) List() []Denom { return append([]Denom(nil), d.list...) }

// IsBase reports whether name is the base unit of a declared denom.
func (d *Denoms) IsBase(name string) bool {
	dn, ok := d.byName[name]
	return ok && dn.Base == name
}

// Lookup finds a denom by display or base name.
func (d *Denoms) Lookup(name string) (Denom, bool) {
	dn, ok := d.byName[name]
	return dn, ok
}

// Coin is an amount of one token in base units.
type Coin struct {
	_      struct{} `cbor:",toarray"`
	Denom  string   `json:"denom"`
	Amount uint64   `json:"amount,string"`
}

func (c Coin) String() string { return strconv.FormatUint(c.Amount, 10) + c.Denom }

// Coins is a set of coins sorted by denom, each denom once, no zero amounts.
type Coins []Coin

// Validate checks the Coins invariants.
func (cs Coins) Validate() error {
	for i, c := range cs {
		if c.Amount == 0 {
			return fmt.Errorf("ledger: coins: zero amount of %s", c.Denom)
		}
		if i > 0 && cs[i-1].Denom >= c.Denom {
			return fmt.Errorf("ledger: coins: not sorted or duplicate denom %s", c.Denom)
		}
	}
	return nil
}

// AmountOf returns the amount of a base denom.
func (cs Coins) AmountOf(denom string) uint64 {
	for _, c := range cs {
		if c.Denom == denom {
			return c.Amount
		}
	}
	return 0
}

func (cs Coins) String() string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, ",")
}

// NormalizeCoins sorts and merges coins, dropping zeros; it fails on overflow.
func NormalizeCoins(in []Coin) (Coins, error) {
	m := make(map[string]uint64, len(in))
	for _, c := range in {
		s, carry := bits.Add64(m[c.Denom], c.Amount, 0)
		if carry != 0 {
			return nil, fmt.Errorf("ledger: coins: %s: %w", c.Denom, ErrOverflow)
		}
		m[c.Denom] = s
	}
	out := make(Coins, 0, len(m))
	for d, a := range m {
		if a > 0 {
			out = append(out, Coin{Denom: d, Amount: a})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Denom < out[j].Denom })
	return out, nil
}

// ParseAmount parses "25TFLP", "0.5TFLP" or "1000uTFLP" into base units of a
// declared denom. Fractions finer than the base unit and amounts above 2^64-1
// base units are errors.
func (d *Denoms) ParseAmount(s string) (Coin, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, name := s[:i], s[i:]
	if num == "" || name == "" {
		return Coin{}, fmt.Errorf("ledger: amount %q: want a number followed by a denom, e.g. 25TFLP", s)
	}
	dn, ok := d.byName[name]
	if !ok {
		return Coin{}, fmt.Errorf("ledger: amount %q: %w %q", s, ErrUnknownDenom, name)
	}
	exp := 0
	if name == dn.Display {
		exp = int(dn.Exponent)
	}
	v, err := parseFixed(num, exp)
	if err != nil {
		return Coin{}, fmt.Errorf("ledger: amount %q: %w", s, err)
	}
	return Coin{Denom: dn.Base, Amount: v}, nil
}

// ParseCoins parses a comma-separated list of amounts ("1000000TFLP,5000KWTT").
func (d *Denoms) ParseCoins(s string) (Coins, error) {
	if strings.TrimSpace(s) == "" {
		return Coins{}, nil
	}
	var list []Coin
	for _, part := range strings.Split(s, ",") {
		c, err := d.ParseAmount(part)
		if err != nil {
			return nil, err
		}
		list = append(list, c)
	}
	return NormalizeCoins(list)
}

// parseFixed parses a non-negative decimal and scales it by 10^exp exactly.
func parseFixed(num string, exp int) (uint64, error) {
	intPart, frac, hasDot := strings.Cut(num, ".")
	if strings.Contains(frac, ".") || intPart == "" && frac == "" || hasDot && frac == "" {
		return 0, fmt.Errorf("malformed number %q", num)
	}
	if len(frac) > exp {
		if strings.TrimRight(frac[exp:], "0") != "" {
			return 0, fmt.Errorf("%q has more than %d decimal places", num, exp)
		}
		frac = frac[:exp]
	}
	digits := intPart + frac + strings.Repeat("0", exp-len(frac))
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, ErrOverflow
	}
	return v, nil
}

// FormatAmount renders base units in the display unit ("25.5TFLP").
func (d *Denoms) FormatAmount(c Coin) string {
	dn, ok := d.byName[c.Denom]
	if !ok || dn.Exponent == 0 {
		return c.String()
	}
	s := strconv.FormatUint(c.Amount, 10)
	e := int(dn.Exponent)
	if len(s) <= e {
		s = strings.Repeat("0", e-len(s)+1) + s
	}
	whole, frac := s[:len(s)-e], strings.TrimRight(s[len(s)-e:], "0")
	if frac != "" {
		whole += "." + frac
	}
	return whole + dn.Display
}

// GasPrice is a price per unit of gas in a base denom, with six decimal places
// (Micro = price × 10^6) so that prices below one base unit per gas, such as
// 0.01uTFLP, are exact.
type GasPrice struct {
	_     struct{} `cbor:",toarray"`
	Denom string   `json:"denom"`
	Micro uint64   `json:"micro_amount,string"`
}

// gasPriceScale is the fixed-point scale of GasPrice.Micro.
const gasPriceScale = 1_000_000

// Fee returns ceil(gas × price) in base units, or ErrOverflow.
func (p GasPrice) Fee(gas uint64) (uint64, error) {
	hi, lo := bits.Mul64(gas, p.Micro)
	if hi >= gasPriceScale {
		return 0, ErrOverflow
	}
	q, r := bits.Div64(hi, lo, gasPriceScale)
	if r != 0 {
		if q == ^uint64(0) {
			return 0, ErrOverflow
		}
		q++
	}
	return q, nil
}

// Less reports whether p is cheaper than q (same denom assumed).
func (p GasPrice) Less(q GasPrice) bool { return p.Micro < q.Micro }

func (p GasPrice) String() string {
	whole, frac := p.Micro/gasPriceScale, p.Micro%gasPriceScale
	s := strconv.FormatUint(whole, 10)
	if frac != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%06d", frac), "0")
	}
	return s + p.Denom
}

// ParseGasPrice parses "1uTFLP", "0.01uTFLP" or "0.000001TFLP" (converted to
// the base denom).
func (d *Denoms) ParseGasPrice(s string) (GasPrice, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, name := s[:i], s[i:]
	if num == "" || name == "" {
		return GasPrice{}, fmt.Errorf("ledger: gas price %q: want a number followed by a denom, e.g. 0.01uTFLP", s)
	}
	dn, ok := d.byName[name]
	if !ok {
		return GasPrice{}, fmt.Errorf("ledger: gas price %q: %w %q", s, ErrUnknownDenom, name)
	}
	exp := 6
	if name == dn.Display {
		exp += int(dn.Exponent)
	}
	v, err := parseFixed(num, exp)
	if err != nil {
		return GasPrice{}, fmt.Errorf("ledger: gas price %q: %w", s, err)
	}
	return GasPrice{Denom: dn.Base, Micro: v}, nil
}

// ParseGasPrices parses a comma-separated list of minimum gas prices.
func (d *Denoms) ParseGasPrices(s string) ([]GasPrice, error) {
	var out []GasPrice
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		p, err := d.ParseGasPrice(part)
		if err != nil {
			return nil, err
		}
		if seen[p.Denom] {
			return nil, fmt.Errorf("ledger: gas prices %q: %s listed twice", s, p.Denom)
		}
		seen[p.Denom] = true
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Denom < out[j].Denom })
	return out, nil
}

// AddUint64 adds with overflow detection.
func AddUint64(a, b uint64) (uint64, error) {
	s, c := bits.Add64(a, b, 0)
	if c != 0 {
		return 0, ErrOverflow
	}
	return s, nil
}
