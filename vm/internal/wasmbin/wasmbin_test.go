package wasmbin

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// walk parses every section it knows and scans every function body, the way
// the metering pass does. It must never panic.
func walk(m *Module) error {
	for _, s := range m.Sections {
		var err error
		switch s.ID {
		case SectionType:
			_, err = DecodeTypes(s.Payload)
		case SectionImport:
			_, err = DecodeImports(s.Payload)
		case SectionFunction:
			_, err = DecodeFunctions(s.Payload)
		case SectionTable:
			_, err = DecodeTables(s.Payload)
		case SectionMemory:
			_, err = DecodeMemories(s.Payload)
		case SectionGlobal:
			var gs []Global
			if gs, err = DecodeGlobals(s.Payload); err == nil && !bytes.Equal(EncodeGlobals(gs), s.Payload) {
				// Only non-minimal count encodings may differ.
				if _, err2 := DecodeGlobals(EncodeGlobals(gs)); err2 != nil {
					return err2
				}
			}
		case SectionExport:
			_, err = DecodeExports(s.Payload)
		case SectionDataCount:
			_, err = DecodeDataCount(s.Payload)
		case SectionCode:
			var cs []Code
			if cs, err = DecodeCode(s.Payload); err != nil {
				return err
			}
			for _, c := range cs {
				for off := 0; off < len(c.Body); {
					in, err := ReadInstr(c.Body, off)
					if err != nil {
						return err
					}
					if in.End <= off || in.End > len(c.Body) {
						panic("ReadInstr did not advance within the body")
					}
					off = in.End
				}
			}
			if _, err := DecodeCode(EncodeCode(cs)); err != nil {
				return err
			}
		}
		if err != nil {
			return err
		}
	}
	return m.CheckOrder()
}

func specDirs(t *testing.T) []string {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go tool not found: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-m", "-json", "github.com/tetratelabs/wazero").Output()
	if err != nil {
		t.Skipf("go list wazero: %v", err)
	}
	var mod struct{ Dir string }
	if json.Unmarshal(out, &mod) != nil || mod.Dir == "" {
		t.Skip("wazero not in the module cache")
	}
	root := filepath.Join(mod.Dir, "internal", "integration_test", "spectest")
	return []string{filepath.Join(root, "v1", "testdata"), filepath.Join(root, "v2", "testdata")}
}

// TestRoundTripSpecSuite decodes every binary of the WebAssembly spec suite
// (valid, invalid and malformed alike): an accepted module re-encodes to the
// identical bytes, and nothing panics.
func TestRoundTripSpecSuite(t *testing.T) {
	var n, ok int
	for _, dir := range specDirs(t) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.wasm"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			n++
			m, err := Decode(b)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("%s: unclassified error %v", f, err)
				}
				continue
			}
			if !bytes.Equal(m.Encode(), b) {
				t.Errorf("%s: re-encoding changed the bytes", filepath.Base(f))
			}
			if err := walk(m); err == nil {
				ok++
			} else if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
				t.Errorf("%s: unclassified error %v", f, err)
			}
		}
	}
	t.Logf("%d spec-suite binaries, %d fully parsed", n, ok)
}

