package kernel

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome"
)

func (n *Node) registerRomeAPI(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/rome/offers", n.handleRomeOffers)
	mux.HandleFunc("GET /v1/rome/offers/{id}", n.handleRomeOffer)
	mux.HandleFunc("GET /v1/rome/requests", n.handleRomeRequests)
	mux.HandleFunc("GET /v1/rome/requests/{id}", n.handleRomeRequest)
	mux.HandleFunc("GET /v1/rome/leases", n.handleRomeLeases)
	mux.HandleFunc("GET /v1/rome/leases/{id}", n.handleRomeLease)
	mux.HandleFunc("GET /v1/rome/market", n.handleRomeMarket)
	mux.HandleFunc("GET /v1/rome/epochs", n.handleRomeEpochs)
	mux.HandleFunc("GET /v1/rome/epochs/{epoch}", n.handleRomeEpoch)
	mux.HandleFunc("GET /v1/rome/policies", n.handleRomePolicies)
	mux.HandleFunc("GET /v1/rome/params", n.handleRomeParams)
	mux.HandleFunc("GET /v1/certs", n.handleCerts)
	mux.HandleFunc("GET /v1/certs/{id}", n.handleCert)
	mux.HandleFunc("GET /v1/gov/proposals", n.handleProposals)
	mux.HandleFunc("GET /v1/gov/proposals/{id}", n.handleProposal)
	n.registerRomeMetrics()
}

// romeMetrics exports the last epoch's figures; they are read from the
// committed state at scrape time.
type romeMetrics struct {
	n           *Node
	utilization *prometheus.Desc
	matched     *prometheus.Desc
	price       *prometheus.Desc
	epoch       *prometheus.Desc
	leases      *prometheus.Desc
}

func (n *Node) registerRomeMetrics() {
	c := &romeMetrics{n: n,
		utilization: prometheus.NewDesc("sos_rome_utilization_ratio", "Leased share of open offers' capacity after the last epoch's matching, per resource kind.", []string{"kind"}, nil),
		matched:     prometheus.NewDesc("sos_rome_matched_ratio", "Share of open demand matched in the last epoch.", nil, nil),
		price:       prometheus.NewDesc("sos_rome_clearing_price", "Volume-weighted price (base units of the kind's token per unit per epoch) of the last epoch's allocations, per kind.", []string{"kind"}, nil),
		epoch:       prometheus.NewDesc("sos_rome_epoch", "Last processed ROME epoch.", nil, nil),
		leases:      prometheus.NewDesc("sos_rome_live_leases", "Leases not yet ended.", nil, nil),
	}
	if err := n.metrics.Registry.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			n.log.Warn("rome: metrics", "err", err)
		}
	}
}

func (c *romeMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.utilization
	ch <- c.matched
	ch <- c.price
	ch <- c.epoch
	ch <- c.leases
}

func (c *romeMetrics) Collect(ch chan<- prometheus.Metric) {
	m := c.n.chain.market
	if m == nil {
		return
	}
	st := ledger.NewState(c.n.store)
	if cnt, err := m.Counts(st); err == nil {
		ch <- prometheus.MustNewConstMetric(c.leases, prometheus.GaugeValue, float64(cnt.LiveLeases))
	}
	eps, err := m.Epochs(st, 1)
	if err != nil || len(eps) == 0 {
		return
	}
	e := eps[0]
	ch <- prometheus.MustNewConstMetric(c.epoch, prometheus.GaugeValue, float64(e.Epoch))
	ch <- prometheus.MustNewConstMetric(c.matched, prometheus.GaugeValue, float64(e.MatchedBps)/10_000)
	for _, k := range e.Kinds {
		ch <- prometheus.MustNewConstMetric(c.utilization, prometheus.GaugeValue, float64(k.UtilizationBps)/10_000, rome.KindName(k.Kind))
		ch <- prometheus.MustNewConstMetric(c.price, prometheus.GaugeValue, float64(k.ClearingPrice), rome.KindName(k.Kind))
	}
}

