package rome

import (
	"crypto/sha256"
	"fmt"
	"strconv"

	"github.com/sos-kernel/sos/ledger"
)

// Meters: a meter is a device identity (an ML-DSA-65 key) a provider
// registers for one resource kind (MeterRegister). The device signs
// readings — (lease, epoch, kind, cumulative counter, sequence number) —
// that anyone may submit (MeterReading). A device's counter and sequence
// number only grow, so a reading cannot be replayed or rolled back; the
// first reading of a device sets its baseline and each later one credits
// the increase since the previous one to the lease and epoch it names (a
// lease's kind is measured by one meter per epoch: the first that reports
// it). For a kind with readings in an epoch, settlement pays the metered
// amount (in units, capped at the lease) instead of the parties' reports,
// and a request may require it (MeterKinds: no reading, no payment);
// certificates say "meter <id>".

// GasMeter is charged for each meter transaction beyond its state access
// (a reading also pays the schedule's signature check).
const GasMeter = 10_000

// Meter is a registered metering device.
type Meter struct {
	_          struct{}       `cbor:",toarray"`
	ID         uint64         `json:"meter_id"`
	Owner      ledger.Address `json:"owner"`
	Kind       uint8          `json:"kind"`
	PubKey     []byte         `json:"pubkey"`
	Height     uint64         `json:"height"`
	HasReading bool           `json:"has_reading"`
	Counter    uint64         `json:"counter"` // the last reading's cumulative counter
	Seq        uint64         `json:"seq"`     // the last reading's sequence number
	Readings   uint64         `json:"readings"`
}

// MeterUse is what a meter measured for a lease's kind in an epoch.
type MeterUse struct {
	_        struct{} `cbor:",toarray"`
	MeterID  uint64   `json:"meter_id"`
	Amount   uint64   `json:"amount"` // in the kind's measure (MeterUnit per unit)
	Readings uint32   `json:"readings"`
}

// MeterUnit is how much of a kind's measure makes one unit: compute in
// gas, bandwidth in bytes, energy in millijoules, storage in byte-epochs.
func MeterUnit(p Params, kind uint8) uint64 {
	switch kind {
	case KindCompute:
		return p.GasPerComputeUnit
	case KindBandwidth:
		return p.BytesPerBandwidthUnit
	case KindEnergy:
		return satMul(p.JoulesPerEnergyUnit, 1000)
	case KindStorage:
		return p.BytesPerStorageUnit
	}
	return 1
}

// MeterMeasure names a kind's measure ("mJ" for energy).
func MeterMeasure(kind uint8) string {
	switch kind {
	case KindCompute:
		return "gas"
	case KindBandwidth:
		return "bytes"
	case KindEnergy:
		return "mJ"
	case KindStorage:
		return "byte-epochs"
	}
	return ""
}

func (s *store) meter(id uint64) (*Meter, error) {
	var mt Meter
	ok, err := s.get(rkey(tagMeter, u64(id)), &mt)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("rome: meter %d is not registered: %w", id, ErrNotFound)
	}
	return &mt, nil
}

func meterUseKey(lease, epoch uint64, kind uint8) []byte {
	return rkey(tagMeterUse, u64(lease), u64(epoch), []byte{kind})
}

func (s *store) meterUse(lease, epoch uint64, kind uint8) (*MeterUse, bool, error) {
	var mu MeterUse
	ok, err := s.get(meterUseKey(lease, epoch, kind), &mu)
	return &mu, ok, err
}

func (m *Market) registerMeter(tx *Tx, p *ledger.MeterRegister) (any, error) {
	if err := tx.Gas.Consume(GasMeter, "meter register"); err != nil {
		return nil, err
	}
	s := tx.store(m)
	h := sha256.Sum256(p.PubKey)
	kk := rkey(tagMeterKey, h[:])
	if id, err := s.getU64(kk); err != nil {
		return nil, err
	} else if id != 0 {
		return nil, fmt.Errorf("rome: this device key is already meter %d: %w", id, ErrInvalid)
	}
	id, err := s.next("meter")
	if err != nil {
		return nil, err
	}
	mt := &Meter{ID: id, Owner: tx.Sender, Kind: p.Resource, PubKey: p.PubKey, Height: tx.Height}
	if err := s.put(rkey(tagMeter, u64(id)), mt); err != nil {
		return nil, err
	}
	if err := s.setU64(kk, id); err != nil {
		return nil, err
	}
	key, _ := ledger.ParsePublicKey(p.PubKey) // checked by ValidateBasic
	tx.emit("meter_registered", "meter_id", strconv.FormatUint(id, 10), "owner", tx.Sender.String(), "kind", KindName(p.Resource),
		"key", key.Fingerprint())
	return map[string]any{"meter_id": id, "kind": KindName(p.Resource), "key": key.Fingerprint()}, nil
}

