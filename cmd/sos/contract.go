package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/keyring"
	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
)

// contractResult is what contract transactions print: the tx fields plus
// what the contract call produced.
type contractResult struct {
	txResult
	CodeID  string          `json:"code_id,omitempty"`
	Address string          `json:"address,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (g *globals) printContractTx(res *client.SubmitResult) error {
	out := contractResult{txResult: txResult{TxHash: res.TxHash, Height: res.Height, Code: res.Code, GasUsed: res.GasUsed, Receipt: res.Receipt}}
	if res.Receipt != nil && res.Receipt.Data != "" && json.Valid([]byte(res.Receipt.Data)) {
		out.Data = json.RawMessage(res.Receipt.Data)
		var d struct {
			CodeID  string          `json:"code_id"`
			Address string          `json:"address"`
			Data    json.RawMessage `json:"data"`
		}
		if json.Unmarshal(out.Data, &d) == nil && (d.CodeID != "" || d.Address != "") {
			out.CodeID, out.Address = d.CodeID, d.Address
			if d.Address != "" {
				out.Data = d.Data
			}
		}
	}
	return g.print(out, func() {
		g.printTxLine(res)
		if out.CodeID != "" {
			fmt.Println("code id:", out.CodeID)
		}
		if out.Address != "" {
			fmt.Println("contract:", out.Address)
		}
		if len(out.Data) > 0 && string(out.Data) != "null" {
			fmt.Println("result:", string(out.Data))
		}
	})
}

// msgHelp is the help text of every command that takes a contract message.
const msgHelp = "MSG is JSON text, @FILE (read from a file) or - (read from stdin). When the code was uploaded\n" +
	"with a schema (sos contract upload --schema), the message is checked against it before anything is\n" +
	"signed (--no-validate skips that); sos contract messages ADDRESS lists the messages a contract takes."

func parseFunds(b *txbuild.Builder, s string) (ledger.Coins, error) {
	if s == "" {
		return nil, nil
	}
	c, err := b.Denoms.ParseCoins(s)
	if err != nil {
		return nil, fmt.Errorf("--funds: %w", err)
	}
	return c, nil
}

func newContractCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "contract", Short: "Upload, instantiate, execute, query and migrate Wasm contracts"}

	var up txFlags
	var schemaFile string
	upload := &cobra.Command{
		Use: "upload FILE.wasm", Short: "Upload contract code; prints the code id (SHA-256 of the Wasm)", Args: cobra.ExactArgs(1),
		Example: "  sos contract upload sdk-contracts/examples/counter/counter.wasm --from alice \\\n" +
			"      --schema sdk-contracts/examples/counter/counter.schema.json",
		RunE: func(cmd *cobra.Command, args []string) error {
			wasm, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			var schema []byte
			if schemaFile != "" {
				if schema, err = os.ReadFile(schemaFile); err != nil {
					return fmt.Errorf("--schema: %w", err)
				}
				if _, err := parseSchemaDoc(schema); err != nil {
					return fmt.Errorf("--schema %s: %w", schemaFile, err)
				}
				// Stored compact: the chain charges per byte.
				var buf bytes.Buffer
				if err := json.Compact(&buf, schema); err != nil {
					return fmt.Errorf("--schema %s: %w", schemaFile, err)
				}
				schema = buf.Bytes()
			}
			res, err := g.sendTx(cmd, &up, func(*txbuild.Builder) (ledger.Payload, error) {
				return &ledger.ContractUpload{Wasm: wasm, Schema: schema}, nil
			})
			if err != nil || res == nil {
				return err
			}
			return g.printContractTx(res)
		},
	}
	up.register(upload)
	upload.Flags().StringVar(&schemaFile, "schema", "", "JSON Schema of the code's messages (from `sos contract schema`), stored with the code")
	var noValidate bool
	noValidateFlag := func(c *cobra.Command) {
		c.Flags().BoolVar(&noValidate, "no-validate", false, "send the message without checking it against the schema stored with the code")
	}
	check := func(ctx context.Context, c *client.Client, id, addr, entry string, msg []byte) error {
		if noValidate {
			return nil
		}
		return validateFor(ctx, c, id, addr, entry, msg)
	}

	var inst txFlags
	var label, admin, instFunds string
	instantiate := &cobra.Command{
		Use: "instantiate CODE_ID MSG", Short: "Create a contract instance from uploaded code", Args: cobra.ExactArgs(2),
		Long: msgHelp,
		Example: `  sos contract instantiate CODE_ID '{"count":1}' --from alice --label c1 [--admin ADDR] [--funds 5TFLP]
  sos contract instantiate CODE_ID @init.json --from alice --label c1`,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := ledger.ParseHash(args[0])
			if err != nil {
				return err
			}
			msg, err := readMsg(cmd, args[1])
			if err != nil {
				return err
			}
			res, err := g.sendTx(cmd, &inst, func(b *txbuild.Builder) (ledger.Payload, error) {
				if err := check(cmd.Context(), b.Client, id.String(), "", "instantiate", msg); err != nil {
					return nil, err
				}
				p := &ledger.ContractInstantiate{CodeID: id, Msg: msg, Label: label}
				if admin != "" {
					a, err := keyring.Open(g.home).Resolve(admin)
					if err != nil {
						return nil, fmt.Errorf("--admin: %w", err)
					}
					p.Admin = a
				}
				p.Funds, err = parseFunds(b, instFunds)
				return p, err
			})
			if err != nil || res == nil {
				return err
			}
			return g.printContractTx(res)
		},
	}
	inst.register(instantiate)
	noValidateFlag(instantiate)
	instantiate.Flags().StringVar(&label, "label", "", "human-readable name of the instance (required)")
	instantiate.Flags().StringVar(&admin, "admin", "", "address or key name allowed to migrate the instance (default: none)")
	instantiate.Flags().StringVar(&instFunds, "funds", "", "tokens sent to the new instance, e.g. 5TFLP")
	_ = instantiate.MarkFlagRequired("label")

	var ex txFlags
	var exFunds string
	execute := &cobra.Command{
		Use: "execute ADDRESS MSG", Short: "Execute a contract", Args: cobra.ExactArgs(2),
		Long: msgHelp,
		Example: `  sos contract execute sos1... '{"increment":{}}' --from alice [--funds 1TFLP] [--gas 2000000]
  echo '{"increment":{}}' | sos contract execute sos1... - --from alice`,
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := ledger.ParseAddress(args[0])
			if err != nil {
				return err
			}
			msg, err := readMsg(cmd, args[1])
			if err != nil {
				return err
			}
			res, err := g.sendTx(cmd, &ex, func(b *txbuild.Builder) (ledger.Payload, error) {
				if err := check(cmd.Context(), b.Client, "", args[0], "execute", msg); err != nil {
					return nil, err
				}
				funds, err := parseFunds(b, exFunds)
				return &ledger.ContractExecute{Contract: addr, Msg: msg, Funds: funds}, err
			})
			if err != nil || res == nil {
				return err
			}
			return g.printContractTx(res)
		},
	}
	ex.register(execute)
	noValidateFlag(execute)
	execute.Flags().StringVar(&exFunds, "funds", "", "tokens sent with the call, e.g. 1TFLP")

	var mig txFlags
	var force bool
	migrate := &cobra.Command{
		Use: "migrate ADDRESS NEW_CODE_ID MSG", Short: "Move an instance to new code (admin only)", Args: cobra.ExactArgs(3),
		Long: "Moves the instance to the new code and runs its migrate entry point. When the instance records a\n" +
			"contract name (the SDK's Contract.Name, stored under contract_info) and the new code records\n" +
			"another one, the node refuses the migration unless --force is given.\n\n" + msgHelp,
		Example: `  sos contract migrate sos1... NEW_CODE_ID '{}' --from alice [--force]`,
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := ledger.ParseAddress(args[0])
			if err != nil {
				return err
			}
			id, err := ledger.ParseHash(args[1])
			if err != nil {
				return err
			}
			msg, err := readMsg(cmd, args[2])
			if err != nil {
				return err
			}
			res, err := g.sendTx(cmd, &mig, func(b *txbuild.Builder) (ledger.Payload, error) {
				if err := check(cmd.Context(), b.Client, id.String(), "", "migrate", msg); err != nil {
					return nil, err
				}
				return &ledger.ContractMigrate{Contract: addr, CodeID: id, Msg: msg, Force: force}, nil
			})
			if err != nil || res == nil {
				return err
			}
			return g.printContractTx(res)
		},
	}
	mig.register(migrate)
	noValidateFlag(migrate)
	migrate.Flags().BoolVar(&force, "force", false, "migrate even if the new code records a different contract name")

	query := &cobra.Command{
		Use: "query ADDRESS MSG", Short: "Read-only query of a contract (free, gas-capped)", Args: cobra.ExactArgs(2),
		Long:    msgHelp,
		Example: `  sos contract query sos1... '{"get":{}}'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			msg, err := readMsg(cmd, args[1])
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := cmdContext(cmd, 30*time.Second)
			defer cancel()
			if err := check(ctx, c, "", args[0], "query", msg); err != nil {
				return err
			}
			out, err := c.QueryContract(ctx, args[0], msg)
			if err != nil {
				return err
			}
			return g.print(out, func() { fmt.Println(string(out)) })
		},
	}

	info := &cobra.Command{
		Use: "info ADDRESS", Short: "A contract instance: code, label, admin, calls, gas, balances", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(g, cmd, func(ctx context.Context, c *client.Client) (*client.Contract, error) { return c.Contract(ctx, args[0]) }, func(ci *client.Contract) {
				fmt.Printf("contract %s\nlabel %s\ncode %s\ncreator %s\nadmin %s\ncalls %d gas %d\n", ci.Address, ci.Label, ci.CodeID, ci.Creator, ci.Admin, ci.Calls, ci.GasUsed)
				if ci.ContractName != "" {
					fmt.Printf("name %s version %s\n", ci.ContractName, ci.ContractVersion)
				}
			})
		},
	}
	list := &cobra.Command{
		Use: "list", Short: "Contract instances", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(g, cmd, func(ctx context.Context, c *client.Client) ([]client.Contract, error) { return c.Contracts(ctx) }, func(cs []client.Contract) {
				for _, ci := range cs {
					fmt.Printf("%s %-16s code %.12s calls %d\n", ci.Address, ci.Label, ci.CodeID, ci.Calls)
				}
			})
		},
	}
	codes := &cobra.Command{
		Use: "codes", Short: "Uploaded codes", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(g, cmd, func(ctx context.Context, c *client.Client) ([]client.Code, error) { return c.Codes(ctx) }, func(cs []client.Code) {
				for _, ci := range cs {
					schema := ""
					if ci.HasSchema {
						schema = " schema"
					}
					fmt.Printf("%s size %d instances %d%s\n", ci.CodeID, ci.Size, ci.Instances, schema)
				}
			})
		},
	}
	var prefix string
	var limit int
	state := &cobra.Command{
		Use: "state ADDRESS", Short: "A contract's storage (keys and values)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(g, cmd, func(ctx context.Context, c *client.Client) ([]client.StateEntry, error) {
				return c.ContractState(ctx, args[0], prefix, limit)
			}, func(es []client.StateEntry) {
				for _, e := range es {
					k, v := e.KeyText, e.ValueText
					if k == "" {
						k = "0x" + e.Key
					}
					if v == "" {
						v = "0x" + e.Value
					}
					fmt.Printf("%s = %s\n", k, v)
				}
			})
		},
	}
	state.Flags().StringVar(&prefix, "prefix", "", "hex key prefix")
	state.Flags().IntVar(&limit, "limit", 100, "entries to show")
	noValidateFlag(query)
	cmd.AddCommand(upload, instantiate, execute, migrate, query, info, list, codes, state, newContractGasCmd(g))
	cmd.AddCommand(newContractSchemaCmds(g)...)
	cmd.AddCommand(newContractNewCmd())
	return cmd
}
