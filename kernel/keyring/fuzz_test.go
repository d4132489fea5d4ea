package keyring

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/sos-kernel/sos/ledger"
)

// fuzzSeeds returns a plaintext key file, an encrypted one and an export,
// all valid, for the seed corpora.
func fuzzSeeds(f *testing.F) (plain, enc, armor []byte) {
	key, _ := ledger.PrivateKeyFromSeed(bytes.Repeat([]byte{1}, ledger.SeedSize))
	plain, _ = encodeKeyFile(plaintextFile("alice", key))
	s, err := sealSeed(key.Seed(), []byte("fuzz passphrase"), key.Address().String(), cheapKDF, &zeroReader{})
	if err != nil {
		f.Fatal(err)
	}
	kf := plaintextFile("alice", key)
	kf.Seed, kf.Crypto = "", s
	enc, _ = encodeKeyFile(kf)
	armor, err = encodeArmor(key.Address().String(), s)
	if err != nil {
		f.Fatal(err)
	}
	return plain, enc, armor
}

// FuzzDecodeKeyFile: the key file decoder never panics on any bytes, what
// it accepts re-encodes to a file it decodes to the same value, and an
// accepted encrypted file either opens or fails with ErrWrongPassphrase.
func FuzzDecodeKeyFile(f *testing.F) {
	plain, enc, _ := fuzzSeeds(f)
	f.Add(plain)
	f.Add(enc)
	f.Add([]byte(`{"name":"a","type":"ml-dsa-65","address":"","seed":""}`))
	f.Add([]byte(`{"type":"ml-dsa-65","crypto":{"kdfparams":{"n":1073741824}}}`))
	f.Add([]byte("null"))
	f.Fuzz(func(t *testing.T, b []byte) {
		kf, err := decodeKeyFile(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error not ErrCorrupt: %v", err)
			}
			return
		}
		out, err := encodeKeyFile(kf)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeKeyFile(out)
		if err != nil || !reflect.DeepEqual(kf, again) {
			t.Fatalf("round trip: %+v -> %+v (%v)", kf, again, err)
		}
		if kf.Encrypted() && kf.Crypto.KDFParams.N*kf.Crypto.KDFParams.R <= 1<<13 && kf.Crypto.KDFParams.P <= 2 {
			if _, err := openSeed(kf.Crypto, []byte("fuzz passphrase"), kf.Address); err != nil && !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("open: %v", err)
			}
		}
	})
}

// FuzzDecodeArmor: an exported key is untrusted input (a file someone
// hands over): the decoder never panics, and what it accepts re-encodes
// to the same export.
func FuzzDecodeArmor(f *testing.F) {
	_, _, armor := fuzzSeeds(f)
	f.Add(armor)
	f.Add(bytes.Replace(armor, []byte("kdf-n: 1024"), []byte("kdf-n: 1099511627776"), 1))
	f.Add([]byte("-----BEGIN SOS PRIVATE KEY-----\n\n-----END SOS PRIVATE KEY-----\n"))
	f.Add([]byte("not pem"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeArmor(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error not ErrCorrupt: %v", err)
			}
			return
		}
		out, err := encodeArmor(a.address, a.sealed)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeArmor(out)
		if err != nil || !reflect.DeepEqual(a, again) {
			t.Fatalf("round trip: %+v -> %+v (%v)", a, again, err)
		}
		if a.sealed.KDFParams.N*a.sealed.KDFParams.R <= 1<<13 && a.sealed.KDFParams.P <= 2 {
			if _, err := OpenArmor(b, []byte("fuzz passphrase")); err != nil && !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("open: %v", err)
			}
		}
	})
}
