package ledger

import (
	"encoding/json"
	"fmt"
	"net"
	"sort"
)

// Cluster membership payloads (kinds 80–95). The ledger is the source of
// truth for who is in the cluster: the ordering layer (raft) is reconciled
// to the member records these transactions write, so every change is
// signed, ordered and provable like any other state.
const (
	KindMemberAdd     PayloadKind = 80
	KindMemberPromote PayloadKind = 81
	KindMemberRemove  PayloadKind = 82
)

// MaxMemberAddrBytes bounds a member's peer address.
const MaxMemberAddrBytes = 256

// MemberRole is a member's part in ordering.
type MemberRole uint8

// Member roles. A learner receives every block but does not vote. It
// becomes a voter only by a MemberPromote: signed by a voting member's
// operator, or by the leader once it has caught up if it was admitted with
// MemberAdd.AsVoter.
const (
	RoleVoter   MemberRole = 1
	RoleLearner MemberRole = 2
)

func (r MemberRole) String() string {
	switch r {
	case RoleVoter:
		return "voter"
	case RoleLearner:
		return "learner"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// MemberAdd admits a node, identified by its ML-DSA-65 public key, as a
// learner reachable at Addr. AsVoter records the admitting operator's
// intent that it become a voter: the leader promotes such a learner once
// its log has caught up. A learner admitted without it stays a learner
// until a voting member signs a MemberPromote.
type MemberAdd struct {
	_       struct{} `cbor:",toarray"`
	PubKey  []byte   `json:"-" cbor:"pub_key"`
	Addr    string   `json:"p2p_addr"`
	AsVoter bool     `json:"as_voter" cbor:"as_voter"`
}

// Kind implements Payload.
func (*MemberAdd) Kind() PayloadKind { return KindMemberAdd }

// ValidateBasic implements Payload.
func (p *MemberAdd) ValidateBasic() error {
	if _, err := ParsePublicKey(p.PubKey); err != nil {
		return fmt.Errorf("ledger: member add: %w", err)
	}
	return validMemberAddr(p.Addr)
}

// MarshalJSON shows the node id instead of the key bytes.
func (p *MemberAdd) MarshalJSON() ([]byte, error) {
	pk, err := ParsePublicKey(p.PubKey)
	if err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		NodeID  string `json:"node_id"`
		Addr    string `json:"p2p_addr"`
		AsVoter bool   `json:"as_voter"`
	}{pk.Fingerprint(), p.Addr, p.AsVoter})
}

// MemberPromote makes a learner a voter.
type MemberPromote struct {
	_      struct{} `cbor:",toarray"`
	NodeID string   `json:"node_id"`
}

// Kind implements Payload.
func (*MemberPromote) Kind() PayloadKind { return KindMemberPromote }

// ValidateBasic implements Payload.
func (p *MemberPromote) ValidateBasic() error { return validNodeID(p.NodeID) }

// MemberRemove takes a node out of the cluster.
type MemberRemove struct {
	_      struct{} `cbor:",toarray"`
	NodeID string   `json:"node_id"`
}

// Kind implements Payload.
func (*MemberRemove) Kind() PayloadKind { return KindMemberRemove }

// ValidateBasic implements Payload.
func (p *MemberRemove) ValidateBasic() error { return validNodeID(p.NodeID) }

func validMemberAddr(addr string) error {
	if addr == "" || len(addr) > MaxMemberAddrBytes {
		return fmt.Errorf("ledger: member address must be 1..%d bytes: %w", MaxMemberAddrBytes, ErrMalformed)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("ledger: member address %q: %v: %w", addr, err, ErrMalformed)
	}
	return nil
}

// validNodeID checks the form of a node id: 40 lower-case hex digits
// (PublicKey.Fingerprint).
func validNodeID(id string) error {
	if len(id) != 40 {
		return fmt.Errorf("ledger: node id %q: want 40 hex digits: %w", id, ErrMalformed)
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("ledger: node id %q: want lower-case hex: %w", id, ErrMalformed)
		}
	}
	return nil
}

func newClusterPayload(k PayloadKind) Payload {
	switch k {
	case KindMemberAdd:
		return &MemberAdd{}
	case KindMemberPromote:
		return &MemberPromote{}
	case KindMemberRemove:
		return &MemberRemove{}
	}
	return nil
}

