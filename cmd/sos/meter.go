package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
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

func newMeterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "meter", Short: "Metering devices: register a device key, post signed readings, run a reference meter",
		Long: `A meter is a device identity — an ML-DSA-65 key — that a provider registers for one resource kind.
The device signs readings (lease, epoch, kind, cumulative counter, sequence number); anyone may submit
them. Counters and sequence numbers only grow, so a reading cannot be replayed or rolled back. The
first reading of a device sets its baseline; each later one credits the increase to its lease and
epoch. For a kind a meter read, settlement pays the metered amount (capped at the lease) instead of
the parties' reports, and certificates say "meter <id>". See docs/meters.md.`}
	cmd.AddCommand(newMeterKeygenCmd(g), newMeterRegisterCmd(g), newMeterReportCmd(g), newMeterSimulateCmd(g), newMeterListCmd(g))
	return cmd
}

func newMeterKeygenCmd(g *globals) *cobra.Command {
	var out, pub string
	c := &cobra.Command{
		Use: "keygen", Short: "Make a device key: --out meter.key (private, mode 0600) and meter.pub (public, hex)", Args: cobra.NoArgs,
		Example: "  sos meter keygen --out meter.key && sos meter register --kind energy --pubkey meter.pub --from prov",
		RunE: func(cmd *cobra.Command, args []string) error {
			if pub == "" {
				pub = strings.TrimSuffix(out, ".key") + ".pub"
			}
			key, err := ledger.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			if err := keyring.WriteKeyFile(out, "meter", key); err != nil {
				return err
			}
			if err := os.WriteFile(pub, []byte(hex.EncodeToString(key.Public().Bytes())+"\n"), 0o644); err != nil {
				return err
			}
			return g.print(map[string]string{"key": out, "pubkey": pub, "fingerprint": key.Public().Fingerprint()}, func() {
				fmt.Printf("device key %s (private), public key %s, fingerprint %s\n", out, pub, key.Public().Fingerprint())
			})
		},
	}
	c.Flags().StringVar(&out, "out", "meter.key", "private key file to write (never overwritten)")
	c.Flags().StringVar(&pub, "pub", "", "public key file to write (default: --out with .pub)")
	return c
}

// readPubKey reads a device's public key: a .pub file (hex) or a key file.
func readPubKey(path string) (ledger.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return ledger.PublicKey{}, err
	}
	if raw, err := hex.DecodeString(strings.TrimSpace(string(b))); err == nil {
		return ledger.ParsePublicKey(raw)
	}
	key, _, err := keyring.ReadKeyFile(path)
	if err != nil {
		return ledger.PublicKey{}, fmt.Errorf("%s is neither a hex public key nor a key file: %w", path, err)
	}
	return key.Public(), nil
}

func newMeterRegisterCmd(g *globals) *cobra.Command {
	var tf txFlags
	var kind, pubkey string
	c := &cobra.Command{
		Use: "register --kind KIND --pubkey FILE", Short: "Register a device key as your meter of a resource kind", Args: cobra.NoArgs,
		Example: "  sos meter register --kind energy --pubkey meter.pub --from prov",
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := rome.ParseKind(kind)
			if err != nil {
				return err
			}
			pub, err := readPubKey(pubkey)
			if err != nil {
				return err
			}
			return g.runMarketTx(cmd, &tf, func(b *txbuild.Builder) (ledger.Payload, error) {
				return &ledger.MeterRegister{Resource: k, PubKey: pub.Bytes()}, nil
			})
		},
	}
	tf.register(c)
	c.Flags().StringVar(&kind, "kind", "energy", "resource kind the device measures")
	c.Flags().StringVar(&pubkey, "pubkey", "", "the device's public key: a .pub file (hex) or its key file (required)")
	_ = c.MarkFlagRequired("pubkey")
	return c
}

