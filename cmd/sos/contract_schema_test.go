package main

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/contracts"
)

// counterSchema is the counter example's schema as the SDK prints it
// (trimmed to what these tests need, same shape).
const counterSchema = `{
  "schema_format": "sos-contract-schema/v1",
  "contract_name": "sos-example/counter",
  "contract_version": "1.0.0",
  "instantiate": {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": "#/$defs/InstantiateMsg",
    "$defs": {"InstantiateMsg": {"type": "object", "additionalProperties": false,
      "properties": {"count": {"type": "integer", "minimum": 0}}, "required": ["count"]}}},
  "execute": {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "ExecuteMsg",
    "$defs": {"ResetMsg": {"type": "object", "additionalProperties": false,
      "properties": {"count": {"type": "integer", "minimum": 0}}, "required": ["count"]}},
    "oneOf": [
      {"title": "increment", "type": "object", "additionalProperties": false, "required": ["increment"],
       "properties": {"increment": {"type": "object", "additionalProperties": false, "properties": {}}}},
      {"title": "reset", "type": "object", "additionalProperties": false, "required": ["reset"],
       "properties": {"reset": {"$ref": "#/$defs/ResetMsg"}}}
    ]}
}`

func TestSchemaDocCheck(t *testing.T) {
	d, err := parseSchemaDoc([]byte(counterSchema))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		entry, msg, errHas string
	}{
		{"instantiate", `{"count":1}`, ""},
		{"instantiate", `{"count":-1}`, "/count"},
		{"instantiate", `{"count":"1"}`, "want integer"},
		{"instantiate", `{}`, "missing property 'count'"},
		{"instantiate", `{"count":1,"cuont":2}`, "cuont"},
		{"execute", `{"increment":{}}`, ""},
		{"execute", `{"reset":{"count":3}}`, ""},
		{"execute", `{"reset":{"count":"x"}}`, `execute message "reset" does not match`},
		{"execute", `{"incremnt":{}}`, `unknown execute message "incremnt"; this contract has: increment, reset`},
		{"execute", `{"increment":{},"reset":{"count":1}}`, "one JSON object with one key"},
		{"execute", `[1]`, "one JSON object with one key"},
		{"query", `{"get":{}}`, "declares no query entry point"},
	}
	for _, c := range cases {
		err := d.check(c.entry, []byte(c.msg))
		switch {
		case c.errHas == "" && err != nil:
			t.Errorf("%s %s: %v", c.entry, c.msg, err)
		case c.errHas != "" && (err == nil || !strings.Contains(err.Error(), c.errHas)):
			t.Errorf("%s %s: error %v, want one containing %q", c.entry, c.msg, err, c.errHas)
		}
	}
	hs := d.handlers("execute")
	if len(hs) != 2 || hs[0].Name != "increment" || hs[0].Fields != "{}" || hs[1].Name != "reset" || hs[1].Fields != "{count*: integer}" {
		t.Fatalf("handlers %+v", hs)
	}
}

func TestParseSchemaDocRefuses(t *testing.T) {
	for _, bad := range []string{
		`[]`,
		`{"schema_format":"other"}`,
		`{"schema_format":"sos-contract-schema/v1","execute":{"type":5}}`,                    // not JSON Schema
		`{"schema_format":"sos-contract-schema/v1","query":{"$ref":"http://example.com/x"}}`, // external reference: never loaded
	} {
		if _, err := parseSchemaDoc([]byte(bad)); err == nil {
			t.Errorf("parseSchemaDoc(%s) accepted it", bad)
		}
	}
}

