package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/kernel"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/keyring"
	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome"
)

// sendMarketTx is sendTx printing a failed transaction with the market's result.
func (g *globals) sendMarketTx(cmd *cobra.Command, f *txFlags, build func(b *txbuild.Builder) (ledger.Payload, error)) (*client.SubmitResult, error) {
	return g.submitTx(cmd, f, build, g.printMarketTx)
}

// marketTxResult is what market transactions print: the tx fields and the
// result the market returned (offer_id, request_id, proposal_id, ...).
type marketTxResult struct {
	txResult
	Result json.RawMessage `json:"result,omitempty"`
}

func (g *globals) printMarketTx(res *client.SubmitResult) error {
	out := marketTxResult{txResult: txResult{TxHash: res.TxHash, Height: res.Height, Code: res.Code, GasUsed: res.GasUsed, Receipt: res.Receipt}}
	if res.Receipt != nil && res.Receipt.Data != "" && json.Valid([]byte(res.Receipt.Data)) {
		out.Result = json.RawMessage(res.Receipt.Data)
	}
	// Lift the ids to the top level so scripts can read .offer_id etc.
	var flat map[string]any
	b, _ := json.Marshal(out)
	_ = json.Unmarshal(b, &flat)
	var r map[string]any
	if json.Unmarshal(out.Result, &r) == nil {
		for k, v := range r {
			if _, taken := flat[k]; !taken {
				flat[k] = v
			}
		}
	}
	return g.print(flat, func() {
		g.printTxLine(res)
		if len(out.Result) > 0 && string(out.Result) != "null" {
			fmt.Println("result:", string(out.Result))
		}
	})
}

// runMarketTx sends a market payload and prints the result.
func (g *globals) runMarketTx(cmd *cobra.Command, f *txFlags, build func(b *txbuild.Builder) (ledger.Payload, error)) error {
	res, err := g.sendMarketTx(cmd, f, build)
	if err != nil || res == nil {
		return err
	}
	return g.printMarketTx(res)
}

// parseResources parses "compute=100,energy=50" into per-kind amounts.
func parseResources(flag, s string) ([]ledger.ResourceAmount, error) {
	var out []ledger.ResourceAmount
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("%s: %q: want kind=amount, e.g. compute=100", flag, part)
		}
		k, err := rome.ParseKind(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %s=%q: want a whole number of units", flag, name, val)
		}
		out = append(out, ledger.ResourceAmount{Kind: k, Amount: v})
	}
	return sortResources(flag, out)
}

func sortResources(flag string, rs []ledger.ResourceAmount) ([]ledger.ResourceAmount, error) {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Kind < rs[j].Kind })
	for i := 1; i < len(rs); i++ {
		if rs[i].Kind == rs[i-1].Kind {
			return nil, fmt.Errorf("%s: %s given twice", flag, rome.KindName(rs[i].Kind))
		}
	}
	return rs, nil
}

// chainDenoms returns the token each kind settles in on the node's chain
// (storage's is the genesis parameter storage_denom).
func chainDenoms(b *txbuild.Builder) func(uint8) string {
	storage := rome.KindDenom(rome.KindStorage)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if raw, err := b.Client.RomeParams(ctx); err == nil {
		var p struct {
			StorageDenom string `json:"storage_denom"`
		}
		if json.Unmarshal(raw, &p) == nil && p.StorageDenom != "" {
			storage = p.StorageDenom
		}
	}
	return func(k uint8) string {
		if k == rome.KindStorage {
			return storage
		}
		return rome.KindDenom(k)
	}
}

// parsePrices parses "compute=5uTFLP,energy=1uKWTT": each price must be in
// its kind's token on this chain (display or base unit).
func parsePrices(flag, s string, denoms *ledger.Denoms, denomOf func(uint8) string) ([]ledger.ResourceAmount, error) {
	var out []ledger.ResourceAmount
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("%s: %q: want kind=price, e.g. compute=5uTFLP", flag, part)
		}
		k, err := rome.ParseKind(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
		if _, err := strconv.ParseUint(val, 10, 64); err == nil {
			val += denomOf(k) // a bare number is in base units of the kind's token
		}
		c, err := denoms.ParseAmount(val)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", flag, name, err)
		}
		if c.Denom != denomOf(k) {
			return nil, fmt.Errorf("%s: %s settles in %s on this chain, not %s", flag, name, denomOf(k), c.Denom)
		}
		out = append(out, ledger.ResourceAmount{Kind: k, Amount: c.Amount})
	}
	return sortResources(flag, out)
}