// romeState returns the market and a read view of the latest state, or
// answers 503 when the market is not configured.
func (n *Node) romeState(w http.ResponseWriter) (*rome.Market, *ledger.State, bool) {
	m := n.chain.market
	if m == nil {
		writeErr(w, http.StatusServiceUnavailable, fmt.Errorf("kernel: the ROME market is not configured: %v", n.chain.marketErr))
		return nil, nil, false
	}
	return m, ledger.NewState(n.store), true
}

func pathID(w http.ResponseWriter, r *http.Request, name string) (uint64, bool) {
	id, err := strconv.ParseUint(r.PathValue(name), 10, 64)
	if err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("kernel: %s %q: want a number", name, r.PathValue(name)))
		return 0, false
	}
	return id, true
}

func romeStatus(err error) int {
	if errors.Is(err, rome.ErrNotFound) {
		return http.StatusNotFound
	}
	return statusOf(err)
}

func resMap(rs []ledger.ResourceAmount) map[string]uint64 {
	out := make(map[string]uint64, len(rs))
	for _, r := range rs {
		out[rome.KindName(r.Kind)] = r.Amount
	}
	return out
}

// denomOf is the token kind k settles in on this chain.
func (n *Node) denomOf(k uint8) string {
	if m := n.chain.market; m != nil {
		return m.KindDenom(k)
	}
	return rome.KindDenom(k)
}

func (n *Node) priceMap(rs []ledger.ResourceAmount) map[string]string {
	out := make(map[string]string, len(rs))
	for _, r := range rs {
		out[rome.KindName(r.Kind)] = strconv.FormatUint(r.Amount, 10) + n.denomOf(r.Kind)
	}
	return out
}

func apiCoins(cs ledger.Coins) []client.Coin {
	out := make([]client.Coin, 0, len(cs))
	for _, c := range cs {
		out = append(out, client.Coin{Denom: c.Denom, Amount: strconv.FormatUint(c.Amount, 10)})
	}
	return out
}

// FormatMicroDegrees renders micro-degrees as a decimal ("48.13").
func formatMicro(v int32) string {
	sign := ""
	x := int64(v)
	if x < 0 {
		sign, x = "-", -x
	}
	s := fmt.Sprintf("%s%d.%06d", sign, x/1_000_000, x%1_000_000)
	for s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	if s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s
}

func place(has bool, lat, lon int32) string {
	if !has {
		return ""
	}
	return formatMicro(lat) + "," + formatMicro(lon)
}

func (n *Node) apiOffer(o *rome.Offer) client.RomeOffer {
	out := client.RomeOffer{ID: o.ID, Owner: o.Owner.String(), Status: rome.StatusName(o.Status), Capacity: resMap(o.Capacity),
		Leased: resMap(o.Leased), Price: n.priceMap(o.Price), Region: o.Region, At: place(o.HasLocation, o.Lat, o.Lon), Attrs: o.Attrs,
		Reliability: o.Reliability, FromEpoch: o.FromEpoch, UntilEpoch: o.UntilEpoch, Height: o.Height,
		Bond: apiCoins(o.Bond), Slashed: apiCoins(o.Slashed), OpenJobs: o.OpenJobs}
	if !o.Node.IsZero() {
		out.Node = o.Node.String()
	}
	return out
}

