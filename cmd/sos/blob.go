package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"lukechampine.com/blake3"

	"github.com/sos-kernel/sos/internal/units"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
)

// blobTimeout bounds a blob command; transfers of large files take as long
// as they need up to it.
const blobTimeout = 6 * time.Hour

// localBlob is a file's blob id (its BLAKE3-256 hash, what b3sum prints)
// and size.
type localBlob struct {
	Path string
	ID   string
	Size int64
}

// hashFile reads a file once to name it as a blob.
func hashFile(path string) (localBlob, error) {
	f, err := os.Open(path)
	if err != nil {
		return localBlob{}, err
	}
	defer f.Close()
	h := blake3.New(32, nil)
	n, err := io.Copy(h, f)
	if err != nil {
		return localBlob{}, fmt.Errorf("read %s: %w", path, err)
	}
	return localBlob{Path: path, ID: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// uploadFile stores a file on the node unless it has the blob already; it
// reports whether it sent the file. The node checks the content against
// the id hashed here.
func uploadFile(ctx context.Context, c *client.Client, b localBlob) (bool, error) {
	if st, err := c.BlobStat(ctx, b.ID); err == nil && st.Complete && st.Size == uint64(b.Size) {
		return false, nil
	}
	f, err := os.Open(b.Path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	res, err := c.PutBlob(ctx, f, b.Size, b.ID)
	if err != nil {
		return false, fmt.Errorf("upload %s: %w", b.Path, err)
	}
	return !res.Existed, nil
}

// downloadFile writes blob id (of size bytes, -1: unknown) to path: into
// a temporary file beside it, renamed into place only once the content
// checked out against the id, so a damaged download never takes the name.
func downloadFile(ctx context.Context, c *client.Client, id string, size int64, path string) (int64, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".part*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	n, err := c.GetBlob(ctx, id, size, tmp)
	if err != nil {
		tmp.Close()
		return n, err
	}
	if err := tmp.Close(); err != nil {
		return n, err
	}
	return n, os.Rename(tmp.Name(), path)
}

func newBlobCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "blob", Short: "Content-addressed blobs in the node's store: put, get, stat, usage, pin, where",
		Long: `Blobs are byte strings named by their BLAKE3-256 hash (what b3sum prints): job modules, inputs
and outputs and the data of storage leases live in the node's blob store (<home>/blobs). These commands
talk to the node's local API; nodes move blobs between them on the QUIC data plane. A pinned blob the
node lacks is fetched from its holders when you get it.`}
	put := &cobra.Command{
		Use: "put FILE", Short: "Store a file on the node; prints its blob id", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := hashFile(args[0])
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := cmdContext(cmd, blobTimeout)
			defer cancel()
			sent, err := uploadFile(ctx, c, b)
			if err != nil {
				return err
			}
			out := client.BlobPut{ID: b.ID, Size: uint64(b.Size), Existed: !sent}
			return g.print(out, func() {
				fmt.Println(b.ID)
				if !sent {
					fmt.Fprintf(os.Stderr, "the node had it already (%s)\n", units.Format(uint64(b.Size)))
				}
			})
		},
	}
	var out string
	get := &cobra.Command{
		Use: "get ID", Short: "Download a blob (checked against its id) to --out, or to stdout", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := cmdContext(cmd, blobTimeout)
			defer cancel()
			if out == "" || out == "-" {
				// Stdout cannot be taken back: the content is checked in
				// memory first (use --out for large blobs).
				st, err := c.BlobStat(ctx, args[0])
				if err != nil {
					return err
				}
				if st.Size > 256<<20 {
					return fmt.Errorf("blob %s is %s: write it to a file with --out", args[0], units.Format(st.Size))
				}
				var buf bytes.Buffer
				if _, err := c.GetBlob(ctx, args[0], int64(st.Size), &buf); err != nil {
					return err
				}
				_, err = os.Stdout.Write(buf.Bytes())
				return err
			}
			n, err := downloadFile(ctx, c, args[0], -1, out)
			if err != nil {
				return err
			}
			return g.print(map[string]any{"blob_id": args[0], "size": n, "path": out}, func() {
				fmt.Printf("%s: %s, checked against %s\n", out, units.Format(uint64(n)), args[0])
			})
		},
	}
	get.Flags().StringVar(&out, "out", "", "file to write (default: stdout)")
	stat := &cobra.Command{
		Use: "stat ID", Short: "Describe a blob on the node: size, complete or still arriving", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(g, cmd, func(ctx context.Context, c *client.Client) (*client.BlobInfo, error) { return c.BlobStat(ctx, args[0]) },
				func(st *client.BlobInfo) {
					state := "complete"
					if !st.Complete {
						state = fmt.Sprintf("arriving, %s of %s verified", units.Format(st.Have), units.Format(st.Size))
					}
					fmt.Printf("%s  %s (%d bytes)  %s", st.ID, units.Format(st.Size), st.Size, state)
					if st.StoredMs > 0 {
						fmt.Printf("  stored %s", time.UnixMilli(st.StoredMs).UTC().Format(time.RFC3339))
					}
					fmt.Println()
				})
		},
	}
	usage := &cobra.Command{
		Use: "usage", Short: "What the node's blob store holds and its limits", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(g, cmd, func(ctx context.Context, c *client.Client) (*client.BlobUsage, error) { return c.BlobUsage(ctx) },
				func(u *client.BlobUsage) {
					limit := "none (only the disk)"
					if u.Limit > 0 {
						limit = units.Format(u.Limit)
					}
					fmt.Printf("%d blobs, %s; %d arriving (%s reserved); %s on disk of limit %s; uploads up to %s\n",
						u.Blobs, units.Format(u.Bytes), u.Partials, units.Format(u.Reserved), units.Format(u.Disk), limit, units.Format(u.MaxUpload))
				})
		},
	}
	cmd.AddCommand(put, get, stat, usage, newBlobPinCmd(g), newBlobWhereCmd(g))
	return cmd
}