// parseMicro parses a decimal degree ("48.13", "-11.5") into micro-degrees exactly.
func parseMicro(s string) (int32, error) {
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	ip, fp, _ := strings.Cut(s, ".")
	if ip == "" && fp == "" || len(fp) > 6 {
		return 0, fmt.Errorf("%q: want degrees with at most 6 decimals", s)
	}
	fp += strings.Repeat("0", 6-len(fp))
	if ip == "" {
		ip = "0"
	}
	i, err1 := strconv.ParseInt(ip, 10, 32)
	f, err2 := strconv.ParseInt(fp, 10, 32)
	if err1 != nil || err2 != nil || i > 180 {
		return 0, fmt.Errorf("%q: not a coordinate", s)
	}
	v := i*1_000_000 + f
	if neg {
		v = -v
	}
	return int32(v), nil
}

// parseLatLon parses "48.13,11.58".
func parseLatLon(flag, s string) (int32, int32, error) {
	a, b, ok := strings.Cut(s, ",")
	if !ok {
		return 0, 0, fmt.Errorf("%s: %q: want lat,lon in degrees, e.g. 48.13,11.58", flag, s)
	}
	lat, err := parseMicro(a)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: latitude %w", flag, err)
	}
	lon, err := parseMicro(b)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: longitude %w", flag, err)
	}
	if lat < -ledger.MaxMicroLat || lat > ledger.MaxMicroLat || lon < -ledger.MaxMicroLon || lon > ledger.MaxMicroLon {
		return 0, 0, fmt.Errorf("%s: %q is outside ±90° latitude / ±180° longitude", flag, s)
	}
	return lat, lon, nil
}

func newRomeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "rome", Short: "The resource market: offers, requests, leases, epochs and allocation policies"}
	cmd.AddCommand(newRomeOfferCmd(g), newRomeRequestCmd(g), newRomeCancelCmd(g), newRomeUsageCmd(g),
		newRomeLeasesCmd(g), newRomeOffersCmd(g), newRomeRequestsCmd(g), newRomeMarketCmd(g), newRomeEpochsCmd(g), newRomePolicyCmd(g), newGenMarketCmd(g))
	return cmd
}

// execNodeAddress resolves --exec-node: "node" is --home's node key (the
// key the node running there signs job results with), else an address
// or a key name of the keyring.
func (g *globals) execNodeAddress(name string) (ledger.Address, error) {
	if name == "node" {
		key, _, err := keyring.ReadKeyFile(filepath.Join(g.home, kernel.NodeKeyFile))
		if err != nil {
			return ledger.Address{}, fmt.Errorf("the offer's jobs run on the node of --home %s, which has no node key (%w): name the node with --exec-node ADDRESS", g.home, err)
		}
		return key.Address(), nil
	}
	a, err := keyring.Open(g.home).Resolve(name)
	if err != nil {
		return ledger.Address{}, fmt.Errorf("--exec-node: %w", err)
	}
	return a, nil
}

