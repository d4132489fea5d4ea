package net

import (
	"context"
	"errors"
	"strings"
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

	var seen ledger.PublicKey
	member.SetJoinHandler(func(_ context.Context, key ledger.PublicKey, req []byte) ([]byte, error) {
		seen = key
		if string(req) == "bad" {
			return nil, errors.New("not today")
		}
		return append([]byte("welcome "), req...), nil
	})
	got, err := Join(ctx, joiner, member.Addr().String(), member.ID(), []byte("node-2"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "welcome node-2" || seen.Fingerprint() != joiner.Public().Fingerprint() {
		t.Fatalf("answer %q from a handler that saw %s", got, seen.Fingerprint())
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
