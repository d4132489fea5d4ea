package main

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/kernel"
	"github.com/sos-kernel/sos/kernel/keyring"
)

// Environment variables that supply secrets to scripts.
const (
	envKeyringPassphrase = "SOS_KEYRING_PASSPHRASE"
	envBIP39Passphrase   = "SOS_BIP39_PASSPHRASE"
)

// keyringFlags are the keyring settings every command shares.
type keyringFlags struct {
	backend  string
	passFile string

	// Not flags: tests set them.
	kdf    keyring.KDF                      // zero: keyring.DefaultKDF
	prompt func(msg string) ([]byte, error) // nil: ttyPrompt
}

func (f *keyringFlags) register(root *cobra.Command) {
	root.PersistentFlags().StringVar(&f.backend, "keyring-backend", "",
		"how new keys are stored: file (encrypted with a passphrase) or test (plaintext, for scripts and devnets); "+
			"default: keyring_backend in the home's config.toml, else test")
	root.PersistentFlags().StringVar(&f.passFile, "keyring-passphrase-file", "",
		"read the keyring passphrase from the first line of this file (mode 0600) instead of $"+envKeyringPassphrase+" or a prompt")
}

// errNoTerminal: a secret must be asked for and there is no terminal.
var errNoTerminal = errors.New("no terminal to ask on")

// ttyPrompt asks on the controlling terminal with echo off (so a
// passphrase can be typed while stdin is a pipe, as ssh and gpg do).
func ttyPrompt(msg string) ([]byte, error) {
	if tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0); err == nil {
		defer tty.Close()
		fmt.Fprint(tty, msg)
		b, err := term.ReadPassword(tty.Fd())
		fmt.Fprintln(tty)
		return b, err
	}
	if term.IsTerminal(os.Stdin.Fd()) {
		fmt.Fprint(os.Stderr, msg)
		b, err := term.ReadPassword(os.Stdin.Fd())
		fmt.Fprintln(os.Stderr)
		return b, err
	}
	return nil, errNoTerminal
}

func (g *globals) ask(msg string) ([]byte, error) {
	if g.keys.prompt != nil {
		return g.keys.prompt(msg)
	}
	return ttyPrompt(msg)
}

// askNew asks for a new secret twice and checks both match.
func (g *globals) askNew(msg, again string) ([]byte, error) {
	a, err := g.ask(msg)
	if err != nil {
		return nil, err
	}
	b, err := g.ask(again)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(a, b) != 1 {
		return nil, errors.New("the two passphrases differ: nothing was written")
	}
	return a, nil
}

// readPassphraseFile reads the first line of a passphrase file (mode 0600:
// a passphrase others can read protects nothing).
func readPassphraseFile(flag, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	if err := keyring.CheckPrivate(path, fi); err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		return nil, fmt.Errorf("%s: the first line of %s is empty", flag, path)
	}
	return line, nil
}

// keyringPassphrase is where the keyring passphrase comes from:
// --keyring-passphrase-file, else $SOS_KEYRING_PASSPHRASE, else a prompt
// on the terminal (three tries).
func (g *globals) keyringPassphrase() *keyring.Passphrase {
	if path := g.keys.passFile; path != "" {
		return &keyring.Passphrase{Tries: 1, Get: func(keyring.PassphraseRequest) ([]byte, error) {
			return readPassphraseFile("--keyring-passphrase-file", path)
		}}
	}
	if v, ok := os.LookupEnv(envKeyringPassphrase); ok {
		return &keyring.Passphrase{Tries: 1, Get: func(keyring.PassphraseRequest) ([]byte, error) {
			if v == "" {
				return nil, fmt.Errorf("%w: $%s is set but empty", keyring.ErrNoPassphrase, envKeyringPassphrase)
			}
			return []byte(v), nil
		}}
	}
	how := fmt.Sprintf("set $%s, pass --keyring-passphrase-file FILE, or run in a terminal", envKeyringPassphrase)
	return &keyring.Passphrase{Tries: 3, Get: func(r keyring.PassphraseRequest) ([]byte, error) {
		var b []byte
		var err error
		switch {
		case r.New:
			b, err = g.askNew(fmt.Sprintf("Enter a passphrase to encrypt the keys in %s (at least 8 characters): ", r.Dir), "Repeat the passphrase: ")
			if errors.Is(err, errNoTerminal) {
				return nil, fmt.Errorf("%w: keyring-backend file encrypts the keys in %s with a passphrase: %s (or use --keyring-backend test for plaintext keys)",
					keyring.ErrNoPassphrase, r.Dir, how)
			}
		case r.Retry:
			b, err = g.ask("Wrong passphrase, try again: ")
		default:
			b, err = g.ask(fmt.Sprintf("Enter the passphrase of the keyring %s: ", r.Dir))
		}
		if errors.Is(err, errNoTerminal) {
			return nil, fmt.Errorf("%w: the keys in %s are encrypted (keyring-backend file): %s", keyring.ErrNoPassphrase, r.Dir, how)
		}
		return b, err
	}}
}