func newRomeOfferCmd(g *globals) *cobra.Command {
	var tf txFlags
	var capacity, price, region, at, bond, execNode string
	var attrs uint64
	var reliability uint16
	var from, until uint64
	c := &cobra.Command{
		Use:   "offer",
		Short: "Offer resources: capacity per kind at a price per unit per epoch",
		Long: `Offer resources: capacity per kind at a price per unit per epoch.

An offer that runs jobs (sos job submit) names the node that executes them and posts a bond: with
--bond the node defaults to the one of --home (its node key signs the job results); --exec-node names
another (an address or a key name). The bond moves to the market when the offer is accepted, a
challenge that proves a result wrong takes part of it, and it returns once the offer is closed and
none of its jobs is pending or challengeable.`,
		Example: "  sos rome offer --from prov --capacity compute=100,bandwidth=10,energy=50 \\\n" +
			"      --price compute=5uTFLP,bandwidth=2uTBS,energy=1uKWTT --region eu-west --at 48.13,11.58\n" +
			"  sos rome offer --from prov --capacity compute=100,bandwidth=50 --price compute=5uTFLP,bandwidth=1uTBS --bond 100TFLP --home P",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.runMarketTx(cmd, &tf, func(b *txbuild.Builder) (ledger.Payload, error) {
				p := &ledger.RomeOffer{Region: region, Attrs: attrs, Reliability: reliability, FromEpoch: from, UntilEpoch: until}
				var err error
				if p.Capacity, err = parseResources("--capacity", capacity); err != nil {
					return nil, err
				}
				if p.Price, err = parsePrices("--price", price, b.Denoms, chainDenoms(b)); err != nil {
					return nil, err
				}
				if at != "" {
					p.HasLocation = true
					if p.Lat, p.Lon, err = parseLatLon("--at", at); err != nil {
						return nil, err
					}
				}
				if bond != "" {
					if p.Bond, err = b.Denoms.ParseCoins(bond); err != nil {
						return nil, fmt.Errorf("--bond: %w", err)
					}
				}
				node := execNode
				if node == "" && bond != "" {
					node = "node"
				}
				if node != "" && node != "none" {
					if p.Node, err = g.execNodeAddress(node); err != nil {
						return nil, err
					}
				}
				return p, nil
			})
		},
	}
	tf.register(c)
	c.Flags().StringVar(&bond, "bond", "", "coins backing the offer's jobs, e.g. 100TFLP (an offer runs jobs only with a node and a bond)")
	c.Flags().StringVar(&execNode, "exec-node", "", "the node that runs the offer's jobs: an address, a key name, \"node\" for --home's node key (the default with --bond) or \"none\"")
	c.Flags().StringVar(&capacity, "capacity", "", "capacity per kind, e.g. compute=100,energy=50 (required)")
	c.Flags().StringVar(&price, "price", "", "price per unit per epoch in each kind's token, e.g. compute=5uTFLP,energy=1uKWTT (required)")
	c.Flags().StringVar(&region, "region", "", "region name, e.g. eu-west")
	c.Flags().StringVar(&at, "at", "", "location lat,lon in degrees, e.g. 48.13,11.58")
	c.Flags().Uint64Var(&attrs, "attrs", 0, "attribute bit set the offer has")
	c.Flags().Uint16Var(&reliability, "reliability", 0, "reliability in basis points (10000 = 100%)")
	c.Flags().Uint64Var(&from, "from-epoch", 0, "first epoch the offer is available for new leases")
	c.Flags().Uint64Var(&until, "until-epoch", 0, "epoch from which the offer takes no new leases (0: open-ended)")
	_ = c.MarkFlagRequired("capacity")
	_ = c.MarkFlagRequired("price")
	return c
}

