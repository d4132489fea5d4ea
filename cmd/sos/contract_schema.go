package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/contracts"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
)

// Message schemas on the client side: reading a message from argv, a file
// or stdin; compiling the schema stored with a code (the document the SDK's
// `go run . schema` prints, see sdk.Schema); checking a message against it
// before a transaction is signed; and listing a contract's handlers.

// readMsg reads a contract message: "-" is stdin, "@FILE" a file, anything
// else the JSON text itself.
func readMsg(cmd *cobra.Command, arg string) ([]byte, error) {
	var b []byte
	var err error
	switch {
	case arg == "-":
		b, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), ledger.MaxContractMsgBytes+1))
		if err != nil {
			return nil, fmt.Errorf("message from stdin: %w", err)
		}
	case strings.HasPrefix(arg, "@"):
		if b, err = os.ReadFile(arg[1:]); err != nil {
			return nil, fmt.Errorf("message file: %w", err)
		}
	default:
		b = []byte(arg)
	}
	if len(b) > ledger.MaxContractMsgBytes {
		return nil, fmt.Errorf("message is over %d bytes", ledger.MaxContractMsgBytes)
	}
	b = bytes.TrimSpace(b)
	if !json.Valid(b) {
		if len(b) > 80 {
			b = append(b[:77:77], "..."...)
		}
		return nil, fmt.Errorf("message %q is not valid JSON (give JSON text, @FILE or - for stdin)", b)
	}
	return b, nil
}

// schemaDoc is a stored message schema.
type schemaDoc struct {
	Format   string
	Contract string
	Version  string
	parts    map[string]any // entry point → decoded JSON Schema
	raw      []byte
}

// The entry points a schema document may describe, in listing order.
var schemaEntries = []string{"instantiate", "execute", "query", "migrate"}

