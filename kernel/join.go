package kernel

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
	sosnet "github.com/sos-kernel/sos/net"
)

// JoinFile, in a joining node's home, lists the members it was told about
// when it was admitted; it talks to them until its own ledger lists it.
const JoinFile = "join.json"

// joinRequest is what a joining node sends (CBOR): the p2p address it
// claims (dialed back before anything is recorded) and, optionally, a join
// token minted on the member it asks.
type joinRequest struct {
	_       struct{} `cbor:",toarray"`
	P2PAddr string
	Token   string
}

// JoinedMember is one member in a join answer and in join.json.
type JoinedMember struct {
	PubKey string `json:"pub_key"` // hex
	Addr   string `json:"p2p_addr"`
	Role   string `json:"role"` // voter or learner
}

// JoinAnswer is what the admitting member answers (CBOR on the wire, JSON
// in join.json without the genesis).
type JoinAnswer struct {
	_       struct{}       `cbor:",toarray"`
	Genesis []byte         `json:"-" cbor:"genesis"`
	Height  uint64         `json:"admitted_at_height"`
	Members []JoinedMember `json:"members"`
}

// handleJoin answers the join request of a node authenticated by key (see
// admission.go for the rules). Only a node the ledger lists gets the
// genesis and the membership; a node with a valid token is admitted as a
// learner first; any other node whose address checks out is recorded as
// pending and told so (an error wrapping net.ErrJoinPending).
func (n *Node) handleJoin(ctx context.Context, key ledger.PublicKey, raw []byte) ([]byte, error) {
	c := n.cluster
	if c == nil {
		return nil, errors.New("kernel: this node does not run in a cluster")
	}
	var req joinRequest
	if err := n.chain.codec.Unmarshal(raw, &req); err != nil {
		return nil, fmt.Errorf("kernel: join request: %w", err)
	}
	add := &ledger.MemberAdd{PubKey: key.Bytes(), Addr: req.P2PAddr}
	if err := add.ValidateBasic(); err != nil {
		return nil, err
	}
	id := key.Fingerprint()
	members, err := MembersFromLedger(n.store)
	if err != nil {
		return nil, err
	}
	known, selfVoter := false, false
	for _, m := range members {
		known = known || m.NodeID == id
		selfVoter = selfVoter || (m.NodeID == n.nodeID && m.Role == ledger.RoleVoter)
	}
	if known {
		n.joins.remove(id)
		n.tokens.spend(req.Token, id)
		return n.joinAnswer(members, n.store.Head().Height)
	}
	if !selfVoter {
		return nil, errNotVoter
	}
	now := n.clock()
	if req.Token != "" {
		if _, err := n.tokens.usable(req.Token, id, now); err != nil {
			return nil, err
		}
	}
	verifiedAt, err := n.verifyJoiner(ctx, key, req.P2PAddr, now)
	if err != nil {
		return nil, err
	}
	if req.Token != "" {
		return n.admitWithToken(ctx, add, req.Token, now)
	}
	fresh, err := n.joins.record(key, req.P2PAddr, now, verifiedAt)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", sosnet.ErrJoinPending, err)
	}
	if fresh {
		n.log.Info("join request pending: an operator of a voting member must admit it", "node_id", id, "p2p_addr", req.P2PAddr,
			"admit_with", "sos cluster admit "+id+" --from node --home <member home>")
	}
	return nil, fmt.Errorf("%w: node %s is not admitted; an operator of a voting member must run 'sos cluster admit %s --from node --home <member home>' "+
		"(see 'sos cluster requests'), or give it a join token ('sos cluster token'). The request is kept %s after the last one",
		sosnet.ErrJoinPending, id, id, JoinRequestTTL)
}

// verifyJoiner dials back the address a joining node claims and checks its
// key answers there, unless the node's pending request holds the same
// address checked less than reverifyAfter ago. It returns when the
// address was last verified.
func (n *Node) verifyJoiner(ctx context.Context, key ledger.PublicKey, addr string, now time.Time) (time.Time, error) {
	id := key.Fingerprint()
	p, pending := n.joins.get(id, now)
	if pending && p.addr == addr && p.verified && now.Sub(p.verifiedAt) < reverifyAfter {
		return p.verifiedAt, nil
	}
	select {
	case n.dialBacks <- struct{}{}:
		defer func() { <-n.dialBacks }()
	default:
		return time.Time{}, fmt.Errorf("%w: this member is checking other joining nodes' addresses; asking again later", sosnet.ErrJoinPending)
	}
	if err := n.cluster.net.VerifyAddr(ctx, addr, key); err != nil {
		if pending && p.addr == addr {
			n.joins.failed(id, now, err)
		}
		if skipped, ok := n.joinWarn.allow(now); ok {
			n.log.Warn("join request refused: its address is not served by its key", "node_id", id, "p2p_addr", addr, "err", err,
				"similar_refusals_not_logged", skipped)
		}
		return time.Time{}, fmt.Errorf("%w: dialing back %s did not reach node %s (it must listen there while it asks): %v", ErrJoinAddress, addr, id, err)
	}
	return now, nil
}

