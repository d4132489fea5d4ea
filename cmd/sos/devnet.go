package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	stdnet "net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
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
	var fund []string
	cmd := &cobra.Command{
		Use:   "devnet",
		Short: "Run a local cluster: init N homes with a shared genesis and start N nodes on loopback",
		Long: `Create D/node0 ... D/node{N-1} (unless they exist), each with its own ML-DSA node key, an
"operator" account key funded in the shared genesis, and config listening on free loopback ports;
then start one 'sos run --home D/nodeI' child process per home and print, once each serves its
API, a line per node:

  node0 api http://127.0.0.1:PORT p2p 127.0.0.1:P2PPORT home D/node0 pid PID

PORT is what --node takes (http://127.0.0.1:PORT), P2PPORT is the node's peer address (what
'sos init --join <node-id>@127.0.0.1:P2PPORT' names). Logs go to D/nodeI.log.

--fund NAME=AMOUNTS (repeatable) creates one more key NAME, stored in every home's keyring (so
'--from NAME --home D/nodeI' works with any I), and funds it in the genesis.

A node that stops (it crashed, or was killed with SIGTERM or kill -9) is reported with its exit
status and last error line; the others keep running. Restart it from another terminal with
'sos devnet restart N --dir D' ('sos devnet status --dir D' lists the nodes). Ctrl-C stops all;
running 'sos devnet' again on the same D restarts the same cluster.`,
		Example: "  sos devnet --nodes 3 --dir ./devnet --fund bob=100TFLP,5KWTT\n  sos devnet restart 1 --dir ./devnet",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if nodes < 1 || nodes > 16 {
				return fmt.Errorf("--nodes must be 1..16")
			}
			funds, err := parseDevnetFunds(fund)
			if err != nil {
				return err
			}
			homes, err := devnetInit(dir, chainID, nodes, funds)
			if err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			d, err := newDevnet(dir, homes, os.Stdout)
			if err != nil {
				return err
			}
			d.start = func(i int) (*exec.Cmd, error) { return startNodeProcess(self, homes[i]) }
			return d.run(ctx)
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 3, "number of nodes")
	cmd.PersistentFlags().StringVar(&dir, "dir", "./devnet", "directory holding the node homes")
	cmd.Flags().StringVar(&chainID, "chain-id", "sos-devnet", "chain id")
	cmd.Flags().StringArrayVar(&fund, "fund", nil, "NAME=AMOUNTS: also create key NAME in every home, funded with AMOUNTS (e.g. bob=100TFLP,5KWTT); repeatable")
	cmd.AddCommand(newDevnetControlCmd(&dir, "restart N", "Restart node N of a running devnet (stopping it first if it runs)", 1),
		newDevnetControlCmd(&dir, "status", "List the nodes of a running devnet: running or stopped, pid, API", 0))
	return cmd
}

// newDevnetControlCmd sends one request to a running devnet's control
// socket and prints its answer.
func newDevnetControlCmd(dir *string, use, short string, nargs int) *cobra.Command {
	name, _, _ := strings.Cut(use, " ")
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(nargs),
		Example: "  sos devnet " + name + " --dir ./devnet",
		RunE: func(cmd *cobra.Command, args []string) error {
			ans, err := devnetRequest(cmd.Context(), *dir, strings.Join(append([]string{name}, args...), " "))
			if err != nil {
				return err
			}
			fmt.Print(ans)
			return nil
		},
	}
}

// devnetFund is one --fund NAME=AMOUNTS.
type devnetFund struct {
	name  string
	coins ledger.Coins
}

