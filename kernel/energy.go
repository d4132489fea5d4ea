package kernel

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sos-kernel/sos/ledger"
)

// Energy of jobs. A job result carries the energy its run took and how the
// node knows it, never mixed up: measured — the difference of the Linux
// powercap (Intel RAPL) package energy counters across the run, when the
// node can read them — or modeled — the CPU time of the run × the node's
// declared watts (config node_watts). Both are the node's own figures:
// the chain records them and pays energy by registered meters only
// (docs/meters.md). The powercap counters count the whole machine's
// packages and the CPU time the whole process, so a node running other
// work at the same time reports more than the job took.
//
// The executor's use: probe := n.EnergyProbe() before the run, then
// energy, source := probe.Done() after it, into the result's Energy and
// EnergySource.

// PowercapDir is where Linux exposes RAPL energy counters.
const PowercapDir = "/sys/class/powercap"

// PowercapReading is a sum of package energy counters and the range they
// wrap at (microjoules).
type PowercapReading struct {
	Zones    int
	EnergyUJ uint64
	RangeUJ  []uint64 // per zone, in zone order
	zones    []uint64
}

// ReadPowercap reads the top-level RAPL zones under dir
// (intel-rapl:N/energy_uj; subzones such as intel-rapl:0:0 are part of
// their package and are not added). ok is false when there is none, or it
// cannot be read (it is often root-only).
func ReadPowercap(dir string) (PowercapReading, bool) {
	matches, _ := filepath.Glob(filepath.Join(dir, "intel-rapl:*"))
	sort.Strings(matches)
	var r PowercapReading
	for _, m := range matches {
		if strings.Count(filepath.Base(m), ":") != 1 {
			continue
		}
		uj, err := readUint(filepath.Join(m, "energy_uj"))
		if err != nil {
			return PowercapReading{}, false
		}
		rng, err := readUint(filepath.Join(m, "max_energy_range_uj"))
		if err != nil || rng == 0 {
			rng = math.MaxUint64
		}
		r.Zones++
		r.EnergyUJ += uj
		r.zones = append(r.zones, uj)
		r.RangeUJ = append(r.RangeUJ, rng)
	}
	return r, r.Zones > 0
}

// Since is the energy from an earlier reading to this one, in
// microjoules, counting each zone's wrap around its range.
func (r PowercapReading) Since(prev PowercapReading) (uint64, error) {
	if r.Zones != prev.Zones {
		return 0, fmt.Errorf("kernel: powercap zones changed from %d to %d", prev.Zones, r.Zones)
	}
	var total uint64
	for i, now := range r.zones {
		before := prev.zones[i]
		if now >= before {
			total += now - before
		} else {
			total += r.RangeUJ[i] - before + now + 1
		}
	}
	return total, nil
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// EnergyProbe measures one job run.
type EnergyProbe struct {
	watts      float64
	dir        string
	cpu        time.Duration
	cap        PowercapReading
	hasCounter bool
}

// EnergyProbe starts measuring a job run on this node.
func (n *Node) EnergyProbe() *EnergyProbe {
	return newEnergyProbe(PowercapDir, n.opts.Config.NodeWatts)
}

func newEnergyProbe(dir string, watts float64) *EnergyProbe {
	p := &EnergyProbe{watts: watts, dir: dir, cpu: cpuTime()}
	p.cap, p.hasCounter = ReadPowercap(dir)
	return p
}

// Done ends the measurement: millijoules and ledger.EnergyMeasured from
// the powercap counters, else ledger.EnergyModeled from CPU time × watts,
// else 0 and ledger.EnergyNone (no counter, no declared watts).
func (p *EnergyProbe) Done() (mj uint64, source uint8) {
	if p.hasCounter {
		if now, ok := ReadPowercap(p.dir); ok {
			if uj, err := now.Since(p.cap); err == nil {
				return uj / 1000, ledger.EnergyMeasured
			}
		}
	}
	if p.watts <= 0 {
		return 0, ledger.EnergyNone
	}
	cpu := cpuTime() - p.cpu
	if cpu < 0 {
		cpu = 0
	}
	return uint64(cpu.Seconds() * p.watts * 1000), ledger.EnergyModeled
}