// admitWithToken claims the token for the node and admits it as a learner
// with a MemberAdd signed by this node's key. A failure to commit leaves
// the token claimed by this node, which may ask again.
func (n *Node) admitWithToken(ctx context.Context, add *ledger.MemberAdd, tok string, now time.Time) ([]byte, error) {
	pk, err := ledger.ParsePublicKey(add.PubKey)
	if err != nil {
		return nil, err
	}
	id := pk.Fingerprint()
	if err := n.tokens.claim(tok, id, now); err != nil {
		return nil, err
	}
	res, err := n.submitNodeTx(ctx, add, true)
	if err != nil {
		return nil, fmt.Errorf("%w: admission not committed yet (%v); asking again later", sosnet.ErrJoinPending, err)
	}
	if res.Code != 0 {
		msg := ""
		if res.Receipt != nil {
			msg = res.Receipt.Error
		}
		return nil, fmt.Errorf("kernel: admitting %s failed (code %d): %s", id, res.Code, msg)
	}
	n.tokens.spend(tok, id)
	n.joins.remove(id)
	n.log.Info("admitted a new member as learner with a join token", "node_id", id, "p2p_addr", add.Addr, "height", res.Height)
	members, err := MembersFromLedger(n.store)
	if err != nil {
		return nil, err
	}
	return n.joinAnswer(members, res.Height)
}

// joinAnswer is the genesis and the membership, for an admitted node.
func (n *Node) joinAnswer(members []Member, height uint64) ([]byte, error) {
	ans := JoinAnswer{Genesis: n.opts.GenesisDoc, Height: height}
	for _, m := range members {
		ans.Members = append(ans.Members, JoinedMember{PubKey: hex.EncodeToString(m.PubKey.Bytes()), Addr: m.Addr, Role: m.Role.String()})
	}
	return n.chain.codec.Marshal(&ans)
}

// handleMembers lists the cluster members the committed ledger records.
func (n *Node) handleMembers(w http.ResponseWriter, r *http.Request) {
	list, err := ledger.Members{St: ledger.NewState(n.store), Codec: n.chain.codec}.List()
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	out := make([]client.Member, 0, len(list))
	for _, m := range list {
		out = append(out, client.Member{NodeID: m.NodeID, Address: m.Addr, Role: m.Role.String(), Since: m.Since, Account: m.Key.Address().String(),
			AsVoter: m.AsVoter})
	}
	writeJSON(w, http.StatusOK, out)
}

// ParsePeer splits "<node-id>@host:port".
func ParsePeer(s string) (id, addr string, err error) {
	id, addr, ok := strings.Cut(s, "@")
	if !ok || id == "" || addr == "" {
		return "", "", fmt.Errorf("kernel: peer %q: want <node-id>@host:port", s)
	}
	if err := (&ledger.MemberPromote{NodeID: id}).ValidateBasic(); err != nil {
		return "", "", fmt.Errorf("kernel: peer %q: %w", s, err)
	}
	return id, addr, nil
}

// JoinOptions configures JoinCluster.
type JoinOptions struct {
	Key  *ledger.PrivateKey // the joining node's identity (required)
	Peer string             // the member to ask: "<node-id>@host:port" (required)
	// P2PAddr is the node's p2p address (required): it listens there while
	// it asks, to answer the member's dial-back, and members will dial it.
	P2PAddr string
	// Token is a join token minted on that member ('sos cluster token'):
	// the node is admitted at once, as a learner.
	Token string
	// Wait bounds how long the node keeps asking while its request is
	// pending (default 5 minutes); Retry spaces its requests (default 3 s).
	Wait, Retry time.Duration
	// Progress, if set, is called each time the member's answer changes
	// while the node waits: an error wrapping net.ErrJoinPending carries
	// the member's message telling the operator what to do; others are
	// network errors the node retries.
	Progress func(err error)
	Logger   *slog.Logger
}

// ErrNotAdmitted: the member kept the join request pending past
// JoinOptions.Wait.
var ErrNotAdmitted = errors.New("kernel: not admitted")

