package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/kernel"
	"github.com/sos-kernel/sos/kernel/keyring"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome"
)

func newInitCmd(g *globals) *cobra.Command {
	var chainID, moniker, api, p2p, join string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a node home: config.toml, an ML-DSA-65 node key and genesis.json",
		Long: `Create a node home: config.toml, an ML-DSA-65 node key (node_key.json, mode 0600)
and a genesis.json declaring the TFLP, TBS, KWTT and STOR tokens with this node as the
only cluster member. Fund accounts with 'sos genesis add-account' before the first 'sos run'.`,
		Example: `  sos init --home ./n1 --chain-id sos-local
  sos init --home ./n4 --p2p 127.0.0.1:27000 --api 127.0.0.1:27001 --join <node-id>@127.0.0.1:26656`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var res *initResult
			var err error
			if join != "" {
				res, err = joinHome(cmd.Context(), g.home, moniker, api, p2p, join)
			} else {
				res, err = initHome(g.home, chainID, moniker, api, p2p)
			}
			if err != nil {
				return err
			}
			return g.print(res, func() {
				fmt.Printf("initialized %s for chain %s\nnode id: %s\n", res.Home, res.ChainID, res.NodeID)
				if res.Joined != "" {
					fmt.Printf("admitted by %s as a learner at height %d; start it with: sos run --home %s\n", res.Joined, res.AdmittedAt, res.Home)
				}
			})
		},
	}
	cmd.Flags().StringVar(&chainID, "chain-id", "sos-local", "chain id (letters, digits, . _ -)")
	cmd.Flags().StringVar(&moniker, "moniker", "node", "human-readable node name")
	cmd.Flags().StringVar(&api, "api", "", "API listen address (default 127.0.0.1:26657)")
	cmd.Flags().StringVar(&p2p, "p2p", "", "peer-to-peer QUIC listen address (default 127.0.0.1:26656)")
	cmd.Flags().StringVar(&join, "join", "", "join a running cluster through this member, <node-id>@host:port (its p2p address, see 'sos peers'): "+
		"the member admits this node as a learner with a signed transaction and sends the genesis; it is promoted to voter once caught up")
	return cmd
}

type initResult struct {
	Home       string `json:"home"`
	ChainID    string `json:"chain_id"`
	NodeID     string `json:"node_id"`
	Joined     string `json:"joined_via,omitempty"`
	AdmittedAt uint64 `json:"admitted_at_height,omitempty"`
}

// nodeConfig is the default config with the flags of init applied.
func nodeConfig(moniker, api, p2p string) kernel.Config {
	cfg := kernel.DefaultConfig()
	cfg.Moniker = moniker
	if api != "" {
		cfg.APIAddr = api
	}
	if p2p != "" {
		cfg.P2PAddr = p2p
	}
	return cfg
}

// joinHome creates the home of a node joining a running cluster. Nothing is
// written unless the member admitted the node.
func joinHome(ctx context.Context, home, moniker, api, p2p, peer string) (*initResult, error) {
	if _, err := os.Stat(filepath.Join(home, kernel.ConfigFile)); err == nil {
		return nil, fmt.Errorf("%s is already initialized (remove it to start over)", home)
	}
	cfg := nodeConfig(moniker, api, p2p)
	cfg.Join = peer
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key, err := ledger.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	ans, err := kernel.JoinCluster(ctx, key, peer, cfg.P2PAddr)
	if err != nil {
		return nil, err
	}
	gen, err := ledger.ParseGenesis(ans.Genesis)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	if err := keyring.WriteKeyFile(filepath.Join(home, kernel.NodeKeyFile), "node", key); err != nil {
		return nil, err
	}
	if err := kernel.WriteJoin(home, ans); err != nil {
		return nil, err
	}
	if err := kernel.SaveConfig(home, cfg); err != nil {
		return nil, err
	}
	id, _, _ := kernel.ParsePeer(peer)
	return &initResult{Home: home, ChainID: gen.ChainID, NodeID: key.Public().Fingerprint(), Joined: id, AdmittedAt: ans.Height}, nil
}

func initHome(home, chainID, moniker, api, p2p string) (*initResult, error) {
	if _, err := os.Stat(filepath.Join(home, kernel.ConfigFile)); err == nil {
		return nil, fmt.Errorf("%s is already initialized (remove it to start over)", home)
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	cfg := nodeConfig(moniker, api, p2p)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key, err := ledger.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	gen := &ledger.Genesis{
		ChainID:     chainID,
		GenesisTime: time.Now().UTC().Truncate(time.Millisecond),
		Denoms:      ledger.DefaultDenoms(),
		Params:      ledger.DefaultParams(),
		Accounts:    []ledger.GenesisAccount{},
		Nodes:       []ledger.GenesisNode{{PubKey: hex.EncodeToString(key.Public().Bytes()), Addr: cfg.P2PAddr}},
	}
	// ROME: a working market with this node as the only governance member and
	// certificate issuer; its account pays the fees of signing certificates.
	romeJSON, govJSON, err := rome.GenesisSections(key.Public())
	if err != nil {
		return nil, err
	}
	gen.Extra = map[string]json.RawMessage{"rome": romeJSON, "gov": govJSON}
	gen.Accounts = append(gen.Accounts, ledger.GenesisAccount{Address: key.Address(), Balances: ledger.Coins{{Denom: "uTFLP", Amount: 1_000_000_000}}})
	if err := gen.Validate(); err != nil {
		return nil, err
	}
	doc, err := gen.Marshal()
	if err != nil {
		return nil, err
	}
	if err := keyring.WriteKeyFile(filepath.Join(home, kernel.NodeKeyFile), "node", key); err != nil {
		return nil, err
	}
	if err := kernel.WriteFileAtomic(filepath.Join(home, kernel.GenesisFile), doc, 0o644); err != nil {
		return nil, err
	}
	if err := kernel.SaveConfig(home, cfg); err != nil {
		return nil, err
	}
	return &initResult{Home: home, ChainID: chainID, NodeID: key.Public().Fingerprint()}, nil
}
