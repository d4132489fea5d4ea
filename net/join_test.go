package net

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sos-kernel/sos/ledger"
)

// TestJoin: a non-member proves its identity and gets the member's answer;
// the member's handler sees the joiner's key. Without a handler, with the
// wrong expected node id, or when the handler refuses, the join fails
// with a clear error, and a joiner never becomes a connected member.
func TestJoin(t *testing.T) {
	member := newNode(t, testKey(t, 1), nil)
	joiner := testKey(t, 2)
	ctx := ctxT(t, 10*time.Second)

	_, err := Join(ctx, joiner, member.Addr().String(), member.ID(), []byte("hi"))
	if !errors.Is(err, ErrUnknownPeer) && !strings.Contains(err.Error(), "refused") {
		t.Fatalf("join without a handler: %v", err)
	}

	// The handler runs on the member's goroutine, ordered before Join's
	// return only through the network, which the race detector cannot see.
	var mu sync.Mutex
	var seenKey ledger.PublicKey
	seen := func() ledger.PublicKey {
		mu.Lock()
		defer mu.Unlock()
		return seenKey
	}
	member.SetJoinHandler(func(_ context.Context, key ledger.PublicKey, req []byte) ([]byte, error) {
		mu.Lock()
		seenKey = key
		mu.Unlock()
		if string(req) == "bad" {
			return nil, errors.New("not today")
		}
		return append([]byte("welcome "), req...), nil
	})
	got, err := Join(ctx, joiner, member.Addr().String(), member.ID(), []byte("node-2"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "welcome node-2" || seen().Fingerprint() != joiner.Public().Fingerprint() {
		t.Fatalf("answer %q from a handler that saw %s", got, seen().Fingerprint())
	}
	if _, err := Join(ctx, joiner, member.Addr().String(), member.ID(), []byte("bad")); !errors.Is(err, ErrJoinRefused) || !strings.Contains(err.Error(), "not today") {
		t.Fatalf("refused join: %v", err)
	}
	// The node at the address is not the one the joiner expects.
	other := PeerID(testKey(t, 3).Public().Fingerprint())
	if _, err := Join(ctx, joiner, member.Addr().String(), other, []byte("x")); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("join to the wrong node id: %v", err)
	}
	if len(member.Peers()) != 0 {
		t.Fatalf("a joiner became a peer: %+v", member.Peers())
	}
	if _, err := Join(ctx, joiner, member.Addr().String(), member.ID(), make([]byte, MaxJoinRequest+1)); err == nil {
		t.Fatal("oversized join request accepted")
	}
}

// TestJoinerHelloMustNameNoChain: a joiner's hello is not a member's: a raw
// client that sends a joiner hello signed for the member's chain (to skip
// the join handler) is refused.
func TestJoinerHelloMustNameNoChain(t *testing.T) {
	member := newNode(t, testKey(t, 1), nil)
	member.SetJoinHandler(func(context.Context, ledger.PublicKey, []byte) ([]byte, error) { return nil, nil })
	c := dialRaw(t, member)
	key := testKey(t, 4)
	h, err := newHello(key, testChain, testGenesis, [bootIDSize]byte{}, roleJoiner, c.exp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.handshake(t, appendFrame(nil, frameHello, h.marshal())); err == nil {
		t.Fatal("a joiner hello naming a chain was answered")
	}
	member.log.waitLog(t, "a joiner's hello names no chain")
}

// TestJoinPending: a handler that has not admitted the joiner yet answers
// "pending", which the joiner gets as ErrJoinPending (ask again), not as a
// refusal.
func TestJoinPending(t *testing.T) {
	member := newNode(t, testKey(t, 1), nil)
	member.SetJoinHandler(func(context.Context, ledger.PublicKey, []byte) ([]byte, error) {
		return nil, fmt.Errorf("%w: waiting for an operator", ErrJoinPending)
	})
	_, err := Join(ctxT(t, 10*time.Second), testKey(t, 2), member.Addr().String(), member.ID(), []byte("x"))
	if !errors.Is(err, ErrJoinPending) || errors.Is(err, ErrJoinRefused) || !strings.Contains(err.Error(), "waiting for an operator") {
		t.Fatalf("pending join: %v", err)
	}
	if strings.Contains(member.log.String(), "refused connection") {
		t.Fatalf("a pending answer was logged as a refusal:\n%s", member.log)
	}
}

// newJoiner listens as a joiner asking member.
func newJoiner(t testing.TB, key *ledger.PrivateKey, member PeerID) *Joiner {
	t.Helper()
	j, err := ListenJoiner(context.Background(), JoinerConfig{ListenAddr: "127.0.0.1:0", Key: key, Member: member, HandshakeTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

// TestJoinDialBack: the member's handler dials back the address the joiner
// claims; a Joiner answers it with its key (from the socket it also asks
// from), so the member sees the address is the joiner's. The dial-back
// fails when another key answers there, when the address is a member's
// (members answer no probes), when the joiner is asking another member,
// and when nothing listens.
func TestJoinDialBack(t *testing.T) {
	member := newNode(t, testKey(t, 1), nil)
	key := testKey(t, 2)
	j := newJoiner(t, key, member.ID())
	ctx := ctxT(t, 20*time.Second)

	member.SetJoinHandler(func(ctx context.Context, k ledger.PublicKey, req []byte) ([]byte, error) {
		if err := member.VerifyAddr(ctx, string(req), k); err != nil {
			return nil, err
		}
		return []byte("verified"), nil
	})
	got, err := j.Ask(ctx, member.Addr().String(), []byte(j.Addr().String()))
	if err != nil || string(got) != "verified" {
		t.Fatalf("join with a verified address: %q, %v", got, err)
	}

	other := testKey(t, 3)
	if err := member.VerifyAddr(ctx, j.Addr().String(), other.Public()); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("address served by another key verified: %v", err)
	}
	// A joiner claiming another joiner's address.
	if _, err := Join(ctx, other, member.Addr().String(), member.ID(), []byte(j.Addr().String())); !errors.Is(err, ErrJoinRefused) {
		t.Fatalf("join claiming another node's address: %v", err)
	}
	// A joiner claiming a member's address: members answer no probes.
	peer := newNode(t, testKey(t, 4), nil)
	if err := member.VerifyAddr(ctx, peer.Addr().String(), peer.Key()); err == nil {
		t.Fatal("a member's transport answered a dial-back")
	}
	peer.log.waitLog(t, "role probe may not connect")
	// The joiner answers only the member it asks.
	if err := peer.VerifyAddr(ctx, j.Addr().String(), key.Public()); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("a joiner answered the dial-back of a member it did not ask: %v", err)
	}
	// Nothing listens: the dial-back fails within the handshake timeout.
	dead := newJoiner(t, other, member.ID())
	addr := dead.Addr().String()
	dead.Close()
	start := time.Now()
	if err := member.VerifyAddr(ctx, addr, other.Public()); err == nil {
		t.Fatal("dial-back to a closed port succeeded")
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("dial-back to a closed port took %s", took)
	}
	if len(member.Peers()) != 0 {
		t.Fatalf("a joiner or a probe became a peer: %+v", member.Peers())
	}
}
