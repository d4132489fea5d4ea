package kernel

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sos-kernel/sos/ledger"
	sosnet "github.com/sos-kernel/sos/net"
)

// TestJoinNeedsAdmission: a stranger that can reach a member and asks to
// join (the documented 'sos init --join') is recorded as pending and told
// so; nothing reaches the ledger until an operator admits it. A request
// whose claimed address is served by another key, or by nobody, is
// refused and not recorded. Once admitted as a learner the node gets the
// genesis, catches up, and stays a learner (the leader does not promote
// it) until an operator promotes it.
func TestJoinNeedsAdmission(t *testing.T) {
	tc := newTestCluster(t, 3)
	l := tc.leader(5 * time.Second)
	via := (l + 1) % 3
	tc.converge(2, 10*time.Second)

	stranger := seededKey(t, 90)
	id := stranger.Public().Fingerprint()
	tc.net.serve("mem:s", id)
	_, err := tc.ask(via, stranger, "mem:s", "")
	if !errors.Is(err, sosnet.ErrJoinPending) {
		t.Fatalf("a stranger's join: %v, want pending", err)
	}
	ctx := context.Background()
	reqs, err := tc.members[via].client.JoinRequests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 1 || reqs[0].NodeID != id || reqs[0].Address != "mem:s" || !reqs[0].AddressVerified || reqs[0].FirstSeen != reqs[0].LastSeen {
		t.Fatalf("pending requests: %+v", reqs)
	}
	// Asking again refreshes the request; it does not add one.
	time.Sleep(5 * time.Millisecond)
	if _, err := tc.ask(via, stranger, "mem:s", ""); !errors.Is(err, sosnet.ErrJoinPending) {
		t.Fatalf("second request: %v", err)
	}
	again, _ := tc.members[via].client.JoinRequests(ctx)
	if len(again) != 1 || again[0].FirstSeen != reqs[0].FirstSeen || again[0].LastSeen <= reqs[0].LastSeen {
		t.Fatalf("after a repeated request: %+v (before %+v)", again, reqs)
	}

	// Claimed addresses that the joiner's key does not serve.
	impostor := seededKey(t, 91)
	if _, err := tc.ask(via, impostor, "mem:s", ""); !errors.Is(err, ErrJoinAddress) {
		t.Fatalf("join claiming another node's address: %v", err)
	}
	if _, err := tc.ask(via, impostor, "mem:nobody", ""); !errors.Is(err, ErrJoinAddress) {
		t.Fatalf("join claiming an address nobody serves: %v", err)
	}
	if reqs, _ := tc.members[via].client.JoinRequests(ctx); len(reqs) != 1 {
		t.Fatalf("an unverified request was recorded: %+v", reqs)
	}
	// Only the member asked remembers the request (node-local).
	if reqs, _ := tc.members[l].client.JoinRequests(ctx); len(reqs) != 0 {
		t.Fatalf("node %d lists requests sent to node %d: %+v", l, via, reqs)
	}

	// Blocks go on; no member_add was committed.
	h := tc.converge(tc.members[l].node.store.Head().Height+3, 10*time.Second)
	for i := range tc.members {
		if r := tc.memberRole(i, id); r != 0 {
			t.Fatalf("node %d lists the stranger as %v without an admission", i, r)
		}
	}
	for height := uint64(1); height <= h; height++ {
		b, err := tc.members[l].node.store.Block(height)
		if err != nil {
			continue
		}
		for _, tx := range b.Txs {
			if dec, err := tc.codec.DecodeTx(tx); err == nil && dec.Payload.Kind() == ledger.KindMemberAdd {
				t.Fatalf("a member_add was committed at height %d without an operator", height)
			}
		}
	}

	// An operator admits it as a learner.
	tc.admit(via, l, id, false)
	ans, err := tc.ask(via, stranger, "mem:s", "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ans.Genesis, tc.doc) {
		t.Fatal("the join answer carries another genesis")
	}
	if reqs, _ := tc.members[via].client.JoinRequests(ctx); len(reqs) != 0 {
		t.Fatalf("an admitted node is still listed as pending: %+v", reqs)
	}
	j := tc.startJoined(stranger, ans)
	rid := RaftID(id)
	tc.waitFor(15*time.Second, "the learner caught up", func() bool {
		st := tc.members[tc.leader(5*time.Second)].node.cluster.raft.Status()
		match, ok := st.Progress[rid]
		return slices.Contains(st.Learners, rid) && ok && match+promoteSlack >= st.Commit &&
			tc.members[j].node.store.Head().Height+1 >= tc.members[l].node.store.Head().Height
	})
	// Caught up, but admitted as a learner: never promoted by the leader
	// (it would have within a few reconcile rounds).
	time.Sleep(1500 * time.Millisecond)
	li := tc.leader(5 * time.Second)
	if r := tc.memberRole(li, id); r != ledger.RoleLearner {
		t.Fatalf("a learner admitted as learner became %v without an operator", r)
	}
	if st := tc.members[li].node.cluster.raft.Status(); slices.Contains(st.Voters, rid) {
		t.Fatal("raft made the learner a voter")
	}

	// An operator promotes it.
	if res, err := tc.members[li].node.submitNodeTx(ctx, &ledger.MemberPromote{NodeID: id}, true); err != nil || res.Code != 0 {
		t.Fatalf("promote: %v %+v", err, res)
	}
	tc.waitFor(10*time.Second, "promoted node is a voter in ledger and raft", func() bool {
		li := tc.leader(5 * time.Second)
		return tc.memberRole(li, id) == ledger.RoleVoter && slices.Contains(tc.members[li].node.cluster.raft.Status().Voters, rid)
	})
}