func (n *Node) apiRequest(r *rome.Request) client.RomeRequest {
	out := client.RomeRequest{ID: r.ID, Owner: r.Owner.String(), Status: rome.StatusName(r.Status), Demand: resMap(r.Demand),
		Remaining: resMap(r.Remaining), MaxPrice: n.priceMap(r.MaxPrice), Epochs: r.Epochs, Region: r.Region,
		Near: place(r.HasLocation, r.Lat, r.Lon), WithinKm: r.WithinKm, Attrs: r.Attrs, MinReliability: r.MinReliability, Bundle: r.Bundle,
		Escrow: apiCoins(r.Escrow), Credit: apiCoins(r.Credit), Spent: apiCoins(r.Spent), Refunded: apiCoins(r.Refunded),
		Epoch: r.Epoch, LiveLeases: r.LiveLeases, Height: r.Height,
		Replicas: r.Replicas, OpenReplicas: r.Open, EndEpoch: r.EndEpoch, Repairs: r.Repairs, Pins: r.Pins, PinnedBytes: r.PinnedBytes}
	if r.Spread == ledger.SpreadRegion {
		out.Spread = "region"
	}
	for k := uint8(1); k <= ledger.MaxResourceKind; k++ {
		if r.Metered(k) {
			out.MeterKinds = append(out.MeterKinds, rome.KindName(k))
		}
	}
	return out
}

func (n *Node) apiLease(l *rome.Lease) client.RomeLease {
	return client.RomeLease{ID: l.ID, RequestID: l.RequestID, OfferID: l.OfferID, Provider: l.Provider.String(), Consumer: l.Consumer.String(),
		Amounts: resMap(l.Amounts), Prices: n.priceMap(l.Prices), StartEpoch: l.Start, EndEpoch: l.End, Status: rome.StatusName(l.Status),
		Paid: apiCoins(l.Paid), Disputes: l.Disputes, EndedEarly: l.EndedEarly, SettledToEpoch: l.SettledTo, NextSettleEpoch: l.NextSettle}
}

func (n *Node) apiEpoch(e *rome.EpochRecord) client.RomeEpoch {
	out := client.RomeEpoch{Epoch: e.Epoch, Height: e.Height, Policy: e.Policy, PolicyGas: e.PolicyGas, Rejected: e.Rejected, Interrupted: e.Interrupted,
		Offers: e.Offers, Requests: e.Requests, NewLeases: e.NewLeases, MatchedBps: e.MatchedBps, Matched: float64(e.MatchedBps) / 100,
		Kinds: []client.RomeKindStat{}, Paid: apiCoins(e.Paid), Refunded: apiCoins(e.Refunded), Rewards: apiCoins(e.Rewards),
		Disputes: e.Disputes, Certs: e.Certs, Events: apiEvents(e.Events)}
	for _, k := range e.Kinds {
		out.Kinds = append(out.Kinds, client.RomeKindStat{Kind: rome.KindName(k.Kind), Capacity: k.Capacity, Leased: k.Leased,
			Demand: k.Demand, Matched: k.Matched, UtilizationBps: k.UtilizationBps, Utilization: float64(k.UtilizationBps) / 100,
			ClearingPrice: strconv.FormatUint(k.ClearingPrice, 10) + n.denomOf(k.Kind)})
	}
	return out
}

// APICertificate converts a certificate to its API (and offline file) form.
func APICertificate(c *rome.Certificate) client.Certificate {
	f := c.File()
	s := f.Statement
	return client.Certificate{
		Statement: client.CertStatement{Version: s.Version, ChainID: s.ChainID, ID: s.ID, NodeID: s.NodeID, Kind: s.Kind, Amount: s.Amount,
			FromEpoch: s.FromEpoch, ToEpoch: s.ToEpoch, Issuer: s.Issuer, IssuedHeight: s.IssuedHeight, Measured: s.Measured},
		KindName: f.KindName, IssuerKey: f.IssuerKey, Signature: f.Signature, Revoked: f.Revoked, RevokeReason: f.RevokeReason,
		Redeemed: f.Redeemed, Status: f.Status,
	}
}

func apiProposal(p *rome.Proposal, votes []rome.Vote) client.GovProposal {
	out := client.GovProposal{ID: p.ID, Proposer: p.Proposer.String(), Title: p.Title, Param: p.Param, Value: p.Value, SubmitHt: p.Submit,
		EndHeight: p.End, Status: rome.ProposalStatusName(p.Status), Yes: p.Yes, No: p.No, Abstain: p.Abstain, TotalWeight: p.TotalWeight, Result: p.Result}
	for _, v := range votes {
		out.Votes = append(out.Votes, client.GovVote{Voter: v.Voter.String(), Option: rome.VoteName(v.Option), Weight: v.Weight, Height: v.Height})
	}
	return out
}

