//go:build !wasip1

package sdk

import (
	"os"

	"github.com/sos-kernel/sos/sdk-contracts/sdk/internal/bech32"
	"github.com/sos-kernel/sos/sdk-contracts/sdk/internal/hostabi"
)

// defaultHost has no node to talk to outside the VM: natively, contracts run
// through package sdktest, which calls Contract.Serve with its own host.
func defaultHost() hostabi.Host {
	panic("sdk: entry points run against the node only under GOOS=wasip1; test contracts natively with package sdktest")
}

func addrToString(a Address) string { return bech32.Encode(AddressPrefix, a[:]) }

func addrFromString(s string) (Address, bool) {
	hrp, data, err := bech32.Decode(s)
	if err != nil || hrp != AddressPrefix || len(data) != len(Address{}) {
		return Address{}, false
	}
	return Address(data), true
}

// Main is a contract's main function. Natively, `go run . schema` prints the
// JSON Schema of c's messages (see Schema; `sos contract schema` runs it).
// Under GOOS=wasip1 main is never called — a contract is a reactor whose
// exports the node calls — and Main does nothing.
func Main(c Contract) { os.Exit(RunMain(c, os.Args[1:], os.Stdout, os.Stderr)) }
