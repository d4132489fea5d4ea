package main

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/internal/fsutil"
	"github.com/sos-kernel/sos/kernel"
	"github.com/sos-kernel/sos/kernel/keyring"
	"github.com/sos-kernel/sos/ledger"
)

const keysLong = `Manage the account keys (ML-DSA-65) of a home's keyring: one file per key in HOME/keys/
(mode 0600). HOME is --home, else $SOS_HOME, else ~/.sos: 'sos keys add' without --home
creates ~/.sos/keys.

A new key comes with a 24-word BIP-39 mnemonic, printed once: write it down, since
'sos keys add NAME --recover' rebuilds the same address from it ('keys export' is the other
backup). There are no HD paths
(ML-DSA keys cannot be derived the BIP-32 way); --index picks one of several independent
keys of one mnemonic.

Backends (--keyring-backend; 'sos init' records one per home as keyring_backend in
config.toml):
  test   the seed in plaintext: for scripts, devnets and tests. The default.
  file   the seed encrypted with a passphrase (scrypt, XChaCha20-Poly1305): recommended
         for any key that holds value. The passphrase comes from --keyring-passphrase-file,
         else $SOS_KEYRING_PASSPHRASE, else a prompt on the terminal.
Either kind of key file is read whatever the backend; 'sos keys migrate' converts a keyring.
The node key (HOME/node_key.json) is not in the keyring and stays plaintext: the node must
start unattended. Formats and threat model: docs/keys.md.`

func newKeysCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage account keys (ML-DSA-65) in the home's keyring (HOME/keys; HOME defaults to ~/.sos)",
		Long:  keysLong,
	}
	cmd.AddCommand(newKeysAddCmd(g), newKeysShowCmd(g), newKeysListCmd(g), newKeysDeleteCmd(g),
		newKeysExportCmd(g), newKeysImportCmd(g), newKeysMigrateCmd(g))
	return cmd
}

// printTo writes v as JSON with -o json, else calls text.
func (g *globals) printTo(w io.Writer, v any, text func()) error {
	if g.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text()
	return nil
}

const mnemonicWarning = `
Important: write this mnemonic down and keep it somewhere safe. It is the only way to
recover the key if the keyring is lost, and anyone who has it controls the account.

`

func newKeysAddCmd(g *globals) *cobra.Command {
	var recover, noBackup, bip39Pass bool
	var index uint32
	var hdPath, coinType string
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Create a key (printing its mnemonic once), or recover one from a mnemonic with --recover",
		Long: `Create a key from a new 24-word BIP-39 mnemonic and print its address; the mnemonic is
printed once, on stderr (in the JSON with -o json), unless --no-backup.

With --recover, read a mnemonic from stdin (or a prompt on the terminal) and store the key
it derives: the same address it had when it was created.`,
		Example: `  sos keys add alice --home ./n1
  sos keys add alice --recover --home ./n1 < alice.mnemonic
  sos keys add vault --keyring-backend file --home ./n1     # encrypted; asks a passphrase`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if hdPath != "" || coinType != "" {
				return fmt.Errorf("ML-DSA keys have no BIP-32 HD paths or coin types: a mnemonic derives key --index N (0, 1, ...) instead (docs/keys.md)")
			}
			if index != 0 && !recover {
				return fmt.Errorf("--index goes with --recover (a new mnemonic's key is index 0)")
			}
			kr, err := g.keyring()
			if err != nil {
				return err
			}
			if err := kr.Available(args[0]); err != nil {
				return err
			}
			var bip39 string
			if bip39Pass {
				if bip39, err = g.bip39Passphrase(!recover); err != nil {
					return err
				}
			}
			var e *keyring.Entry
			if recover {
				m, err := readMnemonic(cmd)
				if err != nil {
					return err
				}
				e, err = kr.Recover(args[0], m, bip39, index)
				if err != nil {
					return err
				}
			} else if e, err = kr.AddMnemonic(args[0], bip39); err != nil {
				return err
			}
			mnemonic := e.Mnemonic
			if noBackup {
				e.Mnemonic = ""
			}
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			// Say where the key went: without --home it lands in the
			// default home, which is easy to miss.
			where := kr.Dir()
			if abs, err := filepath.Abs(where); err == nil {
				where = abs
			}
			return g.printTo(out, e, func() {
				fmt.Fprintf(errOut, "key %q stored in %s\n", e.Name, where)
				fmt.Fprintf(out, "%s %s\n", e.Name, e.Address)
				if mnemonic != "" && !noBackup {
					fmt.Fprint(errOut, mnemonicWarning+mnemonic+"\n")
				}
			})
		},
	}
	cmd.Flags().BoolVar(&recover, "recover", false, "recover the key from a mnemonic read from stdin (or typed at a prompt)")
	cmd.Flags().BoolVar(&noBackup, "no-backup", false, "do not print the new key's mnemonic")
	cmd.Flags().Uint32Var(&index, "index", 0, "with --recover: which key of the mnemonic (each index is an independent key)")
	cmd.Flags().BoolVar(&bip39Pass, "bip39-passphrase", false,
		"also use a BIP-39 passphrase (\"25th word\"): from $"+envBIP39Passphrase+", else asked; recovering then needs it too")
	cmd.Flags().StringVar(&hdPath, "hd-path", "", "not supported: ML-DSA keys have no HD paths (see --index)")
	cmd.Flags().StringVar(&coinType, "coin-type", "", "not supported: ML-DSA keys have no HD paths (see --index)")
	_ = cmd.Flags().MarkHidden("hd-path")
	_ = cmd.Flags().MarkHidden("coin-type")
	return cmd
}

func newKeysShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "show NAME", Short: "Print a key's address (no passphrase needed)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := keyring.Open(g.home).Info(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			return g.printTo(out, e, func() { fmt.Fprintln(out, e.Address) })
		},
	}
}

func newKeysListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List keys with their addresses (no passphrase needed)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			es, err := keyring.Open(g.home).List()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			return g.printTo(out, es, func() {
				for _, e := range es {
					fmt.Fprintf(out, "%-16s %s\n", e.Name, e.Address)
				}
			})
		},
	}
}

func newKeysDeleteCmd(g *globals) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a key from the keyring (asks to confirm unless -y)",
		Long: `Delete a key's file from the keyring. There is no undo: the key can only come back from its
mnemonic ('keys add NAME --recover') or an export ('keys import'). Asks for confirmation on
stdin unless -y.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kr := keyring.Open(g.home)
			e, err := kr.Info(args[0])
			if errors.Is(err, keyring.ErrNotFound) {
				return err
			}
			addr := "damaged key file"
			if err == nil {
				addr = e.Address
			}
			if !yes {
				fmt.Fprintf(cmd.ErrOrStderr(), "Delete key %q (%s) from %s? Without its mnemonic or an export it is gone for good. [y/N]: ", args[0], addr, kr.Dir())
				line, rerr := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if rerr != nil && rerr != io.EOF {
					return fmt.Errorf("read the confirmation: %w", rerr)
				}
				if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
					fmt.Fprintln(cmd.ErrOrStderr())
					return fmt.Errorf("key %q not deleted (answer y to confirm, or pass -y)", args[0])
				}
			}
			d, err := kr.Delete(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			return g.printTo(out, map[string]any{"name": d.Name, "address": d.Address, "deleted": true}, func() {
				fmt.Fprintf(out, "deleted key %q (%s)\n", d.Name, addr)
			})
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func newKeysExportCmd(g *globals) *cobra.Command {
	var passFile, outFile string
	cmd := &cobra.Command{
		Use:   "export NAME",
		Short: "Print a key encrypted with a passphrase, as an armored block for 'keys import'",
		Long: `Print a key encrypted with a new passphrase (scrypt, XChaCha20-Poly1305) as an armored
"SOS PRIVATE KEY" block, for 'sos keys import' on another machine or home. The passphrase
(at least 8 characters) is asked twice, or read from --armor-passphrase-file. An encrypted
keyring asks for its own passphrase first.`,
		Example: `  sos keys export alice --home ./n1 > alice.key
  sos keys import alice alice.key --home ./n2`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kr, err := g.keyring()
			if err != nil {
				return err
			}
			e, err := kr.Get(args[0]) // the keyring passphrase first, if encrypted
			if err != nil {
				return err
			}
			pass, err := g.armorPassphrase(passFile, true)
			if err != nil {
				return err
			}
			kdf := g.keys.kdf
			if kdf == (keyring.KDF{}) {
				kdf = keyring.DefaultKDF()
			}
			armor, err := keyring.ExportArmor(e.Key, pass, kdf, rand.Reader)
			if err != nil {
				return err
			}
			if outFile != "" {
				if err := fsutil.WriteNew(outFile, armor, 0o600); err != nil {
					return fmt.Errorf("keys export: %w", err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", outFile)
				return nil
			}
			_, err = cmd.OutOrStdout().Write(armor)
			return err
		},
	}
	cmd.Flags().StringVar(&passFile, "armor-passphrase-file", "", "read the export's passphrase from the first line of this file (mode 0600) instead of asking")
	cmd.Flags().StringVar(&outFile, "out", "", "write the export to this new file (mode 0600) instead of stdout")
	return cmd
}

func newKeysImportCmd(g *globals) *cobra.Command {
	var passFile string
	cmd := &cobra.Command{
		Use:   "import NAME FILE",
		Short: "Store a key from a 'keys export' file ('-' reads stdin) under NAME",
		Long: `Decrypt a key exported by 'sos keys export' (its passphrase is asked, or read from
--armor-passphrase-file) and store it under NAME as the keyring's backend stores keys.
A name or an address the keyring already holds is refused; nothing is written when the
passphrase is wrong.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kr, err := g.keyring()
			if err != nil {
				return err
			}
			if err := kr.Available(args[0]); err != nil {
				return err
			}
			var armor []byte
			if args[1] == "-" {
				armor, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 64<<10))
			} else {
				armor, err = os.ReadFile(args[1])
			}
			if err != nil {
				return fmt.Errorf("keys import: %w", err)
			}
			pass, err := g.armorPassphrase(passFile, false)
			if err != nil {
				return err
			}
			e, err := kr.ImportArmor(args[0], armor, pass)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			return g.printTo(out, e, func() { fmt.Fprintf(out, "%s %s\n", e.Name, e.Address) })
		},
	}
	cmd.Flags().StringVar(&passFile, "armor-passphrase-file", "", "read the export's passphrase from the first line of this file (mode 0600) instead of asking")
	return cmd
}

func newKeysMigrateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Rewrite every key as the keyring backend stores keys (encrypt plaintext keys with --keyring-backend file)",
		Long: `Rewrite every key not stored as the backend (--keyring-backend, else the home's
keyring_backend) stores keys: with file, plaintext keys are encrypted with the keyring
passphrase; with test, encrypted keys are decrypted (only when --keyring-backend test is
given). With --keyring-backend, the home's config.toml records the new backend, so later
keys are stored the same way. A wrong passphrase changes nothing; each key file is replaced
atomically, so an interrupted migration leaves keys that all load, and running it again
finishes it.`,
		Example: "  sos keys migrate --keyring-backend file --home ./n1",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, explicit, err := g.keyringBackend()
			if err != nil {
				return err
			}
			kr := g.keyringAs(b)
			if b == keyring.BackendTest && !explicit {
				es, err := kr.List()
				if err != nil {
					return err
				}
				n := 0
				for _, e := range es {
					if e.Encrypted {
						n++
					}
				}
				if n > 0 {
					return fmt.Errorf("keys migrate would decrypt %d key(s) to plaintext, since this home's backend is test: "+
						"pass --keyring-backend test to confirm, or --keyring-backend file to encrypt the plaintext keys instead", n)
				}
			}
			ms, err := kr.Migrate()
			if err != nil {
				return err
			}
			recorded := ""
			if explicit {
				if recorded, err = recordBackend(g.home, b); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			return g.printTo(out, map[string]any{"backend": b, "migrated": ms, "config": recorded}, func() {
				for _, m := range ms {
					fmt.Fprintf(out, "%-16s %s -> %s\n", m.Name, m.Address, m.To)
				}
				if len(ms) == 0 {
					fmt.Fprintf(out, "every key in %s is already stored as %s\n", kr.Dir(), b)
				}
				if recorded != "" {
					fmt.Fprintf(out, "%s: keyring_backend = %q\n", recorded, b)
				}
			})
		},
	}
}

// recordBackend sets keyring_backend in the home's config.toml, if it has
// one (a keys-only home such as ~/.sos has none), and returns its path.
func recordBackend(home string, b keyring.Backend) (string, error) {
	cfg, err := kernel.LoadConfig(home)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if cfg.KeyringBackend == string(b) {
		return "", nil
	}
	cfg.KeyringBackend = string(b)
	if err := kernel.SaveConfig(home, cfg); err != nil {
		return "", err
	}
	return filepath.Join(home, kernel.ConfigFile), nil
}

// signingKey resolves --from: a keyring name (an encrypted key asks for the
// keyring passphrase), or "node" for the home's node key (the governance
// member and certificate issuer of 'sos init') when the keyring has no key
// of that name.
func (g *globals) signingKey(name string) (*ledger.PrivateKey, error) {
	kr, err := g.keyring()
	if err != nil {
		return nil, err
	}
	e, err := kr.Get(name)
	if err == nil {
		return e.Key, nil
	}
	if name == "node" && errors.Is(err, keyring.ErrNotFound) {
		key, _, kerr := keyring.ReadKeyFile(filepath.Join(g.home, kernel.NodeKeyFile))
		if kerr == nil {
			return key, nil
		}
	}
	return nil, err
}
