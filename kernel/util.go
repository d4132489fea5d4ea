package kernel

import (
	"cmp"
	"slices"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
)

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// amountText renders base units for a person, in the notation every
// text surface uses ("999,934.938072 TFLP", client.DenomTable.Format).
// Only for messages that are not consensus data: a receipt's error text is
// part of the receipt root and keeps its base units.
func amountText(d *ledger.Denoms, amount uint64, base string) string {
	var t client.DenomTable
	if dn, ok := d.Lookup(base); ok {
		t = client.DenomTable{base: {Display: dn.Display, Base: dn.Base, Exponent: dn.Exponent}}
	}
	return t.FormatU64(amount, base)
}
