// Package keyring stores named ML-DSA-65 account keys in a node home: one
// JSON file per key under keys/ (mode 0600), and writes and reads the
// node's own key, node_key.json.
//
// A key is its 32-byte ML-DSA seed. New keys come from a 24-word BIP-39
// mnemonic (NewMnemonic, SeedFromMnemonic): the BIP-39 seed (PBKDF2 of the
// words and an optional passphrase) is fed through HKDF-SHA512 with a
// domain-separation salt and the key index, so the stored seed never
// reveals the words, and the same words used by a wallet of another chain
// give unrelated keys. There are no BIP-32 paths: ML-DSA has no public-key
// derivation, so each index is just another independent key.
//
// Using it:
//
//  1. Open(home) returns the keyring; WithBackend chooses how new keys are
//     written (BackendTest: the seed in plaintext, for scripts and
//     devnets; BackendFile: the seed sealed with scrypt and
//     XChaCha20-Poly1305 under the keyring passphrase) and WithPassphrase
//     where that passphrase comes from (a file, an environment variable, a
//     prompt: the caller decides; the keyring asks only when it must open
//     or seal a key, and keeps what worked for its lifetime).
//  2. Add (or AddMnemonic) creates a key and returns its mnemonic once;
//     Recover rebuilds a key from its mnemonic; Import stores a key;
//     ImportArmor stores one from an Export.
//  3. Get returns a key for signing (decrypting it if sealed); Info, List
//     and Resolve read addresses only, which are stored in the clear, so
//     they never need the passphrase.
//  4. Delete removes a key; Migrate rewrites every key into the keyring's
//     backend (encrypting plaintext keys, or decrypting sealed ones).
//
// Either kind of file is read whatever the backend, so plaintext files from
// older versions keep loading. Every keyring key is sealed with the same
// passphrase: a new key is sealed only after the passphrase opened an
// existing one (or, in a keyring with none, was given as new). A wrong
// passphrase or an altered file (the address is bound to the ciphertext as
// associated data) is ErrWrongPassphrase and changes nothing. As ssh does,
// a key file with any group or other permission is refused
// (ErrKeyFileMode, with the chmod that fixes it).
//
// The node key is never encrypted (WriteKeyFile, ReadKeyFile): a node must
// start unattended. docs/keys.md describes the file formats, the KDF
// parameters and what encryption at rest does and does not protect.
package keyring
