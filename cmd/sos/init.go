package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/kernel"
	"github.com/sos-kernel/sos/kernel/keyring"
	"github.com/sos-kernel/sos/ledger"
	sosnet "github.com/sos-kernel/sos/net"
	"github.com/sos-kernel/sos/rome"
)

func newInitCmd(g *globals) *cobra.Command {
	var chainID, moniker, api, p2p, join, token string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a node home: config.toml, an ML-DSA-65 node key and genesis.json",
		Long: `Create a node home: config.toml, an ML-DSA-65 node key (node_key.json, mode 0600)
and a genesis.json declaring the TFLP, TBS, KWTT and STOR tokens with this node as the
only cluster member. Fund accounts with 'sos genesis add-account' before the first 'sos run'.

config.toml records how 'sos keys' stores this home's account keys (keyring_backend):
test (plaintext, the default, so scripts and devnets run without a passphrase) or, with
--keyring-backend file, encrypted with a passphrase, recommended for keys that hold value.
The node key is plaintext either way: the node must start unattended (docs/keys.md).

With --join, the home is for a node joining a running cluster through the member named
(<node-id>@host:port, from 'sos peers'). The node listens on --p2p while it asks, so that
the member can check the address answers with the node's key; then either the member admits
it at once (--token, minted on that member with 'sos cluster token'), or the request waits
until an operator of a voting member runs 'sos cluster admit <node-id>'; this command asks
again every few seconds for up to --wait. The node key is written first, so running the same
command again after a timeout resumes with the same node id. Nothing else is written until
the node is admitted.`,
		Example: `  sos init --home ./n1 --chain-id sos-local
  sos init --home ./n4 --p2p 127.0.0.1:27000 --api 127.0.0.1:27001 --join <node-id>@127.0.0.1:26656
  sos init --home ./n5 --p2p 127.0.0.1:27100 --join <node-id>@127.0.0.1:26656 --token <token>`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var res *initResult
			backend := keyring.BackendTest
			if g.keys.backend != "" {
				var err error
				if backend, err = keyring.ParseBackend(g.keys.backend); err != nil {
					return err
				}
			}
			var err error
			if join != "" {
				res, err = joinHome(cmd.Context(), g.home, moniker, api, p2p, join, token, wait, backend)
			} else {
				if token != "" {
					return fmt.Errorf("--token goes with --join")
				}
				res, err = initHome(g.home, chainID, moniker, api, p2p, backend)
			}
			if err != nil {
				return err
			}
			return g.print(res, func() {
				fmt.Printf("initialized %s for chain %s\nnode id: %s\n", res.Home, res.ChainID, res.NodeID)
				if res.KeyringBackend == keyring.BackendTest {
					fmt.Println("keyring backend: test (account keys stored unencrypted, for scripts and devnets; " +
						"--keyring-backend file encrypts them with a passphrase, see docs/keys.md)")
				} else {
					fmt.Println("keyring backend: file (account keys encrypted with a passphrase; the node key stays plaintext)")
				}
				if res.Joined != "" {
					fmt.Printf("admitted by %s as a learner at height %d; start it with: sos run --home %s\n", res.Joined, res.AdmittedAt, res.Home)
				}
			})
		},
	}
	cmd.Flags().StringVar(&chainID, "chain-id", "sos-local", "chain id (letters, digits, . _ -)")
	cmd.Flags().StringVar(&moniker, "moniker", "node", "human-readable node name")
	cmd.Flags().StringVar(&api, "api", "", "API listen address (default 127.0.0.1:26657)")
	cmd.Flags().StringVar(&p2p, "p2p", "", "peer-to-peer QUIC listen address (default 127.0.0.1:26656); with --join, the address the member dials back")
	cmd.Flags().StringVar(&join, "join", "", "join a running cluster through this member, <node-id>@host:port (its p2p address, see 'sos peers'): "+
		"an operator of a voting member admits this node ('sos cluster admit'), or --token does")
	cmd.Flags().StringVar(&token, "token", "", "join token minted on the --join member ('sos cluster token'): admitted at once, as a learner")
	cmd.Flags().DurationVar(&wait, "wait", 5*time.Minute, "with --join: how long to wait for an operator to admit this node")
	return cmd
}

