package kernel

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
)

// Admission: who becomes a member is an operator's decision, never the
// network's. A node asks to join over QUIC (net.Joiner); the member it asks
// (handleJoin, join.go):
//
//  1. answers with the genesis and the member list only if the ledger
//     already lists the node (it was admitted);
//  2. otherwise dials back the p2p address the node claims and checks that
//     the node's key answers there (PeerNet.VerifyAddr), so that neither
//     the pending list nor the ledger ever holds an address its node does
//     not serve; an unverified request is refused;
//  3. with a valid join token (MintJoinToken, minted in this member's home
//     by its operator), signs and submits the MemberAdd itself, as a
//     learner;
//  4. without one, records the request as pending (node-local, bounded,
//     expiring) and answers "pending": an operator of a voting member lists
//     it (GET /v1/cluster/requests, 'sos cluster requests') and admits it
//     with a MemberAdd signed by that member's node key ('sos cluster
//     admit'), as a learner or with the intent to become a voter.
//
// Promotion to voter is explicit too: the leader promotes only learners
// admitted with MemberAdd.AsVoter (cluster_members.go); others wait for a
// MemberPromote signed by a voting member ('sos cluster promote').

// Limits of the pending-request list and of dial-backs.
const (
	// MaxJoinRequests bounds the pending join requests a node remembers.
	MaxJoinRequests = 64
	// JoinRequestTTL is how long a pending request is kept after the
	// node's last request (a waiting joiner asks again every few seconds).
	JoinRequestTTL = 5 * time.Minute
	// reverifyAfter: a pending request's address is dialed back again when
	// the node asks and its last check is older than this.
	reverifyAfter = 30 * time.Second
	// maxDialBacks bounds the dial-backs in flight: each is one QUIC
	// handshake to an address a stranger chose.
	maxDialBacks = 4
)

// Join tokens.
const (
	// JoinTokenDir, in a member's home, holds its unused join tokens (by
	// hash; the token itself is printed once and never stored).
	JoinTokenDir = "join-tokens"
	// MaxJoinTokenTTL bounds a join token's life.
	MaxJoinTokenTTL = 24 * time.Hour
	joinTokenBytes  = 16
)

var (
	// ErrJoinToken: the join token is unknown, already used by another
	// node, or expired.
	ErrJoinToken = errors.New("kernel: join token is unknown, used or expired")
	// ErrJoinAddress: the address a joining node claims is not served by
	// its key.
	ErrJoinAddress = errors.New("kernel: join address not verified")
	// ErrJoinRequests: the pending-request list is full.
	ErrJoinRequests = errors.New("kernel: too many pending join requests")
)

// pendingJoin is one node waiting for admission.
type pendingJoin struct {
	key         ledger.PublicKey
	addr        string
	first, last time.Time
	verifiedAt  time.Time // last successful dial-back of addr
	verified    bool      // the last dial-back of addr succeeded
	verifyErr   string    // why it did not
}

// joinRequests is a node's list of pending join requests: node-local (not
// consensus), at most max entries, each dropped ttl after the node's last
// request. It is safe for concurrent use.
type joinRequests struct {
	mu   sync.Mutex
	max  int
	ttl  time.Duration
	byID map[string]*pendingJoin
}

func newJoinRequests(max int, ttl time.Duration) *joinRequests {
	return &joinRequests{max: max, ttl: ttl, byID: map[string]*pendingJoin{}}
}

// expire drops the requests not renewed within the TTL; r.mu is held.
func (r *joinRequests) expire(now time.Time) {
	for id, p := range r.byID {
		if !now.Before(p.last.Add(r.ttl)) {
			delete(r.byID, id)
		}
	}
}

// get returns a copy of the node's pending request.
func (r *joinRequests) get(id string, now time.Time) (pendingJoin, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expire(now)
	p, ok := r.byID[id]
	if !ok {
		return pendingJoin{}, false
	}
	return *p, true
}