func newRomeRequestCmd(g *globals) *cobra.Command {
	var tf txFlags
	var demand, maxPrice, region, near, credits string
	var epochs, withinKm uint32
	var attrs uint64
	var minRel, replicas uint16
	var bundle bool
	var spread, meterKinds string
	c := &cobra.Command{
		Use:   "request",
		Short: "Request resources for a number of epochs; the maximum cost is escrowed",
		Long: `Request resources for a number of epochs; the maximum cost is escrowed.

--replicas K asks for K whole copies of the demand, each from a different provider (with --spread region
also in different regions), each on an offer that names a node and holds a bond; the escrow covers all K.
Blobs pinned to the request (sos blob pin) are held and proven by every replica; a replica whose node keeps
missing its storage proofs moves to another provider. --meter-kind energy pays that kind only by a
registered meter's signed readings (sos meter), not by the parties' reports.`,
		Example: "  sos rome request --from cons --demand compute=10,energy=5 --max-price compute=8uTFLP,energy=2uKWTT --epochs 3 --region eu-west\n" +
			"  sos rome request --from cons --demand compute=10 --max-price compute=8uTFLP --epochs 3 --near 48.13,11.58 --within-km 50 --bundle\n" +
			"  sos rome request --from cons --demand storage=20 --max-price storage=3uTFLP --epochs 10 --replicas 3 --spread region\n" +
			"  sos rome request --from cons --demand energy=5 --max-price energy=2uKWTT --epochs 10 --meter-kind energy",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if region != "" && near != "" {
				return fmt.Errorf("--region and --near are alternatives: give one")
			}
			if withinKm > 0 && near == "" {
				return fmt.Errorf("--within-km needs --near")
			}
			return g.runMarketTx(cmd, &tf, func(b *txbuild.Builder) (ledger.Payload, error) {
				p := &ledger.RomeRequest{Epochs: epochs, Region: region, WithinKm: withinKm, Attrs: attrs, MinReliability: minRel, Bundle: bundle,
					Replicas: replicas}
				switch spread {
				case "":
				case "region":
					p.Spread = ledger.SpreadRegion
				default:
					return nil, fmt.Errorf("--spread %q: the only spread is region", spread)
				}
				if meterKinds != "" {
					for _, name := range strings.Split(meterKinds, ",") {
						k, err := rome.ParseKind(strings.TrimSpace(name))
						if err != nil {
							return nil, fmt.Errorf("--meter-kind: %w", err)
						}
						p.MeterKinds |= 1 << (k - 1)
					}
				}
				var err error
				if p.Demand, err = parseResources("--demand", demand); err != nil {
					return nil, err
				}
				if p.MaxPrice, err = parsePrices("--max-price", maxPrice, b.Denoms, chainDenoms(b)); err != nil {
					return nil, err
				}
				if near != "" {
					p.HasLocation = true
					if p.Lat, p.Lon, err = parseLatLon("--near", near); err != nil {
						return nil, err
					}
				}
				if credits != "" {
					for _, s := range strings.Split(credits, ",") {
						id, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
						if err != nil {
							return nil, fmt.Errorf("--credits: %q is not a certificate id", s)
						}
						p.Credits = append(p.Credits, id)
					}
					sort.Slice(p.Credits, func(i, j int) bool { return p.Credits[i] < p.Credits[j] })
				}
				return p, nil
			})
		},
	}
	tf.register(c)
	c.Flags().StringVar(&demand, "demand", "", "demand per kind, e.g. compute=10,energy=5 (required)")
	c.Flags().StringVar(&maxPrice, "max-price", "", "maximum price per unit per epoch, e.g. compute=8uTFLP,energy=2uKWTT (required)")
	c.Flags().Uint32Var(&epochs, "epochs", 1, "lease duration in epochs")
	c.Flags().StringVar(&region, "region", "", "only offers in this region")
	c.Flags().StringVar(&near, "near", "", "location lat,lon in degrees (with --within-km)")
	c.Flags().Uint32Var(&withinKm, "within-km", 0, "only offers at most this far from --near")
	c.Flags().Uint64Var(&attrs, "attrs", 0, "attribute bits the offer must have")
	c.Flags().Uint16Var(&minRel, "min-reliability", 0, "minimum offer reliability in basis points")
	c.Flags().BoolVar(&bundle, "bundle", false, "all kinds from one provider, in full")
	c.Flags().StringVar(&credits, "credits", "", "certificate ids to redeem as credit, e.g. 3,7")
	c.Flags().Uint16Var(&replicas, "replicas", 0, "whole copies of the demand, each from a different provider (0: an ordinary request)")
	c.Flags().StringVar(&spread, "spread", "", "with --replicas: \"region\" puts every replica in a different region")
	c.Flags().StringVar(&meterKinds, "meter-kind", "", "kinds paid only by a registered meter's readings, e.g. energy")
	_ = c.MarkFlagRequired("demand")
	_ = c.MarkFlagRequired("max-price")
	return c
}

func parseID(s, what string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("%s %q: want a positive number", what, s)
	}
	return id, nil
}

func newRomeCancelCmd(g *globals) *cobra.Command {
	var tf txFlags
	c := &cobra.Command{
		Use: "cancel ID", Short: "Withdraw your open offer or request (unused escrow returns)", Args: cobra.ExactArgs(1),
		Example: "  sos rome cancel 7 --from cons",
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0], "id")
			if err != nil {
				return err
			}
			return g.runMarketTx(cmd, &tf, func(b *txbuild.Builder) (ledger.Payload, error) { return &ledger.RomeCancel{ID: id}, nil })
		},
	}
	tf.register(c)
	return c
}

func newRomeUsageCmd(g *globals) *cobra.Command {
	var tf txFlags
	var delivered string
	var epoch int64
	c := &cobra.Command{
		Use:   "usage LEASE_ID",
		Short: "Report what a lease delivered this epoch (provider and consumer each report; agreement attests it)",
		Args:  cobra.ExactArgs(1), Example: "  sos rome usage 3 --delivered compute=10,energy=5 --from prov",
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0], "lease id")
			if err != nil {
				return err
			}
			e := uint64(epoch)
			if epoch < 0 {
				c, err := g.client()
				if err != nil {
					return err
				}
				ctx, cancel := cmdContext(cmd, 10*time.Second)
				defer cancel()
				mk, err := c.RomeMarket(ctx)
				if err != nil {
					return err
				}
				e = mk.Epoch
			}
			return g.runMarketTx(cmd, &tf, func(b *txbuild.Builder) (ledger.Payload, error) {
				d, err := parseResources("--delivered", delivered)
				if err != nil {
					return nil, err
				}
				return &ledger.RomeUsage{LeaseID: id, Epoch: e, Delivered: d}, nil
			})
		},
	}
	tf.register(c)
	c.Flags().StringVar(&delivered, "delivered", "", "delivered units per kind, e.g. compute=10 (required)")
	c.Flags().Int64Var(&epoch, "epoch", -1, "epoch the report covers (default: the current epoch)")
	_ = c.MarkFlagRequired("delivered")
	return c
}