func TestReadInstr(t *testing.T) {
	for _, tc := range []struct {
		name string
		code []byte
		end  int // 0: expect an error
		kind error
	}{
		{"nop", []byte{0x01}, 1, nil},
		{"block empty", []byte{0x02, 0x40}, 2, nil},
		{"block i32", []byte{0x02, 0x7f}, 2, nil},
		{"block type index", []byte{0x02, 0x81, 0x01}, 3, nil},
		{"block negative index", []byte{0x02, 0xff, 0x7f}, 0, ErrMalformed},
		{"br_table", []byte{0x0e, 0x02, 0x00, 0x01, 0x02}, 5, nil},
		{"br_table truncated", []byte{0x0e, 0x05, 0x00}, 0, ErrMalformed},
		{"call_indirect", []byte{0x11, 0x01, 0x00}, 3, nil},
		{"select t", []byte{0x1c, 0x01, 0x7f}, 3, nil},
		{"select t arity 2", []byte{0x1c, 0x02, 0x7f, 0x7f}, 0, ErrMalformed},
		{"load memarg", []byte{0x28, 0x02, 0x80, 0x01}, 4, nil},
		{"load multi-memory", []byte{0x28, 0x42, 0x01, 0x00}, 0, ErrUnsupported},
		{"memory.grow", []byte{0x40, 0x00}, 2, nil},
		{"memory.grow nonzero", []byte{0x40, 0x01}, 0, ErrUnsupported},
		{"i32.const", []byte{0x41, 0x7f}, 2, nil},
		{"i32.const too long", []byte{0x41, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00}, 0, ErrMalformed},
		{"i32.const 5 bytes", []byte{0x41, 0xff, 0xff, 0xff, 0xff, 0x7f}, 6, nil},
		{"i32.const unused bits", []byte{0x41, 0xff, 0xff, 0xff, 0xff, 0x4f}, 0, ErrMalformed},
		{"i64.const", []byte{0x42, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f}, 11, nil},
		{"f32.const", []byte{0x43, 0, 0, 0xc0, 0x7f}, 5, nil},
		{"f64.const truncated", []byte{0x44, 0, 0, 0}, 0, ErrMalformed},
		{"sign-ext", []byte{0xc4}, 1, nil},
		{"ref.null", []byte{0xd0, 0x6f}, 2, nil},
		{"ref.func", []byte{0xd2, 0x03}, 2, nil},
		{"trunc_sat", []byte{0xfc, 0x07}, 2, nil},
		{"memory.init", []byte{0xfc, 0x08, 0x01, 0x00}, 4, nil},
		{"memory.copy", []byte{0xfc, 0x0a, 0x00, 0x00}, 4, nil},
		{"memory.fill", []byte{0xfc, 0x0b, 0x00}, 3, nil},
		{"table.init", []byte{0xfc, 0x0c, 0x01, 0x00}, 4, nil},
		{"table.fill", []byte{0xfc, 0x11, 0x00}, 3, nil},
		{"0xfc 20", []byte{0xfc, 20}, 0, ErrMalformed},
		{"simd", []byte{0xfd, 0x0c}, 0, ErrUnsupported},
		{"atomic", []byte{0xfe, 0x00}, 0, ErrUnsupported},
		{"try", []byte{0x06, 0x40}, 0, ErrUnsupported},
		{"return_call", []byte{0x12, 0x00}, 0, ErrUnsupported},
		{"illegal", []byte{0xc5}, 0, ErrMalformed},
		{"empty", nil, 0, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := ReadInstr(tc.code, 0)
			if tc.end == 0 {
				if !errors.Is(err, tc.kind) {
					t.Fatalf("got %v (end %d), want %v", err, in.End, tc.kind)
				}
				if !strings.Contains(err.Error(), "offset 0x") {
					t.Errorf("error has no offset: %v", err)
				}
				return
			}
			if err != nil || in.End != tc.end {
				t.Fatalf("got end %d err %v, want end %d", in.End, err, tc.end)
			}
		})
	}
}

func TestLEB(t *testing.T) {
	for _, v := range []uint32{0, 1, 127, 128, 1 << 20, 0xffffffff} {
		b := AppendU32(nil, v)
		got, n, err := readU32(b, 0)
		if err != nil || got != v || n != len(b) {
			t.Errorf("u32 %d: got %d n %d err %v", v, got, n, err)
		}
	}
	for _, v := range []int64{0, 1, -1, 63, 64, -64, -65, 1 << 40, -1 << 63, 1<<63 - 1} {
		b := AppendS64(nil, v)
		got, n, err := readSigned(b, 0, 64)
		if err != nil || got != v || n != len(b) {
			t.Errorf("s64 %d: got %d n %d err %v", v, got, n, err)
		}
	}
}

var seedModule = []byte{
	0, 'a', 's', 'm', 1, 0, 0, 0,
	1, 6, 1, 0x60, 1, 0x7f, 1, 0x7f, // type (i32)->i32
	3, 2, 1, 0, // function
	5, 3, 1, 0, 1, // memory 1
	6, 6, 1, 0x7f, 1, 0x41, 0, 0x0b, // global mut i32 0
	7, 5, 1, 1, 'f', 0, 0, // export f
	12, 1, 0, // data count 0
	10, 13, 1, 11, 1, 1, 0x7f, 0x20, 0, 0x20, 1, 0x6a, 0x40, 0x00, 0x0b, // code
	0, 5, 4, 'n', 'a', 'm', 'e', // custom
}

func FuzzDecode(f *testing.F) {
	f.Add(seedModule)
	f.Add([]byte{0, 'a', 's', 'm', 1, 0, 0, 0})
	f.Add([]byte{0, 'a', 's', 'm', 1, 0, 0, 0, 1, 0x80, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		enc := m.Encode()
		if !bytes.Equal(enc, b) {
			t.Fatalf("Encode(Decode(b)) != b")
		}
		m2, err := Decode(enc)
		if err != nil || !bytes.Equal(m2.Encode(), b) {
			t.Fatalf("decode(encode(m)) differs: %v", err)
		}
		_ = walk(m)
		m.Set(SectionGlobal, EncodeGlobals(nil))
		if _, err := Decode(m.Encode()); err != nil {
			t.Fatalf("re-encoded module does not decode: %v", err)
		}
	})
}

func TestSeedModule(t *testing.T) {
	m, err := Decode(seedModule)
	if err != nil {
		t.Fatal(err)
	}
	if err := walk(m); err != nil {
		t.Fatal(err)
	}
}
