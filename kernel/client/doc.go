// Package client is the Go client of a node's HTTP API and the JSON types it
// speaks. It imports nothing of the kernel, so the CLI, the TUI and other
// programs can use it without linking the ledger or the VM. The API itself is
// documented in docs/api.md.
package client
