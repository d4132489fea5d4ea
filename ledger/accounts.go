package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// State key layout. One byte of prefix per kind of record; every key lives in
// the sparse Merkle tree, so every record is provable.
const (
	prefixAccount  byte = 0x01 // addr → Account (nonce, balances)
	prefixPubKey   byte = 0x02 // addr → ML-DSA-65 public key
	prefixSupply   byte = 0x03 // base denom → uint64 total supply
	prefixParams   byte = 0x04 // name → chain parameter
	PrefixContract byte = 0x10 // reserved for package contracts (code, instances, storage)
	PrefixRome     byte = 0x20 // reserved for package rome (offers, requests, leases, certificates)
	PrefixGov      byte = 0x30 // reserved for governance
	PrefixCluster  byte = 0x40 // reserved for cluster membership
)

// FeeCollector is the module account that receives transaction fees.
var FeeCollector = DeriveAddress("sos/module", []byte("fee_collector"))

// AccountKey is the state key of an account record.
func AccountKey(a Address) []byte { return append([]byte{prefixAccount}, a[:]...) }

// PubKeyKey is the state key of an account's public key.
func PubKeyKey(a Address) []byte { return append([]byte{prefixPubKey}, a[:]...) }

// SupplyKey is the state key of a denom's total supply.
func SupplyKey(denom string) []byte { return append([]byte{prefixSupply}, denom...) }

// Account is the record of an address: its next nonce and balances.
type Account struct {
	_        struct{} `cbor:",toarray"`
	Nonce    uint64   `json:"nonce"`
	Balances Coins    `json:"balances"`
}

// Accounts reads and writes account records, balances and supply on a State,
// charging gas for every access. It is the only code that changes balances,
// so the supply invariant (supply = sum of balances) is kept in one place.
type Accounts struct {
	St    *State
	Codec *Codec
	Gas   *GasMeter // nil: free (genesis, queries)
	Sched *GasSchedule
}

func (a *Accounts) chargeRead(key, val []byte) error {
	if a.Gas == nil {
		return nil
	}
	return a.Gas.Consume(a.Sched.ReadBase+a.Sched.ReadPerByte*uint64(len(key)+len(val)), "state read")
}

func (a *Accounts) chargeWrite(key, val []byte) error {
	if a.Gas == nil {
		return nil
	}
	return a.Gas.Consume(a.Sched.WriteBase+a.Sched.WritePerByte*uint64(len(key)+len(val)), "state write")
}

// Get loads an account; an absent account is the zero Account.
func (a *Accounts) Get(addr Address) (Account, bool, error) {
	key := AccountKey(addr)
	raw, err := a.St.Get(key)
	if err != nil {
		return Account{}, false, fmt.Errorf("ledger: account %s: %w", addr, err)
	}
	if err := a.chargeRead(key, raw); err != nil {
		return Account{}, false, err
	}
	if raw == nil {
		return Account{}, false, nil
	}
	acc, err := decodeAccount(raw)
	if err != nil {
		return Account{}, false, fmt.Errorf("ledger: account %s: %w: %w", addr, ErrCorrupt, err)
	}
	return acc, true, nil
}

// Put stores an account record.
func (a *Accounts) Put(addr Address, acc Account) error {
	key := AccountKey(addr)
	raw := appendAccount(make([]byte, 0, 16+24*len(acc.Balances)), &acc)
	if err := a.chargeWrite(key, raw); err != nil {
		return err
	}
	a.St.Set(key, raw)
	return nil
}

// PubKey returns the stored public key of addr, if any.
func (a *Accounts) PubKey(addr Address) ([]byte, error) {
	key := PubKeyKey(addr)
	raw, err := a.St.Get(key)
	if err != nil {
		return nil, fmt.Errorf("ledger: public key of %s: %w", addr, err)
	}
	return raw, a.chargeRead(key, raw)
}

// SetPubKey stores the public key of addr (first transaction).
func (a *Accounts) SetPubKey(addr Address, pub []byte) error {
	key := PubKeyKey(addr)
	if a.Gas != nil {
		if err := a.Gas.Consume(a.Sched.StorePubKeyPer*uint64(len(pub)), "store public key"); err != nil {
			return err
		}
	}
	if err := a.chargeWrite(key, pub); err != nil {
		return err
	}
	a.St.Set(key, pub)
	return nil
}

// Balance returns addr's balance of a base denom.
func (a *Accounts) Balance(addr Address, denom string) (uint64, error) {
	acc, _, err := a.Get(addr)
	if err != nil {
		return 0, err
	}
	return acc.Balances.AmountOf(denom), nil
}

func addCoin(cs Coins, c Coin) (Coins, error) {
	out := make(Coins, 0, len(cs)+1)
	done := false
	for _, x := range cs {
		switch {
		case !done && x.Denom == c.Denom:
			s, err := AddUint64(x.Amount, c.Amount)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.Denom, err)
			}
			out = append(out, Coin{Denom: x.Denom, Amount: s})
			done = true
		case !done && x.Denom > c.Denom:
			out = append(out, c, x)
			done = true
		default:
			out = append(out, x)
		}
	}
	if !done {
		out = append(out, c)
	}
	return out, nil
}