func fmtRes(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, ",")
}

func fmtPrices(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

// fmtCoins renders amounts for text output in display units (g.denoms,
// loaded by show before the text is printed).
func (g *globals) fmtCoins(cs []client.Coin) string {
	if len(cs) == 0 {
		return "-"
	}
	return g.denoms.FormatCoins(cs)
}

type listFlags struct {
	owner, status string
	limit         int
}

func (l *listFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&l.owner, "owner", "", "only records of this address or key name")
	c.Flags().StringVar(&l.status, "status", "", "only this status (open, filled, active, ended, cancelled, expired, done)")
	c.Flags().IntVar(&l.limit, "limit", 100, "at most this many, newest first")
}

func (g *globals) filter(l *listFlags) (client.RomeFilter, error) {
	f := client.RomeFilter{Status: l.status, Limit: l.limit}
	if l.owner != "" {
		a, err := keyring.Open(g.home).Resolve(l.owner)
		if err != nil {
			return f, err
		}
		f.Owner = a.String()
	}
	return f, nil
}

// romeListCmd is "sos rome offers|requests|leases": one filtered listing,
// a line per record.
func romeListCmd[T any](g *globals, use, what string, fetch func(*client.Client, context.Context, client.RomeFilter) ([]T, error), line func(*T)) *cobra.Command {
	var lf listFlags
	c := &cobra.Command{
		Use: use, Short: "List " + what + " (newest first)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := g.filter(&lf)
			if err != nil {
				return err
			}
			return show(g, cmd, func(ctx context.Context, c *client.Client) ([]T, error) { return fetch(c, ctx, f) }, func(list []T) {
				if len(list) == 0 {
					fmt.Println("no " + what)
				}
				for i := range list {
					line(&list[i])
				}
			})
		},
	}
	lf.register(c)
	return c
}

func newRomeLeasesCmd(g *globals) *cobra.Command {
	return romeListCmd(g, "leases", "leases", (*client.Client).RomeLeases, func(l *client.RomeLease) {
		fmt.Printf("lease %d  %-7s request %d <- offer %d  %s at %s  epochs %d-%d  paid %s\n", l.ID, l.Status, l.RequestID, l.OfferID,
			fmtRes(l.Amounts), fmtPrices(l.Prices), l.StartEpoch, l.EndEpoch-1, g.fmtCoins(l.Paid))
	})
}

func newRomeOffersCmd(g *globals) *cobra.Command {
	return romeListCmd(g, "offers", "offers", (*client.Client).RomeOffers, func(o *client.RomeOffer) {
		where := o.Region
		if o.At != "" {
			where += " @" + o.At
		}
		jobs := ""
		if o.Node != "" {
			jobs = fmt.Sprintf("  jobs on %s, bond %s", o.Node, g.fmtCoins(o.Bond))
		}
		fmt.Printf("offer %d  %-9s %s  capacity %s  leased %s  price %s  %s%s\n", o.ID, o.Status, o.Owner, fmtRes(o.Capacity), fmtRes(o.Leased), fmtPrices(o.Price), where, jobs)
	})
}

func newRomeRequestsCmd(g *globals) *cobra.Command {
	return romeListCmd(g, "requests", "requests", (*client.Client).RomeRequests, func(r *client.RomeRequest) {
		fmt.Printf("request %d  %-9s %s  demand %s  remaining %s  max %s  %d epochs  escrow %s spent %s refunded %s\n", r.ID, r.Status, r.Owner,
			fmtRes(r.Demand), fmtRes(r.Remaining), fmtPrices(r.MaxPrice), r.Epochs, g.fmtCoins(r.Escrow), g.fmtCoins(r.Spent), g.fmtCoins(r.Refunded))
	})
}