// JoinCluster asks the member at o.Peer to admit the node with o.Key,
// reachable by the others at o.P2PAddr, and waits (up to o.Wait) until it
// is admitted. It listens on o.P2PAddr meanwhile, answering the member's
// dial-back. On success the node is a learner on the ledger; its home
// needs the answer's genesis and join.json (WriteJoin) before it starts.
func JoinCluster(ctx context.Context, o JoinOptions) (*JoinAnswer, error) {
	id, addr, err := ParsePeer(o.Peer)
	if err != nil {
		return nil, err
	}
	if o.Key == nil || o.P2PAddr == "" {
		return nil, errors.New("kernel: join: key and p2p address are required")
	}
	if o.Token != "" {
		if err := checkJoinToken(o.Token); err != nil {
			return nil, err
		}
	}
	if o.Wait <= 0 {
		o.Wait = 5 * time.Minute
	}
	if o.Retry <= 0 {
		o.Retry = 3 * time.Second
	}
	codec := ledger.NewCodec()
	req, err := codec.Marshal(&joinRequest{P2PAddr: o.P2PAddr, Token: o.Token})
	if err != nil {
		return nil, err
	}
	j, err := sosnet.ListenJoiner(ctx, sosnet.JoinerConfig{ListenAddr: o.P2PAddr, Key: o.Key, Member: sosnet.PeerID(id), Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("kernel: join: %w", err)
	}
	defer j.Close()
	ctx, cancel := context.WithTimeout(ctx, o.Wait)
	defer cancel()
	last := ""
	for {
		raw, err := j.Ask(ctx, addr, req)
		if err == nil {
			return parseJoinAnswer(codec, raw)
		}
		if permanentJoinError(err) {
			return nil, err
		}
		if msg := err.Error(); msg != last && o.Progress != nil {
			o.Progress(err)
			last = msg
		}
		select {
		case <-ctx.Done():
			if errors.Is(err, sosnet.ErrJoinPending) {
				return nil, fmt.Errorf("%w within %s: %w", ErrNotAdmitted, o.Wait, err)
			}
			return nil, fmt.Errorf("kernel: join via %s: no answer within %s: %w", o.Peer, o.Wait, err)
		case <-time.After(o.Retry):
		}
	}
}

// permanentJoinError: asking again will not help.
func permanentJoinError(err error) bool {
	for _, e := range []error{sosnet.ErrJoinRefused, sosnet.ErrUnknownPeer, sosnet.ErrVersion, sosnet.ErrBadSignature,
		sosnet.ErrNotPostQuantum, sosnet.ErrBadHandshake} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func parseJoinAnswer(codec *ledger.Codec, raw []byte) (*JoinAnswer, error) {
	var ans JoinAnswer
	if err := codec.Unmarshal(raw, &ans); err != nil {
		return nil, fmt.Errorf("kernel: join answer: %w", err)
	}
	if _, err := ledger.ParseGenesis(ans.Genesis); err != nil {
		return nil, fmt.Errorf("kernel: join answer: %w", err)
	}
	if _, err := joinedMembers(ans.Members); err != nil {
		return nil, fmt.Errorf("kernel: join answer: %w", err)
	}
	return &ans, nil
}

// WriteJoin stores a join answer in a home: genesis.json and join.json.
func WriteJoin(home string, ans *JoinAnswer) error {
	if err := WriteFileAtomic(filepath.Join(home, GenesisFile), ans.Genesis, 0o644); err != nil {
		return err
	}
	b, err := json.MarshalIndent(ans, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(home, JoinFile), append(b, '\n'), 0o644)
}

// readJoinSeed reads join.json, if the home has one.
func readJoinSeed(home string) ([]Member, error) {
	if home == "" {
		return nil, nil
	}
	b, err := os.ReadFile(filepath.Join(home, JoinFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	var ans JoinAnswer
	if err := json.Unmarshal(b, &ans); err != nil {
		return nil, fmt.Errorf("kernel: %s: %w", JoinFile, err)
	}
	return joinedMembers(ans.Members)
}

func joinedMembers(js []JoinedMember) ([]Member, error) {
	out := make([]Member, 0, len(js))
	for _, j := range js {
		raw, err := hex.DecodeString(j.PubKey)
		if err != nil {
			return nil, fmt.Errorf("member key: %w", err)
		}
		pk, err := ledger.ParsePublicKey(raw)
		if err != nil {
			return nil, err
		}
		role := ledger.RoleVoter
		if j.Role == ledger.RoleLearner.String() {
			role = ledger.RoleLearner
		}
		id := pk.Fingerprint()
		out = append(out, Member{NodeID: id, RaftID: RaftID(id), PubKey: pk, Addr: j.Addr, Role: role})
	}
	return out, nil
}