// record adds the request of a node whose address was verified at
// verifiedAt, or renews it (same node: one entry, first seen kept). It
// reports whether the entry is new, and fails with ErrJoinRequests when
// the list is full of live requests.
func (r *joinRequests) record(key ledger.PublicKey, addr string, now, verifiedAt time.Time) (bool, error) {
	id := key.Fingerprint()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expire(now)
	if p, ok := r.byID[id]; ok {
		p.addr, p.last, p.verifiedAt, p.verified, p.verifyErr = addr, now, verifiedAt, true, ""
		return false, nil
	}
	if len(r.byID) >= r.max {
		return false, fmt.Errorf("%w (%d, each kept %s after its last retry)", ErrJoinRequests, r.max, r.ttl)
	}
	r.byID[id] = &pendingJoin{key: key, addr: addr, first: now, last: now, verifiedAt: verifiedAt, verified: true}
	return true, nil
}

// failed notes that the node's request came back and its address (the
// one recorded) no longer answered with its key: it is not admitted until
// a later check succeeds.
func (r *joinRequests) failed(id string, now time.Time, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.byID[id]; ok {
		p.last, p.verified, p.verifyErr = now, false, err.Error()
	}
}

func (r *joinRequests) remove(id string) {
	r.mu.Lock()
	delete(r.byID, id)
	r.mu.Unlock()
}

// list returns the live requests, oldest first.
func (r *joinRequests) list(now time.Time) []client.JoinRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expire(now)
	out := make([]client.JoinRequest, 0, len(r.byID))
	for id, p := range r.byID {
		out = append(out, client.JoinRequest{
			NodeID: id, PubKey: hex.EncodeToString(p.key.Bytes()), Address: p.addr,
			AddressVerified: p.verified, VerifiedAt: p.verifiedAt.UnixMilli(), VerifyError: p.verifyErr,
			FirstSeen: p.first.UnixMilli(), LastSeen: p.last.UnixMilli(), ExpiresAt: p.last.Add(r.ttl).UnixMilli(),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].FirstSeen != out[j].FirstSeen {
			return out[i].FirstSeen < out[j].FirstSeen
		}
		return out[i].NodeID < out[j].NodeID
	})
	return out
}