// parseSchemaDoc decodes a schema document and compiles each entry point's
// JSON Schema, so a document that is not valid JSON Schema is refused here
// (before an upload stores it) rather than when a message is checked.
func parseSchemaDoc(b []byte) (*schemaDoc, error) {
	var head struct {
		Format   string `json:"schema_format"`
		Contract string `json:"contract_name"`
		Version  string `json:"contract_version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("schema: not a JSON object: %w", err)
	}
	if head.Format != contracts.SchemaFormat {
		return nil, fmt.Errorf("schema: schema_format is %q, want %q (print a contract's schema with `sos contract schema DIR`)", head.Format, contracts.SchemaFormat)
	}
	all, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	obj, _ := all.(map[string]any)
	d := &schemaDoc{Format: head.Format, Contract: head.Contract, Version: head.Version, parts: map[string]any{}, raw: b}
	for _, e := range schemaEntries {
		if p, ok := obj[e]; ok {
			d.parts[e] = p
			if _, err := d.compile(e, ""); err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}

// compile compiles the schema of entry point e, or the subschema at JSON
// pointer ptr inside it. External references are not loaded: a stored
// schema is self-contained.
func (d *schemaDoc) compile(e, ptr string) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.UseLoader(jsonschema.SchemeURLLoader{})
	url := "sos:///" + e + ".json"
	if err := c.AddResource(url, d.parts[e]); err != nil {
		return nil, fmt.Errorf("schema of %s: %w", e, err)
	}
	s, err := c.Compile(url + "#" + ptr)
	if err != nil {
		return nil, fmt.Errorf("schema of %s: %w", e, err)
	}
	return s, nil
}

// handler is one message of an execute or query schema.
type handler struct {
	Name   string `json:"name"`
	Fields string `json:"fields"` // a one-line summary of the message body
	index  int    // its branch in oneOf
}

// handlers lists the messages of entry point e (execute or query), by name.
func (d *schemaDoc) handlers(e string) []handler {
	part, _ := d.parts[e].(map[string]any)
	branches, _ := part["oneOf"].([]any)
	var hs []handler
	for i, b := range branches {
		bm, _ := b.(map[string]any)
		req, _ := bm["required"].([]any)
		props, _ := bm["properties"].(map[string]any)
		if len(req) != 1 {
			continue
		}
		name, _ := req[0].(string)
		hs = append(hs, handler{Name: name, Fields: d.summary(part, props[name], 0), index: i})
	}
	slices.SortFunc(hs, func(a, b handler) int { return strings.Compare(a.Name, b.Name) })
	return hs
}

// summary renders schema s (inside the entry point schema root) in one
// line: {count*: integer, note: string}, a * marking required fields.
func (d *schemaDoc) summary(root map[string]any, s any, depth int) string {
	m, ok := s.(map[string]any)
	if !ok || len(m) == 0 {
		return "any"
	}
	if ref, ok := m["$ref"].(string); ok && depth < 4 {
		if name, ok := strings.CutPrefix(ref, "#/$defs/"); ok {
			defs, _ := root["$defs"].(map[string]any)
			return d.summary(root, defs[name], depth+1)
		}
		return ref
	}
	if any, ok := m["anyOf"].([]any); ok && len(any) > 0 {
		return d.summary(root, any[0], depth) + "?"
	}
	switch t, _ := m["type"].(string); t {
	case "object":
		props, _ := m["properties"].(map[string]any)
		if props == nil {
			return "object"
		}
		req := map[string]bool{}
		rs, _ := m["required"].([]any)
		for _, r := range rs {
			if s, ok := r.(string); ok {
				req[s] = true
			}
		}
		names := make([]string, 0, len(props))
		for n := range props {
			names = append(names, n)
		}
		slices.Sort(names)
		parts := make([]string, 0, len(names))
		for _, n := range names {
			star := ""
			if req[n] {
				star = "*"
			}
			if depth >= 3 {
				parts = append(parts, n+star)
				continue
			}
			parts = append(parts, n+star+": "+d.summary(root, props[n], depth+1))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case "array":
		return "[" + d.summary(root, m["items"], depth+1) + "]"
	case "":
		return "any"
	default:
		return t
	}
}

// check validates msg, a message for entry point e, against the schema.
// For execute and query it first names the handler (an unknown one is
// refused with the list of known ones), then checks the body against that
// handler's schema, so the error points into the body.
func (d *schemaDoc) check(e string, msg []byte) error {
	if _, ok := d.parts[e]; !ok {
		return fmt.Errorf("the contract's schema declares no %s entry point", e)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(msg))
	if err != nil {
		return fmt.Errorf("message: %w", err)
	}
	ptr := ""
	what := e + " message"
	if e == "execute" || e == "query" {
		hs := d.handlers(e)
		names := make([]string, len(hs))
		for i, h := range hs {
			names[i] = h.Name
		}
		obj, ok := v.(map[string]any)
		if !ok || len(obj) != 1 {
			return fmt.Errorf(`an %s message is one JSON object with one key naming the message, like {"%s":{...}}; this contract has: %s`, e, first(names), strings.Join(names, ", "))
		}
		for name, body := range obj {
			i := slices.IndexFunc(hs, func(h handler) bool { return h.Name == name })
			if i < 0 {
				return fmt.Errorf("unknown %s message %q; this contract has: %s", e, name, strings.Join(names, ", "))
			}
			ptr = fmt.Sprintf("/oneOf/%d/properties/%s", hs[i].index, jsonPointerEscape(name))
			what = fmt.Sprintf("%s message %q", e, name)
			v = body
		}
	}
	s, err := d.compile(e, ptr)
	if err != nil {
		return err
	}
	if err := s.Validate(v); err != nil {
		var verr *jsonschema.ValidationError
		text := err.Error()
		if errors.As(err, &verr) {
			// Drop the first line (which names our internal URL); the rest
			// says where in the message and what was wrong.
			if _, rest, ok := strings.Cut(text, "\n"); ok {
				text = rest
			}
		}
		return fmt.Errorf("the %s does not match the contract's schema (--no-validate sends it anyway):\n%s", what, text)
	}
	return nil
}

func first(s []string) string {
	if len(s) == 0 {
		return "name"
	}
	return s[0]
}

func jsonPointerEscape(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// codeSchema fetches and parses the schema stored with code id; nil (and
// no error) when the code has none.
func codeSchema(ctx context.Context, c *client.Client, id string) (*schemaDoc, error) {
	raw, err := c.CodeSchema(ctx, id)
	if errors.Is(err, client.ErrNotFound) {
		return nil, nil // no schema (or no such code: the transaction will say)
	}
	if err != nil {
		return nil, err
	}
	d, err := parseSchemaDoc(raw)
	if err != nil {
		return nil, fmt.Errorf("the schema stored with code %s: %w", id, err)
	}
	return d, nil
}

// validateFor checks msg for entry point e of code id (or of the code of
// the contract at addr when id is empty) when that code has a schema.
func validateFor(ctx context.Context, c *client.Client, id, addr, e string, msg []byte) error {
	if id == "" {
		ci, err := c.Contract(ctx, addr)
		if err != nil {
			return err
		}
		id = ci.CodeID
	}
	d, err := codeSchema(ctx, c, id)
	if err != nil || d == nil {
		return err
	}
	return d.check(e, msg)
}

// generateSchema runs `go run . schema` in the contract's directory (natively:
// GOOS and GOARCH are cleared) and checks what it printed.
func generateSchema(ctx context.Context, dir string) ([]byte, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory holding a contract's package main", dir)
	}
	cmd := exec.CommandContext(ctx, "go", "run", ".", "schema")
	cmd.Dir = abs
	cmd.Env = append(os.Environ(), "GOOS=", "GOARCH=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "usage: go run . schema") || msg == "" {
			msg += "\n(does the contract's main call sdk.Main(contract)?)"
		}
		return nil, fmt.Errorf("go run . schema in %s: %w\n%s", dir, err, msg)
	}
	if _, err := parseSchemaDoc(out); err != nil {
		return nil, fmt.Errorf("%s printed: %w", dir, err)
	}
	return out, nil
}

func newContractSchemaCmds(g *globals) []*cobra.Command {
	var write string
	schema := &cobra.Command{
		Use:   "schema [DIR]",
		Short: "Print the JSON Schema of a contract's messages, from its Go types (runs `go run . schema` in DIR)",
		Long: "Builds the contract in DIR (default .) natively and prints the JSON Schema (draft 2020-12) of its\n" +
			"instantiate, execute, query and migrate messages, generated by the SDK from the Go types its\n" +
			"handlers decode (the contract's main must call sdk.Main(contract)). Store it with the code:\n" +
			"sos contract upload FILE.wasm --schema FILE.schema.json.",
		Example: "  sos contract schema sdk-contracts/examples/counter --write counter.schema.json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			ctx, cancel := cmdContext(cmd, 5*time.Minute)
			defer cancel()
			out, err := generateSchema(ctx, dir)
			if err != nil {
				return err
			}
			if write != "" {
				if err := os.WriteFile(write, out, 0o644); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d bytes)\n", write, len(out))
				return nil
			}
			_, err = os.Stdout.Write(out)
			return err
		},
	}
	schema.Flags().StringVar(&write, "write", "", "write the schema to this file instead of stdout")

	messages := &cobra.Command{
		Use:   "messages CODE_ID|ADDRESS",
		Short: "List a code's or contract's messages (handlers and their fields) from the schema stored with its code",
		Long: "Lists the instantiate, execute, query and migrate messages declared by the schema uploaded with\n" +
			"the code; a * marks a required field. -o json prints the stored schema itself.",
		Example: "  sos contract messages sos1...\n  sos contract messages CODE_ID -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := cmdContext(cmd, 30*time.Second)
			defer cancel()
			id := args[0]
			if _, err := ledger.ParseHash(id); err != nil {
				ci, cerr := c.Contract(ctx, id)
				if cerr != nil {
					return fmt.Errorf("%s is neither a code id nor a contract: %w", id, cerr)
				}
				id = ci.CodeID
			}
			d, err := codeSchema(ctx, c, id)
			if err != nil {
				return err
			}
			if d == nil {
				return fmt.Errorf("code %s was uploaded without a schema (sos contract upload --schema)", id)
			}
			return g.print(json.RawMessage(d.raw), func() { d.printList(id) })
		},
	}
	return []*cobra.Command{schema, messages}
}

func (d *schemaDoc) printList(id string) {
	name := d.Contract
	if name == "" {
		name = "(unnamed contract)"
	}
	fmt.Printf("%s %s  code %s\n", name, d.Version, id)
	for _, e := range schemaEntries {
		part, ok := d.parts[e].(map[string]any)
		if !ok {
			continue
		}
		if e == "execute" || e == "query" {
			fmt.Printf("%s:\n", e)
			for _, h := range d.handlers(e) {
				fmt.Printf("  %-20s %s\n", h.Name, h.Fields)
			}
			continue
		}
		fmt.Printf("%s: %s\n", e, d.summary(part, part, 0))
	}
}
