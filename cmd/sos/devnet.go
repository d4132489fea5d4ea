package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	stdnet "net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/kernel"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/keyring"
	"github.com/sos-kernel/sos/ledger"
)

func newDevnetCmd(g *globals) *cobra.Command {
	var nodes int
	var dir, chainID string
	cmd := &cobra.Command{
		Use:   "devnet",
		Short: "Run a local cluster: init N homes with a shared genesis and start N nodes on loopback",
		Long: `Create D/node0 ... D/node{N-1} (unless they exist), each with its own ML-DSA node key, an
"operator" account key funded in the shared genesis, and config listening on free loopback ports;
then start one 'sos run' process per home, print their API URLs, and stop them all on Ctrl-C.
Logs go to D/nodeI.log.`,
		Example: "  sos devnet --nodes 3 --dir ./devnet",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if nodes < 1 || nodes > 16 {
				return fmt.Errorf("--nodes must be 1..16")
			}
			homes, err := devnetInit(dir, chainID, nodes)
			if err != nil {
				return err
			}
			return devnetRun(cmd.Context(), homes)
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 3, "number of nodes")
	cmd.Flags().StringVar(&dir, "dir", "./devnet", "directory holding the node homes")
	cmd.Flags().StringVar(&chainID, "chain-id", "sos-devnet", "chain id")
	return cmd
}

func freeAddr() (string, error) {
	l, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	u, err := stdnet.ListenPacket("udp", l.Addr().String()) // QUIC needs the UDP port too
	if err != nil {
		return freeAddr()
	}
	u.Close()
	return l.Addr().String(), nil
}

// devnetInit creates the homes (or reuses existing ones).
func devnetInit(dir, chainID string, n int) ([]string, error) {
	homes := make([]string, n)
	for i := range homes {
		homes[i] = filepath.Join(dir, fmt.Sprintf("node%d", i))
	}
	if _, err := os.Stat(filepath.Join(homes[0], kernel.GenesisFile)); err == nil {
		return homes, nil // already initialized: restart the same cluster
	}
	gen := &ledger.Genesis{
		ChainID: chainID, GenesisTime: time.Now().UTC().Truncate(time.Millisecond),
		Denoms: ledger.DefaultDenoms(), Params: ledger.DefaultParams(), Accounts: []ledger.GenesisAccount{},
	}
	cfgs := make([]kernel.Config, n)
	keys := make([]*ledger.PrivateKey, n)
	for i, h := range homes {
		if err := os.MkdirAll(h, 0o700); err != nil {
			return nil, err
		}
		key, err := ledger.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		keys[i] = key
		cfg := kernel.DefaultConfig()
		cfg.Moniker = fmt.Sprintf("node%d", i)
		if cfg.APIAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		if cfg.P2PAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		cfgs[i] = cfg
		gen.Nodes = append(gen.Nodes, ledger.GenesisNode{PubKey: hex.EncodeToString(key.Public().Bytes()), Addr: cfg.P2PAddr})
		// The node's own account pays for what the node signs itself:
		// admitting members, promotions, certificate signatures.
		gen.Accounts = append(gen.Accounts, ledger.GenesisAccount{Address: key.Address(), Balances: ledger.Coins{{Denom: "uTFLP", Amount: 1_000_000_000}}})
		op, err := keyring.Open(h).Add("operator")
		if err != nil {
			return nil, err
		}
		gen.Accounts = append(gen.Accounts, ledger.GenesisAccount{Address: op.Key.Address(), Balances: ledger.Coins{
			{Denom: "uKWTT", Amount: 1_000_000_000_000}, {Denom: "uSTOR", Amount: 1_000_000_000_000},
			{Denom: "uTBS", Amount: 1_000_000_000_000}, {Denom: "uTFLP", Amount: 1_000_000_000_000_000}}})
	}
	if err := gen.Validate(); err != nil {
		return nil, err
	}
	doc, err := gen.Marshal()
	if err != nil {
		return nil, err
	}
	for i, h := range homes {
		if err := keyring.WriteKeyFile(filepath.Join(h, kernel.NodeKeyFile), "node", keys[i]); err != nil {
			return nil, err
		}
		if err := kernel.WriteFileAtomic(filepath.Join(h, kernel.GenesisFile), doc, 0o644); err != nil {
			return nil, err
		}
		if err := kernel.SaveConfig(h, cfgs[i]); err != nil {
			return nil, err
		}
	}
	return homes, nil
}

// devnetRun starts one node process per home and waits for a signal.
func devnetRun(ctx context.Context, homes []string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			done := make(chan struct{})
			go func() { _ = p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = p.Process.Kill()
			}
		}
	}()
	urls := make([]string, len(homes))
	for i, h := range homes {
		cfg, err := kernel.LoadConfig(h)
		if err != nil {
			return err
		}
		logf, err := os.OpenFile(h+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer logf.Close()
		p := exec.Command(self, "run", "--home", h)
		p.Stdout, p.Stderr = logf, logf
		dieWithParent(p)
		if err := p.Start(); err != nil {
			return fmt.Errorf("start node %d: %w", i, err)
		}
		procs = append(procs, p)
		urls[i] = "http://" + cfg.APIAddr
	}
	for i, u := range urls {
		c, err := client.New(u)
		if err != nil {
			return err
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err := c.Status(sctx)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("node %d did not serve its API (see %s.log): %v", i, homes[i], err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		fmt.Printf("node%d %s (home %s)\n", i, u, homes[i])
	}
	fmt.Printf("devnet of %d nodes running; funded key \"operator\" in each home; Ctrl-C stops all\n", len(homes))
	waitErr := make(chan error, len(procs))
	for i, p := range procs {
		go func() { waitErr <- fmt.Errorf("node %d exited: %v (see %s.log)", i, p.Wait(), homes[i]) }()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-waitErr:
		return err
	}
}