func newBlobPinCmd(g *globals) *cobra.Command {
	var tf txFlags
	var req uint64
	var file string
	c := &cobra.Command{
		Use:   "pin BLOB_ID --request REQ_ID",
		Short: "Pin a blob to a storage request: every lease of the request must hold and prove it",
		Long: `Pin a blob to a storage request (a blob_pin transaction, by the request's consumer). Every lease of the
request must hold the blob within its quota (its storage units × bytes_per_storage_unit as it was when
the request was accepted; the request's pins count together); each holder's node fetches it over the data plane and, from storage_grace_epochs
after the pin, proves it every epoch. The blob's size comes from the node (put it there first with
sos blob put) or from --file.`,
		Example: "  sos blob put ./dataset.tar\n  sos blob pin 3f1c… --request 7 --from alice",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := ledger.ParseBlobID(args[0])
			if err != nil {
				return err
			}
			var size uint64
			if file != "" {
				b, err := hashFile(file)
				if err != nil {
					return err
				}
				if b.ID != args[0] {
					return fmt.Errorf("--file %s is blob %s, not %s", file, b.ID, args[0])
				}
				size = uint64(b.Size)
			}
			return g.runMarketTx(cmd, &tf, func(b *txbuild.Builder) (ledger.Payload, error) {
				if file == "" {
					ctx, cancel := cmdContext(cmd, 30*time.Second)
					defer cancel()
					st, err := b.Client.BlobStat(ctx, args[0])
					if err != nil {
						return nil, fmt.Errorf("the node does not have blob %s (put it first, or give --file): %w", args[0], err)
					}
					if !st.Complete {
						return nil, fmt.Errorf("blob %s is still arriving on the node", args[0])
					}
					size = st.Size
				}
				return &ledger.BlobPin{RequestID: req, Blob: ledger.BlobRef{ID: id, Size: size}}, nil
			})
		},
	}
	tf.register(c)
	c.Flags().Uint64Var(&req, "request", 0, "the storage request to pin the blob to (required)")
	c.Flags().StringVar(&file, "file", "", "the blob's content, to take its size from (default: ask the node)")
	_ = c.MarkFlagRequired("request")
	return c
}

func newBlobWhereCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "where BLOB_ID",
		Short: "Where a blob is pinned: its holders, their last proof height and misses",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(g, cmd, func(ctx context.Context, c *client.Client) (*client.BlobWhere, error) {
				return c.BlobWhere(ctx, args[0])
			},
				func(w *client.BlobWhere) {
					here := "not on this node"
					if w.Local {
						here = "on this node"
					}
					fmt.Printf("blob %s (%s), epoch %d, height %d\n", w.BlobID, here, w.Epoch, w.Height)
					if len(w.Pins) == 0 {
						fmt.Println("  not pinned")
					}
					for _, p := range w.Pins {
						fmt.Printf("  request %d pin %d: %s, pinned at height %d", p.RequestID, p.Pin, units.Format(p.Size), p.Height)
						if p.Replicas > 0 {
							fmt.Printf(", %d replicas", p.Replicas)
						}
						fmt.Println()
						for _, h := range p.Holders {
							state := "holding"
							if !h.Holding {
								state = "not holding (" + h.Lease + ")"
							}
							proof := "no proof yet"
							if h.LastProofHeight > 0 {
								proof = fmt.Sprintf("last proof at height %d (epoch %d)", h.LastProofHeight, h.LastProofEpoch)
							}
							fmt.Printf("    lease %d  provider %s  node %s  %s  %s  %d misses", h.LeaseID, h.Provider, h.Node, state, proof, h.Misses)
							if h.Region != "" {
								fmt.Printf("  region %s", h.Region)
							}
							fmt.Println()
						}
					}
				})
		},
	}
}