func (g *globals) printEpoch(e *client.RomeEpoch) {
	fmt.Printf("epoch %d (height %d): policy %s, %d offers, %d requests, %d new leases, matched %.2f%%\n",
		e.Epoch, e.Height, e.Policy, e.Offers, e.Requests, e.NewLeases, e.Matched)
	if e.Rejected != "" {
		fmt.Printf("  active policy rejected: %s\n", e.Rejected)
	}
	for _, k := range e.Kinds {
		fmt.Printf("  %-9s capacity %d leased %d (%.2f%%) demand %d matched %d clearing %s\n", k.Kind, k.Capacity, k.Leased, k.Utilization, k.Demand, k.Matched, k.ClearingPrice)
	}
	fmt.Printf("  paid %s refunded %s rewards %s disputes %d certificates %d\n", g.fmtCoins(e.Paid), g.fmtCoins(e.Refunded), g.fmtCoins(e.Rewards), e.Disputes, e.Certs)
}

func newRomeMarketCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "market", Short: "Market summary: epoch, utilization per kind, matched %, clearing prices", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(g, cmd, func(ctx context.Context, c *client.Client) (*client.RomeMarket, error) { return c.RomeMarket(ctx) }, func(m *client.RomeMarket) {
				fmt.Printf("height %d, epoch %d (ends at %d, %d blocks per epoch)\n", m.Height, m.Epoch, m.EpochEndHeight, m.EpochBlocks)
				fmt.Printf("policy %s (fallback %s)\n", m.ActivePolicy, m.FallbackPolicy)
				fmt.Printf("open offers %d, open requests %d, live leases %d, certificates awaiting signature %d\n", m.OpenOffers, m.OpenRequests, m.LiveLeases, m.PendingCerts)
				if m.LastEpoch != nil {
					g.printEpoch(m.LastEpoch)
				}
			})
		},
	}
}

func newRomeEpochsCmd(g *globals) *cobra.Command {
	var limit int
	c := &cobra.Command{
		Use: "epochs", Short: "List processed epochs (newest first)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(g, cmd, func(ctx context.Context, c *client.Client) ([]client.RomeEpoch, error) {
				return c.RomeEpochs(ctx, limit)
			}, func(list []client.RomeEpoch) {
				if len(list) == 0 {
					fmt.Println("no epoch processed yet")
				}
				for i := range list {
					g.printEpoch(&list[i])
				}
			})
		},
	}
	c.Flags().IntVar(&limit, "limit", 20, "at most this many")
	return c
}

func newRomePolicyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Allocation policies: list, upload, activate (through governance)"}
	cmd.AddCommand(&cobra.Command{
		Use: "list", Short: "List uploaded policies", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(g, cmd, func(ctx context.Context, c *client.Client) ([]client.RomePolicy, error) { return c.RomePolicies(ctx) }, func(list []client.RomePolicy) {
				if len(list) == 0 {
					fmt.Println("no policies uploaded (the built-in greedy policy runs)")
				}
				for _, p := range list {
					act := ""
					if p.Active {
						act = "  (active)"
					}
					fmt.Printf("%s  %-16s %8d bytes  by %s at %d%s\n", p.ID, p.Name, p.Size, p.Uploader, p.Height, act)
				}
			})
		},
	})
	var up txFlags
	var name string
	upload := &cobra.Command{
		Use: "upload FILE.wasm", Short: "Upload a policy (a Wasm module exporting allocate); prints its id", Args: cobra.ExactArgs(1),
		Example: "  sos rome policy upload sdk-contracts/policies/greedy/greedy.wasm --from alice",
		RunE: func(cmd *cobra.Command, args []string) error {
			wasm, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			n := name
			if n == "" {
				n = strings.TrimSuffix(filepath.Base(args[0]), ".wasm")
			}
			return g.runMarketTx(cmd, &up, func(b *txbuild.Builder) (ledger.Payload, error) {
				return &ledger.RomePolicyUpload{Name: n, Wasm: wasm}, nil
			})
		},
	}
	up.register(upload)
	upload.Flags().StringVar(&name, "name", "", "policy name (default: the file name)")
	var act txFlags
	var title string
	activate := &cobra.Command{
		Use: "activate ID", Short: "File a governance proposal to make policy ID the active one ('builtin' for the fallback)", Args: cobra.ExactArgs(1),
		Example: "  sos rome policy activate 3f2a... --from node   # then: sos gov vote PROPOSAL yes --from node",
		RunE: func(cmd *cobra.Command, args []string) error {
			t := title
			if t == "" {
				t = "activate policy " + args[0]
			}
			return g.runMarketTx(cmd, &act, func(b *txbuild.Builder) (ledger.Payload, error) {
				return &ledger.GovPropose{Title: t, Param: "active_policy", Value: args[0]}, nil
			})
		},
	}
	act.register(activate)
	activate.Flags().StringVar(&title, "title", "", "proposal title")
	cmd.AddCommand(upload, activate)
	return cmd
}
