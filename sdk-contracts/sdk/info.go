package sdk

import (
	"encoding/json"
	"fmt"
)

// ContractInfoKey is the storage key under which a contract records its name
// and version (the cw2 convention of CosmWasm): the JSON of ContractInfo. The
// node reads it when an instance migrates and refuses new code that records
// a different contract name unless the migration is forced (`sos contract
// migrate --force`): code for another contract would misread the state.
const ContractInfoKey = "contract_info"

// ContractInfo is what ContractInfoKey holds.
type ContractInfo struct {
	Contract string `json:"contract"`
	Version  string `json:"version"`
}

// ReadContractInfo returns the name and version recorded by the contract at
// ctx.Self (ok == false when it recorded none). In a migrate handler it is
// still the previous code's record — the place to refuse a downgrade or to
// convert state written by an older version; Contract.Serve writes the new
// record only after the migrate handler succeeded.
func ReadContractInfo(ctx *Ctx) (info ContractInfo, ok bool, err error) {
	raw, ok := ctx.host.StorageGet([]byte(ContractInfoKey))
	if !ok {
		return ContractInfo{}, false, nil
	}
	if err := json.Unmarshal(raw, &info); err != nil {
		return ContractInfo{}, false, fmt.Errorf("sdk: stored %s: %w", ContractInfoKey, err)
	}
	return info, true, nil
}

// SetContractInfo records name and version under ContractInfoKey. Contracts
// that set Contract.Name need not call it: Serve records Name and Version
// after every successful instantiate and migrate.
func SetContractInfo(ctx *Ctx, name, version string) error {
	if name == "" {
		return fmt.Errorf("sdk: contract info: empty contract name")
	}
	b, err := json.Marshal(ContractInfo{Contract: name, Version: version})
	if err != nil {
		return fmt.Errorf("sdk: encode %s: %w", ContractInfoKey, err)
	}
	ctx.host.StorageSet([]byte(ContractInfoKey), b)
	return nil
}
