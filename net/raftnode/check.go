package raftnode

import (
	"errors"
	"fmt"

	"go.etcd.io/raft/v3/confchange"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"
)

// Checking messages from the network.
//
// etcd raft trusts the messages it is given: a heartbeat whose commit index
// lies beyond the log, an append whose entries are not contiguous, a
// snapshot whose configuration cannot be restored or a response with a
// made-up sender all reach one of its Panicf calls, which would end the
// process. So every message that arrives from a peer is checked here before
// raft sees it, against the peer the transport authenticated and against
// raft's own state; raft then only ever meets messages an honest member
// could have sent.
//
// This is what makes a member unable to crash another. It does not make
// raft Byzantine fault tolerant: a member that wins an election, or claims
// a higher term, can still disrupt ordering, as with any raft.

// ErrDropped is matched (errors.Is) by every *DropError.
var ErrDropped = errors.New("raftnode: message dropped")

// DropError is a message from the network that was not given to raft.
type DropError struct {
	From   uint64         // the authenticated sender's raft id
	Type   pb.MessageType // the message type, if it decoded
	Reason string         // one of the Drop* constants
	Err    error          // what was wrong
}

func (e *DropError) Error() string {
	return fmt.Sprintf("raftnode: %s from %x dropped (%s): %v", e.Type, e.From, e.Reason, e.Err)
}

// Is makes errors.Is(err, ErrDropped) hold.
func (e *DropError) Is(target error) bool { return target == ErrDropped }

func (e *DropError) Unwrap() error { return e.Err }

// Drop reasons: the label of the kernel's dropped-message counter.
const (
	// DropMalformed: the bytes do not decode, or a field holds what no raft
	// node sends (a zero term, entries in a heartbeat, an unknown entry type).
	DropMalformed = "malformed"
	// DropSpoofed: From is not the authenticated sender.
	DropSpoofed = "spoofed"
	// DropMisaddressed: To is not this node.
	DropMisaddressed = "misaddressed"
	// DropLocalType: a type that never travels between nodes here (MsgHup,
	// MsgBeat, MsgProp, MsgTransferLeader, MsgReadIndex, MsgStorage*, ...).
	DropLocalType = "local_type"
	// DropNotLeader: a leader's message (append, heartbeat, snapshot,
	// timeout-now) from a node that does not lead this term.
	DropNotLeader = "not_leader"
	// DropOutOfRange: an index or term raft cannot accept (a commit index
	// past the end of the log, an acknowledgement of entries never sent).
	DropOutOfRange = "out_of_range"
	// DropBadConf: a snapshot whose configuration raft cannot restore.
	DropBadConf = "bad_conf"
	// DropNotVoter: a vote answer from a node that has no vote here.
	DropNotVoter = "not_voter"
	// DropBadSnapshot: the state machine refused the snapshot's payload
	// (Config.CheckSnapshot).
	DropBadSnapshot = "bad_snapshot"
)

// Bounds far above anything a real cluster reaches (a new term per second
// for a century is 2^32; an entry per microsecond for a century is 2^52)
// and far below where raft's index and term arithmetic would overflow.
const (
	maxTerm  = 1 << 40
	maxIndex = 1 << 56
	// maxContext bounds the opaque context of heartbeats and votes (raft
	// puts a read-index request id or "CampaignTransfer" there).
	maxContext = 64
)

// campaignTransfer is the context raft puts on the votes of a leadership
// transfer (raft.campaignTransfer, unexported).
const campaignTransfer = "CampaignTransfer"

// remoteTypes are the message types one raft node sends another in this
// deployment. Proposals and leadership-transfer requests are not forwarded
// (Config.DisableProposalForwarding; TransferLeadership is called on the
// leader), read-index requests are never made, and the rest are raft's
// messages to itself.
var remoteTypes = map[pb.MessageType]bool{
	pb.MessageType_MsgApp:           true,
	pb.MessageType_MsgAppResp:       true,
	pb.MessageType_MsgVote:          true,
	pb.MessageType_MsgVoteResp:      true,
	pb.MessageType_MsgPreVote:       true,
	pb.MessageType_MsgPreVoteResp:   true,
	pb.MessageType_MsgSnap:          true,
	pb.MessageType_MsgHeartbeat:     true,
	pb.MessageType_MsgHeartbeatResp: true,
	pb.MessageType_MsgTimeoutNow:    true,
}