func (m *Market) meterReading(tx *Tx, p *ledger.MeterReading) (any, error) {
	if err := tx.Gas.Consume(GasMeter+tx.Sched.SigVerify, "meter reading"); err != nil {
		return nil, err
	}
	s := tx.store(m)
	st := &p.Statement
	mt, err := s.meter(p.MeterID)
	if err != nil {
		return nil, err
	}
	key, err := ledger.ParsePublicKey(mt.PubKey)
	if err != nil {
		return nil, fmt.Errorf("rome: meter %d key: %w: %w", mt.ID, ledger.ErrCorrupt, err)
	}
	if err := ledger.VerifyMeterStatement(m.codec, key, m.chainID, st, p.Signature); err != nil {
		return nil, fmt.Errorf("rome: meter %d: the reading is not signed by its device: %w: %w", mt.ID, err, ErrUnauthorized)
	}
	if st.Kind != mt.Kind {
		return nil, fmt.Errorf("rome: meter %d measures %s, the reading is for %s: %w", mt.ID, KindName(mt.Kind), KindName(st.Kind), ErrInvalid)
	}
	if mt.HasReading && st.Seq <= mt.Seq {
		return nil, fmt.Errorf("rome: meter %d: sequence number %d is not above its last %d (a reading replayed or reordered): %w", mt.ID, st.Seq, mt.Seq, ErrInvalid)
	}
	if mt.HasReading && st.Counter < mt.Counter {
		return nil, fmt.Errorf("rome: meter %d: counter %d is below its last %d (counters only grow): %w", mt.ID, st.Counter, mt.Counter, ErrInvalid)
	}
	l, err := s.lease(st.LeaseID)
	if err != nil {
		return nil, err
	}
	if l.Provider != mt.Owner {
		return nil, fmt.Errorf("rome: meter %d belongs to %s, lease %d's provider is %s: %w", mt.ID, mt.Owner, l.ID, l.Provider, ErrUnauthorized)
	}
	if amountOf(l.Amounts, st.Kind) == 0 {
		return nil, fmt.Errorf("rome: lease %d has no %s: %w", l.ID, KindName(st.Kind), ErrInvalid)
	}
	params, err := s.params(m.gen)
	if err != nil {
		return nil, err
	}
	clock, err := s.clock(params)
	if err != nil {
		return nil, err
	}
	if st.Epoch != clock.Epoch && st.Epoch+1 != clock.Epoch {
		return nil, fmt.Errorf("rome: meter reading for epoch %d: readings are accepted during the epoch they cover and the next (now %d): %w", st.Epoch, clock.Epoch, ErrInvalid)
	}
	if st.Epoch < l.Start || st.Epoch >= l.End {
		return nil, fmt.Errorf("rome: lease %d does not run in epoch %d (epochs %d-%d): %w", l.ID, st.Epoch, l.Start, l.End-1, ErrInvalid)
	}
	mu, _, err := s.meterUse(l.ID, st.Epoch, st.Kind)
	if err != nil {
		return nil, err
	}
	if mu.MeterID != 0 && mu.MeterID != mt.ID {
		return nil, fmt.Errorf("rome: lease %d's %s in epoch %d is measured by meter %d: %w", l.ID, KindName(st.Kind), st.Epoch, mu.MeterID, ErrInvalid)
	}
	var delta uint64
	if mt.HasReading {
		delta = st.Counter - mt.Counter
	}
	if mu.Readings == 0 {
		if err := s.touch(l.ID, st.Epoch); err != nil {
			return nil, err
		}
	}
	mu.MeterID = mt.ID
	mu.Amount = satAdd(mu.Amount, delta)
	mu.Readings++
	if err := s.put(meterUseKey(l.ID, st.Epoch, st.Kind), mu); err != nil {
		return nil, err
	}
	mt.HasReading, mt.Counter, mt.Seq = true, st.Counter, st.Seq
	mt.Readings++
	if err := s.put(rkey(tagMeter, u64(mt.ID)), mt); err != nil {
		return nil, err
	}
	tx.emit("meter_reading", "meter_id", strconv.FormatUint(mt.ID, 10), "lease_id", strconv.FormatUint(l.ID, 10),
		"epoch", strconv.FormatUint(st.Epoch, 10), "kind", KindName(st.Kind), "counter", strconv.FormatUint(st.Counter, 10),
		"seq", strconv.FormatUint(st.Seq, 10), "credited", strconv.FormatUint(delta, 10))
	return map[string]any{"meter_id": mt.ID, "lease_id": l.ID, "epoch": st.Epoch, "credited": delta, "epoch_amount": mu.Amount}, nil
}