// energyUnits are the units --energy takes, in millijoules.
var energyUnits = []struct {
	suffix string
	mj     int64
}{{"kWh", 3_600_000_000}, {"Wh", 3_600_000}, {"MJ", 1_000_000_000}, {"kJ", 1_000_000}, {"mJ", 1}, {"J", 1000}}

// parseEnergy reads "12.5kJ", "3Wh", "700J" or "42mJ" exactly, in
// millijoules (a bare number is joules).
func parseEnergy(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	mul := int64(1000)
	for _, u := range energyUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mul = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mj
			break
		}
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok || r.Sign() < 0 {
		return 0, fmt.Errorf("energy %q: want a non-negative amount with a unit: mJ, J, kJ, MJ, Wh, kWh", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(mul))
	if !r.IsInt() || !r.Num().IsUint64() {
		return 0, fmt.Errorf("energy %q: not a whole number of millijoules, or too large", s)
	}
	return r.Num().Uint64(), nil
}

// meterOf finds the meter registered for key (id 0), or checks the one given.
func meterOf(ctx context.Context, c *client.Client, key *ledger.PrivateKey, id uint64) (*client.Meter, error) {
	fp := key.Public().Fingerprint()
	if id != 0 {
		m, err := c.Meter(ctx, id)
		if err != nil {
			return nil, err
		}
		if m.Key != fp {
			return nil, fmt.Errorf("meter %d is registered with key %s, not this device's %s", id, m.Key, fp)
		}
		return m, nil
	}
	ms, err := c.Meters(ctx, "")
	if err != nil {
		return nil, err
	}
	for i := range ms {
		if ms[i].Key == fp {
			return &ms[i], nil
		}
	}
	return nil, fmt.Errorf("no meter is registered with this device's key %s (sos meter register)", fp)
}

// signReading is a device's signed reading.
func signReading(key *ledger.PrivateKey, chainID string, meter uint64, st ledger.MeterStatement) (*ledger.MeterReading, error) {
	sig, err := ledger.SignMeterStatement(ledger.NewCodec(), key, chainID, &st)
	if err != nil {
		return nil, err
	}
	return &ledger.MeterReading{MeterID: meter, Statement: st, Signature: sig}, nil
}

func newMeterReportCmd(g *globals) *cobra.Command {
	var tf txFlags
	var lease, meterID, seq, counter uint64
	var epoch int64
	var energy, keyPath, kind string
	c := &cobra.Command{
		Use:   "report --lease L --energy AMOUNT --key meter.key",
		Short: "Post a reading signed by a device: its cumulative counter for a lease and epoch",
		Long: `Post a reading signed by a device key (--key): the device's cumulative counter (--energy 12.5kJ, or
--counter N in the kind's measure: compute gas, bandwidth bytes, energy millijoules, storage byte-epochs)
for a lease and epoch (default: the current one; readings are accepted during the epoch and the next).
The sequence number defaults to the meter's last one plus one. Any key may send it (--from pays the fee).`,
		Example: "  sos meter report --lease 3 --energy 12.5kJ --key meter.key --from prov",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			key, _, err := keyring.ReadKeyFile(keyPath)
			if err != nil {
				return err
			}
			return g.runMarketTx(cmd, &tf, func(b *txbuild.Builder) (ledger.Payload, error) {
				ctx, cancel := cmdContext(cmd, 30*time.Second)
				defer cancel()
				m, err := meterOf(ctx, b.Client, key, meterID)
				if err != nil {
					return nil, err
				}
				k, err := rome.ParseKind(m.Kind)
				if err != nil {
					return nil, err
				}
				if kind != "" && kind != m.Kind {
					return nil, fmt.Errorf("meter %d measures %s, not %s", m.MeterID, m.Kind, kind)
				}
				v := counter
				switch {
				case energy != "" && k != rome.KindEnergy:
					return nil, fmt.Errorf("--energy: meter %d measures %s (use --counter)", m.MeterID, m.Kind)
				case energy != "":
					if v, err = parseEnergy(energy); err != nil {
						return nil, err
					}
				case !cmd.Flags().Changed("counter"):
					return nil, errors.New("give the device's counter: --energy AMOUNT or --counter N")
				}
				e := uint64(epoch)
				if epoch < 0 {
					mk, err := b.Client.RomeMarket(ctx)
					if err != nil {
						return nil, err
					}
					e = mk.Epoch
				}
				s := seq
				if s == 0 {
					s = m.Seq + 1
				}
				return signReading(key, b.ChainID, m.MeterID, ledger.MeterStatement{LeaseID: lease, Epoch: e, Kind: k, Counter: v, Seq: s})
			})
		},
	}
	tf.register(c)
	c.Flags().Uint64Var(&lease, "lease", 0, "the lease the reading is for (required)")
	c.Flags().Int64Var(&epoch, "epoch", -1, "the epoch it covers (default: the current one)")
	c.Flags().StringVar(&energy, "energy", "", "an energy meter's cumulative counter, e.g. 12.5kJ, 3Wh, 700J")
	c.Flags().Uint64Var(&counter, "counter", 0, "the cumulative counter in the kind's measure")
	c.Flags().StringVar(&kind, "kind", "", "the kind the meter measures (checked against its registration)")
	c.Flags().StringVar(&keyPath, "key", "meter.key", "the device's key file")
	c.Flags().Uint64Var(&meterID, "meter", 0, "meter id (default: the one registered with the key)")
	c.Flags().Uint64Var(&seq, "seq", 0, "the device's sequence number (default: the meter's last + 1)")
	_ = c.MarkFlagRequired("lease")
	return c
}