// decodeChecked decodes a message from the network and checks what can be
// checked without raft's state: that it comes from the authenticated sender
// from and is addressed to self, is of a type that travels between nodes,
// and is well formed for its type. checkSnap, if set, vets a snapshot's
// payload.
func decodeChecked(data []byte, self, from uint64, checkSnap func([]byte) error) (*pb.Message, *DropError) {
	var m pb.Message
	if err := proto.Unmarshal(data, &m); err != nil {
		return nil, &DropError{From: from, Reason: DropMalformed, Err: err}
	}
	drop := func(reason string, format string, args ...any) (*pb.Message, *DropError) {
		return nil, &DropError{From: from, Type: m.GetType(), Reason: reason, Err: fmt.Errorf(format, args...)}
	}
	if from == 0 || from == self {
		return drop(DropSpoofed, "sender %x cannot send to %x", from, self)
	}
	if m.GetFrom() != from {
		return drop(DropSpoofed, "claims to come from %x", m.GetFrom())
	}
	if m.GetTo() != self {
		return drop(DropMisaddressed, "addressed to %x", m.GetTo())
	}
	typ := m.GetType()
	if !remoteTypes[typ] {
		return drop(DropLocalType, "type %d is not accepted from the network", int32(typ))
	}
	if m.GetTerm() == 0 {
		// Raft treats a term-less message as its own (local) input.
		return drop(DropMalformed, "no term")
	}
	if m.GetTerm() > maxTerm || m.GetLogTerm() > maxTerm {
		return drop(DropOutOfRange, "term %d, log term %d", m.GetTerm(), m.GetLogTerm())
	}
	if m.GetIndex() > maxIndex || m.GetCommit() > maxIndex || m.GetRejectHint() > maxIndex {
		return drop(DropOutOfRange, "index %d, commit %d, reject hint %d", m.GetIndex(), m.GetCommit(), m.GetRejectHint())
	}
	if m.GetLogTerm() > m.GetTerm() {
		// A log never holds entries of a term later than its owner's.
		return drop(DropMalformed, "log term %d after term %d", m.GetLogTerm(), m.GetTerm())
	}
	if len(m.GetContext()) > maxContext {
		return drop(DropMalformed, "context of %d bytes", len(m.GetContext()))
	}
	if len(m.GetEntries()) > 0 && typ != pb.MessageType_MsgApp {
		return drop(DropMalformed, "entries in a %s", typ)
	}
	if m.Snapshot != nil && typ != pb.MessageType_MsgSnap {
		return drop(DropMalformed, "snapshot in a %s", typ)
	}
	switch typ {
	case pb.MessageType_MsgApp:
		if err := checkEntries(&m); err != nil {
			return drop(DropMalformed, "%v", err)
		}
	case pb.MessageType_MsgSnap:
		if reason, err := checkSnapshot(&m, self); err != nil {
			return drop(reason, "%v", err)
		}
		if checkSnap != nil {
			if err := checkSnap(m.GetSnapshot().GetData()); err != nil {
				return drop(DropBadSnapshot, "%v", err)
			}
		}
	case pb.MessageType_MsgVote, pb.MessageType_MsgPreVote:
		if c := m.GetContext(); len(c) > 0 && string(c) != campaignTransfer {
			return drop(DropMalformed, "vote context %q", c)
		}
	}
	return &m, nil
}

// checkEntries checks an append: its entries follow the entry it is
// anchored at (Index, LogTerm) one by one, their terms never go down and
// never pass the sender's term, and each is a kind raft knows, a
// configuration change decoding as one. Raft assumes all of this (an entry
// out of place makes it panic on "conflict with committed entry").
func checkEntries(m *pb.Message) error {
	prevIdx, prevTerm := m.GetIndex(), m.GetLogTerm()
	if prevIdx == 0 && prevTerm != 0 {
		return fmt.Errorf("anchored at index 0 with term %d", prevTerm)
	}
	ents := m.GetEntries()
	if uint64(len(ents)) > maxIndex-prevIdx {
		return fmt.Errorf("%d entries after index %d", len(ents), prevIdx)
	}
	term := prevTerm
	for i, e := range ents {
		if want := prevIdx + 1 + uint64(i); e.GetIndex() != want {
			return fmt.Errorf("entry %d has index %d, want %d", i, e.GetIndex(), want)
		}
		if e.GetTerm() < term || e.GetTerm() > m.GetTerm() || e.GetTerm() == 0 {
			return fmt.Errorf("entry %d has term %d (previous %d, message %d)", e.GetIndex(), e.GetTerm(), term, m.GetTerm())
		}
		term = e.GetTerm()
		switch e.GetType() {
		case pb.EntryType_EntryNormal:
		case pb.EntryType_EntryConfChange:
			if err := proto.Unmarshal(e.GetData(), &pb.ConfChange{}); err != nil {
				return fmt.Errorf("entry %d: conf change: %w", e.GetIndex(), err)
			}
		case pb.EntryType_EntryConfChangeV2:
			if err := proto.Unmarshal(e.GetData(), &pb.ConfChangeV2{}); err != nil {
				return fmt.Errorf("entry %d: conf change: %w", e.GetIndex(), err)
			}
		default:
			return fmt.Errorf("entry %d has unknown type %d", e.GetIndex(), int32(e.GetType()))
		}
	}
	return nil
}

