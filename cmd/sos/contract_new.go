package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
)

// sdkModule is the module path of the contract SDK (sdk-contracts/sdk).
const sdkModule = "github.com/sos-kernel/sos/sdk-contracts/sdk"

var contractNameRe = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

func newContractNewCmd() *cobra.Command {
	var dir, sdkDir, module string
	cmd := &cobra.Command{
		Use:   "new NAME",
		Short: "Scaffold a contract module: go.mod, the contract, a test on the SDK harness, a Makefile",
		Long: "Writes a new Go module for a contract named NAME into DIR (default ./NAME): go.mod requiring the SDK\n" +
			"(with a replace to a local checkout of the sos repository until the SDK is published), the\n" +
			"contract (NAME.go, exports_wasip1.go), a test that runs it on the in-memory chain of package\n" +
			"sdktest, and a Makefile: `make test`, `make build` (NAME.wasm and NAME.schema.json), `make upload`.\n\n" +
			"--sdk is the SDK's directory (sdk-contracts/sdk in the sos repository); by default it is looked\n" +
			"for above the current directory and above the sos executable.",
		Example: "  sos contract new hello && cd hello && make test build",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !contractNameRe.MatchString(name) {
				return fmt.Errorf("contract name %q: use lower-case letters, digits, - and _, starting with a letter", name)
			}
			if dir == "" {
				dir = name
			}
			if module == "" {
				module = name
			}
			sdk, err := findSDK(sdkDir)
			if err != nil {
				return err
			}
			if err := scaffoldContract(dir, name, module, sdk); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %s (module %s, SDK %s)\nnext: cd %s && make test build\n", dir, module, sdk, dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory to create (default ./NAME)")
	cmd.Flags().StringVar(&sdkDir, "sdk", "", "the SDK's directory, sdk-contracts/sdk of a sos checkout (default: searched)")
	cmd.Flags().StringVar(&module, "module", "", "Go module path of the new contract (default NAME)")
	return cmd
}

// findSDK returns the absolute directory of the SDK module: dir when given
// (checked), else the first sdk-contracts/sdk above the working directory or
// above the sos executable.
func findSDK(dir string) (string, error) {
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", err
		}
		if !isSDK(abs) {
			return "", fmt.Errorf("--sdk %s: no go.mod of module %s there (it is sdk-contracts/sdk in the sos repository)", dir, sdkModule)
		}
		return abs, nil
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			starts = append(starts, filepath.Dir(exe))
		}
	}
	for _, d := range starts {
		for {
			if c := filepath.Join(d, "sdk-contracts", "sdk"); isSDK(c) {
				return c, nil
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	return "", errors.New("the contract SDK is not published yet and no sos checkout was found above this directory or the sos executable: pass --sdk PATH/TO/sos/sdk-contracts/sdk")
}

func isSDK(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if line := strings.TrimSpace(s.Text()); strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module ")) == sdkModule
		}
	}
	return false
}