type initResult struct {
	Home           string          `json:"home"`
	ChainID        string          `json:"chain_id"`
	NodeID         string          `json:"node_id"`
	KeyringBackend keyring.Backend `json:"keyring_backend"`
	Joined         string          `json:"joined_via,omitempty"`
	AdmittedAt     uint64          `json:"admitted_at_height,omitempty"`
}

// nodeConfig is the default config with the flags of init applied.
func nodeConfig(moniker, api, p2p string, backend keyring.Backend) kernel.Config {
	cfg := kernel.DefaultConfig()
	cfg.Moniker = moniker
	cfg.KeyringBackend = string(backend)
	if api != "" {
		cfg.APIAddr = api
	}
	if p2p != "" {
		cfg.P2PAddr = p2p
	}
	return cfg
}

// joinHome creates the home of a node joining a running cluster. Only the
// node key is written before the member admits the node (so a second run
// resumes with the same node id); the rest once it is admitted.
func joinHome(ctx context.Context, home, moniker, api, p2p, peer, token string, wait time.Duration, backend keyring.Backend) (*initResult, error) {
	if _, err := os.Stat(filepath.Join(home, kernel.ConfigFile)); err == nil {
		return nil, fmt.Errorf("%s is already initialized (remove it to start over)", home)
	}
	cfg := nodeConfig(moniker, api, p2p, backend)
	cfg.Join = peer
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	memberID, _, err := kernel.ParsePeer(peer)
	if err != nil {
		return nil, err
	}
	keyPath := filepath.Join(home, kernel.NodeKeyFile)
	key, _, err := keyring.ReadKeyFile(keyPath)
	switch {
	case err == nil:
		fmt.Fprintf(os.Stderr, "resuming the join of node %s (key from %s)\n", key.Public().Fingerprint(), keyPath)
	case errors.Is(err, os.ErrNotExist):
		if key, err = ledger.GenerateKey(rand.Reader); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(home, 0o700); err != nil {
			return nil, err
		}
		if err := keyring.WriteKeyFile(keyPath, "node", key); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	id := key.Public().Fingerprint()
	progress := func(err error) {
		if errors.Is(err, sosnet.ErrJoinPending) {
			fmt.Fprintf(os.Stderr, "node %s is waiting to be admitted (asking again for up to %s): %s\n", id, wait, oneLine(err))
			return
		}
		fmt.Fprintf(os.Stderr, "no answer from %.12s yet, asking again: %s\n", memberID, oneLine(err))
	}
	ans, err := kernel.JoinCluster(ctx, kernel.JoinOptions{Key: key, Peer: peer, P2PAddr: cfg.P2PAddr, Token: token, Wait: wait, Progress: progress})
	if err != nil {
		return nil, fmt.Errorf("%w (node key kept in %s: run the same command again to resume)", err, keyPath)
	}
	gen, err := ledger.ParseGenesis(ans.Genesis)
	if err != nil {
		return nil, err
	}
	if err := kernel.WriteJoin(home, ans); err != nil {
		return nil, err
	}
	if err := kernel.SaveConfig(home, cfg); err != nil {
		return nil, err
	}
	return &initResult{Home: home, ChainID: gen.ChainID, NodeID: id, KeyringBackend: backend, Joined: memberID, AdmittedAt: ans.Height}, nil
}

func initHome(home, chainID, moniker, api, p2p string, backend keyring.Backend) (*initResult, error) {
	if _, err := os.Stat(filepath.Join(home, kernel.ConfigFile)); err == nil {
		return nil, fmt.Errorf("%s is already initialized (remove it to start over)", home)
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	cfg := nodeConfig(moniker, api, p2p, backend)
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
	return &initResult{Home: home, ChainID: chainID, NodeID: key.Public().Fingerprint(), KeyringBackend: backend}, nil
}
