package kernel

import (
	"errors"
	"fmt"

	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/ledger/smt"
)

// The messages a worker and the member it follows exchange on
// net.KindFollow (the transport lets a worker link carry nothing else but
// blob transfers). Each message is one type byte and the canonical CBOR of
// its body:
//
//	worker → member  subscribe  the worker's trusted height; sent at start and every few seconds
//	member → worker  update     a committed header with its proposer's signature, and state
//	                            proofs against its state root: the jobs waiting for the
//	                            worker's result (and, when asked or changed, the members)
//	worker → member  submit     a transaction signed by the worker's node key (job_result)
//	member → worker  ack        what the member's mempool answered, at which height
//
// The member is trusted for nothing it sends: a header counts only if a
// voting member's key signed it, and a job or member record only with a
// proof against a header that counts (worker.go).
const (
	followSubscribe byte = 1
	followUpdate    byte = 2
	followSubmit    byte = 3
	followAck       byte = 4
)

// errFollowMsg classifies a KindFollow message that does not decode.
var errFollowMsg = errors.New("kernel: malformed follow message")

// Bounds of one update: what a member lists and a worker accepts.
const (
	maxFollowJobs    = scanLimit // jobs per update (the worker asks again when it ran them)
	maxFollowMembers = 64
	maxFollowTxBytes = ledger.MaxTxBytes
)

// followSub asks the member for updates; Height is the worker's trusted
// head (the member sends an update when it differs from what it last
// sent, or when its last update could not be sent), and Want asks for one
// now (a worker that just started has no list of its jobs yet).
type followSub struct {
	_      struct{} `cbor:",toarray"`
	Height uint64
	Want   bool
}

// stateProof is a state value and its sparse Merkle proof (smt.Proof's
// own encoding), checked against a header's state root.
type stateProof struct {
	_     struct{} `cbor:",toarray"`
	Key   []byte
	Value []byte // nil: the key is absent
	Proof []byte
}

// verify checks the proof against root and returns the proved value.
func (p *stateProof) verify(root ledger.Hash) ([]byte, error) {
	sp, err := smt.UnmarshalProof(p.Proof)
	if err != nil {
		return nil, fmt.Errorf("kernel: state proof of %x: %w", p.Key, err)
	}
	lp := ledger.StateProof{Key: p.Key, Value: p.Value, Proof: sp}
	if err := lp.Verify(root); err != nil {
		return nil, fmt.Errorf("kernel: state proof of %x: %w", p.Key, err)
	}
	return p.Value, nil
}

func toStateProof(sp *ledger.StateProof) stateProof {
	return stateProof{Key: sp.Key, Value: sp.Value, Proof: sp.Proof.Marshal()}
}

// followUpd is a committed header and what the worker acts on, proved
// against it.
type followUpd struct {
	_         struct{} `cbor:",toarray"`
	Header    ledger.Header
	Signature []byte
	// Members, when set, proves every member record at Header: the worker
	// then trusts exactly the voters it proves.
	Members []stateProof
	// Jobs proves the records of the jobs waiting for the worker's result
	// at Header, oldest first; Complete says the list is all of them.
	Jobs     []stateProof
	Complete bool
	// Nonce is the next nonce the member's mempool expects from the
	// worker's account (a hint: a wrong one costs a refused transaction).
	Nonce uint64
}

// followTx is a transaction the worker asks the member to admit; ID
// matches it to its ack.
type followTx struct {
	_  struct{} `cbor:",toarray"`
	ID uint64
	Tx []byte
}

// followAckMsg answers a followTx.
type followAckMsg struct {
	_     struct{} `cbor:",toarray"`
	ID    uint64
	Hash  ledger.Hash
	Err   string // "" when admitted
	Nonce uint64 // the next nonce the mempool expects now
	// Height is the member's committed height when it answered: a worker
	// counts the blocks a result may take to land from there, not from its
	// own trusted head, which moves only with updates and may be far behind.
	Height uint64
}

// encodeFollow frames a message body.
func encodeFollow(c *ledger.Codec, typ byte, body any) ([]byte, error) {
	b, err := c.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("kernel: encode follow message %d: %w", typ, err)
	}
	return append([]byte{typ}, b...), nil
}

// decodeFollow parses an untrusted KindFollow message: its type and body
// (one of *followSub, *followUpd, *followTx, *followAckMsg), with every
// list bounded.
func decodeFollow(c *ledger.Codec, msg []byte) (byte, any, error) {
	if len(msg) == 0 {
		return 0, nil, fmt.Errorf("%w: empty", errFollowMsg)
	}
	var body any
	switch msg[0] {
	case followSubscribe:
		body = &followSub{}
	case followUpdate:
		body = &followUpd{}
	case followSubmit:
		body = &followTx{}
	case followAck:
		body = &followAckMsg{}
	default:
		return 0, nil, fmt.Errorf("%w: type %d", errFollowMsg, msg[0])
	}
	if err := c.Unmarshal(msg[1:], body); err != nil {
		return 0, nil, fmt.Errorf("%w: type %d: %w", errFollowMsg, msg[0], err)
	}
	switch b := body.(type) {
	case *followUpd:
		if len(b.Jobs) > maxFollowJobs || len(b.Members) > maxFollowMembers {
			return 0, nil, fmt.Errorf("%w: update lists %d jobs and %d members (at most %d and %d)", errFollowMsg, len(b.Jobs), len(b.Members), maxFollowJobs, maxFollowMembers)
		}
	case *followTx:
		if len(b.Tx) == 0 || len(b.Tx) > maxFollowTxBytes {
			return 0, nil, fmt.Errorf("%w: transaction of %d bytes", errFollowMsg, len(b.Tx))
		}
	}
	return msg[0], body, nil
}
