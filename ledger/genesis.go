package ledger

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// Params are chain-wide consensus parameters fixed at genesis (governance
// may change some of them later through proposals).
type Params struct {
	MaxBlockTxs uint32 `json:"max_block_txs"`
	MaxBlockGas uint64 `json:"max_block_gas"`
	MaxTxGas    uint64 `json:"max_tx_gas"`
	// MaxUploadGas caps the gas limit of an upload transaction (a contract
	// or a ROME policy), which pays for compiling the module: a Go module
	// takes seconds to compile, more than max_tx_gas buys. 0 means
	// max_tx_gas. It must lie between max_tx_gas and max_block_gas, so a
	// block stays bounded by max_block_gas.
	MaxUploadGas uint64 `json:"max_upload_gas,omitempty"`
	// MaxBlockBytes bounds the transactions of a block (a block is one raft
	// entry and one network frame; ML-DSA transactions are 3.4 KB each).
	MaxBlockBytes uint64 `json:"max_block_bytes"`
}

// DefaultParams: gas is priced at about 1 ns per gas on the reference
// machine, so max_tx_gas is about a second of work. A block holds one
// upload of the largest module (compiling 8 MiB of Go takes about ten
// seconds); blocks of ordinary transactions stay within max_block_txs and
// max_block_bytes long before they reach max_block_gas.
func DefaultParams() Params {
	return Params{MaxBlockTxs: 5_000, MaxBlockGas: 12_000_000_000, MaxTxGas: 1_000_000_000, MaxUploadGas: 12_000_000_000, MaxBlockBytes: 20 << 20}
}

// MaxGas is the largest gas limit a transaction carrying p may have:
// MaxUploadGas for uploads (contracts and policies), MaxTxGas otherwise.
func (p Params) MaxGas(pl Payload) uint64 {
	switch pl.(type) {
	case *ContractUpload, *RomePolicyUpload:
		if p.MaxUploadGas > 0 {
			return p.MaxUploadGas
		}
	}
	return p.MaxTxGas
}

// GenesisAccount is an account funded at genesis.
type GenesisAccount struct {
	Address  Address `json:"address"`
	Balances Coins   `json:"balances"`
}

// GenesisNode is a member of the cluster at genesis: its ML-DSA public key
// (hex) and the address others dial.
type GenesisNode struct {
	PubKey string `json:"pub_key"`
	Addr   string `json:"p2p_addr,omitempty"`
}

// Genesis is the chain's initial state, read from genesis.json.
type Genesis struct {
	ChainID     string           `json:"chain_id"`
	GenesisTime time.Time        `json:"genesis_time"`
	Denoms      []Denom          `json:"denoms"`
	Params      Params           `json:"params"`
	Accounts    []GenesisAccount `json:"accounts"`
	Nodes       []GenesisNode    `json:"nodes"`
	// Extra carries subsystem sections (rome, gov) as raw JSON so that this
	// package need not know them.
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
}

var chainIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,47}$`)

// ParseGenesis decodes and validates a genesis document strictly (unknown
// fields are errors: a typo must not silently change the chain).
func ParseGenesis(data []byte) (*Genesis, error) {
	var g Genesis
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		return nil, fmt.Errorf("ledger: genesis: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("ledger: genesis: trailing data after the document")
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return &g, nil
}

// Validate checks a genesis document.
func (g *Genesis) Validate() error {
	if !chainIDPattern.MatchString(g.ChainID) {
		return fmt.Errorf("ledger: genesis: chain_id %q must be 1-48 of a-z 0-9 . _ - starting with a letter or digit", g.ChainID)
	}
	if g.GenesisTime.IsZero() {
		return fmt.Errorf("ledger: genesis: genesis_time is missing")
	}
	denoms, err := NewDenoms(g.Denoms)
	if err != nil {
		return fmt.Errorf("ledger: genesis: %w", err)
	}
	if len(g.Denoms) == 0 {
		return fmt.Errorf("ledger: genesis: no denoms declared")
	}
	if _, ok := denoms.Lookup(DefaultFeeDenom); !ok {
		return fmt.Errorf("ledger: genesis: the fee denom %s must be declared", DefaultFeeDenom)
	}
	p := g.Params
	if p.MaxBlockTxs == 0 || p.MaxBlockGas == 0 || p.MaxTxGas == 0 || p.MaxTxGas > p.MaxBlockGas {
		return fmt.Errorf("ledger: genesis: params need max_block_txs > 0 and 0 < max_tx_gas <= max_block_gas")
	}
	if p.MaxUploadGas != 0 && (p.MaxUploadGas < p.MaxTxGas || p.MaxUploadGas > p.MaxBlockGas) {
		return fmt.Errorf("ledger: genesis: params need max_tx_gas <= max_upload_gas <= max_block_gas (or max_upload_gas 0)")
	}
	if p.MaxBlockBytes < MaxTxBytes || p.MaxBlockBytes > 32<<20 {
		return fmt.Errorf("ledger: genesis: max_block_bytes must be between %d (one largest tx) and %d", MaxTxBytes, 32<<20)
	}
	seen := map[Address]bool{}
	supply := map[string]uint64{}
	for i, a := range g.Accounts {
		if a.Address.IsZero() {
			return fmt.Errorf("ledger: genesis: account %d: zero address", i)
		}
		if seen[a.Address] {
			return fmt.Errorf("ledger: genesis: account %s listed twice", a.Address)
		}
		seen[a.Address] = true
		if err := a.Balances.Validate(); err != nil {
			return fmt.Errorf("ledger: genesis: account %s: %w", a.Address, err)
		}
		for _, c := range a.Balances {
			if !denoms.IsBase(c.Denom) {
				return fmt.Errorf("ledger: genesis: account %s: %w %q (balances are in base units, e.g. uTFLP)", a.Address, ErrUnknownDenom, c.Denom)
			}
			s, err := AddUint64(supply[c.Denom], c.Amount)
			if err != nil {
				return fmt.Errorf("ledger: genesis: supply of %s: %w", c.Denom, err)
			}
			supply[c.Denom] = s
		}
	}
	keys := map[string]bool{}
	for i, n := range g.Nodes {
		raw, err := hex.DecodeString(n.PubKey)
		if err != nil {
			return fmt.Errorf("ledger: genesis: node %d: pub_key is not hex", i)
		}
		if _, err := ParsePublicKey(raw); err != nil {
			return fmt.Errorf("ledger: genesis: node %d: %w", i, err)
		}
		if keys[n.PubKey] {
			return fmt.Errorf("ledger: genesis: node %d listed twice", i)
		}
		keys[n.PubKey] = true
	}
	return nil
}

// DenomSet returns the validated denoms.
func (g *Genesis) DenomSet() *Denoms {
	d, err := NewDenoms(g.Denoms)
	if err != nil {
		panic("ledger: DenomSet on an unvalidated genesis: " + err.Error())
	}
	return d
}

// Marshal renders the genesis as indented JSON.
func (g *Genesis) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("ledger: genesis: %w", err)
	}
	return append(b, '\n'), nil
}

// Hash identifies a genesis document (its exact bytes).
func GenesisDocHash(doc []byte) Hash { return HashBytes(doc) }

// NodePubKeys returns the decoded node keys.
func (g *Genesis) NodePubKeys() ([]PublicKey, error) {
	out := make([]PublicKey, 0, len(g.Nodes))
	for _, n := range g.Nodes {
		raw, err := hex.DecodeString(n.PubKey)
		if err != nil {
			return nil, fmt.Errorf("ledger: genesis: node key: %w", err)
		}
		pk, err := ParsePublicKey(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, pk)
	}
	return out, nil
}

// ApplyGenesis writes the initial state: params, funded accounts and supply.
func ApplyGenesis(st *State, codec *Codec, g *Genesis) error {
	acc := &Accounts{St: st, Codec: codec}
	pb, err := json.Marshal(g.Params)
	if err != nil {
		return err
	}
	st.Set(ParamsKey("chain"), pb)
	for _, a := range g.Accounts {
		if err := acc.Mint(a.Address, a.Balances); err != nil {
			return fmt.Errorf("ledger: genesis: %w", err)
		}
	}
	return applyGenesisMembers(st, codec, g)
}

// ParamsKey is the state key of a named parameter record.
func ParamsKey(name string) []byte { return append([]byte{prefixParams}, name...) }
