package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pixelHash is the SHA-256 of an image's pixels as 8-bit RGBA rows: a
// golden value that does not depend on how Go's PNG encoder compresses.
func pixelHash(img image.Image) string {
	h := sha256.New()
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			h.Write([]byte{byte(r >> 8), byte(g >> 8), byte(bl >> 8), byte(a >> 8)})
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

type result struct {
	code           int
	stdout, stderr string
	png            []byte
}

func runJob(t testing.TB, args ...string) result {
	t.Helper()
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run(args, nil, "", out, &stdout, &stderr)
	b, _ := os.ReadFile(filepath.Join(out, outFile))
	return result{code, stdout.String(), stderr.String(), b}
}

// TestMandelbrotGolden renders small images and checks their pixels, the
// summary line and that the PNG decodes to the rendered image. The figures
// are the same on every GOARCH (see the package comment on rounding):
// `GOAMD64=v3 go test`, which lets Go fuse multiply-adds on amd64, passes,
// and fails (on the zoom) once the float64 conversions are removed.
func TestMandelbrotGolden(t *testing.T) {
	for _, tc := range []struct {
		name        string
		args        []string
		wantHash    string
		wantSummary string
	}{
		{
			"whole set", []string{"-width", "96", "-height", "72", "-iter", "300"},
			"ec1058eb76469bace107412326c894c975db45077565d0844580f2749aefdc73",
			"mandelbrot 96x72 iter=300 view=[-2.5,1]x[-1.3125,1.3125]: 1156 of 6912 pixels in the set, 374554",
		},
		{
			"seahorse valley zoom", []string{"-width", "80", "-height", "60", "-iter", "2000",
				"-xmin", "-0.7487", "-xmax", "-0.7387", "-ymin", "0.1", "-ymax", "0.1075"},
			"6932965325db73e0fe99d1dffbe3592e648dd36cd46c92218a52204b6a803d72",
			"mandelbrot 80x60 iter=2000 view=[-0.7487,-0.7387]x[0.1,0.1075]: 2041 of 4800 pixels in the set, 4772946",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runJob(t, tc.args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			img, err := png.Decode(bytes.NewReader(r.png))
			if err != nil {
				t.Fatal(err)
			}
			if got := pixelHash(img); got != tc.wantHash {
				t.Errorf("pixels hash %s, want %s", got, tc.wantHash)
			}
			// The summary ends with the PNG size, which depends on the
			// encoder of the Go release: compare up to it.
			summary, _, _ := strings.Cut(r.stdout, " iterations, ")
			if summary != tc.wantSummary {
				t.Errorf("summary %q, want %q", summary, tc.wantSummary)
			}
			if !strings.HasSuffix(r.stdout, " bytes\n") || strings.Count(r.stdout, "\n") != 1 {
				t.Errorf("stdout %q is not one summary line", r.stdout)
			}
		})
	}
}

func TestMandelbrotPNGMatchesRender(t *testing.T) {
	p := params{width: 40, height: 30, iter: 100, xmin: -2.5, xmax: 1, ymin: -1.3125, ymax: 1.3125}
	want, _, _ := render(p)
	r := runJob(t, "-width", "40", "-height", "30", "-iter", "100")
	img, err := png.Decode(bytes.NewReader(r.png))
	if err != nil {
		t.Fatal(err)
	}
	if pixelHash(img) != pixelHash(want) {
		t.Fatal("the PNG does not decode to the rendered image")
	}
}

func TestEscape(t *testing.T) {
	for _, tc := range []struct {
		cr, ci float64
		max    int
		want   int
	}{
		{0, 0, 1000, 1000},  // the centre never escapes
		{-1, 0, 1000, 1000}, // period-2 cycle
		{1, 0, 1000, 3},     // 0, 1, 2, 5: |z|² = 25 > 4 after the third step
		{2.5, 0, 1000, 1},   // z₁ = 2.5
		{-2, 0, 1000, 1000}, // the tip: z stays at 2, |z|² = 4 is not > 4
		{0.25, 0, 50, 50},   // the cusp converges slowly
	} {
		if got := escape(tc.cr, tc.ci, tc.max); got != tc.want {
			t.Errorf("escape(%g%+gi, %d) = %d, want %d", tc.cr, tc.ci, tc.max, got, tc.want)
		}
	}
}

func TestMandelbrotFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"-width", "0"}, "each side must be in [1, 16384]"},
		{[]string{"-height", "16385"}, "each side must be in [1, 16384]"},
		{[]string{"-iter", "0"}, "-iter 0"},
		{[]string{"-xmin", "NaN"}, "must be finite"},
		{[]string{"-ymax", "+Inf"}, "must be finite"},
		{[]string{"-xmin", "1", "-xmax", "1"}, "empty viewport"},
		{[]string{"-ymin", "2"}, "empty viewport"},
		{[]string{"-nope"}, "flag provided but not defined"},
		{[]string{"input.txt"}, `unexpected argument "input.txt"`},
	} {
		r := runJob(t, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.wantErr) || r.png != nil {
			t.Errorf("%v: exit %d stderr %q png %d bytes; want 2, %q and no PNG", tc.args, r.code, r.stderr, len(r.png), tc.wantErr)
		}
	}
}

func TestMandelbrotOutputError(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"-width", "8", "-height", "8"}, nil, "", filepath.Join(t.TempDir(), "missing"), &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), outFile) || stdout.Len() != 0 {
		t.Fatalf("exit %d stdout %q stderr %q", code, stdout.String(), stderr.String())
	}
}