// listFilter reads owner, status and limit query parameters.
func listFilter(r *http.Request) (owner ledger.Address, hasOwner bool, status string, limit int, err error) {
	if s := r.URL.Query().Get("owner"); s != "" {
		if owner, err = ledger.ParseAddress(s); err != nil {
			return
		}
		hasOwner = true
	}
	return owner, hasOwner, r.URL.Query().Get("status"), listLimit(r, 1000), nil
}

func (n *Node) handleRomeOffers(w http.ResponseWriter, r *http.Request) {
	romeFiltered(n, w, r, (*rome.Market).Offers, func(x *rome.Offer) (uint8, []ledger.Address) { return x.Status, []ledger.Address{x.Owner} }, n.apiOffer)
}

func (n *Node) handleRomeOffer(w http.ResponseWriter, r *http.Request) {
	romeOne(n, w, r, "id", (*rome.Market).Offer, n.apiOffer)
}

func (n *Node) handleRomeRequests(w http.ResponseWriter, r *http.Request) {
	romeFiltered(n, w, r, (*rome.Market).Requests, func(x *rome.Request) (uint8, []ledger.Address) { return x.Status, []ledger.Address{x.Owner} }, n.apiRequest)
}

func (n *Node) handleRomeRequest(w http.ResponseWriter, r *http.Request) {
	romeOne(n, w, r, "id", (*rome.Market).Request, n.apiRequest)
}

func (n *Node) handleRomeLeases(w http.ResponseWriter, r *http.Request) {
	romeFiltered(n, w, r, (*rome.Market).Leases, func(x *rome.Lease) (uint8, []ledger.Address) {
		return x.Status, []ledger.Address{x.Provider, x.Consumer}
	}, n.apiLease)
}

func (n *Node) handleRomeLease(w http.ResponseWriter, r *http.Request) {
	romeOne(n, w, r, "id", (*rome.Market).Lease, n.apiLease)
}