func clusterKindName(k PayloadKind) string {
	switch k {
	case KindMemberAdd:
		return "member_add"
	case KindMemberPromote:
		return "member_promote"
	case KindMemberRemove:
		return "member_remove"
	}
	return ""
}

// Member is the ledger's record of a cluster member.
type Member struct {
	_      struct{}   `cbor:",toarray"`
	PubKey []byte     `json:"-" cbor:"pub_key"`
	Addr   string     `json:"p2p_addr"`
	Role   MemberRole `json:"-" cbor:"role"`
	Since  uint64     `json:"since_height"` // height of the block that added it
}

// MemberInfo is a member with its decoded key, as Members.List returns it.
// AsVoter is set for a learner admitted to become a voter once caught up.
type MemberInfo struct {
	NodeID  string
	Key     PublicKey
	AsVoter bool
	Member
}

// memberKey is the state key of a member record.
func memberKey(nodeID string) []byte { return append([]byte{PrefixCluster, 'm'}, nodeID...) }

// MemberKey is the state key of the record of the member with node id
// nodeID: what a state proof of membership proves (a worker learns the
// cluster's members this way, kernel/worker.go).
func MemberKey(nodeID string) []byte { return memberKey(nodeID) }

// voterIntentKey marks a learner admitted with MemberAdd.AsVoter. It is a
// key of its own, not a field of the member record, so the records of
// voters (genesis nodes among them) keep their encoding.
func voterIntentKey(nodeID string) []byte { return append([]byte{PrefixCluster, 'v'}, nodeID...) }

// Members reads and writes member records. Membership changes are rare and
// small, so access is not metered here: the transaction's intrinsic gas
// covers it.
type Members struct {
	St    *State
	Codec *Codec
}

// Get returns a member's record.
func (m Members) Get(nodeID string) (*Member, bool, error) {
	raw, err := m.St.Get(memberKey(nodeID))
	if err != nil || raw == nil {
		return nil, false, err
	}
	var rec Member
	if err := m.Codec.Unmarshal(raw, &rec); err != nil {
		return nil, false, fmt.Errorf("ledger: member %s: %w", nodeID, err)
	}
	return &rec, true, nil
}

// Put writes a member's record.
func (m Members) Put(nodeID string, rec *Member) error {
	b, err := m.Codec.Marshal(rec)
	if err != nil {
		return err
	}
	m.St.Set(memberKey(nodeID), b)
	return nil
}

// Delete removes a member's record (and its voter intent).
func (m Members) Delete(nodeID string) {
	m.St.Delete(memberKey(nodeID))
	m.St.Delete(voterIntentKey(nodeID))
}

// SetVoterIntent records (or, with on false, clears) that a learner is to
// be promoted once it has caught up.
func (m Members) SetVoterIntent(nodeID string, on bool) {
	if on {
		m.St.Set(voterIntentKey(nodeID), []byte{1})
	} else {
		m.St.Delete(voterIntentKey(nodeID))
	}
}

// List returns every member, sorted by node id.
func (m Members) List() ([]MemberInfo, error) {
	lo := []byte{PrefixCluster, 'm'}
	hi := []byte{PrefixCluster, 'm' + 1}
	var out []MemberInfo
	var derr error
	err := m.St.Iterate(lo, hi, false, func(k, v []byte) bool {
		var rec Member
		if derr = m.Codec.Unmarshal(v, &rec); derr != nil {
			return false
		}
		var pk PublicKey
		if pk, derr = ParsePublicKey(rec.PubKey); derr != nil {
			return false
		}
		out = append(out, MemberInfo{NodeID: string(k[2:]), Key: pk, Member: rec})
		return true
	})
	if err == nil {
		err = derr
	}
	for i := range out {
		if err != nil {
			break
		}
		if out[i].Role != RoleLearner {
			continue
		}
		var v []byte
		v, err = m.St.Get(voterIntentKey(out[i].NodeID))
		out[i].AsVoter = v != nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: list members: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out, nil
}

// applyGenesisMembers records the genesis nodes as voters.
func applyGenesisMembers(st *State, codec *Codec, g *Genesis) error {
	keys, err := g.NodePubKeys()
	if err != nil {
		return err
	}
	ms := Members{St: st, Codec: codec}
	for i, k := range keys {
		if err := ms.Put(k.Fingerprint(), &Member{PubKey: k.Bytes(), Addr: g.Nodes[i].Addr, Role: RoleVoter}); err != nil {
			return err
		}
	}
	return nil
}
