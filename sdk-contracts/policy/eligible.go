package policy

// cosMicro[d] is round(cos(d degrees) * 1e6), the ABI's COS table.
var cosMicro = [91]int64{
	1000000, 999848, 999391, 998630, 997564, 996195, 994522, 992546, 990268, 987688,
	984808, 981627, 978148, 974370, 970296, 965926, 961262, 956305, 951057, 945519,
	939693, 933580, 927184, 920505, 913545, 906308, 898794, 891007, 882948, 874620,
	866025, 857167, 848048, 838671, 829038, 819152, 809017, 798636, 788011, 777146,
	766044, 754710, 743145, 731354, 719340, 707107, 694658, 681998, 669131, 656059,
	642788, 629320, 615661, 601815, 587785, 573576, 559193, 544639, 529919, 515038,
	500000, 484810, 469472, 453990, 438371, 422618, 406737, 390731, 374607, 358368,
	342020, 325568, 309017, 292372, 275637, 258819, 241922, 224951, 207912, 190809,
	173648, 156434, 139173, 121869, 104528, 87156, 69756, 52336, 34899, 17452, 0,
}

// Cos returns the ABI's COS[d] = round(cos(d°)·1e6) for d clamped to
// [0, 90].
func Cos(d int) int64 { return cosMicro[max(0, min(90, d))] }

// maxRadius is the largest radius, in metres, whose square fits an int64.
// Any two points (even with out-of-range i32 coordinates) are less than
// 7e8 m apart under the ABI's formula, so a larger radius always holds.
const maxRadius = 3_037_000_499

// Distance2 returns dx² + dy² in square metres between an offer's and a
// request's coordinates, computed exactly as the ABI specifies (int64,
// truncating division, COS table at the mean latitude).
func Distance2(latO, lonO, latR, lonR int32) int64 {
	dy := (int64(latO) - int64(latR)) * 111320 / 1e6
	mean := int64(latO) + int64(latR)
	if mean < 0 {
		mean = -mean
	}
	q := cosMicro[min(90, mean/2/1e6)]
	dx := (int64(lonO) - int64(lonR)) * 111320 / 1e6 * q / 1e6
	return dx*dx + dy*dy
}

// Near reports whether the offer is within the request's distance limit
// (always true when WithinKm is 0).
func Near(o *Offer, r *Request) bool {
	if r.WithinKm == 0 {
		return true
	}
	lim := int64(r.WithinKm) * 1000
	if lim > maxRadius {
		return true
	}
	return Distance2(o.Lat, o.Lon, r.Lat, r.Lon) <= lim*lim
}

// Compatible reports whether the offer meets the request's region,
// attribute, reliability and distance constraints. It ignores prices.
func Compatible(o *Offer, r *Request) bool {
	return (r.Region == 0 || r.Region == o.Region) &&
		o.Attrs&r.Attrs == r.Attrs &&
		o.Reliability >= r.MinReliability &&
		Near(o, r)
}

// PriceOK reports whether the offer's price is at most the request's
// maximum on every one of the first nkinds kinds with demand.
func PriceOK(o *Offer, r *Request, nkinds int) bool {
	for k := range nkinds {
		if r.Demand[k] > 0 && o.Price[k] > r.MaxPrice[k] {
			return false
		}
	}
	return true
}

// Eligible reports whether the request may be served by the offer: every
// constraint of Compatible and PriceOK on the first nkinds kinds. Policies
// treat a pair as usable only when it is eligible on all kinds with demand,
// even for a divisible request served on one kind, so their output passes
// both a per-kind and a per-pair reading of the price rule.
func Eligible(o *Offer, r *Request, nkinds int) bool {
	return PriceOK(o, r, nkinds) && Compatible(o, r)
}