// checkSnapshot checks a snapshot message: a position raft can restore to
// and a configuration it can restore without panicking, which includes
// this node.
func checkSnapshot(m *pb.Message, self uint64) (string, error) {
	s := m.GetSnapshot()
	if s == nil || s.Metadata == nil {
		return DropMalformed, errors.New("no snapshot")
	}
	md := s.GetMetadata()
	if md.GetIndex() == 0 || md.GetIndex() > maxIndex {
		return DropOutOfRange, fmt.Errorf("snapshot index %d", md.GetIndex())
	}
	if md.GetTerm() == 0 || md.GetTerm() > m.GetTerm() {
		return DropOutOfRange, fmt.Errorf("snapshot term %d in a message of term %d", md.GetTerm(), m.GetTerm())
	}
	cs := md.GetConfState()
	if cs == nil {
		return DropBadConf, errors.New("no configuration")
	}
	if err := restorable(cs); err != nil {
		return DropBadConf, err
	}
	member := false
	for _, ids := range [][]uint64{cs.GetVoters(), cs.GetLearners(), cs.GetVotersOutgoing()} {
		for _, id := range ids {
			member = member || id == self
		}
	}
	if !member {
		return DropBadConf, fmt.Errorf("configuration %v does not include this node", cs)
	}
	return "", nil
}

// restorable reports whether raft can restore cs: it rebuilds the
// configuration exactly as raft's restore does and requires the result to
// be cs again (raft panics otherwise).
func restorable(cs *pb.ConfState) error {
	tr := tracker.MakeProgressTracker(1, 0)
	cfg, prs, err := confchange.Restore(confchange.Changer{Tracker: tr, LastIndex: 1}, cs)
	if err != nil {
		return fmt.Errorf("configuration %v: %w", cs, err)
	}
	tr.Config, tr.Progress = cfg, prs
	if err := tr.ConfState().Equivalent(cs); err != nil {
		return fmt.Errorf("configuration %v does not restore to itself", cs)
	}
	if len(cs.GetVoters()) == 0 {
		return errors.New("configuration without voters")
	}
	return nil
}

// applicable reports whether raft can apply cc on top of the configuration
// cs without panicking (raft's ApplyConfChange panics on any error of its
// configuration changer: removing the last voter, changing two voters at
// once, leaving a joint configuration it is not in, ...).
func applicable(cs *pb.ConfState, cc *pb.ConfChangeV2) error {
	tr := tracker.MakeProgressTracker(1, 0)
	cfg, prs, err := confchange.Restore(confchange.Changer{Tracker: tr, LastIndex: 1}, cs)
	if err != nil {
		return err
	}
	tr.Config, tr.Progress = cfg, prs
	ch := confchange.Changer{Tracker: tr, LastIndex: 1}
	switch {
	case cc.LeaveJoint():
		_, _, err = ch.LeaveJoint()
	default:
		if autoLeave, ok := cc.EnterJoint(); ok {
			_, _, err = ch.EnterJoint(autoLeave, cc.GetChanges()...)
		} else {
			_, _, err = ch.Simple(cc.GetChanges()...)
		}
	}
	return err
}

// stateView is the part of raft's state a message is checked against.
type stateView struct {
	term, lead uint64
	leader     bool // this node leads term
	lastIndex  uint64
	voters     map[uint64]bool // voters of the current configuration (incoming and outgoing)
}

// checkState checks m against raft's current state (the checks
// decodeChecked cannot make).
func checkState(m *pb.Message, st stateView) *DropError {
	drop := func(reason string, format string, args ...any) *DropError {
		return &DropError{From: m.GetFrom(), Type: m.GetType(), Reason: reason, Err: fmt.Errorf(format, args...)}
	}
	switch m.GetType() {
	case pb.MessageType_MsgApp, pb.MessageType_MsgHeartbeat, pb.MessageType_MsgSnap:
		// Only one node leads a term: in our term, that is the leader we
		// know (or us). A later term is how a new leader announces itself.
		if m.GetTerm() == st.term && (st.leader || st.lead != 0 && m.GetFrom() != st.lead) {
			return drop(DropNotLeader, "term %d is led by %x", st.term, st.lead)
		}
		if m.GetType() == pb.MessageType_MsgHeartbeat && m.GetCommit() > st.lastIndex {
			// A leader sends min(commit, what we acknowledged): never past
			// our log. Raft panics on it ("tocommit out of range").
			return drop(DropOutOfRange, "commit %d past the last index %d", m.GetCommit(), st.lastIndex)
		}
	case pb.MessageType_MsgTimeoutNow:
		// Sent by the leader to the member it hands leadership to; from
		// anyone else it is a way to start elections at will.
		if m.GetTerm() != st.term || m.GetFrom() != st.lead || st.lead == 0 {
			return drop(DropNotLeader, "timeout-now at term %d; term %d is led by %x", m.GetTerm(), st.term, st.lead)
		}
	case pb.MessageType_MsgAppResp:
		if !m.GetReject() && m.GetTerm() == st.term && m.GetIndex() > st.lastIndex {
			return drop(DropOutOfRange, "acknowledges index %d past the last index %d", m.GetIndex(), st.lastIndex)
		}
	case pb.MessageType_MsgVoteResp, pb.MessageType_MsgPreVoteResp:
		// Raft counts only voters' answers; a learner's never counts.
		if !st.voters[m.GetFrom()] {
			return drop(DropNotVoter, "%x has no vote in this configuration", m.GetFrom())
		}
	}
	return nil
}
