package kernel

import (
	"errors"
	"fmt"

	"github.com/sos-kernel/sos/ledger"
)

// Errors of membership transactions; each maps to a receipt code.
var (
	// ErrNotMember: the signer of a membership change is not a voting member.
	ErrNotMember = errors.New("kernel: only a voting cluster member may change membership")
	// ErrMembership: the change does not fit the current membership.
	ErrMembership = errors.New("kernel: membership")
	// ErrNoSuchMember: the change names a node that is not a member.
	ErrNoSuchMember = errors.New("kernel: no such cluster member")
)

// isClusterPayload reports whether p changes cluster membership.
func isClusterPayload(p ledger.Payload) bool {
	switch p.(type) {
	case *ledger.MemberAdd, *ledger.MemberPromote, *ledger.MemberRemove:
		return true
	}
	return false
}

// runCluster applies a membership change. Only a voter may sign one, so the
// cluster's own nodes (whose keys sign blocks) decide who joins; the
// ordering layer then follows the ledger (cluster.reconcile).
func (e *Executor) runCluster(ptx *PendingTx, gas *ledger.GasMeter) ([]ledger.Event, []byte, error) {
	c, tx := e.chain, ptx.Tx
	ms := ledger.Members{St: e.st, Codec: c.codec}
	list, err := ms.List()
	if err != nil {
		return nil, nil, err
	}
	signer, voters := "", 0
	for _, m := range list {
		if m.Role == ledger.RoleVoter {
			voters++
			if m.Key.Address() == tx.Sender {
				signer = m.NodeID
			}
		}
	}
	if signer == "" {
		return nil, nil, fmt.Errorf("%w (signer %s)", ErrNotMember, tx.Sender)
	}
	if err := gas.Consume(2*c.sched.WriteBase+c.sched.EventBase, "membership"); err != nil {
		return nil, nil, err
	}
	find := func(id string) *ledger.MemberInfo {
		for i := range list {
			if list[i].NodeID == id {
				return &list[i]
			}
		}
		return nil
	}
	switch p := tx.Payload.(type) {
	case *ledger.MemberAdd:
		pk, err := ledger.ParsePublicKey(p.PubKey)
		if err != nil {
			return nil, nil, err
		}
		id := pk.Fingerprint()
		if find(id) != nil {
			return nil, nil, fmt.Errorf("%w: %s is already a member", ErrMembership, id)
		}
		rec := &ledger.Member{PubKey: p.PubKey, Addr: p.Addr, Role: ledger.RoleLearner, Since: e.env.Height}
		if err := ms.Put(id, rec); err != nil {
			return nil, nil, err
		}
		if p.AsVoter {
			ms.SetVoterIntent(id, true)
		}
		return []ledger.Event{ledger.NewEvent("member_added", "node_id", id, "p2p_addr", p.Addr, "role", "learner",
			"as_voter", fmt.Sprint(p.AsVoter), "by", signer)}, nil, nil
	case *ledger.MemberPromote:
		m := find(p.NodeID)
		if m == nil {
			return nil, nil, fmt.Errorf("%w: %s", ErrNoSuchMember, p.NodeID)
		}
		if m.Role != ledger.RoleLearner {
			return nil, nil, fmt.Errorf("%w: %s is already a voter", ErrMembership, p.NodeID)
		}
		rec := m.Member
		rec.Role = ledger.RoleVoter
		if err := ms.Put(p.NodeID, &rec); err != nil {
			return nil, nil, err
		}
		ms.SetVoterIntent(p.NodeID, false)
		return []ledger.Event{ledger.NewEvent("member_promoted", "node_id", p.NodeID, "role", "voter", "by", signer)}, nil, nil
	case *ledger.MemberRemove:
		m := find(p.NodeID)
		if m == nil {
			return nil, nil, fmt.Errorf("%w: %s", ErrNoSuchMember, p.NodeID)
		}
		if m.Role == ledger.RoleVoter && voters == 1 {
			return nil, nil, fmt.Errorf("%w: %s is the last voter", ErrMembership, p.NodeID)
		}
		ms.Delete(p.NodeID)
		return []ledger.Event{ledger.NewEvent("member_removed", "node_id", p.NodeID, "by", signer)}, nil, nil
	}
	return nil, nil, fmt.Errorf("kernel: payload %s: %w", tx.Payload.Kind(), ledger.ErrUnknownKind)
}