// scaffoldContract writes the files of a new contract module into dir,
// which must not exist or be empty.
func scaffoldContract(dir, name, module, sdk string) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s exists and is not empty", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data := struct{ Name, Module, SDK, SDKModule, File string }{name, module, sdk, sdkModule, strings.ReplaceAll(name, "-", "_")}
	files := []struct{ path, text string }{
		{"go.mod", scaffoldGoMod},
		{data.File + ".go", scaffoldContractGo},
		{"exports_wasip1.go", scaffoldExports},
		{data.File + "_test.go", scaffoldTest},
		{"Makefile", scaffoldMakefile},
		{".gitignore", "*.wasm\n*.schema.json\n"},
	}
	for _, f := range files {
		t, err := template.New(f.path).Delims("[[", "]]").Parse(f.text)
		if err != nil {
			return fmt.Errorf("scaffold %s: %w", f.path, err)
		}
		var b strings.Builder
		if err := t.Execute(&b, data); err != nil {
			return fmt.Errorf("scaffold %s: %w", f.path, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.path), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

const scaffoldGoMod = `module [[.Module]]

go 1.24

require [[.SDKModule]] v0.0.0

// The SDK is not published yet: this replace points at sdk-contracts/sdk of
// a sos checkout. Once it is published, drop the replace and run
// go get [[.SDKModule]]@latest.
replace [[.SDKModule]] => [[.SDK]]
`

const scaffoldContractGo = `// Command [[.Name]] is an SOS contract: a greeting its owner sets, and a
// counter per account.
//
//	instantiate {"greeting":"hello"}           the sender becomes the owner
//	execute     {"set_greeting":{"greeting":S}} owner only
//	execute     {"increment":{}}               the sender's count + 1, returns {"count":N}
//	query       {"greeting":{}}                {"greeting":S}
//	query       {"count":{"address":A}}        {"count":N}
//	migrate     {}
//
// This file builds everywhere: natively, go test runs the contract on
// package sdktest and go run . schema prints its message schema; the Wasm
// exports are in exports_wasip1.go.
package main

import (
	"errors"
	"fmt"

	"[[.SDKModule]]"
)

// ErrUnauthorized reports a call only the owner may make.
var ErrUnauthorized = errors.New("[[.Name]]: unauthorized")

// Messages: sdk.Handler decodes each into its type (unknown fields are an
// error), and the schema comes from these types.
type (
	InstantiateMsg struct {
		Greeting string ` + "`json:\"greeting\" desc:\"what the greeting query answers\"`" + `
	}
	SetGreetingMsg struct {
		Greeting string ` + "`json:\"greeting\"`" + `
	}
	IncrementMsg struct{}
	GreetingMsg  struct{}
	CountMsg     struct {
		Address sdk.Address ` + "`json:\"address\"`" + `
	}
	MigrateMsg struct{}

	GreetingResponse struct {
		Greeting string ` + "`json:\"greeting\"`" + `
	}
	CountResponse struct {
		Count uint64 ` + "`json:\"count\"`" + `
	}
)

// State.
var (
	owner    = sdk.NewItem[sdk.Address]("owner")
	greeting = sdk.NewItem[string]("greeting")
	counts   = sdk.NewMap[sdk.Address, uint64]("count")
)

var contract = sdk.Contract{
	// Name and Version are recorded in the contract's state (contract_info);
	// the node refuses to migrate an instance to code of another name
	// unless forced.
	Name:        "[[.Name]]",
	Version:     "0.1.0",
	Instantiate: sdk.Handler(instantiate),
	Execute: sdk.Handlers{
		"set_greeting": sdk.Handler(setGreeting),
		"increment":    sdk.Handler(increment),
	},
	Query: sdk.Handlers{
		"greeting": sdk.Handler(getGreeting),
		"count":    sdk.Handler(getCount),
	},
	Migrate: sdk.Handler(migrate),
}

// main is never called on the node (a contract is a library whose exports
// the node calls). Natively, go run . schema prints the message schema.
func main() { sdk.Main(contract) }

func instantiate(ctx *sdk.Ctx, msg InstantiateMsg) (any, error) {
	if err := owner.Set(ctx, ctx.Sender()); err != nil {
		return nil, err
	}
	return nil, greeting.Set(ctx, msg.Greeting)
}

func setGreeting(ctx *sdk.Ctx, msg SetGreetingMsg) (any, error) {
	o, err := owner.Get(ctx)
	if err != nil {
		return nil, err
	}
	if ctx.Sender() != o {
		return nil, fmt.Errorf("%w: only the owner %v may set the greeting", ErrUnauthorized, o)
	}
	ctx.Emit("greeting", "greeting", msg.Greeting)
	return nil, greeting.Set(ctx, msg.Greeting)
}

func increment(ctx *sdk.Ctx, _ IncrementMsg) (any, error) {
	n, err := counts.Update(ctx, ctx.Sender(), func(n uint64, _ bool) (uint64, error) { return n + 1, nil })
	return CountResponse{Count: n}, err
}

func getGreeting(ctx *sdk.Ctx, _ GreetingMsg) (any, error) {
	g, err := greeting.Get(ctx)
	return GreetingResponse{Greeting: g}, err
}

func getCount(ctx *sdk.Ctx, msg CountMsg) (any, error) {
	n, _, err := counts.Lookup(ctx, msg.Address)
	return CountResponse{Count: n}, err
}

func migrate(ctx *sdk.Ctx, _ MigrateMsg) (any, error) {
	// The previous code's name and version, to convert older state here.
	if _, _, err := sdk.ReadContractInfo(ctx); err != nil {
		return nil, err
	}
	return nil, nil
}
`

const scaffoldExports = `//go:build wasip1

package main

import "[[.SDKModule]]"

// The Wasm entry points. Go allows //go:wasmexport only in package main, so
// every contract carries these lines; sdk does the rest.

//go:wasmexport instantiate
func exportInstantiate() int32 { return sdk.Instantiate(contract) }

//go:wasmexport execute
func exportExecute() int32 { return sdk.Execute(contract) }

//go:wasmexport query
func exportQuery() int32 { return sdk.Query(contract) }

//go:wasmexport migrate
func exportMigrate() int32 { return sdk.Migrate(contract) }
`

const scaffoldTest = `package main

import (
	"errors"
	"testing"

	"[[.SDKModule]]"
	"[[.SDKModule]]/sdktest"
)

// TestContract runs the contract on sdktest's in-memory chain: every call is
// a transaction, and a failed one reverts.
func TestContract(t *testing.T) {
	app := sdktest.New(sdktest.Config{})
	alice, bob := app.Account("alice"), app.Account("bob")
	addr, err := app.Instantiate(contract, alice, InstantiateMsg{Greeting: "hello"}, nil)
	if err != nil {
		t.Fatal(err)
	}

	var g GreetingResponse
	if err := app.Query(addr, map[string]any{"greeting": GreetingMsg{}}, &g); err != nil || g.Greeting != "hello" {
		t.Fatalf("greeting %+v %v", g, err)
	}
	// Only the owner sets the greeting; the failed call changes nothing.
	_, err = app.Execute(addr, bob, map[string]any{"set_greeting": SetGreetingMsg{Greeting: "hi"}}, nil)
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("set_greeting by bob: %v, want ErrUnauthorized", err)
	}
	if _, err := app.Execute(addr, alice, ` + "`" + `{"set_greeting":{"greeting":"hi"}}` + "`" + `, nil); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		if _, err := app.Execute(addr, bob, ` + "`" + `{"increment":{}}` + "`" + `, nil); err != nil {
			t.Fatal(err)
		}
	}
	var c CountResponse
	if err := app.Query(addr, map[string]any{"count": CountMsg{Address: bob}}, &c); err != nil || c.Count != 2 {
		t.Fatalf("bob's count %+v %v", c, err)
	}

	// A typo in a field name is an error, not a silent zero.
	if _, err := app.Execute(addr, alice, ` + "`" + `{"set_greeting":{"greting":"x"}}` + "`" + `, nil); !errors.Is(err, sdk.ErrInvalidMessage) {
		t.Fatalf("misspelt field: %v", err)
	}
}

// TestMigrate: the contract records its name, so code of another contract
// cannot take over its state by accident.
func TestMigrate(t *testing.T) {
	app := sdktest.New(sdktest.Config{})
	alice := app.Account("alice")
	addr, err := app.Instantiate(contract, alice, InstantiateMsg{Greeting: "hello"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.Migrate(addr, alice, contract, MigrateMsg{}); err != nil {
		t.Fatal(err)
	}
	other := contract
	other.Name = "another-contract"
	if _, err := app.Migrate(addr, alice, other, MigrateMsg{}); !errors.Is(err, sdktest.ErrContractNameChanged) {
		t.Fatalf("migrate to another contract: %v", err)
	}
}

// TestSchema: every handler is in the message schema.
func TestSchema(t *testing.T) {
	s, err := contract.Schema()
	if err != nil {
		t.Fatal(err)
	}
	if s.Contract != "[[.Name]]" || s.Instantiate == nil || s.Execute == nil || s.Query == nil || s.Migrate == nil {
		t.Fatalf("schema %+v", s)
	}
}
`

const scaffoldMakefile = `# [[.Name]]: an SOS contract.
#   make test     run the tests (natively, on the SDK's in-memory chain)
#   make build    [[.Name]].wasm and its message schema [[.Name]].schema.json
#   make upload FROM=alice   upload both to the node (sos on PATH; NODE/HOME flags via SOSFLAGS)
GO       ?= go
SOS      ?= sos
FROM     ?= alice
SOSFLAGS ?=
SRC      := $(wildcard *.go) go.mod

.PHONY: all test build upload clean
all: test build

test:
	$(GO) test ./...

build: [[.Name]].wasm [[.Name]].schema.json

# -trimpath keeps builds reproducible (same source, same code id); -s drops
# the symbol table.
[[.Name]].wasm: $(SRC)
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -ldflags=-s -o $@ .

[[.Name]].schema.json: $(SRC)
	GOOS= GOARCH= $(GO) run . schema > $@.tmp && mv $@.tmp $@

upload: build
	$(SOS) contract upload [[.Name]].wasm --schema [[.Name]].schema.json --from $(FROM) $(SOSFLAGS)

clean:
	rm -f [[.Name]].wasm [[.Name]].schema.json
`