// handleJoinRequests lists the pending join requests this node recorded,
// leaving out nodes the ledger lists by now.
func (n *Node) handleJoinRequests(w http.ResponseWriter, r *http.Request) {
	members, err := MembersFromLedger(n.store)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	listed := map[string]bool{}
	for _, m := range members {
		listed[m.NodeID] = true
	}
	out := []client.JoinRequest{}
	for _, req := range n.joins.list(n.clock()) {
		if !listed[req.NodeID] {
			out = append(out, req)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// AdmitPayload is the MemberAdd that admits the node of a pending join
// request, as a learner or (asVoter) as a learner the leader promotes once
// it has caught up. It refuses a request for another node id, whose key
// is not that node id's, or whose address is not verified.
func AdmitPayload(req client.JoinRequest, nodeID string, asVoter bool) (*ledger.MemberAdd, error) {
	if req.NodeID != nodeID {
		return nil, fmt.Errorf("kernel: join request of %s, not %s", req.NodeID, nodeID)
	}
	raw, err := hex.DecodeString(req.PubKey)
	if err != nil {
		return nil, fmt.Errorf("kernel: join request of %s: key: %w", nodeID, err)
	}
	pk, err := ledger.ParsePublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("kernel: join request of %s: %w", nodeID, err)
	}
	if pk.Fingerprint() != nodeID {
		return nil, fmt.Errorf("kernel: join request of %s carries the key of %s", nodeID, pk.Fingerprint())
	}
	if !req.AddressVerified {
		return nil, fmt.Errorf("%w: %s did not answer with the key of %s at the last check (%s); it is checked again when the node asks again",
			ErrJoinAddress, req.Address, nodeID, req.VerifyError)
	}
	add := &ledger.MemberAdd{PubKey: raw, Addr: req.Address, AsVoter: asVoter}
	if err := add.ValidateBasic(); err != nil {
		return nil, err
	}
	return add, nil
}

// joinTokens are a member's single-use join tokens: one file per token in
// dir, named by the token's SHA-256 and holding its expiry. A token is
// claimed by the first node that presents it (the file is renamed to
// <hash>.<node id>, atomically), so no other node can use it, while the
// claiming node may retry; the file is removed once that node is admitted,
// and expired files are swept.
type joinTokens struct{ dir string }

type tokenFile struct {
	ExpiresAt time.Time `json:"expires_at"`
}

// MintJoinToken creates a join token in a member's home, valid for ttl from
// now (at most MaxJoinTokenTTL). The token is returned once; the home keeps
// only its hash.
func MintJoinToken(home string, ttl time.Duration, now time.Time, rand io.Reader) (string, time.Time, error) {
	if ttl <= 0 || ttl > MaxJoinTokenTTL {
		return "", time.Time{}, fmt.Errorf("kernel: join token ttl %s: want more than 0 and at most %s", ttl, MaxJoinTokenTTL)
	}
	b := make([]byte, joinTokenBytes)
	if _, err := io.ReadFull(rand, b); err != nil {
		return "", time.Time{}, fmt.Errorf("kernel: join token: %w", err)
	}
	tok := hex.EncodeToString(b)
	jt := joinTokens{dir: filepath.Join(home, JoinTokenDir)}
	if err := os.MkdirAll(jt.dir, 0o700); err != nil {
		return "", time.Time{}, fmt.Errorf("kernel: join token: %w", err)
	}
	jt.sweep(now)
	exp := now.Add(ttl)
	data, err := json.Marshal(tokenFile{ExpiresAt: exp.UTC()})
	if err != nil {
		return "", time.Time{}, err
	}
	if err := WriteFileAtomic(jt.path(tok, ""), data, 0o600); err != nil {
		return "", time.Time{}, err
	}
	return tok, exp, nil
}

// checkJoinToken checks the form of a token.
func checkJoinToken(tok string) error {
	if len(tok) != 2*joinTokenBytes {
		return fmt.Errorf("%w: want %d hex digits", ErrJoinToken, 2*joinTokenBytes)
	}
	if _, err := hex.DecodeString(tok); err != nil {
		return fmt.Errorf("%w: want hex digits", ErrJoinToken)
	}
	return nil
}

func (jt joinTokens) path(tok, claimedBy string) string {
	h := sha256.Sum256([]byte(tok))
	name := hex.EncodeToString(h[:])
	if claimedBy != "" {
		name += "." + claimedBy
	}
	return filepath.Join(jt.dir, name)
}

func readTokenFile(path string) (tokenFile, error) {
	var f tokenFile
	b, err := os.ReadFile(path)
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("kernel: %s: %w", path, err)
	}
	return f, nil
}

// usable reports whether node id may use tok now: the token is unclaimed,
// or claimed by id, and not expired. It returns the file holding it.
func (jt joinTokens) usable(tok, id string, now time.Time) (string, error) {
	if jt.dir == "" {
		return "", fmt.Errorf("%w: this node has no home to keep tokens in", ErrJoinToken)
	}
	if err := checkJoinToken(tok); err != nil {
		return "", err
	}
	for _, p := range []string{jt.path(tok, ""), jt.path(tok, id)} {
		f, err := readTokenFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if !now.Before(f.ExpiresAt) {
			os.Remove(p)
			return "", ErrJoinToken
		}
		return p, nil
	}
	return "", ErrJoinToken
}

// claim binds tok to node id (first come), or confirms id holds it.
func (jt joinTokens) claim(tok, id string, now time.Time) error {
	p, err := jt.usable(tok, id, now)
	if err != nil {
		return err
	}
	claimed := jt.path(tok, id)
	if p == claimed {
		return nil
	}
	if err := os.Rename(p, claimed); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return ErrJoinToken // another node claimed it first
		}
		return fmt.Errorf("kernel: claim join token: %w", err)
	}
	return nil
}

// spend removes the token id claimed, once id is admitted.
func (jt joinTokens) spend(tok, id string) {
	if jt.dir != "" && checkJoinToken(tok) == nil {
		os.Remove(jt.path(tok, id))
	}
}

// sweep removes expired token files.
func (jt joinTokens) sweep(now time.Time) {
	ents, err := os.ReadDir(jt.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(jt.dir, e.Name())
		if f, err := readTokenFile(p); err == nil && !now.Before(f.ExpiresAt) {
			os.Remove(p)
		}
	}
}

// logLimit lets one message through per interval, counting the others: a
// stranger can cause refusals as fast as it can connect.
type logLimit struct {
	every time.Duration
	mu    sync.Mutex
	last  time.Time
	held  int
}

// allow reports whether to log now, and how many were held back since.
func (l *logLimit) allow(now time.Time) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.held++
		return 0, false
	}
	held := l.held
	l.last, l.held = now, 0
	return held, true
}