func (n *Node) handleRomeMarket(w http.ResponseWriter, r *http.Request) {
	m, st, ok := n.romeState(w)
	if !ok {
		return
	}
	p, err := m.Params(st)
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	clock, err := m.Clock(st)
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	cnt, err := m.Counts(st)
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	out := client.RomeMarket{Height: n.store.Head().Height, Epoch: clock.Epoch, EpochEndHeight: clock.EndHeight, EpochBlocks: p.EpochBlocks,
		ActivePolicy: p.ActivePolicy, FallbackPolicy: p.FallbackPolicy, OpenOffers: cnt.OpenOffers, OpenRequests: cnt.OpenRequests,
		LiveLeases: cnt.LiveLeases, PendingCerts: cnt.PendingCerts, PendingJobs: cnt.PendingJobs, Challenges: cnt.Challenges, Utilization: map[string]float64{}, ClearingPrices: map[string]string{}}
	if out.ActivePolicy == "" {
		out.ActivePolicy = rome.Builtin
	}
	eps, err := m.Epochs(st, 1)
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	if len(eps) > 0 {
		e := n.apiEpoch(&eps[0])
		out.LastEpoch, out.Matched = &e, e.Matched
		for _, k := range e.Kinds {
			out.Utilization[k.Kind] = k.Utilization
			out.ClearingPrices[k.Kind] = k.ClearingPrice
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleRomeEpochs(w http.ResponseWriter, r *http.Request) {
	m, st, ok := n.romeState(w)
	if !ok {
		return
	}
	list, err := m.Epochs(st, listLimit(r, 50))
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	out := []client.RomeEpoch{}
	for i := range list {
		out = append(out, n.apiEpoch(&list[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleRomeEpoch(w http.ResponseWriter, r *http.Request) {
	romeOne(n, w, r, "epoch", (*rome.Market).Epoch, n.apiEpoch)
}

func (n *Node) handleRomePolicies(w http.ResponseWriter, r *http.Request) {
	m, st, ok := n.romeState(w)
	if !ok {
		return
	}
	p, err := m.Params(st)
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	list, err := m.Policies(st)
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	out := []client.RomePolicy{}
	for _, x := range list {
		out = append(out, client.RomePolicy{ID: x.ID.String(), Name: x.Name, Uploader: x.Uploader.String(), Size: x.Size, Height: x.Height, Active: x.ID.String() == p.ActivePolicy})
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleRomeParams(w http.ResponseWriter, r *http.Request) {
	m, st, ok := n.romeState(w)
	if !ok {
		return
	}
	p, err := m.Params(st)
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (n *Node) handleCerts(w http.ResponseWriter, r *http.Request) {
	m, st, ok := n.romeState(w)
	if !ok {
		return
	}
	node := r.URL.Query().Get("node_id")
	list, err := m.Certificates(st, listLimit(r, 1000), func(c *rome.Certificate) bool { return node == "" || c.Statement.NodeID == node })
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	out := []client.Certificate{}
	for i := range list {
		out = append(out, APICertificate(&list[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleCert(w http.ResponseWriter, r *http.Request) {
	romeOne(n, w, r, "id", (*rome.Market).Certificate, APICertificate)
}

func (n *Node) handleProposals(w http.ResponseWriter, r *http.Request) {
	m, st, ok := n.romeState(w)
	if !ok {
		return
	}
	list, err := m.Proposals(st, listLimit(r, 100))
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	out := []client.GovProposal{}
	for i := range list {
		if err := m.LiveTally(st, &list[i]); err != nil {
			writeErr(w, romeStatus(err), err)
			return
		}
		out = append(out, apiProposal(&list[i], nil))
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleProposal(w http.ResponseWriter, r *http.Request) {
	m, st, ok := n.romeState(w)
	if !ok {
		return
	}
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	p, err := m.Proposal(st, id)
	if err != nil {
		writeErr(w, romeStatus(err), fmt.Errorf("kernel: proposal %d: %w", id, err))
		return
	}
	votes, err := m.Votes(st, id)
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	if err := m.LiveTally(st, p); err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, apiProposal(p, votes))
}

// romeOne answers GET .../{id} with one market record, converted for the API.
func romeOne[T, J any](n *Node, w http.ResponseWriter, r *http.Request, param string, get func(*rome.Market, *ledger.State, uint64) (*T, error), conv func(*T) J) {
	m, st, ok := n.romeState(w)
	if !ok {
		return
	}
	id, ok := pathID(w, r, param)
	if !ok {
		return
	}
	x, err := get(m, st, id)
	if err != nil {
		writeErr(w, romeStatus(err), fmt.Errorf("kernel: %s %d: %w", param, id, err))
		return
	}
	writeJSON(w, http.StatusOK, conv(x))
}

// romeList answers a list of market records, converted for the API.
func romeList[T, J any](w http.ResponseWriter, list []T, err error, conv func(*T) J) {
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	out := make([]J, 0, len(list))
	for i := range list {
		out = append(out, conv(&list[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

// romeFiltered answers a market listing filtered by ?owner= (any of the
// record's parties) and ?status=, with ?limit=.
func romeFiltered[T, J any](n *Node, w http.ResponseWriter, r *http.Request,
	list func(*rome.Market, *ledger.State, int, func(*T) bool) ([]T, error),
	fields func(*T) (status uint8, parties []ledger.Address), conv func(*T) J) {
	m, st, ok := n.romeState(w)
	if !ok {
		return
	}
	owner, hasOwner, status, limit, err := listFilter(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	out, err := list(m, st, limit, func(x *T) bool {
		s, parties := fields(x)
		if status != "" && status != "all" && rome.StatusName(s) != status {
			return false
		}
		return !hasOwner || slices.Contains(parties, owner)
	})
	romeList(w, out, err, conv)
}