func parseDevnetFunds(specs []string) ([]devnetFund, error) {
	denoms, err := ledger.NewDenoms(ledger.DefaultDenoms())
	if err != nil {
		return nil, err
	}
	var out []devnetFund
	seen := map[string]bool{}
	for _, s := range specs {
		name, amounts, ok := strings.Cut(s, "=")
		if !ok || name == "" || amounts == "" {
			return nil, fmt.Errorf("--fund %q: want NAME=AMOUNTS, e.g. bob=100TFLP,5KWTT", s)
		}
		if name == "operator" || name == "node" || seen[name] {
			return nil, fmt.Errorf("--fund %q: the name %q is taken", s, name)
		}
		seen[name] = true
		coins, err := denoms.ParseCoins(amounts)
		if err != nil {
			return nil, fmt.Errorf("--fund %q: %w", s, err)
		}
		out = append(out, devnetFund{name: name, coins: coins})
	}
	return out, nil
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
func devnetInit(dir, chainID string, n int, funds []devnetFund) ([]string, error) {
	homes := make([]string, n)
	for i := range homes {
		homes[i] = filepath.Join(dir, fmt.Sprintf("node%d", i))
	}
	if _, err := os.Stat(filepath.Join(homes[0], kernel.GenesisFile)); err == nil {
		// Already initialized: restart the same cluster. Its genesis is
		// fixed, so a --fund it does not hold cannot be added now.
		for _, f := range funds {
			if _, err := keyring.Open(homes[0]).Get(f.name); err != nil {
				return nil, fmt.Errorf("--fund %s: the devnet in %s exists and has no key %q; --fund applies when a devnet is created (remove %s to start over)", f.name, dir, f.name, dir)
			}
		}
		return homes, nil
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
	for _, f := range funds {
		key, err := ledger.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		for _, h := range homes {
			if _, err := keyring.Open(h).Import(f.name, key); err != nil {
				return nil, err
			}
		}
		gen.Accounts = append(gen.Accounts, ledger.GenesisAccount{Address: key.Address(), Balances: f.coins})
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

// startNodeProcess starts 'sos run --home H' as a child whose command line
// names its home, logging to H.log.
func startNodeProcess(self, home string) (*exec.Cmd, error) {
	logf, err := os.OpenFile(home+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	p := exec.Command(self, "run", "--home", home)
	p.Stdout, p.Stderr = logf, logf
	dieWithParent(p)
	err = p.Start()
	logf.Close() // the child has its own descriptor
	if err != nil {
		return nil, err
	}
	return p, nil
}

// devnetSocket is the control socket of a running devnet, in its directory.
const devnetSocket = "devnet.sock"

// devnet supervises the node processes of a local cluster: it reports a
// node that stops, keeps the others running, restarts a node on request
// (its control socket) and stops them all when its context ends. All its
// state is owned by the run loop.
type devnet struct {
	dir   string
	homes []string
	api   []string // API URLs
	p2p   []string // peer addresses
	out   io.Writer

	// start starts node i's process; probe asks node i for its status.
	start func(i int) (*exec.Cmd, error)
	probe func(ctx context.Context, i int) (*client.Status, error)

	procs    []*nodeProc // nil: not running
	stopping []bool      // a stop the devnet asked for (not a failure to report)
	ready    []bool      // the node served its API since it last started
	exits    chan *nodeProc
	reqs     chan ctlRequest
	quit     chan struct{} // closed when run returns
}

// nodeProc is one process of node i; done is closed once it has exited,
// with err from Wait.
type nodeProc struct {
	i    int
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (p *nodeProc) pid() int { return p.cmd.Process.Pid }

type ctlRequest struct {
	line  string
	reply chan string
}

// newDevnet supervises the nodes of homes, reading their addresses from
// their config; the caller sets start.
func newDevnet(dir string, homes []string, out io.Writer) (*devnet, error) {
	var api, p2p []string
	clients := make([]*client.Client, len(homes))
	for i, h := range homes {
		cfg, err := kernel.LoadConfig(h)
		if err != nil {
			return nil, err
		}
		api = append(api, "http://"+cfg.APIAddr)
		p2p = append(p2p, cfg.P2PAddr)
		if clients[i], err = client.New(api[i]); err != nil {
			return nil, err
		}
	}
	d := newSupervisor(dir, homes, api, p2p, out)
	d.probe = func(ctx context.Context, i int) (*client.Status, error) { return clients[i].Status(ctx) }
	return d, nil
}

// newSupervisor is a devnet without its start and probe functions.
func newSupervisor(dir string, homes, api, p2p []string, out io.Writer) *devnet {
	return &devnet{dir: dir, homes: homes, api: api, p2p: p2p, out: out, procs: make([]*nodeProc, len(homes)), stopping: make([]bool, len(homes)),
		ready: make([]bool, len(homes)), exits: make(chan *nodeProc), reqs: make(chan ctlRequest), quit: make(chan struct{})}
}

func (d *devnet) say(format string, args ...any) { fmt.Fprintf(d.out, format+"\n", args...) }

// run starts every node and supervises them until ctx ends (then stops
// them all) or every node has stopped.
func (d *devnet) run(ctx context.Context) error {
	defer close(d.quit)
	defer d.stopAll()
	ln, err := d.listenControl()
	if err != nil {
		d.say("note: no control socket (%v): 'sos devnet restart' will not reach this devnet", err)
	} else {
		defer ln.Close()
		go d.serveControl(ctx, ln)
	}
	for i := range d.homes {
		if err := d.startNode(i); err != nil {
			return fmt.Errorf("devnet: start node%d: %w", i, err)
		}
	}
	d.say("started %d node processes; waiting for their APIs to answer (logs: %s)", len(d.homes), filepath.Join(d.dir, "nodeI.log"))
	started := time.Now()
	lastWait := started
	announced, haveLeader := false, false
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			d.say("stopping %d nodes", d.running())
			return nil
		case e := <-d.exits:
			if d.procs[e.i] != e {
				continue // an earlier process of a node that was restarted
			}
			d.procs[e.i], d.ready[e.i] = nil, false
			if d.stopping[e.i] {
				d.stopping[e.i] = false
				continue
			}
			d.say("node%d stopped: %s; the other %d keep running. Restart it with: sos devnet restart %d --dir %s",
				e.i, d.why(e), d.running(), e.i, d.dir)
			if d.running() == 0 {
				return fmt.Errorf("devnet: every node has stopped (see %s); run 'sos devnet --dir %s' again to restart the cluster", filepath.Join(d.dir, "nodeI.log"), d.dir)
			}
		case r := <-d.reqs:
			r.reply <- d.handle(r.line)
		case <-tick.C:
			d.probeNodes(ctx)
			switch {
			case !announced && d.allReady():
				announced = true
				for i := range d.homes {
					d.say("node%d api %s p2p %s home %s pid %d", i, d.api[i], d.p2p[i], d.homes[i], d.procs[i].pid())
				}
				if len(d.homes) > 1 {
					d.say("waiting for the nodes to elect a leader")
				}
			case !announced && time.Since(lastWait) >= 5*time.Second:
				lastWait = time.Now()
				d.say("still waiting (%s) for the API of %s; see their logs", time.Since(started).Round(time.Second), strings.Join(d.notReady(), ", "))
			}
			if announced && !haveLeader {
				if leader, ok := d.leader(ctx); ok {
					haveLeader = true
					d.say("devnet of %d nodes running (leader %s); funded key \"operator\" in each home; Ctrl-C stops all, "+
						"'sos devnet restart N --dir %s' restarts node N", len(d.homes), leader, d.dir)
				} else if time.Since(lastWait) >= 5*time.Second {
					lastWait = time.Now()
					d.say("still waiting for a leader (%s); the nodes must reach each other on their p2p addresses", time.Since(started).Round(time.Second))
				}
			}
		}
	}
}

// startNode starts node i and watches its exit.
func (d *devnet) startNode(i int) error {
	cmd, err := d.start(i)
	if err != nil {
		return err
	}
	p := &nodeProc{i: i, cmd: cmd, done: make(chan struct{})}
	d.procs[i], d.ready[i], d.stopping[i] = p, false, false
	go func() {
		p.err = cmd.Wait()
		close(p.done)
		select {
		case d.exits <- p:
		case <-d.quit:
		}
	}()
	return nil
}

func (d *devnet) running() int {
	n := 0
	for _, p := range d.procs {
		if p != nil {
			n++
		}
	}
	return n
}

func (d *devnet) allReady() bool {
	for i := range d.homes {
		if !d.ready[i] {
			return false
		}
	}
	return true
}

func (d *devnet) notReady() []string {
	var out []string
	for i := range d.homes {
		if !d.ready[i] {
			state := ""
			if d.procs[i] == nil {
				state = " (stopped)"
			}
			out = append(out, fmt.Sprintf("node%d%s", i, state))
		}
	}
	return out
}

// probeNodes asks each running node that has not answered yet for its status.
func (d *devnet) probeNodes(ctx context.Context) {
	for i := range d.homes {
		if d.procs[i] == nil || d.ready[i] {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err := d.probe(pctx, i)
		cancel()
		d.ready[i] = err == nil
	}
}

// leader returns the node name of the leader a running node reports.
func (d *devnet) leader(ctx context.Context) (string, bool) {
	for i := range d.homes {
		if d.procs[i] == nil {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		st, err := d.probe(pctx, i)
		cancel()
		if err != nil || st.Leader == "" {
			continue
		}
		for j := range d.homes {
			if sj, err := d.probe(ctx, j); err == nil && sj.NodeID == st.Leader {
				return fmt.Sprintf("node%d", j), true
			}
		}
		return short16(st.Leader), true
	}
	return "", false
}

func short16(s string) string {
	if len(s) > 16 {
		return s[:16]
	}
	return s
}

// why says how a node's process ended: its exit status and the error line
// 'sos run' printed last, if any.
func (d *devnet) why(e *nodeProc) string {
	status := "exited with status 0"
	if e.err != nil {
		status = e.err.Error() // "signal: killed", "exit status 1"
	}
	if e.err == nil || strings.Contains(status, "terminated") {
		status += " (stopped by a signal such as SIGTERM)"
	}
	if line := lastErrorLine(d.homes[e.i] + ".log"); line != "" {
		status += ": " + line
	}
	return status + " (log " + d.homes[e.i] + ".log)"
}

// lastErrorLine is the last "error: ..." line of a node's log (what 'sos
// run' prints when it fails), or "".
func lastErrorLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > 16<<10 {
		_, _ = f.Seek(-16<<10, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	last := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "error: ") {
			last = l
		}
	}
	return last
}

// stopAll stops every running node: SIGTERM, then kill after 5 s.
func (d *devnet) stopAll() {
	for i, p := range d.procs {
		if p != nil {
			d.stopping[i] = true
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for i, p := range d.procs {
		if p != nil && !p.wait(5*time.Second) {
			_ = p.cmd.Process.Kill()
			p.wait(5 * time.Second)
		}
		d.procs[i] = nil
	}
}

// wait reports whether the process exited within timeout.
func (p *nodeProc) wait(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// handle answers one control request: "restart N" or "status".
func (d *devnet) handle(line string) string {
	f := strings.Fields(line)
	switch {
	case len(f) == 1 && f[0] == "status":
		var b strings.Builder
		for i := range d.homes {
			state := "stopped"
			if p := d.procs[i]; p != nil {
				state = "running, pid " + strconv.Itoa(p.pid())
			}
			fmt.Fprintf(&b, "node%d %s  api %s  home %s\n", i, state, d.api[i], d.homes[i])
		}
		return b.String()
	case len(f) == 2 && f[0] == "restart":
		i, err := strconv.Atoi(f[1])
		if err != nil || i < 0 || i >= len(d.homes) {
			return fmt.Sprintf("error: no node %q: want 0..%d\n", f[1], len(d.homes)-1)
		}
		if p := d.procs[i]; p != nil {
			// Its exit reaches the run loop later, as a stale process.
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			if !p.wait(10 * time.Second) {
				_ = p.cmd.Process.Kill()
				p.wait(5 * time.Second)
			}
		}
		if err := d.startNode(i); err != nil {
			return fmt.Sprintf("error: restart node%d: %v\n", i, err)
		}
		msg := fmt.Sprintf("node%d restarted (pid %d, api %s)", i, d.procs[i].pid(), d.api[i])
		d.say("%s", msg)
		return msg + "\n"
	}
	return fmt.Sprintf("error: unknown request %q: want 'restart N' or 'status'\n", line)
}

func (d *devnet) listenControl() (stdnet.Listener, error) {
	path := filepath.Join(d.dir, devnetSocket)
	if c, err := stdnet.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("another devnet runs in %s", d.dir)
	}
	_ = os.Remove(path) // a socket left by a devnet that was killed
	return stdnet.Listen("unix", path)
}

// serveControl answers one request line per connection.
func (d *devnet) serveControl(ctx context.Context, ln stdnet.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			line, err := bufio.NewReader(io.LimitReader(c, 256)).ReadString('\n')
			if err != nil {
				return
			}
			r := ctlRequest{line: strings.TrimSpace(line), reply: make(chan string, 1)}
			select {
			case d.reqs <- r:
			case <-ctx.Done():
				return
			}
			_, _ = io.WriteString(c, <-r.reply)
		}()
	}
}

// devnetRequest sends one request to the devnet running in dir.
func devnetRequest(ctx context.Context, dir, line string) (string, error) {
	path := filepath.Join(dir, devnetSocket)
	var dl stdnet.Dialer
	c, err := dl.DialContext(ctx, "unix", path)
	if err != nil {
		return "", fmt.Errorf("no devnet running in %s (%v): start one with 'sos devnet --dir %s'", dir, err, dir)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	ans, err := io.ReadAll(io.LimitReader(c, 64<<10))
	if err != nil {
		return "", err
	}
	if s := string(ans); strings.HasPrefix(s, "error: ") {
		return "", errors.New(strings.TrimSpace(strings.TrimPrefix(s, "error: ")))
	}
	return string(ans), nil
}
