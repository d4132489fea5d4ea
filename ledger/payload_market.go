package ledger

// Payloads of the ROME resource market (kinds 32–63) and governance (64–79).
// Their rules live in package rome; this file only makes them decodable.

// newMarketPayload returns an empty market or governance payload of kind k,
// or nil.
func newMarketPayload(k PayloadKind) Payload { return nil }

// marketKindName names market and governance kinds ("" if unknown).
func marketKindName(k PayloadKind) string { return "" }
