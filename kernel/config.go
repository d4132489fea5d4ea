package kernel

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/sos-kernel/sos/internal/fsutil"
	"github.com/sos-kernel/sos/internal/units"
	"github.com/sos-kernel/sos/kernel/keyring"
)

// Config is a node's config.toml: everything local to one node (the chain's
// shared rules are in genesis.json).
type Config struct {
	// Moniker is a human name for the node (shown in the TUI and peers).
	Moniker string `toml:"moniker"`
	// APIAddr is where the HTTP API listens; keep it on loopback unless a
	// proxy in front of it authenticates clients.
	APIAddr string `toml:"api_addr"`
	// P2PAddr is the QUIC address peers dial.
	P2PAddr string `toml:"p2p_addr"`
	// BlockInterval is the time between blocks.
	BlockInterval Duration `toml:"block_interval"`
	// EmptyBlocks makes a block every interval even with no transactions,
	// so time-driven logic (market epochs) advances.
	EmptyBlocks bool `toml:"empty_blocks"`
	// MinGasPrices is the cheapest gas price this node admits, per denom
	// ("0.01uTFLP,0.02uKWTT"); empty accepts any price in any declared denom.
	MinGasPrices string `toml:"min_gas_prices"`
	// MempoolSize caps transactions held in the mempool.
	MempoolSize int `toml:"mempool_size"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `toml:"log_level"`
	// Join is set by "sos init --join" to the member that admitted this
	// node ("<node-id>@host:port"): the node starts as a learner and follows
	// the cluster from there (the members it knew then are in join.json; the
	// ledger's member records take over once it has caught up).
	Join string `toml:"join"`
	// BlobLimit bounds what the node's blob store (<home>/blobs: job
	// modules, inputs and outputs) holds, outboards and transfers in
	// progress included ("16GiB"; "0": only the disk). An upload or transfer
	// past it is refused (507), so blobs cannot fill the disk the chain
	// needs.
	BlobLimit ByteSize `toml:"blob_limit"`
	// BlobMaxUpload caps one upload to the node through the API
	// (PUT /v1/blobs); a larger body is refused (413) before it is read.
	BlobMaxUpload ByteSize `toml:"blob_max_upload"`
	// KeyringBackend is how the CLI stores new account keys in this home's
	// keys/ directory (package keyring): "test" keeps the seed in plaintext
	// (scripts, devnets; the default), "file" encrypts it with a passphrase.
	// The node key (node_key.json) is plaintext either way: the node must
	// start unattended.
	KeyringBackend string `toml:"keyring_backend"`

	// Jobs (docs/jobs.md, "The node side"). JobConcurrency is how many
	// job runs the node makes at once — its executor's (the jobs of offers
	// naming its node key), its verifier's and its committee duty's
	// re-executions together; 0 runs none (an offer naming this node then
	// times out, and the node gives no verdicts).
	JobConcurrency int `toml:"job_concurrency"`
	// JobMaxMemory and JobMaxModule cap the memory one job may ask for and
	// the module size this node runs ("1GiB", "64MiB"; 0: those defaults);
	// a job beyond them is not run here. JobMaxData caps the module,
	// inputs and stdin of one job together, which are held in memory while
	// it runs (0: 4GiB).
	JobMaxMemory ByteSize `toml:"job_max_memory"`
	JobMaxModule ByteSize `toml:"job_max_module"`
	JobMaxData   ByteSize `toml:"job_max_data"`
	// JobVerify is which results of jobs whose consumer is a key of this
	// home's keyring the node re-executes: "all" (default), "none" or
	// "sample:F" (a fraction F in (0,1], drawn per job id from a secret of
	// this node, so a provider cannot tell which of its results are
	// checked). A result that re-execution does not reproduce is
	// challenged with the consumer's key.
	JobVerify string `toml:"job_verify"`

	// BlockRetention keeps only the last so many blocks (0: all): older
	// block bodies, transactions and receipts are deleted from the store
	// (docs/operations.md, "Disk growth and pruning"). Pruning is local:
	// state, state roots and consensus are unaffected, and the API answers
	// a pruned height with 410. At least MinBlockRetention, so members
	// catching up can always fetch the blocks they need.
	BlockRetention uint64 `toml:"block_retention"`

	// NodeWatts is the power this machine draws running jobs, as its
	// operator declares it: a job result's energy is modeled as CPU time ×
	// node_watts when no hardware energy counter (Linux powercap) can be
	// read. 0: results carry no modeled figure.
	NodeWatts float64 `toml:"node_watts"`

	// StorageProofSpread is the share of an epoch's blocks over which this
	// node, when it holds pinned blobs, spreads its storage proofs: it
	// answers an epoch's challenges a number of blocks after they are
	// drawn, fixed by its address and the epoch, below ⌊spread ×
	// epoch_blocks⌋ (docs/storage.md, "When a node answers"), so that
	// the holders' proofs do not all land in the block after the draw.
	// 0 answers as soon as the challenges are drawn; at most 0.9, which
	// leaves the epoch's last blocks for an answer to get in.
	StorageProofSpread float64 `toml:"storage_proof_spread"`
}

// ByteSize is a number of bytes written as "256MiB" in TOML (see package
// internal/units for the units it reads).
type ByteSize uint64

// MarshalText implements encoding.TextMarshaler.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(units.FormatExact(uint64(b))), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *ByteSize) UnmarshalText(t []byte) error {
	v, err := units.ParseBytes(string(t))
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

// Duration is a time.Duration written as "500ms" in TOML.
type Duration struct{ time.Duration }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// DefaultConfig is what "sos init" writes.
func DefaultConfig() Config {
	return Config{
		Moniker:        "node",
		APIAddr:        "127.0.0.1:26657",
		P2PAddr:        "127.0.0.1:26656",
		BlockInterval:  Duration{500 * time.Millisecond},
		EmptyBlocks:    true,
		MinGasPrices:   "0.01uTFLP,0.01uKWTT,0.01uTBS",
		MempoolSize:    100_000,
		LogLevel:       "info",
		KeyringBackend: string(keyring.BackendTest),
		BlobLimit:      16 << 30,
		BlobMaxUpload:  4 << 30,

		JobConcurrency: 2,
		JobMaxMemory:   1 << 30,
		JobMaxModule:   64 << 20,
		JobMaxData:     4 << 30,
		JobVerify:      "all",
		NodeWatts:      65,

		StorageProofSpread: 0.5,
	}
}

// Validate rejects a configuration the node cannot run with, saying which
// setting is wrong and why.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.APIAddr); err != nil {
		return fmt.Errorf("kernel: config: api_addr %q: %w", c.APIAddr, err)
	}
	if _, _, err := net.SplitHostPort(c.P2PAddr); err != nil {
		return fmt.Errorf("kernel: config: p2p_addr %q: %w", c.P2PAddr, err)
	}
	if c.BlockInterval.Duration < 10*time.Millisecond || c.BlockInterval.Duration > time.Minute {
		return fmt.Errorf("kernel: config: block_interval %s must be between 10ms and 1m", c.BlockInterval)
	}
	if c.MempoolSize < 1 {
		return fmt.Errorf("kernel: config: mempool_size must be positive")
	}
	if c.BlobMaxUpload == 0 {
		return fmt.Errorf("kernel: config: blob_max_upload must be positive")
	}
	if c.JobConcurrency < 0 || c.JobConcurrency > 1024 {
		return fmt.Errorf("kernel: config: job_concurrency %d must be between 0 and 1024", c.JobConcurrency)
	}
	if c.JobMaxMemory != 0 && (c.JobMaxMemory < 64<<10 || c.JobMaxMemory > 4<<30) {
		return fmt.Errorf("kernel: config: job_max_memory %s must be between 64KiB and 4GiB", units.Format(uint64(c.JobMaxMemory)))
	}
	if _, err := parseVerifyMode(c.JobVerify); err != nil {
		return fmt.Errorf("kernel: config: %w", err)
	}
	if c.NodeWatts < 0 || c.NodeWatts > 1e6 || c.NodeWatts != c.NodeWatts {
		return fmt.Errorf("kernel: config: node_watts %v must be between 0 and 1000000", c.NodeWatts)
	}
	if !(c.StorageProofSpread >= 0 && c.StorageProofSpread <= 0.9) {
		return fmt.Errorf("kernel: config: storage_proof_spread %v must be between 0 and 0.9", c.StorageProofSpread)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("kernel: config: log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.KeyringBackend != "" {
		if _, err := keyring.ParseBackend(c.KeyringBackend); err != nil {
			return fmt.Errorf("kernel: config: keyring_backend %q: want file (encrypted) or test (plaintext)", c.KeyringBackend)
		}
	}
	return nil
}

// Home layout.
const (
	ConfigFile  = "config.toml"
	GenesisFile = "genesis.json"
	NodeKeyFile = "node_key.json"
	KeysDir     = "keys"
	BlobsDir    = "blobs" // the node's blob store (package blob)
)

// LoadConfig reads home/config.toml strictly (unknown keys are errors).
func LoadConfig(home string) (Config, error) {
	b, err := os.ReadFile(filepath.Join(home, ConfigFile))
	if err != nil {
		return Config{}, fmt.Errorf("kernel: config: %w (run 'sos init --home %s' first)", err, home)
	}
	cfg := DefaultConfig()
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) && len(de.Key()) > 0 {
			return Config{}, fmt.Errorf("kernel: config %s: %s: %w", filepath.Join(home, ConfigFile), strings.Join(de.Key(), "."), err)
		}
		return Config{}, fmt.Errorf("kernel: config %s: %w", filepath.Join(home, ConfigFile), err)
	}
	return cfg, cfg.Validate()
}

// SaveConfig writes home/config.toml.
func SaveConfig(home string, cfg Config) error {
	b, err := toml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("kernel: config: %w", err)
	}
	return WriteFileAtomic(filepath.Join(home, ConfigFile), b, 0o644)
}

// WriteFileAtomic replaces path with data (mode perm) so that a crash
// leaves the old file or the new one, never a torn one: see package
// internal/fsutil (temp file synced, renamed, directory synced).
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	if err := fsutil.WriteAtomic(path, data, perm); err != nil {
		return fmt.Errorf("kernel: write %s: %w", path, err)
	}
	return nil
}