// armorPassphrase is the passphrase of an exported key: from
// --armor-passphrase-file, else asked (twice when exporting).
func (g *globals) armorPassphrase(path string, export bool) ([]byte, error) {
	if path != "" {
		return readPassphraseFile("--armor-passphrase-file", path)
	}
	var b []byte
	var err error
	if export {
		b, err = g.askNew("Enter a passphrase to encrypt the exported key (at least 8 characters): ", "Repeat the passphrase: ")
	} else {
		b, err = g.ask("Enter the passphrase of the exported key: ")
	}
	if errors.Is(err, errNoTerminal) {
		return nil, fmt.Errorf("the exported key's passphrase: pass --armor-passphrase-file FILE or run in a terminal")
	}
	return b, err
}

// bip39Passphrase is the optional BIP-39 passphrase ("25th word"):
// $SOS_BIP39_PASSPHRASE, else asked (twice for a new key).
func (g *globals) bip39Passphrase(isNew bool) (string, error) {
	if v, ok := os.LookupEnv(envBIP39Passphrase); ok {
		return v, nil
	}
	var b []byte
	var err error
	if isNew {
		b, err = g.askNew("Enter a BIP-39 passphrase (needed, with the mnemonic, to recover the key): ", "Repeat the BIP-39 passphrase: ")
	} else {
		b, err = g.ask("Enter the BIP-39 passphrase: ")
	}
	if errors.Is(err, errNoTerminal) {
		return "", fmt.Errorf("--bip39-passphrase: set $%s or run in a terminal", envBIP39Passphrase)
	}
	return string(b), err
}

// keyringBackend resolves the backend: --keyring-backend, else the home's
// config.toml, else (a home with keys but no node, such as ~/.sos) file if
// the keyring already holds an encrypted key, else test. explicit reports
// whether the flag chose it.
func (g *globals) keyringBackend() (b keyring.Backend, explicit bool, err error) {
	if g.keys.backend != "" {
		b, err := keyring.ParseBackend(g.keys.backend)
		return b, true, err
	}
	cfg, err := kernel.LoadConfig(g.home)
	switch {
	case err == nil:
		if cfg.KeyringBackend == "" {
			return keyring.BackendTest, false, nil
		}
		b, err := keyring.ParseBackend(cfg.KeyringBackend)
		return b, false, err
	case errors.Is(err, os.ErrNotExist):
		es, err := keyring.Open(g.home).List()
		if err != nil {
			return "", false, err
		}
		for _, e := range es {
			if e.Encrypted {
				return keyring.BackendFile, false, nil
			}
		}
		return keyring.BackendTest, false, nil
	default:
		return "", false, err
	}
}

// keyring opens the home's keyring with the resolved backend and
// passphrase source.
func (g *globals) keyring() (*keyring.Keyring, error) {
	b, _, err := g.keyringBackend()
	if err != nil {
		return nil, err
	}
	return g.keyringAs(b), nil
}

func (g *globals) keyringAs(b keyring.Backend) *keyring.Keyring {
	kr := keyring.Open(g.home).WithBackend(b).WithPassphrase(g.keyringPassphrase())
	if g.keys.kdf != (keyring.KDF{}) {
		kr = kr.WithKDF(g.keys.kdf)
	}
	return kr
}

// readMnemonic reads the phrase for --recover: a line typed at a prompt
// when stdin is a terminal, else everything piped in (one line, or a word
// per line).
func readMnemonic(cmd *cobra.Command) (string, error) {
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(f.Fd()) {
		fmt.Fprintf(cmd.ErrOrStderr(), "Enter your %d-word mnemonic: ", keyring.MnemonicWords)
		var line strings.Builder
		buf := make([]byte, 1)
		for {
			n, err := f.Read(buf)
			if n == 1 && buf[0] != '\n' {
				line.WriteByte(buf[0])
				continue
			}
			if n == 1 || err == io.EOF {
				return line.String(), nil
			}
			if err != nil {
				return "", fmt.Errorf("read the mnemonic: %w", err)
			}
		}
	}
	b, err := io.ReadAll(io.LimitReader(in, 64<<10))
	if err != nil {
		return "", fmt.Errorf("read the mnemonic from stdin: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return "", fmt.Errorf("--recover reads the mnemonic from stdin, which is empty (pipe it in, or run in a terminal to type it)")
	}
	return string(b), nil
}
