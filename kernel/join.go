package kernel

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
	sosnet "github.com/sos-kernel/sos/net"
)

// JoinFile, in a joining node's home, lists the members it was told about
// when it was admitted; it talks to them until its own ledger lists it.
const JoinFile = "join.json"

// joinRequest is what a joining node sends (CBOR).
type joinRequest struct {
	_       struct{} `cbor:",toarray"`
	P2PAddr string
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

// handleJoin admits a node that asked to join: it submits a MemberAdd
// signed by this node's key, waits for it to commit, and answers with the
// genesis and the membership. A node already in the ledger gets the answer
// without a new transaction (a retried join).
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
	members, err := MembersFromLedger(n.store)
	if err != nil {
		return nil, err
	}
	known, selfVoter := false, false
	for _, m := range members {
		known = known || m.NodeID == key.Fingerprint()
		selfVoter = selfVoter || (m.NodeID == n.nodeID && m.Role == ledger.RoleVoter)
	}
	height := n.store.Head().Height
	if !known {
		if !selfVoter {
			return nil, errNotVoter
		}
		res, err := n.submitNodeTx(ctx, add, true)
		if err != nil {
			return nil, err
		}
		if res.Code != 0 {
			msg := ""
			if res.Receipt != nil {
				msg = res.Receipt.Error
			}
			return nil, fmt.Errorf("kernel: admitting %s failed (code %d): %s", key.Fingerprint(), res.Code, msg)
		}
		height = res.Height
		n.log.Info("admitted a new member as learner", "node_id", key.Fingerprint(), "p2p_addr", req.P2PAddr, "height", height)
		if members, err = MembersFromLedger(n.store); err != nil {
			return nil, err
		}
	}
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
		out = append(out, client.Member{NodeID: m.NodeID, Address: m.Addr, Role: m.Role.String(), Since: m.Since, Account: m.Key.Address().String()})
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

// JoinCluster asks the member at peer ("<node-id>@host:port") to admit the
// node with key, reachable by the others at p2pAddr. On success the node is
// a learner on the ledger; its home needs the answer's genesis and
// join.json (WriteJoin) before it starts.
func JoinCluster(ctx context.Context, key *ledger.PrivateKey, peer, p2pAddr string) (*JoinAnswer, error) {
	id, addr, err := ParsePeer(peer)
	if err != nil {
		return nil, err
	}
	codec := ledger.NewCodec()
	req, err := codec.Marshal(&joinRequest{P2PAddr: p2pAddr})
	if err != nil {
		return nil, err
	}
	raw, err := sosnet.Join(ctx, key, addr, sosnet.PeerID(id), req)
	if err != nil {
		return nil, err
	}
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
