package sdk

import (
	"strconv"
	"strings"
)

// Coin is an amount of one denomination. Amounts travel as decimal strings
// in JSON ({"denom":"uTFLP","amount":"5"}), like the node's own coins.
type Coin struct {
	Denom  string `json:"denom"`
	Amount uint64 `json:"amount,string"`
}

// NewCoin returns amount of denom.
func NewCoin(denom string, amount uint64) Coin { return Coin{Denom: denom, Amount: amount} }

// String renders c as "5uTFLP".
func (c Coin) String() string { return strconv.FormatUint(c.Amount, 10) + c.Denom }

// Coins is a list of coins, as sent with a call.
type Coins []Coin

// AmountOf returns the total amount of denom in cs.
func (cs Coins) AmountOf(denom string) uint64 {
	var n uint64
	for _, c := range cs {
		if c.Denom == denom {
			n += c.Amount
		}
	}
	return n
}

// String renders cs as "5uTFLP,3uX".
func (cs Coins) String() string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, ",")
}
