// Command mandelbrot is an SOS job that renders the Mandelbrot set to
// /out/mandelbrot.png: a CPU-bound program with no inputs, used to measure
// the executor's overhead on plain computation.
//
// Usage (argv[0] is "job"):
//
//	mandelbrot [-width W] [-height H] [-iter N] [-xmin X] [-xmax X] [-ymin Y] [-ymax Y]
//
// Defaults: 1024×768 pixels, 1000 iterations, the viewport
// [-2.5, 1] × [-1.3125, 1.3125] (square pixels). Pixel (px, py) samples the
// point at its centre, c = xmin + (px+½)·(xmax−xmin)/W + i·(ymax − (py+½)·(ymax−ymin)/H),
// and is coloured by the number of iterations of z ← z² + c before |z| > 2
// (black when it never escapes within N). stdout gets one summary line:
// size, iterations, viewport, pixels in the set, total iterations done and
// the PNG's size.
//
// The image is the same bit for bit on every machine: the arithmetic is
// IEEE-754 float64 with no NaN or infinity (the flags must be finite and the
// orbit stops at |z|² > 4), and every product is wrapped in an explicit
// float64 conversion, which the Go specification says rounds and so
// forbids fusing it into a multiply-add (Go fuses on arm64, ppc64 and s390x
// otherwise); colours are integer arithmetic on the iteration count.
//
// Exit code: 0 on success, 1 when the PNG cannot be written, 2 for bad flags.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
)

// outFile is the output under /out.
const outFile = "mandelbrot.png"

// Bounds on the flags: beyond them a job is a mistake, not a workload.
const (
	maxSide = 16384
	maxIter = 1 << 24
)

// params is one rendering.
type params struct {
	width, height, iter    int
	xmin, xmax, ymin, ymax float64
}

// run is the whole program with its environment passed in, so that tests
// run it natively against temporary directories.
func run(args []string, _ io.Reader, _, outDir string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("mandelbrot", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var p params
	fl.IntVar(&p.width, "width", 1024, "image width in pixels")
	fl.IntVar(&p.height, "height", 768, "image height in pixels")
	fl.IntVar(&p.iter, "iter", 1000, "maximum iterations per pixel")
	fl.Float64Var(&p.xmin, "xmin", -2.5, "left edge of the viewport (real part)")
	fl.Float64Var(&p.xmax, "xmax", 1, "right edge of the viewport (real part)")
	fl.Float64Var(&p.ymin, "ymin", -1.3125, "bottom edge of the viewport (imaginary part)")
	fl.Float64Var(&p.ymax, "ymax", 1.3125, "top edge of the viewport (imaginary part)")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if err := p.validate(); err != nil {
		fmt.Fprintf(stderr, "mandelbrot: %v\n", err)
		return 2
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "mandelbrot: unexpected argument %q (it has no inputs)\n", fl.Arg(0))
		return 2
	}

	img, inSet, total := render(p)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		fmt.Fprintf(stderr, "mandelbrot: encode: %v\n", err)
		return 1
	}
	if err := os.WriteFile(filepath.Join(outDir, outFile), buf.Bytes(), 0o644); err != nil {
		fmt.Fprintf(stderr, "mandelbrot: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "mandelbrot %dx%d iter=%d view=[%g,%g]x[%g,%g]: %d of %d pixels in the set, %d iterations, %s %d bytes\n",
		p.width, p.height, p.iter, p.xmin, p.xmax, p.ymin, p.ymax, inSet, p.width*p.height, total, outFile, buf.Len())
	return 0
}

func (p params) validate() error {
	if p.width < 1 || p.width > maxSide || p.height < 1 || p.height > maxSide {
		return fmt.Errorf("size %dx%d: each side must be in [1, %d]", p.width, p.height, maxSide)
	}
	if p.iter < 1 || p.iter > maxIter {
		return fmt.Errorf("-iter %d: must be in [1, %d]", p.iter, maxIter)
	}
	for _, v := range []float64{p.xmin, p.xmax, p.ymin, p.ymax} {
		if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > 1e6 {
			return fmt.Errorf("viewport bound %g: must be finite and within ±1e6", v)
		}
	}
	if !(p.xmin < p.xmax && p.ymin < p.ymax) {
		return fmt.Errorf("empty viewport [%g,%g]x[%g,%g]", p.xmin, p.xmax, p.ymin, p.ymax)
	}
	return nil
}

// escape returns the number of iterations before the orbit of c leaves the
// disc of radius 2, or max when it does not. The float64 conversions keep
// every product rounded on its own (see the package comment).
func escape(cr, ci float64, max int) int {
	var x, y float64
	for i := range max {
		x2, y2 := float64(x*x), float64(y*y)
		if x2+y2 > 4 {
			return i
		}
		y = float64(2*x*y) + ci
		x = x2 - y2 + cr
	}
	return max
}

// render computes the image, the number of pixels in the set and the total
// iteration count. Palette index 0 is the set; escaping pixels cycle
// through the other 255 colours.
func render(p params) (img *image.Paletted, inSet, total int) {
	img = image.NewPaletted(image.Rect(0, 0, p.width, p.height), palette())
	dx := (p.xmax - p.xmin) / float64(p.width)
	dy := (p.ymax - p.ymin) / float64(p.height)
	for py := range p.height {
		ci := p.ymax - float64((float64(py)+0.5)*dy)
		row := img.Pix[py*img.Stride : py*img.Stride+p.width]
		for px := range row {
			cr := p.xmin + float64((float64(px)+0.5)*dx)
			n := escape(cr, ci, p.iter)
			total += n
			if n == p.iter {
				inSet++
				row[px] = 0
			} else {
				row[px] = uint8(1 + n%255)
			}
		}
	}
	return img, inSet, total
}

// palette is black for the set and a cyclic blue-white-orange gradient for
// the escape counts, in integer arithmetic.
func palette() color.Palette {
	stops := [...]color.RGBA{
		{0, 7, 100, 255}, {32, 107, 203, 255}, {237, 255, 255, 255}, {255, 170, 0, 255}, {0, 2, 0, 255},
	}
	pal := make(color.Palette, 256)
	pal[0] = color.RGBA{0, 0, 0, 255}
	const seg = 255 / (len(stops) - 1) // 63 colours per segment, the last one takes the rest
	for i := range 255 {
		s := min(i/seg, len(stops)-2)
		t, span := i-s*seg, seg
		if s == len(stops)-2 {
			span = 255 - s*seg
		}
		a, b := stops[s], stops[s+1]
		mix := func(u, v uint8) uint8 { return uint8((int(u)*(span-t) + int(v)*t) / span) }
		pal[1+i] = color.RGBA{mix(a.R, b.R), mix(a.G, b.G), mix(a.B, b.B), 255}
	}
	return pal
}