// TestJoinToken: a join token minted in a member's home admits the first
// node that presents it (after the dial-back), as a learner, at once; the
// same token is refused to any other node, as are an expired and a
// malformed one. A token presented with an address that fails the
// dial-back is not used up.
func TestJoinToken(t *testing.T) {
	tc := newTestCluster(t, 3)
	l := tc.leader(5 * time.Second)
	via := (l + 2) % 3
	home := tc.members[via].home
	tok, _, err := MintJoinToken(home, 10*time.Minute, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	a, b := seededKey(t, 92), seededKey(t, 93)
	tc.net.serve("mem:a", a.Public().Fingerprint())
	tc.net.serve("mem:b", b.Public().Fingerprint())
	// b claims a's address: refused, and the token is not used up.
	if _, err := tc.ask(via, b, "mem:a", tok); !errors.Is(err, ErrJoinAddress) {
		t.Fatalf("token join with an unverified address: %v", err)
	}
	var ans *JoinAnswer
	tc.waitFor(10*time.Second, "a admitted with the token", func() bool {
		ans, err = tc.ask(via, a, "mem:a", tok)
		return err == nil
	})
	aid := a.Public().Fingerprint()
	if r := tc.memberRole(via, aid); r != ledger.RoleLearner {
		t.Fatalf("token-admitted node has role %v", r)
	}
	if ms, _ := MembersFromLedger(tc.members[via].node.store); slices.ContainsFunc(ms, func(m Member) bool { return m.NodeID == aid && m.AsVoter }) {
		t.Fatal("a token admits a learner, not a voter-to-be")
	}
	if len(ans.Members) != 4 {
		t.Fatalf("join answer lists %d members", len(ans.Members))
	}
	// Asking again (a retried init) still gets the answer.
	if _, err := tc.ask(via, a, "mem:a", tok); err != nil {
		t.Fatalf("retried join of the admitted node: %v", err)
	}
	// The token is used up.
	if _, err := tc.ask(via, b, "mem:b", tok); !errors.Is(err, ErrJoinToken) {
		t.Fatalf("reused token: %v", err)
	}
	expired, _, err := MintJoinToken(home, time.Minute, time.Now().Add(-2*time.Minute), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.ask(via, b, "mem:b", expired); !errors.Is(err, ErrJoinToken) {
		t.Fatalf("expired token: %v", err)
	}
	if _, err := tc.ask(via, b, "mem:b", "not-a-token"); !errors.Is(err, ErrJoinToken) {
		t.Fatalf("malformed token: %v", err)
	}
	// A token is the minting member's: another member does not know it.
	other, _, err := MintJoinToken(home, time.Minute, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.ask(l, b, "mem:b", other); !errors.Is(err, ErrJoinToken) {
		t.Fatalf("token of node %d accepted by node %d: %v", via, l, err)
	}
	if r := tc.memberRole(via, b.Public().Fingerprint()); r != 0 {
		t.Fatalf("refused node has role %v", r)
	}
}

// TestJoinRequestsBoundedAndExpire: the pending list holds at most its
// bound of live requests, renews a node's request instead of adding a
// second, and drops requests a TTL after their last renewal.
func TestJoinRequestsBoundedAndExpire(t *testing.T) {
	r := newJoinRequests(3, time.Minute)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	keys := []*ledger.PrivateKey{seededKey(t, 1), seededKey(t, 2), seededKey(t, 3), seededKey(t, 4)}
	for i, k := range keys[:3] {
		if fresh, err := r.record(k.Public(), "h:1", t0.Add(time.Duration(i)*time.Second), t0); err != nil || !fresh {
			t.Fatalf("record %d: %v %v", i, fresh, err)
		}
	}
	if _, err := r.record(keys[3].Public(), "h:1", t0.Add(10*time.Second), t0); !errors.Is(err, ErrJoinRequests) {
		t.Fatalf("a fourth request fit in a list of 3: %v", err)
	}
	// Renewing the first keeps one entry and its first-seen time.
	if fresh, err := r.record(keys[0].Public(), "h:2", t0.Add(30*time.Second), t0.Add(30*time.Second)); err != nil || fresh {
		t.Fatalf("renewal: %v %v", fresh, err)
	}
	list := r.list(t0.Add(30 * time.Second))
	if len(list) != 3 || list[0].NodeID != keys[0].Public().Fingerprint() || list[0].FirstSeen != t0.UnixMilli() || list[0].Address != "h:2" {
		t.Fatalf("after renewal: %+v", list)
	}
	// A minute after their last request the other two expire; the renewed
	// one lives on, and there is room again.
	now := t0.Add(62 * time.Second)
	if list := r.list(now); len(list) != 1 {
		t.Fatalf("after the TTL: %+v", list)
	}
	if _, err := r.record(keys[3].Public(), "h:1", now, now); err != nil {
		t.Fatal(err)
	}
	// A failed re-check marks the request unverified (not admitted).
	r.failed(keys[3].Public().Fingerprint(), now, errors.New("no answer"))
	p, _ := r.get(keys[3].Public().Fingerprint(), now)
	if p.verified || p.verifyErr != "no answer" {
		t.Fatalf("after a failed check: %+v", p)
	}
	if _, err := AdmitPayload(r.list(now)[1], keys[3].Public().Fingerprint(), false); !errors.Is(err, ErrJoinAddress) {
		t.Fatalf("an unverified request was admitted: %v", err)
	}
	if list := r.list(now.Add(2 * time.Minute)); len(list) != 0 {
		t.Fatalf("nothing expires: %+v", list)
	}
}

// TestAdmitPayload: admission refuses a request whose key is not the node
// id's (the API answer is checked, not trusted) and carries the intent.
func TestAdmitPayload(t *testing.T) {
	r := newJoinRequests(4, time.Minute)
	now := time.Now()
	k, other := seededKey(t, 5), seededKey(t, 6)
	if _, err := r.record(k.Public(), "10.0.0.1:26656", now, now); err != nil {
		t.Fatal(err)
	}
	req := r.list(now)[0]
	add, err := AdmitPayload(req, k.Public().Fingerprint(), true)
	if err != nil || !add.AsVoter || add.Addr != "10.0.0.1:26656" || !bytes.Equal(add.PubKey, k.Public().Bytes()) {
		t.Fatalf("%+v %v", add, err)
	}
	if _, err := AdmitPayload(req, other.Public().Fingerprint(), false); err == nil {
		t.Fatal("admitted a request under another node id")
	}
	forged := req
	forged.NodeID = other.Public().Fingerprint()
	if _, err := AdmitPayload(forged, other.Public().Fingerprint(), false); err == nil {
		t.Fatal("admitted a request whose key is another node's")
	}
}

// FuzzJoinRequest: any bytes a stranger sends as a join request either
// fail to decode or decode to the one request they canonically encode;
// the same holds for the join answer a joining node reads.
func FuzzJoinRequest(f *testing.F) {
	c := ledger.NewCodec()
	for _, r := range []joinRequest{{P2PAddr: "127.0.0.1:26656"}, {P2PAddr: "h:1", Token: "00112233445566778899aabbccddeeff"}, {}} {
		b, err := c.Marshal(&r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	ans, err := c.Marshal(&JoinAnswer{Genesis: []byte("{}"), Height: 3, Members: []JoinedMember{{PubKey: "00", Addr: "h:1", Role: "voter"}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ans)
	f.Add([]byte{0x81, 0x60}) // the previous one-field request
	pub := seededKey(f, 1).Public().Bytes()
	f.Fuzz(func(t *testing.T, b []byte) {
		var req joinRequest
		if err := c.Unmarshal(b, &req); err == nil {
			again, err := c.Marshal(&req)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("join request %x decodes to %+v, which encodes to %x (%v)", b, req, again, err)
			}
			_ = (&ledger.MemberAdd{PubKey: pub, Addr: req.P2PAddr}).ValidateBasic()
			_ = checkJoinToken(req.Token)
		}
		if a, err := parseJoinAnswer(c, b); err == nil && a == nil {
			t.Fatal("nil answer without an error")
		}
	})
}

// TestLogLimit: one refusal is logged per interval, with the count of
// those held back.
func TestLogLimit(t *testing.T) {
	l := logLimit{every: 10 * time.Second}
	t0 := time.Unix(0, 0)
	if n, ok := l.allow(t0); !ok || n != 0 {
		t.Fatal("first message held")
	}
	for i := 1; i <= 5; i++ {
		if _, ok := l.allow(t0.Add(time.Duration(i) * time.Second)); ok {
			t.Fatalf("message %d within the interval logged", i)
		}
	}
	if n, ok := l.allow(t0.Add(11 * time.Second)); !ok || n != 5 {
		t.Fatalf("after the interval: %d, %v", n, ok)
	}
}
