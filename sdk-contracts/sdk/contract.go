package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/sos-kernel/sos/sdk-contracts/sdk/internal/hostabi"
)

// HandlerFunc handles one message. The result is JSON-encoded into the call's
// result ([]byte and json.RawMessage are passed through as they are; nil
// means an empty result). A non-nil error becomes the receipt error and
// reverts the call's state changes.
type HandlerFunc func(ctx *Ctx, msg json.RawMessage) (any, error)

// Handlers maps message names to handlers: the message {"increment":{}}
// runs Handlers["increment"] with the message {}.
type Handlers map[string]HandlerFunc

// Handler adapts a typed handler: the message is decoded into M (unknown
// fields are rejected, so a typo in a field name is an error rather than a
// silent zero) before f runs. An empty message decodes as the zero M.
//
// The handler also tells Contract.Schema its message type M, so the JSON
// Schema of a contract's messages comes from the Go types it declares.
func Handler[M any](f func(ctx *Ctx, msg M) (any, error)) HandlerFunc {
	return func(ctx *Ctx, raw json.RawMessage) (any, error) {
		if ctx.describe != nil {
			*ctx.describe = reflect.TypeFor[M]()
			return nil, nil
		}
		var m M
		if err := decodeStrict(raw, &m); err != nil {
			return nil, err
		}
		return f(ctx, m)
	}
}

// Contract is a contract's entry points. Instantiate and Migrate receive the
// whole message; Execute and Query dispatch on the message's single top-level
// key. A nil field means the contract does not support that entry point.
//
// Name and Version, when Name is set, are recorded under ContractInfoKey
// after every successful instantiate and migrate (cw2-style), so the node
// can refuse a migration to code of a different contract. Use a stable name
// (like "counter" or "acme-token"), and a semantic version.
type Contract struct {
	Name        string
	Version     string
	Instantiate HandlerFunc
	Execute     Handlers
	Query       Handlers
	Migrate     HandlerFunc
}

// Entry names an entry point of the ABI.
type Entry int

// The entry points, as exported by a contract module.
const (
	EntryInstantiate Entry = iota + 1
	EntryExecute
	EntryQuery
	EntryMigrate
)

func (e Entry) String() string {
	switch e {
	case EntryInstantiate:
		return "instantiate"
	case EntryExecute:
		return "execute"
	case EntryQuery:
		return "query"
	case EntryMigrate:
		return "migrate"
	}
	return fmt.Sprintf("Entry(%d)", int(e))
}

// Instantiate runs c's instantiate entry point against the node. Call it from
// the contract's //go:wasmexport instantiate function; see the package doc.
func Instantiate(c Contract) int32 { return c.Serve(EntryInstantiate, defaultHost()) }

// Execute runs c's execute entry point against the node.
func Execute(c Contract) int32 { return c.Serve(EntryExecute, defaultHost()) }

// Query runs c's query entry point against the node.
func Query(c Contract) int32 { return c.Serve(EntryQuery, defaultHost()) }

// Migrate runs c's migrate entry point against the node.
func Migrate(c Contract) int32 { return c.Serve(EntryMigrate, defaultHost()) }

// Serve runs entry point e of c against host h and returns the ABI status:
// 0 when the handler succeeded (its result set with set_result), 1 when it
// returned an error (the error text set as the result). Panics are not
// recovered: in the VM a panic traps and reverts the call.
//
// Contracts call Instantiate, Execute, Query and Migrate, which supply the
// node's host; the test harness (package sdktest) calls Serve with its own.
func (c Contract) Serve(e Entry, h hostabi.Host) int32 {
	ctx := &Ctx{host: h, entry: e}
	res, err := c.dispatch(ctx, h.Input())
	if err == nil && c.Name != "" && (e == EntryInstantiate || e == EntryMigrate) {
		err = SetContractInfo(ctx, c.Name, c.Version)
	}
	if err == nil {
		var b []byte
		if b, err = encodeResult(res); err == nil {
			if b != nil {
				h.SetResult(b)
			}
			return 0
		}
	}
	h.Fail(err)
	return 1
}

func (c Contract) dispatch(ctx *Ctx, input []byte) (any, error) {
	switch ctx.entry {
	case EntryInstantiate:
		return runWhole(ctx, c.Instantiate, input)
	case EntryMigrate:
		return runWhole(ctx, c.Migrate, input)
	case EntryExecute:
		return runNamed(ctx, c.Execute, input)
	case EntryQuery:
		return runNamed(ctx, c.Query, input)
	}
	return nil, fmt.Errorf("%w: %v", ErrNoEntryPoint, ctx.entry)
}

func runWhole(ctx *Ctx, f HandlerFunc, input []byte) (any, error) {
	if f == nil {
		return nil, fmt.Errorf("%w: %v", ErrNoEntryPoint, ctx.entry)
	}
	return f(ctx, input)
}

func runNamed(ctx *Ctx, hs Handlers, input []byte) (any, error) {
	if hs == nil {
		return nil, fmt.Errorf("%w: %v", ErrNoEntryPoint, ctx.entry)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(input, &m); err != nil || len(m) != 1 {
		return nil, fmt.Errorf(`%w: want one JSON object with one key naming the %v message, like {"name":{...}}`, ErrInvalidMessage, ctx.entry)
	}
	for name, body := range m {
		if h := hs[name]; h != nil {
			return h(ctx, body)
		}
		names := make([]string, 0, len(hs))
		for n := range hs {
			names = append(names, n)
		}
		slices.Sort(names)
		return nil, fmt.Errorf("%w: %v %q (want one of %s)", ErrUnknownMessage, ctx.entry, name, strings.Join(names, ", "))
	}
	panic("unreachable")
}

func encodeResult(res any) ([]byte, error) {
	switch r := res.(type) {
	case nil:
		return nil, nil
	case []byte:
		return r, nil
	case json.RawMessage:
		return r, nil
	}
	b, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("sdk: encode result: %w", err)
	}
	return b, nil
}

// encodeMessage turns a message for another contract into JSON; []byte,
// json.RawMessage and string are taken as JSON text already.
func encodeMessage(msg any) ([]byte, error) {
	switch m := msg.(type) {
	case []byte:
		return m, nil
	case json.RawMessage:
		return m, nil
	case string:
		return []byte(m), nil
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("sdk: encode message: %w", err)
	}
	return b, nil
}

func decodeStrict(raw []byte, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: data after the message", ErrInvalidMessage)
	}
	return nil
}
