package client

import "testing"

// TestFormat: the one notation amounts are shown in to people.
func TestFormat(t *testing.T) {
	dt := NewDenomTable([]Denom{{Display: "TFLP", Base: "uTFLP", Exponent: 6}, {Display: "RAW", Base: "RAW"}})
	for _, c := range []struct{ amount, base, want string }{
		{"999934938072", "uTFLP", "999,934.938072 TFLP"},
		{"9300689", "uTFLP", "9.300689 TFLP"},
		{"1", "uTFLP", "0.000001 TFLP"},
		{"1000000000000", "uTFLP", "1,000,000 TFLP"},
		{"0", "uTFLP", "0 TFLP"},
		{"", "uTFLP", "0 TFLP"},
		{"1234567", "RAW", "1,234,567 RAW"},
		{"1500000", "uFOO", "1,500,000 uFOO"}, // unknown denom: base units
		{"12abc", "uTFLP", "12abc TFLP"},      // not an amount: as sent
	} {
		if got := dt.Format(c.amount, c.base); got != c.want {
			t.Errorf("Format(%q, %q) = %q, want %q", c.amount, c.base, got, c.want)
		}
	}
	if got := dt.FormatCoins([]Coin{{Denom: "uTFLP", Amount: "2500000"}, {Denom: "RAW", Amount: "7"}}); got != "2.5 TFLP, 7 RAW" {
		t.Errorf("FormatCoins: %q", got)
	}
	if got := (DenomTable(nil)).Format("1000", "uTFLP"); got != "1,000 uTFLP" {
		t.Errorf("without denoms: %q", got)
	}
}

// TestText: amounts in base units inside a message read in display units;
// gas prices, hashes and other words are left alone.
func TestText(t *testing.T) {
	dt := NewDenomTable([]Denom{{Display: "TFLP", Base: "uTFLP", Exponent: 6}, {Display: "KWTT", Base: "uKWTT", Exponent: 6}})
	for _, c := range []struct{ in, want string }{
		{"ledger: transfer: insufficient funds: have 999934938072uTFLP, need 1000000000000uTFLP",
			"ledger: transfer: insufficient funds: have 999,934.938072 TFLP, need 1,000,000 TFLP"},
		{"balance 3uTFLP is less than 1000000uKWTT", "balance 0.000003 TFLP is less than 1 KWTT"},
		{"gas price 0.01uTFLP below 1uTFLP", "gas price 0.01uTFLP below 0.000001 TFLP"},
		{"have 5ufoo", "have 5ufoo"},
		{"tx ab12uTFLP9", "tx ab12uTFLP9"},
		{"1000uTFLP", "0.001 TFLP"},
	} {
		if got := dt.Text(c.in); got != c.want {
			t.Errorf("Text(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}