// counterSource reads a device counter, in millijoules.
type counterSource struct {
	file   string  // a file holding the counter (a number in millijoules, or with a unit)
	dir    string  // a powercap directory
	watts  float64 // a simulated device: the counter grows at watts from start
	start  time.Time
	base   kernel.PowercapReading
	acc    uint64 // powercap energy since start, µJ
	hasCap bool
}

func (s *counterSource) read() (uint64, error) {
	switch {
	case s.file != "":
		b, err := os.ReadFile(s.file)
		if err != nil {
			return 0, err
		}
		t := strings.TrimSpace(string(b))
		if v, err := strconv.ParseUint(t, 10, 64); err == nil {
			return v, nil
		}
		return parseEnergy(t)
	case s.hasCap:
		now, ok := kernel.ReadPowercap(s.dir)
		if !ok {
			return 0, fmt.Errorf("powercap counters under %s are no longer readable", s.dir)
		}
		d, err := now.Since(s.base)
		if err != nil {
			return 0, err
		}
		s.acc += d
		s.base = now
		return s.acc / 1000, nil
	default:
		return uint64(time.Since(s.start).Seconds() * s.watts * 1000), nil
	}
}

func newMeterSimulateCmd(g *globals) *cobra.Command {
	var tf txFlags
	var lease, meterID uint64
	var keyPath, file, dir string
	var watts float64
	var count int
	c := &cobra.Command{
		Use:   "simulate --lease L --key meter.key --from KEY",
		Short: "A reference energy meter: read a counter every epoch and post signed readings",
		Long: `A reference energy meter. Once per epoch it reads a counter and posts a reading signed with the device
key, with the next sequence number, for --lease. The counter comes from, in order: --counter-file (a
file holding the cumulative counter, in millijoules or with a unit, that some other program keeps up to
date); the Linux powercap (Intel RAPL) package energy counters under --powercap (default
/sys/class/powercap/intel-rapl:*/energy_uj, often readable by root only) — real measurements of this
machine's processor packages; or, on a machine without either, --watts: a SIMULATION whose counter
grows at that power from the start. Only a device the provider cannot tamper with makes readings worth
paying for; this program shows the protocol, it is not such a device.`,
		Example: "  sos meter simulate --lease 3 --key meter.key --from prov\n  sos meter simulate --lease 3 --key meter.key --watts 120 --count 10 --from prov",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			key, _, err := keyring.ReadKeyFile(keyPath)
			if err != nil {
				return err
			}
			src := &counterSource{file: file, dir: dir, watts: watts, start: time.Now()}
			if file == "" {
				src.base, src.hasCap = kernel.ReadPowercap(dir)
				if !src.hasCap && watts <= 0 {
					return fmt.Errorf("no readable powercap counter under %s: give --counter-file, or --watts W to simulate a device", dir)
				}
			}
			how := "counter file " + file
			switch {
			case file != "":
			case src.hasCap:
				how = "powercap counters under " + dir
			default:
				how = fmt.Sprintf("SIMULATED device at %g W (no powercap counter on this machine)", watts)
			}
			fmt.Fprintf(os.Stderr, "meter: reading %s\n", how)
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			b, err := txbuild.New(ctx, c)
			if err != nil {
				return err
			}
			m, err := meterOf(ctx, c, key, meterID)
			if err != nil {
				return err
			}
			signer, err := g.signingKey(tf.from)
			if err != nil {
				return err
			}
			seq := m.Seq
			last := ^uint64(0)
			for posted := 0; count <= 0 || posted < count; {
				mk, err := c.RomeMarket(ctx)
				if err != nil {
					return err
				}
				if mk.Epoch == last {
					select {
					case <-ctx.Done():
						return nil
					case <-time.After(250 * time.Millisecond):
					}
					continue
				}
				v, err := src.read()
				if err != nil {
					return err
				}
				seq++
				p, err := signReading(key, b.ChainID, m.MeterID, ledger.MeterStatement{LeaseID: lease, Epoch: mk.Epoch, Kind: rome.KindEnergy, Counter: v, Seq: seq})
				if err != nil {
					return err
				}
				res, err := b.Send(ctx, signer, p, txbuild.Options{Wait: true})
				if err != nil {
					return fmt.Errorf("reading %d: %w", seq, err)
				}
				fmt.Printf("epoch %d: counter %d mJ, seq %d, committed at height %d\n", mk.Epoch, v, seq, res.Height)
				last = mk.Epoch
				posted++
			}
			return nil
		},
	}
	tf.register(c)
	c.Flags().Uint64Var(&lease, "lease", 0, "the lease the readings are for (required)")
	c.Flags().StringVar(&keyPath, "key", "meter.key", "the device's key file")
	c.Flags().Uint64Var(&meterID, "meter", 0, "meter id (default: the one registered with the key)")
	c.Flags().StringVar(&file, "counter-file", "", "read the counter from this file instead of powercap")
	c.Flags().StringVar(&dir, "powercap", kernel.PowercapDir, "powercap directory")
	c.Flags().Float64Var(&watts, "watts", 0, "without a counter: simulate a device drawing this power")
	c.Flags().IntVar(&count, "count", 0, "stop after this many readings (0: run until interrupted)")
	_ = c.MarkFlagRequired("lease")
	return c
}

func newMeterListCmd(g *globals) *cobra.Command {
	var owner string
	c := &cobra.Command{
		Use: "list", Short: "Registered meters", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(g, cmd, func(ctx context.Context, c *client.Client) ([]client.Meter, error) { return c.Meters(ctx, owner) },
				func(ms []client.Meter) {
					if len(ms) == 0 {
						fmt.Println("no meters")
					}
					for _, m := range ms {
						fmt.Printf("meter %d  %-8s owner %s  key %s  %d readings, last counter %d %s, seq %d\n",
							m.MeterID, m.Kind, m.Owner, m.Key, m.Readings, m.Counter, m.Measure, m.Seq)
					}
				})
		},
	}
	c.Flags().StringVar(&owner, "owner", "", "only meters of this provider (address)")
	return c
}