// FuzzParseSchemaDoc: a schema served by a node is untrusted input; parsing
// and checking messages against it never panics.
func FuzzParseSchemaDoc(f *testing.F) {
	f.Add([]byte(counterSchema), []byte(`{"reset":{"count":1}}`))
	f.Add([]byte(`{"schema_format":"sos-contract-schema/v1","execute":{"oneOf":[{"required":[1]}]}}`), []byte(`{"a":1}`))
	f.Add([]byte(`{"schema_format":"sos-contract-schema/v1","execute":{"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, doc, msg []byte) {
		d, err := parseSchemaDoc(doc)
		if err != nil {
			return
		}
		for _, e := range schemaEntries {
			_ = d.check(e, msg)
			_ = d.handlers(e)
		}
	})
}

func TestReadMsg(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "m.json")
	if err := os.WriteFile(file, []byte("  {\"a\": 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := &cobra.Command{}
	cmd.SetIn(strings.NewReader(`{"from":"stdin"}`))
	for arg, want := range map[string]string{`{"x":2}`: `{"x":2}`, "@" + file: `{"a": 1}`, "-": `{"from":"stdin"}`} {
		got, err := readMsg(cmd, arg)
		if err != nil || string(got) != want {
			t.Errorf("readMsg(%q) = %q, %v; want %q", arg, got, err, want)
		}
	}
	for arg, errHas := range map[string]string{"{bad": "not valid JSON", "@" + filepath.Join(dir, "none.json"): "message file", "": "not valid JSON"} {
		if _, err := readMsg(cmd, arg); err == nil || !strings.Contains(err.Error(), errHas) {
			t.Errorf("readMsg(%q): %v, want an error containing %q", arg, err, errHas)
		}
	}
}

// sosIn is sos with stdin.
func sosIn(t *testing.T, stdin string, args ...string) (string, string) {
	t.Helper()
	saved := os.Stdin
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.WriteString(w, stdin); w.Close() }()
	os.Stdin = r
	defer func() { os.Stdin = saved; r.Close() }()
	return sos(t, args...)
}

// TestContractMessagesEndToEnd: the counter example's schema, generated by
// `sos contract schema` from its Go types, uploaded with its code and
// served by the node; messages from argv, a file and stdin are checked
// before anything is signed; `contract messages` lists the handlers.
func TestContractMessagesEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and uploads a contract")
	}
	home, _ := cliNode(t)
	dir := t.TempDir()
	wasm := filepath.Join(dir, "counter.wasm")
	build := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s", "-o", wasm, "../../sdk-contracts/examples/counter")
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build counter: %v\n%s", err, out)
	}
	schema := filepath.Join(dir, "counter.schema.json")
	must(t, "contract", "schema", "../../sdk-contracts/examples/counter", "--write", schema)

	var up contractResult
	if err := json.Unmarshal([]byte(must(t, "contract", "upload", wasm, "--schema", schema, "--from", "alice", "--home", home, "-o", "json")), &up); err != nil || up.CodeID == "" {
		t.Fatalf("upload: %+v %v", up, err)
	}
	if out := must(t, "contract", "codes", "--home", home); !strings.Contains(out, up.CodeID+" ") || !strings.Contains(out, " schema") {
		t.Fatalf("codes:\n%s", out)
	}

	// A wrong message is refused before anything is signed.
	_, msg := sos(t, "contract", "instantiate", up.CodeID, `{"count":"one"}`, "--label", "c", "--from", "alice", "--home", home)
	if !strings.Contains(msg, "instantiate message does not match the contract's schema") || !strings.Contains(msg, "/count") {
		t.Fatalf("bad instantiate message: %q", msg)
	}
	if out := must(t, "contract", "list", "--home", home); strings.TrimSpace(out) != "" {
		t.Fatalf("a refused message made an instance:\n%s", out)
	}
	init := filepath.Join(dir, "init.json")
	if err := os.WriteFile(init, []byte(`{"count": 5}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var inst contractResult
	if err := json.Unmarshal([]byte(must(t, "contract", "instantiate", up.CodeID, "@"+init, "--label", "c", "--admin", "alice", "--from", "alice", "--home", home, "-o", "json")), &inst); err != nil || inst.Address == "" {
		t.Fatalf("instantiate: %+v %v", inst, err)
	}

	if out := must(t, "contract", "info", inst.Address, "--home", home); !strings.Contains(out, "name sos-example/counter version 1.0.0\n") {
		t.Fatalf("info lacks the recorded name and version:\n%s", out)
	}

	_, msg = sos(t, "contract", "execute", inst.Address, `{"incremnt":{}}`, "--from", "alice", "--home", home)
	if !strings.Contains(msg, `unknown execute message "incremnt"; this contract has: increment, reset`) {
		t.Fatalf("unknown handler: %q", msg)
	}
	out, msg := sosIn(t, `{"increment":{}}`, "contract", "execute", inst.Address, "-", "--from", "alice", "--home", home)
	if msg != "" || !strings.Contains(out, `result: {"count":6}`) {
		t.Fatalf("execute from stdin: %q %q", out, msg)
	}
	if out := must(t, "contract", "query", inst.Address, `{"get":{}}`, "--home", home); strings.TrimSpace(out) != `{"count":6}` {
		t.Fatalf("query: %q", out)
	}
	_, msg = sos(t, "contract", "query", inst.Address, `{"get":{"x":1}}`, "--home", home)
	if !strings.Contains(msg, `query message "get" does not match`) {
		t.Fatalf("bad query: %q", msg)
	}
	// --no-validate sends it; the contract's own decoder refuses it.
	_, msg = sos(t, "contract", "execute", inst.Address, `{"reset":{"count":1,"x":2}}`, "--no-validate", "--from", "alice", "--home", home)
	if !strings.Contains(msg, "unknown field") {
		t.Fatalf("unvalidated bad message: %q", msg)
	}

	out = must(t, "contract", "messages", inst.Address, "--home", home)
	for _, want := range []string{"sos-example/counter 1.0.0", "instantiate: {count*: integer}", "execute:\n  increment            {}\n  reset                {count*: integer}", "query:\n  get ", "migrate: {}"} {
		if !strings.Contains(out, want) {
			t.Errorf("messages lacks %q:\n%s", want, out)
		}
	}
	var served map[string]any
	if err := json.Unmarshal([]byte(must(t, "contract", "messages", up.CodeID, "--home", home, "-o", "json")), &served); err != nil || served["schema_format"] != contracts.SchemaFormat {
		t.Fatalf("messages -o json: %v %v", served, err)
	}
}

// TestContractNewScaffoldBuilds: `sos contract new` writes a module that,
// with nothing but the local SDK (GOPROXY=off: no network), passes its own
// tests, builds to a Wasm contract and prints a schema the CLI accepts.
func TestContractNewScaffoldBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a contract module")
	}
	sdkDir, err := filepath.Abs("../../sdk-contracts/sdk")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "greeter")
	out := must(t, "contract", "new", "greeter", "--dir", dir, "--sdk", sdkDir)
	if !strings.Contains(out, "created "+dir) {
		t.Fatalf("contract new printed %q", out)
	}
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil || !strings.Contains(string(mod), "replace "+sdkModule+" => "+sdkDir) {
		t.Fatalf("go.mod:\n%s %v", mod, err)
	}
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	run := func(extra []string, name string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(append([]string{}, env...), extra...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return out
	}
	if _, err := exec.LookPath("make"); err == nil {
		run(nil, "make", "test", "build")
	} else {
		run(nil, "go", "test", "./...")
		run([]string{"GOOS=wasip1", "GOARCH=wasm"}, "go", "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s", "-o", "greeter.wasm", ".")
		if err := os.WriteFile(filepath.Join(dir, "greeter.schema.json"), run(nil, "go", "run", ".", "schema"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wasm, err := os.ReadFile(filepath.Join(dir, "greeter.wasm"))
	if err != nil || len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		t.Fatalf("greeter.wasm: %d bytes, %v", len(wasm), err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "greeter.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := parseSchemaDoc(raw)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range d.handlers("execute") {
		names = append(names, h.Name)
	}
	if d.Contract != "greeter" || strings.Join(names, ",") != "increment,set_greeting" {
		t.Fatalf("schema of %q, execute handlers %v", d.Contract, names)
	}
	if err := d.check("execute", []byte(`{"set_greeting":{"greeting":"hi"}}`)); err != nil {
		t.Fatal(err)
	}

	// Refusals: a name that is no module path, a directory in use, no SDK.
	if _, msg := sos(t, "contract", "new", "Bad Name", "--dir", filepath.Join(t.TempDir(), "x"), "--sdk", sdkDir); !strings.Contains(msg, "lower-case letters") {
		t.Errorf("bad name: %q", msg)
	}
	if _, msg := sos(t, "contract", "new", "greeter", "--dir", dir, "--sdk", sdkDir); !strings.Contains(msg, "not empty") {
		t.Errorf("existing directory: %q", msg)
	}
	if _, msg := sos(t, "contract", "new", "x", "--dir", filepath.Join(t.TempDir(), "x"), "--sdk", t.TempDir()); !strings.Contains(msg, "no go.mod of module "+sdkModule) {
		t.Errorf("wrong --sdk: %q", msg)
	}
}

// TestExampleSchemas: every example contract's schema, generated from its
// Go types, compiles as JSON Schema and lists the handlers it serves.
func TestExampleSchemas(t *testing.T) {
	if testing.Short() {
		t.Skip("go run of every example")
	}
	want := map[string]string{
		"counter":        "increment,reset",
		"token":          "",
		"escrow":         "",
		"offer-registry": "",
	}
	for name, handlers := range want {
		raw, err := generateSchema(t.Context(), "../../sdk-contracts/examples/"+name)
		if err != nil {
			t.Fatal(err)
		}
		d, err := parseSchemaDoc(raw)
		if err != nil {
			t.Fatal(err)
		}
		if d.Contract != "sos-example/"+name || len(d.handlers("execute")) == 0 || len(d.handlers("query")) == 0 {
			t.Errorf("%s: schema of %q with %d execute and %d query handlers", name, d.Contract, len(d.handlers("execute")), len(d.handlers("query")))
		}
		if handlers != "" {
			var names []string
			for _, h := range d.handlers("execute") {
				names = append(names, h.Name)
			}
			if got := strings.Join(names, ","); got != handlers {
				t.Errorf("%s: execute handlers %s, want %s", name, got, handlers)
			}
		}
	}
}