func subCoin(cs Coins, c Coin) (Coins, error) {
	out := make(Coins, 0, len(cs))
	found := false
	for _, x := range cs {
		if x.Denom != c.Denom {
			out = append(out, x)
			continue
		}
		found = true
		if x.Amount < c.Amount {
			return nil, fmt.Errorf("%w: have %d%s, need %d%s", ErrInsufficientFunds, x.Amount, x.Denom, c.Amount, c.Denom)
		}
		if x.Amount > c.Amount {
			out = append(out, Coin{Denom: x.Denom, Amount: x.Amount - c.Amount})
		}
	}
	if !found && c.Amount > 0 {
		return nil, fmt.Errorf("%w: have 0%s, need %d%s", ErrInsufficientFunds, c.Denom, c.Amount, c.Denom)
	}
	return out, nil
}

// Credit adds coins to addr.
func (a *Accounts) Credit(addr Address, coins Coins) error {
	if len(coins) == 0 {
		return nil
	}
	acc, existed, err := a.Get(addr)
	if err != nil {
		return err
	}
	if !existed && a.Gas != nil {
		if err := a.Gas.Consume(a.Sched.NewAccount, "new account"); err != nil {
			return err
		}
	}
	for _, c := range coins {
		if acc.Balances, err = addCoin(acc.Balances, c); err != nil {
			return fmt.Errorf("ledger: credit %s: %w", addr, err)
		}
	}
	return a.Put(addr, acc)
}

// Debit removes coins from addr or fails with ErrInsufficientFunds, changing nothing.
func (a *Accounts) Debit(addr Address, coins Coins) error {
	if len(coins) == 0 {
		return nil
	}
	acc, _, err := a.Get(addr)
	if err != nil {
		return err
	}
	for _, c := range coins {
		if acc.Balances, err = subCoin(acc.Balances, c); err != nil {
			return fmt.Errorf("ledger: debit %s: %w", addr, err)
		}
	}
	return a.Put(addr, acc)
}

// Transfer moves coins between accounts.
func (a *Accounts) Transfer(from, to Address, coins Coins) error {
	if from == to {
		// Still require the funds, so a self-transfer cannot prove a balance it lacks.
		acc, _, err := a.Get(from)
		if err != nil {
			return err
		}
		for _, c := range coins {
			if acc.Balances.AmountOf(c.Denom) < c.Amount {
				return fmt.Errorf("ledger: transfer: %w: have %d%s, need %d%s", ErrInsufficientFunds, acc.Balances.AmountOf(c.Denom), c.Denom, c.Amount, c.Denom)
			}
		}
		return nil
	}
	if err := a.Debit(from, coins); err != nil {
		return err
	}
	return a.Credit(to, coins)
}

// Supply returns the total supply of a base denom.
func (a *Accounts) Supply(denom string) (uint64, error) {
	raw, err := a.St.Get(SupplyKey(denom))
	if err != nil {
		return 0, fmt.Errorf("ledger: supply of %s: %w", denom, err)
	}
	if raw == nil {
		return 0, nil
	}
	if len(raw) != 8 {
		return 0, fmt.Errorf("ledger: supply of %s: %w", denom, ErrCorrupt)
	}
	return binary.BigEndian.Uint64(raw), nil
}

func (a *Accounts) setSupply(denom string, v uint64) {
	a.St.Set(SupplyKey(denom), binary.BigEndian.AppendUint64(nil, v))
}

// Mint creates coins in addr and raises the supply (genesis, rewards).
func (a *Accounts) Mint(addr Address, coins Coins) error {
	for _, c := range coins {
		s, err := a.Supply(c.Denom)
		if err != nil {
			return err
		}
		ns, err := AddUint64(s, c.Amount)
		if err != nil {
			return fmt.Errorf("ledger: mint %s: supply: %w", c, err)
		}
		a.setSupply(c.Denom, ns)
	}
	return a.Credit(addr, coins)
}

// Burn destroys coins held by addr and lowers the supply.
func (a *Accounts) Burn(addr Address, coins Coins) error {
	if err := a.Debit(addr, coins); err != nil {
		return err
	}
	for _, c := range coins {
		s, err := a.Supply(c.Denom)
		if err != nil {
			return err
		}
		if s < c.Amount {
			return fmt.Errorf("ledger: burn %s: supply %d below amount: %w", c, s, ErrCorrupt)
		}
		a.setSupply(c.Denom, s-c.Amount)
	}
	return nil
}

// ErrCorrupt marks stored bytes that cannot be decoded: the store is damaged.
var ErrCorrupt = errors.New("corrupt data")

// Add returns cs plus c, keeping the Coins invariants.
func (cs Coins) Add(c Coin) (Coins, error) {
	if c.Amount == 0 {
		return cs, nil
	}
	return addCoin(cs, c)
}

// Sub returns cs minus c or ErrInsufficientFunds.
func (cs Coins) Sub(c Coin) (Coins, error) {
	if c.Amount == 0 {
		return cs, nil
	}
	return subCoin(cs, c)
}
